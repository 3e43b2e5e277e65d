"""The path every op takes (promoted -> Function.apply -> run_forward -> a Tensor; unbroadcast in backward) has
shortcuts for its everyday cases; each gives what the general path gives, and the checks on the way still hold."""
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinygrad_llm import Tensor, no_grad
from tinygrad_llm.engine.arguments import broadcast_shape
from tinygrad_llm.engine.ops import unbroadcast
from tinygrad_llm.engine.tensor import Function

shapes = st.lists(st.integers(1, 3), max_size=3).map(tuple)


@settings(max_examples=200, deadline=None)
@given(a=shapes, b=shapes, same=st.booleans())
def test_broadcast_shape_is_numpys(a, b, same):
    """Two shapes (equal ones, and () with anything, decided without NumPy) broadcast as np.broadcast_shapes says,
    or the error names the op and both shapes."""
    b = a if same else b
    try:
        want = np.broadcast_shapes(a, b)
    except ValueError:
        with pytest.raises(ValueError, match=re.escape(f"mul: shapes {a} and {b} cannot be broadcast together")):
            broadcast_shape("mul", a, b)
        return
    assert broadcast_shape("mul", a, b) == want
    assert broadcast_shape("mul", a, b, ()) == want


@settings(max_examples=100, deadline=None)
@given(shape=shapes, ones=st.lists(st.booleans(), min_size=3, max_size=3), extra=st.integers(0, 2))
def test_unbroadcast_sums_over_what_was_broadcast(shape, ones, extra):
    """The gradient of an input broadcast to `big` is summed back to its shape; an input not broadcast gets the
    gradient unchanged."""
    small = tuple(1 if one else n for n, one in zip(shape, ones))
    big = (2,) * extra + shape
    g = np.random.default_rng(0).standard_normal(big)
    want = g.sum(axis=tuple(range(extra)))
    want = want.sum(axis=tuple(i for i, n in enumerate(small) if n == 1 and shape[i] != 1), keepdims=True)
    np.testing.assert_allclose(unbroadcast(g, small), want.reshape(small), rtol=1e-12)
    np.testing.assert_array_equal(unbroadcast(g, big), g)


class Recorded(Function):
    """out = a + b + c * d (b a NumPy array, d a number): keeps what apply handed it."""

    def forward(ctx, a, b, c, d):
        ctx.arrays = a, b, c, d
        return a + b + c * d

    def backward(ctx, g):
        return g, None, g * ctx.arrays[3], None


def test_a_node_knows_its_inputs():
    """parents holds the Tensors (None for anything else), needs_input_grad says which want a gradient, forward gets
    the arrays in the order given, and only the tensors the recorded op used are marked used."""
    a, c = Tensor(np.ones(2), requires_grad=True), Tensor(np.full(2, 2.0))
    b = np.arange(2.0)
    out = Recorded.apply(a, b, c, 3.0)
    ctx = out.grad_fn
    assert ctx.parents == (a, None, c, None)
    assert ctx.needs_input_grad == (True, False, False, False)
    assert ctx.arrays[0] is a.data and ctx.arrays[1] is b and ctx.arrays[2] is c.data and ctx.arrays[3] == 3.0
    assert out.requires_grad and a._used and c._used
    np.testing.assert_array_equal(out.detach().numpy(), [7.0, 8.0])
    with no_grad():
        plain = Recorded.apply(a, b, c, 3.0)
    assert plain.grad_fn is None and not plain.requires_grad


def test_mixed_float_dtypes_are_refused_past_non_tensor_inputs():
    """The one-float-dtype check looks at every Tensor input, whatever stands between them, and names the op."""
    with pytest.raises(TypeError, match=r"recorded: inputs mix float dtypes \(float64\(2,\), float32\(2,\)\)"):
        Recorded.apply(Tensor(np.ones(2)), np.ones(2), Tensor(np.ones(2, np.float32)), 1.0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_chain_of_scalar_products_is_the_arrays_chain(dtype):
    """y = y * 1.0001 (the number made a 0-d array of y's dtype) gives, value and gradient, the bits NumPy gives."""
    x = Tensor(np.linspace(-1, 1, 4, dtype=dtype).reshape(2, 2), requires_grad=True)
    y, want = x, x.data
    scale = np.asarray(1.0001, dtype=dtype)
    for _ in range(50):
        y, want = y * 1.0001, want * scale
    y.sum().backward()
    assert y.dtype == dtype and x.grad.dtype == dtype
    np.testing.assert_array_equal(y.detach().numpy(), want)
    grad = np.ones((2, 2), dtype)
    for _ in range(50):
        grad = grad * scale
    np.testing.assert_array_equal(x.grad.numpy(), grad)
