"""In-place ops: `x += y`, `x.add_(y)`, `x.zero_()`, `x[index] = v`, ... change a tensor's numbers where they are,
and the safety net autograd keeps around them (PyTorch's rules; learners meet them the first time they write an SGD
step):

1. A leaf that requires grad (a parameter) may change in place only inside no_grad(). Outside it, the change would
   be part of the computation but not of any gradient: an error names the op. Inside it, the parameter itself is
   updated, the same Tensor object, so a hand-written step `with no_grad(): w -= lr * w.grad` works.
2. Every in-place change moves the version of the tensor's buffer on (shared by every view of it: x, x[0],
   x.detach(), ...). Each op records the versions of the arrays it saved when it runs (run_forward); its
   backward refuses to run if one has changed since, naming the op: it would compute the gradient from the new
   numbers (Function._check_saved_arrays_unchanged).
3. A tensor inside the graph (outside no_grad) keeps its place in it: the change is recorded as an op whose input
   is the tensor as it was (a copy of its old numbers), and the tensor takes that op as its new origin. If another
   op has already used the tensor, the change is refused: that op's gradient would flow through the change. So is
   a change in the graph to a view of another tensor's numbers (y[0].add_(w)): PyTorch rewrites the other tensor's
   graph there; here the other would hold w's numbers without w's gradient.
"""
import numpy as np

from . import backend, movement, ops
from .tensor import Tensor, count_in_place_change, is_recording


def _in_place(name, x, compute):
    """x's data replaced, in place, by compute(x as it is now); returns x. See the module docstring for the rules."""
    recording = is_recording()
    if recording and x.is_leaf and x.requires_grad:
        raise RuntimeError(f"{name}: {x.shape} is a leaf tensor that requires grad (a parameter); changing it in "
                           f"place outside no_grad() would leave its gradient wrong. Update parameters inside "
                           f"`with no_grad():`")
    if recording and x.requires_grad and x._used:
        raise RuntimeError(f"{name}: this tensor {x.shape} is already an input of another op in the graph; changed "
                           f"in place, that op's gradient would flow through the change. Compute out of place "
                           f"(y = y * 2) or change a clone()")
    _check_writable(name, x)
    result = compute(_as_it_was(x) if recording else x)
    if result.shape != x.shape:
        raise ValueError(f"{name}: the result has shape {result.shape}, which does not fit the tensor {x.shape} "
                         f"changed in place (only the other operand may broadcast)")
    if not np.can_cast(result.dtype, x.dtype, casting="same_kind"):
        raise TypeError(f"{name}: the result is {result.dtype}, which cannot be stored in the {x.dtype} tensor "
                        f"changed in place (as PyTorch); convert the tensor first")
    if result.requires_grad and _is_view_of_another(x):   # PyTorch rewrites the other tensor's graph; we cannot
        raise RuntimeError(f"{name}: this tensor {x.shape} is a view of another one's numbers (x[0], x.view(...), "
                           f"x.t()); changed in place inside the graph, the other would change without its "
                           f"gradient knowing. Change that tensor itself (x[0, 1] = v, not x[0][1] = v), compute "
                           f"out of place (y = y + v), or change a clone()")
    x.data[...] = result.data
    count_in_place_change(x.data)
    if result.requires_grad:
        x._ctx, x.requires_grad, x._used = result._ctx, True, False   # its new value: not used by any op yet
    return x


def _is_view_of_another(x):
    """Whether x's numbers are part of another tensor's: made in the graph, x shares the buffer of one of the op's
    inputs (x = y[0], y.view(...), y.t()); made outside it, x is known only to view some array, which is taken as
    another tensor's (an op's output may also view a temporary of its own, which this cannot tell apart)."""
    buffer = backend.buffer_of(x.data)
    if x._ctx is None:
        return buffer is not x.data
    return any(p is not None and backend.buffer_of(p.data) is buffer for p in getattr(x._ctx, "parents", ()))


def _check_writable(name, x):
    if not getattr(x.data.flags, "writeable", True):
        raise ValueError(f"{name}: this tensor {x.shape} is a read-only view (of expand() or a broadcast); "
                         f"change a clone() of it")


def _as_it_was(x):
    """A Tensor standing for x before the change: x's place in the graph, a copy of its numbers (the op that
    records the change may save it for its backward)."""
    before = Tensor(x.data.copy(), requires_grad=x.requires_grad)
    before._ctx = x._ctx
    return before


def add_(x, other, alpha=1):
    """x += alpha * other, in place."""
    return _in_place("add_", x, lambda old: ops.add(old, other if alpha == 1 else ops.mul(other, alpha)))


def sub_(x, other, alpha=1):
    """x -= alpha * other, in place."""
    return _in_place("sub_", x, lambda old: ops.sub(old, other if alpha == 1 else ops.mul(other, alpha)))


def mul_(x, other):
    return _in_place("mul_", x, lambda old: ops.mul(old, other))


def div_(x, other):
    return _in_place("div_", x, lambda old: ops.div(old, other))


def clamp_(x, min=None, max=None):
    return _in_place("clamp_", x, lambda old: ops.clamp(old, min, max))


def fill_(x, value):
    """Every element set to `value`, in place (in the graph: no gradient reaches the old numbers)."""
    everywhere = backend.xp(x.data).ones(x.shape, dtype=bool)
    return _in_place("fill_", x, lambda old: movement.masked_fill(old, everywhere, value))


def zero_(x):
    return fill_(x, 0)


def copy_(x, source):
    """x's numbers replaced by source's (broadcast to x's shape), in place; the gradient goes to source."""
    source = source if isinstance(source, Tensor) else Tensor(backend.xp(x.data).asarray(source, dtype=x.dtype))
    if source.device != x.device:
        source = source.to(x.device)
    everywhere = backend.xp(x.data).ones(x.shape, dtype=bool)
    return _in_place("copy_", x, lambda old: movement.where(everywhere, movement.expand(source, *x.shape), old))


def masked_fill_(x, mask, value):
    """x's elements set to `value` where `mask` (broadcast to x's shape) is true, in place."""
    return _in_place("masked_fill_", x, lambda old: movement.masked_fill(old, mask, value))


def setitem(x, index, value):
    """x[index] = value, in place, as PyTorch's index_put_ (or copy_ into a slice): the index read as getitem reads
    it, value broadcast to the indexed shape. Value: a Tensor, or a Python number converted to x's dtype (floats
    into integers truncate; a number the dtype cannot hold is refused). A Tensor of another dtype is converted for a
    plain index (integers and slices), and refused beside an array index, as PyTorch does. In the graph (x or value
    requires grad) the change is an IndexPutOp, by the rules of this module: the gradient flows to value, and to
    x's other elements; else the numbers are written where they are, at the cost of the elements written."""
    index, order = movement.torch_index(index, x.ndim)
    value = _assigned_value(x, value, advanced=movement.has_array(index))
    if is_recording() and (x.requires_grad or value.requires_grad):
        _in_place("setitem", x, lambda old: movement.IndexPutOp.apply(old, value, index=index, order=order))
        return
    _check_writable("setitem", x)
    movement.put(x.data, index, order, value.data)
    count_in_place_change(x.data)


def _assigned_value(x, value, advanced):
    """The value of x[index] = value as a Tensor of x's dtype on x's device (see setitem for the rules)."""
    if isinstance(value, Tensor):
        if value.device != x.device:
            raise RuntimeError(f"setitem: the value is on {value.device}, the tensor {x.shape} on {x.device}; "
                               f"move the value with .to('{x.device}')")
        if value.dtype == x.dtype:
            return value
        if advanced:
            raise TypeError(f"setitem: with an array index the value's dtype must be the tensor's (as PyTorch's "
                            f"index_put_), got {value.dtype} for a {x.dtype} tensor; convert the value")
        return value.to(x.dtype)   # a float value stays in the graph: its gradient goes back in its own dtype
    if isinstance(value, (bool, int, float, np.bool_, np.integer, np.floating)):
        return movement.number_like("setitem", value, x)
    raise TypeError(f"setitem: can't assign a {type(value).__name__} to a tensor (PyTorch takes a Tensor or a "
                    f"number); make it a Tensor first")


Tensor.__setitem__ = setitem
Tensor.add_, Tensor.sub_, Tensor.mul_, Tensor.div_ = add_, sub_, mul_, div_
Tensor.clamp_, Tensor.fill_, Tensor.zero_, Tensor.copy_ = clamp_, fill_, zero_, copy_
Tensor.masked_fill_ = masked_fill_
Tensor.__iadd__ = add_
Tensor.__isub__ = sub_
Tensor.__imul__ = mul_
Tensor.__itruediv__ = div_
