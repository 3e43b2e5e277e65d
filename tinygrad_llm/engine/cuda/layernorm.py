"""Launcher for kernels/layernorm.cu: layer norm over the rows of an (N, C) float32 CuPy array.

The math is derived in docs/layernorm.md, the launch shape explained at the top of kernels/layernorm.cu; the CPU
twin is engine.functional.LayerNormOp. CuPy is imported lazily (backend.module_for("cuda")), so this module imports
on a machine without CuPy or a GPU.
"""
import functools

import numpy as np

from .. import backend
from . import loader

THREADS = 256                      # threads per block: 8 warps
ROWS_PER_BLOCK = THREADS // 32     # one warp per row
BACKWARD_BLOCKS_PER_SM = 4         # backward's grid cap: enough warps in flight, few dw/db flushes per SM
MAX_SHARED_BYTES = 48 * 1024       # what a block may use without opting in to more


def _check_sizes(op, n_rows, n_cols):
    if n_cols == 0:
        raise ValueError(f"{op}: rows of 0 features cannot be normalized")
    if n_rows > loader.INT32_MAX or n_cols > loader.INT32_MAX:
        raise ValueError(f"{op}: shape ({n_rows}, {n_cols}) is too large for the kernel's 32-bit sizes")


@functools.lru_cache(maxsize=None)
def _sm_count(device_id):
    """The number of streaming multiprocessors of a GPU (queried once per device)."""
    return backend.module_for("cuda").cuda.Device(device_id).attributes["MultiProcessorCount"]


def forward(x2d, weight, bias, eps):
    """x2d (N, C), weight and bias (C,) or None -> y (N, C), mean (N,), rstd (N,) (rstd = 1/sqrt(var + eps))."""
    op = "layer_norm (CUDA)"
    cupy = backend.module_for("cuda")
    x2d = loader.float32_input(op, "x", x2d, 2)
    n_rows, n_cols = x2d.shape
    _check_sizes(op, n_rows, n_cols)
    weight = None if weight is None else loader.float32_input(op, "weight", weight, (n_cols,))
    bias = None if bias is None else loader.float32_input(op, "bias", bias, (n_cols,))
    y = cupy.empty_like(x2d)
    mean = cupy.empty(n_rows, dtype=np.float32)
    rstd = cupy.empty(n_rows, dtype=np.float32)
    if n_rows == 0:
        return y, mean, rstd
    kernel = loader.get_kernel("layernorm.cu", "layernorm_forward")
    grid = (n_rows + ROWS_PER_BLOCK - 1) // ROWS_PER_BLOCK
    # CuPy passes None as an invalid pointer, not NULL (cupy issue #9046): harmless here, since the kernel never
    # reads weight or bias unless has_weight / has_bias says it exists
    loader.launch(kernel, (grid,), (THREADS,),
                  (x2d, weight, bias, y, mean, rstd, np.int32(n_rows), np.int32(n_cols), np.float32(eps),
                   np.int32(weight is not None), np.int32(bias is not None)))
    return y, mean, rstd


def backward(dy, x2d, weight, mean, rstd, need_weight_grads):
    """dy, x2d (N, C), weight (C,) or None, mean and rstd (N,) from forward -> dx (N, C), dweight (C,), dbias (C,).

    dweight = Σ_rows dy·x̂ and dbias = Σ_rows dy are computed together when need_weight_grads is true (then both are
    returned, whether or not the layer has a weight or a bias: the caller keeps those it needs), else both are None.
    """
    op = "layer_norm backward (CUDA)"
    cupy = backend.module_for("cuda")
    x2d = loader.float32_input(op, "x", x2d, 2)
    n_rows, n_cols = x2d.shape
    _check_sizes(op, n_rows, n_cols)
    dy = loader.float32_input(op, "dy", dy, (n_rows, n_cols))
    weight = None if weight is None else loader.float32_input(op, "weight", weight, (n_cols,))
    mean = loader.float32_input(op, "mean", mean, (n_rows,))
    rstd = loader.float32_input(op, "rstd", rstd, (n_rows,))
    dx = cupy.empty_like(x2d)
    # atomicAdd adds into these, so they must start at zero
    dweight = cupy.zeros(n_cols, dtype=np.float32) if need_weight_grads else None
    dbias = cupy.zeros(n_cols, dtype=np.float32) if need_weight_grads else None
    if n_rows == 0:
        return dx, dweight, dbias
    shared_bytes = 2 * n_cols * 4                        # a block's dw and db partial sums
    use_shared = bool(need_weight_grads) and shared_bytes <= MAX_SHARED_BYTES
    blocks_needed = (n_rows + ROWS_PER_BLOCK - 1) // ROWS_PER_BLOCK
    grid = min(blocks_needed, BACKWARD_BLOCKS_PER_SM * _sm_count(cupy.cuda.Device().id))
    kernel = loader.get_kernel("layernorm.cu", "layernorm_backward")
    loader.launch(kernel, (grid,), (THREADS,),
                  (dy, x2d, weight, mean, rstd, dx, dweight, dbias, np.int32(n_rows), np.int32(n_cols),
                   np.int32(weight is not None), np.int32(bool(need_weight_grads)), np.int32(use_shared)),
                  shared_mem=shared_bytes if use_shared else 0)
    return dx, dweight, dbias
