"""The engine's generator against PyTorch's (engine/rng.py): for the same seed, every draw equals torch's on this
machine, bit for bit, and the generator's state carries from one draw to the next as in torch.

PyTorch's numbers depend on its build for the CPU: the AVX2 and AVX512 kernels (any x86 CPU of the last decade)
fuse multiply-adds and use avx_mathfun's float32 log and sincos, which the engine reproduces; the kernels for CPUs
without AVX2 (ATEN_CPU_CAPABILITY=default) round twice and use the C library's float functions. There the tests
accept float numbers a few units in the last place apart (`same`); integers, indices and masks stay exact.
"""
import math
from fractions import Fraction

import numpy as np
import pytest

import tinygrad_llm as tl
from tinygrad_llm.engine import rng
from tinygrad_llm.engine.fma import fma32, fma64

SEEDS = [0, 1337, 2 ** 32 + 7, 2 ** 64 - 1, -5]
SIZES = [1, 2, 15, 16, 17, 31, 33, 100, 1000, (3, 5, 7), (2, 0)]


@pytest.fixture
def fused(torch):
    """True where torch's kernels fuse multiply-adds (its AVX2 and AVX512 builds): then every draw is bit for bit."""
    return torch.backends.cpu.get_cpu_capability() != "DEFAULT"


def same(ours, theirs, exact):
    """Our tensor equals torch's: in dtype and shape, and in every bit (exact), or for floats from torch's
    non-AVX2 build within a few units in the last place of the largest number (rounding errors of x (to - from)
    and of the transcendental functions, which a cancellation may leave in a small number)."""
    ours, theirs = ours.detach().numpy(), theirs.detach().numpy()
    assert (ours.dtype, ours.shape) == (theirs.dtype, theirs.shape)
    if exact or ours.dtype.kind != "f":
        np.testing.assert_array_equal(ours, theirs)
    else:
        scale = max(1.0, float(np.abs(theirs).max(initial=0.0)))
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=16 * np.finfo(ours.dtype).eps * scale)


def both(torch, seed, draw):
    """draw(module) after manual_seed(seed), in tinygrad_llm and in torch."""
    tl.manual_seed(seed)
    torch.manual_seed(seed)
    return draw(tl), draw(torch)


def dt(m, name):
    """The dtype called `name` in module m (torch's, or NumPy's for tinygrad_llm)."""
    return np.dtype(name) if m is tl else getattr(m, name)


def size_args(size):
    return size if isinstance(size, tuple) else (size,)


DTYPES = ["float32", "float64"]


@pytest.mark.parametrize("seed", SEEDS)
def test_manual_seed_as_torch_seeds(seed, torch, fused):
    ours, theirs = both(torch, seed, lambda m: m.rand(7))
    same(ours, theirs, True)
    assert tl.initial_seed() == torch.initial_seed()
    assert tl.Generator().initial_seed() == torch.Generator().initial_seed()
    same(tl.rand(3, generator=tl.Generator()), torch.rand(3, generator=torch.Generator()), True)


@pytest.mark.parametrize("size", SIZES, ids=str)
@pytest.mark.parametrize("dtype", DTYPES)
def test_rand_and_uniform_(size, dtype, torch, fused):
    for seed in SEEDS[:2]:
        same(*both(torch, seed, lambda m: m.rand(*size_args(size), dtype=dt(m, dtype))), True)
        for low, high in [(-1 / math.sqrt(3), 1 / math.sqrt(3)), (2.5, 7.1)]:
            same(*both(torch, seed, lambda m: m.zeros(size_args(size), dtype=dt(m, dtype)).uniform_(low, high)),
                 fused)


@pytest.mark.parametrize("size", SIZES, ids=str)
@pytest.mark.parametrize("dtype", DTYPES)
def test_randn_and_normal_(size, dtype, torch, fused):
    """Both of PyTorch's paths: Box-Muller on blocks of 16 (with its redrawn tail), and below 16 elements the
    scalar one that keeps the second number of each pair for the next draw."""
    for seed in SEEDS[:2]:
        same(*both(torch, seed, lambda m: m.randn(*size_args(size), dtype=dt(m, dtype))), fused)
        for mean, std in [(0.3, 1.7), (-2.0, 0.02)]:
            same(*both(torch, seed, lambda m: m.zeros(size_args(size), dtype=dt(m, dtype)).normal_(mean, std)),
                 fused)


def test_a_transposed_or_sliced_view_is_filled_in_memory_order(torch, fused):
    """PyTorch fills a view in its memory order; a non-contiguous one takes the scalar normal path."""
    for fill in (lambda x: x.uniform_(-2, 3), lambda x: x.normal_(), lambda x: x.exponential_(),
                 lambda x: x.bernoulli_(0.3), lambda x: x.random_(0, 100)):
        for view in (lambda x: x.t(), lambda x: x[:, 1:4], lambda x: x[::2]):
            def draw(m):
                base = m.zeros(6, 20, dtype=m.float64)
                fill(view(base))
                return base
            same(*both(torch, 11, draw), fused)


def test_interleaved_draws_share_one_stream(torch, fused):
    """The state carries from one kind of draw to the next, the normal cache included (an odd scalar draw leaves
    one number for the next), through get_state/set_state, and manual_seed clears it."""
    def draws(m):
        out = [m.randn(3), m.rand(2), m.randn(1), m.randn(20), m.randint(0, 10, (5,)), m.randn(5, dtype=m.float64)]
        state = m.get_rng_state()
        out += [m.randn(1), m.randperm(7), m.multinomial(m.tensor([0.2, 0.5, 0.3]), 2)]
        m.set_rng_state(state)
        out += [m.randn(1), m.zeros(4).exponential_(), m.zeros(5).bernoulli_(0.5), m.randn(33)]
        m.manual_seed(3)
        m.randn(1)
        m.manual_seed(3)
        return out + [m.randn(1)]
    for ours, theirs in zip(*both(torch, 5, draws), strict=True):
        same(ours, theirs, fused)


def test_a_generator_keeps_its_own_stream(torch, fused):
    """generator= draws from that Generator and leaves the default one where it was."""
    def draws(m):
        g = m.Generator().manual_seed(99)
        out = [m.randn(40, generator=g), m.rand(3, generator=g), m.randint(5, (4,), generator=g),
               m.randperm(9, generator=g), m.multinomial(m.tensor([1.0, 2.0, 3.0]), 1, generator=g),
               m.zeros(20).normal_(generator=g), m.zeros(5).uniform_(generator=g),
               m.zeros(6).bernoulli_(0.4, generator=g), m.zeros(6).exponential_(generator=g),
               m.zeros(3, dtype=m.int64).random_(generator=g), m.rand(2)]   # the last from the default generator
        return out + [m.tensor(g.initial_seed()), m.tensor(m.initial_seed())]
    for ours, theirs in zip(*both(torch, 8, draws), strict=True):
        same(ours, theirs, fused)


@pytest.mark.parametrize("dtype", ["int64", "int32", "float32", "float64"])
def test_randint_takes_32_or_64_bits_by_the_range(dtype, torch):
    """(word % range) + low: a 32-bit word below a range of 2^28, a 64-bit one from there."""
    for low, high in [(0, 10), (-5, 5), (0, 2 ** 28 - 1), (0, 2 ** 28), (-2 ** 30, 2 ** 30)]:
        if dtype == "float32" and high > 2 ** 24:
            continue
        same(*both(torch, 1, lambda m: m.randint(low, high, (50,), dtype=dt(m, dtype))), True)
    same(*both(torch, 1, lambda m: m.randint(7, (3, 4))), True)
    same(*both(torch, 1, lambda m: m.randint(-2 ** 62, 2 ** 62, (6,))), True)


@pytest.mark.parametrize("dtype", ["int64", "int32", "int16", "uint8", "bool", "float32", "float64"])
def test_random_(dtype, torch):
    """random_() (every value of the dtype from 0; a float one: 0 .. 2^digits), random_(to), random_(from, to)."""
    for args in [(), (7,), (3, 9)]:
        if dtype == "bool" and args:
            continue
        same(*both(torch, 2, lambda m: m.zeros(40, dtype=dt(m, dtype)).random_(*args)), True)


@pytest.mark.parametrize("n", [0, 1, 2, 10, 1000, 5000])
def test_randperm(n, torch):
    same(*both(torch, 4, lambda m: m.randperm(n)), True)
    same(*both(torch, 4, lambda m: m.randperm(n, dtype=m.int32)), True)


@pytest.mark.parametrize("dtype", DTYPES)
def test_multinomial(dtype, torch):
    """One sample or none repeated: the argmax (topk) of p / q, q exponential; with replacement: a uniform per sample
    searched in the cumulative sum. Unnormalised weights, 1-d and 2-d, zeros among them."""
    weights = np.random.default_rng(0).random((6, 50)) ** 3
    weights[:, ::7] = 0
    for seed in SEEDS[:3]:
        for rows in (weights[0], weights):
            for k, replacement in [(1, False), (1, True), (5, False), (5, True), (200, True)]:
                same(*both(torch, seed, lambda m: m.multinomial(m.tensor(rows, dtype=dt(m, dtype)), k,
                                                                replacement=replacement)), True)


@pytest.mark.parametrize("dtype", DTYPES)
def test_bernoulli_and_exponential_(dtype, torch):
    probs = np.random.default_rng(1).random((4, 25))
    for seed in SEEDS[:2]:
        for size in (5, 20, 1000):
            same(*both(torch, seed, lambda m: m.zeros(size, dtype=dt(m, dtype)).bernoulli_(0.3)), True)
            for lambd in (1.0, 2.5):
                same(*both(torch, seed, lambda m: m.zeros(size, dtype=dt(m, dtype)).exponential_(lambd)), True)
        same(*both(torch, seed, lambda m: m.bernoulli(m.tensor(probs, dtype=dt(m, dtype)))), True)
        same(*both(torch, seed, lambda m: m.zeros(4, 25, dtype=dt(m, dtype)).bernoulli_(
            m.tensor(probs[0], dtype=dt(m, dtype)))), True)


def test_normal_with_tensor_arguments(torch, fused):
    mean, std = np.linspace(-1, 1, 12).reshape(3, 4), np.linspace(0.1, 2, 4)
    for args in [(mean, std), (mean, 0.5), (0.5, std)]:
        same(*both(torch, 6, lambda m: m.normal(*[m.tensor(a) if isinstance(a, np.ndarray) else a for a in args])),
             fused)
    same(*both(torch, 6, lambda m: m.normal(2.0, 3.0, size=(5, 7))), fused)
    ours = [tl.tensor(mean, requires_grad=True), tl.tensor(std, requires_grad=True)]
    theirs = [torch.tensor(mean, requires_grad=True), torch.tensor(std, requires_grad=True)]
    tl.normal(*ours).sum().backward()
    torch.normal(*theirs).sum().backward()                  # not reparameterised: zero gradients
    for a, b in zip(ours, theirs):
        same(a.grad, b.grad, True)


def test_like_forms(torch, fused):
    x = np.zeros((3, 17))
    for draw in (lambda m, x: m.rand_like(x), lambda m, x: m.randn_like(x), lambda m, x: m.randint_like(x, 9),
                 lambda m, x: m.randint_like(x, -3, 3)):
        same(*both(torch, 9, lambda m: draw(m, m.tensor(x))), fused)


def test_dropout_masks_as_pytorch(torch):
    """F.dropout and nn.Dropout on the CPU: PyTorch's bernoulli_(1 - p) mask, scaled by 1 / (1 - p)."""
    x = np.random.default_rng(2).standard_normal((4, 33)).astype(np.float32)
    same(*both(torch, 12, lambda m: m.nn.functional.dropout(m.tensor(x), 0.3)), True)
    same(*both(torch, 12, lambda m: m.nn.Dropout(0.1)(m.tensor(x))), True)


def test_a_new_linear_or_embedding_layer_has_torch_s_weights(torch, fused):
    for make in (lambda m: m.nn.Linear(3, 4), lambda m: m.nn.Linear(768, 50), lambda m: m.nn.Embedding(65, 32)):
        ours, theirs = both(torch, 1337, make)
        for name, p in theirs.named_parameters():
            same(dict(ours.named_parameters())[name], p, fused)


def test_generator_state_round_trip_and_seed():
    g = tl.Generator().manual_seed(5)
    tl.randn(3, generator=g)                 # leaves a normal number in the cache
    state = g.get_state()
    first = tl.randn(7, generator=g)
    assert np.array_equal(tl.randn(7, generator=tl.Generator().set_state(state)).numpy(), first.numpy())
    assert rng.is_state(state) and state["next_normal"] is not None
    fresh = tl.Generator()
    new_seed = fresh.seed()
    assert fresh.initial_seed() == new_seed and 0 <= new_seed < 2 ** 64
    assert tl.manual_seed(3) is tl.default_generator


def test_bad_arguments_are_refused_naming_the_op():
    with pytest.raises(ValueError, match=r"manual_seed: the seed must be in \[-2\*\*63, 2\*\*64\)"):
        tl.manual_seed(2 ** 64)
    with pytest.raises(TypeError, match="randn: generator must be a tinygrad_llm Generator, got Generator"):
        tl.randn(3, generator=np.random.default_rng(0))
    with pytest.raises(ValueError, match="set_state: not a state of the engine's generator"):
        tl.Generator().set_state({"seed": 1})
    with pytest.raises(ValueError, match="Generator: device 'cuda': only CPU generators"):
        tl.Generator("cuda")
    with pytest.raises(ValueError, match="randint: low 5 must be below high 2"):
        tl.randint(5, 2, (3,))
    with pytest.raises(ValueError, match=r"randint: \[0, 300\) does not fit in uint8"):
        tl.randint(0, 300, (3,), dtype=np.uint8)
    with pytest.raises(ValueError, match="randperm: n = 214748364 is too large here"):
        tl.randperm(2 ** 32 // 20)
    with pytest.raises(ValueError, match=r"bernoulli_: expects p to be in \[0, 1\], but got p=1.5"):
        tl.zeros(3).bernoulli_(1.5)
    with pytest.raises(ValueError, match="normal_: expects std >= 0.0"):
        tl.zeros(3).normal_(0, -1)
    with pytest.raises(ValueError, match="uniform_: expects to return a"):
        tl.zeros(3).uniform_(2, 1)
    with pytest.raises(ValueError, match="exponential_: expects lambd > 0.0"):
        tl.zeros(3).exponential_(0)
    with pytest.raises(ValueError, match="multinomial: probability tensor contains either `inf`, `nan` or element < 0"):
        tl.multinomial(tl.tensor([0.5, -0.1]), 1)
    with pytest.raises(ValueError, match=r"multinomial: invalid multinomial distribution \(sum of probabilities"):
        tl.multinomial(tl.tensor([[0.5, 0.5], [0.0, 0.0]]), 1)
    with pytest.raises(ValueError, match="multinomial: cannot sample n_sample > prob_dist.size"):
        tl.multinomial(tl.tensor([0.5, 0.5]), 3)
    with pytest.raises(ValueError, match="multinomial: a row has fewer than 2 categories of non-zero probability"):
        tl.multinomial(tl.tensor([0.0, 1.0, 0.0]), 2)
    parameter = tl.nn.Linear(2, 2).weight
    before = tl.get_rng_state()
    with pytest.raises(RuntimeError, match="normal_: .* is a leaf tensor that requires grad"):
        parameter.normal_()
    assert tl.get_rng_state() == before                       # a refused draw draws nothing


def test_fma_rounds_once():
    """fma32 and fma64 against exact rational arithmetic, on cases where rounding twice would differ."""
    def nearest_float32(exact):
        r = np.float32(float(exact))
        neighbours = [np.nextafter(r, np.float32(-np.inf)), r, np.nextafter(r, np.float32(np.inf))]
        return min(neighbours, key=lambda c: (abs(Fraction(float(c)) - exact), int(np.array(c).view(np.int32)) & 1))
    a, b, c = np.float32(2.0 ** -24 * (1 + 2.0 ** -23)), np.float32(1 - 2.0 ** -23), np.float32(1 + 2.0 ** -23)
    assert (np.float64(a) * np.float64(b) + np.float64(c)).astype(np.float32) != c   # the float64 route rounds up
    assert fma32(a, b, c) == c == nearest_float32(Fraction(float(a)) * Fraction(float(b)) + Fraction(float(c)))
    draws = np.random.default_rng(3)
    x = draws.standard_normal(300) * 10.0 ** draws.integers(-4, 4, 300)
    y = draws.standard_normal(300)
    for z in (draws.standard_normal(300), -x * y * (1 + 1e-13 * draws.standard_normal(300))):
        got = fma64(x, y, z)
        assert all(g == float(Fraction(p) * Fraction(q) + Fraction(r)) for g, p, q, r in zip(got, x, y, z))
        x32, y32, z32 = x.astype(np.float32), y.astype(np.float32), z.astype(np.float32)
        got = fma32(x32, y32, z32)
        assert all(g == nearest_float32(Fraction(float(p)) * Fraction(float(q)) + Fraction(float(r)))
                   for g, p, q, r in zip(got, x32, y32, z32))
