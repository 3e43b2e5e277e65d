"""Indexing as PyTorch does it (engine/movement.py's torch_index): random index expressions, drawn by hypothesis
(integers, slices, None, Ellipsis, integer arrays as lists, arrays or Tensors, bool masks, Python bools), give
torch's shape, values and gradient."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinygrad_llm import Tensor

from conftest import assert_raises_naming


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
