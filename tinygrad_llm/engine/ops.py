"""Primitive ops. Each op is one recipe, kept together in one place:

    class ExpOp(Function)      forward (what it computes, saving what backward needs) and backward (the chain
                               rule for this op); the docstring states the derivative
    def exp(x)                 the function users call, named as PyTorch's
    Tensor.exp = exp           the Tensor method or operator (`x.exp()`, `a + b`), attached right after it

Notation in the docstrings: `g` is dL/d(out), the gradient arriving from above; each backward returns
dL/d(input) = g * d(out)/d(input) (summed over whatever the input was broadcast to or gathered into).
Shapes: `x` is the input's shape, `out` the output's.

The functions are named like PyTorch's (`sum`, `max`, `pow`), so inside this module Python's own are spelled
`builtins.sum` and `builtins.max`.
"""
import builtins
import math

import numpy as np

from . import backend
from .tensor import Function, IndexedGrad, Tensor


def unbroadcast(grad, shape):
    """Sum `grad` down to `shape`. The adjoint of broadcast is sum: an input broadcast along an axis was used
    once per position along it, so its gradient is the sum over those positions."""
    extra = grad.ndim - len(shape)
    axes = tuple(range(extra)) + tuple(extra + i for i, n in enumerate(shape) if n == 1 and grad.shape[extra + i] != 1)
    if axes:
        grad = grad.sum(axis=axes, keepdims=True)
    return grad.reshape(shape)


def _broadcast_shape(op, *shapes):
    try:
        return np.broadcast_shapes(*shapes)
    except ValueError:
        raise ValueError(f"{op}: shapes {' and '.join(map(str, shapes))} cannot be broadcast together") from None


def promoted(op, *values, floating_result=False):
    """`values` (Tensors, at least one, Python numbers, NumPy arrays) as Tensors of the one dtype the op computes in
    (backend.promote: PyTorch's rule). Numbers become tensors on the device of the first tensor; a NumPy array
    counts as a tensor of its dtype (on the CPU only: on a GPU it would be a hidden copy in every op); integer and
    bool tensors are converted (they carry no gradient); float tensors never are (mixing float32 and float64
    raises, in Function.apply). floating_result=True: the op's result is floating whatever its inputs (true
    division): integers and bools compute in the default float dtype, as in PyTorch."""
    like = next(v for v in values if isinstance(v, Tensor))
    values = [_constant(op, v, like) for v in values]
    dtype = backend.promote(*[v.data if isinstance(v, Tensor) else v for v in values])
    if floating_result and dtype.kind != "f":
        dtype = backend.DEFAULT_FLOAT
    xp = backend.xp(like.data)
    out = []
    for v in values:
        if not isinstance(v, Tensor):
            v = Tensor(xp.asarray(v, dtype=dtype))
        elif v.dtype != dtype and v.dtype.kind != "f":
            v = Tensor(v.data.astype(dtype))
        out.append(v)
    return out


def _constant(op, value, like):
    """A value that is not a Tensor, as promoted() takes it: a number as it is, an array as a Tensor of its dtype."""
    if isinstance(value, (Tensor, bool, int, float, np.generic)):
        return value
    if isinstance(value, (np.ndarray, list, tuple)):
        if like.device != "cpu":
            raise TypeError(f"{op}: a host array {np.shape(value)} cannot meet a tensor on {like.device}; make it a "
                            f"Tensor on that device first (Tensor(array, device={like.device!r}))")
        return Tensor(np.asarray(value))
    raise TypeError(f"{op}: cannot combine a Tensor with {type(value).__name__}")


def as_floating(op, x):
    """x for an op that computes in floats (exp, log, ...): an integer or bool tensor as the default float dtype
    (PyTorch gives torch.exp(int tensor) in float32; NumPy would give float64)."""
    if x.dtype.kind == "f":
        return x
    if x.dtype.kind not in "biu":
        raise TypeError(f"{op}: unsupported dtype {x.dtype}")
    return Tensor(x.data.astype(backend.DEFAULT_FLOAT))


# ---------------------------------------------------------------- elementwise, two inputs (broadcasting)

class AddOp(Function):
    """out = a + b.   da = g,  db = g   (each summed back to its own shape)."""

    def forward(ctx, a, b):
        ctx.shapes = a.shape, b.shape
        _broadcast_shape("add", a.shape, b.shape)
        return a + b

    def backward(ctx, g):
        return unbroadcast(g, ctx.shapes[0]), unbroadcast(g, ctx.shapes[1])


def add(a, b):
    return AddOp.apply(*promoted("add", a, b))


Tensor.__add__ = add
Tensor.__radd__ = lambda self, other: add(other, self)


class SubOp(Function):
    """out = a - b.   da = g,  db = -g."""

    def forward(ctx, a, b):
        ctx.shapes = a.shape, b.shape
        _broadcast_shape("sub", a.shape, b.shape)
        return a - b

    def backward(ctx, g):
        return unbroadcast(g, ctx.shapes[0]), unbroadcast(-g, ctx.shapes[1])


def sub(a, b):
    if any(isinstance(v, (bool, np.bool_)) or getattr(v, "dtype", None) == bool for v in (a, b)):
        raise TypeError("sub: subtraction with a bool operand is not supported (as in PyTorch); for booleans use "
                        "logical operations, or convert the tensor first")
    return SubOp.apply(*promoted("sub", a, b))


Tensor.__sub__ = sub
Tensor.__rsub__ = lambda self, other: sub(other, self)


class MulOp(Function):
    """out = a * b.   da = g * b,  db = g * a."""

    def forward(ctx, a, b):
        _broadcast_shape("mul", a.shape, b.shape)
        ctx.save_for_backward(a, b)
        return a * b

    def backward(ctx, g):
        a, b = ctx.saved
        da = unbroadcast(g * b, a.shape) if ctx.needs_input_grad[0] else None
        db = unbroadcast(g * a, b.shape) if ctx.needs_input_grad[1] else None
        return da, db


def mul(a, b):
    return MulOp.apply(*promoted("mul", a, b))


Tensor.__mul__ = mul
Tensor.__rmul__ = lambda self, other: mul(other, self)


class DivOp(Function):
    """out = a / b.   da = g / b,  db = -g * a / b^2 = -g * out / b."""

    def forward(ctx, a, b):
        _broadcast_shape("div", a.shape, b.shape)
        out = a / b
        ctx.save_for_backward(a, b, out)
        return out

    def backward(ctx, g):
        a, b, out = ctx.saved
        da = unbroadcast(g / b, a.shape) if ctx.needs_input_grad[0] else None
        db = unbroadcast(-g * out / b, b.shape) if ctx.needs_input_grad[1] else None
        return da, db


def div(a, b):
    return DivOp.apply(*promoted("div", a, b, floating_result=True))


Tensor.__truediv__ = div
Tensor.__rtruediv__ = lambda self, other: div(other, self)


class PowOp(Function):
    """out = a ** b.   da = g * b * a^(b-1),  db = g * out * ln(a)   (db needs a > 0).
    Where b = 0, out = 1 whatever a is, so da = 0 (the formula would give 0 * 0^-1 = NaN at a = 0); where a = 0 and
    b >= 0, db = 0 (the formula would give out * ln 0 = 0 * -inf). Both as PyTorch."""

    def forward(ctx, a, b):
        _broadcast_shape("pow", a.shape, b.shape)
        if a.dtype.kind in "iu" and (b < 0).any():
            raise ValueError("pow: integers to negative integer powers are not allowed (the result would not be an "
                             "integer; PyTorch truncates it); convert to float first")
        out = a ** b
        ctx.save_for_backward(a, b, out)
        return out

    def backward(ctx, g):
        a, b, out = ctx.saved
        xp = backend.xp(a)
        zero = g.dtype.type(0)
        da = db = None
        with np.errstate(divide="ignore", invalid="ignore"):   # 0^-1 and ln 0 where they are replaced by 0 right away
            if ctx.needs_input_grad[0]:
                da = unbroadcast(xp.where(b == 0, zero, g * b * a ** (b - 1)), a.shape)
            if ctx.needs_input_grad[1]:
                db = unbroadcast(xp.where((a == 0) & (b >= 0), zero, g * out * xp.log(a)), b.shape)
        return da, db


def pow(a, b):
    a, b = promoted("pow", a, b)
    if a.dtype == bool:
        raise TypeError("pow: not defined for two bool operands (as in PyTorch)")
    return PowOp.apply(a, b)


Tensor.__pow__ = pow
Tensor.__rpow__ = lambda self, other: pow(other, self)


class MaximumOp(Function):
    """out = max(a, b) elementwise.   The gradient goes to the larger input; on a tie it is split in half."""

    def forward(ctx, a, b):
        _broadcast_shape("maximum", a.shape, b.shape)
        ctx.save_for_backward(a, b)
        return backend.xp(a).maximum(a, b)

    def backward(ctx, g):
        a, b = ctx.saved
        share_a = backend.xp(g).where(a == b, 0.5, a > b).astype(g.dtype)
        return unbroadcast(g * share_a, a.shape), unbroadcast(g * (1 - share_a), b.shape)


def maximum(a, b):
    return MaximumOp.apply(*promoted("maximum", a, b))


# ---------------------------------------------------------------- elementwise, one input

class NegOp(Function):
    """out = -x.   dx = -g."""

    def forward(ctx, x):
        return -x

    def backward(ctx, g):
        return -g


def neg(x):
    return NegOp.apply(x)


Tensor.__neg__ = neg


class ExpOp(Function):
    """out = e^x.   dx = g * out."""

    def forward(ctx, x):
        out = backend.xp(x).exp(x)
        ctx.save_for_backward(out)
        return out

    def backward(ctx, g):
        (out,) = ctx.saved
        return g * out


def exp(x):
    return ExpOp.apply(as_floating("exp", x))


Tensor.exp = exp


class LogOp(Function):
    """out = ln x.   dx = g / x."""

    def forward(ctx, x):
        ctx.save_for_backward(x)
        return backend.xp(x).log(x)

    def backward(ctx, g):
        (x,) = ctx.saved
        return g / x


def log(x):
    return LogOp.apply(as_floating("log", x))


Tensor.log = log


class SqrtOp(Function):
    """out = sqrt(x).   dx = g / (2 * out)."""

    def forward(ctx, x):
        out = backend.xp(x).sqrt(x)
        ctx.save_for_backward(out)
        return out

    def backward(ctx, g):
        (out,) = ctx.saved
        return g / (2 * out)


def sqrt(x):
    return SqrtOp.apply(as_floating("sqrt", x))


Tensor.sqrt = sqrt


class TanhOp(Function):
    """out = tanh x.   dx = g * (1 - out^2)."""

    def forward(ctx, x):
        out = backend.xp(x).tanh(x)
        ctx.save_for_backward(out)
        return out

    def backward(ctx, g):
        (out,) = ctx.saved
        return g * (1 - out * out)


def tanh(x):
    return TanhOp.apply(as_floating("tanh", x))


Tensor.tanh = tanh


class SigmoidOp(Function):
    """out = 1 / (1 + e^-x).   dx = g * out * (1 - out)."""

    def forward(ctx, x):
        xp = backend.xp(x)
        # e^-|x| never overflows; pick the form that is exact for each sign
        z = xp.exp(-xp.abs(x))
        out = xp.where(x >= 0, 1 / (1 + z), z / (1 + z))
        ctx.save_for_backward(out)
        return out

    def backward(ctx, g):
        (out,) = ctx.saved
        return g * out * (1 - out)


def sigmoid(x):
    return SigmoidOp.apply(as_floating("sigmoid", x))


Tensor.sigmoid = sigmoid


class ErfOp(Function):
    """out = erf x = (2/sqrt(pi)) * integral_0^x e^(-t^2) dt.   dx = g * (2/sqrt(pi)) * e^(-x^2)."""

    def forward(ctx, x):
        ctx.save_for_backward(x)
        return backend.erf(x)

    def backward(ctx, g):
        (x,) = ctx.saved
        return g * (2 / math.sqrt(math.pi)) * backend.xp(x).exp(-x * x)


def erf(x):
    return ErfOp.apply(as_floating("erf", x))


Tensor.erf = erf


class ReluOp(Function):
    """out = max(x, 0).   dx = g where x > 0, else 0."""

    def forward(ctx, x):
        ctx.save_for_backward(x > 0)
        return backend.xp(x).maximum(x, 0)

    def backward(ctx, g):
        (positive,) = ctx.saved
        return g * positive


def relu(x):
    return ReluOp.apply(x)


Tensor.relu = relu


class ToOp(Function):
    """out = x on another device or in another float dtype.   dx = g converted back."""

    def forward(ctx, x, target):
        ctx.device, ctx.dtype = backend.device_of(x), x.dtype
        if target in backend.DEVICES:
            return backend.to_device(x, target)
        return x.astype(backend.check_float_dtype(target, "to"))

    def backward(ctx, g):
        return backend.to_device(g, ctx.device).astype(ctx.dtype, copy=False), None


def to(x, target):
    """A copy of `x` on device `target` ('cpu'/'cuda') or in float dtype `target`; gradients flow back."""
    if target in backend.DEVICES:
        if target == x.device:
            return x
    elif backend.check_float_dtype(target, "to") == x.dtype:
        return x
    return ToOp.apply(x, target)


Tensor.to = to


# ---------------------------------------------------------------- matmul

class MatmulOp(Function):
    """out = a @ b, batched over leading axes, which broadcast.  (..., n, k) @ (..., k, m) -> (..., n, m)
    da = g @ b^T,  db = a^T @ g   (each summed over the batch axes it was broadcast along).
    A 1-d operand is treated as a row (for a) or a column (for b), as NumPy does. Index form: docs/matmul.md."""

    def forward(ctx, a, b):
        if a.ndim == 0 or b.ndim == 0:
            raise ValueError(f"matmul: operands must have at least one axis, got shapes {a.shape} and {b.shape}")
        if a.shape[-1] != b.shape[-2 if b.ndim > 1 else 0]:
            raise ValueError(f"matmul: shapes {a.shape} and {b.shape} do not align: "
                             f"{a.shape[-1]} (last of a) != {b.shape[-2 if b.ndim > 1 else 0]} (rows of b)")
        _broadcast_shape("matmul", a.shape[:-2], b.shape[:-2])
        ctx.save_for_backward(a, b)
        return a @ b

    def backward(ctx, g):
        a, b = ctx.saved
        a2 = a.reshape(1, -1) if a.ndim == 1 else a  # a vector a is a (1, k) row
        b2 = b.reshape(-1, 1) if b.ndim == 1 else b  # a vector b is a (k, 1) column
        g2 = g.reshape(np.broadcast_shapes(a2.shape[:-2], b2.shape[:-2]) + (a2.shape[-2], b2.shape[-1]))
        da = unbroadcast(g2 @ b2.swapaxes(-1, -2), a2.shape).reshape(a.shape) if ctx.needs_input_grad[0] else None
        db = unbroadcast(a2.swapaxes(-1, -2) @ g2, b2.shape).reshape(b.shape) if ctx.needs_input_grad[1] else None
        return da, db


def matmul(a, b):
    return MatmulOp.apply(*promoted("matmul", a, b))


Tensor.__matmul__ = matmul


# ---------------------------------------------------------------- reductions

def normalize_axes(op, axis, ndim):
    """`axis` (None, int or tuple) as a sorted tuple of non-negative axes; a clear error when out of range."""
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    for a in axes:
        if not -ndim <= a < builtins.max(ndim, 1):
            raise ValueError(f"{op}: axis {a} is out of range for a tensor with {ndim} axes")
    normalized = tuple(sorted(a % builtins.max(ndim, 1) for a in axes))
    if len(set(normalized)) != len(normalized):
        raise ValueError(f"{op}: axis {axis} names the same axis twice (for a tensor with {ndim} axes)")
    return normalized


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


def sum(x, axis=None, keepdims=False):
    return SumOp.apply(x, axis=axis, keepdims=keepdims)


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
                        f".to(np.float32) first)")


def mean(x, axis=None, keepdims=False):
    _floating_only("mean", x)
    return MeanOp.apply(x, axis=axis, keepdims=keepdims)


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


def max(x, axis=None, keepdims=False):
    return MaxOp.apply(x, axis=axis, keepdims=keepdims)


Tensor.max = max


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


def var(x, axis=None, keepdims=False, correction=1):
    _floating_only("var", x)
    return VarOp.apply(x, axis=axis, keepdims=keepdims, correction=correction)


Tensor.var = var


# ---------------------------------------------------------------- movement and indexing

class ReshapeOp(Function):
    """out = x viewed with a new shape (same elements, same order).   dx = g reshaped back."""

    def forward(ctx, x, shape):
        ctx.shape = x.shape
        try:
            return x.reshape(shape)
        except ValueError:
            raise ValueError(f"reshape: cannot reshape {x.shape} ({x.size} elements) into {tuple(shape)}") from None

    def backward(ctx, g):
        return g.reshape(ctx.shape)


def reshape(x, *shape):
    shape = tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
    return ReshapeOp.apply(x, shape=shape)


Tensor.reshape = reshape


class PermuteOp(Function):
    """out = x with its axes reordered: out.shape[i] = x.shape[axes[i]].   dx = g permuted by the inverse order."""

    def forward(ctx, x, axes):
        if sorted(a + x.ndim if a < 0 else a for a in axes) != list(range(x.ndim)):  # each axis once, in range
            raise ValueError(f"permute: {tuple(axes)} is not an ordering of the {x.ndim} axes of shape {x.shape}")
        ctx.axes = axes
        return x.transpose(axes)

    def backward(ctx, g):
        return g.transpose(np.argsort([a % g.ndim for a in ctx.axes]))


def permute(x, *axes):
    axes = tuple(axes[0]) if len(axes) == 1 and isinstance(axes[0], (tuple, list)) else axes
    return PermuteOp.apply(x, axes=axes)


Tensor.permute = permute


def transpose(x, axis0=-2, axis1=-1):
    """Swap two axes (the last two by default)."""
    axis0, axis1 = (normalize_axes("transpose", a, x.ndim)[0] for a in (axis0, axis1))
    axes = list(range(x.ndim))
    axes[axis0], axes[axis1] = axes[axis1], axes[axis0]
    return PermuteOp.apply(x, axes=tuple(axes))


Tensor.transpose = transpose
Tensor.T = property(lambda self: transpose(self))


def _index_arrays(index):
    """A `__getitem__` index with any Tensors in it replaced by their arrays."""
    if isinstance(index, tuple):
        return tuple(i.data if isinstance(i, Tensor) else i for i in index)
    return index.data if isinstance(index, Tensor) else index


def _has_array(index):
    parts = index if isinstance(index, tuple) else (index,)
    return any(hasattr(p, "shape") or isinstance(p, list) for p in parts)


class GetItemOp(Function):
    """out = x[index], with slices, integers, None, Ellipsis and integer arrays (NumPy's rules).
    dx = zeros of x's shape with g added at the indexed positions (scatter-add: an element picked twice by an
    integer array receives both gradients). Returned as an IndexedGrad, which the backward walk writes into one
    buffer per tensor, so reading many slices of one array costs one array of gradient, not one per slice."""

    def forward(ctx, x, index):
        ctx.shape, ctx.index = x.shape, index
        try:
            return x[index]
        except IndexError as e:
            raise IndexError(f"getitem: index {index!r} does not fit shape {x.shape}: {e}") from None

    def backward(ctx, g):
        return IndexedGrad(ctx.shape, ctx.index, g, repeats=_has_array(ctx.index))


def getitem(x, index):
    return GetItemOp.apply(x, index=_index_arrays(index))


Tensor.__getitem__ = getitem


class ConcatOp(Function):
    """out = the inputs joined along `axis`.   d(input i) = the slice of g that input i occupies."""

    def forward(ctx, *xs, axis=0):
        shapes = [x.shape for x in xs]
        ctx.axis = normalize_axes("concat", axis, xs[0].ndim)[0]
        for s in shapes:
            if len(s) != len(shapes[0]) or any(a != b for i, (a, b) in enumerate(zip(s, shapes[0])) if i != ctx.axis):
                raise ValueError(f"concat: shapes {shapes} differ outside axis {axis}")
        ctx.boundaries = np.cumsum([s[ctx.axis] for s in shapes])[:-1]
        return backend.xp(xs[0]).concatenate(xs, axis=ctx.axis)

    def backward(ctx, g):
        return tuple(backend.xp(g).split(g, ctx.boundaries, axis=ctx.axis))


def concat(tensors, axis=0):
    return ConcatOp.apply(*promoted("concat", *tensors), axis=axis)


class StackOp(Function):
    """out = the inputs (all of one shape) stacked along a new `axis`.   d(input i) = g taken at index i."""

    def forward(ctx, *xs, axis=0):
        if len({x.shape for x in xs}) != 1:
            raise ValueError(f"stack: all inputs must have one shape, got {[x.shape for x in xs]}")
        ctx.axis = normalize_axes("stack", axis, xs[0].ndim + 1)[0]
        return backend.xp(xs[0]).stack(xs, axis=ctx.axis)

    def backward(ctx, g):
        return tuple(g.take(i, axis=ctx.axis) for i in range(g.shape[ctx.axis]))


def stack(tensors, axis=0):
    return StackOp.apply(*promoted("stack", *tensors), axis=axis)


def split(x, split_size, axis=-1):
    """Pieces of `split_size` along `axis` (the last may be shorter), as PyTorch's split; a list of sizes
    gives pieces of those sizes."""
    axis = normalize_axes("split", axis, x.ndim)[0]
    length = x.shape[axis]
    if not isinstance(split_size, (list, tuple)) and split_size < 1:
        raise ValueError(f"split: split_size must be at least 1, got {split_size}")
    sizes = list(split_size) if isinstance(split_size, (list, tuple)) else \
        [split_size] * (length // split_size) + ([length % split_size] if length % split_size else [])
    if builtins.sum(sizes) != length:
        raise ValueError(f"split: sizes {sizes} do not add up to {length}, the length of axis {axis} of {x.shape}")
    starts = np.cumsum([0] + sizes[:-1])
    lead = (slice(None),) * (axis % x.ndim)
    return [getitem(x, lead + (slice(int(s), int(s) + n),)) for s, n in zip(starts, sizes)]


Tensor.split = split


class WhereOp(Function):
    """out = a where cond else b.   da = g where cond (else 0),  db = g where not cond.  cond gets no gradient."""

    def forward(ctx, cond, a, b):
        _broadcast_shape("where", cond.shape, a.shape, b.shape)
        ctx.save_for_backward(cond)
        ctx.shapes = a.shape, b.shape
        return backend.xp(a).where(cond, a, b)

    def backward(ctx, g):
        (cond,) = ctx.saved
        zero = g.dtype.type(0)
        xp = backend.xp(g)
        da = unbroadcast(xp.where(cond, g, zero), ctx.shapes[0]) if ctx.needs_input_grad[1] else None
        db = unbroadcast(xp.where(cond, zero, g), ctx.shapes[1]) if ctx.needs_input_grad[2] else None
        return None, da, db


def where(cond, a, b):
    """a where cond else b; either of a, b may be a Python number (the two promote as in a binary op)."""
    cond = cond.data if isinstance(cond, Tensor) else cond
    if not isinstance(a, Tensor) and not isinstance(b, Tensor):
        raise TypeError(f"where: a or b must be a Tensor (they give the result its dtype and device), got "
                        f"{type(a).__name__} and {type(b).__name__}; for plain arrays use numpy.where")
    return WhereOp.apply(cond, *promoted("where", a, b))


def masked_fill(x, mask, value):
    """x with `value` wherever `mask` is true (mask broadcasts against x); the result keeps x's dtype, as in
    PyTorch (the value is converted to it)."""
    return where(mask, Tensor(backend.xp(x.data).asarray(value, dtype=x.dtype)), x)


Tensor.masked_fill = masked_fill


class EmbeddingOp(Function):
    """out[..., :] = weight[idx[...], :].  (V, C) weight, integer idx of any shape -> (*idx.shape, C)
    dweight = scatter-add of g into the rows named by idx (a row used k times receives the sum of k gradients)."""

    def forward(ctx, weight, idx):
        if idx.dtype.kind not in "iu":
            raise TypeError(f"embedding: indices must be integers, got dtype {idx.dtype}")
        bad = idx[(idx < 0) | (idx >= weight.shape[0])]
        if bad.size:
            raise IndexError(f"embedding: index {int(bad[0])} is out of range for a table of {weight.shape[0]} rows "
                             f"(weight {weight.shape}, indices {idx.shape})")
        ctx.idx, ctx.shape = idx, weight.shape
        return weight[idx]

    def backward(ctx, g):
        dweight = backend.xp(g).zeros(ctx.shape, dtype=g.dtype)
        backend.scatter_add_rows(dweight, ctx.idx.reshape(-1), g.reshape(-1, ctx.shape[1]))
        return dweight, None


def embedding(idx, weight):
    """Rows of `weight` (V, C) picked by integer `idx` (any shape) -> (*idx.shape, C). PyTorch's argument order."""
    idx = idx.data if isinstance(idx, Tensor) else backend.xp(weight.data).asarray(idx)
    return EmbeddingOp.apply(weight, idx)


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
