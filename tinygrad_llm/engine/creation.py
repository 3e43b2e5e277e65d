"""Making tensors, with PyTorch's names and defaults: tensor, zeros, ones, full, the *_like forms, arange, rand,
randn, randint. Sizes may be given as separate ints or as one tuple (zeros(2, 3) or zeros((2, 3))); the default
float dtype is float32, the default integer dtype int64. Random tensors draw from the engine's seeded generator
(rng.py), so manual_seed fixes them, as torch.manual_seed does."""
import numpy as np

from . import backend, rng
from .movement import _sizes
from .tensor import Tensor


def _shape(op, size):
    """A size given as ints or one tuple, checked: whole numbers >= 0 (a clear error naming the op otherwise)."""
    shape = _sizes(size)
    if not all(isinstance(n, (int, np.integer)) and n >= 0 for n in shape):
        raise ValueError(f"{op}: a size must be whole numbers >= 0, got {shape}")
    return shape


def tensor(data, dtype=None, device=None, requires_grad=False):
    """A tensor holding a copy of `data` (a nested list, a number or an array); Python floats become float32."""
    data = data.data if isinstance(data, Tensor) else data
    try:
        copied = backend.xp(data).array(data, dtype=dtype) if hasattr(data, "dtype") else np.asarray(data, dtype=dtype)
    except ValueError as e:   # ragged nested lists, strings that are no numbers
        raise ValueError(f"tensor: cannot make a tensor of {str(data)[:60]}: {e}") from None
    if copied.dtype.kind == "f" and dtype is None and not hasattr(data, "dtype"):
        copied = copied.astype(backend.DEFAULT_FLOAT)   # Python floats: float32, as PyTorch's default
    return Tensor(copied, device=device, requires_grad=requires_grad)


def _filled(op, fill, size, dtype, device, requires_grad):
    dtype = backend.promote(fill) if dtype is None else np.dtype(dtype)
    data = backend.module_for(device).full(_shape(op, size), fill, dtype=dtype)
    return Tensor(data, requires_grad=requires_grad)


def zeros(*size, dtype=None, device="cpu", requires_grad=False):
    return _filled("zeros", 0.0, size, dtype, device, requires_grad)


def ones(*size, dtype=None, device="cpu", requires_grad=False):
    return _filled("ones", 1.0, size, dtype, device, requires_grad)


def full(size, fill_value, dtype=None, device="cpu", requires_grad=False):
    """A tensor of `size` filled with fill_value; the dtype follows the value (float32, int64 or bool)."""
    return _filled("full", fill_value, (size,) if isinstance(size, int) else size, dtype, device, requires_grad)


def _like(op, x, fill, dtype, device, requires_grad):
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: expects a Tensor, got {type(x).__name__}")
    return _filled(op, fill, x.shape, x.dtype if dtype is None else dtype, x.device if device is None else device,
                   requires_grad)


def zeros_like(x, dtype=None, device=None, requires_grad=False):
    return _like("zeros_like", x, 0, dtype, device, requires_grad)


def ones_like(x, dtype=None, device=None, requires_grad=False):
    return _like("ones_like", x, 1, dtype, device, requires_grad)


def full_like(x, fill_value, dtype=None, device=None, requires_grad=False):
    return _like("full_like", x, fill_value, dtype, device, requires_grad)


def arange(start, end=None, step=1, dtype=None, device="cpu", requires_grad=False):
    """start, start + step, ... below end (arange(n): 0 .. n-1); int64 for integer arguments, else float32."""
    start, end = (0, start) if end is None else (start, end)
    if step == 0:
        raise ValueError("arange: step must not be 0")
    dtype = backend.promote(start, end, step) if dtype is None else np.dtype(dtype)
    return Tensor(backend.module_for(device).arange(start, end, step, dtype=dtype), requires_grad=requires_grad)


def _random(op, draw, size, dtype, device, requires_grad):
    dtype = backend.DEFAULT_FLOAT if dtype is None else backend.check_float_dtype(dtype, op)
    generator = rng.generator(device)
    data = getattr(generator, draw)(_shape(op, size), dtype=dtype)
    return Tensor(data, requires_grad=requires_grad)


def rand(*size, dtype=None, device="cpu", requires_grad=False):
    """Uniform numbers in [0, 1)."""
    return _random("rand", "random", size, dtype, device, requires_grad)


def randn(*size, dtype=None, device="cpu", requires_grad=False):
    """Standard normal numbers."""
    return _random("randn", "standard_normal", size, dtype, device, requires_grad)


def randint(*bounds_and_size, size=None, dtype=np.int64, device="cpu"):
    """Integers uniform in [low, high), as PyTorch: randint(high, size) or randint(low, high, size)."""
    bounds = bounds_and_size if size is not None else bounds_and_size[:-1]
    size = bounds_and_size[-1] if size is None else size
    if len(bounds) not in (1, 2):
        raise TypeError(f"randint: expects (high, size) or (low, high, size), got {bounds_and_size}")
    low, high = (0, bounds[0]) if len(bounds) == 1 else bounds
    if low >= high:
        raise ValueError(f"randint: low {low} must be below high {high}")
    shape = _shape("randint", (size,) if isinstance(size, int) else size)
    return Tensor(rng.generator(device).integers(low, high, shape, dtype=dtype))
