"""Primitive ops that reduce: sums, means, maxima and minima, variance and norms, and the searches (argmax, topk)
whose indices carry no gradient. Each op is one recipe, as in ops.py.

Arguments are PyTorch's: `dim` (an int, a tuple of ints, or None for every axis) and `keepdim`; NumPy's `axis` and
`keepdims` work as aliases. A reduced gradient is broadcast back over the reduced axes: every input element
contributed to the output it was summed into.
"""
import collections
import math

import numpy as np

from . import backend, movement, ops
from .ops import dim_or_axis, normalize_axes
from .tensor import Function, Tensor


def _keepdims_shape(shape, axes):
    """`shape` with each reduced axis kept as 1: the shape a reduced gradient broadcasts back from."""
    return tuple(1 if i in axes else n for i, n in enumerate(shape))


class SumOp(Function):
    """out = sum of x over `axis`.   dx = g broadcast back over the summed axes."""

    def forward(ctx, x, axis=None, keepdims=False):
        ctx.axes = normalize_axes("sum", axis, x.ndim)
        ctx.shape = x.shape
        return x.sum(axis=ctx.axes, keepdims=keepdims)

    def backward(ctx, g):
        g = g.reshape(_keepdims_shape(ctx.shape, ctx.axes))
        return backend.xp(g).broadcast_to(g, ctx.shape)


def _reduced(op, dim, keepdim, axis, keepdims):
    """PyTorch's dim/keepdim, or NumPy's axis/keepdims as aliases (one of each pair)."""
    return dim_or_axis(op, dim, axis, None), bool(keepdim if keepdims is None else keepdims)


def sum(x, dim=None, keepdim=False, *, axis=None, keepdims=None):
    """The sum over `dim` (an int, a tuple, or None for all)."""
    dim, keepdim = _reduced("sum", dim, keepdim, axis, keepdims)
    return SumOp.apply(x, axis=dim, keepdims=keepdim)


Tensor.sum = sum


class MeanOp(Function):
    """out = mean of x over `axis` (N elements each).   dx = g / N broadcast back."""

    def forward(ctx, x, axis=None, keepdims=False):
        ctx.axes = normalize_axes("mean", axis, x.ndim)
        ctx.shape = x.shape
        return x.mean(axis=ctx.axes, keepdims=keepdims)

    def backward(ctx, g):
        n = int(np.prod([ctx.shape[a] for a in ctx.axes]))
        g = g.reshape(_keepdims_shape(ctx.shape, ctx.axes)) / n
        return backend.xp(g).broadcast_to(g, ctx.shape)


def _floating_only(op, x):
    if x.dtype.kind != "f":
        raise TypeError(f"{op}: needs a floating tensor, got {x.dtype} (as PyTorch: convert it with "
                        f".float() first)")


def mean(x, dim=None, keepdim=False, *, axis=None, keepdims=None):
    _floating_only("mean", x)
    dim, keepdim = _reduced("mean", dim, keepdim, axis, keepdims)
    return MeanOp.apply(x, axis=dim, keepdims=keepdim)


Tensor.mean = mean


class MaxOp(Function):
    """out = max of x over `axis`.   dx = g at the positions holding the max, 0 elsewhere;
    where several positions tie for the max, they share g equally (as torch.amax does)."""

    def forward(ctx, x, axis=None, keepdims=False):
        ctx.axes = normalize_axes("max", axis, x.ndim)
        if any(x.shape[a] == 0 for a in ctx.axes):
            raise ValueError(f"max: cannot reduce axis {axis} of shape {x.shape}: it is empty (a max needs an element)")
        out = x.max(axis=ctx.axes, keepdims=True)
        ctx.save_for_backward(x == out)
        return out if keepdims else out.squeeze(ctx.axes)

    def backward(ctx, g):
        (is_max,) = ctx.saved
        g = g.reshape(_keepdims_shape(is_max.shape, ctx.axes))
        return g * is_max / is_max.sum(axis=ctx.axes, keepdims=True).astype(g.dtype)


def amax(x, dim=None, keepdim=False, *, axis=None, keepdims=None):
    """The largest value over `dim` (an int, a tuple, or None for all); tied maxima share the gradient."""
    dim, keepdim = _reduced("amax", dim, keepdim, axis, keepdims)
    return MaxOp.apply(x, axis=dim, keepdims=keepdim)


def amin(x, dim=None, keepdim=False, *, axis=None, keepdims=None):
    """The smallest value over `dim`: -amax(-x), so tied minima share the gradient too."""
    return -amax(-x, dim, keepdim, axis=axis, keepdims=keepdims)


MaxResult = collections.namedtuple("MaxResult", ["values", "indices"])   # PyTorch's torch.return_types.max


def max(x, dim=None, keepdim=False, *, axis=None, keepdims=None):
    """As PyTorch: x.max() the largest element (tied maxima share the gradient); x.max(dim) the pair (values,
    indices) along dim, the gradient going to the position `indices` names; x.max(other) the elementwise maximum.
    With NumPy's axis=/keepdims= it is amax."""
    if isinstance(dim, Tensor):
        return ops.maximum(x, dim)
    if dim is None or axis is not None:
        return amax(x, dim, keepdim, axis=axis, keepdims=keepdims)
    return _extreme_along(x, dim, keepdim, argmax(x, dim, keepdim=True))


def min(x, dim=None, keepdim=False, *, axis=None, keepdims=None):
    """As max, for the smallest elements."""
    if isinstance(dim, Tensor):
        return ops.minimum(x, dim)
    if dim is None or axis is not None:
        return amin(x, dim, keepdim, axis=axis, keepdims=keepdims)
    return _extreme_along(x, dim, keepdim, argmin(x, dim, keepdim=True))


def _extreme_along(x, dim, keepdim, indices):
    values = movement.take_along_dim(x, indices, dim)
    if not keepdim:
        values, indices = values.squeeze(dim), indices.squeeze(dim)
    return MaxResult(values, indices)


Tensor.amax = amax
Tensor.amin = amin
Tensor.max = max
Tensor.min = min


def _arg(op, pick, x, dim, keepdim):
    axes = normalize_axes(op, dim, x.ndim)
    if any(x.shape[a] == 0 for a in axes):
        raise ValueError(f"{op}: cannot search axis {dim} of shape {x.shape}: it is empty")
    if dim is None:
        index = pick(x.data.reshape(-1))
        return Tensor(index.reshape((1,) * x.ndim) if keepdim else index)
    return Tensor(pick(x.data, axis=axes[0], keepdims=keepdim))


def argmax(x, dim=None, keepdim=False):
    """The index of the largest element (along `dim`; of the flattened tensor for None). An int64 tensor, no gradient;
    the first of tied maxima, as NumPy and PyTorch."""
    return _arg("argmax", lambda a, **k: backend.xp(a).argmax(a, **k), x, dim, keepdim)


def argmin(x, dim=None, keepdim=False):
    return _arg("argmin", lambda a, **k: backend.xp(a).argmin(a, **k), x, dim, keepdim)


def topk(x, k, dim=-1, largest=True, sorted=True):
    """The k largest (or smallest) elements along `dim` and their indices, largest first (PyTorch's topk; the
    values carry the gradient back to their positions). Ties are taken in index order."""
    dim = normalize_axes("topk", dim, x.ndim)[0]
    if not 0 <= k <= x.shape[dim]:
        raise ValueError(f"topk: k = {k} is out of range for axis {dim} of length {x.shape[dim]}")
    xp = backend.xp(x.data)
    order = xp.argsort(-x.data if largest else x.data, axis=dim, kind="stable")
    indices = xp.take(order, xp.arange(k), axis=dim)
    return MaxResult(movement.take_along_dim(x, indices, dim), Tensor(indices))


Tensor.argmax = argmax
Tensor.argmin = argmin
Tensor.topk = topk


class VarOp(Function):
    """out = sum((x - mean)^2) / (N - correction) over `axis`.   dx = g * 2 (x - mean) / (N - correction).
    (The mean's own dependence on x drops out because sum(x - mean) = 0.)  correction=1 is the unbiased
    estimate, PyTorch's default; correction=0 is NumPy's."""

    def forward(ctx, x, axis=None, keepdims=False, correction=1):
        ctx.axes = normalize_axes("var", axis, x.ndim)
        centered = x - x.mean(axis=ctx.axes, keepdims=True)
        ctx.denominator = int(np.prod([x.shape[a] for a in ctx.axes])) - correction
        if ctx.denominator <= 0:
            raise ValueError(f"var: {ctx.denominator + correction} elements with correction={correction} "
                             f"leave no degrees of freedom (shape {x.shape}, axis {axis})")
        ctx.save_for_backward(centered)
        return (centered * centered).sum(axis=ctx.axes, keepdims=keepdims) / ctx.denominator

    def backward(ctx, g):
        (centered,) = ctx.saved
        g = g.reshape(_keepdims_shape(centered.shape, ctx.axes))
        return g * centered * (2 / ctx.denominator)


def var(x, dim=None, keepdim=False, *, correction=1, axis=None, keepdims=None):
    """The variance over `dim`, dividing by N - correction (1: unbiased, PyTorch's default; 0: NumPy's)."""
    _floating_only("var", x)
    dim, keepdim = _reduced("var", dim, keepdim, axis, keepdims)
    return VarOp.apply(x, axis=dim, keepdims=keepdim, correction=correction)


def std(x, dim=None, keepdim=False, *, correction=1, axis=None, keepdims=None):
    """sqrt(var): its gradient is var's divided by 2·std (infinite where std is 0, as in PyTorch)."""
    return var(x, dim, keepdim, correction=correction, axis=axis, keepdims=keepdims).sqrt()


Tensor.var = var
Tensor.std = std


class NormOp(Function):
    """out = sqrt(sum of x² over `axis`), the 2-norm.   dx = g x / out, and 0 where out = 0 (there every direction is
    a steepest ascent; PyTorch takes 0 too)."""

    def forward(ctx, x, axis=None, keepdims=False):
        xp = backend.xp(x)
        ctx.axes = normalize_axes("norm", axis, x.ndim)
        out = xp.sqrt((x * x).sum(axis=ctx.axes, keepdims=True))
        ctx.save_for_backward(x, out)
        return out if keepdims else out.reshape([n for i, n in enumerate(out.shape) if i not in ctx.axes])

    def backward(ctx, g):
        x, out = ctx.saved
        g = g.reshape(out.shape)
        safe = backend.xp(out).where(out > 0, out, 1)
        return g * x / safe * (out > 0)


def norm(x, p=2, dim=None, keepdim=False):
    """The p-norm over `dim` (None: all elements): p = 2 (also "fro"), 1, or inf; other p as (Σ|x|^p)^(1/p)."""
    _floating_only("norm", x)
    if p in (2, "fro"):
        return NormOp.apply(x, axis=dim, keepdims=keepdim)
    if p == 1:
        return x.abs().sum(dim, keepdim)
    if p == math.inf:
        return x.abs().amax(dim, keepdim)
    if isinstance(p, (int, float)) and p > 0:
        return (x.abs() ** p).sum(dim, keepdim) ** (1 / p)
    raise ValueError(f"norm: p must be a positive number, 'fro' or inf, got {p!r}")


Tensor.norm = norm


# ---------------------------------------------------------------- reducing per-row losses
# shared by the fused cross-entropy (functional.py) and its CUDA twin (cuda/fused.py)

def reduce_row_losses(losses, keep, reduction):
    """Per-row losses (M,) -> (the loss returned, the number of rows averaged over): all rows for "none", their
    sum for "sum", their mean over the kept (not ignored) rows for "mean" (count None unless "mean")."""
    if reduction == "none":
        return losses, None
    if reduction == "sum":
        return losses.sum(), None
    count = int(keep.sum())
    return losses.sum() / losses.dtype.type(count), count


def row_loss_grads(g, keep, reduction, count):
    """dL/d(loss of each row) (M,) from g = dL/d(the loss returned): g itself per row ("none"), g ("sum"), or
    g / count ("mean"); 0 for ignored rows."""
    if reduction == "none":
        return g.reshape(-1) * keep
    return keep * (g / g.dtype.type(count) if reduction == "mean" else g)
