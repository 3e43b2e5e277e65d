"""The engine's random numbers: PyTorch's CPU generator and draws, reproduced in NumPy, so that a script seeded
with manual_seed gets here the numbers it gets from PyTorch (2.13, CPU): the same initial weights, batches,
shuffles and samples.

The generator is PyTorch's: mt19937 (NumPy's MT19937 bit generator), seeded as at::mt19937 seeds it (the standard
32-bit initialisation from the seed's low 32 bits). A draw takes one 32-bit word (`random`) or two, the first the
high half (`random64`), and each distribution uses its words in PyTorch's order and turns them into numbers with
PyTorch's arithmetic (ATen's core/DistributionsHelper.h, TransformationHelper.h, cpu/DistributionTemplates.h):

    uniform     float32: the low 24 bits of a word times 2^-24; float64: the low 53 bits of random64 times 2^-53;
                then x (to - from) + from
    normal      >= 16 elements, contiguous: uniforms for all, then Box-Muller on blocks of 16 (j with j + 8; a
                length that is no multiple of 16 redraws its last 16); float32 by avx_mathfun.py (PyTorch's AVX2
                code, on every CPU with AVX2), float64 with the C library's log, cos and sin. Fewer, or not
                contiguous: Box-Muller in float64 from two random64 draws per pair, the second number of the pair
                kept for the next call (the generator's normal cache)
    randint     (word % range) + low, a random64 word from a range of 2^28 up
    exponential -log1p(-u) / lambd from a float64 uniform, per element (also for float32)
    bernoulli   u < p: a float64 uniform for a probability given as a number or float64 tensor, float32 for float32
    randperm    Fisher-Yates: swap i with i + word % (n - i), i = 0 .. n-2
    multinomial without replacement, or one sample: argmax (topk) of p / q, q exponential; with replacement:
                a float64 uniform per sample, searched in the normalised cumulative sum

Elements are filled in memory order (TensorIterator's), so a transposed view draws as in PyTorch. The float64
functions log, log1p, sin and cos are the C library's (math.*, the libm PyTorch calls): NumPy's own vectorised
log and log1p differ from it in the last bit.

On the GPU (CuPy) the draws come from CuPy's generator, seeded by manual_seed too: PyTorch's CUDA numbers
(Philox) are not reproduced.
"""
import math
import os

import numpy as np

from . import avx_mathfun, backend
from .fma import fma32, fma64

DEFAULT_SEED = 67280421310721   # the seed of a new torch.Generator() (at::default_rng_seed_val)
_BLOCK = 2 ** 16   # elements computed at a time where a draw takes many steps: its temporaries stay in the cache


def _mt19937_key(seed):
    """mt19937's 624 words of state from a seed, as init_genrand (and at::mt19937) make them."""
    key = [seed & 0xFFFFFFFF]
    for i in range(1, 624):
        key.append((1812433253 * (key[-1] ^ (key[-1] >> 30)) + i) & 0xFFFFFFFF)
    return np.array(key, np.uint32)


class Generator:
    """torch.Generator for the CPU: an mt19937 stream, seeded and drawn from as PyTorch's CPUGeneratorImpl."""

    def __init__(self, device="cpu"):
        if str(device) != "cpu":
            raise ValueError(f"Generator: device {device!r}: only CPU generators; draws on the GPU come from CuPy's "
                             f"generator, seeded by manual_seed")
        self.device = backend.CPU
        self._words = np.random.Generator(np.random.MT19937())
        self.manual_seed(DEFAULT_SEED)

    def manual_seed(self, seed):
        """Restart the stream from `seed` (an integer in [-2^63, 2^64); a negative one counts from 2^64)."""
        seed = int(seed)
        if not -2 ** 63 <= seed < 2 ** 64:
            raise ValueError(f"manual_seed: the seed must be in [-2**63, 2**64), got {seed}")
        self._seed = seed % 2 ** 64
        self._words.bit_generator.state = {"bit_generator": "MT19937",
                                           "state": {"key": _mt19937_key(self._seed), "pos": 624}}
        self._next_normal = None
        return self

    def seed(self):
        """Reseed from the operating system's entropy; returns the new seed."""
        seed = int.from_bytes(os.urandom(8), "little")
        self.manual_seed(seed)
        return seed

    def initial_seed(self):
        return self._seed

    def get_state(self):
        """The whole state, a plain JSON-friendly dict (not PyTorch's byte tensor): set_state continues from it."""
        mt = self._words.bit_generator.state["state"]
        return {"seed": self._seed, "mt19937": [int(word) for word in mt["key"]], "pos": int(mt["pos"]),
                "next_normal": self._next_normal}

    def set_state(self, state):
        if not is_state(state):
            raise ValueError("set_state: not a state of the engine's generator (get_state(): seed, mt19937 (624 "
                             "words), pos, next_normal)")
        self._seed = state["seed"]
        self._words.bit_generator.state = {"bit_generator": "MT19937",
                                           "state": {"key": np.array(state["mt19937"], np.uint32),
                                                     "pos": state["pos"]}}
        self._next_normal = state["next_normal"]
        return self

    def random(self, n):
        """n 32-bit words (uint32)."""
        return self._words.integers(0, 2 ** 32, n, dtype=np.uint32)

    def random64(self, n):
        """n 64-bit words (uint64), each two 32-bit draws, the first the high half."""
        words = self.random(2 * n).astype(np.uint64)
        return (words[0::2] << np.uint64(32)) | words[1::2]

    def __repr__(self):
        return f"Generator(device='cpu', initial_seed={self._seed})"


def is_state(state):
    """True for a dict that get_state() returned (every value checked: set_state reads nothing else)."""
    def whole(value, bound):
        return type(value) is int and 0 <= value < bound
    cached = state.get("next_normal") if isinstance(state, dict) else None
    return (isinstance(state, dict) and sorted(state) == ["mt19937", "next_normal", "pos", "seed"]
            and whole(state["seed"], 2 ** 64) and whole(state["pos"], 625)
            and isinstance(state["mt19937"], list) and len(state["mt19937"]) == 624
            and all(whole(word, 2 ** 32) for word in state["mt19937"])
            and (cached is None or type(cached) is float and math.isfinite(cached)))


default_generator = Generator()
_device_generators = {}


def manual_seed(seed):
    """Restart the default generator from `seed`, and every GPU generator; returns the default generator."""
    default_generator.manual_seed(seed)
    _device_generators.clear()
    return default_generator


def seed():
    """Reseed the default generator from the operating system's entropy; returns the seed."""
    _device_generators.clear()
    return default_generator.seed()


def initial_seed():
    return default_generator.initial_seed()


def get_state():
    return default_generator.get_state()


def set_state(state):
    default_generator.set_state(state)
    _device_generators.clear()


def resolve(generator, op):
    """The generator to draw from: `generator`, or the default one for None."""
    if generator is None:
        return default_generator
    if not isinstance(generator, Generator):
        raise TypeError(f"{op}: generator must be a tinygrad_llm Generator, got {type(generator).__name__}")
    return generator


def device_generator(device):
    """CuPy's generator of a GPU device, seeded from the default generator's seed on first use."""
    if device not in _device_generators:
        _device_generators[device] = backend.module_for(device).random.default_rng(default_generator.initial_seed())
    return _device_generators[device]


def manual_seed_device(device, seed):
    """Restart the generator of a GPU device alone from `seed` (torch.cuda.manual_seed): the same stream as after
    manual_seed(seed), CuPy's, not PyTorch's CUDA numbers."""
    seed = int(seed)
    if not -2 ** 63 <= seed < 2 ** 64:
        raise ValueError(f"manual_seed: the seed must be in [-2**63, 2**64), got {seed}")
    _device_generators[device] = backend.module_for(device).random.default_rng(seed % 2 ** 64)


# ---------------------------------------------------------------- the draws: arrays in PyTorch's order

def _libm(function, x):
    """The C library's float64 `function` (math.log, ...) on every element of x: PyTorch's kernels call it."""
    return np.fromiter(map(function, x.ravel().tolist()), np.float64, count=x.size).reshape(x.shape)


def uniforms(generator, n, dtype, low=0.0, high=1.0):
    """n numbers uniform in [low, high), as uniform_real_distribution<dtype>: low and high in dtype, then
    x (high - low) + low in dtype, fused."""
    dtype = np.dtype(dtype)
    low, high = dtype.type(low), dtype.type(high)
    if dtype == np.float32:
        x = (generator.random(n) & np.uint32(0xFFFFFF)).astype(np.float32) * np.float32(2.0 ** -24)
    else:
        x = (generator.random64(n) & np.uint64(2 ** 53 - 1)).astype(np.float64) * 2.0 ** -53
    if (low, high) != (0, 1):
        fma = fma32 if dtype == np.float32 else fma64
        for start in range(0, n, _BLOCK):
            x[start:start + _BLOCK] = fma(x[start:start + _BLOCK], high - low, low)
    return x


def normals(generator, n, dtype, mean=0.0, std=1.0, contiguous=True):
    """n normal numbers, as normal_ fills a tensor of n elements (see the module docstring)."""
    dtype = np.dtype(dtype)
    if n < 16 or not contiguous:
        return _scalar_normals(generator, n, mean, std).astype(dtype)
    data = uniforms(generator, n, dtype)
    tail = uniforms(generator, 16, dtype) if n % 16 else None
    if dtype == np.float32:
        fill_16 = lambda u: avx_mathfun.normal_fill_16(u, mean, std)  # noqa: E731
    else:
        fill_16 = lambda u: _normal_fill_16_float64(u, mean, std)  # noqa: E731
    out, whole = np.empty(n, dtype), n - n % 16
    for start in range(0, whole, _BLOCK):
        stop = min(start + _BLOCK, whole)
        out[start:stop] = fill_16(data[start:stop])
    if tail is not None:                             # the last 16 drawn anew, overwriting the ends of the blocks
        out[n - 16:] = fill_16(tail)
    return out


def _normal_fill_16_float64(uniforms, mean, std):
    """normal_fill_16<double>: blocks of 16 uniforms -> normals, r cos(theta) and r sin(theta) (j with j + 8)."""
    blocks = uniforms.reshape(-1, 2, 8)
    radius = np.sqrt(-2.0 * _libm(math.log, 1.0 - blocks[:, 0]))
    theta = 2.0 * math.pi * blocks[:, 1]
    pair = np.stack([radius * _libm(math.cos, theta), radius * _libm(math.sin, theta)], axis=1)
    return fma64(pair, std, mean).reshape(-1)


def _scalar_normals(generator, n, mean, std):
    """normal_distribution<double>, n times: a pair (r cos, r sin) from two random64 uniforms u1, u2 (r from u2,
    the angle from u1), its second number kept in the generator for the next draw. float64."""
    cached = [] if generator._next_normal is None else [generator._next_normal]
    pairs = (n - len(cached) + 1) // 2
    u = uniforms(generator, 2 * pairs, np.float64).reshape(pairs, 2)
    radius = np.sqrt(-2.0 * _libm(math.log1p, -u[:, 1]))
    theta = 2.0 * math.pi * u[:, 0]
    fresh = np.stack([radius * _libm(math.cos, theta), radius * _libm(math.sin, theta)], axis=1).reshape(-1)
    values = np.concatenate([cached, fresh])
    generator._next_normal = float(values[n]) if len(values) > n else None
    return fma64(values[:n], std, mean)


def random_from_to(generator, n, low, high):
    """n integers uniform in [low, high) (high - low <= 2^64), as int64: (word % range) + low in 64-bit unsigned
    arithmetic, a 64-bit word for a range >= 2^28. The whole int64 range: the 64-bit words themselves."""
    span = high - low
    if span == 2 ** 64:
        return generator.random64(n).view(np.int64)
    words = generator.random64(n) if span >= 2 ** 28 else generator.random(n).astype(np.uint64)
    return (words % np.uint64(span) + np.uint64(low % 2 ** 64)).view(np.int64)


def full_range(dtype):
    """The bound of random_() with none given: max + 1 for an integer dtype, 2^digits + 1 for a float one."""
    dtype = np.dtype(dtype)
    if dtype == np.bool_:
        return 2
    return 2 ** (np.finfo(dtype).nmant + 1) + 1 if dtype.kind == "f" else int(np.iinfo(dtype).max) + 1


def random_full(generator, n, dtype):
    """random_() with no bounds: word % full_range(dtype) (a bool: the word's low bit), a 64-bit word for int64
    and float64 only."""
    dtype = np.dtype(dtype)
    words = generator.random64(n) if dtype in (np.int64, np.float64) else generator.random(n).astype(np.uint64)
    return (words % np.uint64(full_range(dtype))).astype(dtype)


def exponentials(generator, n, lambd):
    """n exponential numbers of rate lambd, float64: (-1 / lambd) log1p(-u)."""
    return (-1.0 / lambd) * _libm(math.log1p, -uniforms(generator, n, np.float64))


def bernoullis(generator, p, shape):
    """A boolean draw per element of `shape` (C order), True with probability p (a number, or an array of `shape`):
    u < p, u a float64 uniform, or float32 for a float32 array p."""
    dtype = np.float32 if getattr(p, "dtype", None) == np.float32 else np.float64
    return uniforms(generator, math.prod(shape), dtype).reshape(shape) < p


def permutation(generator, n):
    """randperm(n): 0 .. n-1 shuffled by swapping i with i + word % (n - i), i = 0 .. n-2."""
    if n >= (2 ** 32 - 1) // 20:   # PyTorch changes algorithm there (64-bit draws, a backward shuffle)
        raise ValueError(f"randperm: n = {n} is too large here; PyTorch shuffles n >= {(2 ** 32 - 1) // 20} "
                         f"with another algorithm, which this engine does not reproduce")
    words = generator.random(max(n - 1, 0)) % np.arange(n, 1, -1, dtype=np.uint64)
    order = list(range(n))
    for i, z in enumerate(words.tolist()):
        order[i], order[i + z] = order[i + z], order[i]
    return np.array(order, np.int64)


def multinomial(generator, probs, num_samples, replacement):
    """Indices (rows, num_samples) sampled from each row of probs (rows, categories), as torch.multinomial."""
    if not replacement or num_samples == 1:
        q = exponentials(generator, probs.size, 1.0).astype(probs.dtype).reshape(probs.shape)
        keys = probs / q                                   # argmax of p / q, q ~ Exp(1): a draw from p
        if num_samples == 1:
            return keys.argmax(axis=-1)[:, None]
        return np.argsort(-keys, axis=-1, kind="stable")[:, :num_samples]
    cumulative = np.cumsum(probs, axis=-1, dtype=probs.dtype)
    cumulative /= cumulative[:, -1:]
    cumulative[:, -1] = 1
    u = uniforms(generator, probs.shape[0] * num_samples, np.float64).reshape(probs.shape[0], num_samples)
    return np.stack([np.searchsorted(row.astype(np.float64), draws, side="left")
                     for row, draws in zip(cumulative, u)]).astype(np.int64)


def memory_axes(array):
    """array's axes in memory order, the largest stride first: the order PyTorch's TensorIterator fills them in."""
    return sorted(range(array.ndim), key=lambda axis: -array.strides[axis])


def fill(array, values):
    """Write `values` (flat, in drawing order) into `array` in memory order, so a transposed or sliced view is
    filled as PyTorch fills it."""
    view = array.transpose(memory_axes(array))
    view[...] = values.reshape(view.shape)
    return array


def dropout_keep_mask(shape, p, like):
    """A random boolean mask of `shape`, True with probability 1 - p, on the device of the array `like`: on the
    CPU the mask of PyTorch's dropout (bernoulli_(1 - p): one float64 uniform per element, kept if below 1 - p)."""
    device = backend.device_of(like)
    if device == "cpu":
        return bernoullis(default_generator, 1 - p, shape)
    draws = device_generator(device).random(shape, dtype=np.float32)
    return draws >= np.float32(p)
