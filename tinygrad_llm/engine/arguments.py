"""Argument helpers shared by the op modules: what an op's inputs are turned into before it computes.

Shapes that broadcast, axes and PyTorch's `dim`/NumPy's `axis`, dtype promotion of mixed inputs (PyTorch's rule),
Tensors required where a function takes only Tensors, and the (device, dtype) a `to()` call asks for. Each raises
an error that names the op.
"""
import numpy as np

from . import backend
from .tensor import Tensor


def broadcast_shape(op, *shapes):
    """The shape the `shapes` broadcast to, or an error naming the op and the shapes."""
    if len(shapes) == 2:   # every elementwise op asks this; decided here, np.broadcast_shapes builds arrays to decide
        a, b = shapes
        if a == b or not b:
            return a
        if not a:
            return b
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
        if not -max(ndim, 1) <= a < max(ndim, 1):
            raise ValueError(f"{op}: axis {a} is out of range for a tensor with {ndim} axes")
    normalized = tuple(sorted(a % max(ndim, 1) for a in axes))
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
    raises, in tensor.run_forward). floating_result=True: the op's result is floating whatever its inputs (true
    division): integers and bools compute in the default float dtype, as in PyTorch."""
    if len(values) == 2:   # the everyday cases, decided at once: two tensors of one dtype, a float tensor and a number
        a, b = values
        if isinstance(a, Tensor) and a.data.dtype.kind == "f":
            if isinstance(b, Tensor) and b.data.dtype == a.data.dtype:
                return values
            if type(b) in (float, int):
                return a, Tensor(backend.xp(a.data).asarray(b, dtype=a.data.dtype))
        elif isinstance(b, Tensor) and b.data.dtype.kind == "f" and type(a) in (float, int):
            return Tensor(backend.xp(b.data).asarray(a, dtype=b.data.dtype)), b
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
