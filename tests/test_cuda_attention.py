"""kernels/attention.cu on a GPU against float64 attention on the CPU (tinygrad_llm.engine.functional): forward, LSE and
backward; float32 to 1e-4 + 1e-5·|ref|, bf16 to within twice the error of a plain bf16 implementation
(FlashAttention's rule). The GPU tests skip cleanly where CuPy or a GPU is missing; the bf16 rounding helpers
are checked on the CPU everywhere."""
import numpy as np
import pytest

import tinygrad_llm.engine.functional as F
from tinygrad_llm import Tensor
from tinygrad_llm.engine import backend
from tinygrad_llm.engine.cuda import attention

# every head dim the kernels are compiled for; T of one row, just under and over one tile (32 rows at D <= 64, 16 at
# D = 128: 33 is three tiles there), several tiles with a ragged last one, and one long sequence
SHAPES = [(T, D) for T in (1, 31, 33, 97) for D in (32, 64, 128)] + [(256, 64)]


@pytest.fixture(scope="module")
def cupy():
    try:
        return backend.module_for("cuda")
    except RuntimeError as e:
        pytest.skip(str(e))


def reference(q, k, v, d_o, causal):
    """float64 o, lse, dq, dk, dv on the CPU from float32 (or bf16-valued) inputs of shape (B, H, T, D)."""
    q, k, v, d_o = (x.astype(np.float64) for x in (q, k, v, d_o))
    qt, kt, vt = (Tensor(x, requires_grad=True) for x in (q, k, v))
    out = F.scaled_dot_product_attention(qt, kt, vt, is_causal=causal)
    out.backward(d_o)
    s = q @ k.swapaxes(-1, -2) / np.sqrt(q.shape[-1])
    if causal:
        s = np.where(np.tri(q.shape[-2], dtype=bool), s, -np.inf)
    peak = s.max(axis=-1, keepdims=True)
    lse = (peak + np.log(np.exp(s - peak).sum(axis=-1, keepdims=True)))[..., 0]
    return out.detach().numpy(), lse, qt.grad.numpy(), kt.grad.numpy(), vt.grad.numpy()


def inputs(T, D, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((2, 3, T, D)).astype(np.float32) for _ in range(4)]   # q, k, v, d_o


@pytest.mark.parametrize("causal", [False, True], ids=["full", "causal"])
@pytest.mark.parametrize("T, D", SHAPES)
def test_fp32_kernels_match_float64_reference(cupy, causal, T, D):
    q, k, v, d_o = inputs(T, D)
    want = reference(q, k, v, d_o, causal)
    gq, gk, gv, gdo = (cupy.asarray(x) for x in (q, k, v, d_o))
    o, lse = attention.forward(gq, gk, gv, causal)
    dq, dk, dv = attention.backward(gq, gk, gv, o, gdo, lse, causal)
    for name, got, ref in zip(("o", "lse", "dq", "dk", "dv"), (o, lse, dq, dk, dv), want):
        got = cupy.asnumpy(got)
        assert got.shape == ref.shape and got.dtype == np.float32, name
        excess = np.abs(got - ref) - (1e-4 + 1e-5 * np.abs(ref))
        assert excess.max() <= 0, f"{name}: max |gpu - ref| beyond 1e-4 + 1e-5·|ref| by {excess.max():.3g}"


def naive_bf16(cupy, q, k, v, d_o, causal):
    """Attention computed plainly in bf16, as PyTorch's bf16 math path does: every op's result is rounded to bf16
    (matmuls and the softmax accumulate in float32 inside). The yardstick for the flash kernels' bf16 error."""
    r = lambda x: attention.from_bf16(attention.to_bf16(x))          # round to bf16, keep as float32
    q, k, v, d_o = (r(cupy.asarray(x)) for x in (q, k, v, d_o))
    scale = np.float32(1 / np.sqrt(q.shape[-1]))
    s = r(r(q @ k.swapaxes(-1, -2)) * scale)
    if causal:
        s = cupy.where(cupy.tri(q.shape[-2], dtype=bool), s, np.float32(-np.inf))
    p = cupy.exp(s - s.max(axis=-1, keepdims=True))
    p = r(p / p.sum(axis=-1, keepdims=True))
    o = r(p @ v)
    dv = r(p.swapaxes(-1, -2) @ d_o)
    dp = r(d_o @ v.swapaxes(-1, -2))
    ds = r(r(p * (dp - (p * dp).sum(axis=-1, keepdims=True))) * scale)   # softmax backward, then the scale
    return o, r(ds @ k), r(ds.swapaxes(-1, -2) @ q), dv


@pytest.mark.parametrize("causal", [False, True], ids=["full", "causal"])
@pytest.mark.parametrize("T, D", SHAPES)
def test_bf16_kernels_within_twice_the_error_of_plain_bf16(cupy, causal, T, D):
    if int(cupy.cuda.Device().compute_capability) < 80:
        pytest.skip("bf16 tensor-core kernels need compute capability 8.0+")
    # bf16-representable inputs, so that the reference, the naive and the flash computation start from one point
    q, k, v, d_o = (attention.from_bf16(attention.to_bf16(x)) for x in inputs(T, D, seed=1))
    want_o, want_lse, want_dq, want_dk, want_dv = reference(q, k, v, d_o, causal)
    gq, gk, gv, gdo = (cupy.asarray(x) for x in (q, k, v, d_o))
    o, lse = attention.forward(gq, gk, gv, causal, precision="bf16")
    dq, dk, dv = attention.backward(gq, gk, gv, o, gdo, lse, causal, precision="bf16")
    # LSE comes from fp32 scores of the bf16 inputs: as exact as the fp32 kernel's
    assert np.abs(cupy.asnumpy(lse) - want_lse).max() <= 1e-4
    naive = naive_bf16(cupy, q, k, v, d_o, causal)
    for name, got, plain, ref in zip(("o", "dq", "dk", "dv"), (o, dq, dk, dv), naive,
                                     (want_o, want_dq, want_dk, want_dv)):
        err = np.abs(cupy.asnumpy(got) - ref).max()
        plain_err = np.abs(cupy.asnumpy(plain) - ref).max()
        assert err <= 2 * plain_err + 1e-6, f"{name}: flash bf16 error {err:.3g} > 2 × plain bf16 error {plain_err:.3g}"


def bf16_relative_bias(cupy, T=97, D=64):
    """The mean signed relative error of the bf16 forward's O against float64, toward larger magnitudes
    (positive) or smaller (negative). Rounding to nearest errs both ways alike, so this averages out near 0 over
    many elements; rounding toward zero always errs toward smaller magnitudes, by a quarter of an ulp on average
    (2^-9 relative), and more through P's rounding too."""
    q, k, v, d_o = (attention.from_bf16(attention.to_bf16(x)) for x in inputs(T, D, seed=2))
    want = reference(q, k, v, d_o, causal=True)[0]
    o, _ = attention.forward(*(cupy.asarray(x) for x in (q, k, v)), True, precision="bf16")
    big = np.abs(want) > 0.05                      # relative errors of tiny values are all noise
    return float(np.mean(((cupy.asnumpy(o) - want) * np.sign(want) / np.abs(want))[big]))


def test_bf16_output_is_rounded_to_nearest(cupy):
    if int(cupy.cuda.Device().compute_capability) < 80:
        pytest.skip("bf16 tensor-core kernels need compute capability 8.0+")
    assert abs(bf16_relative_bias(cupy)) < 2.0 ** -11


def test_launcher_rejects_what_the_kernel_cannot_do(cupy):
    q = cupy.zeros((2, 8, 64), dtype=cupy.float32)
    with pytest.raises(ValueError, match=r"scaled_dot_product_attention.*k \(2, 4, 64\)"):
        attention.forward(q, q[:, :4], q)
    with pytest.raises(ValueError, match=r"scaled_dot_product_attention.*head dim D = 48"):
        attention.forward(*(cupy.zeros((2, 8, 48), dtype=cupy.float32),) * 3)
    with pytest.raises(TypeError, match=r"scaled_dot_product_attention.*float64"):
        attention.forward(*(q.astype(cupy.float64),) * 3)
    with pytest.raises(ValueError, match=r"scaled_dot_product_attention.*precision"):
        attention.forward(q, q, q, precision="fp16")


def test_bf16_rounding_is_round_to_nearest_even():
    """to_bf16 keeps the top 16 bits of a float32, rounding the dropped half to nearest, ties to even (CPU)."""
    one_ulp = 2.0 ** -7                                               # bf16 spacing just above 1.0
    x = np.array([1.0, 1 + one_ulp / 2, 1 + 3 * one_ulp / 2, 1 + 0.6 * one_ulp, -2.5, 3.4e38, np.inf, np.nan],
                 dtype=np.float32)
    got = attention.from_bf16(attention.to_bf16(x))
    want = np.array([1.0, 1.0, 1 + 2 * one_ulp, 1 + one_ulp, -2.5, np.inf, np.inf, np.nan], dtype=np.float32)
    np.testing.assert_array_equal(got, want)
    assert attention.to_bf16(x).dtype == np.uint16
