"""Making tensors, with PyTorch's names and defaults: tensor, from_numpy, zeros, ones, full, empty, eye, the *_like
and new_* forms, arange, linspace, and the random ones (rand, randn, randint, randperm, multinomial, normal,
bernoulli, the in-place normal_, uniform_, ...). Sizes may be given as separate ints or as one tuple (zeros(2, 3) or
zeros((2, 3))); the default float dtype is float32, the default integer dtype int64. Random tensors draw from the
engine's seeded generator (rng.py), so manual_seed fixes them, as torch.manual_seed does."""
import numpy as np

from . import backend, inplace, movement, rng
from .fma import fma64
from .movement import _sizes
from .tensor import Function, Tensor


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


def _like(op, x, fill, dtype, device, requires_grad, size=None):
    """Filled like x: its shape (or `size`), and its dtype and device unless given."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: expects a Tensor, got {type(x).__name__}")
    return _filled(op, fill, x.shape if size is None else size, x.dtype if dtype is None else dtype,
                   x.device if device is None else device, requires_grad)


def zeros_like(x, dtype=None, device=None, requires_grad=False):
    return _like("zeros_like", x, 0, dtype, device, requires_grad)


def ones_like(x, dtype=None, device=None, requires_grad=False):
    return _like("ones_like", x, 1, dtype, device, requires_grad)


def full_like(x, fill_value, dtype=None, device=None, requires_grad=False):
    return _like("full_like", x, fill_value, dtype, device, requires_grad)


def empty_like(x, dtype=None, device=None, requires_grad=False):
    """A tensor like x (its shape, and its dtype and device unless given) for numbers written before they are read,
    as PyTorch's empty_like; here it holds zeros, so a program that reads it anyway reads the same on every run."""
    return _like("empty_like", x, 0, dtype, device, requires_grad)


def arange(start, end=None, step=1, dtype=None, device="cpu", requires_grad=False):
    """start, start + step, ... below end (arange(n): 0 .. n-1); int64 for integer arguments, else float32. The
    length and the numbers are PyTorch's: ceil((end - start) / step) in float64 (for int64, counted in integers from
    the bounds truncated), an integer dtype taking start and step truncated, a float dtype _float_arange's numbers."""
    start, end, step = (v.item() if isinstance(v, Tensor) else v for v in ((0, start, step) if end is None
                                                                          else (start, end, step)))
    dtype = backend.promote(start, end, step) if dtype is None else np.dtype(dtype)
    if dtype.kind not in "iuf":
        raise TypeError(f"arange: dtype {dtype} is not supported (as PyTorch)")
    if not all(np.isfinite(float(v)) for v in (start, end, step)):
        raise ValueError(f"arange: unsupported range {start} -> {end} with step {step} (as PyTorch: finite only)")
    if step == 0 or (dtype.kind in "iu" and int(step) == 0):   # PyTorch repeats start for int32, refuses for int64
        raise ValueError(f"arange: step must not be 0 (got {step}, which {dtype} truncates to {int(step)})")
    first, last, stride = (int(v) for v in (start, end, step)) if dtype == np.int64 else (start, end, step)
    if (last - first) * stride < 0:
        raise ValueError(f"arange: the range {start} -> {end} goes against the sign of step {step} (as PyTorch, "
                         f"refused)")
    if dtype == np.int64:
        length = (last - first + stride - (1 if stride > 0 else -1)) // stride
    else:
        length = int(np.ceil((float(end) - float(start)) / float(step)))
    if dtype.kind == "f":
        values = _float_arange(float(start), float(step), length, dtype)
    else:
        values = (int(start) + int(step) * np.arange(length, dtype=np.int64)).astype(dtype)
    return Tensor(backend.module_for(device).asarray(values), requires_grad=requires_grad)


def _float_arange(start, step, n, dtype):
    """PyTorch's numbers for arange in a float dtype. Its CPU kernel computes start + i * step in float64, the
    multiply-add rounded once (the compiler fuses it), then rounds to dtype; and it goes in vectors of 8 float32 or 4
    float64 (AVX2), two at a time, each vector from its first element b (rounded to dtype) as b + k * step (k below
    the width), fused the same way; the elements after the last pair of vectors one by one. (PyTorch splits more than
    32768 elements between threads, each starting its own vectors, so its numbers there vary with its thread count;
    these are one thread's.)"""
    i = np.arange(n)
    width = 8 if dtype == np.float32 else 4
    lane = np.where(i < n - n % (2 * width), i % width, 0)
    first = fma64(step, (i - lane).astype(np.float64), start).astype(dtype).astype(np.float64)
    return fma64(lane.astype(np.float64), step, first).astype(dtype)


def linspace(start, end, steps, *, dtype=None, device="cpu", requires_grad=False):
    """`steps` numbers evenly spaced from start to end, both included; float32 by default. Computed as PyTorch does,
    from both ends toward the middle (start + i·step in the first half, end - (steps-1-i)·step in the second), so the
    last one is exactly end; an integer dtype takes the numbers rounded toward zero."""
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 0:
        raise ValueError(f"linspace: steps must be a whole number >= 0, got {steps!r}")
    start, end = float(start), float(end)
    i = np.arange(steps)
    step = (end - start) / max(steps - 1, 1)
    values = np.where(i < max(steps // 2, 1), start + step * i, end - step * (steps - 1 - i))
    dtype = backend.DEFAULT_FLOAT if dtype is None else np.dtype(dtype)
    return Tensor(backend.module_for(device).asarray(values.astype(dtype)), requires_grad=requires_grad)


def empty(*size, dtype=None, device="cpu", requires_grad=False):
    """A tensor of `size` holding whatever its memory held (PyTorch's empty: for numbers written before they are
    read); float32 by default."""
    dtype = backend.DEFAULT_FLOAT if dtype is None else np.dtype(dtype)
    return Tensor(backend.module_for(device).empty(_shape("empty", size), dtype=dtype), requires_grad=requires_grad)


def eye(n, m=None, *, dtype=None, device="cpu", requires_grad=False):
    """The n x m identity matrix (m = n unless given): ones on the diagonal; float32 by default."""
    n, m = _shape("eye", (n, n if m is None else m))
    dtype = backend.DEFAULT_FLOAT if dtype is None else np.dtype(dtype)
    return Tensor(backend.module_for(device).eye(n, m, dtype=dtype), requires_grad=requires_grad)


def from_numpy(array):
    """A tensor of `array`'s dtype sharing its memory: a change to either shows in the other, as in PyTorch."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"from_numpy: expects a numpy.ndarray, got {type(array).__name__}")
    return Tensor(array)


def new_zeros(x, *size, dtype=None, device=None, requires_grad=False):
    """x.new_zeros(size): zeros of that size, with x's dtype and device unless given."""
    return _like("new_zeros", x, 0, dtype, device, requires_grad, size)


def new_ones(x, *size, dtype=None, device=None, requires_grad=False):
    return _like("new_ones", x, 1, dtype, device, requires_grad, size)


def new_full(x, size, fill_value, *, dtype=None, device=None, requires_grad=False):
    return _like("new_full", x, fill_value, dtype, device, requires_grad, (size,) if isinstance(size, int) else size)


def new_tensor(x, data, dtype=None, device=None, requires_grad=False):
    """x.new_tensor(data): a copy of data, with x's dtype and device unless given (as PyTorch: not data's dtype)."""
    return tensor(data, x.dtype if dtype is None else dtype, x.device if device is None else device, requires_grad)


Tensor.new_zeros, Tensor.new_ones, Tensor.new_full, Tensor.new_tensor = new_zeros, new_ones, new_full, new_tensor


# ---------------------------------------------------------------- random numbers
# On the CPU every draw is PyTorch's, from its generator (rng.py): `generator=` a Generator, or the default one that
# manual_seed seeds. On the GPU the numbers are CuPy's (rng.device_generator).

def _draw(op, shape, dtype, device, generator, cpu_draw, gpu_draw, fill_like=None):
    """An array of `shape` and `dtype` on `device`: on the CPU the numbers cpu_draw(generator, n, contiguous) (flat,
    in drawing order), written in the memory order of `fill_like` (the array an in-place op fills) or C order; on a
    GPU gpu_draw(CuPy's generator, shape)."""
    device = backend.device_name(device)
    if device != "cpu":
        if generator is not None:
            raise ValueError(f"{op}: generator= is a CPU generator; the numbers on {device} come from CuPy's "
                             f"generator (seeded by manual_seed)")
        return gpu_draw(rng.device_generator(device), shape).astype(dtype, copy=False)
    generator = rng.resolve(generator, op)
    like = np.empty(shape, dtype) if fill_like is None else fill_like
    values = np.asarray(cpu_draw(generator, like.size, like.flags.c_contiguous)).astype(dtype, copy=False)
    return values.reshape(shape) if fill_like is None else rng.fill(np.empty_like(like), values)


def _new(op, size, dtype, device, requires_grad, generator, cpu_draw, gpu_draw):
    """A new float tensor of `size` drawn by _draw."""
    dtype = backend.DEFAULT_FLOAT if dtype is None else backend.check_float_dtype(dtype, op)
    data = _draw(op, _shape(op, size), dtype, device, generator, cpu_draw, gpu_draw)
    return Tensor(data, requires_grad=requires_grad)


def _in_place_draw(op, x, generator, cpu_draw, gpu_draw):
    """x's numbers replaced by new draws, in place, by inplace.py's rules (a parameter only inside no_grad; in the
    graph no gradient reaches the old numbers); nothing is drawn if the change is refused."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: expects a Tensor, got {type(x).__name__}")

    def replaced(old):
        data = _draw(op, x.shape, x.dtype, x.device, generator, cpu_draw, gpu_draw, fill_like=x.data)
        return movement.where(backend.xp(x.data).ones(x.shape, dtype=bool), Tensor(data), old)
    return inplace._in_place(op, x, replaced)


def _check_float_tensor(op, x):
    if not isinstance(x, Tensor) or x.dtype.kind != "f":
        raise TypeError(f"{op}: expects a floating-point Tensor, got "
                        f"{x.dtype if isinstance(x, Tensor) else type(x).__name__}")


def rand(*size, generator=None, dtype=None, device="cpu", requires_grad=False):
    """Uniform numbers in [0, 1)."""
    return _new("rand", size, dtype, device, requires_grad, generator,
                lambda g, n, contiguous: rng.uniforms(g, n, dtype or backend.DEFAULT_FLOAT),
                lambda g, shape: g.random(shape, dtype=dtype or backend.DEFAULT_FLOAT))


def randn(*size, generator=None, dtype=None, device="cpu", requires_grad=False):
    """Standard normal numbers."""
    return _new("randn", size, dtype, device, requires_grad, generator,
                lambda g, n, contiguous: rng.normals(g, n, dtype or backend.DEFAULT_FLOAT),
                lambda g, shape: g.standard_normal(shape, dtype=dtype or backend.DEFAULT_FLOAT))


def rand_like(x, dtype=None, device=None, requires_grad=False, generator=None):
    return rand(*_like_shape("rand_like", x), generator=generator, dtype=dtype or x.dtype,
                device=device or x.device, requires_grad=requires_grad)


def randn_like(x, dtype=None, device=None, requires_grad=False, generator=None):
    return randn(*_like_shape("randn_like", x), generator=generator, dtype=dtype or x.dtype,
                 device=device or x.device, requires_grad=requires_grad)


def _like_shape(op, x):
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: expects a Tensor, got {type(x).__name__}")
    return x.shape


def _integers(op, low, high, shape, dtype, device, generator):
    """Integers uniform in [low, high) as `dtype` (integer or float), checked as PyTorch checks them."""
    dtype = np.dtype(dtype)
    if dtype.kind not in "iuf":
        raise TypeError(f"{op}: dtype {dtype} is not supported; use an integer or a float dtype")
    if not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in (low, high)):
        raise TypeError(f"{op}: low and high must be integers, got {low!r} and {high!r}")
    if low >= high:
        raise ValueError(f"{op}: low {low} must be below high {high}")
    if dtype.kind in "iu" and not (np.iinfo(dtype).min <= low and high - 1 <= np.iinfo(dtype).max):
        raise ValueError(f"{op}: [{low}, {high}) does not fit in {dtype}")
    if high - low > 2 ** 64:
        raise ValueError(f"{op}: the range [{low}, {high}) is wider than 2**64")
    return _draw(op, shape, dtype, device, generator, lambda g, n, contiguous: rng.random_from_to(g, n, low, high),
                 lambda g, shape: g.integers(low, high, shape))


def randint(*bounds_and_size, size=None, generator=None, dtype=np.int64, device="cpu", requires_grad=False):
    """Integers uniform in [low, high), as PyTorch: randint(high, size) or randint(low, high, size)."""
    bounds = bounds_and_size if size is not None else bounds_and_size[:-1]
    size = bounds_and_size[-1] if size is None else size
    if len(bounds) not in (1, 2):
        raise TypeError(f"randint: expects (high, size) or (low, high, size), got {bounds_and_size}")
    low, high = (0, bounds[0]) if len(bounds) == 1 else bounds
    shape = _shape("randint", (size,) if isinstance(size, int) else size)
    return Tensor(_integers("randint", low, high, shape, dtype, device, generator), requires_grad=requires_grad)


def randint_like(x, low=0, high=None, dtype=None, device=None, generator=None):
    """randint_like(x, high) or randint_like(x, low, high): x's shape, dtype and device."""
    low, high = (0, low) if high is None else (low, high)
    return Tensor(_integers("randint_like", low, high, _like_shape("randint_like", x), dtype or x.dtype,
                            device or x.device, generator))


def randperm(n, generator=None, dtype=np.int64, device="cpu", requires_grad=False):
    """0 .. n-1 in a random order, as PyTorch shuffles them."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"randperm: n must be a whole number >= 0, got {n!r}")
    if backend.device_name(device) != "cpu":
        raise ValueError(f"randperm: on the CPU only here; draw it there and move it with .to('{device}')")
    dtype = np.dtype(dtype)
    if dtype.kind in "iu" and n > np.iinfo(dtype).max + 1:
        raise ValueError(f"randperm: n = {n} does not fit in {dtype}")
    return Tensor(rng.permutation(rng.resolve(generator, "randperm"), n).astype(dtype), requires_grad=requires_grad)


def multinomial(input, num_samples, replacement=False, generator=None):
    """Indices drawn from the categories of each row of `input` (non-negative weights, (C,) or (rows, C)) -> int64
    (num_samples,) or (rows, num_samples), as torch.multinomial."""
    if not isinstance(input, Tensor) or input.dtype.kind != "f" or input.ndim not in (1, 2):
        raise ValueError(f"multinomial: prob_dist must be a 1 or 2 dim floating-point Tensor, got "
                         f"{input.shape if isinstance(input, Tensor) else type(input).__name__}")
    if input.is_cuda:
        raise ValueError("multinomial: on the CPU only here; move the probabilities with .cpu()")
    if isinstance(num_samples, bool) or not isinstance(num_samples, (int, np.integer)) or num_samples <= 0:
        raise ValueError(f"multinomial: cannot sample n_sample <= 0 samples (got {num_samples!r})")
    probs = input.data.reshape(-1, input.shape[-1])                                   # (rows, C)
    if not replacement and num_samples > probs.shape[1]:
        raise ValueError(f"multinomial: cannot sample n_sample > prob_dist.size(-1) samples without replacement "
                         f"({num_samples} > {probs.shape[1]})")
    if probs.shape[1] > 2 ** 24:
        raise ValueError("multinomial: number of categories cannot exceed 2^24")
    if probs.size and not (np.all(probs >= 0) and np.all(probs < np.inf)):
        raise ValueError("multinomial: probability tensor contains either `inf`, `nan` or element < 0")
    if probs.size and np.any(probs.sum(axis=1) == 0):
        raise ValueError("multinomial: invalid multinomial distribution (sum of probabilities <= 0)")
    if not replacement and num_samples > 1 and np.any(np.count_nonzero(probs, axis=1) < num_samples):
        raise ValueError(f"multinomial: a row has fewer than {num_samples} categories of non-zero probability; "
                         f"PyTorch then picks among the zero ones in an order this engine does not reproduce")
    samples = rng.multinomial(rng.resolve(generator, "multinomial"), probs, num_samples, replacement)
    return Tensor(samples.reshape(*input.shape[:-1], num_samples))


def bernoulli(input, p=None, generator=None):
    """0 or 1 per element, 1 with probability input (or with probability p for every element, where given), in
    input's dtype."""
    _check_float_tensor("bernoulli", input)
    out = Tensor(np.empty_like(input.data) if input.is_cpu else input.data.copy())
    return bernoulli_(out, input if p is None else p, generator=generator)


class NormalOp(Function):
    """out = normal(mean, std), drawn in forward (`values`). As in PyTorch, the draw is not reparameterised: mean and
    std get a zero gradient (d out / d mean = d out / d std = 0)."""

    def forward(ctx, *tensors, values=None):
        ctx.shapes = [t.shape for t in tensors]
        return values

    def backward(ctx, g):
        return tuple(backend.xp(g).zeros(shape, g.dtype) for shape in ctx.shapes)


def normal(mean, std=1.0, size=None, generator=None, dtype=None, device="cpu", requires_grad=False):
    """Normal numbers: normal(mean, std, size) with numbers, or with a mean and/or std tensor one number per element of
    their broadcast shape, computed as PyTorch does: normal_(0, std) + mean, or normal_(0, 1) * std + mean."""
    if not isinstance(mean, Tensor) and not isinstance(std, Tensor):
        if size is None:
            raise TypeError("normal: with a number mean and std, size= is needed")
        out = normal_(zeros(size, dtype=dtype, device=device), mean, std, generator=generator)
        out.requires_grad = requires_grad
        return out
    if size is not None:
        raise TypeError("normal: size= goes with a number mean and std; with tensors the shape is theirs")
    tensors = [t for t in (mean, std) if isinstance(t, Tensor)]
    for t in tensors:
        _check_float_tensor("normal", t)
    if not isinstance(std, Tensor) and not std >= 0:
        raise ValueError(f"normal: expects std >= 0.0, but found std {std}")
    if isinstance(std, Tensor) and np.any(std.data < 0):
        raise ValueError("normal: expects all elements of std >= 0.0")
    shape = np.broadcast_shapes(*(t.shape for t in tensors))
    noise = normal_(zeros(shape, dtype=tensors[0].dtype, device=tensors[0].device), 0.0,
                    1.0 if isinstance(std, Tensor) else std, generator=generator).data
    if isinstance(std, Tensor):
        noise = noise * std.data
    values = noise + (mean.data if isinstance(mean, Tensor) else noise.dtype.type(mean))
    return NormalOp.apply(*tensors, values=values)


def normal_(x, mean=0.0, std=1.0, generator=None):
    """x filled with normal numbers, in place."""
    _check_float_tensor("normal_", x)
    if not std >= 0:
        raise ValueError(f"normal_: expects std >= 0.0, but found std {std}")
    return _in_place_draw("normal_", x, generator,
                          lambda g, n, contiguous: rng.normals(g, n, x.dtype, mean, std, contiguous),
                          lambda g, shape: g.standard_normal(shape, dtype=x.dtype) * std + mean)


def uniform_(x, from_=0.0, to=1.0, generator=None):
    """x filled with numbers uniform in [from_, to), in place."""
    _check_float_tensor("uniform_", x)
    if not from_ <= to:
        raise ValueError(f"uniform_: expects to return a [from, to) range, but found from={from_} > to={to}")
    return _in_place_draw("uniform_", x, generator,
                          lambda g, n, contiguous: rng.uniforms(g, n, x.dtype, from_, to),
                          lambda g, shape: g.random(shape, dtype=x.dtype) * (to - from_) + from_)


def random_(x, from_=None, to=None, generator=None):
    """x filled with integers, in place: random_(from_, to) uniform in [from_, to), random_(to) in [0, to), random_()
    every integer of x's dtype from 0 (a float dtype: 0 .. 2^mantissa bits, as PyTorch)."""
    if not isinstance(x, Tensor):
        raise TypeError(f"random_: expects a Tensor, got {type(x).__name__}")
    if from_ is None and to is None:
        return _in_place_draw("random_", x, generator, lambda g, n, contiguous: rng.random_full(g, n, x.dtype),
                              lambda g, shape: g.integers(0, rng.full_range(x.dtype), shape))
    low, high = (0, from_) if to is None else (from_, to)
    values = lambda g, n, contiguous: rng.random_from_to(g, n, low, high)  # noqa: E731
    _integers("random_", low, high, (0,), x.dtype, "cpu", None)                # the checks, drawing nothing
    return _in_place_draw("random_", x, generator, values, lambda g, shape: g.integers(low, high, shape))


def bernoulli_(x, p=0.5, generator=None):
    """x filled with 0 and 1, 1 with probability p (a number, or a tensor broadcast to x's shape), in place."""
    if not isinstance(x, Tensor):
        raise TypeError(f"bernoulli_: expects a Tensor, got {type(x).__name__}")
    if isinstance(p, Tensor):
        if np.any((p.data < 0) | (p.data > 1)):
            raise ValueError("bernoulli_: expects p to be in [0, 1]")
        probs = np.broadcast_to(p.data, x.shape)
        in_drawing_order = probs.transpose(rng.memory_axes(x.data)).reshape(-1)    # paired as they are drawn
        return _in_place_draw("bernoulli_", x, generator,
                              lambda g, n, contiguous: rng.bernoullis(g, in_drawing_order, (n,)),
                              lambda g, shape: g.random(shape) < probs)
    if not 0 <= p <= 1:
        raise ValueError(f"bernoulli_: expects p to be in [0, 1], but got p={p}")
    return _in_place_draw("bernoulli_", x, generator, lambda g, n, contiguous: rng.bernoullis(g, p, (n,)),
                          lambda g, shape: g.random(shape) < p)


def exponential_(x, lambd=1.0, generator=None):
    """x filled with exponential numbers of rate lambd, in place."""
    _check_float_tensor("exponential_", x)
    if not lambd > 0:
        raise ValueError(f"exponential_: expects lambd > 0.0, but found lambd={lambd}")
    return _in_place_draw("exponential_", x, generator,
                          lambda g, n, contiguous: rng.exponentials(g, n, lambd),
                          lambda g, shape: g.standard_exponential(shape) / lambd)


Tensor.normal_, Tensor.uniform_, Tensor.random_ = normal_, uniform_, random_
Tensor.bernoulli_, Tensor.exponential_ = bernoulli_, exponential_
Tensor.bernoulli, Tensor.multinomial = bernoulli, multinomial
