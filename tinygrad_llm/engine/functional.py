"""Fused ops: one Function each, whose backward is derived by hand for the whole formula.

Built from primitives, softmax would be five graph nodes, each saving its own arrays; fused, it is one node that
saves one array and whose backward is one line of algebra, stated in its docstring and derived step by step in
docs/ (one page per op). Every op here has a twin in composed.py built from primitives only; the tests show both
give the same values and gradients, and `with fused(False):` makes these functions run the twins, so the two can
be compared anywhere (a whole GPT too).
On a CuPy array the public functions below hand the call to our CUDA kernels (cuda/fused.py) where one fits;
the Functions here are array code and run on CuPy too (cuda.loader.enabled = False forces that).

Names and argument order are PyTorch's (torch.nn.functional). Notation: `g` = dL/d(out).
"""
import math

import numpy as np

from . import backend, composed, rng
from .cuda.fused import CudaAttentionOp, CudaCrossEntropyOp, CudaGeluTanhOp, CudaLayerNormOp, kernels_wanted
from .ops import normalize_axes, relu, unbroadcast  # relu: F.relu (see the end)
from .reductions import reduce_row_losses, row_loss_grads
from .tensor import Function, Tensor

_use_fused = True


class fused:
    """`with fused(False):` runs the composed twins instead of the fused ops (the default is fused)."""

    def __init__(self, enabled):
        self.enabled = enabled

    def __enter__(self):
        global _use_fused
        self._previous, _use_fused = _use_fused, self.enabled

    def __exit__(self, *exc):
        global _use_fused
        _use_fused = self._previous


def _softmax_parts(x, axis):
    """(x - max, logsumexp of x) along `axis`, kept as a size-1 axis. Subtracting the row max first keeps exp
    from overflowing and changes nothing: softmax(x) = softmax(x - c) for any constant c."""
    xp = backend.xp(x)
    shifted = x - x.max(axis=axis, keepdims=True)
    return shifted, xp.log(xp.exp(shifted).sum(axis=axis, keepdims=True))


def _check_floating(op, *tensors):
    """Fused ops compute in floats only: an integer or bool input is an error naming the op (PyTorch's ops raise
    too; NumPy would silently compute in float64)."""
    for t in tensors:
        if t is not None and t.dtype.kind != "f":
            raise TypeError(f"{op}: needs floating inputs, got {t.dtype} {t.shape}; convert with .to(np.float32)")


def _row_sum(a, weight=1):
    """(..., M) -> (..., 1): each row's sum times `weight`, as a matrix-vector product with a column of `weight`s.
    BLAS does this several times faster than NumPy's reduction along a short last axis (attention's rows of T,
    layer norm's rows of C)."""
    return a @ backend.xp(a).full((a.shape[-1], 1), weight, dtype=a.dtype)


# ---------------------------------------------------------------- linear

def _check_linear_shapes(x, weight, bias):
    """Checked before dispatch, so the composed twin gets the same error (and never broadcasts a wrong bias)."""
    if weight.ndim != 2 or x.shape[-1:] != weight.shape[1:]:
        raise ValueError(f"linear: input {x.shape} does not fit weight {weight.shape} (expected (out, {x.shape[-1]}))")
    if bias is not None and bias.shape != weight.shape[:1]:
        raise ValueError(f"linear: bias has shape {bias.shape}, expected ({weight.shape[0]},) for weight {weight.shape}")


class LinearOp(Function):
    """y = x @ Wᵀ + b.   x (..., in), W (out, in), b (out,) -> y (..., out)
    dx = g @ W;   dW = gᵀ @ x summed over all leading axes;   db = g summed over all leading axes.
    The leading axes are flattened into one, N = B·T rows: one large matmul runs several times faster than a
    batch of small ones (docs/matmul.md)."""

    def forward(ctx, x, weight, bias=None):
        ctx.lead = x.shape[:-1]
        x2 = x.reshape(math.prod(ctx.lead), x.shape[-1])          # (N, in); N named: -1 is ambiguous when in = 0
        ctx.save_for_backward(x2, weight)
        y = x2 @ weight.T                                         # (N, out)
        if bias is not None:
            y += bias
        return y.reshape(ctx.lead + (weight.shape[0],))           # (..., out)

    def backward(ctx, g):
        x2, weight = ctx.saved
        g2 = g.reshape(math.prod(ctx.lead), g.shape[-1])          # (N, out)
        dx = (g2 @ weight).reshape(ctx.lead + (weight.shape[1],)) if ctx.needs_input_grad[0] else None  # (..., in)
        dw = g2.T @ x2 if ctx.needs_input_grad[1] else None       # (out, in)
        db = g2.sum(axis=0) if ctx.needs_input_grad[2] else None  # (out,)
        return dx, dw, db


def linear(x, weight, bias=None):
    """x (..., in), weight (out, in), bias (out,) or None -> (..., out)"""
    _check_floating("linear", x, weight, bias)
    _check_linear_shapes(x, weight, bias)
    if not _use_fused:
        return composed.linear(x, weight, bias)
    return LinearOp.apply(x, weight, bias)


# ---------------------------------------------------------------- softmax, log_softmax

class SoftmaxOp(Function):
    """y_i = e^(x_i) / sum_j e^(x_j) along `dim`.
    dy_i/dx_k = y_i (δ_ik - y_k), so  dx_k = sum_i g_i y_i (δ_ik - y_k) = y_k (g_k - sum_i g_i y_i)."""

    def forward(ctx, x, dim=-1):
        shifted, lse = _softmax_parts(x, dim)
        y = backend.xp(x).exp(shifted - lse)
        ctx.dim = dim
        ctx.save_for_backward(y)
        return y

    def backward(ctx, g):
        (y,) = ctx.saved
        return y * (g - (g * y).sum(axis=ctx.dim, keepdims=True))


def softmax(x, dim=-1):
    _check_floating("softmax", x)
    dim = normalize_axes("softmax", dim, x.ndim)[0]
    if not _use_fused:
        return composed.softmax(x, dim)
    return SoftmaxOp.apply(x, dim=dim)


class LogSoftmaxOp(Function):
    """y_i = x_i - log sum_j e^(x_j) along `dim`.
    dy_i/dx_k = δ_ik - softmax_k, so  dx_k = g_k - softmax_k * sum_i g_i."""

    def forward(ctx, x, dim=-1):
        shifted, lse = _softmax_parts(x, dim)
        y = shifted - lse
        ctx.dim = dim
        ctx.save_for_backward(y)
        return y

    def backward(ctx, g):
        (y,) = ctx.saved
        return g - backend.xp(y).exp(y) * g.sum(axis=ctx.dim, keepdims=True)


def log_softmax(x, dim=-1):
    _check_floating("log_softmax", x)
    dim = normalize_axes("log_softmax", dim, x.ndim)[0]
    if not _use_fused:
        return composed.log_softmax(x, dim)
    return LogSoftmaxOp.apply(x, dim=dim)


# ---------------------------------------------------------------- cross-entropy

def _check_reduction(op, reduction):
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"{op}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def _check_cross_entropy_inputs(logits, targets, ignore_index, reduction, label_smoothing):
    """PyTorch's layouts: logits (N, C) with targets (N,), or (N, C, d1..dk) with targets (N, d1..dk);
    integer targets in 0..C-1 or equal to ignore_index; reduction 'mean', 'sum' or 'none'; label_smoothing in
    [0, 1]."""
    _check_reduction("cross_entropy", reduction)
    if not 0 <= label_smoothing <= 1:
        raise ValueError(f"cross_entropy: label_smoothing must be in [0, 1], got {label_smoothing}")
    if logits.ndim < 2 or targets.shape != logits.shape[:1] + logits.shape[2:]:
        raise ValueError(f"cross_entropy: logits {logits.shape} and targets {targets.shape} do not fit: expected "
                         f"logits (N, C) with targets (N,), or (N, C, d1, ...) with targets (N, d1, ...)")
    if targets.dtype.kind not in "iu":
        raise TypeError(f"cross_entropy: targets must be integer class indices, got dtype {targets.dtype}")
    n_classes = logits.shape[1]
    bad = targets[((targets < 0) | (targets >= n_classes)) & (targets != ignore_index)]
    if bad.size:
        raise IndexError(f"cross_entropy: target {int(bad[0])} is out of range for {n_classes} classes "
                         f"(valid: 0..{n_classes - 1}, or ignore_index={ignore_index})")


class CrossEntropyOp(Function):
    """loss_r = -log softmax(x_r)[t_r] = logsumexp(x_r) - x_r[t_r] for each row r whose target is not ignored;
    then the mean over those rows (or their sum, or none).
    d loss_r / d x_rc = softmax(x_r)_c - [c == t_r]   (probabilities minus the one-hot target),
    so dx_r = g_r * (softmax(x_r) - onehot(t_r)), with g_r = g / (number of rows kept) for the mean.
    Label smoothing ε (PyTorch's): the target becomes q = (1-ε) onehot(t) + ε/C, the mixture of the one-hot and the
    uniform distribution over the C classes, and loss_r = -Σ_c q_c log softmax(x_r)_c
        = (1-ε) (lse_r - x_r[t_r]) + ε (lse_r - mean_c x_rc) = lse_r - (1-ε) x_r[t_r] - (ε/C) Σ_c x_rc,
    so d loss_r / d x_rc = softmax(x_r)_c - (1-ε) [c == t_r] - ε/C = softmax(x_r)_c - q_c: probabilities minus the
    smoothed target (ε = 0 gives back the one-hot line above).
    Forward keeps the logits (as (M, C) rows) and the logsumexp per row, never the softmax; backward recomputes
    softmax = e^(x - lse). Derived in docs/cross_entropy.md."""

    def forward(ctx, logits, targets, ignore_index=-100, reduction="mean", label_smoothing=0.0):
        xp = backend.xp(logits)
        x = xp.moveaxis(logits, 1, -1).reshape(-1, logits.shape[1])  # (M, C): one row per prediction
        t = targets.reshape(-1)                                  # (M,)
        keep = t != ignore_index                                # (M,)
        t_safe = xp.where(keep, t, 0)                            # a valid index for ignored rows, zeroed below
        shifted, lse = _softmax_parts(x, -1)                     # (M, C), (M, 1)
        rows = xp.arange(x.shape[0])
        losses = lse[:, 0] - shifted[rows, t_safe]               # (M,)  -log p_t
        if label_smoothing:
            # (1-ε)(-log p_t) + ε (-mean_c log p_c),  -mean_c log p_c = lse - mean_c(x_c - max)
            losses = (1 - label_smoothing) * losses + label_smoothing * (lse[:, 0] - shifted.mean(axis=-1))
        losses = losses * keep
        ctx.save_for_backward(x, lse + x.max(axis=-1, keepdims=True), t_safe, keep)
        ctx.shape, ctx.reduction, ctx.label_smoothing = logits.shape, reduction, label_smoothing
        loss, ctx.count = reduce_row_losses(losses, keep, reduction)
        return loss.reshape(targets.shape) if reduction == "none" else loss

    def backward(ctx, g):
        x, lse, t_safe, keep = ctx.saved
        xp = backend.xp(x)
        eps = ctx.label_smoothing
        g_rows = row_loss_grads(g, keep, ctx.reduction, ctx.count)[:, None]       # (M, 1)
        # dx = (softmax(x) - q) · g_row,  q = (1-ε) onehot(t) + ε/C, built in one buffer (docs/cross_entropy.md)
        dx = xp.exp(x - lse)                                                    # softmax, (M, C)
        dx[xp.arange(x.shape[0]), t_safe] -= 1 - eps                             # minus the one-hot part of q
        if eps:
            dx -= eps / x.shape[1]                                               # minus the uniform part of q
        dx *= g_rows
        n, c = ctx.shape[0], ctx.shape[1]
        dx = xp.moveaxis(dx.reshape((n,) + ctx.shape[2:] + (c,)), -1, 1)          # back to (N, C, d1..dk)
        return dx, None


def cross_entropy(logits, targets, ignore_index=-100, reduction="mean", label_smoothing=0.0):
    """logits (N, C) or (N, C, d1..dk), integer targets (N,) or (N, d1..dk) -> scalar (or per-row losses).
    label_smoothing ε in [0, 1] spreads ε of each target's probability evenly over all C classes, as in PyTorch."""
    _check_floating("cross_entropy", logits)
    targets = targets.data if isinstance(targets, Tensor) else backend.xp(logits.data).asarray(targets)
    _check_cross_entropy_inputs(logits, targets, ignore_index, reduction, label_smoothing)
    if not _use_fused:
        return composed.cross_entropy(logits, targets, ignore_index, reduction, label_smoothing)
    if kernels_wanted(logits.data) and logits.ndim == 2 and not label_smoothing:  # the kernel has no smoothing
        return CudaCrossEntropyOp.apply(logits, targets, ignore_index=ignore_index, reduction=reduction)
    return CrossEntropyOp.apply(logits, targets, ignore_index=ignore_index, reduction=reduction,
                                label_smoothing=label_smoothing)


# ---------------------------------------------------------------- layer norm

def _check_layer_norm_shapes(x, normalized_shape, weight, bias):
    """The trailing axes normalized over; a clear error when x, weight or bias do not fit normalized_shape."""
    normalized_shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    if x.shape[x.ndim - len(normalized_shape):] != normalized_shape:
        raise ValueError(f"layer_norm: input {x.shape} does not end in normalized_shape {normalized_shape}")
    for name, p in (("weight", weight), ("bias", bias)):
        if p is not None and p.shape != normalized_shape:
            raise ValueError(f"layer_norm: {name} has shape {p.shape}, expected normalized_shape {normalized_shape}")
    return tuple(range(x.ndim - len(normalized_shape), x.ndim))


def _row_mean(a):
    """(N, M) -> (N, 1): the mean of each row (layer norm needs four per call); see _row_sum."""
    return _row_sum(a, 1 / a.shape[-1])


def _column_sum(a):
    """(N, M) -> (M,): the sum over rows, as a vector-matrix product (the same trick as _row_sum)."""
    return backend.xp(a).ones(a.shape[0], dtype=a.dtype) @ a


class LayerNormOp(Function):
    """Over the trailing axes (M elements, one row per position):  μ = mean(x),  σ² = mean((x-μ)²),
    r = 1/sqrt(σ² + eps),  x̂ = (x - μ) r,  y = x̂ w + b.
    Backward:  dw = sum over rows of g x̂;   db = sum over rows of g;   and with d = g w (= dL/dx̂),
        dx = r (d - mean(d) - x̂ mean(d x̂)),
    because dx̂_i/dx_k = r (δ_ik - 1/M - x̂_i x̂_k / M): the -1/M from μ, the last term from σ².
    Forward keeps x̂ and r (the inverse standard deviation), nothing else. The work is done on x as (N, M) rows."""

    def forward(ctx, x, weight=None, bias=None, n_normalized=1, eps=1e-5):
        xp = backend.xp(x)
        ctx.shape, ctx.normalized_shape = x.shape, x.shape[x.ndim - n_normalized:]
        rows = x.reshape(-1, int(np.prod(ctx.normalized_shape)))               # (N, M)
        # x̂ = (x - μ) r,  r = 1/sqrt(σ² + eps): x̂ and r each built in one buffer (docs/layernorm.md)
        xhat = rows - _row_mean(rows)                                         # x - μ
        r = _row_mean(xhat * xhat)                                            # σ², (N, 1)
        r += x.dtype.type(eps)                                                # keep x's dtype
        xp.sqrt(r, out=r)
        xp.reciprocal(r, out=r)                                               # r = 1/sqrt(σ² + eps)
        xhat *= r                                                             # x̂
        ctx.save_for_backward(xhat, r, weight)
        y = xhat * weight.reshape(-1) if weight is not None else xhat.copy()
        if bias is not None:
            y += bias.reshape(-1)
        return y.reshape(x.shape)

    def backward(ctx, g):
        xhat, r, weight = ctx.saved
        g = g.reshape(xhat.shape)                                             # (N, M)
        dw = _column_sum(g * xhat).reshape(ctx.normalized_shape) if ctx.needs_input_grad[1] else None
        db = _column_sum(g).reshape(ctx.normalized_shape) if ctx.needs_input_grad[2] else None
        d = g * weight.reshape(-1) if weight is not None else g               # dL/dx̂
        # dx = r (d - mean(d) - x̂ mean(d x̂)), built in one buffer
        dx = xhat * _row_mean(d * xhat)                                       # x̂ mean(d x̂)
        backend.xp(g).subtract(d, dx, out=dx)
        dx -= _row_mean(d)
        dx *= r                                                               # r (d - mean(d) - x̂ mean(d x̂))
        return dx.reshape(ctx.shape), dw, db


def layer_norm(x, normalized_shape, weight=None, bias=None, eps=1e-5):
    """x (..., *normalized_shape), weight and bias normalized_shape or None -> same shape as x"""
    _check_floating("layer_norm", x, weight, bias)
    axes = _check_layer_norm_shapes(x, normalized_shape, weight, bias)
    if not _use_fused:
        return composed.layer_norm(x, axes, weight, bias, eps)
    if kernels_wanted(x.data) and len(axes) == 1:
        return CudaLayerNormOp.apply(x, weight, bias, eps=eps)
    return LayerNormOp.apply(x, weight, bias, n_normalized=len(axes), eps=eps)


# ---------------------------------------------------------------- attention

def attention_bias(q_len, k_len, attn_mask, is_causal, like):
    """The additive mask of attention scores, (Tq, Tk) or broadcastable to (..., Tq, Tk): 0 where a query may
    attend to a key, -inf where it may not. A boolean attn_mask is True where attention is allowed (PyTorch's
    meaning); a float attn_mask is added as is; is_causal lets query i see keys 0..i (top-left aligned)."""
    xp = backend.xp(like)
    bias = xp.zeros((q_len, k_len), dtype=like.dtype)
    if is_causal:
        bias = xp.where(xp.tri(q_len, k_len, dtype=bool), bias, -np.inf).astype(like.dtype)
    if attn_mask is not None:
        mask = attn_mask.data if isinstance(attn_mask, Tensor) else xp.asarray(attn_mask)
        bias = xp.where(mask, bias, -np.inf) if mask.dtype == bool else bias + mask.astype(like.dtype)
    return bias


class AttentionOp(Function):
    """O = dropout(P) V,  P = softmax(S) row-wise,  S = s Q Kᵀ + mask,  s = scale (1/sqrt(D) by default).
    q (..., Tq, D), k (..., Tk, D), v (..., Tk, Dv) -> (..., Tq, Dv)

    Backward, with P' = P ∘ M/(1-p) the dropped-out probabilities (P' = P without dropout):
        dV = P'ᵀ dO
        dP = (dO Vᵀ) ∘ M/(1-p)
        dS = P ∘ (dP - D),  D = rowsum(P ∘ dP) = rowsum(dO ∘ O)   (softmax backward; the second form needs no P)
        dQ = s dS K,   dK = s dSᵀ Q
    Forward keeps P itself. On the CPU that is cheap, B·nh·T² floats, and recomputing P in backward would cost
    another matmul and exp. (The CUDA kernel cannot afford T×T memory: like FlashAttention it keeps the row
    logsumexp L instead and recomputes P = exp(S - L) tile by tile.) Forward builds P in place in one T×T buffer;
    backward needs one more, for dS (and, with dropout, a temporary for P').
    A row that may attend to nothing gives O = 0 and zero gradients."""

    def forward(ctx, q, k, v, bias, dropout_p=0.0, scale=None):
        xp = backend.xp(q)
        # in q's dtype: a NumPy float64 scale (1 / np.sqrt(D)) must not turn float32 scores into float64
        ctx.scale = scale = q.dtype.type(1 / math.sqrt(q.shape[-1]) if scale is None else scale)
        # P = softmax(s Q Kᵀ + bias), row by row: the scores become P in one buffer (docs/attention.md)
        p = q @ k.swapaxes(-1, -2)                                     # (..., Tq, Tk)
        p *= scale
        p += bias                                                      # S
        row_max = p.max(axis=-1, keepdims=True)                        # (..., Tq, 1)
        p -= xp.where(xp.isfinite(row_max), row_max, 0)                # a fully masked row: avoid -inf - -inf
        xp.exp(p, out=p)                                               # e^(S - max): softmax's numerator
        row_sum = _row_sum(p)                                          # (..., Tq, 1); 0 for a fully masked row
        p /= xp.where(row_sum > 0, row_sum, 1)                         # P (all 0 on a fully masked row)
        keep = None
        if dropout_p > 0:
            keep = rng.dropout_keep_mask(p.shape, dropout_p, like=p) / q.dtype.type(1 - dropout_p)
        out = (p * keep if keep is not None else p) @ v                # (..., Tq, Dv)
        ctx.save_for_backward(q, k, v, p, keep, out)
        return out

    def backward(ctx, d_out):
        q, k, v, p, keep, out = ctx.saved
        xp = backend.xp(q)
        dv = (p * keep if keep is not None else p).swapaxes(-1, -2) @ d_out  # P'ᵀ dO, (..., Tk, Dv)
        # s dS = s P ∘ (dP - rowsum(dO ∘ O)), built in one buffer
        ds = d_out @ v.swapaxes(-1, -2)                                  # dP' = dO Vᵀ, (..., Tq, Tk)
        if keep is not None:
            ds *= keep                                                   # dP
        ds -= xp.einsum("...d,...d->...", d_out, out)[..., None]        # dP - D,  D = rowsum(dO ∘ O)
        ds *= p                                                          # dS
        ds *= ctx.scale                                                  # s dS: the scale of both dQ and dK
        dq = ds @ k                                                      # (..., Tq, D)
        dk = ds.swapaxes(-1, -2) @ q                                     # (..., Tk, D)
        # q, k, v may broadcast over batch or heads: sum those axes back
        return unbroadcast(dq, q.shape), unbroadcast(dk, k.shape), unbroadcast(dv, v.shape), None


def _check_attention_shapes(q, k, v):
    if q.ndim < 2 or k.ndim < 2 or v.ndim < 2 or q.shape[-1] != k.shape[-1] or k.shape[-2] != v.shape[-2]:
        raise ValueError(f"scaled_dot_product_attention: q {q.shape}, k {k.shape}, v {v.shape} do not fit: "
                         f"expected q (..., Tq, D), k (..., Tk, D), v (..., Tk, Dv)")


def scaled_dot_product_attention(q, k, v, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None):
    """q (B, H, Tq, D), k (B, H, Tk, D), v (B, H, Tk, Dv) -> (B, H, Tq, Dv); any leading axes work."""
    _check_floating("scaled_dot_product_attention", q, k, v)
    _check_attention_shapes(q, k, v)
    if not 0 <= dropout_p < 1:
        raise ValueError(f"scaled_dot_product_attention: dropout_p must be in [0, 1), got {dropout_p}")
    bias = attention_bias(q.shape[-2], k.shape[-2], attn_mask, is_causal, like=q.data)
    if not _use_fused:
        return composed.scaled_dot_product_attention(q, k, v, bias, dropout_p, scale)
    if kernels_wanted(q.data) and attn_mask is None and dropout_p == 0 and q.shape == k.shape == v.shape \
            and q.shape[-1] in (32, 64, 128):
        return CudaAttentionOp.apply(q, k, v, is_causal=is_causal, scale=scale)
    return AttentionOp.apply(q, k, v, bias, dropout_p=dropout_p, scale=scale)


# ---------------------------------------------------------------- dropout

class DropoutOp(Function):
    """y = x ∘ M / (1-p), M a random 0/1 mask keeping each element with probability 1-p
    (dividing by 1-p keeps the expected value of y equal to x).   dx = g ∘ M / (1-p)."""

    def forward(ctx, x, p=0.5):
        scale = rng.dropout_keep_mask(x.shape, p, like=x) / x.dtype.type(1 - p)
        ctx.save_for_backward(scale)
        return x * scale

    def backward(ctx, g):
        (scale,) = ctx.saved
        return g * scale


def dropout(x, p=0.5, training=True):
    """Identity when not training or p == 0 (no random numbers drawn)."""
    _check_floating("dropout", x)
    if not 0 <= p < 1:
        raise ValueError(f"dropout: p must be in [0, 1), got {p}")
    if not training or p == 0:
        return x
    if not _use_fused:
        return composed.dropout(x, p)
    return DropoutOp.apply(x, p=p)


# ---------------------------------------------------------------- GELU

def _square(x):
    """x * x in a new array, also for a 0-d x (NumPy would hand back a scalar, which out= cannot write into)."""
    return backend.xp(x).multiply(x, x, out=backend.xp(x).empty_like(x))


SQRT_2_OVER_PI = math.sqrt(2 / math.pi)
GELU_CUBIC = 0.044715
# erfc(z) ≈ t (a1 + t (a2 + t (a3 + t (a4 + t a5)))) e^(-z²),  t = 1/(1 + p z),  z >= 0: Abramowitz & Stegun's
# formula 7.1.26, absolute error below 1.5e-7
ERFC_P = 0.3275911
ERFC_A = (0.254829592, -0.284496736, 1.421413741, -1.453152027, 1.061405429)   # a1 ... a5


def _normal_cdf(x):
    """Φ(x) = (1 + erf(x/√2))/2, the exact GELU's gate, of an array of any shape.

    In float32 on the CPU, from erfc's rational form above: Φ(x) = erfc(|x|/√2)/2 for x <= 0 and 1 - erfc(x/√2)/2
    for x > 0, within 3e-7 of Φ once rounded to float32 (tests/test_functional.py). That is 20 passes with one
    exp: two to three times as fast as SciPy's float32 erf, and needs no SciPy. Otherwise (float64,
    where gradcheck needs every digit, or on the GPU) from erf itself."""
    xp = backend.xp(x)
    if xp is not np or x.dtype != np.float32:
        return 0.5 * (1 + backend.erf(x * (1 / math.sqrt(2))))
    flat = x.reshape(-1)                              # (n,): a 0-d x becomes one element, and out= works on it
    a = np.abs(flat)                                  # |x| = √2 z
    t = a * (ERFC_P / math.sqrt(2))
    t += 1
    np.reciprocal(t, out=t)                           # t = 1/(1 + p z)
    cdf = t * (0.5 * ERFC_A[-1])                      # Horner's rule, a5 first; the 1/2 of Φ folded into the a's
    for coefficient in reversed(ERFC_A[:-1]):
        cdf += 0.5 * coefficient
        cdf *= t
    np.multiply(a, a, out=a)
    a *= -0.5
    cdf *= np.exp(a, out=a)                           # erfc(z)/2 = Φ(-|x|), e^(-z²) = e^(-x²/2)
    np.subtract(0.5, cdf, out=cdf)
    np.copysign(cdf, flat, out=cdf)
    cdf += 0.5                                        # 1/2 ± (1/2 - Φ(-|x|)): Φ(-|x|) for x <= 0, 1 - that for x > 0
    return cdf.reshape(x.shape)


class GeluOp(Function):
    """Exact:  y = x Φ(x),  Φ(x) = (1 + erf(x/√2))/2 the normal CDF;   dy/dx = Φ(x) + x φ(x),  φ(x) = e^(-x²/2)/√(2π).
    Tanh approximation (GPT-2's):  y = x s,  s = (1 + tanh u)/2,  u = √(2/π) (x + 0.044715 x³);
        dy/dx = s + x ds/du du/dx,   ds/du = (1 - tanh² u)/2 = 2 s (1 - s),   du/dx = √(2/π) (1 + 3·0.044715 x²)
              = s (1 + (1 - s) · x · 2√(2/π) (1 + 3·0.044715 x²)).
    The tanh form keeps s (not tanh u): written with s, backward needs 9 passes over the array instead of 11.
    Both directions work in place, one buffer per pass: this runs on the largest activation of the GPT (B, T, 4C),
    where each temporary array costs as much as the arithmetic."""

    def forward(ctx, x, approximate="none"):
        xp = backend.xp(x)
        ctx.approximate = approximate
        if approximate == "tanh":
            # s = (1 + tanh u)/2 = 1/(1 + e^(-2u)), u = √(2/π) (x + 0.044715 x³), built in one buffer: NumPy's exp
            # is faster than its tanh: the forward takes a fifth to a third less (docs/gelu.md)
            s = _square(x)
            s *= -2 * SQRT_2_OVER_PI * GELU_CUBIC
            s -= 2 * SQRT_2_OVER_PI
            s *= x                                   # -2u
            with np.errstate(over="ignore"):         # e^(-2u) = inf for x below about -10: s = 1/inf = 0, exact
                xp.exp(s, out=s)
            s += 1
            xp.reciprocal(s, out=s)                  # s = 1/(1 + e^(-2u))
            ctx.save_for_backward(x, s)
            return x * s
        cdf = _normal_cdf(x)
        ctx.save_for_backward(x, cdf)
        return x * cdf

    def backward(ctx, g):
        x, saved = ctx.saved
        xp = backend.xp(x)
        if ctx.approximate == "tanh":
            s = saved
            # g · dy/dx = g · s (1 + (1 - s) · x · 2√(2/π) (1 + 3·0.044715 x²)), built in one buffer
            dy_dx = _square(x)
            dy_dx *= 2 * SQRT_2_OVER_PI * 3 * GELU_CUBIC
            dy_dx += 2 * SQRT_2_OVER_PI
            dy_dx *= x                               # x · 2√(2/π) (1 + 3·0.044715 x²)
            dy_dx *= xp.subtract(1, s)               # · (1 - s)
            dy_dx += 1
            dy_dx *= s                               # s (1 + ...) = dy/dx
            dy_dx *= g
            return dy_dx
        cdf = saved
        pdf = xp.exp(-0.5 * x * x) * (1 / math.sqrt(2 * math.pi))
        return g * (cdf + x * pdf)


def gelu(x, approximate="none"):
    """approximate='none' (exact, with erf) or 'tanh' (GPT-2's), as PyTorch."""
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    _check_floating("gelu", x)
    if not _use_fused:
        return composed.gelu(x, approximate)
    if kernels_wanted(x.data) and approximate == "tanh":
        return CudaGeluTanhOp.apply(x)
    return GeluOp.apply(x, approximate=approximate)


# ---------------------------------------------------------------- relu, mse_loss, one_hot; softmax as a method
# F.relu is ops.relu, imported above: a primitive already (one comparison), so there is nothing to fuse.

def _check_target_like_input(op, input, target):
    if input.shape != target.shape:
        raise ValueError(f"{op}: input {input.shape} and target {target.shape} differ in shape (PyTorch would "
                         f"broadcast them, with a warning: almost always a bug); reshape one to match")
    if input.dtype != target.dtype:
        raise TypeError(f"{op}: input is {input.dtype}, target {target.dtype}; convert one with .to(dtype)")


class MSELossOp(Function):
    """loss = mean over all N elements of (x - y)², or their sum, or none (the squares themselves).
    d loss / dx = 2 (x - y) g / N for the mean, 2 (x - y) g for the sum and for none (g then one per element);
    d loss / dy = -d loss / dx."""

    def forward(ctx, x, y, reduction="mean"):
        diff = x - y
        ctx.save_for_backward(diff)
        ctx.reduction = reduction
        squares = diff * diff
        if reduction == "none":
            return squares
        total = squares.sum()
        return total / x.dtype.type(diff.size) if reduction == "mean" else total

    def backward(ctx, g):
        (diff,) = ctx.saved
        scale = 2 / diff.size if ctx.reduction == "mean" else 2
        dx = diff * (g * diff.dtype.type(scale))      # g: a scalar for 'mean' and 'sum', like diff for 'none'
        return (dx if ctx.needs_input_grad[0] else None), (-dx if ctx.needs_input_grad[1] else None)


def mse_loss(input, target, reduction="mean"):
    """Mean squared error of two tensors of one shape -> a scalar ('mean', 'sum') or input's shape ('none').
    `target` may also be an array; it must have input's dtype (a float64 array with a float32 input is refused)."""
    target = target if isinstance(target, Tensor) else Tensor(backend.xp(input.data).asarray(target))
    _check_floating("mse_loss", input, target)
    _check_reduction("mse_loss", reduction)
    _check_target_like_input("mse_loss", input, target)
    if not _use_fused:
        return composed.mse_loss(input, target, reduction)
    return MSELossOp.apply(input, target, reduction=reduction)


def one_hot(tensor, num_classes=-1):
    """Integer class indices (...) -> int64 (..., num_classes): 1 at each index, 0 elsewhere; no gradient.
    num_classes=-1 takes the largest index + 1, as PyTorch does."""
    index = tensor.data if isinstance(tensor, Tensor) else np.asarray(tensor)
    xp = backend.xp(index)
    if index.dtype.kind not in "iu":
        raise TypeError(f"one_hot: needs integer class indices, got dtype {index.dtype} {index.shape}")
    if num_classes == -1:
        if index.size == 0:
            raise ValueError(f"one_hot: cannot infer num_classes from an empty tensor {index.shape}; pass it")
        num_classes = int(index.max()) + 1
    if num_classes < 1:
        raise ValueError(f"one_hot: num_classes must be -1 or at least 1, got {num_classes}")
    bad = index[(index < 0) | (index >= num_classes)]
    if bad.size:
        raise IndexError(f"one_hot: class {int(bad[0])} is out of range for num_classes={num_classes} "
                         f"(indices {index.shape})")
    return Tensor((index[..., None] == xp.arange(num_classes)).astype(np.int64))   # (..., num_classes)


Tensor.softmax = softmax
Tensor.log_softmax = log_softmax
