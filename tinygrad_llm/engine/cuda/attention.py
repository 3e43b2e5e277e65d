"""Launchers for kernels/attention.cu: FlashAttention-2 forward and backward on CuPy arrays.

The derivation is in docs/attention.md, the launch shapes at the top of kernels/attention.cu; its CPU twin, the same loops in NumPy, is attention_tiles.py beside this file. CuPy is imported
lazily (backend.module_for("cuda")), so this module imports on a machine without CuPy or a GPU.

Precision. `precision="fp32"` (the default) runs the float32 kernels. `precision="bf16"` runs the tensor-core
kernels: the float32 inputs are rounded to bfloat16 here (round to nearest even) and the kernels accumulate in
float32. CuPy has no bfloat16 dtype, so bf16 arrays travel as uint16 arrays holding the bit patterns (`to_bf16`,
`from_bf16`). Inputs and outputs of both functions are float32 either way: in bf16, o holds bf16-rounded values
(the kernel writes o in bf16) and dq, dk, dv are the kernel's float32 accumulators. Converting costs one extra
elementwise pass per tensor; a model kept in bf16 end to end would hand the uint16 arrays straight to the kernels.
The bf16 kernels need a GPU of compute capability 8.0 or newer (A100, H100).
"""
import math

import numpy as np

from .. import backend
from . import loader

FILE = "attention.cu"
THREADS = 128                      # threads per block, as kernels/attention.cu's THREADS
WARPS = THREADS // 32
HEAD_DIMS = (32, 64, 128)          # head dims the kernels are compiled for (-DHEAD_DIM)
PRECISIONS = ("fp32", "bf16")
MAX_GRID_Y = 65535                 # CUDA's limit on gridDim.y, which holds batch·heads
INT32_MAX = 2**31 - 1
OP = "scaled_dot_product_attention (CUDA)"


def block_size(head_dim):
    """Rows of a tile (BLOCK_M = BLOCK_N) in kernels/attention.cu for this head dim: 32 up to 64, 16 for 128.
    The kernel is compiled with -DEXPECTED_BLOCK=<this>, and a static_assert there stops compilation if the two
    ever disagree (the grids below are sized from this number)."""
    return 32 if head_dim <= 64 else 16


def compile_options(head_dim):
    """NVRTC / nvcc options for kernels/attention.cu at this head dim (tests/test_kernels_compile.py uses them too)."""
    return ("-DHEAD_DIM=%d" % head_dim, "-DEXPECTED_BLOCK=%d" % block_size(head_dim))


def _kernel(name, precision, head_dim):
    suffix = "f32" if precision == "fp32" else "bf16"
    return loader.get_kernel(FILE, f"{name}_{suffix}", compile_options(head_dim))


# ---------------------------------------------------------------- bfloat16 bit patterns

def to_bf16(x):
    """float32 array (NumPy or CuPy) -> uint16 array of bfloat16 bit patterns, rounded to nearest even.
    bf16 is the top half of a float32; rounding adds 0x7FFF plus the lowest kept bit before dropping the low half.
    NaN stays a (quiet) NaN, where rounding could otherwise carry it into infinity."""
    xp = backend.xp(x)
    x = xp.ascontiguousarray(x, dtype=np.float32)
    bits = x.view(np.uint32)
    rounded = (bits + np.uint32(0x7FFF) + ((bits >> np.uint32(16)) & np.uint32(1))) >> np.uint32(16)
    return xp.where(xp.isnan(x), np.uint32(0x7FC0), rounded).astype(np.uint16)


def from_bf16(bits):
    """uint16 array of bfloat16 bit patterns -> float32 array holding the same values exactly."""
    return (bits.astype(np.uint32) << np.uint32(16)).view(np.float32)


# ---------------------------------------------------------------- checks

def _check_precision(precision):
    if precision not in PRECISIONS:
        raise ValueError(f"{OP}: precision must be one of {PRECISIONS}, got {precision!r}")
    if precision == "bf16":
        major = int(backend.module_for("cuda").cuda.Device().compute_capability[:-1])
        if major < 8:
            raise RuntimeError(f"{OP}: precision='bf16' needs a GPU of compute capability 8.0 or newer "
                               f"(bf16 tensor cores); use precision='fp32'")


def _check_arrays(named):
    """Every array of `named` ({name: array}) a float32 CuPy array of one shape (..., T, D) with D in HEAD_DIMS;
    returns them C-contiguous and reshaped to (BH, T, D), and the original shape."""
    cupy = backend.module_for("cuda")
    shapes = ", ".join(f"{name} {getattr(a, 'shape', None)}" for name, a in named.items())
    for name, a in named.items():
        if not isinstance(a, cupy.ndarray):
            raise TypeError(f"{OP}: {name} must be a CuPy array (the kernel runs on the GPU), got {type(a).__name__}")
        if a.dtype != np.float32:
            raise TypeError(f"{OP}: {name} has dtype {a.dtype}; the CUDA kernel takes float32 "
                            f"(precision='bf16' converts to bfloat16 itself)")
    shape = next(iter(named.values())).shape
    if len(shape) < 2 or any(a.shape != shape for a in named.values()):
        raise ValueError(f"{OP}: the kernel needs arrays of one shape (..., T, D) (self-attention, Tq = Tk, "
                         f"Dv = D); got {shapes}")
    T, D = shape[-2], shape[-1]
    if D not in HEAD_DIMS:
        raise ValueError(f"{OP}: head dim D = {D} is not supported by the kernel (supported: {HEAD_DIMS}); "
                         f"got {shapes}")
    bh = math.prod(shape[:-2])
    if bh > MAX_GRID_Y or bh * T * D > INT32_MAX:
        raise ValueError(f"{OP}: {shapes} is too large for one launch (batch·heads <= {MAX_GRID_Y}, "
                         f"elements <= {INT32_MAX})")
    return [cupy.ascontiguousarray(a).reshape(bh, T, D) for a in named.values()], shape


def _scalars(T, causal, scale, D):
    scale = 1 / math.sqrt(D) if scale is None else float(scale)
    return np.int32(T), np.int32(1 if causal else 0), np.float32(scale)


def _prepare(arrays, precision):
    """The arrays as the kernels read them: float32 as they are, bf16 as uint16 bit patterns."""
    return arrays if precision == "fp32" else [to_bf16(a) for a in arrays]


# ---------------------------------------------------------------- forward and backward

def forward(q, k, v, causal=False, scale=None, precision="fp32"):
    """q, k, v (..., T, D) float32 CuPy arrays -> o (..., T, D) float32, lse (..., T) float32, where
    o = softmax(scale·q kᵀ (+ causal mask)) v and lse the log of each row's softmax denominator (for backward).
    scale defaults to 1/sqrt(D)."""
    _check_precision(precision)
    (q3, k3, v3), shape = _check_arrays({"q": q, "k": k, "v": v})
    cupy = backend.module_for("cuda")
    bh, T, D = q3.shape
    lse = cupy.empty((bh, T), dtype=np.float32)
    if bh * T == 0:
        return cupy.empty(shape, dtype=np.float32), lse.reshape(shape[:-1])
    qk, kk, vk = _prepare((q3, k3, v3), precision)
    o = cupy.empty((bh, T, D), dtype=np.float32 if precision == "fp32" else np.uint16)
    grid = ((T + block_size(D) - 1) // block_size(D), bh)
    loader.launch(_kernel("attention_forward", precision, D), grid, (THREADS,),
                  (qk, kk, vk, o, lse, *_scalars(T, causal, scale, D)))
    o = o if precision == "fp32" else from_bf16(o)
    return o.reshape(shape), lse.reshape(shape[:-1])


def backward(q, k, v, o, d_o, lse, causal=False, scale=None, precision="fp32"):
    """Gradients of attention: q, k, v, o, d_o (..., T, D) float32 CuPy arrays and lse (..., T) from `forward`
    (same causal, scale and precision) -> dq, dk, dv (..., T, D) float32."""
    _check_precision(precision)
    (q3, k3, v3, o3, do3), shape = _check_arrays({"q": q, "k": k, "v": v, "o": o, "d_o": d_o})
    cupy = backend.module_for("cuda")
    if not isinstance(lse, cupy.ndarray) or lse.dtype != np.float32 or lse.shape != shape[:-1]:
        raise ValueError(f"{OP}: lse must be the float32 CuPy array of shape {shape[:-1]} that forward returned, "
                         f"got {type(lse).__name__} {getattr(lse, 'dtype', '')} {getattr(lse, 'shape', '')}")
    bh, T, D = q3.shape
    dq = cupy.zeros((bh, T, D), dtype=np.float32)   # zero-filled: every key tile atomically adds into it
    dk = cupy.empty((bh, T, D), dtype=np.float32)
    dv = cupy.empty((bh, T, D), dtype=np.float32)
    if bh * T == 0:
        return dq.reshape(shape), dk.reshape(shape), dv.reshape(shape)
    qk, kk, vk, ok, dok = _prepare((q3, k3, v3, o3, do3), precision)
    lse = cupy.ascontiguousarray(lse).reshape(bh, T)
    delta = cupy.empty((bh, T), dtype=np.float32)
    rows = bh * T
    loader.launch(_kernel("attention_backward_preprocess", precision, D), ((rows + WARPS - 1) // WARPS,),
                  (THREADS,), (ok, dok, delta, np.int32(rows)))
    grid = ((T + block_size(D) - 1) // block_size(D), bh)
    loader.launch(_kernel("attention_backward", precision, D), grid, (THREADS,),
                  (qk, kk, vk, dok, lse, delta, dq, dk, dv, *_scalars(T, causal, scale, D)))
    return dq.reshape(shape), dk.reshape(shape), dv.reshape(shape)
