"""Primitive ops that move and pick elements: reshapes, transposes, indexing (PyTorch's rule) and item assignment,
gather and scatter, expanding, flipping and rolling, joining and splitting, where, and the embedding lookup; and
einsum. Each op is one recipe, as in ops.py: its Function (forward, backward, derivative), its function, its Tensor
method.

None of them but einsum does arithmetic, so every backward only moves gradients back to where the elements came
from: reshaped back, permuted back, scattered back into place, or summed where one element was used several times
(an expanded axis, a tiled copy, an index picked twice). einsum sums products of the elements its letters pick, and
its backward is einsums again.
"""
import builtins
import string
import warnings

import numpy as np

from . import backend
from .arguments import broadcast_shape, dim_or_axis, normalize_axes, promoted, tensor_input
from .ops import unbroadcast
from .tensor import Function, SparseGradient, Tensor


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


def _sizes(sizes):
    """A shape given as separate ints, or as one tuple or list: f(2, 3) or f((2, 3)), as PyTorch accepts both."""
    return tuple(sizes[0]) if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)) else tuple(sizes)


def reshape(x, *shape):
    """x with a new shape of as many elements (-1: the one size that fits)."""
    return ReshapeOp.apply(x, shape=_sizes(shape))


Tensor.reshape = reshape
Tensor.view = reshape   # NumPy arrays need no contiguity for a view: reshape is PyTorch's view and reshape alike


def unsqueeze(x, dim):
    """x with a new axis of length 1 at position `dim` (-1: last)."""
    dim = normalize_axes("unsqueeze", dim, x.ndim + 1)[0]
    return reshape(x, x.shape[:dim] + (1,) + x.shape[dim:])


def squeeze(x, dim=None):
    """x without its axes of length 1 (only `dim`, when given and of length 1, as PyTorch)."""
    axes = normalize_axes("squeeze", dim, x.ndim)
    return reshape(x, tuple(n for i, n in enumerate(x.shape) if not (i in axes and n == 1)))


def flatten(x, start_dim=0, end_dim=-1):
    """Axes start_dim .. end_dim merged into one."""
    if x.ndim == 0:
        return reshape(x, (1,))
    start, end = (normalize_axes("flatten", d, x.ndim)[0] for d in (start_dim, end_dim))
    if start > end:
        raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim} (shape {x.shape})")
    return reshape(x, x.shape[:start] + (-1,) + x.shape[end + 1:])


Tensor.unsqueeze = unsqueeze
Tensor.squeeze = squeeze
Tensor.flatten = flatten
Tensor.contiguous = lambda self: self   # every array here can be viewed in any shape: nothing to do


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
    return PermuteOp.apply(x, axes=_sizes(axes))


Tensor.permute = permute


def transpose(x, axis0=-2, axis1=-1):
    """Swap two axes (the last two by default)."""
    axis0, axis1 = (normalize_axes("transpose", a, x.ndim)[0] for a in (axis0, axis1))
    axes = list(range(x.ndim))
    axes[axis0], axes[axis1] = axes[axis1], axes[axis0]
    return PermuteOp.apply(x, axes=tuple(axes))


def t(x):
    """The transpose of a matrix (a tensor of at most 2 axes, as PyTorch's t())."""
    if x.ndim > 2:
        raise ValueError(f"t: expects a tensor of at most 2 axes, got shape {x.shape}; use transpose(dim0, dim1)")
    return x if x.ndim < 2 else transpose(x, 0, 1)


Tensor.transpose = transpose
Tensor.t = t
Tensor.T = property(lambda self: transpose(self))


def movedim(x, source, destination):
    """x with the axes `source` moved to the positions `destination` (an int each, or sequences of one length), the
    other axes keeping their order (PyTorch's movedim, NumPy's moveaxis)."""
    source, destination = (_axes_in_order("movedim", d, x.ndim) for d in (source, destination))
    if len(source) != len(destination):
        raise ValueError(f"movedim: source {source} and destination {destination} must name as many axes")
    order = [a for a in range(x.ndim) if a not in source]
    for position, axis in sorted(zip(destination, source)):
        order.insert(position, axis)
    return PermuteOp.apply(x, axes=tuple(order))


moveaxis = movedim


def _axes_in_order(op, dims, ndim):
    """dims (an int or a sequence) as non-negative axes, in the order given, each at most once."""
    axes = [normalize_axes(op, d, ndim)[0] for d in ((dims,) if isinstance(dims, (int, np.integer)) else dims)]
    if len(set(axes)) != len(axes):
        raise ValueError(f"{op}: {dims} names an axis twice (for a tensor with {ndim} axes)")
    return axes


def swapaxes(x, axis0, axis1):
    """transpose(x, axis0, axis1), under NumPy's name (PyTorch has both)."""
    return transpose(x, axis0, axis1)


def swapdims(x, dim0, dim1):
    """transpose(x, dim0, dim1)."""
    return transpose(x, dim0, dim1)


def unflatten(x, dim, sizes):
    """Axis `dim` split into axes of `sizes` (one of them may be -1: the length that fits), as PyTorch's unflatten."""
    axis, sizes = _existing_axis("unflatten", x, dim), tuple(sizes)
    known, length = int(np.prod([n for n in sizes if n != -1])), x.shape[axis]
    if sizes.count(-1) > 1 or (known != length if -1 not in sizes else known == 0 or length % known):
        raise ValueError(f"unflatten: sizes {sizes} do not multiply up to {length}, the length of axis {axis} of "
                         f"{x.shape}")
    return reshape(x, x.shape[:axis] + sizes + x.shape[axis + 1:])


def _existing_axis(op, x, dim):
    """dim as a non-negative axis of x, which must have axes (a 0-d tensor has nothing to select, narrow or split)."""
    if x.ndim == 0:
        raise IndexError(f"{op}: a 0-d tensor has no axis {dim}")
    return normalize_axes(op, dim, x.ndim)[0]


Tensor.movedim = Tensor.moveaxis = movedim
Tensor.swapaxes, Tensor.swapdims, Tensor.unflatten = swapaxes, swapdims, unflatten
Tensor.view_as = Tensor.reshape_as = lambda self, other: reshape(self, other.shape)


_BASIC_PARTS = (int, slice, type(None), type(Ellipsis))


def torch_index(index, ndim):
    """A `__getitem__` index read as PyTorch reads it: (an index that NumPy reads the same way, the order to put
    NumPy's result axes in, or None where NumPy's order is already PyTorch's).

    PyTorch applies the integers first, each removing its axis as select() does, then the arrays (integer and bool
    tensors, lists): their result axes take the place of the axes they index when nothing stands between them,
    and go in front otherwise. NumPy counts the integers among the arrays, so an integer apart from them sends the
    axes to the front: with x of shape (2, 3, 4), x[1, :, idx] is (3, len(idx)) in PyTorch and (len(idx), 3) in
    NumPy. NumPy indexes such a case, and its axes are moved back. NumPy also counts an Ellipsis that stands for
    no axes as standing between arrays: it is dropped.
    Also PyTorch's reading: a 0-d integer tensor selects as an int does, a uint8 tensor is a mask, and a short list
    holding a sequence, Tensor, slice, None or Ellipsis is a tuple of indices (both with PyTorch's warning)."""
    if type(index) is not tuple:
        if type(index) in _BASIC_PARTS:
            return index, None   # x[3], x[1:]: the everyday case, read alike
        if type(index) is not list or not _list_is_tuple(index):
            return _index_part(index), None   # one entry: nothing to put in order
        index = tuple(index)
    for p in index:   # a loop, not all(): this is every slicing's path
        if type(p) not in _BASIC_PARTS:
            break
    else:
        return index, None   # integers, slices, None, Ellipsis: read alike
    parts = tuple(_index_part(p) for p in index)
    if not builtins.any(type(p) is int or p is Ellipsis for p in parts):
        return parts, None   # x[idx], x[:, idx], x[mask]: read alike
    unindexed = ndim - builtins.sum(_axes_indexed(p) for p in parts)   # an Ellipsis's axes, else trailing ones
    if unindexed == 0:   # NumPy counts an Ellipsis of no axes as standing between arrays; PyTorch does not
        parts = tuple(p for p in parts if p is not Ellipsis)
    arrays = [i for i, p in enumerate(parts) if _is_array(p)]
    ints = [i for i, p in enumerate(parts) if type(p) is int]
    if not arrays or not ints:
        return parts, None   # without integers beside arrays, NumPy's rule is PyTorch's
    result_axes = [unindexed if p is Ellipsis else int(isinstance(p, slice) or p is None) for p in parts]

    def adjacent(positions):   # nothing that gives result axes stands between the first and the last
        return not builtins.any(result_axes[positions[0]:positions[-1] + 1])

    before = builtins.sum(result_axes[:arrays[0]])
    if not adjacent(arrays) or adjacent(sorted(arrays + ints)) or before == 0:
        return parts, None   # both put the array axes in front, or both in the same place
    block = builtins.max(1 if _is_mask(p) else p.ndim for p in parts if _is_array(p))   # NumPy put them first
    others = builtins.sum(result_axes) + (0 if builtins.any(p is Ellipsis for p in parts) else unindexed)
    order = (*range(block, block + before), *range(block), *range(block + before, block + others))
    return parts, order


def _list_is_tuple(index):
    """PyTorch's (and old NumPy's) reading of x[[a, b]]: a tuple of indices x[a, b] when the list is short and holds
    a sequence, Tensor, slice, None or Ellipsis; else one index array."""
    if len(index) >= 32 or not builtins.any(isinstance(p, (list, tuple, slice, Tensor)) or hasattr(p, "shape")
                                            or p is None or p is Ellipsis for p in index):
        return False
    warnings.warn("getitem: a list holding a sequence, Tensor, slice, None or Ellipsis is read as a tuple of "
                  "indices, as PyTorch reads it (deprecated there); write x[tuple(seq)]", UserWarning, stacklevel=4)
    return True


def _index_part(part):
    """One entry of an index as NumPy must see it to read it as PyTorch does: a Tensor as its array, a list as an
    array, a 0-d integer array or NumPy integer as a Python int (it selects), a uint8 array as a mask."""
    if isinstance(part, Tensor):
        part = part.data
    elif isinstance(part, (list, tuple)):
        part = np.asarray(part)
        if part.size == 0:
            part = part.astype(np.intp)   # [] is an empty list of positions (NumPy would make it float)
    if not hasattr(part, "dtype"):
        return part   # a Python int, bool, slice, None or Ellipsis; anything else NumPy refuses
    kind = part.dtype.kind
    if kind == "i" or (kind == "u" and part.dtype.itemsize > 1):
        return int(part) if part.ndim == 0 else part
    if kind == "b":
        return part
    if kind == "u":
        warnings.warn("getitem: a uint8 index is read as a mask, as PyTorch reads it (deprecated there); use a "
                      "bool one", UserWarning, stacklevel=4)
        return part.astype(bool)
    raise IndexError(f"getitem: tensors used as indices must be integers or booleans, got {part.dtype}")


def _is_array(part):
    """An index entry NumPy reads as advanced indexing (a Python bool is a 0-d mask)."""
    return isinstance(part, bool) or hasattr(part, "ndim")


def _is_mask(part):
    return isinstance(part, bool) or part.dtype.kind == "b"


def _axes_indexed(part):
    """How many of x's axes an index entry uses up: a mask its number of axes, None and Ellipsis none, others one."""
    if part is None or part is Ellipsis or isinstance(part, bool):
        return 0
    return part.ndim if hasattr(part, "dtype") and part.dtype.kind == "b" else 1


def has_array(index):
    parts = index if isinstance(index, tuple) else (index,)
    return any(hasattr(p, "shape") for p in parts)


class IndexedGrad(SparseGradient):
    """The gradient that x[index] hands back to x: `values` at `index`, zero everywhere else, kept in that form
    until the backward walk adds it into the one buffer it keeps for x's gradient (tensor.py's GradientSums)."""

    def __init__(self, shape, index, values, repeats):
        self.shape, self.index, self.values = shape, index, values
        self.repeats = repeats  # True when an integer-array index may pick one element twice

    def add_to(self, array):
        """array[index] += values, in place; an element picked twice receives both values."""
        if self.repeats:
            backend.xp(array).add.at(array, self.index, self.values)
        else:
            array[self.index] += self.values  # slices never repeat an element: a plain in-place add

    def dense(self):
        array = backend.xp(self.values).zeros(self.shape, dtype=self.values.dtype)
        self.add_to(array)
        return array


class GetItemOp(Function):
    """out = x[index], with slices, integers, None, Ellipsis, integer and bool arrays (PyTorch's rule: see
    torch_index; `order` moves NumPy's result axes into PyTorch's order).
    dx = zeros of x's shape with g added at the indexed positions (scatter-add: an element picked twice by an
    integer array receives both gradients), returned as an IndexedGrad (above): many slices of one array cost one
    array of gradient, not one per slice."""

    def forward(ctx, x, index, order=None):
        ctx.shape, ctx.index, ctx.order = x.shape, index, order
        try:
            out = x[index]
        except IndexError as e:
            raise IndexError(f"getitem: index {index!r} does not fit shape {x.shape}: {e}") from None
        return out if order is None else out.transpose(order)

    def backward(ctx, g):
        if ctx.order is not None:
            g = g.transpose(np.argsort(ctx.order))
        return IndexedGrad(ctx.shape, ctx.index, g, repeats=has_array(ctx.index))


def getitem(x, index):
    index, order = torch_index(index, x.ndim)
    return GetItemOp.apply(x, index=index, order=order)


Tensor.__getitem__ = getitem


def number_like(op, value, x):
    """A Python number as a 0-d tensor of x's dtype on x's device, as PyTorch converts it (a float into integers
    truncates toward zero), or a clear error where the dtype cannot hold it (out of the integer range, NaN or
    infinity into integers, a finite float beyond the float's range), as PyTorch refuses it."""
    dtype = x.dtype
    if dtype.kind in "iu":
        limits = np.iinfo(dtype)
        if not limits.min <= value <= limits.max:   # NaN fails both
            raise OverflowError(f"{op}: {value} cannot be converted to {dtype} without overflow")
        value = int(value)
    elif dtype.kind == "f" and np.isfinite(value) and abs(value) > np.finfo(dtype).max:
        raise OverflowError(f"{op}: {value} cannot be converted to {dtype} without overflow")
    return Tensor(backend.xp(x.data).asarray(value, dtype=dtype))


def put(array, index, order, value):
    """array[index] = value, in place: torch_index's (index, order), and value in PyTorch's axis order, broadcast to
    the indexed shape as PyTorch broadcasts it (leading axes of length 1 dropped)."""
    given = value.shape
    try:
        if order is not None or (value.ndim and value.shape[0] == 1):
            shape = _indexed_shape(array, index, order)
            value = value.reshape(value.shape[builtins.max(value.ndim - len(shape), 0):])   # leading 1s dropped
        if order is not None:   # NumPy's axes are not PyTorch's: broadcast in PyTorch's order, then reorder
            value = backend.xp(value).broadcast_to(value, shape).transpose(np.argsort(order))
        array[index] = value
    except IndexError as e:
        raise IndexError(f"setitem: index {index!r} does not fit shape {array.shape}: {e}") from None
    except ValueError:
        raise ValueError(f"setitem: a value of shape {given} cannot be broadcast to the indexed shape "
                         f"{_indexed_shape(array, index, order)} (tensor {array.shape})") from None


def _indexed_shape(array, index, order):
    shape = array[index].shape
    return shape if order is None else tuple(shape[i] for i in order)


class IndexPutOp(Function):
    """out = x with value written at x[index] (PyTorch's index_put_, or copy_ into a slice; see put).
    dx = g with zeros where value was written (the old numbers there no longer reach the output);
    dvalue = g[index] (in PyTorch's axis order), summed down to value's shape over the axes it was broadcast along.
    An element written twice by a repeated index keeps the last value, and each value receives g there (PyTorch's
    rule for index_put_)."""

    def forward(ctx, x, value, index, order):
        ctx.index, ctx.order, ctx.value_shape = index, order, value.shape
        out = x.copy()
        put(out, index, order, value)
        return out

    def backward(ctx, g):
        dx = dvalue = None
        if ctx.needs_input_grad[0]:
            dx = g.copy()
            dx[ctx.index] = 0
        if ctx.needs_input_grad[1]:
            picked = g[ctx.index]
            picked = picked if ctx.order is None else picked.transpose(ctx.order)
            kept = ctx.value_shape[builtins.max(len(ctx.value_shape) - picked.ndim, 0):]   # without leading 1s
            dvalue = unbroadcast(picked, kept).reshape(ctx.value_shape)
        return dx, dvalue


def take_along_dim(x, indices, dim):
    """out[..., i, ...] = x[..., indices[..., i, ...], ...] along `dim` (PyTorch's take_along_dim, NumPy's
    take_along_axis): indices has x's number of axes, and picks one position along dim for each of its entries.
    The gradient goes back to the picked positions (GetItemOp's scatter-add)."""
    dim = normalize_axes("take_along_dim", dim, x.ndim)[0]
    indices = indices.data if isinstance(indices, Tensor) else backend.xp(x.data).asarray(indices)
    if indices.ndim != x.ndim:
        raise ValueError(f"take_along_dim: indices {indices.shape} must have as many axes as x {x.shape}")
    grid = list(backend.xp(indices).indices(indices.shape, sparse=True))
    grid[dim] = indices
    return GetItemOp.apply(x, index=tuple(grid))


def _positions_along(op, x, dim, index, src=None):
    """The NumPy index of gather and scatter: for each entry of `index` (integers, as many axes as x), x's element
    at that position along dim and at the entry's own position along every other axis. Checked as PyTorch checks
    it: index no larger than x apart from dim (and no larger than src), its numbers within 0 .. x.shape[dim] - 1
    (negative ones are refused, not counted from the end)."""
    dim = normalize_axes(op, dim, x.ndim)[0]
    index = index.data if isinstance(index, Tensor) else backend.xp(x.data).asarray(index)
    if index.dtype.kind not in "iu":
        raise TypeError(f"{op}: index must be integers, got {index.dtype}")
    if index.ndim != x.ndim or any(n > m for d, (n, m) in enumerate(zip(index.shape, x.shape)) if d != dim) or (
            src is not None and (src.ndim != x.ndim or any(n > m for n, m in zip(index.shape, src.shape)))):
        raise ValueError(f"{op}: index {index.shape} must have the axes of the tensor {x.shape}, be no longer than it "
                         f"apart from dim {dim}" + ("" if src is None else f", and no longer than src {src.shape}"))
    bad = _out_of_range(index, x.shape[dim])
    if bad is not None:
        raise IndexError(f"{op}: index {bad} is out of bounds for dim {dim} of the tensor {x.shape}")
    grid = list(backend.xp(index).indices(index.shape, sparse=True))
    grid[dim] = index
    return tuple(grid)


def _out_of_range(index, length):
    """The first number of an integer array outside 0 .. length - 1, or None: gather, scatter and index_select
    refuse a negative position, as PyTorch does, where NumPy would count it from the end."""
    if index.size == 0:
        return None
    low, high = int(index.min()), int(index.max())
    return low if low < 0 else high if high >= length else None


def gather(x, dim, index, *, sparse_grad=False):
    """out[i][j][k] = x[index[i][j][k]][j][k] for dim 0 (and so on): out has index's shape (PyTorch's gather).
    The gradient goes back to the picked positions, summed where one is picked twice (GetItemOp)."""
    if sparse_grad:
        raise ValueError("gather: sparse_grad=True is not supported (the gradient is dense)")
    return GetItemOp.apply(x, index=_positions_along("gather", x, dim, index))


def index_select(x, dim, index):
    """The slices of x at positions `index` (a vector of integers, or one integer) along dim."""
    dim = normalize_axes("index_select", dim, x.ndim)[0]
    index = index.data if isinstance(index, Tensor) else backend.xp(x.data).asarray(index)
    if index.ndim > 1 or index.dtype.kind not in "iu":
        raise IndexError(f"index_select: index must be a vector of integers, got {index.dtype} {index.shape}")
    bad = _out_of_range(index, x.shape[dim])
    if bad is not None:
        raise IndexError(f"index_select: index {bad} is out of bounds for dim {dim} of the tensor {x.shape}")
    return GetItemOp.apply(x, index=(slice(None),) * dim + (index.reshape(-1),))


def _read_part(op, x, index, src):
    """The part of scatter's src that the index reads: its first index.shape elements (src itself when the shapes
    agree). src must be a Tensor of x's dtype, as in PyTorch."""
    if src.dtype != x.dtype:
        raise TypeError(f"{op}: src is {src.dtype}, the tensor {x.dtype}; they must be one dtype (as PyTorch)")
    shape = index.shape if isinstance(index, Tensor) else np.shape(index)
    return src if src.shape == shape else getitem(src, tuple(slice(0, n) for n in shape))


def scatter(x, dim, index, src=None, *, value=None, reduce=None):
    """x with src's elements written at the positions index names along dim: out[index[i][j]][j] = src[i][j] for
    dim 0 (PyTorch's scatter; a number in src's place, or value=, writes that number). An element written twice
    keeps the last value. Gradients (IndexPutOp): to x where nothing was written, to src where it was read."""
    if reduce is not None:
        raise ValueError(f"scatter: reduce={reduce!r} is not supported (deprecated in PyTorch); use scatter_add")
    if not isinstance(src, Tensor):   # scatter(x, dim, index, 1.5): a number in src's place is the value
        src, value = None, src if value is None else value
        if value is None or src is not None:
            raise TypeError("scatter: give src (a Tensor) or value (a number)")
        written = number_like("scatter", value, x)
        return IndexPutOp.apply(x, written, index=_positions_along("scatter", x, dim, index), order=None)
    positions = _positions_along("scatter", x, dim, index, src)
    return IndexPutOp.apply(x, _read_part("scatter", x, index, src), index=positions, order=None)


class ScatterAddOp(Function):
    """out = x with src added at `positions` (out[index[i][j]][j] += src[i][j] for dim 0; an element named twice
    receives both).   dx = g;  dsrc = g at the positions (gathered)."""

    def forward(ctx, x, src, positions):
        ctx.positions = positions
        out = x.copy()
        backend.xp(out).add.at(out, positions, src)
        return out

    def backward(ctx, g):
        return g, g[ctx.positions]


def scatter_add(x, dim, index, src):
    """x with src's elements added at the positions index names along dim (PyTorch's scatter_add)."""
    if not isinstance(src, Tensor):
        raise TypeError(f"scatter_add: src must be a Tensor, got {type(src).__name__}")
    positions = _positions_along("scatter_add", x, dim, index, src)
    return ScatterAddOp.apply(x, _read_part("scatter_add", x, index, src), positions=positions)


def repeat_interleave(x, repeats=None, dim=None, *, output_size=None):
    """Each slice of x along dim repeated `repeats` times in place (an int, or one count per slice), x flattened
    first when dim is None. repeat_interleave(counts) alone gives 0, 1, ... each repeated its count (PyTorch's).
    The gradient of each copy goes back to its slice (GetItemOp's scatter-add)."""
    if repeats is None:
        if x.ndim != 1 or x.dtype.kind not in "iu":
            raise TypeError(f"repeat_interleave: given alone, the counts must be a vector of integers, got "
                            f"{x.dtype} {x.shape}")
        x, repeats = Tensor(backend.xp(x.data).arange(x.shape[0])), x
    if dim is None:
        x, dim = reshape(x, -1), 0
    dim = normalize_axes("repeat_interleave", dim, x.ndim)[0]
    xp = backend.xp(x.data)
    counts = repeats.data if isinstance(repeats, Tensor) else xp.asarray(repeats)
    if counts.dtype.kind not in "iu" or counts.ndim > 1 or counts.size not in (1, x.shape[dim]):
        raise ValueError(f"repeat_interleave: repeats must be an integer or one integer per slice along dim {dim} "
                         f"of {x.shape}, got {counts.dtype} {counts.shape}")
    if counts.size and int(counts.min()) < 0:
        raise ValueError(f"repeat_interleave: repeats must be >= 0, got {counts.tolist()}")
    positions = xp.repeat(xp.arange(x.shape[dim]), counts.reshape(-1) if counts.size > 1 else int(counts.item()))
    if output_size is not None and output_size != positions.size:
        raise ValueError(f"repeat_interleave: output_size {output_size} is not the {positions.size} the repeats give")
    return GetItemOp.apply(x, index=(slice(None),) * dim + (positions,))


Tensor.gather = gather
Tensor.index_select = index_select
Tensor.scatter = scatter
Tensor.scatter_add = scatter_add
Tensor.repeat_interleave = repeat_interleave


class ExpandOp(Function):
    """out = x broadcast to `shape` (a view: no copy).   dx = g summed over the axes x was broadcast along."""

    def forward(ctx, x, shape):
        ctx.shape = x.shape
        try:
            return backend.xp(x).broadcast_to(x, shape)
        except ValueError:
            raise ValueError(f"expand: shape {x.shape} cannot be expanded to {shape} (only axes of length 1 "
                             f"grow, and new axes go in front)") from None

    def backward(ctx, g):
        return unbroadcast(g, ctx.shape)


def expand(x, *sizes):
    """x broadcast to `sizes`; -1 keeps an axis's length (PyTorch's expand)."""
    sizes = _sizes(sizes)
    lead = len(sizes) - x.ndim
    if lead < 0:
        raise ValueError(f"expand: {sizes} has fewer axes than the tensor's shape {x.shape}")
    shape = tuple(x.shape[i - lead] if n == -1 and i >= lead else n for i, n in enumerate(sizes))
    return ExpandOp.apply(x, shape=shape)


class RepeatOp(Function):
    """out = x tiled `repeats[i]` times along each axis i (PyTorch's repeat, NumPy's tile).
    dx = the sum of g over all the copies: g viewed as (r0, s0, r1, s1, ...) summed over the r axes."""

    def forward(ctx, x, repeats):
        if len(repeats) < x.ndim or any(r < 0 for r in repeats):
            raise ValueError(f"repeat: needs one count >= 0 per axis of {x.shape} (or more), got {repeats}")
        ctx.x_shape, ctx.padded = x.shape, (1,) * (len(repeats) - x.ndim) + x.shape
        return backend.xp(x).tile(x, repeats)

    def backward(ctx, g):
        split = [n for r, s in zip(g.shape, ctx.padded) for n in (r // s if s else 0, s)]  # (r0, s0, r1, s1, ...)
        return g.reshape(split).sum(axis=tuple(range(0, len(split), 2))).reshape(ctx.x_shape)


def repeat(x, *repeats):
    return RepeatOp.apply(x, repeats=_sizes(repeats))


Tensor.expand = expand
Tensor.repeat = repeat
Tensor.expand_as = lambda self, other: expand(self, *other.shape)


def flip(x, *dims):
    """x with the order of its elements reversed along each of dims (a view; the gradient is flipped back)."""
    axes = normalize_axes("flip", _sizes(dims), x.ndim)
    return GetItemOp.apply(x, index=tuple(slice(None, None, -1) if d in axes else slice(None) for d in range(x.ndim)))


Tensor.flip = flip


class RollOp(Function):
    """out = x with its elements shifted by shifts[i] along dims[i], those pushed past the end coming back at the
    start (all axes flattened into one when dims is None).   dx = g rolled back by -shifts."""

    def forward(ctx, x, shifts, dims):
        ctx.shifts, ctx.dims = shifts, dims
        return backend.xp(x).roll(x, shifts, axis=dims)

    def backward(ctx, g):
        return backend.xp(g).roll(g, tuple(-s for s in ctx.shifts) if ctx.dims is not None else -ctx.shifts,
                                  axis=ctx.dims)


def roll(x, shifts, dims=None):
    """x rolled by shifts along dims (one shift per dim; dims None: over the flattened elements, one shift)."""
    if dims is None:
        if isinstance(shifts, (tuple, list)):
            if len(shifts) != 1:
                raise ValueError(f"roll: without dims, one shift (over the flattened tensor), got shifts {shifts}")
            shifts = shifts[0]
        return RollOp.apply(x, shifts=int(shifts), dims=None)
    shifts = tuple(shifts) if isinstance(shifts, (tuple, list)) else (shifts,)
    dims = tuple(dims) if isinstance(dims, (tuple, list)) else (dims,)
    if len(shifts) != len(dims):
        raise ValueError(f"roll: shifts {shifts} and dims {dims} must have one shift per dim")
    for d in dims:
        normalize_axes("roll", d, x.ndim)
    return RollOp.apply(x, shifts=tuple(int(s) for s in shifts), dims=dims)


Tensor.roll = roll


class TrilOp(Function):
    """out = x with the elements above diagonal k of its last two axes set to 0 (the lower triangle kept; k > 0
    keeps k diagonals more above, k < 0 fewer).   dx = tril(g, k): the zeroed elements do not reach the output."""

    def forward(ctx, x, diagonal):
        ctx.diagonal = diagonal
        return backend.xp(x).tril(x, diagonal)

    def backward(ctx, g):
        return backend.xp(g).tril(g, ctx.diagonal)


class TriuOp(Function):
    """out = x with the elements below diagonal k of its last two axes set to 0 (the upper triangle kept).
    dx = triu(g, k)."""

    def forward(ctx, x, diagonal):
        ctx.diagonal = diagonal
        return backend.xp(x).triu(x, diagonal)

    def backward(ctx, g):
        return backend.xp(g).triu(g, ctx.diagonal)


def _matrices(op, x):
    if x.ndim < 2:
        raise ValueError(f"{op}: needs a tensor of at least 2 axes (a matrix or a stack of them), got {x.shape}")
    return x


def tril(x, diagonal=0):
    return TrilOp.apply(_matrices("tril", x), diagonal=int(diagonal))


def triu(x, diagonal=0):
    return TriuOp.apply(_matrices("triu", x), diagonal=int(diagonal))


Tensor.tril = tril
Tensor.triu = triu


def diagonal(x, offset=0, dim1=0, dim2=1):
    """The elements x[..., i, i + offset] of the matrices that axes dim1 and dim2 hold (offset > 0: above the main
    diagonal, < 0 below) as a last axis, the other axes kept in order, as PyTorch's diagonal. The gradient goes back
    to those elements (GetItemOp)."""
    first, second = (normalize_axes("diagonal", d, x.ndim)[0] for d in (dim1, dim2))
    if first == second:
        raise ValueError(f"diagonal: dim1 and dim2 must be two axes, both are axis {first} of {x.shape}")
    x = permute(x, *[a for a in range(x.ndim) if a not in (first, second)], first, second)
    k = int(offset)
    length = builtins.max(builtins.min(x.shape[-2] + builtins.min(k, 0), x.shape[-1] - builtins.max(k, 0)), 0)
    i = backend.xp(x.data).arange(length)
    return GetItemOp.apply(x, index=(Ellipsis, i + builtins.max(-k, 0), i + builtins.max(k, 0)))


def diag(x, diagonal=0):
    """For a matrix, its diagonal `diagonal` (0: the main one, k > 0 above it, k < 0 below) as a vector; for a
    vector, the square matrix holding it on that diagonal and zeros elsewhere (PyTorch's diag). Either way the
    gradient goes back to the diagonal's elements (GetItemOp, IndexPutOp)."""
    if tensor_input("diag", x).ndim == 2:
        return x.diagonal(diagonal)
    if x.ndim != 1:
        raise ValueError(f"diag: expects a vector or a matrix, got shape {x.shape}")
    xp, k = backend.xp(x.data), int(diagonal)
    i = xp.arange(x.shape[0])
    zeros = Tensor(xp.zeros((x.shape[0] + builtins.abs(k),) * 2, x.dtype))
    return IndexPutOp.apply(zeros, x, index=(i + builtins.max(-k, 0), i + builtins.max(k, 0)), order=None)


Tensor.diagonal, Tensor.diag = diagonal, diag


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


def _tensor_list(op, tensors):
    """The tensors concat and stack join, as a list: a clear error for none (PyTorch's: "expected a non-empty list
    of Tensors"), or for one Tensor where a list belongs (iterating it would join its rows)."""
    if isinstance(tensors, Tensor):
        raise TypeError(f"{op}: expected a list of Tensors, got a single Tensor {tensors.shape}; wrap it in a list")
    tensors = list(tensors)
    if not tensors:
        raise ValueError(f"{op}: expected a non-empty list of Tensors, got none")
    return tensors


def concat(tensors, dim=0, *, axis=None):
    """The tensors joined along `dim` (PyTorch's cat; `axis` as an alias)."""
    tensors = _tensor_list("concat", tensors)
    return ConcatOp.apply(*promoted("concat", *tensors), axis=dim_or_axis("concat", dim, axis, 0))


cat = concat


class StackOp(Function):
    """out = the inputs (all of one shape) stacked along a new `axis`.   d(input i) = g taken at index i."""

    def forward(ctx, *xs, axis=0):
        if len({x.shape for x in xs}) != 1:
            raise ValueError(f"stack: all inputs must have one shape, got {[x.shape for x in xs]}")
        ctx.axis = normalize_axes("stack", axis, xs[0].ndim + 1)[0]
        return backend.xp(xs[0]).stack(xs, axis=ctx.axis)

    def backward(ctx, g):
        return tuple(g.take(i, axis=ctx.axis) for i in range(g.shape[ctx.axis]))


def stack(tensors, dim=0, *, axis=None):
    """The tensors (all of one shape) stacked along a new axis `dim`."""
    tensors = _tensor_list("stack", tensors)
    return StackOp.apply(*promoted("stack", *tensors), axis=dim_or_axis("stack", dim, axis, 0))


def meshgrid(*tensors, indexing=None):
    """Grids from vectors: output i holds tensors[i] laid along axis i ('ij') and repeated along the others, all
    of shape (len(t0), len(t1), ...); 'xy' swaps the first two axes (Cartesian, as NumPy's default). Without
    indexing, 'ij' with PyTorch's warning. Each output is a reshape and an expand: gradients sum back."""
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tuple(tensors[0])
    if indexing is None:
        warnings.warn("meshgrid: in an upcoming release of PyTorch it will be required to pass the indexing "
                      "argument; 'ij' is used", UserWarning, stacklevel=2)
        indexing = "ij"
    if indexing not in ("ij", "xy"):
        raise ValueError(f"meshgrid: indexing must be 'ij' or 'xy', got {indexing!r}")
    for t in tensors:
        if t.ndim > 1:
            raise ValueError(f"meshgrid: expects 0-d or 1-d tensors, got shape {t.shape}")
    axes = list(range(len(tensors)))
    if indexing == "xy" and len(tensors) > 1:
        axes[0], axes[1] = 1, 0
    shape = [0] * len(tensors)
    for t, axis in zip(tensors, axes):
        shape[axis] = t.numel()
    return tuple(expand(reshape(t, [-1 if a == axis else 1 for a in range(len(shape))]), *shape)
                 for t, axis in zip(tensors, axes))


def split(x, split_size, dim=0, *, axis=None):
    """Pieces of `split_size` along `dim` (the last may be shorter), as PyTorch's split; a list of sizes
    gives pieces of those sizes."""
    axis = normalize_axes("split", dim_or_axis("split", dim, axis, 0), x.ndim)[0]
    length = x.shape[axis]
    if isinstance(split_size, (list, tuple)):
        sizes = list(split_size)
        if not all(isinstance(n, (int, np.integer)) and n >= 0 for n in sizes):   # a negative one would slice wrongly
            raise ValueError(f"split: sizes must be whole numbers >= 0, got {sizes}")
    elif not isinstance(split_size, (int, np.integer)) or split_size < 1:
        raise ValueError(f"split: split_size must be a whole number, at least 1, got {split_size!r}")
    else:
        sizes = [split_size] * (length // split_size) + ([length % split_size] if length % split_size else [])
    if builtins.sum(sizes) != length:
        raise ValueError(f"split: sizes {sizes} do not add up to {length}, the length of axis {axis} of {x.shape}")
    starts = np.cumsum([0] + sizes[:-1])
    lead = (slice(None),) * (axis % x.ndim)
    return [getitem(x, lead + (slice(int(s), int(s) + n),)) for s, n in zip(starts, sizes)]


def chunk(x, chunks, dim=0):
    """x cut into `chunks` pieces along dim, each ceil(length / chunks) long (the last shorter, and fewer pieces
    where they run out first), as PyTorch's chunk."""
    if not isinstance(chunks, (int, np.integer)) or chunks < 1:
        raise ValueError(f"chunk: chunks must be a whole number, at least 1, got {chunks!r}")
    axis = normalize_axes("chunk", dim, x.ndim)[0]
    length = x.shape[axis]
    if length == 0:   # PyTorch gives `chunks` empty pieces
        return tuple(getitem(x, (slice(None),) * axis + (slice(0, 0),)) for _ in range(chunks))
    return tuple(split(x, -(-length // chunks), dim=axis))


Tensor.split = split
Tensor.chunk = chunk


def select(x, dim, index):
    """The slice of x at `index` along dim, that axis removed (x[:, index] for dim 1), as PyTorch's select; a
    negative index counts from the end."""
    axis = _existing_axis("select", x, dim)
    length, index = x.shape[axis], int(index)
    if not -length <= index < length:
        raise IndexError(f"select: index {index} is out of range for axis {axis} of length {length} (shape "
                         f"{x.shape})")
    return getitem(x, (slice(None),) * axis + (index,))


def unbind(x, dim=0):
    """The slices of x along dim, each without that axis: a tuple of x.shape[dim] tensors (PyTorch's unbind)."""
    axis = _existing_axis("unbind", x, dim)
    return tuple(getitem(x, (slice(None),) * axis + (i,)) for i in range(x.shape[axis]))


def narrow(x, dim, start, length):
    """x[start:start + length] along dim, as PyTorch's narrow (start may be negative, counted from the end, or a
    0-d tensor)."""
    axis = _existing_axis("narrow", x, dim)
    size, start = x.shape[axis], int(start)
    if not -size <= start <= size:
        raise IndexError(f"narrow: start {start} is out of range for axis {axis} of length {size} (shape {x.shape})")
    start += size if start < 0 else 0
    if length < 0 or start + length > size:
        raise ValueError(f"narrow: start {start} + length {length} runs past axis {axis} of length {size} (shape "
                         f"{x.shape})")
    return getitem(x, (slice(None),) * axis + (slice(start, start + length),))


def tensor_split(x, indices_or_sections, dim=0):
    """x cut along dim, as PyTorch's tensor_split: into n pieces (an int n: the first length % n pieces one longer
    than the others), or at indices (a list or tensor [i, j]: pieces x[:i], x[i:j], x[j:], each index read as a
    Python slice reads it, so out of range ones give empty pieces)."""
    axis = _existing_axis("tensor_split", x, dim)
    split = indices_or_sections
    if isinstance(split, Tensor):
        if split.dtype.kind not in "iu" or split.ndim > 1:
            raise TypeError(f"tensor_split: indices_or_sections as a tensor must be integers with 0 or 1 axes, got "
                            f"{split.dtype} {split.shape}")
        split = int(split.item()) if split.ndim == 0 else split.tolist()
    if isinstance(split, (int, np.integer)) and not isinstance(split, bool):
        if split < 1:
            raise ValueError(f"tensor_split: the number of sections must be at least 1, got {split}")
        size, longer = divmod(x.shape[axis], int(split))
        bounds = np.cumsum([0] + [size + 1] * longer + [size] * (int(split) - longer)).tolist()
        pieces = zip(bounds[:-1], bounds[1:])
    else:
        indices = [int(i) for i in split]
        pieces = zip([None] + indices, indices + [None])
    return tuple(getitem(x, (slice(None),) * axis + (slice(start, end),)) for start, end in pieces)


def hstack(tensors):
    """The tensors joined along axis 1, or along axis 0 where they are vectors (a number counts as one), as
    PyTorch's hstack."""
    tensors = [reshape(t, (1,)) if tensor_input("hstack", t).ndim == 0 else t
               for t in _tensor_list("hstack", tensors)]
    return concat(tensors, dim=0 if tensors[0].ndim == 1 else 1)


def vstack(tensors):
    """The tensors joined along axis 0, a vector (or a number) counting as a row, as PyTorch's vstack."""
    tensors = [reshape(t, (1, -1)) if tensor_input("vstack", t).ndim < 2 else t
               for t in _tensor_list("vstack", tensors)]
    return concat(tensors, dim=0)


Tensor.select, Tensor.unbind, Tensor.narrow, Tensor.tensor_split = select, unbind, narrow, tensor_split


class WhereOp(Function):
    """out = a where cond else b.   da = g where cond (else 0),  db = g where not cond.  cond gets no gradient."""

    def forward(ctx, cond, a, b):
        broadcast_shape("where", cond.shape, a.shape, b.shape)
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


def _condition(op, cond):
    """A condition (where's, masked_fill's mask) as a bool array: PyTorch refuses any other dtype."""
    cond = cond.data if isinstance(cond, Tensor) else cond
    cond = cond if hasattr(cond, "dtype") else np.asarray(cond)
    if cond.dtype != bool:
        raise TypeError(f"{op}: the condition must be a bool tensor, got {cond.dtype} {cond.shape}")
    return cond


def where(condition, input=None, other=None):
    """input where condition else other. Either of input, other may be a Python number (the two promote as in a
    binary op), or both: then the result is a new tensor of their dtype (int64, the default float, bool), on the
    condition's device. where(condition) alone is nonzero(condition, as_tuple=True), as in PyTorch."""
    if input is None and other is None:
        return nonzero(condition, as_tuple=True)
    if input is None or other is None:
        raise TypeError("where: give both input and other, or neither (where(condition) is nonzero's tuple)")
    cond = _condition("where", condition)
    if not isinstance(input, Tensor) and not isinstance(other, Tensor):
        dtype = backend.promote(input, other)
        input, other = (Tensor(backend.xp(cond).asarray(v, dtype=dtype)) for v in (input, other))
    return WhereOp.apply(cond, *promoted("where", input, other))


Tensor.where = lambda self, condition, other: where(condition, self, other)


def masked_fill(x, mask, value):
    """x with `value` wherever `mask` is true, as PyTorch's masked_fill: mask a bool tensor, broadcast against x
    (the result has their broadcast shape); value a number or a 0-d tensor, converted to x's dtype (a 0-d value that
    requires grad receives the sum of the gradient where mask is true)."""
    if not isinstance(value, Tensor):
        value = number_like("masked_fill", value, x)
    elif value.ndim != 0:
        raise ValueError(f"masked_fill: the value must be a number or a 0-d tensor, got shape {value.shape}")
    return where(_condition("masked_fill", mask), value.to(x.dtype), x)


Tensor.masked_fill = masked_fill


def nonzero(x, *, as_tuple=False):
    """The positions of x's nonzero (true) elements: an (n, x.ndim) int64 tensor, one row per element in row-major
    order; as_tuple=True: one vector per axis (a 0-d x counts as one axis, as in PyTorch). No gradient."""
    data = tensor_input("nonzero", x).data
    xp = backend.xp(data)
    if as_tuple:
        return tuple(Tensor(p.astype(np.int64)) for p in xp.nonzero(data.reshape(-1) if data.ndim == 0 else data))
    return Tensor(xp.argwhere(data).astype(np.int64))


Tensor.nonzero = nonzero


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


# ---------------------------------------------------------------- einsum

class EinsumOp(Function):
    """out = einsum(terms -> output) of the operands (NumPy's einsum), every subscript one letter (einsum() below
    spells an ellipsis out in letters).
    d(operand i) = einsum(g and the other operands -> operand i's letters), and three cases that einsum cannot
    write (a letter only operand i has, a repeated letter, a broadcast axis of length 1): derived in docs/einsum.md."""

    def forward(ctx, *operands, terms, output):
        ctx.save_for_backward(*operands)
        ctx.terms, ctx.output = terms, output
        try:
            return backend.xp(operands[0]).einsum(f"{','.join(terms)}->{output}", *operands,
                                                  optimize=len(operands) > 1)
        except ValueError as e:
            shapes = ", ".join(str(x.shape) for x in operands)
            raise ValueError(f"einsum: operands of shapes {shapes} do not fit '{','.join(terms)}->{output}': "
                             f"{e}") from None

    def backward(ctx, g):
        return tuple(ctx.operand_grad(i, g) if needed else None for i, needed in enumerate(ctx.needs_input_grad))

    def operand_grad(ctx, i, g):
        xp, x, term = backend.xp(g), ctx.saved[i], ctx.terms[i]
        others = [j for j in range(len(ctx.terms)) if j != i]
        letters = "".join(dict.fromkeys(term))   # each letter once, in order
        reached = set(ctx.output).union(*(ctx.terms[j] for j in others))
        kept = "".join(c for c in letters if c in reached)
        grad = xp.einsum(",".join([ctx.output] + [ctx.terms[j] for j in others]) + "->" + kept, g,
                         *(ctx.saved[j] for j in others), optimize=bool(others))
        length = {c: x.shape[term.index(c)] for c in letters}   # operand i's own lengths
        grad = grad.reshape([grad.shape[kept.index(c)] if c in kept else 1 for c in letters])
        broadcast = tuple(a for a, c in enumerate(letters) if length[c] == 1 and grad.shape[a] != 1)
        grad = xp.broadcast_to(grad.sum(axis=broadcast, keepdims=True), [length[c] for c in letters])
        if len(letters) == len(term):
            return grad
        on_diagonal = tuple(xp.arange(length[c]).reshape([-1 if d == c else 1 for d in letters]) for c in term)
        dx = xp.zeros(x.shape, dtype=grad.dtype)
        dx[on_diagonal] = grad
        return dx


def einsum(equation, *operands):
    """Einstein summation, as PyTorch's einsum: einsum('ij,jk->ik', a, b) is a @ b. Letters name axes; an axis
    named in the inputs but not in the output is summed; '...' stands for the axes no letter names (broadcast
    between operands, kept in front of an implicit output); without '->' the output is the letters used once, in
    alphabetical order (capitals first). Operands may also come as one list; the sublist form
    einsum(a, [0, 1], b, [1, 2], [0, 2]) is read too."""
    if not isinstance(equation, str):
        equation, operands = _sublist_equation((equation,) + operands)
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    terms, output = _einsum_subscripts(equation, [x.ndim for x in operands])
    return EinsumOp.apply(*promoted("einsum", *operands), terms=terms, output=output)


_LETTERS = string.ascii_uppercase + string.ascii_lowercase   # PyTorch's 52 subscripts, in its order


def _sublist_equation(args):
    """einsum(a, [0, 1], b, [1, 2], [0, 2]) as ('AB,BC->AC', (a, b)): axis numbers 0..51 as letters, Ellipsis
    as '...'."""
    def letters(sublist):
        return "".join("..." if s is Ellipsis else _LETTERS[s] for s in sublist)
    has_output = len(args) % 2 == 1
    operands, sublists = args[0:len(args) - has_output:2], args[1::2]
    return ",".join(map(letters, sublists)) + ("->" + letters(args[-1]) if has_output else ""), operands


def _einsum_subscripts(equation, ndims):
    """The equation's input terms and output, '...' spelled out in letters that no term uses (an operand with
    fewer such axes takes the last of them: they broadcast from the right), checked as PyTorch checks them."""
    equation = equation.replace(" ", "")
    inputs, arrow, output = equation.partition("->")
    terms = inputs.split(",")
    if len(terms) != len(ndims):
        raise ValueError(f"einsum: '{equation}' has {len(terms)} input terms for {len(ndims)} operands")
    for part in terms + [output]:
        if set(part.replace("...", "", 1)) - set(_LETTERS):
            raise ValueError(f"einsum: '{part}' in '{equation}' is not letters with at most one '...'")
    named = [len(t) - 3 if "..." in t else len(t) for t in terms]
    for t, count, n in zip(terms, named, ndims):
        if count > n or ("..." not in t and count != n):
            raise ValueError(f"einsum: '{t}' names {count} axes of an operand with {n}")
    spare = [c for c in _LETTERS if c not in equation]
    ellipsis = "".join(spare[:builtins.max([n - k for t, k, n in zip(terms, named, ndims) if "..." in t], default=0)])
    spelled = [t.replace("...", ellipsis[len(ellipsis) - (n - k):]) for t, k, n in zip(terms, named, ndims)]
    if not arrow:
        used = "".join(terms)
        return spelled, ellipsis + "".join(sorted(c for c in set(used) if c in _LETTERS and used.count(c) == 1))
    output = output.replace("...", ellipsis)
    for c in output:
        if output.count(c) > 1 or not any(c in t for t in spelled):
            raise ValueError(f"einsum: output subscript {c} of '{equation}' appears twice, or in no input term")
    return spelled, output
