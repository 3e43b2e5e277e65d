"""Tests for our CUDA kernels (kernels/layernorm.cu, cross_entropy.cu, gelu.cu, adamw.cu) through their launchers in
tinygrad_llm/engine/cuda/, each against its CPU twin: the fused op of engine.functional run in float64 on the
same float32 inputs, or the optimizer of tinygrad_llm.optim.

They need CuPy and a usable GPU: the `cp` fixture skips them cleanly otherwise. Only the import test runs everywhere.
Tolerance: |gpu - ref| <= 1e-4 + 1e-5·|ref| (float32 kernels against a float64 reference).
"""
import subprocess
import sys

import numpy as np
import pytest

import tinygrad_llm.engine.functional as F
from tinygrad_llm import Tensor
from tinygrad_llm.engine import backend
from tinygrad_llm.engine.cuda import adamw, cross_entropy, gelu, layernorm
from tinygrad_llm.optim import Adam, AdamW

TOL = dict(rtol=1e-5, atol=1e-4)
ROWS = (1, 37, 768)       # N for layer norm, M for cross-entropy: 1, not a multiple of 8 or 32, a GPT's B·T
COLS = (65, 100, 384)     # C or V: none a multiple of 32 but 384 (= 12·32); 65 is the Shakespeare vocabulary


@pytest.fixture(scope="module")
def cp():
    try:
        return backend.module_for("cuda")
    except RuntimeError as e:
        pytest.skip(f"no usable CUDA GPU: {e}")


def to_gpu(cp, array):
    return cp.asarray(np.ascontiguousarray(array, dtype=np.float32))


def assert_close(gpu, ref, what):
    np.testing.assert_allclose(gpu.get(), ref, err_msg=what, **TOL)


def test_launchers_import_without_cupy():
    """The launchers import CuPy lazily: importing them must not import it (this machine may have no GPU)."""
    code = ("import sys; import tinygrad_llm.engine.cuda.layernorm, tinygrad_llm.engine.cuda.cross_entropy, "
            "tinygrad_llm.engine.cuda.gelu, tinygrad_llm.engine.cuda.adamw; assert 'cupy' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


# ---------------------------------------------------------------- layer norm

def layer_norm_reference(x, w, b, dy, eps):
    """Values and gradients of functional.LayerNormOp in float64 on the same (float32) numbers."""
    xt = Tensor(x.astype(np.float64), requires_grad=True)
    wt = None if w is None else Tensor(w.astype(np.float64), requires_grad=True)
    bt = None if b is None else Tensor(b.astype(np.float64), requires_grad=True)
    y = F.layer_norm(xt, (x.shape[1],), wt, bt, eps=eps)
    y.backward(dy.astype(np.float64))
    x64 = x.astype(np.float64)
    mean = x64.mean(axis=1)
    rstd = 1 / np.sqrt(x64.var(axis=1) + eps)
    xhat = (x64 - mean[:, None]) * rstd[:, None]
    dw = (dy * xhat).sum(axis=0)   # the weight and bias gradients the kernel returns even without weight or bias
    db = dy.astype(np.float64).sum(axis=0)
    return y.data, mean, rstd, xt.grad.data, dw, db


@pytest.mark.parametrize("affine", ["weight+bias", "weight", "bias", "none"])
@pytest.mark.parametrize("n_cols", COLS)
@pytest.mark.parametrize("n_rows", ROWS)
def test_layernorm(cp, n_rows, n_cols, affine):
    rng = np.random.default_rng(n_rows * 1000 + n_cols)
    x = (3 + 2 * rng.standard_normal((n_rows, n_cols))).astype(np.float32)  # an offset: the two-pass variance
    w = (1 + 0.5 * rng.standard_normal(n_cols)).astype(np.float32) if "weight" in affine else None
    b = rng.standard_normal(n_cols).astype(np.float32) if "bias" in affine else None
    dy = rng.standard_normal((n_rows, n_cols)).astype(np.float32)
    eps = 1e-5
    ref_y, ref_mean, ref_rstd, ref_dx, ref_dw, ref_db = layer_norm_reference(x, w, b, dy, eps)

    gw = None if w is None else to_gpu(cp, w)
    gb = None if b is None else to_gpu(cp, b)
    y, mean, rstd = layernorm.forward(to_gpu(cp, x), gw, gb, eps)
    assert y.dtype == mean.dtype == rstd.dtype == np.float32
    assert_close(y, ref_y, "y")
    assert_close(mean, ref_mean, "mean")
    assert_close(rstd, ref_rstd, "rstd")

    dx, dw, db = layernorm.backward(to_gpu(cp, dy), to_gpu(cp, x), gw, mean, rstd, need_weight_grads=True)
    assert_close(dx, ref_dx, "dx")
    assert_close(dw, ref_dw, "dweight")
    assert_close(db, ref_db, "dbias")

    dx_only, no_dw, no_db = layernorm.backward(to_gpu(cp, dy), to_gpu(cp, x), gw, mean, rstd,
                                               need_weight_grads=False)
    assert no_dw is None and no_db is None
    assert_close(dx_only, ref_dx, "dx without weight grads")


@pytest.mark.parametrize("n_rows, n_cols", [(20000, 100), (37, 6200)])
def test_layernorm_many_rows_and_wide_rows(cp, n_rows, n_cols):
    """20000 rows: more than the backward grid covers at once, so warps stride over rows and each block flushes
    partial sums of many rows. 6200 columns: 2·C floats exceed 48 KiB, so dw/db go straight to global memory.

    dw and db add up 20000 float32 terms of either sign: their rounding error grows with Σ|term|, not with the
    result, which cancels to a much smaller number, and the usual tolerance can fail a correct float32 sum. So they
    get 1e-6·Σ|term| more (about 16 float32 ulps of that sum; a missed or doubled row is off by far more)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n_rows, n_cols)).astype(np.float32)
    w = (1 + 0.5 * rng.standard_normal(n_cols)).astype(np.float32)
    b = rng.standard_normal(n_cols).astype(np.float32)
    dy = rng.standard_normal((n_rows, n_cols)).astype(np.float32)
    ref_y, ref_mean, ref_rstd, ref_dx, ref_dw, ref_db = layer_norm_reference(x, w, b, dy, 1e-5)
    y, mean, rstd = layernorm.forward(to_gpu(cp, x), to_gpu(cp, w), to_gpu(cp, b), 1e-5)
    dx, dw, db = layernorm.backward(to_gpu(cp, dy), to_gpu(cp, x), to_gpu(cp, w), mean, rstd, True)
    assert_close(y, ref_y, "y")
    assert_close(dx, ref_dx, "dx")
    xhat = (x - ref_mean[:, None]) * ref_rstd[:, None]
    for name, got, ref, terms in (("dweight", dw, ref_dw, dy * xhat), ("dbias", db, ref_db, dy)):
        atol = TOL["atol"] + 1e-6 * np.abs(terms).sum(axis=0).max()
        np.testing.assert_allclose(got.get(), ref, rtol=TOL["rtol"], atol=atol, err_msg=name)


def test_layernorm_non_contiguous_input(cp):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((100, 37)).astype(np.float32)
    y, _, _ = layernorm.forward(to_gpu(cp, x.T.copy()).T, None, None, 1e-5)  # a transposed view
    assert_close(y, layer_norm_reference(x, None, None, np.zeros_like(x), 1e-5)[0], "y")


# ---------------------------------------------------------------- cross-entropy

def cross_entropy_case(n_rows, n_classes, ignore_index, seed=0):
    """Logits, targets with about every fifth row ignored, and random row gradients."""
    rng = np.random.default_rng(seed)
    logits = (3 * rng.standard_normal((n_rows, n_classes))).astype(np.float32)
    targets = rng.integers(0, n_classes, n_rows)
    targets[rng.random(n_rows) < 0.2] = ignore_index
    row_grads = rng.standard_normal(n_rows).astype(np.float32)
    return logits, targets, row_grads


def cross_entropy_reference(logits, targets, row_grads, ignore_index):
    """Per-row losses, row logsumexp and dlogits of functional.CrossEntropyOp in float64 (reduction 'none', so the
    incoming gradient is one number per row: row_grads)."""
    x = Tensor(logits.astype(np.float64), requires_grad=True)
    losses = F.cross_entropy(x, targets, ignore_index=ignore_index, reduction="none")
    losses.backward(row_grads.astype(np.float64))
    x64 = logits.astype(np.float64)
    row_max = x64.max(axis=1)
    lse = row_max + np.log(np.exp(x64 - row_max[:, None]).sum(axis=1))
    return losses.data, lse, x.grad.data


@pytest.mark.parametrize("n_classes", COLS)
@pytest.mark.parametrize("n_rows", ROWS)
def test_cross_entropy(cp, n_rows, n_classes):
    logits, targets, row_grads = cross_entropy_case(n_rows, n_classes, -100, seed=n_rows + n_classes)
    ref_losses, ref_lse, ref_dlogits = cross_entropy_reference(logits, targets, row_grads, -100)
    g_logits, g_targets = to_gpu(cp, logits), cp.asarray(targets)
    losses, lse = cross_entropy.forward(g_logits, g_targets, -100)
    assert_close(losses, ref_losses, "losses")
    assert_close(lse, ref_lse, "lse")
    dlogits = cross_entropy.backward(g_logits, g_targets, lse, to_gpu(cp, row_grads), -100)
    assert_close(dlogits, ref_dlogits, "dlogits")
    ignored = targets == -100
    assert (losses.get()[ignored] == 0).all() and (dlogits.get()[ignored] == 0).all()


def test_cross_entropy_gpt2_vocabulary_and_mean_reduction(cp):
    """V = 50257 (1024 threads per row, ~49 classes each), and row_grads built as the 'mean' reduction does."""
    logits, targets, _ = cross_entropy_case(37, 50257, -100)
    keep = targets != -100
    row_grads = (keep / keep.sum()).astype(np.float32)
    x = Tensor(logits.astype(np.float64), requires_grad=True)
    mean_loss = F.cross_entropy(x, targets)
    mean_loss.backward()
    g_logits, g_targets = to_gpu(cp, logits), cp.asarray(targets)
    losses, lse = cross_entropy.forward(g_logits, g_targets, -100)
    np.testing.assert_allclose(float(losses.sum()) / keep.sum(), float(mean_loss.data), **TOL)
    dlogits = cross_entropy.backward(g_logits, g_targets, lse, to_gpu(cp, row_grads), -100)
    assert_close(dlogits, x.grad.data, "dlogits")


def test_cross_entropy_other_ignore_index_and_int32_targets(cp):
    logits, targets, row_grads = cross_entropy_case(37, 100, 2, seed=3)
    ref_losses, _, ref_dlogits = cross_entropy_reference(logits, targets, row_grads, 2)
    g_logits, g_targets = to_gpu(cp, logits), cp.asarray(targets.astype(np.int32))
    losses, lse = cross_entropy.forward(g_logits, g_targets, 2)
    assert_close(losses, ref_losses, "losses")
    assert_close(cross_entropy.backward(g_logits, g_targets, lse, to_gpu(cp, row_grads), 2), ref_dlogits, "dlogits")


def test_cross_entropy_target_out_of_range_gives_nan(cp):
    logits = cp.zeros((3, 10), dtype=np.float32)
    losses, _ = cross_entropy.forward(logits, cp.asarray([1, 10, -1]), -100)
    result = losses.get()
    assert np.isclose(result[0], np.log(10)) and np.isnan(result[1]) and np.isnan(result[2])


# ---------------------------------------------------------------- GELU

@pytest.mark.parametrize("shape", [(1,), (37, 65), (768, 384), (3, 1024, 1000)])
def test_gelu(cp, shape):
    """(3, 1024, 1000): 3M elements, more than the 4096 blocks x 256 threads of the capped grid, so each thread
    loops."""
    rng = np.random.default_rng(len(shape))
    x = (3 * rng.standard_normal(shape)).astype(np.float32)
    dy = rng.standard_normal(shape).astype(np.float32)
    xt = Tensor(x.astype(np.float64), requires_grad=True)
    y_ref = F.gelu(xt, approximate="tanh")
    y_ref.backward(dy.astype(np.float64))
    y = gelu.forward(to_gpu(cp, x))
    assert y.shape == shape and y.dtype == np.float32
    assert_close(y, y_ref.data, "y")
    assert_close(gelu.backward(to_gpu(cp, x), to_gpu(cp, dy)), xt.grad.data, "dx")


# ---------------------------------------------------------------- AdamW

@pytest.mark.parametrize("optimizer, decoupled, weight_decay",
                         [(AdamW, True, 0.1), (AdamW, True, 0.0), (Adam, False, 0.1)])
def test_adamw_matches_optim_for_20_steps(cp, optimizer, decoupled, weight_decay):
    """Our kernel against tinygrad_llm.optim on the CPU, both in float32, same parameters and gradients, with the
    learning rate changing between steps (as a schedule would)."""
    rng = np.random.default_rng(0)
    shapes = [(37, 65), (100,), (3, 5000)]  # (3, 5000): 15000 elements, more than one block
    params = [Tensor(rng.standard_normal(s).astype(np.float32), requires_grad=True) for s in shapes]
    opt = optimizer(params, lr=1e-2, betas=(0.9, 0.999), eps=1e-8, weight_decay=weight_decay)
    gpu = [dict(p=to_gpu(cp, t.data), m=cp.zeros(t.shape, np.float32), v=cp.zeros(t.shape, np.float32))
           for t in params]
    for step in range(1, 21):
        lr = 1e-2 * (1 - step / 40)
        opt.param_groups[0]["lr"] = lr
        grads = [rng.standard_normal(s).astype(np.float32) for s in shapes]
        for t, g in zip(params, grads):
            t.grad = Tensor(g)
        opt.step()
        for t, g, state in zip(params, grads, gpu):
            adamw.step(state["p"], to_gpu(cp, g), state["m"], state["v"], lr=lr, beta1=0.9, beta2=0.999,
                       eps=1e-8, weight_decay=weight_decay, step=step, decoupled=decoupled)
            cpu_state = opt.state[id(t)]
            np.testing.assert_allclose(state["p"].get(), t.data, rtol=1e-5, atol=1e-7, err_msg=f"p, step {step}")
            np.testing.assert_allclose(state["m"].get(), cpu_state["exp_avg"], rtol=1e-5, atol=1e-7,
                                       err_msg=f"m, step {step}")
            np.testing.assert_allclose(state["v"].get(), cpu_state["exp_avg_sq"], rtol=1e-5, atol=1e-9,
                                       err_msg=f"v, step {step}")


# ---------------------------------------------------------------- errors

def test_errors_name_the_op(cp):
    x64 = cp.zeros((4, 8), dtype=np.float64)
    with pytest.raises(TypeError, match="layer_norm.*float32 only"):
        layernorm.forward(x64, None, None, 1e-5)
    with pytest.raises(ValueError, match=r"layer_norm.*weight has shape \(7,\)"):
        layernorm.forward(x64.astype(np.float32), cp.ones(7, np.float32), None, 1e-5)
    with pytest.raises(TypeError, match="gelu.*CuPy array"):
        gelu.forward(np.zeros(3, np.float32))
    with pytest.raises(TypeError, match="cross_entropy.*integer"):
        cross_entropy.forward(cp.zeros((2, 3), np.float32), cp.zeros(2, np.float32), -100)
    with pytest.raises(ValueError, match="adamw.*contiguous"):
        p = cp.zeros((4, 4), np.float32).T
        adamw.step(p, p, p, p, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0, step=1,
                   decoupled=True)
