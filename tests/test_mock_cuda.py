"""The mock CUDA device itself (tinygrad_llm/engine/cuda/mock/): CuPy's rules on its arrays, CUDA's launch rules,
and the bugs it exists to catch, each shown on a kernel source patched before it is compiled: a missing
__syncthreads, an off-by-one bound, bf16 rounding toward zero, a NumPy array in a CuPy op, 2048 threads, a barrier
some threads never reach, a bad pointer, a kernel that never ends.

The array tests run everywhere (they need no compiler); the launch tests need the mock device (g++), and skip on a
real GPU, where the GPU tests run against CuPy itself."""
import numpy as np
import pytest

import tinygrad_llm.engine.functional as F
from tinygrad_llm import Tensor
from tinygrad_llm.engine import backend
from tinygrad_llm.engine.cuda import attention, gelu, layernorm, loader
from tinygrad_llm.engine.cuda.mock import cupy as mock
from tinygrad_llm.engine.cuda.mock import host_kernels

# ---------------------------------------------------------------- the arrays: CuPy's rules where bugs hide

@pytest.mark.parametrize("mix", [
    lambda a, h: a + h, lambda a, h: h * a, lambda a, h: mock.exp(h), lambda a, h: mock.maximum(a, h),
    lambda a, h: mock.where(h > 0, a, a), lambda a, h: mock.concatenate([a, h]), lambda a, h: a @ h.reshape(3, 1),
    lambda a, h: np.asarray(a), lambda a, h: a.__setitem__(slice(None), h),
], ids=["add", "radd", "ufunc", "function", "where-mask", "concatenate", "matmul", "np.asarray", "setitem"])
def test_device_and_host_arrays_never_mix_implicitly(mix):
    a, h = mock.ones(3, dtype=np.float32), np.ones(3, dtype=np.float32)
    with pytest.raises(TypeError, match="NumPy array|Implicit conversion"):
        mix(a, h)


def test_transfers_are_explicit_copies():
    host = np.arange(4, dtype=np.float32)
    device = mock.asarray(host)
    host[0] = 99                                  # the device copy does not follow the host array
    assert device[0].item() == 0
    back = device.get()
    back[1] = 99                                  # nor does it follow the host copy it gave
    assert device[1].item() == 1 and mock.asnumpy(device).tolist() == [0, 1, 2, 3]


def test_what_cupy_allows_is_allowed():
    a = mock.arange(6, dtype=np.float32).reshape(2, 3)
    assert a[np.array([1, 0])].get().tolist() == [[3, 4, 5], [0, 1, 2]]       # a host index array
    assert a.transpose(np.array([1, 0])).shape == (3, 2)                        # host axes
    assert (a * np.float32(2) + 1).get().tolist() == [[1, 3, 5], [7, 9, 11]]   # NumPy and Python scalars
    assert np.exp(a).get()[0, 0] == 1 and isinstance(np.exp(a), mock.ndarray)  # NumPy's ufuncs run on the device


def test_reductions_and_scalar_indexing_stay_on_the_device():
    a = mock.arange(4, dtype=np.float32)
    for value in (a.sum(), a.max(), a[2], mock.sum(a)):
        assert isinstance(value, mock.ndarray) and value.ndim == 0
    assert float(a.sum()) == 6.0 and int(a[2]) == 2 and bool(a.max() > 2)


def test_empty_is_not_zero():
    """cupy.empty gives whatever the memory held: the mock fills it with 0xFF bytes, NaN as float, so an output a
    kernel forgot to write shows as NaN instead of a plausible zero."""
    assert np.isnan(mock.empty((2, 3), dtype=np.float32).get()).all()
    assert np.isnan(mock.empty_like(mock.zeros(5, dtype=np.float32)).get()).all()


def test_device_random_numbers_are_not_numpys():
    device = mock.random.default_rng(0).random(5, dtype=np.float32)
    assert isinstance(device, mock.ndarray)
    assert not np.allclose(device.get(), np.random.default_rng(0).random(5, dtype=np.float32))


# ---------------------------------------------------------------- launches: CUDA's rules, and stricter ones

@pytest.fixture
def cp():
    """The mock device as the engine's CUDA array module; skipped on a real GPU or without g++."""
    if not backend.mock_cuda_enabled():
        pytest.skip("the GPU tests run on a real GPU here; this file tests the mock device")
    try:
        host_kernels.compiler_version()
    except host_kernels.CompileError as e:
        pytest.skip(str(e))
    return backend.module_for("cuda")


SCALE_KERNEL = r'''
extern "C" __global__ void __launch_bounds__(256) scale(const float* __restrict__ x, float* __restrict__ y, float a,
                                                         int n) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i] = a * x[i];
}
'''


def scale_kernel():
    return mock.RawModule(code=SCALE_KERNEL).get_function("scale")


def test_a_kernel_runs_on_every_thread_of_every_block(cp):
    x = mock.arange(1000, dtype=np.float32)
    y = mock.empty(1000, dtype=np.float32)
    scale_kernel()((4,), (256,), (x, y, np.float32(2), np.int32(1000)))
    np.testing.assert_array_equal(y.get(), 2 * np.arange(1000, dtype=np.float32))


@pytest.mark.parametrize("grid, block, message", [
    ((1,), (2048,), "block.x = 2048"),                        # more than 1024 threads on an axis
    ((1,), (32, 32, 2), "a block of 2048 threads"),           # more than 1024 threads in all
    ((1,), (512,), r"__launch_bounds__\(256\)"),              # more than the kernel was compiled for
    ((0,), (32,), "grid.x = 0"),
])
def test_launches_cuda_refuses_are_refused(cp, grid, block, message):
    x = mock.zeros(8, dtype=np.float32)
    with pytest.raises(mock.CUDADriverError, match=message):
        scale_kernel()(grid, block, (x, x, np.float32(1), np.int32(8)))


@pytest.mark.parametrize("args, message", [
    (lambda x: (x, x, 2.0, np.int32(8)), r"argument a is a C float, got float.*np.float32"),
    (lambda x: (x, x, np.float32(2), 8), r"argument n is a C int, got int.*np.int32.*64 bits"),
    (lambda x: (x, x, np.float32(2), np.int64(8)), r"argument n is a C int, got int64"),
    (lambda x: (x.astype(np.float64), x, np.float32(2), np.int32(8)), r"argument x is const float \* but.*float64"),
    (lambda x: (x[::2], x, np.float32(2), np.int32(4)), r"argument x is not C-contiguous"),
    (lambda x: (np.zeros(8, np.float32), x, np.float32(2), np.int32(8)), r"argument x .*host array"),
    (lambda x: (x, x, np.float32(2)), r"3 arguments for 4 parameters"),
], ids=["python-float", "python-int", "int64-for-int", "float64-array", "strided", "numpy-array", "too-few"])
def test_arguments_must_have_exactly_the_kernels_types(cp, args, message):
    x = mock.zeros(8, dtype=np.float32)
    with pytest.raises(mock.CUDADriverError, match=message):
        scale_kernel()((1,), (32,), args(x))


def test_more_static_shared_memory_than_a_block_has_does_not_compile(cp):
    code = r'''extern "C" __global__ void big(float* y) {
        __shared__ float tile[13000];   // 52,000 bytes: more than 48 KiB
        tile[threadIdx.x] = 1.f;
        __syncthreads();
        y[threadIdx.x] = tile[threadIdx.x];
    }'''
    with pytest.raises(mock.CompileException, match=r"big uses too much shared data \(52000 bytes"):
        mock.RawModule(code=code)


def test_more_dynamic_shared_memory_than_a_block_has_is_refused(cp):
    x = mock.zeros(8, dtype=np.float32)
    with pytest.raises(mock.CUDADriverError, match="dynamic shared memory exceed"):
        scale_kernel()((1,), (32,), (x, x, np.float32(1), np.int32(8)), shared_mem=49 * 1024)


# ---------------------------------------------------------------- the bugs the mock exists for

@pytest.fixture
def patch_kernel(cp, monkeypatch):
    """patch_kernel(file, old, new): the next launches of kernels/<file> compile its source with the first `old`
    replaced by `new` (`old` must be there: a patch cannot silently miss). The compiled-module cache is cleared
    around it."""
    original = loader.kernel_source

    def patch(filename, old, new):
        source = original(filename)
        assert old in source, f"{old!r} is not in {filename}: the patch would do nothing"
        monkeypatch.setattr(loader, "kernel_source",
                            lambda name: source.replace(old, new, 1) if name == filename else original(name))
        loader._module.cache_clear()

    yield patch
    loader._module.cache_clear()


def attention_case(T=45, D=64, seed=0):
    r = np.random.default_rng(seed)
    q, k, v = (r.standard_normal((2, 2, T, D)).astype(np.float32) for _ in range(3))
    s = q.astype(np.float64) @ k.swapaxes(-1, -2) / np.sqrt(D)
    s = np.where(np.tri(T, dtype=bool), s, -np.inf)
    p = np.exp(s - s.max(axis=-1, keepdims=True))
    return (q, k, v), (p / p.sum(axis=-1, keepdims=True)) @ v


def attention_error(cp, **case):
    """The fp32 forward's largest error; NaN counts as infinitely wrong (it comes from never-written memory)."""
    (q, k, v), want = attention_case(**case)
    o, _ = attention.forward(*(cp.asarray(a) for a in (q, k, v)), causal=True)
    return float(np.nan_to_num(np.abs(o.get() - want), nan=np.inf).max())


def test_unpatched_attention_is_right(cp):
    assert attention_error(cp) < 1e-5


def test_a_missing_syncthreads_gives_wrong_numbers(cp, patch_kernel):
    """Without the barrier after loading the key/value tile, thread 0 computes with rows its neighbours have not
    loaded yet: on a GPU that is a race which may or may not show; on the mock it always shows."""
    patch_kernel("attention.cu", "        load_tile_f32<BLOCK_N>(v_s, v, j0, T);\n        __syncthreads();\n",
                 "        load_tile_f32<BLOCK_N>(v_s, v, j0, T);\n")
    assert attention_error(cp) > 1e-2


def test_a_missing_syncthreads_shows_in_either_thread_order(cp, patch_kernel, monkeypatch):
    monkeypatch.setattr(host_kernels.HostKernel, "reverse_order", True)
    assert attention_error(cp) < 1e-5                          # the real kernel: right in reverse order too
    patch_kernel("attention.cu", "        __syncthreads();                           // everyone is done reading",
                 "        // everyone is done reading")
    assert attention_error(cp) > 1e-2                          # the barrier before the next tile's loads, removed


def test_an_off_by_one_bound_writes_past_the_array(cp, patch_kernel):
    patch_kernel("attention.cu", "if (e < o_valid) o_rows[e]", "if (e <= o_valid) o_rows[e]")
    with pytest.raises(RuntimeError, match="attention_forward_f32.*wrote past the end of the array passed as o"):
        attention_error(cp)


def test_bf16_rounding_toward_zero_is_caught(cp, patch_kernel):
    """A kernel that converts to bf16 by truncation (toward zero) instead of rounding to nearest: each rounding
    loses half an ulp in one direction, and the bias test of test_cuda_attention.py sees it."""
    from test_cuda_attention import bf16_relative_bias
    assert abs(bf16_relative_bias(cp)) < 2.0 ** -11
    patch_kernel("attention.cu", "using bf16 = __nv_bfloat16;",
                 "using bf16 = __nv_bfloat16;\n#define __float2bfloat16 __float2bfloat16_rz")
    assert bf16_relative_bias(cp) < -2.0 ** -10


def test_a_numpy_array_in_the_engines_cupy_code_is_a_type_error(cp, monkeypatch):
    """The classic slip: np. where backend.xp(x). should be. Here attention's row sums are made with a NumPy
    column, as a bug would; on a GPU CuPy refuses the mix, and so does the mock."""
    monkeypatch.setattr(F, "_row_sum", lambda a, weight=1: a @ np.full((a.shape[-1], 1), weight, dtype=a.dtype))
    x = Tensor(np.ones((1, 1, 4, 8), np.float32), device="cuda")
    with pytest.raises(TypeError, match="NumPy array"), F.cuda_kernels(False):   # the array code, not the kernel
        F.scaled_dot_product_attention(x, x, x)


def test_a_launch_of_2048_threads_is_refused(cp, monkeypatch):
    monkeypatch.setattr(gelu, "THREADS", 2048)
    with pytest.raises(RuntimeError, match=r"CUDA kernel gelu_forward failed .*block \(2048,\).*block.x = 2048"):
        gelu.forward(cp.zeros(10, dtype=np.float32))


def test_a_barrier_some_threads_never_reach_is_an_error_not_a_hang(cp, patch_kernel):
    patch_kernel("layernorm.cu", "    extern __shared__ float partials[];",
                 "    if (threadIdx.x == 0) return;\n    extern __shared__ float partials[];")
    x = cp.ones((16, 64), dtype=np.float32)
    mean, rstd = cp.zeros(16, dtype=np.float32), cp.ones(16, dtype=np.float32)
    with pytest.raises(RuntimeError, match=r"__syncthreads\(\) was reached by 255 of the block's 256 threads"):
        layernorm.backward(x, x, None, mean, rstd, True)


def test_a_shuffle_some_lanes_never_reach_is_an_error(cp, patch_kernel):
    patch_kernel("layernorm.cu", "    // pass 1: the mean\n", "    if (lane == 5) return;\n    // pass 1: the mean\n")
    with pytest.raises(RuntimeError, match=r"waits for lane 5, which has returned"):
        layernorm.forward(cp.ones((4, 64), dtype=np.float32), None, None, 1e-5)


def test_reading_a_missing_argument_is_an_illegal_access_not_a_crash(cp, patch_kernel):
    """CuPy passes None as an invalid pointer; a kernel that read it anyway (here: the weight check removed) fails
    with an illegal memory access naming the kernel, block and thread, and the test process lives on."""
    patch_kernel("layernorm.cu", "if (has_weight) v *= weight[c];", "v *= weight[c];")
    with pytest.raises(RuntimeError, match=r"layernorm_forward: illegal memory access .* in block \(0, 0, 0\)"):
        layernorm.forward(cp.ones((4, 64), dtype=np.float32), None, None, 1e-5)
    assert float(cp.ones(3).sum()) == 3   # and the device still works


def test_a_kernel_that_never_ends_times_out(cp, patch_kernel, monkeypatch):
    monkeypatch.setattr(host_kernels.HostKernel, "timeout_seconds", 0.5)
    start = "    const long long stride = (long long)gridDim.x * blockDim.x;\n"
    patch_kernel("gelu.cu", start, "    volatile int forever = 1;\n    while (forever) {}\n" + start)
    with pytest.raises(RuntimeError, match="still running after 0.5 s"):
        gelu.forward(cp.zeros(10, dtype=np.float32))
