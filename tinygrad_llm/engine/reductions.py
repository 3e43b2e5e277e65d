"""Primitive ops that reduce: sums, means, products, maxima, minima and medians, logsumexp, variance and norms,
all/any; the running sum and product (cumsum, cumprod); the searches (argmax, topk, sort, argsort) whose indices carry
no gradient; and the counts (count_nonzero, unique, bincount). Each op is one recipe, as in ops.py.

Arguments are PyTorch's: `dim` (an int, a tuple of ints, or None for every axis) and `keepdim`; NumPy's `axis` and
`keepdims` work as aliases, with the same meaning (x.max(axis=0) is x.max(dim=0)). A 0-d tensor takes dim 0 or -1,
as in PyTorch, and its one element is its own sum, max, ... A reduced gradient is broadcast back over the reduced
axes: every input element contributed to the output it was summed into.

The functions are named like PyTorch's (`sum`, `max`, `all`), so inside this module Python's own are spelled
`builtins.sum` and `builtins.any`.
"""
import builtins
import collections
import math
import warnings

import numpy as np

from . import backend, movement, ops
from .arguments import as_floating, dim_or_axis, normalize_axes, tensor_input
from .tensor import Function, Tensor


def _keepdims_shape(shape, axes):
    """`shape` with each reduced axis kept as 1: the shape a reduced gradient broadcasts back from."""
    return tuple(1 if i in axes else n for i, n in enumerate(shape))


def _axes(op, dim, x):
    """The axes a reduction of the array x runs over (normalize_axes): none for a 0-d x, whose dim 0 or -1 names
    its one element."""
    axes = normalize_axes(op, dim, x.ndim)
    return axes if x.ndim else ()


class SumOp(Function):
    """out = sum of x over `axis`.   dx = g broadcast back over the summed axes."""

    def forward(ctx, x, axis=None, keepdims=False):
        ctx.axes = _axes("sum", axis, x)
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
        ctx.axes = _axes("mean", axis, x)
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


class ProdOp(Function):
    """out = the product of x along one axis (of all elements for None).
    dx_i = g * (the product of the other elements) = g * (product of those before i) * (product of those after i):
    exact where an element is 0 (out / x_i would divide by it), as PyTorch's."""

    def forward(ctx, x, axis=None, keepdims=False):
        ctx.shape = x.shape
        axes = _axes("prod", axis, x)
        whole = len(axes) != 1   # every element (or the one of a 0-d x): the product runs along x flattened
        line = x.reshape(-1) if whole else x
        ctx.axis = 0 if whole else axes[0]
        ctx.save_for_backward(line)
        out = line.prod(axis=ctx.axis, keepdims=True)
        if whole:
            return out.reshape((1,) * x.ndim if keepdims else ())
        return out if keepdims else out.squeeze(ctx.axis)

    def backward(ctx, g):
        (line,) = ctx.saved
        xp = backend.xp(line)
        others = _products_before(line, ctx.axis) * xp.flip(_products_before(xp.flip(line, ctx.axis), ctx.axis),
                                                             ctx.axis)
        return (g.reshape(_keepdims_shape(line.shape, (ctx.axis,))) * others).reshape(ctx.shape)


def _products_before(x, axis):
    """[1, x0, x0·x1, ...] along axis: for each element, the product of those before it."""
    xp = backend.xp(x)
    lead = (slice(None),) * axis
    shifted = xp.concatenate([xp.ones_like(x[lead + (slice(0, 1),)]), x[lead + (slice(None, -1),)]], axis=axis)
    return xp.cumprod(shifted, axis=axis)


def prod(x, dim=None, keepdim=False):
    """The product of the elements along `dim` (one axis), or of all of them (None)."""
    if not (dim is None or isinstance(dim, (int, np.integer))):
        raise TypeError(f"prod: dim must be one axis (an int) or None, got {dim!r}")
    return ProdOp.apply(x, axis=dim, keepdims=bool(keepdim))


Tensor.prod = prod


class CumsumOp(Function):
    """out_i = x_0 + ... + x_i along `axis`.   dx_j = g_j + ... + g_last: x_j is in every sum from j on, so its
    gradient is g summed from the end (the cumulative sum of g reversed)."""

    def forward(ctx, x, axis):
        ctx.axis = axis
        return backend.xp(x).cumsum(x, axis=axis)

    def backward(ctx, g):
        return _sum_from_end(g, ctx.axis)


def _sum_from_end(g, axis):
    """g_j + ... + g_last at each j along axis: the running sum of g reversed."""
    xp = backend.xp(g)
    return xp.flip(xp.cumsum(xp.flip(g, axis), axis=axis), axis)


def _running(op_name, op, x, dim):
    """A running sum or product (op) along dim; a 0-d tensor's dim 0 or -1 is its one element."""
    axis = normalize_axes(op_name, dim, x.ndim)[0]
    if x.ndim == 0:
        return op.apply(x.reshape(1), axis=0).reshape(())
    return op.apply(x, axis=axis)


def cumsum(x, dim):
    """The running sum along `dim`: out[i] = x[0] + ... + x[i]. Integers and bools sum as int64, as in PyTorch."""
    return _running("cumsum", CumsumOp, x, dim)


Tensor.cumsum = cumsum


class CumprodOp(Function):
    """out_i = x_0 * ... * x_i along `axis`.   dx_j = sum over i >= j of g_i * out_i / x_j: the running sum of
    g * out from the end, divided by x, as PyTorch computes it. Where x holds a 0 that division fails, so then
    dx_j = (x_0 ... x_{j-1}) * s_j with s_j = g_j + x_{j+1} * s_{j+1} (s_last = g_last): the product of the
    elements before j times a sum run back from the end, which never divides (exact with zeros, as PyTorch's)."""

    def forward(ctx, x, axis):
        ctx.axis = axis
        out = backend.xp(x).cumprod(x, axis=axis)
        ctx.save_for_backward(x, out)
        return out

    def backward(ctx, g):
        x, out = ctx.saved
        xp = backend.xp(g)
        if (x != 0).all():
            return _sum_from_end(g * out, ctx.axis) / x
        x, s = xp.moveaxis(x, ctx.axis, 0), xp.moveaxis(g, ctx.axis, 0).copy()
        for j in range(len(s) - 2, -1, -1):
            s[j] += x[j + 1] * s[j + 1]
        return xp.moveaxis(_products_before(x, 0) * s, 0, ctx.axis)


def cumprod(x, dim):
    """The running product along `dim`: out[i] = x[0] * ... * x[i]. Integers and bools multiply as int64, as in
    PyTorch."""
    return _running("cumprod", CumprodOp, x, dim)


Tensor.cumprod = cumprod


class LogsumexpOp(Function):
    """out = log(sum(exp(x))) over `axis`, computed as m + log(sum(exp(x - m))) with m the largest element, so that
    nothing overflows (m taken as 0 where it is infinite: a row of -inf gives -inf, a row holding inf gives inf, as
    PyTorch).   dx = g * exp(x - out): the softmax of x over the axes."""

    def forward(ctx, x, axis, keepdims):
        xp = backend.xp(x)
        ctx.axes = _axes("logsumexp", axis, x)
        kept = _keepdims_shape(x.shape, ctx.axes)
        m = x.max(axis=ctx.axes, keepdims=True) if x.size else xp.zeros(kept, x.dtype)
        m = xp.where(xp.isinf(m), x.dtype.type(0), m)
        with np.errstate(divide="ignore"):   # log 0 = -inf: a row of -inf, or no elements
            out = xp.log(xp.exp(x - m).sum(axis=ctx.axes, keepdims=True)) + m
        ctx.save_for_backward(x, out)
        return out if keepdims else out.reshape([n for i, n in enumerate(x.shape) if i not in ctx.axes])

    def backward(ctx, g):
        x, out = ctx.saved
        with np.errstate(invalid="ignore"):   # inf - inf where a row holds inf: NaN, as PyTorch's gradient there
            return g.reshape(out.shape) * backend.xp(x).exp(x - out)


def logsumexp(x, dim, keepdim=False):
    """log(sum(exp(x))) over `dim` (an int or a tuple), without overflow; integers give floats."""
    return LogsumexpOp.apply(as_floating("logsumexp", x), axis=dim, keepdims=bool(keepdim))


Tensor.logsumexp = logsumexp


class MaxOp(Function):
    """out = max of x over `axis`.   dx = g at the positions holding the max, 0 elsewhere;
    where several positions tie for the max, they share g equally (as torch.amax does)."""

    @staticmethod
    def extreme(x, **options):
        return x.max(**options)

    def forward(ctx, x, axis=None, keepdims=False):
        ctx.axes = _axes(ctx.op_name, axis, x)
        if builtins.any(x.shape[a] == 0 for a in ctx.axes):
            raise ValueError(f"{ctx.op_name}: cannot reduce axis {axis} of shape {x.shape}: it is empty (a "
                             f"{ctx.op_name} needs an element)")
        out = ctx.extreme(x, axis=ctx.axes, keepdims=True)
        ctx.save_for_backward(x == out)
        return out if keepdims else out.squeeze(ctx.axes)

    def backward(ctx, g):
        (is_max,) = ctx.saved
        g = g.reshape(_keepdims_shape(is_max.shape, ctx.axes))
        return g * is_max / is_max.sum(axis=ctx.axes, keepdims=True).astype(g.dtype)


class MinOp(MaxOp):
    """out = min of x over `axis`.   dx as for max: g at the positions holding the min, shared equally by ties.
    Its own op rather than -max(-x): negating an integer's minimum overflows (-(-2**31) is -2**31 in int32), and
    a bool tensor has no negative."""

    @staticmethod
    def extreme(x, **options):
        return x.min(**options)


def amax(x, dim=None, keepdim=False, *, axis=None, keepdims=None):
    """The largest value over `dim` (an int, a tuple, or None for all); tied maxima share the gradient."""
    dim, keepdim = _reduced("amax", dim, keepdim, axis, keepdims)
    return MaxOp.apply(x, axis=dim, keepdims=keepdim)


def amin(x, dim=None, keepdim=False, *, axis=None, keepdims=None):
    """The smallest value over `dim`; tied minima share the gradient."""
    dim, keepdim = _reduced("amin", dim, keepdim, axis, keepdims)
    return MinOp.apply(x, axis=dim, keepdims=keepdim)


ValuesIndices = collections.namedtuple("ValuesIndices", ["values", "indices"])   # torch.return_types.max, .sort


def max(x, dim=None, keepdim=False, *, axis=None, keepdims=None):
    """As PyTorch: x.max() the largest element (tied maxima share the gradient); x.max(dim) (or axis=) the pair
    (values, indices) along dim, the gradient going to the position `indices` names; x.max(other) the elementwise
    maximum."""
    if isinstance(dim, Tensor):
        return ops.maximum(x, dim)
    dim, keepdim = _reduced("max", dim, keepdim, axis, keepdims)
    if dim is None:
        return MaxOp.apply(x, axis=None, keepdims=keepdim)
    return _extreme_along("max", x, dim, keepdim, argmax)


def min(x, dim=None, keepdim=False, *, axis=None, keepdims=None):
    """As max, for the smallest elements."""
    if isinstance(dim, Tensor):
        return ops.minimum(x, dim)
    dim, keepdim = _reduced("min", dim, keepdim, axis, keepdims)
    if dim is None:
        return MinOp.apply(x, axis=None, keepdims=keepdim)
    return _extreme_along("min", x, dim, keepdim, argmin)


def _extreme_along(op, x, dim, keepdim, search):
    """(values, indices) along dim: search (argmax or argmin) finds the indices, and the values are taken there, so
    the gradient goes to those positions."""
    if not isinstance(dim, (int, np.integer)):
        raise TypeError(f"{op}: dim must be one axis (an int), got {dim!r}; a{op} reduces several")
    if x.ndim == 0:   # dim 0 or -1 of a 0-d tensor: its one element, at index 0
        normalize_axes(op, dim, 0)
        return _extreme_along(op, x.reshape(1), 0, False, search)
    indices = search(x, dim, keepdim=True)
    values = movement.take_along_dim(x, indices, dim)
    if not keepdim:
        values, indices = values.squeeze(dim), indices.squeeze(dim)
    return ValuesIndices(values, indices)


Tensor.amax = amax
Tensor.amin = amin
Tensor.max = max
Tensor.min = min


def _arg(op, pick, x, dim, keepdim):
    if not (dim is None or isinstance(dim, (int, np.integer))):
        raise TypeError(f"{op}: dim must be one axis (an int) or None, got {dim!r}")
    axes = _axes(op, dim, x)
    if builtins.any(x.shape[a] == 0 for a in axes):
        raise ValueError(f"{op}: cannot search axis {dim} of shape {x.shape}: it is empty")
    if dim is None or x.ndim == 0:
        index = pick(x.data.reshape(-1))
        return Tensor(index.reshape((1,) * x.ndim) if keepdim else index)
    return Tensor(pick(x.data, axis=axes[0], keepdims=keepdim))


def argmax(x, dim=None, keepdim=False):
    """The index of the largest element (along `dim`; of the flattened tensor for None). An int64 tensor, no gradient;
    the first of tied maxima, as NumPy and PyTorch."""
    return _arg("argmax", lambda a, **k: backend.xp(a).argmax(a, **k), x, dim, keepdim)


def argmin(x, dim=None, keepdim=False):
    return _arg("argmin", lambda a, **k: backend.xp(a).argmin(a, **k), x, dim, keepdim)


def _sorting_order(data, axis, descending):
    """The indices that sort the array `data` along axis, stably: tied elements keep their order, descending too.
    Descending sorts the reversed array ascending and reads the result backwards (sorting -data would overflow at an
    integer's minimum, and a bool has no negative); NaN counts as the largest, as in PyTorch."""
    xp = backend.xp(data)
    if not descending:
        return xp.argsort(data, axis=axis, kind="stable")
    backwards = xp.argsort(xp.flip(data, axis), axis=axis, kind="stable")
    return data.shape[axis] - 1 - xp.flip(backwards, axis)


def sort(x, dim=-1, descending=False, *, stable=False):
    """(values, indices) of x sorted along `dim`; the values carry the gradient back to their positions. Always
    stable: ties keep their order (PyTorch's stable=True; with stable=False PyTorch may order ties either way)."""
    axis = normalize_axes("sort", dim, x.ndim)[0]
    if x.ndim == 0:   # dim 0 or -1 of a 0-d tensor: its one element
        values, indices = sort(x.reshape(1), 0)
        return ValuesIndices(values.reshape(()), indices.reshape(()))
    order = _sorting_order(x.data, axis, descending)
    return ValuesIndices(movement.take_along_dim(x, order, axis), Tensor(order))


def topk(x, k, dim=-1, largest=True, sorted=True):
    """The k largest (or smallest) elements along `dim` and their indices, largest first (PyTorch's topk; the
    values carry the gradient back to their positions). Ties are taken in index order."""
    dim = normalize_axes("topk", dim, x.ndim)[0]
    if not 0 <= k <= x.shape[dim]:
        raise ValueError(f"topk: k = {k} is out of range for axis {dim} of length {x.shape[dim]}")
    xp = backend.xp(x.data)
    indices = xp.take(_sorting_order(x.data, dim, descending=largest), xp.arange(k), axis=dim)
    return ValuesIndices(movement.take_along_dim(x, indices, dim), Tensor(indices))


Tensor.argmax = argmax
Tensor.argmin = argmin
Tensor.sort = sort
Tensor.topk = topk


def argsort(x, dim=-1, descending=False, stable=False):
    """The indices that sort x along `dim` (sort's second result): an int64 tensor, no gradient. Always stable, as
    sort: tied elements keep their order, descending too (PyTorch's stable=True)."""
    axis = normalize_axes("argsort", dim, x.ndim)[0]
    if x.ndim == 0:   # dim 0 or -1 of a 0-d tensor: its one element, at index 0
        return Tensor(backend.xp(x.data).zeros((), np.int64))
    return Tensor(_sorting_order(x.data, axis, descending))


Tensor.argsort = argsort


class MedianOp(Function):
    """out = the lower median of all of x's elements, the ((n - 1) // 2)-th smallest (NaN where x holds a NaN, as
    PyTorch). dx = g shared equally among the elements equal to it (PyTorch's rule for median(), as for max)."""

    def forward(ctx, x):
        xp = backend.xp(x)
        flat = x.reshape(-1)
        out = xp.sort(flat)[(flat.size - 1) // 2]
        nan = x.dtype.kind == "f" and bool(xp.isnan(flat).any())
        out = xp.asarray(math.nan if nan else out, dtype=x.dtype)
        is_median = (x == out) | (xp.isnan(x) if nan else False)
        ctx.save_for_backward(is_median)
        return out

    def backward(ctx, g):
        (is_median,) = ctx.saved
        return g * is_median / is_median.sum().astype(g.dtype)


def median(x, dim=None, keepdim=False):
    """As PyTorch: x.median() the lower median of all elements (tied ones share the gradient); x.median(dim) the pair
    (values, indices) along dim, the gradient going to the position `indices` names. Of two middle elements the
    lower is the median; a NaN in a row makes the row's median NaN (at its first NaN). Among elements equal to the
    median, the index is the one a stable sort puts in the middle (PyTorch leaves it unspecified; its CPU kernel
    picks the same)."""
    if x.numel() == 0:
        raise ValueError(f"median: an empty tensor {x.shape} has no median")
    if dim is None:
        return MedianOp.apply(x)
    return _extreme_along("median", x, dim, keepdim, _median_position)


def _median_position(x, dim, keepdim=True):
    """The index of each lower median along dim (of the first NaN where there is one), kept as an axis of length 1."""
    xp, dim = backend.xp(x.data), normalize_axes("median", dim, x.ndim)[0]
    order = _sorting_order(x.data, dim, descending=False)   # stable, NaN last in the order they stand
    n = x.shape[dim]
    nans = xp.isnan(x.data).sum(axis=dim, keepdims=True) if x.dtype.kind == "f" else xp.zeros((1,) * x.ndim, int)
    position = xp.where(nans > 0, n - nans, (n - 1) // 2)
    return Tensor(xp.take_along_axis(order, position, axis=dim))


Tensor.median = median


def all(x, dim=None, keepdim=False, *, axis=None, keepdims=None):
    """Whether every element (along `dim`) is nonzero: a bool tensor outside the graph (uint8 for a uint8 tensor,
    as in PyTorch)."""
    return _test_elements("all", lambda a, **k: a.all(**k), x, dim, keepdim, axis, keepdims)


def any(x, dim=None, keepdim=False, *, axis=None, keepdims=None):
    """Whether some element (along `dim`) is nonzero: a bool tensor outside the graph."""
    return _test_elements("any", lambda a, **k: a.any(**k), x, dim, keepdim, axis, keepdims)


def _test_elements(op, test, x, dim, keepdim, axis, keepdims):
    dim, keepdim = _reduced(op, dim, keepdim, axis, keepdims)
    out = test(x.data, axis=_axes(op, dim, x), keepdims=keepdim)
    return Tensor(out.astype(np.uint8) if x.dtype == np.uint8 else out)


Tensor.all = all
Tensor.any = any


class VarOp(Function):
    """out = sum((x - mean)^2) / (N - correction) over `axis`.   dx = g * 2 (x - mean) / (N - correction).
    (The mean's own dependence on x drops out because sum(x - mean) = 0.)  correction=1 is the unbiased
    estimate, PyTorch's default; correction=0 is NumPy's.
    With N <= correction there are no degrees of freedom: as PyTorch, a warning, and inf or nan (the sum divided by
    0), and its gradient: over every element, nan where x is its mean and inf elsewhere; along dims, the formula."""

    def forward(ctx, x, axis=None, keepdims=False, correction=1):
        ctx.axes = _axes(ctx.op_name, axis, x)
        ctx.over_dims = axis is not None and x.ndim > 0   # which of PyTorch's two gradients without freedom
        n = int(np.prod([x.shape[a] for a in ctx.axes]))
        ctx.freedom = n - correction
        if ctx.freedom <= 0:
            warnings.warn(f"{ctx.op_name}: {n} elements with correction={correction} leave no degrees of freedom "
                          f"(shape {x.shape}, dim {axis}): the result is inf or nan, as in PyTorch", stacklevel=5)
        centered = x - x.mean(axis=ctx.axes, keepdims=True)
        ctx.save_for_backward(centered)
        with np.errstate(divide="ignore", invalid="ignore"):
            return (centered * centered).sum(axis=ctx.axes, keepdims=keepdims) / builtins.max(ctx.freedom, 0)

    def backward(ctx, g):
        centered = ctx.saved[0]
        g = g.reshape(_keepdims_shape(centered.shape, ctx.axes))
        if ctx.freedom > 0 or ctx.over_dims:
            with np.errstate(invalid="ignore"):   # inf * 0
                return g * centered * (2 / ctx.freedom if ctx.freedom else math.inf)
        return g * backend.xp(g).where(centered == 0, math.nan, math.inf).astype(g.dtype)


class StdOp(VarOp):
    """out = sqrt(var).   dx = var's gradient for g / (2 out), taken as 0 where out = 0 (the spread of equal
    numbers: PyTorch's gradient there, not sqrt's infinite slope at 0)."""

    def forward(ctx, x, **options):
        out = backend.xp(x).sqrt(VarOp.forward(ctx, x, **options))
        ctx.save_for_backward(ctx.saved[0], out)
        return out

    def backward(ctx, g):
        out = ctx.saved[1]
        with np.errstate(divide="ignore", invalid="ignore"):
            return VarOp.backward(ctx, backend.xp(g).where(out == 0, 0, g / (2 * out)).astype(g.dtype))


def var(x, dim=None, unbiased=None, keepdim=False, *, correction=None, axis=None, keepdims=None):
    """The variance over `dim`, dividing by N - correction (1: unbiased, PyTorch's default; 0: NumPy's). PyTorch's
    older form, unbiased=False, is correction=0 (x.var(False) and x.var(dim, False) too)."""
    return _spread(VarOp, "var", x, dim, unbiased, keepdim, correction, axis, keepdims)


def std(x, dim=None, unbiased=None, keepdim=False, *, correction=None, axis=None, keepdims=None):
    """The standard deviation, sqrt(var), with var's arguments."""
    return _spread(StdOp, "std", x, dim, unbiased, keepdim, correction, axis, keepdims)


def _spread(op, name, x, dim, unbiased, keepdim, correction, axis, keepdims):
    _floating_only(name, x)
    if isinstance(dim, bool):   # x.var(False): PyTorch's var(unbiased)
        dim, unbiased = None, dim
    if unbiased is not None and correction is not None:
        raise TypeError(f"{name}: pass unbiased or correction, not both")
    if correction is None:
        correction = 0 if unbiased is False else 1
    dim, keepdim = _reduced(name, dim, keepdim, axis, keepdims)
    return op.apply(x, axis=dim, keepdims=keepdim, correction=correction)


Tensor.var = var
Tensor.std = std


def var_mean(x, dim=None, unbiased=None, keepdim=False, *, correction=None):
    """(var, mean) over `dim`, with var's arguments, as PyTorch's var_mean; both carry gradients."""
    return _spread_and_mean(var, x, dim, unbiased, keepdim, correction)


def std_mean(x, dim=None, unbiased=None, keepdim=False, *, correction=None):
    """(std, mean) over `dim`, with std's arguments, as PyTorch's std_mean."""
    return _spread_and_mean(std, x, dim, unbiased, keepdim, correction)


def _spread_and_mean(spread, x, dim, unbiased, keepdim, correction):
    if isinstance(dim, bool):   # var_mean(x, False): PyTorch's var_mean(input, unbiased)
        dim, unbiased = None, dim
    return spread(x, dim, unbiased, keepdim, correction=correction), mean(x, dim, keepdim)


class NormOp(Function):
    """out = sqrt(sum of x² over `axis`), the 2-norm.   dx = g x / out, and 0 where out = 0 (there every direction is
    a steepest ascent; PyTorch takes 0 too)."""

    def forward(ctx, x, axis=None, keepdims=False):
        xp = backend.xp(x)
        ctx.axes = _axes("norm", axis, x)
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


# ---------------------------------------------------------------- counting (no gradient)

def count_nonzero(x, dim=None):
    """How many elements are nonzero (along `dim`, an int or a tuple): an int64 tensor."""
    data = tensor_input("count_nonzero", x).data
    return Tensor((data != 0).sum(axis=_axes("count_nonzero", dim, data)).astype(np.int64))


def unique(x, sorted=True, return_inverse=False, return_counts=False, dim=None):
    """The distinct elements of x in ascending order (along `dim`: the distinct slices, in lexicographic order), and,
    where asked, where each element's value stands among them (inverse: x's shape, or dim's length) and how often
    each occurs (counts), as PyTorch's unique. Sorted also with sorted=False, as PyTorch's CPU unique gives them; a
    NaN is never equal to another, so each is its own value, as in PyTorch. Computed on the host (the result's size
    depends on the values). No gradient."""
    data = backend.to_device(tensor_input("unique", x).data, "cpu")
    if dim is not None:
        dim = normalize_axes("unique", dim, x.ndim)[0]
    values, inverse, counts = np.unique(data, return_inverse=True, return_counts=True, axis=dim, equal_nan=False)
    inverse = inverse.reshape(x.shape if dim is None else -1)
    results = [values] + [inverse] * bool(return_inverse) + [counts] * bool(return_counts)
    results = [Tensor(backend.to_device(r.astype(np.int64) if r is not values else r, x.device)) for r in results]
    return results[0] if len(results) == 1 else tuple(results)


def bincount(x, weights=None, minlength=0):
    """How often each of 0, 1, ..., max(x) occurs in x (a vector of integers >= 0), at least minlength counts: int64;
    with weights (x's length), the sum of the weights of each value's elements: float32 weights give float32, any
    other dtype float64, as PyTorch. No gradient."""
    data = tensor_input("bincount", x).data
    if data.ndim != 1 or data.dtype.kind not in "biu" or (data.size and int(data.min()) < 0):
        raise ValueError(f"bincount: only supports a vector of non-negative integers, got {x.dtype} {x.shape}")
    if isinstance(minlength, bool) or not isinstance(minlength, (int, np.integer)) or minlength < 0:
        raise ValueError(f"bincount: minlength should be a whole number >= 0, got {minlength!r}")
    if weights is None:
        return Tensor(backend.xp(data).bincount(data, minlength=minlength).astype(np.int64))
    if tensor_input("bincount", weights).shape != x.shape:
        raise ValueError(f"bincount: weights {weights.shape} must be a vector of the input's length {x.shape}")
    dtype = np.float32 if weights.dtype == np.float32 else np.float64
    counted = backend.xp(data).bincount(data, weights=weights.data.astype(np.float64), minlength=minlength)
    return Tensor(counted.astype(dtype))


Tensor.count_nonzero, Tensor.unique, Tensor.bincount = count_nonzero, unique, bincount

