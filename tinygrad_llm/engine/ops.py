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
from .arguments import as_floating, broadcast_shape, device_and_dtype, promoted, tensor_input
from .fma import fma32, fma64
from .tensor import Function, Tensor


def unbroadcast(grad, shape):
    """Sum `grad` down to `shape`. The adjoint of broadcast is sum: an input broadcast along an axis was used
    once per position along it, so its gradient is the sum over those positions."""
    if grad.shape == shape:   # nothing was broadcast: most calls
        return grad
    extra = grad.ndim - len(shape)
    axes = tuple(range(extra)) + tuple(extra + i for i, n in enumerate(shape) if n == 1 and grad.shape[extra + i] != 1)
    if axes:
        grad = grad.sum(axis=axes, keepdims=True)
    return grad.reshape(shape)


# ---------------------------------------------------------------- elementwise, two inputs (broadcasting)

class AddOp(Function):
    """out = a + b.   da = g,  db = g   (each summed back to its own shape)."""

    def forward(ctx, a, b):
        ctx.shapes = a.shape, b.shape
        broadcast_shape("add", a.shape, b.shape)
        return a + b

    def backward(ctx, g):
        return unbroadcast(g, ctx.shapes[0]), unbroadcast(g, ctx.shapes[1])


def add(a, b, *, alpha=1):
    """a + alpha * b, as PyTorch's add (alpha scales the second operand)."""
    if alpha != 1:
        b = _scaled("add", a, b, alpha)
    return AddOp.apply(*promoted("add", a, b))


def _scaled(op, a, b, alpha):
    """alpha * b, for add's and sub's alpha."""
    _check_scale(op, "alpha", alpha, a, b)
    return mul(b, alpha)


def _check_scale(op, name, value, *operands):
    """A float scale (add's alpha, addmm's beta) with integer operands is refused, as PyTorch refuses it (the product
    would be truncated)."""
    if isinstance(value, float) and all(getattr(v, "dtype", np.dtype(type(v))).kind in "biu" for v in operands):
        raise TypeError(f"{op}: {name}={value} is a float and the operands are integers (as PyTorch, refused: the "
                        f"result would be truncated)")


Tensor.__add__ = add
Tensor.__radd__ = lambda self, other: add(other, self)
Tensor.add = add


class SubOp(Function):
    """out = a - b.   da = g,  db = -g."""

    def forward(ctx, a, b):
        ctx.shapes = a.shape, b.shape
        broadcast_shape("sub", a.shape, b.shape)
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
        broadcast_shape("mul", a.shape, b.shape)
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
        broadcast_shape("div", a.shape, b.shape)
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
        broadcast_shape("div", a.shape, b.shape)
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
        broadcast_shape("remainder", a.shape, b.shape)
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
        broadcast_shape("pow", a.shape, b.shape)
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
        broadcast_shape("maximum", a.shape, b.shape)
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
        broadcast_shape("minimum", a.shape, b.shape)
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


class Atan2Op(Function):
    """out = atan2(a, b), the angle of the point (b, a), in [-pi, pi].   da = g * b / (a^2 + b^2),
    db = -g * a / (a^2 + b^2); both 0 at the origin, where the angle has no derivative (PyTorch's 0 too)."""

    def forward(ctx, a, b):
        broadcast_shape("atan2", a.shape, b.shape)
        ctx.save_for_backward(a, b)
        return backend.xp(a).arctan2(a, b)

    def backward(ctx, g):
        a, b = ctx.saved
        squared = a * a + b * b
        with np.errstate(divide="ignore", invalid="ignore"):   # 0 / 0 at the origin, replaced by 0 right away
            scale = backend.xp(g).where(squared == 0, g.dtype.type(0), g / squared)
        da = unbroadcast(scale * b, a.shape) if ctx.needs_input_grad[0] else None
        db = unbroadcast(-scale * a, b.shape) if ctx.needs_input_grad[1] else None
        return da, db


def atan2(input, other):
    """The angle of the point (other, input): atan(input / other) in the quadrant the two signs name. Integers give
    floats."""
    return Atan2Op.apply(*promoted("atan2", input, other, floating_result=True))


Tensor.atan2 = atan2


class LerpOp(Function):
    """out = start + weight * (end - start), all three broadcast (weight a tensor or a number). Computed as PyTorch's
    CPU kernel computes it: from the nearer end where |weight| >= 0.5 (end + (weight - 1) * (end - start)), so that
    weight 1 gives end exactly, and the multiply-add rounded once (fma.py), so the numbers are PyTorch's to the bit.
    dstart = g * (1 - weight),  dend = g * weight,  dweight = g * (end - start)."""

    def forward(ctx, start, end, weight):
        broadcast_shape("lerp", start.shape, end.shape, np.shape(weight))
        xp = backend.xp(start)
        weight = xp.asarray(weight, dtype=start.dtype)   # a number in the tensors' dtype first, as PyTorch takes it
        ctx.save_for_backward(start, end, weight)
        small = xp.abs(weight) < 0.5
        coefficient, base = xp.where(small, weight, weight - 1), xp.where(small, start, end)
        if xp is np:
            return (fma32 if start.dtype == np.float32 else fma64)(coefficient, end - start, base)
        return coefficient * (end - start) + base

    def backward(ctx, g):
        start, end, weight = ctx.saved
        dstart = unbroadcast(g * (1 - weight), start.shape) if ctx.needs_input_grad[0] else None
        dend = unbroadcast(g * weight, end.shape) if ctx.needs_input_grad[1] else None
        dweight = unbroadcast(g * (end - start), weight.shape) if ctx.needs_input_grad[2] else None
        return dstart, dend, dweight


def lerp(input, end, weight):
    """The point a fraction `weight` of the way from input to end: input + weight * (end - input), as PyTorch's lerp.
    input and end are floating tensors of one dtype; weight a number or a tensor of that dtype."""
    if tensor_input("lerp", input).dtype.kind != "f":
        raise TypeError(f"lerp: needs a floating tensor, got {input.dtype} {input.shape} (as PyTorch)")
    for name, value in (("end", end), ("weight", weight)):
        number = name == "weight" and isinstance(value, (int, float)) and not isinstance(value, bool)
        if not number and (not isinstance(value, Tensor) or value.dtype != input.dtype):
            given = f"{value.dtype} {value.shape}" if isinstance(value, Tensor) else type(value).__name__
            raise TypeError(f"lerp: {name} must be a Tensor of input's dtype {input.dtype}"
                            f"{' or a number' if name == 'weight' else ''}, got {given}")
    return LerpOp.apply(input, end, weight)


Tensor.lerp = lerp


# ---------------------------------------------------------------- comparisons and logic (no gradient)

def _compare(name, compare):
    """A comparison: both operands promoted as in arithmetic, the result a bool tensor outside the graph."""
    def op(a, b):
        a, b = promoted(name, a, b)
        if a.device != b.device:
            raise RuntimeError(f"{name}: operands are on different devices ({a.device}, {b.device})")
        broadcast_shape(name, a.shape, b.shape)
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
    broadcast_shape("allclose", a.shape, b.shape)
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


def _logical_function(name, combine):
    """logical_and, logical_or, logical_xor: each operand, of any dtype, read as true where nonzero; a bool tensor
    outside the graph."""
    def op(input, other):
        a, b = tensor_input(name, input), tensor_input(name, other)
        if a.device != b.device:
            raise RuntimeError(f"{name}: operands are on different devices ({a.device}, {b.device})")
        broadcast_shape(name, a.shape, b.shape)
        return Tensor(combine(a.data != 0, b.data != 0))
    op.__name__ = name
    op.__doc__ = f"{name.removeprefix('logical_')} of input and other read as truth values, elementwise."
    return op


logical_and = _logical_function("logical_and", lambda a, b: a & b)
logical_or = _logical_function("logical_or", lambda a, b: a | b)
logical_xor = _logical_function("logical_xor", lambda a, b: a ^ b)
Tensor.logical_and, Tensor.logical_or, Tensor.logical_xor = logical_and, logical_or, logical_xor


def _elementwise_test(name, test):
    """isnan, isinf, isfinite: a bool tensor outside the graph (for integers and bools: nothing is NaN or infinite)."""
    def op(input):
        data = tensor_input(name, input).data
        return Tensor(getattr(backend.xp(data), name)(data))
    op.__name__ = name
    op.__doc__ = f"True where input {test}, elementwise: a bool tensor (PyTorch's {name})."
    return op


isnan = _elementwise_test("isnan", "is NaN")
isinf = _elementwise_test("isinf", "is infinite (either sign)")
isfinite = _elementwise_test("isfinite", "is neither NaN nor infinite")
Tensor.isnan, Tensor.isinf, Tensor.isfinite = isnan, isinf, isfinite


# ---------------------------------------------------------------- elementwise, one input

class NegOp(Function):
    """out = -x.   dx = -g."""

    def forward(ctx, x):
        return -x

    def backward(ctx, g):
        return -g


def neg(x):
    if tensor_input("neg", x).dtype == bool:
        raise TypeError("neg: negation, the `-` operator, on a bool tensor is not supported (as in PyTorch); to invert "
                        "a mask use ~ or logical_not()")
    return NegOp.apply(x)


negative = neg
Tensor.__neg__ = Tensor.neg = Tensor.negative = neg


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


class TanOp(Function):
    """out = tan x.   dx = g * (1 + out^2)."""

    def forward(ctx, x):
        out = backend.xp(x).tan(x)
        ctx.save_for_backward(out)
        return out

    def backward(ctx, g):
        (out,) = ctx.saved
        return g * (1 + out * out)


class SinhOp(Function):
    """out = sinh x.   dx = g * cosh x."""

    def forward(ctx, x):
        ctx.save_for_backward(x)
        return backend.xp(x).sinh(x)

    def backward(ctx, g):
        (x,) = ctx.saved
        return g * backend.xp(x).cosh(x)


class CoshOp(Function):
    """out = cosh x.   dx = g * sinh x."""

    def forward(ctx, x):
        ctx.save_for_backward(x)
        return backend.xp(x).cosh(x)

    def backward(ctx, g):
        (x,) = ctx.saved
        return g * backend.xp(x).sinh(x)


class AsinOp(Function):
    """out = asin x (x in [-1, 1]).   dx = g / sqrt(1 - x^2)."""

    def forward(ctx, x):
        ctx.save_for_backward(x)
        return backend.xp(x).arcsin(x)

    def backward(ctx, g):
        (x,) = ctx.saved
        with np.errstate(divide="ignore"):   # x = ±1: an infinite slope, as PyTorch gives
            return g / backend.xp(x).sqrt(1 - x * x)


class AcosOp(Function):
    """out = acos x (x in [-1, 1]).   dx = -g / sqrt(1 - x^2)."""

    def forward(ctx, x):
        ctx.save_for_backward(x)
        return backend.xp(x).arccos(x)

    def backward(ctx, g):
        (x,) = ctx.saved
        with np.errstate(divide="ignore"):
            return -g / backend.xp(x).sqrt(1 - x * x)


class AtanOp(Function):
    """out = atan x.   dx = g / (1 + x^2)."""

    def forward(ctx, x):
        ctx.save_for_backward(x)
        return backend.xp(x).arctan(x)

    def backward(ctx, g):
        (x,) = ctx.saved
        return g / (1 + x * x)


def tan(x):
    return TanOp.apply(as_floating("tan", x))


def sinh(x):
    return SinhOp.apply(as_floating("sinh", x))


def cosh(x):
    return CoshOp.apply(as_floating("cosh", x))


def asin(x):
    return AsinOp.apply(as_floating("asin", x))


def acos(x):
    return AcosOp.apply(as_floating("acos", x))


def atan(x):
    return AtanOp.apply(as_floating("atan", x))


Tensor.tan, Tensor.sinh, Tensor.cosh, Tensor.asin, Tensor.acos, Tensor.atan = tan, sinh, cosh, asin, acos, atan


class Exp2Op(Function):
    """out = 2^x.   dx = g * out * ln 2."""

    def forward(ctx, x):
        out = backend.xp(x).exp2(x)
        ctx.save_for_backward(out)
        return out

    def backward(ctx, g):
        (out,) = ctx.saved
        return g * out * math.log(2)


def exp2(x):
    return Exp2Op.apply(as_floating("exp2", x))


Tensor.exp2 = exp2


class ReciprocalOp(Function):
    """out = 1 / x.   dx = -g * out^2."""

    def forward(ctx, x):
        with np.errstate(divide="ignore"):   # 1 / 0 is inf, as PyTorch
            out = 1 / x
        ctx.save_for_backward(out)
        return out

    def backward(ctx, g):
        (out,) = ctx.saved
        return -g * out * out


def reciprocal(x):
    """1 / x; integers and bools give floats, as PyTorch."""
    return ReciprocalOp.apply(as_floating("reciprocal", x))


Tensor.reciprocal = reciprocal


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
    if isinstance(min, Tensor) or isinstance(max, Tensor):
        raise TypeError("clamp: min and max must be numbers here, not tensors; maximum(x, low) and minimum(x, high) "
                        "take tensors (they split the gradient of a tie in half)")
    if min is not None and max is not None and min > max:
        raise ValueError(f"clamp: min {min} is above max {max}")
    dtype = backend.promote(tensor_input("clamp", x).data, *(b for b in (min, max) if b is not None))
    if dtype != x.dtype:   # an integer tensor clamped by a float bound becomes floating, as in PyTorch
        x = Tensor(x.data.astype(dtype))
    return ClampOp.apply(x, low=min, high=max)


def clamp_min(x, min):
    """clamp(x, min=min): x with values below `min` raised to it."""
    return clamp(x, min=min)


def clamp_max(x, max):
    """clamp(x, max=max): x with values above `max` lowered to it."""
    return clamp(x, max=max)


Tensor.clamp = clamp
Tensor.clip = clamp
Tensor.clamp_min, Tensor.clamp_max = clamp_min, clamp_max


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


def _whole(op, name, x, **options):
    if tensor_input(name, x).dtype == bool:
        raise TypeError(f"{name}: not defined for a bool tensor (as in PyTorch)")
    return op.apply(x, **options) if x.dtype.kind == "f" else Tensor(x.data.copy())


Tensor.floor = floor
Tensor.ceil = ceil


class TruncOp(FloorOp):
    """out = trunc x, x rounded toward zero.   dx = 0, as for floor."""

    def forward(ctx, x):
        return backend.xp(x).trunc(x)


class RoundOp(FloorOp):
    """out = x rounded to `decimals` places, a half to the even neighbour (2.5 -> 2, 3.5 -> 4, as PyTorch): in x's
    dtype rint(x * 10^d) / 10^d, or rint(x / 10^-d) * 10^-d for d < 0, the steps PyTorch takes.   dx = 0."""

    def forward(ctx, x, decimals=0):
        xp = backend.xp(x)
        if decimals == 0:
            return xp.rint(x)
        scale = x.dtype.type(10.0 ** builtins.abs(decimals))
        return xp.rint(x * scale) / scale if decimals > 0 else xp.rint(x / scale) * scale


class SignOp(FloorOp):
    """out = 1, 0 or -1 as x is positive, zero or negative (0 for NaN, as PyTorch).   dx = 0."""

    def forward(ctx, x):
        return (x > 0).astype(x.dtype) - (x < 0).astype(x.dtype)


def trunc(x):
    """x rounded toward zero; an integer tensor is returned as a copy, as in PyTorch."""
    return _whole(TruncOp, "trunc", x)


def round(x, *, decimals=0):
    """x rounded to the nearest integer (to `decimals` places), halves to even, as PyTorch's round; an integer tensor
    is returned as a copy (with decimals=0 only, as PyTorch)."""
    if isinstance(decimals, bool) or not isinstance(decimals, (int, np.integer)):
        raise TypeError(f"round: decimals must be an int, got {decimals!r}")
    if decimals and tensor_input("round", x).dtype.kind != "f":
        raise TypeError(f"round: decimals={decimals} needs a floating tensor, got {x.dtype} (as PyTorch)")
    return _whole(RoundOp, "round", x, decimals=int(decimals))


def sign(x):
    """1, 0 or -1 elementwise, in x's dtype (a bool tensor is its own sign); no gradient reaches x."""
    if tensor_input("sign", x).dtype.kind != "f":
        return Tensor(x.data.copy() if x.dtype == bool else backend.xp(x.data).sign(x.data))
    return SignOp.apply(x)


class FracOp(Function):
    """out = x - trunc x, the fractional part, with x's sign (-1.25 -> -0.25).   dx = g."""

    def forward(ctx, x):
        return x - backend.xp(x).trunc(x)

    def backward(ctx, g):
        return g


def frac(x):
    """x - trunc(x); floating tensors only, as PyTorch."""
    if tensor_input("frac", x).dtype.kind != "f":
        raise TypeError(f"frac: needs a floating tensor, got {x.dtype} {x.shape} (as PyTorch)")
    return FracOp.apply(x)


Tensor.trunc, Tensor.round, Tensor.sign, Tensor.frac = trunc, round, sign, frac


class ToOp(Function):
    """out = x on another device or in another float dtype.   dx = g converted back."""

    def forward(ctx, x, target):
        ctx.device, ctx.dtype = backend.device_of(x), x.dtype
        if target in backend.DEVICES:
            return backend.to_device(x, target)
        return x.astype(backend.check_float_dtype(target, "to"))

    def backward(ctx, g):
        return backend.to_device(g, ctx.device).astype(ctx.dtype, copy=False), None


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
        broadcast_shape("matmul", a.shape[:-2], b.shape[:-2])
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


def _check_product(op, a, b, ranks, operands):
    """PyTorch's strict products (mm, bmm, mv, dot, addmm, baddbmm) take operands of exactly these ranks, one dtype,
    and equal batch sizes; matmul is the one that broadcasts and promotes."""
    for x in (a, b):
        tensor_input(op, x)
    if (a.ndim, b.ndim) != ranks:
        raise ValueError(f"{op}: expects {operands}, got shapes {a.shape} and {b.shape}")
    if a.dtype != b.dtype:
        raise TypeError(f"{op}: expects operands of one dtype, got {a.dtype} and {b.dtype} (as PyTorch)")
    if a.shape[-1] != b.shape[-2 if b.ndim > 1 else 0] or a.shape[:-2] != b.shape[:-2]:
        raise ValueError(f"{op}: shapes {a.shape} and {b.shape} cannot be multiplied")


def mm(input, mat2):
    """The product of two matrices, (n, k) @ (k, m) -> (n, m), as PyTorch's mm: 2-d only."""
    _check_product("mm", input, mat2, (2, 2), "two matrices (2-d)")
    return MatmulOp.apply(input, mat2)


def bmm(input, mat2):
    """Matrix products batch by batch, (b, n, k) @ (b, k, m) -> (b, n, m), as PyTorch's bmm: 3-d only, one batch
    size (no broadcasting)."""
    _check_product("bmm", input, mat2, (3, 3), "two batches of matrices (3-d)")
    return MatmulOp.apply(input, mat2)


def mv(input, vec):
    """A matrix times a vector, (n, m) @ (m,) -> (n,)."""
    _check_product("mv", input, vec, (2, 1), "a matrix (2-d) and a vector (1-d)")
    return MatmulOp.apply(input, vec)


def dot(input, tensor):
    """The dot product of two vectors of one length: a 0-d tensor."""
    _check_product("dot", input, tensor, (1, 1), "two vectors (1-d)")
    return MatmulOp.apply(input, tensor)


def outer(input, vec2):
    """The outer product of two vectors, out[i, j] = input[i] * vec2[j]: a broadcast multiplication, whose gradient
    sums each row (or column) of g back to its element."""
    if tensor_input("outer", input).ndim != 1 or tensor_input("outer", vec2).ndim != 1:
        raise ValueError(f"outer: expects two vectors (1-d), got shapes {input.shape} and {vec2.shape}")
    return mul(input.reshape(-1, 1), vec2)


class AddmmOp(Function):
    """out = beta * input + alpha * (mat1 @ mat2), input broadcast to the product's shape; where beta is 0, input is
    not read (a NaN in it does not reach the output), as in PyTorch.
    dinput = beta * g (summed to input's shape),  dmat1 = alpha * g @ mat2^T,  dmat2 = alpha * mat1^T @ g
    (mat1, mat2 matrices for addmm, batches of them for baddbmm)."""

    def forward(ctx, input, mat1, mat2, beta, alpha, op):
        product = mat1 @ mat2
        if input.ndim > product.ndim or any(n not in (1, m) for n, m in zip(input.shape[::-1], product.shape[::-1])):
            raise ValueError(f"{op}: input {input.shape} cannot be broadcast to the product's shape {product.shape}")
        ctx.save_for_backward(mat1, mat2)
        ctx.input_shape, ctx.beta, ctx.alpha = input.shape, beta, alpha
        out = product if alpha == 1 else product * alpha
        if beta == 0:
            return out
        return out + (input if beta == 1 else input * beta)

    def backward(ctx, g):
        mat1, mat2 = ctx.saved
        dinput = unbroadcast(g * ctx.beta, ctx.input_shape) if ctx.needs_input_grad[0] else None
        dmat1 = (g @ mat2.swapaxes(-1, -2)) * ctx.alpha if ctx.needs_input_grad[1] else None
        dmat2 = (mat1.swapaxes(-1, -2) @ g) * ctx.alpha if ctx.needs_input_grad[2] else None
        return dinput, dmat1, dmat2


def _scaled_product(op, input, mat1, mat2, beta, alpha, ranks, operands):
    _check_product(op, mat1, mat2, ranks, operands)
    if tensor_input(op, input).dtype != mat1.dtype:
        raise TypeError(f"{op}: input is {input.dtype}, the matrices {mat1.dtype}; they must have one dtype (as "
                        f"PyTorch)")
    for name, value in (("beta", beta), ("alpha", alpha)):
        _check_scale(op, name, value, mat1)
    return AddmmOp.apply(input, mat1, mat2, beta=beta, alpha=alpha, op=op)


def addmm(input, mat1, mat2, *, beta=1, alpha=1):
    """beta * input + alpha * (mat1 @ mat2), as PyTorch's addmm: mat1 and mat2 matrices, input broadcast to their
    product's shape (a bias row, say), not read where beta is 0."""
    return _scaled_product("addmm", input, mat1, mat2, beta, alpha, (2, 2), "two matrices (2-d)")


def baddbmm(input, batch1, batch2, *, beta=1, alpha=1):
    """beta * input + alpha * (batch1 @ batch2), batch by batch, as PyTorch's baddbmm: batch1 and batch2 3-d with
    one batch size, input broadcast to their product's shape, not read where beta is 0."""
    return _scaled_product("baddbmm", input, batch1, batch2, beta, alpha, (3, 3), "two batches of matrices (3-d)")


Tensor.mm, Tensor.bmm, Tensor.mv, Tensor.dot, Tensor.outer = mm, bmm, mv, dot, outer
Tensor.addmm, Tensor.baddbmm = addmm, baddbmm
