"""Fused ops: one Function each, whose backward is derived by hand for the whole formula.

Built from primitives, softmax would be five graph nodes, each saving its own arrays; fused, it is one node that
saves one array and whose backward is one line of algebra, stated in its docstring and derived step by step in
docs/ (one page per op). Every op here has a twin in composed.py built from primitives only; the tests show both
give the same values and gradients.
Each fused op declares what can run for it in one FusedOp entry, just above its public function: this Function,
its composed twin, and where one exists the CUDA kernel (cuda/fused.py) with the calls it supports; the public
function checks its arguments and hands them to dispatch.run, which picks one (dispatch.py's docstring gives the
rule). `with fused(False):` runs the composed twins, so the two can be compared anywhere (a whole GPT too);
`with cuda_kernels(False):` runs the Functions here, which are array code, on CuPy instead of the kernels.

Names and argument order are PyTorch's (torch.nn.functional). Notation: `g` = dL/d(out).
"""
import functools
import math
import warnings

import numpy as np

from . import backend, composed, ops, rng, threads
from .arguments import broadcast_shape, normalize_axes, promoted
from .cuda.attention import HEAD_DIMS, PRECISIONS
from .cuda.fused import CudaAttentionOp, CudaCrossEntropyOp, CudaGeluTanhOp, CudaLayerNormOp
from .dispatch import FusedOp, cuda_kernels, fused, pick, run  # noqa: F401 (fused, cuda_kernels: F's switches)
from .inplace import _in_place
from .movement import EmbeddingOp
from .movement import embedding as movement_embedding
from .ops import unbroadcast
from .row_losses import reduce_row_losses, row_loss_grads
from .tensor import Function, Tensor, count_in_place_change


def _softmax_parts(x, axis):
    """(x - max, logsumexp of x, max) along `axis`, the last two kept as a size-1 axis. Subtracting the row max
    first keeps exp from overflowing and changes nothing: softmax(x) = softmax(x - c) for any constant c."""
    xp = backend.xp(x)
    axis %= x.ndim
    reduced = x.shape[:axis] + (1,) + x.shape[axis + 1:]
    shifted, row_max, lse = xp.empty_like(x), xp.empty(reduced, x.dtype), xp.empty(reduced, x.dtype)
    _along(axis, _shift_and_logsumexp, x, shifted, row_max, lse)
    return shifted, lse, row_max


def _along(axis, work, *arrays):
    """work(*blocks, axis=axis) for work that reduces along `axis`: on blocks of rows (axis 0) at once when `axis`
    is another one (engine/threads.py), else once on the whole arrays."""
    work = functools.partial(work, axis=axis)
    if axis % arrays[0].ndim == 0:
        work(*arrays)
    else:
        threads.for_row_blocks(work, *arrays)


def _shift_and_logsumexp(x, shifted, row_max, lse, axis):
    xp = backend.xp(x)
    _row_max(x, axis, out=row_max)
    xp.subtract(x, row_max, out=shifted)
    with np.errstate(divide="ignore"):      # along a length-0 axis: log 0 = -inf, used by no element of the output
        lse[...] = xp.log(xp.exp(shifted).sum(axis=axis, keepdims=True))


def _check_floating(op, *tensors):
    """Fused ops compute in floats only: an integer or bool input is an error naming the op (PyTorch's ops raise
    too; NumPy would silently compute in float64)."""
    for t in tensors:
        if t is not None and t.dtype.kind != "f":
            raise TypeError(f"{op}: needs floating inputs, got {t.dtype} {t.shape}; convert with .to(np.float32)")


def _row_max(a, axis=-1, out=None):
    """a's max along `axis`, kept as a size-1 axis (into `out` if given). NumPy's max along a short last axis runs
    far faster given a value to start from (attention's rows of T); -inf changes no maximum. CuPy's max takes none."""
    if backend.xp(a) is np:
        return a.max(axis=axis, keepdims=True, out=out, initial=-np.inf)
    return a.max(axis=axis, keepdims=True, out=out)


def _row_sum(a, weight=1):
    """(..., M) -> (..., 1): each row's sum times `weight`, as a matrix-vector product with a column of `weight`s,
    which BLAS does faster than NumPy's reduction along a short last axis (attention's rows of T)."""
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
    The leading axes are flattened into one, N = B·T rows: one large matmul runs faster than a batch of small ones
    (docs/matmul.md). threads.matmul makes each product, on the pool's threads when BLAS is on it."""

    def forward(ctx, x, weight, bias=None):
        ctx.lead = x.shape[:-1]
        x2 = x.reshape(math.prod(ctx.lead), x.shape[-1])          # (N, in); N named: -1 is ambiguous when in = 0
        ctx.save_for_backward(x2, weight)
        y = threads.matmul(x2, weight.T)                          # (N, out)
        if bias is not None:
            y += bias
        return y.reshape(ctx.lead + (weight.shape[0],))           # (..., out)

    def backward(ctx, g):
        x2, weight = ctx.saved
        g2 = g.reshape(math.prod(ctx.lead), g.shape[-1])          # (N, out)
        dx = dw = None
        if ctx.needs_input_grad[0]:
            dx = threads.matmul(g2, weight).reshape(ctx.lead + (weight.shape[1],))   # (..., in)
        if ctx.needs_input_grad[1]:
            dw = threads.matmul(g2.T, x2)                                          # (out, in)
        db = g2.sum(axis=0) if ctx.needs_input_grad[2] else None  # (out,)
        return dx, dw, db


LINEAR = FusedOp("linear", function=LinearOp.apply, composed=composed.linear)


def linear(x, weight, bias=None):
    """x (..., in), weight (out, in), bias (out,) or None -> (..., out)"""
    _check_floating("linear", x, weight, bias)
    _check_linear_shapes(x, weight, bias)
    return run(LINEAR, x, weight, bias)


# ---------------------------------------------------------------- softmax, log_softmax

class SoftmaxOp(Function):
    """y_i = e^(x_i) / sum_j e^(x_j) along `dim`.
    dx_k = y_k (g_k - sum_i g_i y_i)   (from dy_i/dx_k = y_i (δ_ik - y_k); docs/cross_entropy.md)."""

    def forward(ctx, x, dim=-1):
        y, lse, _ = _softmax_parts(x, dim)
        _along(dim, _exp_of_difference, y, lse)                 # y = e^(x - max - lse), in place
        ctx.dim = dim
        ctx.save_for_backward(y)
        return y

    def backward(ctx, g):
        (y,) = ctx.saved
        dx = backend.xp(y).empty_like(y)
        _along(ctx.dim, _softmax_grad, y, g, dx)
        return dx


def _exp_of_difference(a, b, axis):
    """a = e^(a - b), in place (b broadcast along `axis`)."""
    xp = backend.xp(a)
    xp.subtract(a, b, out=a)
    xp.exp(a, out=a)


def _softmax_grad(y, g, dx, axis):
    """dx = y (g - Σ g y) along `axis`, in dx's buffer."""
    xp = backend.xp(y)
    xp.multiply(g, y, out=dx)
    xp.subtract(g, dx.sum(axis=axis, keepdims=True), out=dx)
    dx *= y


def _softmax_input(op, x, dim, dtype):
    """(x, dim) for softmax and log_softmax as PyTorch reads them: x cast to `dtype` first when one is given; a 0-d
    x counts as one axis (dim 0 or -1); dim=None is PyTorch's old implicit choice (0 for 0, 1 or 3 axes, else 1),
    with PyTorch's warning."""
    if dtype is not None:
        x = x.to(dtype)
    _check_floating(op, x)
    if dim is None:
        warnings.warn(f"{op}: implicit dimension choice has been deprecated; pass dim (as in PyTorch)", stacklevel=3)
        return x, 0 if x.ndim in (0, 1, 3) else 1
    return x, normalize_axes(op, dim, max(x.ndim, 1))[0]


SOFTMAX = FusedOp("softmax", function=lambda x, dim: SoftmaxOp.apply(x, dim=dim), composed=composed.softmax)


def softmax(x, dim=None, dtype=None):
    x, dim = _softmax_input("softmax", x, dim, dtype)
    if x.ndim == 0:                                   # one element: softmax 1 (as PyTorch), through a row of one
        return softmax(x.reshape(1), 0).reshape(())
    return run(SOFTMAX, x, dim)


class LogSoftmaxOp(Function):
    """y_i = x_i - log sum_j e^(x_j) along `dim`.
    dx_k = g_k - softmax_k * sum_i g_i   (from dy_i/dx_k = δ_ik - softmax_k; docs/cross_entropy.md)."""

    def forward(ctx, x, dim=-1):
        y, lse, _ = _softmax_parts(x, dim)
        y -= lse                                                 # x - max - lse
        ctx.dim = dim
        ctx.save_for_backward(y)
        return y

    def backward(ctx, g):
        (y,) = ctx.saved
        dx = backend.xp(y).empty_like(y)
        _along(ctx.dim, _log_softmax_grad, y, g, dx)
        return dx


def _log_softmax_grad(y, g, dx, axis):
    """dx = g - e^y Σ g along `axis`, in dx's buffer."""
    xp = backend.xp(y)
    xp.exp(y, out=dx)
    dx *= g.sum(axis=axis, keepdims=True)
    xp.subtract(g, dx, out=dx)


LOG_SOFTMAX = FusedOp("log_softmax", function=lambda x, dim: LogSoftmaxOp.apply(x, dim=dim),
                      composed=composed.log_softmax)


def log_softmax(x, dim=None, dtype=None):
    x, dim = _softmax_input("log_softmax", x, dim, dtype)
    if x.ndim == 0:                                   # one element: log_softmax 0 (as PyTorch)
        return log_softmax(x.reshape(1), 0).reshape(())
    return run(LOG_SOFTMAX, x, dim)


def _required_dim(op, dim):
    if dim is None:
        raise TypeError(f"{op}(): argument 'dim' must be int, not None (torch.{op} and x.{op} need it; F.{op} alone "
                        f"keeps PyTorch's deprecated implicit choice)")
    return dim


def torch_softmax(x, dim, dtype=None):
    """torch.softmax and x.softmax: F.softmax with `dim` required, as PyTorch's."""
    return softmax(x, _required_dim("softmax", dim), dtype)


def torch_log_softmax(x, dim, dtype=None):
    """torch.log_softmax and x.log_softmax: F.log_softmax with `dim` required, as PyTorch's."""
    return log_softmax(x, _required_dim("log_softmax", dim), dtype)


# ---------------------------------------------------------------- cross-entropy

def loss_reduction(op, reduction, size_average=None, reduce=None):
    """The reduction a loss applies (here and in nn's loss modules), checked: 'mean', 'sum' or 'none', or
    PyTorch's legacy size_average and reduce flags read as PyTorch reads them (with its warning): reduce=False is
    'none', size_average=False is 'sum'."""
    if size_average is not None or reduce is not None:
        warnings.warn(f"{op}: size_average and reduce are deprecated; use reduction= instead (as in PyTorch)",
                      stacklevel=3)
        reduction = "none" if reduce is False else "sum" if size_average is False else "mean"
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"{op}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    return reduction


def _class_weights(op, weight, input):
    """cross_entropy's and nll_loss' class weights as an array of C, in input's dtype and on its device, or None.
    They take no gradient, as in PyTorch (its nll_loss is not differentiable with respect to them)."""
    if weight is None:
        return None
    if isinstance(weight, Tensor) and weight.requires_grad:
        raise RuntimeError(f"{op}: not differentiable with respect to weight; pass weight.detach() (as PyTorch)")
    array = weight.data if isinstance(weight, Tensor) else backend.xp(input.data).asarray(weight)
    classes = input.shape[1] if input.ndim > 1 else input.shape[0]
    if array.shape != (classes,):
        raise ValueError(f"{op}: weight should hold one weight for each of the {classes} classes of input "
                         f"{input.shape}, got shape {array.shape}")
    return array.astype(input.dtype, copy=False)


def _check_class_targets(op, input, targets, ignore_index):
    """PyTorch's layouts: input (N, C) with targets (N,), or (N, C, d1..dk) with targets (N, d1..dk); integer
    targets in 0..C-1 or equal to ignore_index."""
    if input.ndim < 2 or targets.shape != input.shape[:1] + input.shape[2:]:
        raise ValueError(f"{op}: input {input.shape} and targets {targets.shape} do not fit: expected input (N, C) "
                         f"with targets (N,), or (N, C, d1, ...) with targets (N, d1, ...)")
    if targets.dtype.kind not in "iu":
        raise TypeError(f"{op}: targets must be integer class indices, got dtype {targets.dtype}")
    n_classes = input.shape[1]
    bad = targets[((targets < 0) | (targets >= n_classes)) & (targets != ignore_index)]
    if bad.size:
        raise IndexError(f"{op}: target {int(bad[0])} is out of range for {n_classes} classes "
                         f"(valid: 0..{n_classes - 1}, or ignore_index={ignore_index})")


class CrossEntropyOp(Function):
    """loss_r = -Σ_c q_c log softmax(x_r)_c = lse(x_r) - (1-ε) x_r[t_r] - (ε/C) Σ_c x_rc for each row r whose target
    is not ignored, q = (1-ε) onehot(t_r) + ε/C (label smoothing ε; q is the one-hot target at ε = 0); then the mean
    over those rows (or their sum, or none).   dx_r = g_r (softmax(x_r) - q), g_r = g / (rows kept) for the mean.
    Derived in docs/cross_entropy.md. Forward keeps the logits (as (M, C) rows) and the logsumexp per row, never
    the softmax; backward recomputes softmax = e^(x - lse)."""

    def forward(ctx, logits, targets, ignore_index=-100, reduction="mean", label_smoothing=0.0):
        xp = backend.xp(logits)
        x = xp.moveaxis(logits, 1, -1).reshape(-1, logits.shape[1])  # (M, C): one row per prediction
        t = targets.reshape(-1)                                  # (M,)
        keep = t != ignore_index                                # (M,)
        t_safe = xp.where(keep, t, 0)                            # a valid index for ignored rows, zeroed below
        shifted, lse, row_max = _softmax_parts(x, -1)            # (M, C), (M, 1), (M, 1)
        rows = xp.arange(x.shape[0])
        losses = lse[:, 0] - shifted[rows, t_safe]               # (M,)  -log p_t
        if label_smoothing:
            # (1-ε)(-log p_t) + ε (-mean_c log p_c),  -mean_c log p_c = lse - mean_c(x_c - max)
            losses = (1 - label_smoothing) * losses + label_smoothing * (lse[:, 0] - shifted.mean(axis=-1))
        losses = losses * keep
        ctx.save_for_backward(x, lse + row_max, t_safe, keep)
        ctx.shape, ctx.reduction, ctx.label_smoothing = logits.shape, reduction, label_smoothing
        loss, ctx.count = reduce_row_losses(losses, keep, reduction)
        return loss.reshape(targets.shape) if reduction == "none" else loss

    def backward(ctx, g):
        x, lse, t_safe, keep = ctx.saved
        xp = backend.xp(x)
        eps = ctx.label_smoothing
        g_rows = row_loss_grads(g, keep, ctx.reduction, ctx.count)[:, None]       # (M, 1)
        dx = xp.empty_like(x)                                                   # (M, C)
        threads.for_row_blocks(functools.partial(_cross_entropy_grad, label_smoothing=eps), x, lse, t_safe, g_rows,
                               dx)
        n, c = ctx.shape[0], ctx.shape[1]
        dx = xp.moveaxis(dx.reshape((n,) + ctx.shape[2:] + (c,)), -1, 1)          # back to (N, C, d1..dk)
        return dx, None


def _cross_entropy_grad(x, lse, t_safe, g_rows, dx, label_smoothing):
    """dx = (softmax(x) - q) · g_row,  q = (1-ε) onehot(t) + ε/C, for a block of rows, built in dx's buffer
    (docs/cross_entropy.md)."""
    xp = backend.xp(x)
    xp.subtract(x, lse, out=dx)
    xp.exp(dx, out=dx)                                                          # softmax
    dx[xp.arange(x.shape[0]), t_safe] -= 1 - label_smoothing                     # minus the one-hot part of q
    if label_smoothing:
        dx -= label_smoothing / x.shape[1]                                       # minus the uniform part of q
    dx *= g_rows


class SoftTargetCrossEntropyOp(Function):
    """Class-probability targets p, of the logits' shape (PyTorch's float targets): with q = (1-ε) p + ε/C,
    loss_r = -Σ_c q_rc log softmax(x_r)_c for each row r (N·d1..dk of them), then their mean, sum, or none.
    d loss_r / d x_rc = softmax(x_r)_c Σ_c' q_rc' - q_rc   (softmax minus q, when each row of p sums to 1);
    d loss_r / d p_rc = -(1-ε) log softmax(x_r)_c.   Derived in docs/cross_entropy.md. Forward keeps log softmax
    and q."""

    def forward(ctx, logits, probs, reduction="mean", label_smoothing=0.0):
        shifted, lse, _ = _softmax_parts(logits, 1)
        log_p = shifted - lse                                          # (N, C, d1..dk)
        q = probs * (1 - label_smoothing) + label_smoothing / logits.shape[1] if label_smoothing else probs
        ctx.save_for_backward(log_p, q)
        ctx.reduction, ctx.label_smoothing = reduction, label_smoothing
        losses = -(q * log_p).sum(axis=1)                              # (N, d1..dk)
        if reduction == "none":
            return losses
        total = losses.sum()
        return total / logits.dtype.type(losses.size) if reduction == "mean" else total

    def backward(ctx, g):
        log_p, q = ctx.saved
        xp = backend.xp(log_p)
        # g per row: one per row for 'none' (kept as a size-1 class axis), else g, divided by the rows for 'mean'
        g_rows = xp.expand_dims(g, 1) if ctx.reduction == "none" else g / (log_p.size // log_p.shape[1]) \
            if ctx.reduction == "mean" else g
        dx = (xp.exp(log_p) * q.sum(axis=1, keepdims=True) - q) * g_rows if ctx.needs_input_grad[0] else None
        dp = log_p * (-(1 - ctx.label_smoothing) * g_rows) if ctx.needs_input_grad[1] else None
        return dx, dp


# class-index targets without class weights (with them, only the composed form computes: no fused op takes weights)
CROSS_ENTROPY = FusedOp(
    "cross_entropy",
    function=lambda x, t, ignore_index, reduction, label_smoothing: CrossEntropyOp.apply(
        x, t, ignore_index=ignore_index, reduction=reduction, label_smoothing=label_smoothing),
    composed=composed.cross_entropy,
    kernel=lambda x, t, ignore_index, reduction, label_smoothing: CudaCrossEntropyOp.apply(
        x, t, ignore_index=ignore_index, reduction=reduction),
    supports=CudaCrossEntropyOp.supports)
# class-probability targets (PyTorch's float targets), without class weights
SOFT_TARGET_CROSS_ENTROPY = FusedOp(
    "cross_entropy (class probabilities)",
    function=lambda x, p, reduction, label_smoothing: SoftTargetCrossEntropyOp.apply(
        x, p, reduction=reduction, label_smoothing=label_smoothing),
    composed=composed.soft_target_cross_entropy)


def cross_entropy(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None, reduction="mean",
                  label_smoothing=0.0):
    """Logits (N, C) or (N, C, d1..dk), or one unbatched row (C,), against integer class indices (N,) or
    (N, d1..dk) (ignore_index marks rows left out), or against class probabilities of the logits' own shape (float
    targets, as PyTorch; they may require grad) -> a scalar, or the per-row losses for reduction='none'.
    label_smoothing ε in [0, 1] spreads ε of each target's probability evenly over all C classes, as in PyTorch.
    weight: one weight per class (C,), PyTorch's class weights: each row's loss is scaled by its target's weight,
    and the mean divides by the sum of the kept rows' weights (by the number of rows, for probabilities); computed
    by the composed form (no fused op takes weights)."""
    _check_floating("cross_entropy", input)
    weight = _class_weights("cross_entropy", weight, input)
    reduction = loss_reduction("cross_entropy", reduction, size_average, reduce)
    if not 0 <= label_smoothing <= 1:
        raise ValueError(f"cross_entropy: label_smoothing must be in [0, 1], got {label_smoothing}")
    if not isinstance(target, Tensor):
        target = backend.xp(input.data).asarray(target)
    if input.ndim == 1:                               # one unbatched row: a batch of one, as PyTorch takes it
        loss = cross_entropy(input.reshape(1, -1), target.reshape((1,) + target.shape), weight,
                             ignore_index=ignore_index, reduction=reduction, label_smoothing=label_smoothing)
        return loss.reshape(()) if reduction == "none" else loss
    if target.dtype.kind == "f":
        return _cross_entropy_with_probabilities(input, target, weight, reduction, label_smoothing)
    targets = target.data if isinstance(target, Tensor) else target
    _check_class_targets("cross_entropy", input, targets, ignore_index)
    if weight is not None:
        return composed.cross_entropy(input, targets, ignore_index, reduction, label_smoothing, weight)
    return run(CROSS_ENTROPY, input, targets, ignore_index, reduction, label_smoothing)


def _cross_entropy_with_probabilities(logits, probs, weight, reduction, label_smoothing):
    probs = probs if isinstance(probs, Tensor) else Tensor(probs)
    if probs.shape != logits.shape:
        raise ValueError(f"cross_entropy: float targets are class probabilities and must have the logits' shape "
                         f"{logits.shape}, got {probs.shape} (class indices must be integers)")
    if probs.dtype != logits.dtype:
        raise TypeError(f"cross_entropy: class-probability targets are {probs.dtype}, the logits {logits.dtype}; "
                        f"convert one with .to(dtype)")
    if weight is not None:
        return composed.soft_target_cross_entropy(logits, probs, reduction, label_smoothing, weight)
    return run(SOFT_TARGET_CROSS_ENTROPY, logits, probs, reduction, label_smoothing)


def nll_loss(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None, reduction="mean"):
    """Log-probabilities (N, C) or (N, C, d1..dk) (log_softmax's output), or one unbatched row (C,), and integer
    targets (N,) or (N, d1..dk) -> -w[t] input[n, t[n]] (w: the class weights, 1 without them), averaged over the
    rows not ignored (dividing by their weights' sum), or summed, or per row. d loss / d input = -w[t] g_r at each
    kept row's target, 0 elsewhere. Built from indexing: there is nothing to fuse."""
    _check_floating("nll_loss", input)
    weight = _class_weights("nll_loss", weight, input)
    reduction = loss_reduction("nll_loss", reduction, size_average, reduce)
    targets = target.data if isinstance(target, Tensor) else backend.xp(input.data).asarray(target)
    if input.ndim == 1:                               # one unbatched row
        loss = nll_loss(input.reshape(1, -1), targets.reshape(1), weight, ignore_index=ignore_index,
                        reduction=reduction)
        return loss.reshape(()) if reduction == "none" else loss
    _check_class_targets("nll_loss", input, targets, ignore_index)
    return composed.nll_loss(input, targets, ignore_index, reduction, weight)


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


def _row_mean(a, b=None):
    """(n, M) -> (n, 1): the mean of each row of a, or of a ∘ b, by einsum: one pass, no temporary, and each row's
    sum from that row alone (a block of rows gives the same numbers as the whole array, unlike BLAS's matvec)."""
    xp = backend.xp(a)
    total = xp.einsum("ij->i", a) if b is None else xp.einsum("ij,ij->i", a, b)
    return (total / a.shape[-1])[:, None]


def _column_sum(a):
    """(N, M) -> (M,): the sum over rows, as a vector-matrix product (the same trick as _row_sum)."""
    return backend.xp(a).ones(a.shape[0], dtype=a.dtype) @ a


class LayerNormOp(Function):
    """Over the trailing axes (M elements, one row per position):  μ = mean(x),  σ² = mean((x-μ)²),
    r = 1/sqrt(σ² + eps),  x̂ = (x - μ) r,  y = x̂ w + b.
    Backward, with d = g w (= dL/dx̂):  dx = r (d - mean(d) - x̂ mean(d x̂));  dw = Σ_rows g x̂;  db = Σ_rows g.
    Derived in docs/layernorm.md. Forward keeps x̂ and r (the inverse standard deviation), nothing else. The work
    is done on x as (N, M) rows, block by block (engine/threads.py), each block's passes while it is in the cache
    (cheap passes: on the pool's threads only while BLAS is on it); only dw and db sum across rows, over the whole
    arrays."""

    def forward(ctx, x, weight=None, bias=None, n_normalized=1, eps=1e-5):
        xp = backend.xp(x)
        ctx.shape, ctx.normalized_shape = x.shape, x.shape[x.ndim - n_normalized:]
        rows = x.reshape(-1, int(np.prod(ctx.normalized_shape)))               # (N, M)
        w, b = (None if p is None else p.reshape(-1) for p in (weight, bias))
        xhat, y, r = xp.empty_like(rows), xp.empty_like(rows), xp.empty((rows.shape[0], 1), x.dtype)
        threads.for_row_blocks(functools.partial(_layer_norm_forward, weight=w, bias=b, eps=x.dtype.type(eps)),
                               rows, xhat, y, r, cheap=True)
        ctx.save_for_backward(xhat, r, weight)
        return y.reshape(x.shape)

    def backward(ctx, g):
        xhat, r, weight = ctx.saved
        xp = backend.xp(g)
        g = g.reshape(xhat.shape)                                             # (N, M)
        dw = db = None
        if ctx.needs_input_grad[1]:
            dw = _column_sum(g * xhat).reshape(ctx.normalized_shape)
        if ctx.needs_input_grad[2]:
            db = _column_sum(g).reshape(ctx.normalized_shape)
        dx = xp.empty_like(xhat)
        w = None if weight is None else weight.reshape(-1)
        threads.for_row_blocks(functools.partial(_layer_norm_backward, weight=w), xhat, r, g, dx, cheap=True)
        return dx.reshape(ctx.shape), dw, db


def _layer_norm_forward(x, xhat, y, r, weight, bias, eps):
    """x̂ = (x - μ) r,  r = 1/sqrt(σ² + eps),  y = x̂ w + b, for a block of rows (docs/layernorm.md)."""
    xp = backend.xp(x)
    xp.subtract(x, _row_mean(x), out=xhat)                                    # x - μ
    r[...] = _row_mean(xhat, xhat)                                            # σ² = mean((x - μ)²)
    r += eps
    xp.sqrt(r, out=r)
    xp.reciprocal(r, out=r)                                                   # r = 1/sqrt(σ² + eps)
    xhat *= r                                                                 # x̂
    if weight is not None:
        xp.multiply(xhat, weight, out=y)
    else:
        y[...] = xhat
    if bias is not None:
        y += bias                                                             # y = x̂ w + b


def _layer_norm_backward(xhat, r, g, dx, weight):
    """dx = r (d - mean(d) - x̂ mean(d x̂)), d = g w, for a block of rows, in dx's buffer."""
    xp = backend.xp(g)
    d = g if weight is None else xp.multiply(g, weight)                       # dL/dx̂ = g w
    mean_d, mean_d_xhat = _row_mean(d), _row_mean(d, xhat)                    # (n, 1) each
    xp.multiply(xhat, mean_d_xhat, out=dx)                                    # x̂ mean(d x̂)
    xp.subtract(d, dx, out=dx)
    dx -= mean_d
    dx *= r


LAYER_NORM = FusedOp(
    "layer_norm",
    function=lambda x, axes, weight, bias, eps: LayerNormOp.apply(x, weight, bias, n_normalized=len(axes), eps=eps),
    composed=composed.layer_norm,
    kernel=lambda x, axes, weight, bias, eps: CudaLayerNormOp.apply(x, weight, bias, eps=eps),
    supports=CudaLayerNormOp.supports)


def layer_norm(x, normalized_shape, weight=None, bias=None, eps=1e-5):
    """x (..., *normalized_shape), weight and bias normalized_shape or None -> same shape as x"""
    _check_floating("layer_norm", x, weight, bias)
    axes = _check_layer_norm_shapes(x, normalized_shape, weight, bias)
    return run(LAYER_NORM, x, axes, weight, bias, eps)


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

    Backward, with P' = P ∘ M/(1-p) the dropped-out probabilities (P' = P without dropout), derived in
    docs/attention.md:   dV = P'ᵀ dO,  dP = (dO Vᵀ) ∘ M/(1-p),  dS = P ∘ (dP - rowsum(dO ∘ O)),  dQ = s dS K,
    dK = s dSᵀ Q.
    Forward keeps P itself. On the CPU that is cheap, B·nh·T² floats, and recomputing P in backward would cost
    another matmul and exp. (The CUDA kernel cannot afford T×T memory: like FlashAttention it keeps the row
    logsumexp L instead and recomputes P = exp(S - L) tile by tile.) Forward builds P in place in one T×T buffer;
    backward needs one more, for dS (and, with dropout, a temporary for P'). Each (batch, head) is a problem of its
    own: with BLAS on the pool (engine/threads.py) the batches are cut over its threads.
    A row that may attend to nothing gives O = 0 and zero gradients."""

    def forward(ctx, q, k, v, bias, dropout_p=0.0, scale=None):
        xp = backend.xp(q)
        # in q's dtype: a NumPy float64 scale (1 / np.sqrt(D)) must not turn float32 scores into float64
        ctx.scale = scale = q.dtype.type(1 / math.sqrt(q.shape[-1]) if scale is None else scale)
        lead = np.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2], bias.shape[:-2])  # (B, H) as a rule
        p = xp.empty(lead + (q.shape[-2], k.shape[-2]), q.dtype)                            # (..., Tq, Tk)
        out = xp.empty(lead + (q.shape[-2], v.shape[-1]), q.dtype)                          # (..., Tq, Dv)
        keep = None
        if dropout_p > 0:
            keep = rng.dropout_keep_mask(p.shape, dropout_p, like=p) / q.dtype.type(1 - dropout_p)
        _on_batches(functools.partial(_attention_forward, scale=scale), lead, q, k, v, bias, keep, p, out)
        ctx.save_for_backward(q, k, v, p, keep, out)
        return out

    def backward(ctx, d_out):
        q, k, v, p, keep, out = ctx.saved
        xp = backend.xp(q)
        lead = p.shape[:-2]
        dq, dk, dv = (xp.empty(lead + a.shape[-2:], a.dtype) for a in (q, k, v))
        _on_batches(functools.partial(_attention_backward, scale=ctx.scale), lead, q, k, v, p, keep, out, d_out,
                    dq, dk, dv)
        # q, k, v may broadcast over batch or heads: sum those axes back
        return unbroadcast(dq, q.shape), unbroadcast(dk, k.shape), unbroadcast(dv, v.shape), None


def _on_batches(work, lead, *arrays):
    """work(*arrays), each array broadcast to the leading axes `lead`, on one piece of the first leading axis per
    thread when BLAS is on the pool (engine/threads.py): every (batch, head) is a problem of its own, its matmuls
    the same BLAS calls whichever piece it is in."""
    if not lead:
        work(*arrays)
        return
    xp = backend.xp(arrays[0])
    batched = [a if a is None or a.shape[:-2] == lead else xp.broadcast_to(a, lead + a.shape[-2:]) for a in arrays]
    q, k = batched[0], batched[1]
    threads.for_each_thread(work, *batched, multiply_adds=math.prod(lead) * q.shape[-2] * k.shape[-2] * q.shape[-1])


def _attention_forward(q, k, v, bias, keep, p, out, scale):
    """P = softmax(s Q Kᵀ + bias) built in place in p, and O = P' V into out (P' = P ∘ keep with dropout)."""
    xp = backend.xp(q)
    xp.matmul(q, k.swapaxes(-1, -2), out=p)                            # Q Kᵀ, (..., Tq, Tk)
    p *= scale
    p += bias                                                          # S
    row_max = _row_max(p)                                              # (..., Tq, 1)
    p -= xp.where(xp.isfinite(row_max), row_max, 0)                    # a fully masked row: avoid -inf - -inf
    xp.exp(p, out=p)                                                   # e^(S - max): softmax's numerator
    row_sum = _row_sum(p)                                              # (..., Tq, 1); 0 for a fully masked row
    p /= xp.where(row_sum > 0, row_sum, 1)                             # P (all 0 on a fully masked row)
    xp.matmul(p * keep if keep is not None else p, v, out=out)         # O = P' V, (..., Tq, Dv)


def _attention_backward(q, k, v, p, keep, out, d_out, dq, dk, dv, scale):
    """dV = P'ᵀ dO,  dS = P ∘ (dP - rowsum(dO ∘ O)),  dQ = s dS K,  dK = s dSᵀ Q, into dq, dk, dv."""
    xp = backend.xp(q)
    xp.matmul((p * keep if keep is not None else p).swapaxes(-1, -2), d_out, out=dv)  # P'ᵀ dO, (..., Tk, Dv)
    # s dS = s P ∘ (dP - rowsum(dO ∘ O)), built in one buffer
    ds = d_out @ v.swapaxes(-1, -2)                                    # dP' = dO Vᵀ, (..., Tq, Tk)
    if keep is not None:
        ds *= keep                                                     # dP
    ds -= xp.einsum("...d,...d->...", d_out, out)[..., None]          # dP - D,  D = rowsum(dO ∘ O)
    ds *= p                                                            # dS
    ds *= scale                                                        # s dS: the scale of both dQ and dK
    xp.matmul(ds, k, out=dq)                                           # (..., Tq, D)
    xp.matmul(ds.swapaxes(-1, -2), q, out=dk)                          # (..., Tk, D)


def _check_attention_shapes(q, k, v):
    if q.ndim < 2 or k.ndim < 2 or v.ndim < 2 or q.shape[-1] != k.shape[-1] or k.shape[-2] != v.shape[-2]:
        raise ValueError(f"scaled_dot_product_attention: q {q.shape}, k {k.shape}, v {v.shape} do not fit: "
                         f"expected q (..., Tq, D), k (..., Tk, D), v (..., Tk, Dv)")


def _attention_function(q, k, v, attn_mask, dropout_p, is_causal, scale, precision):
    bias = attention_bias(q.shape[-2], k.shape[-2], attn_mask, is_causal, like=q.data)
    return AttentionOp.apply(q, k, v, bias, dropout_p=dropout_p, scale=scale)


def _attention_composed(q, k, v, attn_mask, dropout_p, is_causal, scale, precision):
    bias = attention_bias(q.shape[-2], k.shape[-2], attn_mask, is_causal, like=q.data)
    return composed.scaled_dot_product_attention(q, k, v, bias, dropout_p, scale)


# the Function and the twin compute in float32 only: precision='bf16' runs the kernel or is refused
ATTENTION = FusedOp(
    "scaled_dot_product_attention",
    function=_attention_function,
    composed=_attention_composed,
    kernel=lambda q, k, v, attn_mask, dropout_p, is_causal, scale, precision: CudaAttentionOp.apply(
        q, k, v, is_causal=is_causal, scale=scale, precision=precision),
    supports=CudaAttentionOp.supports)


def scaled_dot_product_attention(q, k, v, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None, *,
                                 precision="fp32"):
    """q (B, H, Tq, D), k (B, H, Tk, D), v (B, H, Tk, Dv) -> (B, H, Tq, Dv); any leading axes work.
    precision (ours, not PyTorch's, which reads it from the dtype; NumPy has no bfloat16): "fp32", or "bf16" for
    the CUDA kernel's bfloat16 tensor cores (compute capability 8.0 or newer). q, k, v and the output stay float32:
    the inputs are rounded to bfloat16 for the matmuls, which accumulate in float32, and the output holds
    bf16-rounded values. bf16 runs only in the kernel: float32 Tensors on the GPU, no attn_mask, no dropout, q, k, v
    of one shape with a head dim of cuda.attention.HEAD_DIMS, kernels on and fused; any other call is refused."""
    _check_floating("scaled_dot_product_attention", q, k, v)
    _check_attention_shapes(q, k, v)
    if not 0 <= dropout_p < 1:
        raise ValueError(f"scaled_dot_product_attention: dropout_p must be in [0, 1), got {dropout_p}")
    if precision not in PRECISIONS:
        raise ValueError(f"scaled_dot_product_attention: precision must be one of {PRECISIONS}, got {precision!r}")
    args = (q, k, v, attn_mask, dropout_p, is_causal, scale, precision)
    implementation = pick(ATTENTION, *args)
    if precision != "fp32" and implementation is not ATTENTION.kernel:
        raise ValueError(f"scaled_dot_product_attention: precision={precision!r} runs only in the CUDA kernel, which "
                         f"cannot take this call: it needs float32 tensors on the GPU (got {q.dtype} on {q.device}), "
                         f"no attn_mask, dropout_p=0, q, k, v of one shape (got {q.shape}, {k.shape}, {v.shape}) "
                         f"with a head dim in {HEAD_DIMS}, and kernels on and fused (not inside "
                         f"cuda_kernels(False) or fused(False))")
    return implementation(*args)


# ---------------------------------------------------------------- dropout

class DropoutOp(Function):
    """y = x ∘ M / (1-p), M a random 0/1 mask keeping each element with probability 1-p
    (dividing by 1-p keeps the expected value of y equal to x).   dx = g ∘ M / (1-p)   (docs/dropout.md)."""

    def forward(ctx, x, p=0.5):
        scale = rng.dropout_keep_mask(x.shape, p, like=x) / x.dtype.type(1 - p)
        ctx.save_for_backward(scale)
        return x * scale

    def backward(ctx, g):
        (scale,) = ctx.saved
        return g * scale


DROPOUT = FusedOp("dropout", function=lambda x, p: DropoutOp.apply(x, p=p), composed=composed.dropout)


def dropout(x, p=0.5, training=True, inplace=False):
    """Identity when not training or p == 0 (no random numbers drawn)."""
    _check_floating("dropout", x)
    if not 0 <= p < 1:
        raise ValueError(f"dropout: p must be in [0, 1), got {p}")
    if not training or p == 0:
        return x
    return _maybe_in_place("dropout", x, inplace, lambda x: run(DROPOUT, x, p))


# ---------------------------------------------------------------- GELU

SQRT_2_OVER_PI = math.sqrt(2 / math.pi)
GELU_CUBIC = 0.044715
# erfc(z) ≈ t (a1 + t (a2 + t (a3 + t (a4 + t a5)))) e^(-z²),  t = 1/(1 + p z),  z >= 0: Abramowitz & Stegun's
# formula 7.1.26, absolute error below 1.5e-7
ERFC_P = 0.3275911
ERFC_A = (0.254829592, -0.284496736, 1.421413741, -1.453152027, 1.061405429)   # a1 ... a5


def _normal_cdf(x, out=None):
    """Φ(x) = (1 + erf(x/√2))/2, the exact GELU's gate, of an array of any shape, written into `out` (x's shape and
    dtype) or a new array.

    In float32 on the CPU, from erfc's rational form above: Φ(x) = erfc(|x|/√2)/2 for x <= 0 and 1 - erfc(x/√2)/2
    for x > 0, within 3e-7 of Φ once rounded to float32 (tests/test_functional.py): 20 passes with one exp, faster
    than SciPy's float32 erf (benchmarks/RESULTS.md), and no SciPy needed. Otherwise (float64, where gradcheck needs
    every digit, or on the GPU) from erf itself."""
    xp = backend.xp(x)
    out = xp.empty_like(x) if out is None else out
    if xp is not np or x.dtype != np.float32:
        out[...] = 0.5 * (1 + backend.erf(x * (1 / math.sqrt(2))))
        return out
    flat = x.reshape(-1)                              # (n,): a 0-d x becomes one element, and out= works on it
    cdf = out.reshape(-1) if out.flags.c_contiguous else np.empty(x.size, x.dtype)   # (n,), out's own numbers
    a = np.abs(flat)                                  # |x| = √2 z
    t = a * (ERFC_P / math.sqrt(2))
    t += 1
    np.reciprocal(t, out=t)                           # t = 1/(1 + p z)
    np.multiply(t, 0.5 * ERFC_A[-1], out=cdf)         # Horner's rule, a5 first; the 1/2 of Φ folded into the a's
    for coefficient in reversed(ERFC_A[:-1]):
        cdf += 0.5 * coefficient
        cdf *= t
    np.multiply(a, a, out=a)
    a *= -0.5
    cdf *= np.exp(a, out=a)                           # erfc(z)/2 = Φ(-|x|), e^(-z²) = e^(-x²/2)
    np.subtract(0.5, cdf, out=cdf)
    np.copysign(cdf, flat, out=cdf)
    cdf += 0.5                                        # 1/2 ± (1/2 - Φ(-|x|)): Φ(-|x|) for x <= 0, 1 - that for x > 0
    if not out.flags.c_contiguous:
        out[...] = cdf.reshape(x.shape)
    return out


class GeluOp(Function):
    """Exact:  y = x Φ(x),  Φ(x) = (1 + erf(x/√2))/2 the normal CDF;   dy/dx = Φ(x) + x φ(x),  φ(x) = e^(-x²/2)/√(2π).
    Tanh approximation (GPT-2's):  y = x s,  s = (1 + tanh u)/2,  u = √(2/π) (x + 0.044715 x³);
        dy/dx = s (1 + (1 - s) · x · 2√(2/π) (1 + 3·0.044715 x²)),   derived in docs/gelu.md.
    The tanh form keeps s (not tanh u): written with s, backward needs fewer passes over the array (docs/gelu.md).
    Both directions work in place, one buffer per pass: this runs on the largest activation of the GPT (B, T, 4C),
    where each temporary array costs as much as the arithmetic."""

    def forward(ctx, x, approximate="none"):
        xp = backend.xp(x)
        ctx.approximate = approximate
        gate, y = xp.empty_like(x), xp.empty_like(x)
        threads.for_row_blocks(_gelu_tanh_forward if approximate == "tanh" else _gelu_exact_forward,
                               *threads.rows_of(x, gate, y))
        ctx.save_for_backward(x, gate)              # the tanh form's s, or the exact form's Φ(x)
        return y

    def backward(ctx, g):
        x, gate = ctx.saved
        dx = backend.xp(x).empty_like(x)
        threads.for_row_blocks(_gelu_tanh_backward if ctx.approximate == "tanh" else _gelu_exact_backward,
                               *threads.rows_of(x, gate, g, dx))
        return dx


def _gelu_tanh_forward(x, s, y):
    """s = (1 + tanh u)/2 = 1/(1 + e^(-2u)), u = √(2/π) (x + 0.044715 x³), and y = x s, for a block of rows: s
    built in its own buffer, one pass per step. NumPy's exp is faster than its tanh (docs/gelu.md)."""
    xp = backend.xp(x)
    xp.multiply(x, x, out=s)
    s *= -2 * SQRT_2_OVER_PI * GELU_CUBIC
    s -= 2 * SQRT_2_OVER_PI
    s *= x                                   # -2u
    with np.errstate(over="ignore"):         # e^(-2u) = inf for x below about -10: s = 1/inf = 0, exact
        xp.exp(s, out=s)
    s += 1
    xp.reciprocal(s, out=s)                  # s = 1/(1 + e^(-2u))
    xp.multiply(x, s, out=y)


def _gelu_tanh_backward(x, s, g, dx):
    """dx = g · s (1 + (1 - s) · x · 2√(2/π) (1 + 3·0.044715 x²)) for a block of rows, built in dx's buffer."""
    xp = backend.xp(x)
    xp.multiply(x, x, out=dx)
    dx *= 2 * SQRT_2_OVER_PI * 3 * GELU_CUBIC
    dx += 2 * SQRT_2_OVER_PI
    dx *= x                                  # x · 2√(2/π) (1 + 3·0.044715 x²)
    dx *= xp.subtract(1, s)                  # · (1 - s)
    dx += 1
    dx *= s                                  # s (1 + ...) = dy/dx
    dx *= g


def _gelu_exact_forward(x, cdf, y):
    """Φ(x) and y = x Φ(x) for a block of rows."""
    _normal_cdf(x, out=cdf)
    backend.xp(x).multiply(x, cdf, out=y)


def _gelu_exact_backward(x, cdf, g, dx):
    """dx = g (Φ(x) + x φ(x)),  φ(x) = e^(-x²/2)/√(2π), for a block of rows, built in dx's buffer."""
    xp = backend.xp(x)
    xp.multiply(x, -0.5, out=dx)
    dx *= x
    xp.exp(dx, out=dx)
    dx *= 1 / math.sqrt(2 * math.pi)         # φ(x)
    dx *= x
    dx += cdf
    dx *= g


GELU = FusedOp(
    "gelu",
    function=lambda x, approximate: GeluOp.apply(x, approximate=approximate),
    composed=composed.gelu,
    kernel=lambda x, approximate: CudaGeluTanhOp.apply(x),
    supports=CudaGeluTanhOp.supports)


def gelu(x, approximate="none"):
    """approximate='none' (exact, with erf) or 'tanh' (GPT-2's), as PyTorch."""
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    _check_floating("gelu", x)
    return run(GELU, x, approximate)


# ---------------------------------------------------------------- SiLU, softplus, log-sigmoid, leaky ReLU

class SiluOp(Function):
    """y = x σ(x),  σ the sigmoid.   dy/dx = σ(x) + x σ(x) (1 - σ(x)) = σ(x) (1 + x (1 - σ(x))).
    Forward keeps σ(x) (one array), so backward needs no exp."""

    def forward(ctx, x):
        s = _sigmoid(x)
        ctx.save_for_backward(x, s)
        return x * s

    def backward(ctx, g):
        x, s = ctx.saved
        return g * s * (1 + x * (1 - s))


SILU = FusedOp("silu", function=SiluOp.apply, composed=composed.silu)


def silu(input, inplace=False):
    """x σ(x), elementwise (also called swish)."""
    _check_floating("silu", input)
    return _maybe_in_place("silu", input, inplace, lambda x: run(SILU, x))


class SoftplusOp(Function):
    """y = log(1 + e^(βx)) / β, and y = x where βx > threshold (PyTorch's switch to the line the curve approaches;
    there they differ by less than e^-threshold / β).   dy/dx = σ(βx), and 1 where βx > threshold."""

    def forward(ctx, x, beta=1.0, threshold=20.0):
        xp = backend.xp(x)
        bx = x * x.dtype.type(beta)
        linear = bx > threshold
        ctx.save_for_backward(bx, linear)
        return xp.where(linear, x, xp.logaddexp(0, bx) / x.dtype.type(beta))

    def backward(ctx, g):
        bx, linear = ctx.saved
        return g * backend.xp(g).where(linear, 1, _sigmoid(bx))


SOFTPLUS = FusedOp("softplus", function=lambda x, beta, threshold: SoftplusOp.apply(x, beta=beta, threshold=threshold),
                   composed=composed.softplus)


def softplus(input, beta=1.0, threshold=20.0):
    """A smooth ReLU: log(1 + e^(βx)) / β, elementwise; x itself where βx > threshold."""
    _check_floating("softplus", input)
    return run(SOFTPLUS, input, beta, threshold)


class LogSigmoidOp(Function):
    """y = log σ(x) = -log(1 + e^-x), computed as min(x, 0) - log(1 + e^-|x|), which neither overflows nor loses
    digits far out on either side.   dy/dx = 1 - σ(x) = σ(-x)."""

    def forward(ctx, x):
        ctx.save_for_backward(x)
        return -_softplus_of_minus(x)

    def backward(ctx, g):
        (x,) = ctx.saved
        return g * _sigmoid(-x)


LOGSIGMOID = FusedOp("logsigmoid", function=LogSigmoidOp.apply, composed=composed.logsigmoid)


def logsigmoid(input):
    """log σ(x), elementwise (a DPO loss's log-probability of preferring one answer)."""
    _check_floating("logsigmoid", input)
    return run(LOGSIGMOID, input)


def leaky_relu(input, negative_slope=0.01, inplace=False):
    """x where x > 0, else negative_slope · x.   d/dx = 1 where x > 0, else negative_slope (PyTorch's, also at 0).
    Built from primitives (a where): one comparison and one product, nothing to fuse."""
    _check_floating("leaky_relu", input)
    return _maybe_in_place("leaky_relu", input, inplace, lambda x: composed.leaky_relu(x, negative_slope))


def relu(input, inplace=False):
    """max(x, 0): ops.relu, a primitive already (one comparison), so there is nothing to fuse."""
    return _maybe_in_place("relu", input, inplace, ops.relu)


def _maybe_in_place(op, input, inplace, compute):
    """compute(input); with inplace=True (PyTorch's) its result written into input itself, which is returned, with
    autograd's checks of every in-place change (inplace.py: a parameter, or a tensor another op has used, is
    refused)."""
    return _in_place(f"{op}_", input, compute) if inplace else compute(input)


# ---------------------------------------------------------------- batch norm, normalize, cosine similarity

def _check_batch_norm_shapes(input, running_mean, running_var, weight, bias):
    if input.ndim < 2:
        raise ValueError(f"batch_norm: input {input.shape} needs a channel axis: expected (N, C) or (N, C, L, ...)")
    channels = input.shape[1]
    for name, t in (("running_mean", running_mean), ("running_var", running_var), ("weight", weight), ("bias", bias)):
        if t is not None and t.shape != (channels,):
            raise ValueError(f"batch_norm: {name} has shape {t.shape}, expected ({channels},) for the {channels} "
                             f"channels of input {input.shape}")
    for name, t in (("running_mean", running_mean), ("running_var", running_var)):
        if t is not None and t.dtype != input.dtype:
            raise TypeError(f"batch_norm: {name} is {t.dtype}, input {input.dtype}; convert one with .to(dtype)")


class BatchNormOp(Function):
    """Per channel c (axis 1), over the M values of that channel (all of the batch and any trailing axes):
    x̂ = (x - μ) r,  r = 1/sqrt(σ² + eps),  y = x̂ w + b;  μ, σ² the batch's own mean and (biased) variance
    (training), or the running statistics (eval), given as arrays.
    Backward:  dw = Σ g x̂,  db = Σ g  (sums over every axis but 1);  with d = g w (= dL/dx̂):
        batch statistics:  dx = r (d - mean(d) - x̂ mean(d x̂))   (layer norm's formula, means per channel: μ and
                           σ² depend on x, which gives the two subtracted terms);
        running statistics: dx = r d   (μ and σ² are constants).
    Derived in docs/layernorm.md, "Batch norm". Forward keeps x̂ and r."""

    def forward(ctx, x, weight, bias, mean, var, eps=1e-5, batch_stats=True):
        xp = backend.xp(x)
        channel = (1, x.shape[1]) + (1,) * (x.ndim - 2)                  # c's values broadcast along (N, C, L, ...)
        ctx.axes, ctx.batch_stats = (0,) + tuple(range(2, x.ndim)), batch_stats
        r = (1 / xp.sqrt(var + x.dtype.type(eps))).reshape(channel)
        xhat = (x - mean.reshape(channel)) * r
        ctx.save_for_backward(xhat, r, weight)
        y = xhat * weight.reshape(channel) if weight is not None else xhat.copy()
        if bias is not None:
            y += bias.reshape(channel)
        return y

    def backward(ctx, g):
        xhat, r, weight = ctx.saved
        axes = ctx.axes
        dw = (g * xhat).sum(axis=axes) if ctx.needs_input_grad[1] else None
        db = g.sum(axis=axes) if ctx.needs_input_grad[2] else None
        d = g * weight.reshape(r.shape) if weight is not None else g              # dL/dx̂
        if ctx.batch_stats:
            d = d - d.mean(axis=axes, keepdims=True) - xhat * (d * xhat).mean(axis=axes, keepdims=True)
        return d * r, dw, db


BATCH_NORM = FusedOp(
    "batch_norm",
    function=lambda x, weight, bias, mean, var, eps, training: BatchNormOp.apply(
        x, weight, bias, mean, var, eps=eps, batch_stats=training),
    composed=lambda x, weight, bias, mean, var, eps, training: composed.batch_norm(
        x, weight, bias, None if training else (mean, var), eps))


def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1, eps=1e-5):
    """input (N, C) or (N, C, L, ...) normalised per channel; weight, bias, running_mean, running_var (C,) (the
    running statistics Tensors, or arrays).
    training=True: the batch's statistics, and running_mean/running_var (when given) updated in place as PyTorch
    does: r ← (1 - momentum) r + momentum s, with the batch's unbiased variance for running_var. training=False:
    the running statistics."""
    _check_floating("batch_norm", input, weight, bias)
    running_mean, running_var = (r.data if isinstance(r, Tensor) else r for r in (running_mean, running_var))
    _check_batch_norm_shapes(input, running_mean, running_var, weight, bias)
    if training:
        count = input.numel() // input.shape[1]                              # values per channel
        if count <= 1:
            raise ValueError(f"batch_norm: expected more than 1 value per channel when training, got input "
                             f"{input.shape}")
        axes = (0,) + tuple(range(2, input.ndim))
        mean, var = input.data.mean(axis=axes), input.data.var(axis=axes)
        for running, stat in ((running_mean, mean), (running_var, var * (count / (count - 1)))):
            if running is not None:                                          # no gradient: a buffer's update
                running *= 1 - momentum
                running += momentum * stat
                count_in_place_change(running)
    elif running_mean is None or running_var is None:
        raise ValueError("batch_norm: running_mean and running_var must be given when training=False")
    else:
        mean, var = running_mean, running_var
    return run(BATCH_NORM, input, weight, bias, mean, var, eps, training)


def normalize(input, p=2.0, dim=1, eps=1e-12, out=None):
    """input / max(‖input‖_p, eps) along `dim`: unit vectors (the norm clamped below at eps, so a zero vector stays
    zero). Built from primitives (norm, clamp, div), as PyTorch builds it; the gradient follows from theirs."""
    if out is not None:
        raise NotImplementedError("normalize: out= is not supported; use the returned tensor")
    _check_floating("normalize", input)
    return composed.normalize(input, p, normalize_axes("normalize", dim, max(input.ndim, 1)), eps)


def cosine_similarity(x1, x2, dim=1, eps=1e-8):
    """The cosine of the angle between x1 and x2 along `dim` (the two broadcast together, dim an axis of their
    broadcast shape), as PyTorch computes it: each divided by its norm (at least eps) first, then multiplied and
    summed, so the result stays within [-1, 1]. Built from primitives (composed.py), as PyTorch builds it."""
    x1, x2 = promoted("cosine_similarity", x1, x2)
    _check_floating("cosine_similarity", x1)
    shape = broadcast_shape("cosine_similarity", x1.shape, x2.shape)
    axis = normalize_axes("cosine_similarity", dim, len(shape))[0]
    return composed.cosine_similarity(x1.expand(*shape), x2.expand(*shape), axis, eps)


# ---------------------------------------------------------------- pad

PAD_MODES = ("constant", "reflect", "replicate", "circular")


def _pad_sources(length, before, after, mode):
    """For one axis of `length` padded by (before, after): the position along the axis of x that each output
    position copies (NumPy integers), -1 where the constant goes. A negative amount crops (constant mode)."""
    positions = np.arange(-before, length + after)
    if mode == "constant":
        return np.where((positions >= 0) & (positions < length), positions, -1)
    if mode == "reflect":                             # ... 2 1 | 0 1 2 ... n-1 | n-2 n-3 ...: the edge not repeated
        positions = np.abs(positions)
        return np.where(positions > length - 1, 2 * (length - 1) - positions, positions)
    if mode == "replicate":                           # 0 0 | 0 1 ... n-1 | n-1 n-1: the edge repeated
        return np.clip(positions, 0, length - 1)
    return positions % length                         # circular: the other end's values


def _check_pad(input, pad, mode, value):
    """PyTorch's rules: pad = (before, after) pairs for the last axis, then the one before it, ...; every mode but
    'constant' takes no value, needs pads of at most 3 axes on a (batched) input with one or two more axes, and
    pads narrower than the axis (reflect) or as wide at most (circular), never negative."""
    if len(pad) % 2 or len(pad) > 2 * input.ndim or not all(isinstance(n, (int, np.integer)) for n in pad):
        raise ValueError(f"pad: pad must be pairs of whole numbers, at most one pair per axis of input "
                         f"{input.shape}, got {tuple(pad)}")
    if mode not in PAD_MODES:
        raise NotImplementedError(f"pad: mode {mode!r} is not supported; use one of {', '.join(PAD_MODES)}")
    if mode == "constant":
        return
    if value is not None:
        raise ValueError(f"pad: mode {mode!r} takes no value (only 'constant' does)")
    axes = len(pad) // 2
    if axes > 3 or input.ndim not in (axes + 1, axes + 2):
        raise NotImplementedError(f"pad: mode {mode!r} pads the last 1, 2 or 3 axes of an input with one or two "
                                  f"axes more (PyTorch's rule), got pad {tuple(pad)} for input {input.shape}")
    for i in range(axes):
        length, (before, after) = input.shape[-1 - i], pad[2 * i:2 * i + 2]
        widest = {"reflect": length - 1, "circular": length}.get(mode, math.inf)     # replicate: any width
        if min(before, after) < 0 or max(before, after) > widest:
            raise ValueError(f"pad: mode {mode!r} needs pads from 0 to {widest} for an axis of length {length} "
                             f"(input {input.shape}), got ({before}, {after})")


class PadOp(Function):
    """out = x padded along some axes; along each, out[i] = x[s(i)] for the source position s(i) that the mode
    picks (constant: the constant where s(i) is -1; reflect, replicate, circular: an edge value, or the far end's).
    dx = g summed back onto the source positions (an edge copied k times receives k gradients; the constant's
    positions give nothing back)."""

    def forward(ctx, x, sources, value=0.0):
        xp = backend.xp(x)
        ctx.shape, ctx.sources = x.shape, sources                           # sources: {axis: positions}
        for axis, source in sources.items():
            source = xp.asarray(source)
            inside = source >= 0
            if inside.all():
                x = xp.take(x, source, axis=axis)
            else:                                                           # constant mode
                out = xp.full(x.shape[:axis] + (len(source),) + x.shape[axis + 1:], value, dtype=x.dtype)
                lead = (slice(None),) * axis
                out[lead + (xp.nonzero(inside)[0],)] = x[lead + (source[inside],)]
                x = out
        return x

    def backward(ctx, g):
        xp = backend.xp(g)
        for axis, source in reversed(ctx.sources.items()):
            source = xp.asarray(source)
            inside = source >= 0
            dx = xp.zeros((ctx.shape[axis],) + g.shape[:axis] + g.shape[axis + 1:], dtype=g.dtype)  # axis first
            picked = xp.moveaxis(g, axis, 0)[inside]
            backend.scatter_add_rows(dx.reshape(dx.shape[0], -1), source[inside], picked.reshape(len(picked), -1))
            g = xp.moveaxis(dx, 0, axis)
        return g


PAD = FusedOp("pad", function=lambda x, sources, value: PadOp.apply(x, sources=sources, value=value),
              composed=composed.pad)


def pad(input, pad, mode="constant", value=None):
    """input padded by `pad` = (before, after) for the last axis, then for the one before it, ... (PyTorch's
    order). mode 'constant' fills with `value` (0 by default; negative pads crop); 'reflect' mirrors the values
    next to the edge, 'replicate' repeats the edge, 'circular' wraps around."""
    pad = tuple(pad)
    _check_pad(input, pad, mode, value)
    sources = {input.ndim - 1 - i: _pad_sources(input.shape[input.ndim - 1 - i], pad[2 * i], pad[2 * i + 1], mode)
               for i in range(len(pad) // 2) if pad[2 * i] or pad[2 * i + 1]}
    value = 0.0 if value is None else value
    return run(PAD, input, sources, value)


# ---------------------------------------------------------------- conv1d

def _conv1d_padding(padding, kernel_size, dilation, stride):
    """(before, after) zeros from conv1d's padding: a whole number (each side; an int or a 1-tuple, as PyTorch),
    'valid' (none) or 'same' (an output as long as the input: stride 1 only, the odd zero after, as PyTorch)."""
    if padding == "valid":
        return 0, 0
    if padding == "same":
        if stride != 1:
            raise ValueError("conv1d: padding='same' is not supported for strided convolutions (as in PyTorch)")
        total = dilation * (kernel_size - 1)
        return total // 2, total - total // 2
    (amount,) = padding if isinstance(padding, (tuple, list)) else (padding,)
    if isinstance(amount, str) or amount < 0:
        raise ValueError(f"conv1d: padding must be a whole number >= 0, 'valid' or 'same', got {padding!r}")
    return amount, amount


def _single(name, value):
    """conv1d's stride and dilation: an int or a 1-tuple (PyTorch takes both), a whole number >= 1."""
    (value,) = value if isinstance(value, (tuple, list)) else (value,)
    if not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"conv1d: {name} must be a whole number >= 1, got {value!r}")
    return int(value)


def _check_conv1d_shapes(input, weight, bias, groups):
    if weight.ndim != 3 or input.ndim != 3:
        raise ValueError(f"conv1d: expected input (N, C_in, L) or (C_in, L) and weight (C_out, C_in/groups, K), got "
                         f"input {input.shape} and weight {weight.shape}")
    if groups < 1 or input.shape[1] % groups or weight.shape[0] % groups:
        raise ValueError(f"conv1d: groups={groups} must divide the input's {input.shape[1]} channels and the "
                         f"weight's {weight.shape[0]} output channels")
    if weight.shape[1] * groups != input.shape[1]:
        raise ValueError(f"conv1d: weight {weight.shape} with groups={groups} expects {weight.shape[1] * groups} "
                         f"input channels, input {input.shape} has {input.shape[1]}")
    if bias is not None and bias.shape != weight.shape[:1]:
        raise ValueError(f"conv1d: bias has shape {bias.shape}, expected ({weight.shape[0]},) for weight "
                         f"{weight.shape}")


class Conv1dOp(Function):
    """y[n, o, l] = b[o] + Σ_c Σ_j W[o, c, j] x_p[n, c, l·s + j·d]   (x_p: x with its zero padding; s the stride,
    d the dilation; with groups G, output channel o sees only its group's C_in/G input channels).
    x (N, C_in, L), W (C_out, C_in/G, K), b (C_out,) -> y (N, C_out, L_out),  L_out = (L_p - d(K-1) - 1)//s + 1.

    As a matmul (im2col): the columns X[n, (c, j), l] = x_p[n, c, l·s + j·d] gathered once, then per group
    y = W X, with W as (C_out/G, C_in/G·K). So backward is a matmul's:
        dW = Σ_n g Xᵀ,   db = Σ_{n,l} g,   dX = Wᵀ g,
    and dx is dX scattered back: each column entry adds into the x_p position it was copied from (col2im), then
    the padding is cut off (docs/conv1d.md). Forward keeps X (N, C_in·K, L_out) and W."""

    def forward(ctx, x, weight, bias, stride=1, padding=(0, 0), dilation=1, groups=1):
        xp = backend.xp(x)
        n, c_in, length = x.shape
        c_out, c_group, k = weight.shape
        x_p = xp.zeros((n, c_in, padding[0] + length + padding[1]), dtype=x.dtype)
        x_p[:, :, padding[0]:padding[0] + length] = x
        l_out = (x_p.shape[2] - dilation * (k - 1) - 1) // stride + 1
        span = stride * (l_out - 1) + 1                                   # x_p's stretch each kernel tap reads
        columns = xp.stack([x_p[:, :, j * dilation:j * dilation + span:stride] for j in range(k)], axis=2)
        columns = columns.reshape(n, groups, c_group * k, l_out)           # (N, G, C_in/G·K, L_out)
        w = weight.reshape(groups, c_out // groups, c_group * k)           # (G, C_out/G, C_in/G·K)
        y = (w @ columns).reshape(n, c_out, l_out)                         # (N, G, C_out/G, L_out) as (N, C_out, L_out)
        if bias is not None:
            y += bias[:, None]
        ctx.save_for_backward(columns, weight)
        ctx.x_p_shape, ctx.length, ctx.padding, ctx.stride, ctx.dilation = x_p.shape, length, padding, stride, dilation
        return y

    def backward(ctx, g):
        columns, weight = ctx.saved
        xp = backend.xp(g)
        n, groups, ck, l_out = columns.shape
        c_out, c_group, k = weight.shape
        g4 = g.reshape(n, groups, c_out // groups, l_out)                  # (N, G, C_out/G, L_out)
        dw = db = dx = None
        if ctx.needs_input_grad[1]:
            dw = (g4 @ columns.swapaxes(-1, -2)).sum(axis=0).reshape(weight.shape)   # Σ_n g Xᵀ
        if ctx.needs_input_grad[2]:
            db = g.sum(axis=(0, 2))
        if ctx.needs_input_grad[0]:
            w = weight.reshape(groups, c_out // groups, ck)
            d_columns = (w.swapaxes(-1, -2) @ g4).reshape(n, groups * c_group, k, l_out)   # Wᵀ g, per tap j
            dx_p = xp.zeros(ctx.x_p_shape, dtype=g.dtype)
            span = ctx.stride * (l_out - 1) + 1
            for j in range(k):                                             # col2im: tap j read x_p[j·d + l·s]
                dx_p[:, :, j * ctx.dilation:j * ctx.dilation + span:ctx.stride] += d_columns[:, :, j]
            dx = dx_p[:, :, ctx.padding[0]:ctx.padding[0] + ctx.length]
        return dx, dw, db


CONV1D = FusedOp(
    "conv1d",
    function=lambda x, weight, bias, stride, padding, dilation, groups: Conv1dOp.apply(
        x, weight, bias, stride=stride, padding=padding, dilation=dilation, groups=groups),
    composed=composed.conv1d)


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """A 1-d convolution (PyTorch's: cross-correlation, no kernel flip): input (N, C_in, L) or (C_in, L), weight
    (C_out, C_in/groups, K), bias (C_out,) -> (N, C_out, L_out). padding: zeros on both sides (a whole number),
    'valid' or 'same'."""
    _check_floating("conv1d", input, weight, bias)
    if input.ndim == 2:                               # one unbatched input, as PyTorch takes it
        return conv1d(input.reshape((1,) + input.shape), weight, bias, stride, padding, dilation, groups)[0]
    _check_conv1d_shapes(input, weight, bias, groups)
    stride, dilation = _single("stride", stride), _single("dilation", dilation)
    padding = _conv1d_padding(padding, weight.shape[2], dilation, stride)
    padded, reach = sum(padding) + input.shape[2], dilation * (weight.shape[2] - 1) + 1
    if reach > padded:
        raise ValueError(f"conv1d: the kernel reaches over {reach} positions (K={weight.shape[2]}, "
                         f"dilation={dilation}), more than the padded input's {padded} (input {input.shape})")
    return run(CONV1D, input, weight, bias, stride, padding, dilation, groups)


# ---------------------------------------------------------------- embedding, interpolate

class PaddedEmbeddingOp(EmbeddingOp):
    """The row lookup (movement.EmbeddingOp) whose row `padding_idx` receives no gradient, as PyTorch's padding_idx:
    dweight[padding_idx] = 0, so training leaves the padding token's vector as it is."""

    def forward(ctx, weight, idx, padding_idx=0):
        ctx.padding_idx = padding_idx
        return EmbeddingOp.forward(ctx, weight, idx)

    def backward(ctx, g):
        dweight, _ = EmbeddingOp.backward(ctx, g)
        dweight[ctx.padding_idx] = 0
        return dweight, None


def embedding(input, weight, padding_idx=None, max_norm=None, norm_type=2.0, scale_grad_by_freq=False, sparse=False):
    """Rows of `weight` (V, C) picked by integer `input` (any shape) -> (*input.shape, C). padding_idx (in -V..V-1):
    that row gets no gradient. max_norm, scale_grad_by_freq and sparse are not supported (refused)."""
    if max_norm is not None or scale_grad_by_freq or sparse:
        raise NotImplementedError("embedding: max_norm, scale_grad_by_freq and sparse are not supported; leave them "
                                  "at their defaults")
    if padding_idx is None:
        return movement_embedding(input, weight)
    if not -weight.shape[0] <= padding_idx < weight.shape[0]:
        raise ValueError(f"embedding: padding_idx {padding_idx} is out of range for {weight.shape[0]} rows "
                         f"(weight {weight.shape})")
    idx = input.data if isinstance(input, Tensor) else backend.xp(weight.data).asarray(input)
    return PaddedEmbeddingOp.apply(weight, idx, padding_idx=padding_idx % weight.shape[0])


INTERPOLATE_MODES = {"nearest": None, "nearest-exact": None, "linear": 3, "bilinear": 4, "trilinear": 5}


def _interpolate_sizes(input, size, scale_factor, recompute_scale_factor):
    """Per spatial axis: (output length, the scale PyTorch maps output positions back with: 1/scale_factor when a
    scale_factor is given (and not recomputed), else input length / output length)."""
    spatial = input.shape[2:]
    if (size is None) == (scale_factor is None):
        raise ValueError("interpolate: give exactly one of size or scale_factor")
    if size is not None:
        sizes = tuple(size) if isinstance(size, (tuple, list)) else (size,) * len(spatial)
        scales = [None] * len(spatial)
    else:
        scales = list(scale_factor) if isinstance(scale_factor, (tuple, list)) else [scale_factor] * len(spatial)
        sizes = tuple(math.floor(n * s) for n, s in zip(spatial, scales))
    if len(sizes) != len(spatial) or len(scales) != len(spatial):
        raise ValueError(f"interpolate: input {input.shape} has {len(spatial)} spatial axes, got size={size}, "
                         f"scale_factor={scale_factor}")
    if any(n < 1 for n in sizes):
        raise ValueError(f"interpolate: output sizes must be at least 1, got {sizes} for input {input.shape}")
    if recompute_scale_factor:
        scales = [None] * len(spatial)
    return [(out, n / out if s is None else 1 / s) for n, out, s in zip(spatial, sizes, scales)]


def interpolate(input, size=None, scale_factor=None, mode="nearest", align_corners=None, recompute_scale_factor=None,
                antialias=False):
    """Resize the spatial axes of input (N, C, d1, ...) to `size` or by `scale_factor`, as PyTorch: mode 'nearest',
    'nearest-exact' (1 to 3 spatial axes), 'linear' (N, C, L), 'bilinear' (N, C, H, W), 'trilinear' (N, C, D, H,
    W); align_corners for the linear modes. Built from primitives (indexing, and a weighted sum for the linear
    modes, one axis after another: the weights of (bi/tri)linear interpolation are products of 1-d ones)."""
    if mode not in INTERPOLATE_MODES:
        raise NotImplementedError(f"interpolate: mode {mode!r} is not supported; use one of "
                                  f"{', '.join(INTERPOLATE_MODES)}")
    if antialias:
        raise NotImplementedError("interpolate: antialias=True is not supported")
    if INTERPOLATE_MODES[mode] is None and align_corners is not None:
        raise ValueError("interpolate: align_corners can only be set with the linear modes (as in PyTorch)")
    needed = INTERPOLATE_MODES[mode]
    if (needed and input.ndim != needed) or not 3 <= input.ndim <= 5:
        raise ValueError(f"interpolate: mode {mode!r} needs input (N, C, ...) with "
                         f"{needed - 2 if needed else '1 to 3'} spatial axes, got {input.shape}")
    _check_floating("interpolate", input)
    sizes = _interpolate_sizes(input, size, scale_factor, recompute_scale_factor)
    return composed.interpolate(input, sizes, "linear" if needed else mode, bool(align_corners))


# ---------------------------------------------------------------- losses: mse, l1, binary cross-entropy

def _check_target_like_input(op, input, target):
    if input.shape != target.shape:
        raise ValueError(f"{op}: input {input.shape} and target {target.shape} differ in shape (PyTorch would "
                         f"broadcast them, with a warning: almost always a bug); reshape one to match")
    if input.dtype != target.dtype:
        raise TypeError(f"{op}: input is {input.dtype}, target {target.dtype}; convert one with .to(dtype)")


class MSELossOp(Function):
    """loss = mean over all N elements of (x - y)², or their sum, or none (the squares themselves).
    d loss / dx = 2 (x - y) g / N for the mean, 2 (x - y) g for the sum and for none (g then one per element);
    d loss / dy = -d loss / dx.   Derived in docs/mse_loss.md."""

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


def _loss_target(input, target):
    """A loss's target as a Tensor: an array or a list becomes one on input's device."""
    return target if isinstance(target, Tensor) else Tensor(backend.xp(input.data).asarray(target))


def _loss_weight(op, input, weight):
    """mse_loss' and l1_loss' elementwise weight, of input's shape (PyTorch's rule), as a Tensor."""
    weight = _loss_target(input, weight)
    if weight.shape != input.shape:
        raise ValueError(f"{op}: weight {weight.shape} and input {input.shape} must have one shape (as in PyTorch)")
    return weight


# without an elementwise weight (with one, only the composed form computes)
MSE_LOSS = FusedOp("mse_loss", function=lambda x, y, reduction: MSELossOp.apply(x, y, reduction=reduction),
                   composed=composed.mse_loss)


def mse_loss(input, target, size_average=None, reduce=None, reduction="mean", weight=None):
    """Mean squared error of two tensors of one shape -> a scalar ('mean', 'sum') or input's shape ('none').
    `target` may also be an array; it must have input's dtype (a float64 array with a float32 input is refused).
    With an elementwise `weight` (PyTorch's): weight ∘ (x - y)², whose 'mean' is its sum over sum(weight)."""
    target = _loss_target(input, target)
    _check_floating("mse_loss", input, target)
    reduction = loss_reduction("mse_loss", reduction, size_average, reduce)
    _check_target_like_input("mse_loss", input, target)
    if weight is not None:
        difference = input - target
        return composed.weighted_loss(difference * difference, _loss_weight("mse_loss", input, weight), reduction)
    return run(MSE_LOSS, input, target, reduction)


def l1_loss(input, target, size_average=None, reduce=None, reduction="mean", weight=None):
    """Mean absolute error |x - y| of two tensors of one shape (a scalar, or input's shape for 'none'), optionally
    weighted elementwise as mse_loss. d/dx = sign(x - y), 0 where x = y (PyTorch's). Built from primitives
    (a subtraction and abs): a fused op would save nothing."""
    target = _loss_target(input, target)
    _check_floating("l1_loss", input, target)
    reduction = loss_reduction("l1_loss", reduction, size_average, reduce)
    _check_target_like_input("l1_loss", input, target)
    errors = (input - target).abs()
    if weight is not None:
        return composed.weighted_loss(errors, _loss_weight("l1_loss", input, weight), reduction)
    return composed.reduce_losses(errors, reduction)


def _constant_weight(op, name, weight, input):
    """A weight that takes no gradient (binary cross-entropy's weight and pos_weight, as in PyTorch) as an array
    broadcastable to input's shape, or None."""
    if weight is None:
        return None
    if isinstance(weight, Tensor) and weight.requires_grad:
        raise RuntimeError(f"{op}: not differentiable with respect to {name}; pass {name}.detach() (as PyTorch)")
    array = weight.data if isinstance(weight, Tensor) else backend.xp(input.data).asarray(weight, dtype=input.dtype)
    broadcast_shape(f"{op}: {name}", array.shape, input.shape)
    return array.astype(input.dtype, copy=False)


def _reduce_elementwise_loss(ctx, losses, weight, reduction):
    """An elementwise loss array times `weight` (an array, or None), reduced as asked: itself ('none'), its sum,
    or its mean. ctx keeps what _elementwise_loss_grad needs."""
    if weight is not None:
        losses *= weight
    ctx.reduction, ctx.weight, ctx.count = reduction, weight, losses.size
    if reduction == "none":
        return losses
    total = losses.sum()
    return total / losses.dtype.type(losses.size) if reduction == "mean" else total


def _elementwise_loss_grad(ctx, g):
    """dL/d(each element's unweighted loss) from g = dL/d(the loss returned): g ('none', 'sum') or g/n ('mean'),
    times the weight."""
    g = g / g.dtype.type(ctx.count) if ctx.reduction == "mean" else g
    return g * ctx.weight if ctx.weight is not None else g


BCE_EPSILON = np.float32(1e-12)   # PyTorch's floor of x (1-x) in binary_cross_entropy's gradient: a float32 constant


class BinaryCrossEntropyOp(Function):
    """loss = -w (y log x + (1-y) log(1-x)) elementwise, each log clamped at -100 as in PyTorch (so x = 0 or 1 gives
    a finite loss); then the mean, the sum, or none.
    d loss/dx = w (x - y) / max(x (1-x), 1e-12)   (= -w (y/x - (1-y)/(1-x)), kept finite at 0 and 1 as PyTorch);
    d loss/dy = w (log(1-x) - log x)."""

    def forward(ctx, x, y, weight=None, reduction="mean"):
        xp = backend.xp(x)
        with np.errstate(divide="ignore"):                     # log 0 = -inf, clamped at once
            log_x, log_1mx = xp.log(x), xp.log1p(-x)
        losses = -(y * xp.maximum(log_x, -100) + (1 - y) * xp.maximum(log_1mx, -100))
        ctx.save_for_backward(x, y, log_x, log_1mx)
        return _reduce_elementwise_loss(ctx, losses, weight, reduction)

    def backward(ctx, g):
        x, y, log_x, log_1mx = ctx.saved
        xp = backend.xp(x)
        g = _elementwise_loss_grad(ctx, g)
        dx = g * (x - y) / xp.maximum(x * (1 - x), BCE_EPSILON) if ctx.needs_input_grad[0] else None
        dy = g * (log_1mx - log_x) if ctx.needs_input_grad[1] else None
        return dx, dy


BINARY_CROSS_ENTROPY = FusedOp(
    "binary_cross_entropy",
    function=lambda x, y, weight, reduction: BinaryCrossEntropyOp.apply(x, y, weight, reduction=reduction),
    composed=composed.binary_cross_entropy)


def binary_cross_entropy(input, target, weight=None, size_average=None, reduce=None, reduction="mean"):
    """Probabilities x in [0, 1] and targets y in [0, 1] of one shape -> -(y log x + (1-y) log(1-x)), averaged
    (or summed, or per element); `weight` (broadcastable to x, no gradient) rescales each element's loss."""
    target = _loss_target(input, target)
    _check_floating("binary_cross_entropy", input, target)
    reduction = loss_reduction("binary_cross_entropy", reduction, size_average, reduce)
    _check_target_like_input("binary_cross_entropy", input, target)
    for name, t in (("input", input), ("target", target)):
        if ((t.data < 0) | (t.data > 1)).any():
            raise ValueError(f"binary_cross_entropy: all elements of {name} {t.shape} should be between 0 and 1")
    weight = _constant_weight("binary_cross_entropy", "weight", weight, input)
    return run(BINARY_CROSS_ENTROPY, input, target, weight, reduction)


def _sigmoid(x):
    """σ(x) = 1/(1 + e^-x) of an array, exact for either sign: e^-|x| never overflows (as ops.SigmoidOp)."""
    xp = backend.xp(x)
    z = xp.exp(-xp.abs(x))
    return xp.where(x >= 0, 1 / (1 + z), z / (1 + z))


def _softplus_of_minus(x):
    """log(1 + e^-x) = log1p(e^-|x|) + max(-x, 0), of an array, without overflow."""
    xp = backend.xp(x)
    return xp.log1p(xp.exp(-xp.abs(x))) + xp.maximum(-x, 0)


class BinaryCrossEntropyWithLogitsOp(Function):
    """With σ the sigmoid and l = 1 + (p_w - 1) y (pos_weight p_w weighs the positive term; l = 1 without it):
    loss = w ((1-y) x + l log(1 + e^-x)) = -w (p_w y log σ(x) + (1-y) log(1 - σ(x))), elementwise; then the mean,
    the sum, or none. log(1 + e^-x) is computed as log1p(e^-|x|) + max(-x, 0), which never overflows.
    d loss/dx = w (l σ(x) - p_w y)   (σ(x) - y without pos_weight);   d loss/dy = w ((p_w - 1) log(1 + e^-x) - x)."""

    def forward(ctx, x, y, weight=None, pos_weight=None, reduction="mean"):
        softplus_minus_x = _softplus_of_minus(x)                          # -log σ(x)
        log_weight = 1 + (pos_weight - 1) * y if pos_weight is not None else 1
        losses = (1 - y) * x + log_weight * softplus_minus_x
        ctx.save_for_backward(x, y, pos_weight, softplus_minus_x)
        return _reduce_elementwise_loss(ctx, losses, weight, reduction)

    def backward(ctx, g):
        x, y, pos_weight, softplus_minus_x = ctx.saved
        g = _elementwise_loss_grad(ctx, g)
        dx = dy = None
        if ctx.needs_input_grad[0]:
            dx = g * ((1 + (pos_weight - 1) * y) * _sigmoid(x) - pos_weight * y if pos_weight is not None
                      else _sigmoid(x) - y)
        if ctx.needs_input_grad[1]:
            dy = g * ((pos_weight - 1) * softplus_minus_x - x if pos_weight is not None else -x)
        return dx, dy


BINARY_CROSS_ENTROPY_WITH_LOGITS = FusedOp(
    "binary_cross_entropy_with_logits",
    function=lambda x, y, weight, pos_weight, reduction: BinaryCrossEntropyWithLogitsOp.apply(
        x, y, weight, pos_weight, reduction=reduction),
    composed=composed.binary_cross_entropy_with_logits)


def binary_cross_entropy_with_logits(input, target, weight=None, size_average=None, reduce=None, reduction="mean",
                                     pos_weight=None):
    """Logits x and targets y in [0, 1] of one shape -> binary_cross_entropy(sigmoid(x), y), computed from x
    directly (exact where sigmoid would round to 0 or 1); `weight` rescales each element's loss, `pos_weight`
    (broadcast along the last axis: one per class) the positive term. Neither takes a gradient, as in PyTorch."""
    target = _loss_target(input, target)
    op = "binary_cross_entropy_with_logits"
    _check_floating(op, input, target)
    reduction = loss_reduction(op, reduction, size_average, reduce)
    _check_target_like_input(op, input, target)
    weight, pos_weight = (_constant_weight(op, name, w, input) for name, w in (("weight", weight),
                                                                                ("pos_weight", pos_weight)))
    return run(BINARY_CROSS_ENTROPY_WITH_LOGITS, input, target, weight, pos_weight, reduction)


# ---------------------------------------------------------------- one_hot; softmax as a method

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


Tensor.softmax = torch_softmax
Tensor.log_softmax = torch_log_softmax
