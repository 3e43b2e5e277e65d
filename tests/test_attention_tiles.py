"""The NumPy tile twin of kernels/attention.cu (tinygrad_llm/engine/cuda/attention_tiles.py) computes exactly our
attention: forward, LSE and backward against engine.functional.scaled_dot_product_attention, in float64 to 1e-10,
with one tile and with many, T a multiple of the tiles and not, causal and not."""
import numpy as np
import pytest

import tinygrad_llm.engine.functional as F
from tinygrad_llm import Tensor
from tinygrad_llm.engine.cuda.attention_tiles import backward_preprocess, flash_backward, flash_forward

TOL = dict(rtol=1e-10, atol=1e-12)


def reference(q, k, v, d_o, causal, scale):
    """o, dq, dk, dv from our fused CPU op (float64), on (BH, T, D) arrays."""
    qt, kt, vt = (Tensor(x.copy(), requires_grad=True) for x in (q, k, v))
    out = F.scaled_dot_product_attention(qt, kt, vt, is_causal=causal, scale=scale)
    out.backward(d_o)
    return out.detach().numpy(), qt.grad.numpy(), kt.grad.numpy(), vt.grad.numpy()


def masked_logsumexp(q, k, causal, scale):
    """log Σ_j exp(S_ij) over the keys row i may see, (BH, T), straight from the definition."""
    s = scale * q @ k.swapaxes(-1, -2)
    if causal:
        s = np.where(np.tri(q.shape[1], dtype=bool), s, -np.inf)
    peak = s.max(axis=-1, keepdims=True)
    return (peak + np.log(np.exp(s - peak).sum(axis=-1, keepdims=True)))[..., 0]


def inputs(rng, T, D, bh=3):
    return [rng.standard_normal((bh, T, D)) for _ in range(4)]   # q, k, v, d_o


@pytest.mark.parametrize("causal", [False, True], ids=["full", "causal"])
@pytest.mark.parametrize("T", [1, 37, 64, 100, 130])
@pytest.mark.parametrize("D", [16, 32, 64])
@pytest.mark.parametrize("block_m, block_n", [(16, 16), (64, 64), (16, 32), (32, 16)])
def test_twin_matches_reference(rng, causal, T, D, block_m, block_n):
    q, k, v, d_o = inputs(rng, T, D)
    scale = 1 / np.sqrt(D)
    o_ref, dq_ref, dk_ref, dv_ref = reference(q, k, v, d_o, causal, scale)

    o, lse = flash_forward(q, k, v, causal, scale, block_m, block_n)
    np.testing.assert_allclose(o, o_ref, **TOL)
    np.testing.assert_allclose(lse, masked_logsumexp(q, k, causal, scale), **TOL)

    dq, dk, dv = flash_backward(q, k, v, o, d_o, lse, causal, scale, block_m, block_n)
    np.testing.assert_allclose(dq, dq_ref, **TOL)
    np.testing.assert_allclose(dk, dk_ref, **TOL)
    np.testing.assert_allclose(dv, dv_ref, **TOL)


def test_twin_with_a_non_default_scale_and_large_scores(rng):
    """Scores far beyond exp's range (s·q·k ~ ±500) stay finite: the running max is subtracted before exp."""
    q, k, v, d_o = inputs(rng, 70, 32, bh=2)
    q *= 30
    o_ref, dq_ref, dk_ref, dv_ref = reference(q, k, v, d_o, True, 0.7)
    o, lse = flash_forward(q, k, v, True, 0.7, 16, 16)
    np.testing.assert_allclose(o, o_ref, **TOL)
    np.testing.assert_allclose(lse, masked_logsumexp(q, k, True, 0.7), **TOL)
    for got, want in zip(flash_backward(q, k, v, o, d_o, lse, True, 0.7, 16, 16), (dq_ref, dk_ref, dv_ref)):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9)


def test_preprocess_equals_rowsum_of_p_times_dp(rng):
    """D = rowsum(dO ∘ O) equals rowsum(P ∘ dP): the identity that lets the backward skip a row of P."""
    q, k, v, d_o = inputs(rng, 23, 16, bh=2)
    s = q @ k.swapaxes(-1, -2) / 4
    p = np.exp(s - s.max(axis=-1, keepdims=True))
    p /= p.sum(axis=-1, keepdims=True)
    o, dp = p @ v, d_o @ v.swapaxes(-1, -2)
    np.testing.assert_allclose(backward_preprocess(o, d_o), (p * dp).sum(axis=-1), **TOL)


def test_twin_rejects_mismatched_shapes(rng):
    q, k, v, _ = inputs(rng, 8, 16)
    with pytest.raises(ValueError, match="scaled_dot_product_attention.*(BH, T, D)"):
        flash_forward(q, k[:, :4], v, False, 0.25)
