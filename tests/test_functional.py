"""Tests for tinygrad_llm.engine.functional, the fused ops: gradients against central differences, fused against the
composed twins (composed.py), values and gradients against torch.nn.functional, masked attention, dropout,
errors and dtypes.

Most tests run over one table, CASES. Each case is a function `fn(f, *xs)` written once and run with `f` = our
functional module (fused or composed) or torch.nn.functional, whose names and arguments are the same; `const`
turns the non-differentiable arguments (targets, masks) into what each library expects.
"""
import warnings

import numpy as np
import pytest

import tinygrad_llm as tl
import tinygrad_llm.engine.functional as F
from tinygrad_llm import Tensor
from tinygrad_llm.engine import rng as engine_rng
from tinygrad_llm.engine.gradcheck import gradcheck

from conftest import assert_raises_naming, tensor, tolerances, torch_tensor


def const(f, array, like=None):
    """A constant argument: the NumPy array for us, a torch tensor for torch (both of `like`'s dtype if given)."""
    if f is F:
        return array if like is None else array.astype(like.dtype)
    import torch
    return torch.as_tensor(array, dtype=None if like is None else like.dtype)


class Case:
    """fused=False: the call has no fused op (class weights go to the composed form), so it has no twin to match."""

    def __init__(self, shapes, fn, seed=None, torch=True, fused=True):
        self.shapes, self.fn, self.seed, self.torch, self.fused = shapes, fn, seed, torch, fused

    def __call__(self, f, *xs):
        if self.seed is not None:  # dropout: the same seed before every call gives the same mask
            engine_rng.manual_seed(self.seed)
        return self.fn(f, *xs)

    def arrays(self, dtype=np.float64):
        r = np.random.default_rng(0)
        return [r.standard_normal(shape).astype(dtype) for shape in self.shapes]


def case(id, shapes, fn, **kw):
    return pytest.param(Case(shapes, fn, **kw), id=id)


T_2D = np.array([0, 3, -100, 1, 2])           # for logits (5, 4); row 2 ignored
T_3D = np.array([[0, 3, -100], [1, 2, 2]])     # for logits (2, 4, 3); one position ignored
BOOL_MASK = np.array([[1, 0, 1, 0, 0], [1, 1, 0, 1, 0], [0, 0, 1, 1, 1]], dtype=bool)  # (Tq=3, Tk=5), True = attend
BATCH_MASK = np.stack([BOOL_MASK, BOOL_MASK[::-1]])[:, None]                               # (2, 1, 3, 5)
FLOAT_MASK = np.random.default_rng(7).standard_normal((3, 5))
W_4 = np.array([0.5, 2.0, 1.0, 0.25])         # weights along a last axis of 4
QKV_SELF, QKV_CROSS = [(2, 2, 3, 4)] * 3, [(2, 2, 3, 4), (2, 2, 5, 4), (2, 2, 5, 2)]  # Tq=3; cross: Tk=5, Dv=2

CASES = [
    case("linear-bias", [(3, 4), (5, 4), (5,)], lambda f, x, w, b: f.linear(x, w, b)),
    case("linear-nobias", [(3, 4), (5, 4)], lambda f, x, w: f.linear(x, w)),
    case("linear-3d", [(2, 3, 4), (5, 4), (5,)], lambda f, x, w, b: f.linear(x, w, b)),
    case("linear-1d", [(4,), (5, 4), (5,)], lambda f, x, w, b: f.linear(x, w, b)),
    *[case(f"{op}-dim{d}", [(2, 3, 4)], lambda f, x, op=op, d=d: getattr(f, op)(x, d))
      for op in ("softmax", "log_softmax") for d in (0, 1, -1)],
    *[case(f"ce-2d-{r}", [(5, 4)], lambda f, x, r=r: f.cross_entropy(x, const(f, T_2D), reduction=r))
      for r in ("mean", "sum", "none")],
    *[case(f"ce-3d-{r}", [(2, 4, 3)], lambda f, x, r=r: f.cross_entropy(x, const(f, T_3D), reduction=r))
      for r in ("mean", "sum", "none")],
    case("ce-ignore-index-2", [(5, 4)], lambda f, x: f.cross_entropy(x, const(f, T_2D % 4), ignore_index=2)),
    *[case(f"ce-smooth-2d-{r}", [(5, 4)],
           lambda f, x, r=r: f.cross_entropy(x, const(f, T_2D), reduction=r, label_smoothing=0.2))
      for r in ("mean", "sum", "none")],
    *[case(f"ce-smooth-3d-{r}", [(2, 4, 3)],
           lambda f, x, r=r: f.cross_entropy(x, const(f, T_3D), reduction=r, label_smoothing=0.3))
      for r in ("mean", "sum", "none")],
    case("ce-smooth-ignore-index-2", [(5, 4)],
         lambda f, x: f.cross_entropy(x, const(f, T_2D % 4), ignore_index=2, label_smoothing=0.1)),
    case("ce-smooth-uniform", [(5, 4)], lambda f, x: f.cross_entropy(x, const(f, T_2D), label_smoothing=1.0)),
    *[case(f"mse-{r}", [(3, 4), (3, 4)], lambda f, x, y, r=r: f.mse_loss(x, y, reduction=r))
      for r in ("mean", "sum", "none")],
    case("mse-3d-constant-target", [(2, 3, 4)],
         lambda f, x: f.mse_loss(x, const(f, np.linspace(-1, 1, 24).reshape(2, 3, 4), like=x))),
    case("ln-1d-affine", [(3, 5), (5,), (5,)], lambda f, x, w, b: f.layer_norm(x, (5,), w, b)),
    case("ln-1d-plain", [(3, 5)], lambda f, x: f.layer_norm(x, (5,))),
    case("ln-2d-affine", [(2, 3, 4), (3, 4), (3, 4)], lambda f, x, w, b: f.layer_norm(x, (3, 4), w, b)),
    # NumPy float64 eps / scale: float32 inputs must still give float32 (test_float32_in_float32_out)
    case("ln-2d-weight-only-eps", [(2, 3, 4), (3, 4)],
         lambda f, x, w: f.layer_norm(x, (3, 4), w, eps=np.float64(0.1))),
    case("ln-bias-only", [(3, 5), (5,)], lambda f, x, b: f.layer_norm(x, (5,), None, b)),
    case("attn", QKV_SELF, lambda f, q, k, v: f.scaled_dot_product_attention(q, k, v)),
    case("attn-causal", QKV_SELF, lambda f, q, k, v: f.scaled_dot_product_attention(q, k, v, is_causal=True)),
    case("attn-cross", QKV_CROSS, lambda f, q, k, v: f.scaled_dot_product_attention(q, k, v)),
    case("attn-causal-cross", QKV_CROSS, lambda f, q, k, v: f.scaled_dot_product_attention(q, k, v, is_causal=True)),
    case("attn-causal-tq>tk", [(2, 5, 4), (2, 3, 4), (2, 3, 4)],
         lambda f, q, k, v: f.scaled_dot_product_attention(q, k, v, is_causal=True)),
    case("attn-bool-mask", QKV_CROSS,
         lambda f, q, k, v: f.scaled_dot_product_attention(q, k, v, attn_mask=const(f, BOOL_MASK))),
    case("attn-batch-bool-mask", QKV_CROSS,
         lambda f, q, k, v: f.scaled_dot_product_attention(q, k, v, attn_mask=const(f, BATCH_MASK))),
    case("attn-float-mask", QKV_CROSS,
         lambda f, q, k, v: f.scaled_dot_product_attention(q, k, v, attn_mask=const(f, FLOAT_MASK, like=q))),
    case("attn-scale", QKV_CROSS, lambda f, q, k, v: f.scaled_dot_product_attention(q, k, v, scale=np.float64(0.3))),
    case("attn-kv-broadcast-heads", [(2, 2, 3, 4), (2, 1, 5, 4), (2, 1, 5, 2)],
         lambda f, q, k, v: f.scaled_dot_product_attention(q, k, v, is_causal=True)),
    case("attn-dropout", QKV_CROSS, lambda f, q, k, v: f.scaled_dot_product_attention(q, k, v, dropout_p=0.4),
         seed=3, torch=False),
    case("attn-dropout-causal", QKV_SELF,
         lambda f, q, k, v: f.scaled_dot_product_attention(q, k, v, dropout_p=0.2, is_causal=True),
         seed=5, torch=False),
    *[case(f"gelu-{a}", [(3, 7)], lambda f, x, a=a: f.gelu(3 * x, approximate=a)) for a in ("none", "tanh")],
    *[case(f"ce-probabilities-{r}", [(5, 4), (5, 4)],
           lambda f, x, p, r=r: f.cross_entropy(x, p.exp(), reduction=r, label_smoothing=0.2))
      for r in ("mean", "sum", "none")],
    case("ce-probabilities-3d", [(2, 4, 3), (2, 4, 3)], lambda f, x, p: f.cross_entropy(x, p.softmax(1))),
    *[case(f"ce-class-weights-{r}-smoothing{e}", [(5, 4)], lambda f, x, r=r, e=e: f.cross_entropy(
        x, const(f, T_2D), const(f, W_4, like=x), reduction=r, label_smoothing=e), fused=False)
      for r in ("mean", "sum", "none") for e in (0.0, 0.3)],
    case("ce-class-weights-3d-probabilities", [(2, 4, 3), (2, 4, 3)],
         lambda f, x, p: f.cross_entropy(x, p.softmax(1), const(f, W_4, like=x), label_smoothing=0.1), fused=False),
    case("nll-class-weights-3d", [(2, 4, 3)],
         lambda f, x: f.nll_loss(x, const(f, T_3D), const(f, W_4, like=x)), fused=False),
    *[case(f"bce-{r}", [(3, 4), (3, 4)],
           lambda f, x, y, r=r: f.binary_cross_entropy(x.sigmoid(), y.sigmoid(), const(f, W_4, like=x), reduction=r))
      for r in ("mean", "sum", "none")],
    case("bce-logits", [(3, 4), (3, 4)], lambda f, x, y: f.binary_cross_entropy_with_logits(4 * x, y.sigmoid())),
    case("bce-logits-weights", [(3, 4), (3, 4)], lambda f, x, y: f.binary_cross_entropy_with_logits(
        4 * x, y.sigmoid(), const(f, W_4, like=x), reduction="none", pos_weight=const(f, 2 * W_4, like=x))),
    case("silu", [(3, 7)], lambda f, x: f.silu(3 * x)),
    case("softplus", [(3, 7)], lambda f, x: f.softplus(3 * x, beta=1.5, threshold=2.5)),
    case("logsigmoid", [(3, 7)], lambda f, x: f.logsigmoid(30 * x)),
    case("bn-training", [(4, 3, 5), (3,), (3,)],
         lambda f, x, w, b: f.batch_norm(x, None, None, w, b, training=True, eps=0.1)),
    case("bn-training-2d-plain", [(6, 3)], lambda f, x: f.batch_norm(x, None, None, training=True)),
    case("bn-running", [(4, 3, 5), (3,), (3,)],
         lambda f, x, w, b: f.batch_norm(x, const(f, W_4[:3], like=x), const(f, W_4[1:], like=x), w, b)),
    case("conv1d", [(2, 3, 7), (4, 3, 3), (4,)], lambda f, x, w, b: f.conv1d(x, w, b)),
    case("conv1d-strided-dilated-grouped", [(2, 4, 11), (6, 2, 3), (6,)],
         lambda f, x, w, b: f.conv1d(x, w, b, stride=3, padding=2, dilation=2, groups=2)),
    case("conv1d-same-nobias", [(2, 3, 6), (2, 3, 5)], lambda f, x, w: f.conv1d(x, w, padding="same")),
    *[case(f"pad-{mode}", [(2, 3, 4)], lambda f, x, mode=mode, p=p: f.pad(x, p, mode=mode))
      for mode, p in (("constant", (2, -1, 1, 1)), ("reflect", (3, 1)), ("replicate", (2, 3, 0, 4)),
                      ("circular", (4, 2)))],
    case("dropout", [(4, 5)], lambda f, x: f.dropout(x, 0.3), seed=0, torch=False),
    case("dropout-3d", [(2, 3, 4)], lambda f, x: f.dropout(x, 0.5, training=True), seed=1, torch=False),
]


def ours(c, arrays, fused=True):
    """(value, input gradients, upstream gradient) of case `c` on our side, backward from a random upstream."""
    xs = [tensor(a) for a in arrays]
    with F.fused(fused):
        out = c(F, *xs)
    upstream = np.random.default_rng(1).standard_normal(out.shape).astype(out.dtype)
    out.backward(upstream)
    return out, [x.grad for x in xs], upstream


# ---------------------------------------------------------------- 1. gradients against central differences

@pytest.mark.parametrize("c", CASES)
def test_gradcheck(c):
    report = gradcheck(lambda *xs: c(F, *xs), [tensor(a) for a in c.arrays()])
    assert report.passed and len(report.rows) == len(c.shapes)


# ---------------------------------------------------------------- 2. fused against composed

@pytest.mark.parametrize("c", [p for p in CASES if p.values[0].fused])
def test_fused_matches_composed(c):
    fused_out, fused_grads, _ = ours(c, c.arrays(), fused=True)
    composed_out, composed_grads, _ = ours(c, c.arrays(), fused=False)
    # the switch took effect: the fused result comes from one functional.py node, the composed one from a primitive
    fused_module, composed_module = (type(o._ctx).__module__.split(".")[-1] for o in (fused_out, composed_out))
    assert fused_module == "functional" and composed_module in ("ops", "movement", "reductions")
    np.testing.assert_allclose(fused_out.detach().numpy(), composed_out.detach().numpy(), rtol=1e-12, atol=1e-14)
    for i, (a, b) in enumerate(zip(fused_grads, composed_grads)):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-12, atol=1e-13, err_msg=f"input {i}")


# ---------------------------------------------------------------- 3. against PyTorch

@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("c", [p for p in CASES if p.values[0].torch])
def test_matches_torch(c, dtype, torch):
    arrays = c.arrays(dtype)
    out, grads, upstream = ours(c, arrays)
    xs = [torch_tensor(torch, a) for a in arrays]
    expected = c(torch.nn.functional, *xs)
    expected.backward(torch.as_tensor(upstream))
    tol = tolerances(dtype)
    np.testing.assert_allclose(out.detach().numpy(), expected.detach().numpy(), **tol)
    for i, (g, x) in enumerate(zip(grads, xs)):
        np.testing.assert_allclose(g.numpy(), x.grad.numpy(), **tol, err_msg=f"input {i}")


# ---------------------------------------------------------------- 7. float32 stays float32

@pytest.mark.parametrize("c", CASES)
def test_float32_in_float32_out(c):
    out, grads, _ = ours(c, c.arrays(np.float32))
    assert out.dtype == np.float32
    assert [g.dtype for g in grads] == [np.float32] * len(grads)
    assert np.isfinite(out.detach().numpy()).all()


# ---------------------------------------------------------------- 4. a query that may attend to nothing

@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_fully_masked_attention_row_is_zero_with_finite_gradients(dtype):
    mask = BOOL_MASK.copy()
    mask[1] = False                                   # query 1 may attend to no key
    c = Case(QKV_CROSS, lambda f, q, k, v: f.scaled_dot_product_attention(q, k, v, attn_mask=mask))
    out, grads, _ = ours(c, c.arrays(dtype))
    assert np.all(out.detach().numpy()[..., 1, :] == 0) and np.all(np.abs(out.detach().numpy()[..., [0, 2], :]) > 0)
    assert all(np.isfinite(g.numpy()).all() for g in grads)
    assert np.all(grads[0].numpy()[..., 1, :] == 0)   # the masked query has no influence
    # the other rows are those of the same attention without the dead query
    keep = Case(QKV_CROSS, lambda f, q, k, v: f.scaled_dot_product_attention(q[..., [0, 2], :], k, v,
                                                                              attn_mask=mask[[0, 2]]))
    np.testing.assert_allclose(out.detach().numpy()[..., [0, 2], :], ours(keep, c.arrays(dtype))[0].detach().numpy(),
                               **tolerances(dtype))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_row_max_from_minus_infinity_is_numpys_max(dtype):
    """Softmax and attention take each row's max starting from -inf (NumPy runs it faster so): the same numbers as
    a plain max along every axis, for rows all -inf (a fully masked row), with NaN, with infinities, of zeros."""
    rows = np.random.default_rng(0).standard_normal((5, 6, 7)).astype(dtype)
    rows[0] = -np.inf
    rows[1, :, 3] = np.nan
    rows[2, :, 1:3] = (np.inf, -np.inf)
    rows[3] = -0.0
    for axis in range(rows.ndim):
        row_max = F._row_max(rows, axis)
        np.testing.assert_array_equal(row_max, rows.max(axis=axis, keepdims=True))
        assert row_max.dtype == dtype


# ---------------------------------------------------------------- non-differentiable arguments in every form

def test_targets_and_masks_accept_arrays_tensors_and_lists():
    r = np.random.default_rng(0)
    logits, q = Tensor(r.standard_normal((5, 4))), Tensor(r.standard_normal((2, 3, 4)))
    losses = [F.cross_entropy(logits, t).item() for t in (T_2D, Tensor(T_2D), T_2D.tolist())]
    assert losses[0] == losses[1] == losses[2]
    mask = np.tril(np.ones((3, 3), dtype=bool))
    outs = [F.scaled_dot_product_attention(q, q, q, attn_mask=m).numpy() for m in (mask, Tensor(mask), mask.tolist())]
    causal = F.scaled_dot_product_attention(q, q, q, is_causal=True).numpy()
    assert all(np.array_equal(o, causal) for o in outs)
    x = Tensor(np.random.default_rng(1).standard_normal((3, 5)))
    assert np.array_equal(F.layer_norm(x, 5).numpy(), F.layer_norm(x, (5,)).numpy())


# ---------------------------------------------------------------- 5. dropout

@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("p, training", [(0.0, True), (0.0, False), (0.5, False), (0.9, False)])
def test_dropout_identity_when_off(p, training, fused):
    x = tensor(np.random.default_rng(0).standard_normal((3, 4)))
    engine_rng.manual_seed(0)
    draws_before = engine_rng.get_state()
    with F.fused(fused):
        assert F.dropout(x, p, training=training) is x
    assert engine_rng.get_state() == draws_before   # no random numbers drawn


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_dropout_statistics(p, fused):
    x = np.random.default_rng(0).standard_normal((400, 500)) + 1.0
    engine_rng.manual_seed(0)
    with F.fused(fused):
        y = F.dropout(Tensor(x), p).numpy()
    kept = y != 0
    assert abs(kept.mean() - (1 - p)) < 0.01
    np.testing.assert_allclose(y[kept], x[kept] / (1 - p), rtol=1e-12)   # survivors scaled by 1/(1-p)
    assert abs(y.mean() - x.mean()) < 0.05                               # expectation preserved


def test_dropout_seed_decides_the_mask():
    x = Tensor(np.ones((50, 50)))
    masks = []
    for seed in (0, 0, 1):
        engine_rng.manual_seed(seed)
        masks.append(F.dropout(x, 0.5).numpy() != 0)
    assert np.array_equal(masks[0], masks[1]) and not np.array_equal(masks[0], masks[2])


@pytest.mark.parametrize("p", [-0.1, 1.0, 1.5])
def test_dropout_invalid_p_raises(p):
    x = Tensor(np.ones((2, 3, 4)))
    with pytest.raises(ValueError, match="dropout"):
        F.dropout(x, p)
    with pytest.raises(ValueError, match="dropout"):
        F.dropout(x, p, training=False)
    with pytest.raises(ValueError, match="scaled_dot_product_attention.*dropout_p"):
        F.scaled_dot_product_attention(x, x, x, dropout_p=p)


# ---------------------------------------------------------------- 6. errors naming the op and the shapes

def _ones(*shape):
    return Tensor(np.ones(shape))


ERRORS = [
    ("ce-target-too-big", lambda: F.cross_entropy(_ones(3, 4), np.array([0, 4, 1])), IndexError,
     ["cross_entropy", "target 4", "4 classes"]),
    ("ce-target-negative", lambda: F.cross_entropy(_ones(3, 4), np.array([0, -1, 1])), IndexError,
     ["cross_entropy", "target -1"]),
    ("ce-float-targets", lambda: F.cross_entropy(_ones(3, 4), np.array([0.0, 1.0, 2.0])), ValueError,
     ["cross_entropy", "float targets are class probabilities", "(3, 4)", "(3,)"]),
    ("ce-bool-targets", lambda: F.cross_entropy(_ones(3, 4), np.array([True, False, True])), TypeError,
     ["cross_entropy", "integer class indices", "bool"]),
    ("ce-shape-mismatch", lambda: F.cross_entropy(_ones(3, 4), np.array([0, 1])), ValueError,
     ["cross_entropy", "(3, 4)", "(2,)"]),
    ("ce-3d-shape-mismatch", lambda: F.cross_entropy(_ones(2, 4, 3), np.zeros((2, 4), dtype=int)), ValueError,
     ["cross_entropy", "(2, 4, 3)", "(2, 4)"]),
    ("ce-bad-reduction", lambda: F.cross_entropy(_ones(3, 4), np.array([0, 1, 2]), reduction="avg"), ValueError,
     ["cross_entropy", "'avg'"]),
    ("ln-weight-shape", lambda: F.layer_norm(_ones(2, 5), (5,), _ones(4)), ValueError, ["layer_norm", "(4,)", "(5,)"]),
    ("ln-bias-shape", lambda: F.layer_norm(_ones(2, 5), 5, _ones(5), _ones(5, 1)), ValueError,
     ["layer_norm", "bias", "(5, 1)", "(5,)"]),
    ("ln-input-shape", lambda: F.layer_norm(_ones(2, 5), (2, 4)), ValueError, ["layer_norm", "(2, 5)", "(2, 4)"]),
    ("linear-in-features", lambda: F.linear(_ones(3, 4), _ones(5, 3)), ValueError, ["linear", "(3, 4)", "(5, 3)"]),
    ("linear-weight-1d", lambda: F.linear(_ones(3, 4), _ones(4)), ValueError, ["linear", "(3, 4)", "(4,)"]),
    ("linear-bias-shape", lambda: F.linear(_ones(3, 4), _ones(5, 4), _ones(1)), ValueError,
     ["linear", "bias", "(1,)", "(5, 4)"]),
    ("attn-head-dim", lambda: F.scaled_dot_product_attention(_ones(2, 3, 4), _ones(2, 5, 3), _ones(2, 5, 3)),
     ValueError, ["scaled_dot_product_attention", "(2, 3, 4)", "(2, 5, 3)"]),
    ("attn-kv-length", lambda: F.scaled_dot_product_attention(_ones(2, 3, 4), _ones(2, 5, 4), _ones(2, 6, 4)),
     ValueError, ["scaled_dot_product_attention", "(2, 5, 4)", "(2, 6, 4)"]),
    ("gelu-approximate", lambda: F.gelu(_ones(3), approximate="fast"), ValueError, ["gelu", "'fast'"]),
    ("ce-label-smoothing", lambda: F.cross_entropy(_ones(3, 4), np.array([0, 1, 2]), label_smoothing=1.5),
     ValueError, ["cross_entropy", "label_smoothing", "1.5"]),
    ("ce-negative-label-smoothing", lambda: F.cross_entropy(_ones(3, 4), np.array([0, 1, 2]), label_smoothing=-0.1),
     ValueError, ["cross_entropy", "label_smoothing", "-0.1"]),
    ("mse-shape-mismatch", lambda: F.mse_loss(_ones(3, 1), _ones(3)), ValueError, ["mse_loss", "(3, 1)", "(3,)"]),
    ("mse-bad-reduction", lambda: F.mse_loss(_ones(3), _ones(3), reduction="avg"), ValueError, ["mse_loss", "'avg'"]),
    ("mse-integer-target", lambda: F.mse_loss(_ones(3), np.array([1, 2, 3])), TypeError, ["mse_loss", "int64"]),
    ("mse-dtype-mismatch", lambda: F.mse_loss(_ones(3), np.ones(3, np.float32)), TypeError,
     ["mse_loss", "float64", "float32"]),
    ("one-hot-float", lambda: F.one_hot(_ones(3)), TypeError, ["one_hot", "float64"]),
    ("one-hot-too-big", lambda: F.one_hot(np.array([0, 3]), 3), IndexError, ["one_hot", "class 3", "num_classes=3"]),
    ("one-hot-negative", lambda: F.one_hot(np.array([0, -1])), IndexError, ["one_hot", "class -1"]),
    ("one-hot-empty", lambda: F.one_hot(np.zeros(0, dtype=np.int64)), ValueError, ["one_hot", "empty", "(0,)"]),
    ("one-hot-num-classes", lambda: F.one_hot(np.array([0]), 0), ValueError, ["one_hot", "num_classes", "0"]),
    ("softmax-method-dim", lambda: _ones(2, 3).softmax(2), ValueError, ["softmax", "axis 2", "2 axes"]),
    ("log-softmax-method-dim", lambda: _ones(2, 3).log_softmax(-3), ValueError, ["log_softmax", "axis -3"]),
]


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("call, error, words", [pytest.param(*e[1:], id=e[0]) for e in ERRORS])
def test_clear_errors(call, error, words, fused):
    """The same clear error whichever implementation runs: the arguments are checked before dispatch."""
    with F.fused(fused):
        assert_raises_naming(call, error, words)


# ---------------------------------------------------------------- 8. relu, one_hot, label smoothing, softmax methods

def test_relu_gradcheck_and_torch(torch):
    x = np.random.default_rng(0).standard_normal((4, 5))
    x[np.abs(x) < 0.1] = 0.5                                  # keep central differences away from the kink at 0
    assert gradcheck(F.relu, [tensor(x)]).passed
    ours, theirs = tensor(x), torch_tensor(torch, x)
    F.relu(ours).backward(np.arange(20.0).reshape(4, 5))
    torch.nn.functional.relu(theirs).backward(torch.arange(20.0, dtype=torch.float64).reshape(4, 5))
    np.testing.assert_array_equal(F.relu(ours).detach().numpy(), torch.nn.functional.relu(theirs).detach().numpy())
    np.testing.assert_array_equal(ours.grad.numpy(), theirs.grad.numpy())


@pytest.mark.parametrize("indices, num_classes", [([3, 0, 1], -1), ([[0, 2], [1, 1]], 4), ([2], 3), (5, -1)])
def test_one_hot_matches_torch(indices, num_classes, torch):
    array = np.array(indices)
    for given in (array, Tensor(array)):
        out = F.one_hot(given, num_classes)
        assert out.dtype == np.int64 and not out.requires_grad
        np.testing.assert_array_equal(out.numpy(), torch.nn.functional.one_hot(torch.tensor(array), num_classes))


def test_label_smoothing_is_the_loss_against_the_smoothed_target():
    """PyTorch's definition written out: the cross-entropy against q = (1-ε) onehot + ε/C, mean over kept rows."""
    logits = np.random.default_rng(0).standard_normal((5, 4))
    eps, keep = 0.25, T_2D != -100
    q = (1 - eps) * np.eye(4)[np.where(keep, T_2D, 0)] + eps / 4                    # (5, 4)
    log_p = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    expected = -(q * log_p).sum(axis=1)[keep].mean()
    for fused in (True, False):
        with F.fused(fused):
            loss = F.cross_entropy(Tensor(logits), T_2D, label_smoothing=eps).item()
        assert abs(loss - expected) < 1e-12 * abs(expected)
    unsmoothed = F.cross_entropy(Tensor(logits), T_2D).item()
    assert abs(F.cross_entropy(Tensor(logits), T_2D, label_smoothing=0.0).item() - unsmoothed) == 0


def test_softmax_methods_are_the_fused_ops():
    x = tensor(np.random.default_rng(0).standard_normal((2, 3, 4)))
    for dim in (0, 1, -1):
        for method, function in (("softmax", F.softmax), ("log_softmax", F.log_softmax)):
            out = getattr(x, method)(dim)
            np.testing.assert_array_equal(out.detach().numpy(), function(x, dim).detach().numpy())
            assert type(out._ctx) is {"softmax": F.SoftmaxOp, "log_softmax": F.LogSoftmaxOp}[method]
    np.testing.assert_array_equal(x.softmax(dim=1).detach().numpy(), F.softmax(x, 1).detach().numpy())


def test_label_smoothing_on_the_gpu_bypasses_the_kernel_and_equals_the_cpu():
    """The cross-entropy kernel has no smoothing: with label_smoothing > 0 the op's array code runs on CuPy."""
    from tinygrad_llm.engine import backend
    try:
        backend.module_for("cuda")
    except RuntimeError as e:
        pytest.skip(f"no usable GPU: {e}")
    logits = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)
    results = {}
    for device in ("cpu", "cuda"):
        x = Tensor(logits, device=device, requires_grad=True)
        loss = F.cross_entropy(x, Tensor(T_2D, device=device), label_smoothing=0.2)
        loss.backward()
        results[device] = loss, x.grad.numpy()
    assert type(results["cuda"][0]._ctx) is F.CrossEntropyOp
    np.testing.assert_allclose(results["cuda"][0].item(), results["cpu"][0].item(), rtol=1e-6)
    np.testing.assert_allclose(results["cuda"][1], results["cpu"][1], rtol=1e-6, atol=1e-7)


def test_float32_normal_cdf_of_exact_gelu_is_within_3e_7_of_the_true_cdf():
    """The exact GELU's gate in float32 comes from erfc's rational form, not from erf (functional._normal_cdf):
    against Φ in float64 (math.erf) it is off by under 3e-7 on a fine grid out to ±12, keeps 0-d shapes, and is
    exact at 0 and ±inf."""
    import math
    x = np.concatenate([np.linspace(-12, 12, 200_001), [0.0, -0.0, 1e-30, -1e-30]]).astype(np.float32)
    true = np.array([0.5 * (1 + math.erf(v / math.sqrt(2))) for v in x.astype(np.float64)])
    cdf = F._normal_cdf(x)
    assert cdf.dtype == np.float32 and cdf.shape == x.shape
    assert np.abs(cdf.astype(np.float64) - true).max() < 3e-7
    assert F._normal_cdf(np.array([0.0, np.inf, -np.inf], np.float32)).tolist() == [0.5, 1.0, 0.0]
    assert np.isnan(F._normal_cdf(np.array([np.nan], np.float32))).all()
    scalar = F._normal_cdf(np.array(1.0, np.float32))
    assert scalar.shape == () and abs(float(scalar) - 0.5 * (1 + math.erf(1 / math.sqrt(2)))) < 3e-7
    np.testing.assert_allclose(F.gelu(Tensor(x), approximate="none").numpy(), x * true, rtol=0, atol=3e-7 * 12)


def test_tanh_gelu_far_out_is_exact_and_silent():
    """The tanh GELU's gate is 1/(1 + e^(-2u)): for x far below 0, e^(-2u) overflows to inf and the gate is exactly
    0, with no overflow warning reaching the user; far above 0 the gate is exactly 1."""
    import warnings
    x = Tensor(np.array([-1e4, -100.0, -12.0, 12.0, 100.0], np.float32), requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = F.gelu(x, approximate="tanh")
        y.sum().backward()
    assert y.tolist()[:2] == [0.0, 0.0] and y.tolist()[3:] == [12.0, 100.0]
    assert x.grad.numpy().tolist() == [0.0, 0.0, 0.0, 1.0, 1.0]


# ---------------------------------------------------------------- 9. edges of the newer functions, against PyTorch

def _with_torch(torch, our_call, their_call, *arrays):
    """(our value, our input gradients, torch's value, torch's input gradients) of a scalar loss."""
    ours, theirs = [tensor(a) for a in arrays], [torch_tensor(torch, a) for a in arrays]
    out, expected = our_call(*ours), their_call(*theirs)
    out.backward()
    expected.backward()
    return out.item(), [x.grad.numpy() for x in ours], expected.item(), [x.grad.numpy() for x in theirs]


@pytest.mark.filterwarnings("ignore:divide by zero", "ignore:invalid value")   # the composed twin's log 0
@pytest.mark.parametrize("fused", [True, False])
def test_binary_cross_entropy_at_0_and_1_is_pytorchs(fused, torch):
    """log 0 clamped at -100 in the loss; the input's gradient (x - y)/max(x(1-x), 1e-12), finite, as PyTorch.
    (The composed twin's gradient is the clamp's 0 there: only the loss is compared for it.)"""
    x, y = np.array([0.0, 1.0, 0.0, 1.0, 0.5]), np.array([1.0, 0.0, 0.0, 1.0, 0.3])
    with F.fused(fused):
        loss, grads, expected, expected_grads = _with_torch(
            torch, lambda a, b: F.binary_cross_entropy(a, b, reduction="sum"),
            lambda a, b: torch.nn.functional.binary_cross_entropy(a, b, reduction="sum"), x, y)
    assert loss == pytest.approx(expected, rel=1e-15) and 200 < loss < 202      # two terms clamped at 100
    if fused:
        np.testing.assert_array_equal(grads[0], expected_grads[0])   # -1e12, 1e12, 0, 0, 0.8
        np.testing.assert_array_equal(grads[1], expected_grads[1])   # inf, -inf, inf, -inf, 0


def test_binary_cross_entropy_with_logits_far_out_is_exact(torch):
    """log(1 + e^-x) as log1p(e^-|x|) + max(-x, 0): no overflow for logits of ±1000, and PyTorch's numbers."""
    x, y = np.array([-1000.0, 1000.0, -30.0, 40.0, 0.0]), np.array([1.0, 0.0, 0.2, 1.0, 0.5])
    loss, grads, expected, expected_grads = _with_torch(
        torch, lambda a, b: F.binary_cross_entropy_with_logits(a, b, reduction="sum"),
        lambda a, b: torch.nn.functional.binary_cross_entropy_with_logits(a, b, reduction="sum"), x, y)
    assert loss == pytest.approx(expected, rel=1e-15)
    for ours, theirs in zip(grads, expected_grads):
        np.testing.assert_allclose(ours, theirs, rtol=1e-15, atol=0)


@pytest.mark.parametrize("shape", [(5,), (2, 5), (2, 3, 4), (2, 3, 4, 5)])
def test_softmax_without_dim_takes_pytorchs_implicit_dim_with_its_warning(shape, torch):
    x = np.random.default_rng(0).standard_normal(shape)
    for name in ("softmax", "log_softmax"):
        with pytest.warns(UserWarning, match=f"{name}: implicit dimension choice"):
            ours = getattr(F, name)(Tensor(x)).numpy()
        with pytest.warns(UserWarning):
            theirs = getattr(torch.nn.functional, name)(torch.tensor(x)).numpy()
        np.testing.assert_allclose(ours, theirs, **tolerances(np.float64))


def test_torch_softmax_and_the_method_need_dim_as_pytorchs(torch):
    """torch.softmax(x, dim, dtype) and x.softmax(dim) (log_softmax too) give F's numbers; without dim they are
    refused, as in PyTorch (F's implicit choice is F's alone)."""
    x = np.random.default_rng(0).standard_normal((2, 3, 4))
    for name in ("softmax", "log_softmax"):
        for ours, theirs in ((getattr(tl, name)(Tensor(x), 1), getattr(torch, name)(torch.tensor(x), 1)),
                             (getattr(Tensor(x), name)(dim=-1), getattr(torch.tensor(x), name)(dim=-1)),
                             (getattr(tl, name)(Tensor(x), -1, tl.float32), getattr(torch, name)(torch.tensor(x), -1,
                                                                                                  torch.float32))):
            assert ours.dtype == theirs.numpy().dtype
            np.testing.assert_allclose(ours.numpy(), theirs.numpy(), **tolerances(ours.dtype))
        for missing in (lambda: getattr(tl, name)(Tensor(x)), lambda: getattr(Tensor(x), name)(),
                        lambda: getattr(Tensor(x), name)(None)):
            with pytest.raises(TypeError, match=f"{name}\\(\\).*dim"):
                missing()
        with pytest.raises(TypeError):
            getattr(torch.tensor(x), name)()


@pytest.mark.parametrize("shape, dim", [((3, 0), -1), ((0, 3), 0), ((2, 0, 4), 1)])
def test_softmax_along_a_length_0_axis_is_empty_without_warnings(shape, dim, torch):
    """As PyTorch: an empty result and an empty gradient, and no NumPy warning about the log of an empty sum."""
    for name in ("softmax", "log_softmax"):
        x = Tensor(np.zeros(shape, np.float32), requires_grad=True)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            y = getattr(F, name)(x, dim=dim)
            y.sum().backward()
        theirs = getattr(torch, name)(torch.zeros(shape), dim)
        assert y.shape == tuple(theirs.shape) and x.grad.shape == shape


def test_softmax_dtype_casts_first(torch):
    x = np.arange(6).reshape(2, 3)
    ours = F.softmax(Tensor(x), dim=1, dtype=np.float64)
    assert ours.dtype == np.float64
    np.testing.assert_allclose(ours.numpy(), torch.softmax(torch.tensor(x), 1, dtype=torch.float64).numpy(),
                               **tolerances(np.float64))


@pytest.mark.parametrize("size_average, reduce", [(None, False), (False, None), (True, True), (False, True)])
def test_legacy_size_average_and_reduce_as_pytorch_reads_them(size_average, reduce, torch):
    x = np.random.default_rng(0).standard_normal((5, 4))
    with pytest.warns(UserWarning, match="cross_entropy: size_average and reduce are deprecated"):
        ours = F.cross_entropy(Tensor(x), T_2D, size_average=size_average, reduce=reduce).numpy()
    with pytest.warns(UserWarning):
        theirs = torch.nn.functional.cross_entropy(torch.tensor(x), torch.tensor(T_2D), size_average=size_average,
                                                   reduce=reduce).numpy()
    np.testing.assert_allclose(ours, theirs, **tolerances(np.float64))


@pytest.mark.parametrize("fused", [True, False])
def test_batch_norm_running_statistics_follow_pytorchs(fused, torch):
    """Three training steps update running_mean and running_var in place (momentum, the batch's unbiased
    variance), then eval normalises with them: each equal to PyTorch's."""
    r = np.random.default_rng(0)
    ours = [Tensor(np.zeros(3)), Tensor(np.ones(3))]
    theirs = [torch.zeros(3, dtype=torch.float64), torch.ones(3, dtype=torch.float64)]
    for step in range(3):
        x = r.standard_normal((4, 3, 2)) * (step + 1) + step
        with F.fused(fused):
            F.batch_norm(Tensor(x), *ours, training=True, momentum=0.2)
        torch.nn.functional.batch_norm(torch.tensor(x), *theirs, training=True, momentum=0.2)
        for mine, their in zip(ours, theirs):
            np.testing.assert_allclose(mine.numpy(), their.numpy(), **tolerances(np.float64))
    x = r.standard_normal((4, 3, 2))
    with F.fused(fused):
        out = F.batch_norm(Tensor(x), *ours)
    np.testing.assert_allclose(out.numpy(), torch.nn.functional.batch_norm(torch.tensor(x), *theirs).numpy(),
                               **tolerances(np.float64))


def test_batch_norm_update_counts_as_an_in_place_change():
    """A graph that saved the running mean cannot be walked back after a training step changed it."""
    running_mean, w = Tensor(np.zeros(3)), tensor(np.ones(3))
    y = (w * running_mean).sum()
    F.batch_norm(Tensor(np.random.default_rng(0).standard_normal((4, 3))), running_mean, None, training=True)
    with pytest.raises(RuntimeError, match="mul.backward: an array this op saved"):
        y.backward()


CONV1D_SETTINGS = [dict(), dict(stride=2), dict(padding=3), dict(dilation=3), dict(groups=3),
                   dict(stride=3, padding=2, dilation=2, groups=3), dict(padding="same", dilation=2),
                   dict(padding="valid", stride=4)]


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("settings", CONV1D_SETTINGS, ids=str)
def test_conv1d_settings_match_torch(settings, fused, torch):
    r = np.random.default_rng(0)
    x, w, b = r.standard_normal((2, 6, 13)), r.standard_normal((9, 6 // settings.get("groups", 1), 3)), \
        r.standard_normal(9)
    ours = [tensor(a) for a in (x, w, b)]
    theirs = [torch_tensor(torch, a) for a in (x, w, b)]
    with F.fused(fused):
        out = F.conv1d(*ours, **settings)
    expected = torch.nn.functional.conv1d(*theirs, **settings)
    upstream = r.standard_normal(out.shape)
    out.backward(upstream)
    expected.backward(torch.tensor(upstream))
    np.testing.assert_allclose(out.detach().numpy(), expected.detach().numpy(), **tolerances(np.float64))
    for mine, their in zip(ours, theirs):
        np.testing.assert_allclose(mine.grad.numpy(), their.grad.numpy(), **tolerances(np.float64))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_interpolate_reads_the_positions_pytorch_reads(dtype, torch):
    """Every output position reads the input positions PyTorch's reads (the nearest index computed in float32 as
    PyTorch computes it; the two neighbours and the weights of linear), over many lengths and scales: the nearest
    modes exactly, the linear ones within a few units of the last place (PyTorch's weighted sum may use fused
    multiply-adds)."""
    for n in range(1, 8):
        x = np.arange(n, dtype=dtype).reshape(1, 1, n) * 1.37 + 0.1
        for resize in [dict(size=m) for m in range(1, 14)] + [dict(scale_factor=s) for s in (0.3, 0.5, 1.3, 2.0,
                                                                                              2.5, 1 / 3, 4.1)]:
            for mode, align_corners in (("nearest", None), ("nearest-exact", None), ("linear", False),
                                        ("linear", True)):
                try:
                    theirs = torch.nn.functional.interpolate(torch.tensor(x), mode=mode, align_corners=align_corners,
                                                             **resize).numpy()
                except RuntimeError:               # an output of length 0
                    with pytest.raises(ValueError, match="interpolate: output sizes must be at least 1"):
                        F.interpolate(Tensor(x), mode=mode, align_corners=align_corners, **resize)
                    continue
                ours = F.interpolate(Tensor(x), mode=mode, align_corners=align_corners, **resize).numpy()
                assert ours.shape == theirs.shape and ours.dtype == theirs.dtype
                tolerance = 0 if mode != "linear" else 4 * np.finfo(dtype).eps
                np.testing.assert_allclose(ours, theirs, rtol=tolerance, atol=0,
                                           err_msg=f"{n} {resize} {mode} {align_corners}")
