"""Primitive ops: elementwise arithmetic and math, comparisons, conversions, matmul (movement.py and
reductions.py hold the rest). Each op is one recipe, kept together in one place:

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
from .tensor import Function, Tensor


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


def normalize_axes(op, axis, ndim):
    """`axis` (None, int or tuple) as a sorted tuple of non-negative axes; a clear error when out of range. A 0-d
    tensor takes axis 0 or -1, as in PyTorch (both read as 0)."""
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    for a in axes:
        if not -builtins.max(ndim, 1) <= a < builtins.max(ndim, 1):
            raise ValueError(f"{op}: axis {a} is out of range for a tensor with {ndim} axes")
    normalized = tuple(sorted(a % builtins.max(ndim, 1) for a in axes))
    if len(set(normalized)) != len(normalized):
        raise ValueError(f"{op}: axis {axis} names the same axis twice (for a tensor with {ndim} axes)")
    return normalized


def dim_or_axis(op, dim, axis, default):
    """PyTorch's `dim`, or NumPy's `axis` as an alias: one of the two, not both (`default` is dim's default)."""
    if axis is None:
        return dim
    if dim != default:
        raise TypeError(f"{op}: pass dim or axis, not both")
    return axis


def promoted(op, *values, floating_result=False):
    """`values` (Tensors, at least one, Python numbers, NumPy arrays) as Tensors of the one dtype the op computes in
    (backend.promote: PyTorch's rule). Numbers become tensors on the device of the first tensor; a NumPy array
    counts as a tensor of its dtype (on the CPU only: on a GPU it would be a hidden copy in every op); integer and
    bool tensors are converted (they carry no gradient); float tensors never are (mixing float32 and float64
    raises, in Function.apply). floating_result=True: the op's result is floating whatever its inputs (true
    division): integers and bools compute in the default float dtype, as in PyTorch."""
    if len(values) == 2:   # the everyday cases, decided at once: two tensors of one dtype, a float tensor and a number
        a, b = values
        if isinstance(a, Tensor) and a.dtype.kind == "f":
            if isinstance(b, Tensor) and b.dtype == a.dtype:
                return values
            if type(b) in (float, int):
                return a, Tensor(backend.xp(a.data).asarray(b, dtype=a.dtype))
        elif isinstance(b, Tensor) and b.dtype.kind == "f" and type(a) in (float, int):
            return Tensor(backend.xp(b.data).asarray(a, dtype=b.dtype)), b
    like = next((v for v in values if isinstance(v, Tensor)), None)
    if like is None:   # maximum(1.0, 2.0), cat([array]): no tensor to give the result its device
        raise TypeError(f"{op}: needs a Tensor among its inputs, got {', '.join(type(v).__name__ for v in values)}")
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
        if like.is_cuda:
            raise TypeError(f"{op}: a host array {np.shape(value)} cannot meet a tensor on {like.device}; make it a "
                            f"Tensor on that device first (Tensor(array, device='{like.device}'))")
        return Tensor(np.asarray(value))
    raise TypeError(f"{op}: cannot combine a Tensor with {type(value).__name__}")


def tensor_input(op, x):
    """x, which must be a Tensor: a clear error for a list or an array passed to a function of tensors."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: expects a Tensor, got {type(x).__name__}")
    return x


def as_floating(op, x):
    """x for an op that computes in floats (exp, log, ...): an integer or bool tensor as the default float dtype
    (PyTorch gives torch.exp(int tensor) in float32; NumPy would give float64)."""
    if tensor_input(op, x).dtype.kind == "f":
        return x
    return Tensor(x.data.astype(backend.DEFAULT_FLOAT))   # a Tensor holds bool, integer or float only


# ---------------------------------------------------------------- elementwise, two inputs (broadcasting)

class AddOp(Function):
    """out = a + b.   da = g,  db = g   (each summed back to its own shape)."""

    def forward(ctx, a, b):
        ctx.shapes = a.shape, b.shape
        _broadcast_shape("add", a.shape, b.shape)
        return a + b

    def backward(ctx, g):
        return unbroadcast(g, ctx.shapes[0]), unbroadcast(g, ctx.shapes[1])


def add(a, b, *, alpha=1):
    """a + alpha * b, as PyTorch's add (alpha scales the second operand)."""
    if alpha != 1:
        b = _scaled("add", a, b, alpha)
    return AddOp.apply(*promoted("add", a, b))


def _scaled(op, a, b, alpha):
    """alpha * b, for add's and sub's alpha. A float alpha with integer operands is refused, as PyTorch refuses it
    (the product would be truncated)."""
    if isinstance(alpha, float) and all(getattr(v, "dtype", np.dtype(type(v))).kind in "biu" for v in (a, b)):
        raise TypeError(f"{op}: alpha={alpha} is a float and the operands are integers (as PyTorch, refused: the "
                        f"result would be truncated)")
    return mul(b, alpha)


Tensor.__add__ = add
Tensor.__radd__ = lambda self, other: add(other, self)
Tensor.add = add


class SubOp(Function):
    """out = a - b.   da = g,  db = -g."""

    def forward(ctx, a, b):
        ctx.shapes = a.shape, b.shape
        _broadcast_shape("sub", a.shape, b.shape)
        return a - b

    def backward(ctx, g):
        return unbroadcast(g, ctx.shapes[0]), unbroadcast(-g, ctx.shapes[1])


def sub(a, b, *, alpha=1):
    """a - alpha * b, as PyTorch's sub."""
    if any(isinstance(v, (bool, np.bool_)) or getattr(v, "dtype", None) == bool for v in (a, b)):
        raise TypeError("sub: subtraction with a bool operand is not supported (as in PyTorch); for booleans use "
                        "logical operations, or convert the tensor first")
    if alpha != 1:
        b = _scaled("sub", a, b, alpha)
    return SubOp.apply(*promoted("sub", a, b))


Tensor.__sub__ = sub
Tensor.__rsub__ = lambda self, other: sub(other, self)
Tensor.sub = sub


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
Tensor.mul = mul


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


def div(a, b, *, rounding_mode=None):
    """a / b: true division (integers give floats), or with rounding_mode "floor" or "trunc" the quotient rounded
    down or toward zero, in the operands' dtype (PyTorch's div)."""
    if rounding_mode is None:
        return DivOp.apply(*promoted("div", a, b, floating_result=True))
    if rounding_mode not in ("floor", "trunc"):
        raise ValueError(f"div: rounding_mode must be None, 'floor' or 'trunc', got {rounding_mode!r}")
    a, b = promoted("div", a, b)
    if a.dtype == bool:
        raise TypeError(f"div: rounding_mode={rounding_mode!r} is not defined for bool operands (as in PyTorch)")
    return RoundedDivOp.apply(a, b, mode=rounding_mode)


Tensor.__truediv__ = div
Tensor.__rtruediv__ = lambda self, other: div(other, self)
Tensor.div = div


def _refuse_integer_division_by_zero(op, a, b):
    if a.dtype.kind in "iu" and (b == 0).any():
        raise ZeroDivisionError(f"{op}: integer division by zero (divisor {b.shape}), as in PyTorch")


class RoundedDivOp(Function):
    """out = a / b rounded down (mode "floor", also a // b) or toward zero ("trunc").   da = 0, db = 0: the
    quotient is flat between its jumps, so PyTorch's gradient is 0 too. (For a // b PyTorch leaves the derivative
    unimplemented and its backward raises; this 0 is div(rounding_mode="floor")'s.)"""

    def forward(ctx, a, b, mode):
        _broadcast_shape("div", a.shape, b.shape)
        _refuse_integer_division_by_zero("div", a, b)
        ctx.shapes = a.shape, b.shape
        xp = backend.xp(a)
        if mode == "floor":
            with np.errstate(divide="ignore", invalid="ignore"):   # x // 0 is inf or nan for floats, as PyTorch
                return xp.floor_divide(a, b)
        if a.dtype.kind in "iu":
            return (a - xp.fmod(a, b)) // b   # a - fmod(a, b) is a multiple of b: exact
        with np.errstate(divide="ignore", invalid="ignore"):
            return xp.trunc(a / b)

    def backward(ctx, g):
        xp = backend.xp(g)
        return xp.zeros(ctx.shapes[0], g.dtype), xp.zeros(ctx.shapes[1], g.dtype)


def floor_divide(a, b):
    """a // b: the quotient rounded down (PyTorch's floor_divide, div with rounding_mode="floor")."""
    return div(a, b, rounding_mode="floor")


Tensor.__floordiv__ = floor_divide
Tensor.__rfloordiv__ = lambda self, other: floor_divide(other, self)
Tensor.floor_divide = floor_divide


class RemainderOp(Function):
    """out = a - b * floor(a / b), the remainder with the sign of b (Python's %, PyTorch's remainder).
    da = g,  db = -g * floor(a / b)."""

    def forward(ctx, a, b):
        _broadcast_shape("remainder", a.shape, b.shape)
        _refuse_integer_division_by_zero("remainder", a, b)
        ctx.save_for_backward(a, b)
        with np.errstate(divide="ignore", invalid="ignore"):   # x % 0 is nan for floats, as PyTorch
            return backend.xp(a).remainder(a, b)

    def backward(ctx, g):
        a, b = ctx.saved
        da = unbroadcast(g, a.shape) if ctx.needs_input_grad[0] else None
        with np.errstate(divide="ignore", invalid="ignore"):
            db = unbroadcast(-g * backend.xp(a).floor_divide(a, b), b.shape) if ctx.needs_input_grad[1] else None
        return da, db


def remainder(a, b):
    """a % b, with the sign of b (PyTorch's remainder; Python's % on numbers)."""
    a, b = promoted("remainder", a, b)
    if a.dtype == bool:
        raise TypeError("remainder: not defined for bool operands (as in PyTorch)")
    return RemainderOp.apply(a, b)


Tensor.__mod__ = remainder
Tensor.__rmod__ = lambda self, other: remainder(other, self)
Tensor.remainder = remainder


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
Tensor.pow = pow


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


class MinimumOp(Function):
    """out = min(a, b) elementwise.   The gradient goes to the smaller input; on a tie it is split in half."""

    def forward(ctx, a, b):
        _broadcast_shape("minimum", a.shape, b.shape)
        ctx.save_for_backward(a, b)
        return backend.xp(a).minimum(a, b)

    def backward(ctx, g):
        a, b = ctx.saved
        share_a = backend.xp(g).where(a == b, 0.5, a < b).astype(g.dtype)
        return unbroadcast(g * share_a, a.shape), unbroadcast(g * (1 - share_a), b.shape)


def minimum(a, b):
    return MinimumOp.apply(*promoted("minimum", a, b))


Tensor.maximum = maximum
Tensor.minimum = minimum


# ---------------------------------------------------------------- comparisons and logic (no gradient)

def _compare(name, compare):
    """A comparison: both operands promoted as in arithmetic, the result a bool tensor outside the graph."""
    def op(a, b):
        a, b = promoted(name, a, b)
        if a.device != b.device:
            raise RuntimeError(f"{name}: operands are on different devices ({a.device}, {b.device})")
        _broadcast_shape(name, a.shape, b.shape)
        return Tensor(compare(a.data, b.data))
    op.__name__ = name
    op.__doc__ = f"a {name} b elementwise, as a bool tensor (no gradient: a comparison is flat almost everywhere)."
    return op


eq, ne = _compare("eq", lambda a, b: a == b), _compare("ne", lambda a, b: a != b)
lt, le = _compare("lt", lambda a, b: a < b), _compare("le", lambda a, b: a <= b)
gt, ge = _compare("gt", lambda a, b: a > b), _compare("ge", lambda a, b: a >= b)
for _name, _op in (("eq", eq), ("ne", ne), ("lt", lt), ("le", le), ("gt", gt), ("ge", ge)):
    setattr(Tensor, f"__{_name}__", _op)
    setattr(Tensor, _name, _op)
# t == None is False and t != None True, as in PyTorch (a well-known generate() loop compares a tensor with None)
Tensor.__eq__ = lambda self, other: False if other is None else eq(self, other)
Tensor.__ne__ = lambda self, other: True if other is None else ne(self, other)


def allclose(a, b, rtol=1e-05, atol=1e-08, equal_nan=False):
    """Whether |a - b| <= atol + rtol * |b| everywhere (a and b broadcast): a Python bool, as PyTorch's."""
    if isinstance(a, Tensor) and isinstance(b, Tensor) and a.dtype != b.dtype:
        raise TypeError(f"allclose: dtypes differ ({a.dtype} and {b.dtype}); convert one first (as PyTorch)")
    a, b = promoted("allclose", a, b)
    _broadcast_shape("allclose", a.shape, b.shape)
    return bool(backend.xp(a.data).allclose(a.data, b.data, rtol=rtol, atol=atol, equal_nan=equal_nan))


Tensor.allclose = allclose


def _logical(name, combine):
    """&, |, ^ on bool or integer tensors (bitwise on integers, as in PyTorch)."""
    def op(a, b):
        a, b = promoted(name, a, b)
        if a.dtype.kind not in "biu":
            raise TypeError(f"{name}: needs bool or integer tensors, got {a.dtype}")
        return Tensor(combine(a.data, b.data))
    return op


Tensor.__and__ = Tensor.__rand__ = _logical("and", lambda a, b: a & b)
Tensor.__or__ = Tensor.__ror__ = _logical("or", lambda a, b: a | b)
Tensor.__xor__ = Tensor.__rxor__ = _logical("xor", lambda a, b: a ^ b)


def logical_not(x):
    """True where x is zero (False for a bool tensor), for any dtype: a bool tensor."""
    return Tensor(tensor_input("logical_not", x).data == 0)


def bitwise_not(x):
    """~x: for a bool tensor its logical not, for an integer one the bitwise not (~5 = -6), as in PyTorch."""
    if tensor_input("bitwise_not", x).dtype.kind not in "biu":
        raise TypeError(f"bitwise_not: ~ needs a bool or integer tensor, got {x.dtype} (as PyTorch); "
                        f"logical_not(x) is True where x is zero")
    return Tensor(~x.data)


Tensor.__invert__ = bitwise_not
Tensor.bitwise_not = bitwise_not
Tensor.logical_not = logical_not


# ---------------------------------------------------------------- elementwise, one input

class NegOp(Function):
    """out = -x.   dx = -g."""

    def forward(ctx, x):
        return -x

    def backward(ctx, g):
        return -g


def neg(x):
    return NegOp.apply(tensor_input("neg", x))


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


class Log2Op(Function):
    """out = log2 x.   dx = g / (x ln 2)."""

    def forward(ctx, x):
        ctx.save_for_backward(x)
        return backend.xp(x).log2(x)

    def backward(ctx, g):
        (x,) = ctx.saved
        return g / (x * math.log(2))


def log2(x):
    return Log2Op.apply(as_floating("log2", x))


Tensor.log2 = log2


class Log1pOp(Function):
    """out = ln(1 + x), exact for small x (where 1 + x would round away x's digits).   dx = g / (1 + x)."""

    def forward(ctx, x):
        ctx.save_for_backward(x)
        return backend.xp(x).log1p(x)

    def backward(ctx, g):
        (x,) = ctx.saved
        return g / (1 + x)


def log1p(x):
    return Log1pOp.apply(as_floating("log1p", x))


Tensor.log1p = log1p


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


class RsqrtOp(Function):
    """out = 1 / sqrt(x).   dx = -g * out^3 / 2."""

    def forward(ctx, x):
        out = 1 / backend.xp(x).sqrt(x)
        ctx.save_for_backward(out)
        return out

    def backward(ctx, g):
        (out,) = ctx.saved
        return g * out * out * out * -0.5


def rsqrt(x):
    return RsqrtOp.apply(as_floating("rsqrt", x))


Tensor.rsqrt = rsqrt


class SquareOp(Function):
    """out = x^2.   dx = 2 x g."""

    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    def backward(ctx, g):
        (x,) = ctx.saved
        return 2 * x * g


def square(x):
    """x * x, in x's dtype (an integer tensor stays integer; a bool one becomes int64, as in PyTorch)."""
    if tensor_input("square", x).dtype == bool:
        x = Tensor(x.data.astype(np.int64))
    return SquareOp.apply(x)


Tensor.square = square


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


class SinOp(Function):
    """out = sin x.   dx = g * cos x."""

    def forward(ctx, x):
        ctx.save_for_backward(x)
        return backend.xp(x).sin(x)

    def backward(ctx, g):
        (x,) = ctx.saved
        return g * backend.xp(x).cos(x)


def sin(x):
    return SinOp.apply(as_floating("sin", x))


Tensor.sin = sin


class CosOp(Function):
    """out = cos x.   dx = -g * sin x."""

    def forward(ctx, x):
        ctx.save_for_backward(x)
        return backend.xp(x).cos(x)

    def backward(ctx, g):
        (x,) = ctx.saved
        return -g * backend.xp(x).sin(x)


def cos(x):
    return CosOp.apply(as_floating("cos", x))


Tensor.cos = cos


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
    return ReluOp.apply(tensor_input("relu", x))


Tensor.relu = relu


class AbsOp(Function):
    """out = |x|.   dx = g * sign(x) (0 at x = 0, as PyTorch)."""

    def forward(ctx, x):
        ctx.save_for_backward(x)
        return backend.xp(x).abs(x)

    def backward(ctx, g):
        (x,) = ctx.saved
        return g * backend.xp(x).sign(x)


def abs(x):
    return AbsOp.apply(tensor_input("abs", x))


Tensor.abs = abs
Tensor.__abs__ = abs


class ClampOp(Function):
    """out = min(max(x, low), high).   dx = g where low <= x <= high, 0 where x was clamped (as PyTorch: the
    bounds themselves pass the gradient)."""

    def forward(ctx, x, low=None, high=None):
        inside = backend.xp(x).ones(x.shape, dtype=bool)
        if low is not None:
            inside &= x >= low
        if high is not None:
            inside &= x <= high
        ctx.save_for_backward(inside)
        return backend.xp(x).clip(x, low, high)

    def backward(ctx, g):
        (inside,) = ctx.saved
        return g * inside


def clamp(x, min=None, max=None):
    """x with values below `min` raised to it and above `max` lowered to it (either may be None)."""
    if min is None and max is None:
        raise ValueError("clamp: give min, max or both")
    if min is not None and max is not None and min > max:
        raise ValueError(f"clamp: min {min} is above max {max}")
    return ClampOp.apply(x, low=min, high=max)


Tensor.clamp = clamp
Tensor.clip = clamp


class FloorOp(Function):
    """out = floor x, the largest integer <= x.   dx = 0: a step function is flat between its jumps (PyTorch's
    gradient too)."""

    def forward(ctx, x):
        return backend.xp(x).floor(x)

    def backward(ctx, g):
        return backend.xp(g).zeros_like(g)


class CeilOp(FloorOp):
    """out = ceil x, the smallest integer >= x.   dx = 0, as for floor."""

    def forward(ctx, x):
        return backend.xp(x).ceil(x)


def floor(x):
    """x rounded down; an integer tensor is returned as a copy (it is whole already), as in PyTorch."""
    return _whole(FloorOp, "floor", x)


def ceil(x):
    """x rounded up; an integer tensor is returned as a copy, as in PyTorch."""
    return _whole(CeilOp, "ceil", x)


def _whole(op, name, x):
    if tensor_input(name, x).dtype == bool:
        raise TypeError(f"{name}: not defined for a bool tensor (as in PyTorch)")
    return op.apply(x) if x.dtype.kind == "f" else Tensor(x.data.copy())


Tensor.floor = floor
Tensor.ceil = ceil


class ToOp(Function):
    """out = x on another device or in another float dtype.   dx = g converted back."""

    def forward(ctx, x, target):
        ctx.device, ctx.dtype = backend.device_of(x), x.dtype
        if target in backend.DEVICES:
            return backend.to_device(x, target)
        return x.astype(backend.check_float_dtype(target, "to"))

    def backward(ctx, g):
        return backend.to_device(g, ctx.device).astype(ctx.dtype, copy=False), None


def device_and_dtype(op, args, kwargs):
    """The (device, dtype) that a to() call asks for, each None when not given, from PyTorch's forms: (device),
    (dtype), (device, dtype), (tensor) (its device and dtype), the keywords device= and dtype=; non_blocking, by
    keyword or position, is accepted and changes nothing (every copy here is finished when to() returns)."""
    kwargs = dict(kwargs)
    kwargs.pop("non_blocking", None)
    device, dtype = kwargs.pop("device", None), kwargs.pop("dtype", None)
    if kwargs:
        raise TypeError(f"{op}: unexpected keyword argument(s) {sorted(kwargs)}")
    for arg in args:
        if isinstance(arg, bool):         # non_blocking, given by position
            continue
        if isinstance(arg, Tensor):
            device, dtype = arg.device, arg.dtype
        elif isinstance(arg, backend.Device):
            device = arg
        elif isinstance(arg, str) and arg.split(":")[0] in backend.DEVICES:   # 'cuda', or str(x.device): 'cuda:0'
            device = arg
        else:
            try:
                dtype = np.dtype(arg)
            except TypeError as e:
                raise TypeError(f"{op}: {arg!r} is neither a device {backend.DEVICES}, a dtype nor a Tensor "
                                f"({e})") from None
    return (None if device is None else backend.device_name(device)), (None if dtype is None else np.dtype(dtype))


def to(x, *args, copy=False, **kwargs):
    """x on another device and/or in another dtype, in PyTorch's forms: x.to(dtype), x.to(device), x.to(device,
    dtype), x.to(other_tensor), x.to(dtype=..., device=...). A float dtype keeps x in the graph (its gradient is
    converted back); an integer or bool dtype leaves it, as in PyTorch. x itself comes back when nothing changes
    (copy=True: a copy anyway)."""
    device, dtype = device_and_dtype("to", args, kwargs)
    out = x
    if device is not None and device != backend.device_of(x.data):
        out = ToOp.apply(out, device)
    if dtype is not None and dtype != out.dtype:
        out = _cast(out, dtype)
    return clone(x) if copy and out is x else out


def cpu(x):
    """x on the CPU (x itself when it is there), as PyTorch's Tensor.cpu()."""
    return to(x, "cpu")


def cuda(x, device=None, non_blocking=False):
    """x on the GPU (x itself when it is there), as PyTorch's Tensor.cuda(). The engine computes on the process's
    one GPU, so `device` may only name it (None, 0, 'cuda'); non_blocking changes nothing (every copy here is
    finished when it returns)."""
    if device not in (None, 0, "cuda") and device != backend.Device("cuda"):
        raise ValueError(f"cuda: the engine uses one GPU per process (choose it with use_gpu); got device {device!r}")
    return to(x, "cuda")


def pin_memory(x):
    """PyTorch's Tensor.pin_memory(): a copy of a CPU tensor that the GPU may read while it computes (nanoGPT's
    x.pin_memory().to(device, non_blocking=True)). The copy is ordinary memory here, since every copy to the GPU
    is synchronous; the numbers are the same. Refused, as by PyTorch, without a GPU and for a tensor on one."""
    if x.is_cuda:
        raise RuntimeError(f"pin_memory: only CPU tensors can be pinned, this {x.shape} tensor is on {x.device}")
    try:
        backend.module_for("cuda")
    except RuntimeError as e:
        raise RuntimeError(f"pin_memory: there is no GPU to pin memory for ({e})") from None
    return clone(x)


Tensor.to, Tensor.cpu, Tensor.cuda, Tensor.pin_memory = to, cpu, cuda, pin_memory


class CloneOp(Function):
    """out = a copy of x.   dx = g."""

    def forward(ctx, x):
        return x.copy()

    def backward(ctx, g):
        return g


def clone(x):
    """A copy of x's data that stays in the graph (detach() shares the data and leaves the graph)."""
    return CloneOp.apply(x)


def _cast(x, dtype):
    """x as another dtype: a float dtype in the graph (ToOp), an integer or bool one outside it."""
    dtype = np.dtype(dtype)
    if dtype == x.dtype:
        return x
    if dtype.kind == "f":
        return ToOp.apply(x, backend.check_float_dtype(dtype, "to"))
    return Tensor(x.data.astype(dtype))


Tensor.clone = clone
Tensor.float = lambda self: _cast(self, np.float32)
Tensor.double = lambda self: _cast(self, np.float64)
Tensor.long = lambda self: _cast(self, np.int64)
Tensor.int = lambda self: _cast(self, np.int32)
Tensor.bool = lambda self: _cast(self, np.bool_)

# PyTorch's legacy type names, as x.type() gives them
TYPE_NAMES = {np.dtype(np.float32): "FloatTensor", np.dtype(np.float64): "DoubleTensor",
              np.dtype(np.float16): "HalfTensor", np.dtype(np.int64): "LongTensor", np.dtype(np.int32): "IntTensor",
              np.dtype(np.int16): "ShortTensor", np.dtype(np.int8): "CharTensor", np.dtype(np.uint8): "ByteTensor",
              np.dtype(np.bool_): "BoolTensor"}


def _type_name(dtype, device):
    return f"torch.{'cuda.' if device == 'cuda' else ''}{TYPE_NAMES[dtype]}"


def tensor_type(x, dtype=None):
    """x.type(): PyTorch's type name ('torch.FloatTensor', 'torch.cuda.LongTensor', ...); x.type(dtype): x in that
    dtype, as x.to(dtype); dtype may be such a name too ('torch.DoubleTensor')."""
    if dtype is None:
        return _type_name(x.dtype, x.device.type)
    if not isinstance(dtype, str):
        return to(x, dtype)
    for kind in TYPE_NAMES:
        for device in backend.DEVICES:
            if dtype == _type_name(kind, device):
                return to(x, device, kind)
    raise TypeError(f"type: {dtype!r} is not a tensor type name such as 'torch.FloatTensor'")


Tensor.type = tensor_type


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
Tensor.matmul = matmul
