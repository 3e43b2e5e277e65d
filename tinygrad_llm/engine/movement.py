"""Primitive ops that move and pick elements: reshapes, transposes, indexing, expanding, joining and splitting,
where, and the embedding lookup. Each op is one recipe, as in ops.py: its Function (forward, backward, derivative),
its function, its Tensor method.

None of them does arithmetic, so every backward only moves gradients back to where the elements came from:
reshaped back, permuted back, scattered back into place, or summed where one element was used several times
(an expanded axis, a tiled copy, an index picked twice).
"""
import builtins
import warnings

import numpy as np

from . import backend
from .ops import _broadcast_shape, dim_or_axis, normalize_axes, promoted, unbroadcast
from .tensor import Function, IndexedGrad, Tensor


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
    if all(type(p) in _BASIC_PARTS for p in index):
        return index, None
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


class GetItemOp(Function):
    """out = x[index], with slices, integers, None, Ellipsis, integer and bool arrays (PyTorch's rule: see
    torch_index; `order` moves NumPy's result axes into PyTorch's order).
    dx = zeros of x's shape with g added at the indexed positions (scatter-add: an element picked twice by an
    integer array receives both gradients). Returned as an IndexedGrad, which the backward walk writes into one
    buffer per tensor, so reading many slices of one array costs one array of gradient, not one per slice."""

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


def put(array, index, order, value):
    """array[index] = value, in place: torch_index's (index, order), and value in PyTorch's axis order, broadcast to
    the indexed shape as PyTorch broadcasts it (leading axes of length 1 dropped)."""
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
        raise ValueError(f"setitem: a value of shape {value.shape} cannot be broadcast to the indexed shape "
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
