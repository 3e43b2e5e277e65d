"""Indexing as PyTorch does it (engine/movement.py's torch_index): random index expressions, drawn by hypothesis
(integers, slices, None, Ellipsis, integer arrays as lists, arrays or Tensors, bool masks, Python bools), give
torch's shape, values and gradient."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinygrad_llm import Tensor

from conftest import assert_raises_naming

pytestmark = pytest.mark.filterwarnings(   # PyTorch's readings of a list of lists and of uint8, and ours of them
    "ignore:Using a non-tuple sequence", "ignore:indexing with dtype torch.uint8", "ignore:.*a list holding a")


def test_an_integer_apart_from_an_index_array_selects_first():
    """The silent bug of issue 24: NumPy's rule gave (2, 3); PyTorch's gives (3, 2), x[1][:, idx]."""
    x = Tensor(np.arange(24.0).reshape(2, 3, 4), requires_grad=True)
    idx = Tensor(np.array([0, 2]))
    out = x[1, :, idx]
    assert out.shape == (3, 2)
    np.testing.assert_array_equal(out.detach().numpy(), np.arange(24.0).reshape(2, 3, 4)[1][:, [0, 2]])
    out.backward(np.arange(6.0).reshape(3, 2))
    expected = np.zeros((2, 3, 4))
    expected[1][:, [0, 2]] = np.arange(6.0).reshape(3, 2)
    np.testing.assert_array_equal(x.grad.numpy(), expected)


# ---------------------------------------------------------------- random index expressions against torch

KINDS = ["int", "slice", "none", "ellipsis", "array", "mask", "bool"]


@st.composite
def index_expressions(draw):
    """(shape, a recipe for the index): each entry (kind, axis, value, form); axis is the first axis it indexes.
    The axes have distinct lengths, so a result axis put in the wrong place changes the shape."""
    ndim = draw(st.integers(1, 4))
    shape = tuple(draw(st.permutations([2, 3, 4, 5]))[:ndim])
    kinds, used, has_ellipsis, has_mask = [], 0, False, False
    for _ in range(draw(st.integers(0, ndim + 2))):
        kind = draw(st.sampled_from(KINDS))
        width = {"int": 1, "slice": 1, "array": 1, "mask": draw(st.integers(1, 2))}.get(kind, 0)
        if used + width > ndim or (kind == "ellipsis" and has_ellipsis) or (kind == "mask" and has_mask):
            continue
        has_ellipsis |= kind == "ellipsis"
        has_mask |= kind == "mask"
        kinds.append((kind, width))
        used += width
    # the axes each entry indexes: from the left before an Ellipsis, from the right after it
    split = next((i for i, (k, _) in enumerate(kinds) if k == "ellipsis"), len(kinds))
    axes, axis = [], 0
    for kind, width in kinds[:split]:
        axes.append(axis)
        axis += width
    axis = ndim - sum(w for _, w in kinds[split:])
    for kind, width in kinds[split:]:
        axes.append(axis)
        axis += width
    recipe, mask_count = [], None
    for (kind, width), axis in zip(kinds, axes):   # masks first: their count of Trues sets the arrays' length
        if kind == "mask":
            mask = np.array(draw(st.lists(st.booleans(), min_size=int(np.prod(shape[axis:axis + width])),
                                          max_size=int(np.prod(shape[axis:axis + width]))))).reshape(
                shape[axis:axis + width])
            mask_count = int(mask.sum())
    batch = (mask_count,) if mask_count is not None else draw(st.sampled_from([(2,), (3,), (2, 3)]))
    for (kind, width), axis in zip(kinds, axes):
        n = shape[axis] if width else None
        if kind == "int":
            value = draw(st.integers(-n, n - 1))
            form = draw(st.sampled_from(["python", "numpy", "tensor"]))
        elif kind == "slice":
            value = slice(draw(st.none() | st.integers(-n, n)), draw(st.none() | st.integers(-n, n)),
                          draw(st.none() | st.integers(1, 3)))
            form = "python"
        elif kind == "array":
            array_shape = draw(st.sampled_from([batch, (1,) * len(batch), batch[-1:]]))
            value = np.array(draw(st.lists(st.integers(-n, n - 1), min_size=int(np.prod(array_shape)),
                                           max_size=int(np.prod(array_shape))))).reshape(array_shape)
            form = draw(st.sampled_from(["list", "numpy", "tensor"]))
        elif kind == "mask":
            value = mask
            form = draw(st.sampled_from(["tensor", "numpy"]))
        else:
            value = {"none": None, "ellipsis": Ellipsis, "bool": draw(st.booleans())}[kind]
            form = "python"
        recipe.append((kind, value, form))
    bare = len(recipe) == 1 and draw(st.booleans())
    return shape, recipe, bare


def build_index(recipe, bare, torch=None):
    """The index for ours (torch None) or for torch, from the recipe."""
    entries = []
    for kind, value, form in recipe:
        if form == "python":
            entries.append(value)
        elif form == "list":
            entries.append(value.tolist())
        elif form == "numpy":
            entries.append(np.int64(value) if kind == "int" else (value if torch is None else torch.from_numpy(value)))
        elif torch is None:
            entries.append(Tensor(np.array(value)))
        else:
            entries.append(torch.tensor(value))
    return entries[0] if bare else tuple(entries)


@settings(max_examples=300, deadline=None)
@given(case=index_expressions(), seed=st.integers(0, 2 ** 32 - 1))
def test_random_indexes_match_torch(case, seed):
    torch = pytest.importorskip("torch")
    shape, recipe, bare = case
    data = np.random.default_rng(seed).standard_normal(shape)
    ours, theirs = Tensor(data.copy(), requires_grad=True), torch.tensor(data, requires_grad=True)
    try:
        ref = theirs[build_index(recipe, bare, torch)]
    except IndexError:   # arrays that do not broadcast together (a mask's count against a list's length)
        with pytest.raises(IndexError, match="getitem"):
            ours[build_index(recipe, bare)]
        return
    out = ours[build_index(recipe, bare)]
    assert out.shape == tuple(ref.shape), f"{recipe}: ours {out.shape}, torch {tuple(ref.shape)}"
    np.testing.assert_array_equal(out.detach().numpy(), ref.detach().numpy())
    g = np.random.default_rng(seed + 1).standard_normal(out.shape)
    out.backward(g)
    ref.backward(torch.from_numpy(g))
    np.testing.assert_array_equal(ours.grad.numpy(), theirs.grad.numpy())


@pytest.mark.parametrize("index, expected_shape", [
    ([[0, 1], [1, 2]], (2, 4)),                    # a list of lists: x[[0, 1], [1, 2]], as PyTorch reads it
    ([[0, 1], slice(None)], (2, 3, 4)),            # a list holding a slice
    (Tensor(np.array([1, 0], np.uint8)), (1, 3, 4)),   # uint8: a mask (deprecated in PyTorch, still its reading)
])
def test_pytorch_readings_that_warn(index, expected_shape, torch):
    x = Tensor(np.arange(24.0).reshape(2, 3, 4))
    torch_index = torch.from_numpy(index.numpy()) if isinstance(index, Tensor) else index
    with pytest.warns(UserWarning, match="as PyTorch reads it"):
        out = x[index]
    ref = torch.arange(24.0, dtype=torch.float64).reshape(2, 3, 4)[torch_index]
    assert out.shape == tuple(ref.shape) == expected_shape
    np.testing.assert_array_equal(out.numpy(), ref.numpy())


def test_an_empty_list_picks_nothing():
    assert Tensor(np.ones((2, 3)))[[]].shape == (0, 3)


@pytest.mark.parametrize("index, words", [
    ((2,), ["getitem", "(2, 3, 4)", "out of bounds"]),
    ((slice(None), [0, 3]), ["getitem", "(2, 3, 4)", "out of bounds"]),
    ((0, 0, 0, 0), ["getitem", "(2, 3, 4)", "too many"]),
    ((Tensor(np.array([0.0, 1.0])),), ["getitem", "integers or booleans", "float64"]),
    ((Tensor(np.array([True, False, True])),), ["getitem", "(2, 3, 4)"]),   # a mask of the wrong length
])
def test_bad_indexes_raise_index_errors(index, words, torch):
    with pytest.raises(IndexError):   # torch refuses each one too
        torch.zeros(2, 3, 4)[tuple(torch.from_numpy(i.numpy()) if isinstance(i, Tensor) else i for i in index)]
    assert_raises_naming(lambda: Tensor(np.zeros((2, 3, 4)))[index], IndexError, words)


# ---------------------------------------------------------------- item assignment: t[index] = value


VALUE_FORMS = ["number", "full", "broadcast", "leading-ones"]


def value_shape(indexed_shape, form, rng):
    """A value shape PyTorch broadcasts to indexed_shape: itself, with some axes of length 1 or leading ones dropped,
    or with a leading 1 added."""
    if form == "full":
        return indexed_shape
    if form == "leading-ones":
        return (1,) + indexed_shape
    shape = tuple(1 if rng.random() < 0.5 else n for n in indexed_shape)
    return shape[rng.integers(0, len(shape) + 1):]


@settings(max_examples=200, deadline=None)
@given(case=index_expressions(), form=st.sampled_from(VALUE_FORMS), in_graph=st.booleans(),
       seed=st.integers(0, 2 ** 32 - 1))
def test_random_assignments_match_torch(case, form, in_graph, seed):
    """t[index] = value: t's numbers equal torch's. In the graph (t = base * 1, base and value requiring grad), so do
    the gradients of base and value through a weighted sum of t; outside it the numbers are written in place."""
    torch = pytest.importorskip("torch")
    shape, recipe, bare = case
    rng = np.random.default_rng(seed)
    try:
        positions = torch.arange(int(np.prod(shape))).reshape(shape)[build_index(recipe, bare, torch)]
    except IndexError:
        return   # arrays that do not broadcast: test_random_indexes_match_torch checks the error
    if len(set(positions.flatten().tolist())) < positions.numel():
        form = "number"   # an element written twice: which value stays is PyTorch's to choose, not a rule
    data, weights = rng.standard_normal(shape), rng.standard_normal(shape)
    value = 0.5 if form == "number" else rng.standard_normal(value_shape(tuple(positions.shape), form, rng))

    def assign(m, make):
        base = make(data.copy(), requires_grad=in_graph)
        v = value if form == "number" else make(value.copy(), requires_grad=in_graph)
        t = base * 1.0 if in_graph else base
        t[build_index(recipe, bare, None if m is Tensor else m)] = v
        if in_graph:
            (t * make(weights)).sum().backward()
        return t, base, v

    t, base, v = assign(Tensor, Tensor)
    t_ref, base_ref, v_ref = assign(torch, torch.tensor)
    np.testing.assert_array_equal(t.detach().numpy(), t_ref.detach().numpy())
    if not in_graph:
        assert t is base and t._version == 1
        return
    np.testing.assert_array_equal(base.grad.numpy(), base_ref.grad.numpy())
    if form != "number" and v_ref.grad is None:   # x[False] = v: PyTorch writes nothing and records nothing
        assert v.grad is None or not v.grad.numpy().any()
    elif form != "number":
        np.testing.assert_allclose(v.grad.numpy(), v_ref.grad.numpy(), rtol=1e-12)


def test_the_assignments_course_code_writes(torch):
    """Issue 24's list: t[...] = v, t[mask] = v, t[idx] = v, t[1:3, 0] = tensor (each refused before: "only
    one-element integer tensors can be used as an index")."""
    def program(m):
        t = m.zeros(4, 3, dtype=m.float64)
        t[...] = 1.5
        t[t.sum(1) > 0] = m.tensor([1.0, 2.0, 3.0], dtype=m.float64)
        t[m.tensor([3, 0])] = -1.0
        t[1:3, 0] = m.tensor([7.0, 8.0], dtype=m.float64)
        return t
    np.testing.assert_array_equal(program(__import__("tinygrad_llm")).numpy(), program(torch).numpy())


def test_gradcheck_through_an_assignment():
    """A function that builds t, assigns into it (a slice, an index array, a mask) and returns a loss of t."""
    from tinygrad_llm.engine.gradcheck import gradcheck

    def loss(x, v, w):
        t = x * 2.0
        t[1:3, 0] = v
        t[[0, 3], 2] = w[0]
        t[t > 1.5] = 1.5                 # a number: no gradient reaches the elements it covers
        return (t * t).sum()
    rng = np.random.default_rng(0)
    inputs = [Tensor(rng.standard_normal(shape), requires_grad=True) for shape in ((4, 3), (2,), (2,))]
    assert gradcheck(loss, inputs).passed


def test_a_parameter_is_assigned_into_only_under_no_grad(torch):
    import tinygrad_llm as tl
    w = tl.zeros(3, requires_grad=True)
    w_torch = torch.zeros(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
        w_torch[0] = 1.0
    assert_raises_naming(lambda: w.__setitem__(0, 1.0), RuntimeError, ["setitem", "(3,)", "leaf tensor"])
    with tl.no_grad():
        w[0] = 1.0
    assert w.is_leaf and w.requires_grad and w.tolist() == [1.0, 0.0, 0.0]


def test_an_assignment_after_an_op_saved_the_tensor_stops_its_backward():
    """PyTorch's version check: mul saved mask; writing into mask changes the gradient mul would give w."""
    import tinygrad_llm as tl
    w = tl.tensor([1.0, 2.0, 3.0], requires_grad=True)
    mask = tl.ones(3)
    out = (w * mask).sum()
    mask[0] = 0.0
    assert mask._version == 1
    with pytest.raises(RuntimeError, match=r"mul\.backward: an array this op saved .*version 0 is now 1"):
        out.backward()


def test_assigning_into_a_buffer_puts_it_in_the_graph(torch):
    """A tensor that does not require grad, given a value that does, joins the graph, as in PyTorch (CopySlices)."""
    import tinygrad_llm as tl
    for m in (tl, torch):
        v = m.tensor([1.0, 2.0], requires_grad=True)
        buffer = m.zeros(2, 2)
        buffer[1] = v * 3
        assert buffer.requires_grad and not buffer.is_leaf
        (buffer * m.tensor([[1.0, 1.0], [10.0, 100.0]])).sum().backward()
        assert v.grad.tolist() == [30.0, 300.0]


@pytest.mark.parametrize("dtype, value, expected", [
    ("int64", 2.7, 2), ("int64", -2.7, -2), ("int32", 2 ** 31 - 1, 2 ** 31 - 1), ("bool", 2.5, True),
    ("float32", True, 1.0), ("int64", "tensor 3.9", 3), ("float32", "tensor float64 0.1", np.float32(0.1)),
])
def test_a_value_takes_the_tensors_dtype_as_in_pytorch(dtype, value, expected, torch):
    import tinygrad_llm as tl

    def assign(m):
        t = m.zeros(2, dtype=getattr(m, dtype))
        if isinstance(value, str):
            number = float(value.split()[-1])
            v = m.tensor(number, dtype=m.float64) if "float64" in value else m.tensor(number)
        else:
            v = value
        t[0] = v
        return t
    ours, theirs = assign(tl), assign(torch)
    assert ours.dtype == np.dtype(dtype) and ours.tolist() == theirs.tolist() and ours.tolist()[0] == expected


def test_a_float64_value_in_a_float32_slice_keeps_its_gradient_in_float64():
    import tinygrad_llm as tl
    v = tl.tensor(np.array([1.0, 2.0]), requires_grad=True)
    t = tl.zeros(3, 2)
    t[1] = v
    t.sum().backward()
    assert t.dtype == np.float32 and v.grad.dtype == np.float64 and v.grad.tolist() == [1.0, 1.0]


@pytest.mark.parametrize("assign, error, words", [
    (lambda t: t.__setitem__(0, 300), OverflowError, ["setitem", "300", "uint8"]),
    (lambda t: t.__setitem__(0, float("nan")), OverflowError, ["setitem", "nan", "uint8"]),
    (lambda t: t.__setitem__([0, 1], Tensor(np.array([1, 2]))), TypeError, ["setitem", "int64", "uint8"]),
    (lambda t: t.__setitem__(slice(None), [1, 2]), TypeError, ["setitem", "list"]),
    (lambda t: t.__setitem__(slice(None), Tensor(np.ones(3, np.uint8))), ValueError, ["setitem", "(3,)", "(2,)"]),
    (lambda t: t.__setitem__(5, 1), IndexError, ["setitem", "(2,)"]),
])
def test_bad_assignments_are_refused_as_pytorch_refuses_them(assign, error, words, torch):
    with pytest.raises((RuntimeError, TypeError, ValueError, IndexError)):
        torch_t = torch.zeros(2, dtype=torch.uint8)
        assign(_TorchAssign(torch_t, torch))
    assert_raises_naming(lambda: assign(Tensor(np.zeros(2, np.uint8))), error, words)


class _TorchAssign:
    """Stands for a torch tensor in the calls above: our Tensors in them become torch's."""

    def __init__(self, tensor, torch):
        self.tensor, self.torch = tensor, torch

    def __setitem__(self, index, value):
        self.tensor[index] = self.torch.from_numpy(value.numpy()) if isinstance(value, Tensor) else value


def test_scatter_reads_only_the_part_of_src_its_index_covers():
    """src larger than index: only src[:2, :1] is read, so only it receives a gradient (PyTorch's own backward
    fails here with a shape error, so the rule is checked by hand)."""
    import tinygrad_llm as tl
    src = tl.tensor(np.arange(9.0).reshape(3, 3), requires_grad=True)
    out = tl.zeros(2, 4, dtype=tl.float64).scatter(1, tl.tensor([[3], [0]]), src)
    np.testing.assert_array_equal(out.detach().numpy(), [[0, 0, 0, 0.0], [3, 0, 0, 0]])
    (out * tl.tensor(np.arange(8.0).reshape(2, 4))).sum().backward()
    np.testing.assert_array_equal(src.grad.numpy(), [[3, 0, 0], [4, 0, 0], [0, 0, 0.0]])


def test_assigning_through_a_view_inside_the_graph_is_refused(torch):
    """buf[0][1] = v assigns into the view buf[0]: PyTorch rewrites buf's graph so that v gets its gradient; here buf
    would change without its graph knowing (v's gradient silently lost), so it is refused, naming the fix. Outside
    the graph the numbers are written through the view, as in PyTorch."""
    import tinygrad_llm as tl
    v = tl.tensor(2.0, requires_grad=True)
    for make in (lambda: tl.zeros(2, 3), lambda: tl.zeros(2, 3, requires_grad=True) * 1.0):
        buf = make()
        with pytest.raises(RuntimeError, match=r"setitem: .* is a view .*x\[0, 1\] = v, not x\[0\]\[1\] = v"):
            buf[0][1] = v
    buf, buf_torch = tl.zeros(2, 3), torch.zeros(2, 3)
    buf[0][1] = 5.0
    buf_torch[0][1] = 5.0
    assert buf.tolist() == buf_torch.tolist() and buf._version == 1
