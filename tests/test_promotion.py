"""Type promotion as PyTorch does it (backend.promote; README's table), and the engine's dtype edge cases.

The rule: bool < integer < floating, the highest kind present wins; within a kind the tensors decide (integers
promote, float32 with float64 is refused: our one deliberate difference); a Python number only decides the kind
(an integer tensor times 0.5 is float32, a float32 tensor times 2 stays float32); true division always gives floats.
"""
import operator

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinygrad_llm.engine.functional as F
from tinygrad_llm import Tensor

KINDS = ["bool", "int64", "float32", "float64", "python int", "python float"]
OPS = [operator.add, operator.sub, operator.mul, operator.truediv, operator.pow]


def operand(kind, values, torch=None):
    """One operand of `kind` holding `values` (three numbers), ours or (with torch) PyTorch's."""
    if kind == "python int":
        return int(values[0])
    if kind == "python float":
        return float(values[0]) + 0.5
    array = np.array(values, dtype={"bool": bool, "int64": np.int64}.get(kind, kind))
    if kind == "bool":
        array = np.array(values) > 0
    return Tensor(array) if torch is None else torch.from_numpy(array)


@pytest.mark.parametrize("op", OPS, ids=lambda op: op.__name__)
@pytest.mark.parametrize("a, b", [(a, b) for a in KINDS for b in KINDS if not (a.startswith("python") and
                                                                              b.startswith("python"))])
def test_arithmetic_promotes_as_pytorch(a, b, op):
    """Every pair of kinds and every arithmetic op, on random small numbers: our dtype and values are PyTorch's,
    or both refuse (subtraction with bools, bool ** bool, integers to negative powers), or the pair is
    float32 with float64, which we refuse on purpose."""
    torch = pytest.importorskip("torch")

    @settings(max_examples=15, deadline=None)
    @given(values=st.lists(st.integers(-3, 3), min_size=3, max_size=3))
    def check(values):
        try:
            want = op(operand(a, values, torch), operand(b, values[::-1], torch))
        except RuntimeError:
            with pytest.raises((TypeError, ValueError)):
                op(operand(a, values), operand(b, values[::-1]))
            return
        if {a, b} == {"float32", "float64"}:   # our rule: two float dtypes never meet silently
            with pytest.raises(TypeError, match="mix float dtypes"):
                op(operand(a, values), operand(b, values[::-1]))
            return
        exponent = operand(b, values[::-1])
        exponent = exponent.numpy() if isinstance(exponent, Tensor) else exponent
        if op is operator.pow and not want.is_floating_point() and (np.asarray(exponent) < 0).any():
            with pytest.raises(ValueError, match="pow: integers to negative integer powers"):   # PyTorch: truncated
                op(operand(a, values), operand(b, values[::-1]))
            return
        with np.errstate(all="ignore"):
            got = op(operand(a, values), operand(b, values[::-1]))
        assert str(got.dtype) == str(want.dtype).replace("torch.", "")
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-6, equal_nan=True)

    check()


# ---------------------------------------------------------------- the cases that went wrong, one test each

def test_an_integer_tensor_meeting_a_python_float_becomes_float32():
    """Tensor([4]) * 0.5 was 0 (0.5 took the integer dtype), and Tensor([4]) / 0.5 was inf."""
    for got, want in ((Tensor([4]) * 0.5, 2.0), (Tensor([4]) / 0.5, 8.0), (0.5 * Tensor([4]), 2.0),
                      (Tensor([4]) / 2, 2.0), (Tensor([True, False]) + 0.5, 1.5)):
        assert got.dtype == np.float32 and got.numpy()[0] == want


def test_float_ops_on_integers_compute_in_float32():
    """exp, log, sqrt, tanh, sigmoid, erf of an integer or bool tensor: float32, as PyTorch (NumPy: float64)."""
    x = Tensor(np.array([1, 2, 3]))
    for op in (Tensor.exp, Tensor.log, Tensor.sqrt, Tensor.tanh, Tensor.sigmoid, Tensor.erf):
        assert op(x).dtype == np.float32, op.__name__
    assert Tensor(np.array([True])).exp().dtype == np.float32


def test_an_integer_tensor_does_not_widen_a_float32_gradient():
    """w (float32) * an int64 tensor was float64, and so was w's gradient: against the float rule."""
    w = Tensor(np.ones(3, np.float32), requires_grad=True)
    y = w * Tensor(np.array([1, 2, 3])) + Tensor(np.array([True, False, True]))
    assert y.dtype == np.float32
    (y @ Tensor(np.arange(3))).backward()
    assert w.grad.dtype == np.float32
    np.testing.assert_array_equal(w.grad.numpy(), [0, 2, 6])


def test_a_numpy_array_counts_as_a_tensor_of_its_dtype():
    x = Tensor(np.ones(2, np.float32))
    assert (x * np.array([2, 3])).dtype == np.float32        # integers: converted
    with pytest.raises(TypeError, match="mix float dtypes"):
        x * np.array([2.0, 3.0])                                 # float64: refused, as between tensors


def test_mean_and_var_of_an_integer_tensor_are_refused():
    for op in (Tensor.mean, Tensor.var):
        with pytest.raises(TypeError, match=f"{op.__name__}: needs a floating tensor, got int64"):
            op(Tensor(np.arange(4)))


def test_fused_ops_refuse_integer_inputs():
    x = Tensor(np.arange(6).reshape(2, 3))
    for name, call in [("softmax", lambda: F.softmax(x)), ("log_softmax", lambda: F.log_softmax(x)),
                       ("gelu", lambda: F.gelu(x)), ("layer_norm", lambda: F.layer_norm(x, (3,))),
                       ("linear", lambda: F.linear(x, Tensor(np.ones((2, 3), np.float32)))),
                       ("cross_entropy", lambda: F.cross_entropy(x, np.array([0, 1]))),
                       ("dropout", lambda: F.dropout(x, 0.5))]:
        with pytest.raises(TypeError, match=f"{name}: needs floating inputs, got int64"):
            call()


def test_x_to_the_zero_has_gradient_zero_everywhere():
    """d(x^0)/dx is 0, also at x = 0, where b·x^(b-1) = 0·0^-1 gave NaN; and d(0^b)/db is 0 for b >= 0."""
    x = Tensor(np.array([0.0, 2.0, -1.0]), requires_grad=True)
    (x ** 0).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0, 0, 0])
    b = Tensor(np.array([0.0, 2.0]), requires_grad=True)
    (Tensor(np.array([0.0, 0.0])) ** b).sum().backward()
    np.testing.assert_array_equal(b.grad.numpy(), [0, 0])


def test_x_to_the_zero_matches_pytorch(torch):
    values = np.array([0.0, 2.0, -1.5])
    ours, theirs = Tensor(values, requires_grad=True), torch.tensor(values, requires_grad=True)
    for exponent in (0.0, 1.0, 2.0, 3.0):
        ours.grad, theirs.grad = None, None
        (ours ** exponent).sum().backward()
        (theirs ** exponent).sum().backward()
        np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), rtol=1e-12)


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_of_a_0d_tensor(torch, approximate):
    """A 0-d input made the in-place tanh GELU fail (NumPy turns 0-d products into scalars)."""
    x = Tensor(np.array(0.7), requires_grad=True)
    y = F.gelu(x, approximate=approximate)
    y.backward()
    t = torch.tensor(0.7, dtype=torch.float64, requires_grad=True)
    expected = torch.nn.functional.gelu(t, approximate=approximate)
    expected.backward()
    assert y.shape == () and np.isclose(y.item(), expected.item()) and np.isclose(x.grad.item(), t.grad.item())


def test_reductions_over_zero_size_axes():
    empty = Tensor(np.zeros((0, 3)))
    assert empty.amax(axis=1).shape == (0,) and empty.sum(axis=0).numpy().tolist() == [0, 0, 0]
    assert empty.max(axis=1).values.shape == (0,) and empty.prod(1).numpy().tolist() == []
    assert empty.prod(0).numpy().tolist() == [1, 1, 1] and empty.cumsum(0).shape == (0, 3)
    with pytest.raises(ValueError, match=r"max: cannot reduce axis 0 of shape \(0, 3\): it is empty"):
        empty.amax(axis=0)


@pytest.mark.parametrize("call, message", [
    (lambda x: F.softmax(x, dim=2), "softmax: axis 2 is out of range for a tensor with 2 axes"),
    (lambda x: F.log_softmax(x, dim=-3), "log_softmax: axis -3 is out of range"),
    (lambda x: x.split(1, axis=4), "split: axis 4 is out of range"),
    (lambda x: x.sum(axis=(0, 0)), "sum: axis .* names the same axis twice"),
    (lambda x: x.transpose(0, 5), "transpose: axis 5 is out of range"),
    (lambda x: x.max(axis=2), "max: axis 2 is out of range"),
])
def test_bad_axes_are_errors_naming_the_op(call, message):
    with pytest.raises(ValueError, match=message):
        call(Tensor(np.ones((2, 3))))


def test_masked_fill_keeps_the_tensors_dtype():
    x = Tensor(np.arange(3))
    filled = x.masked_fill(np.array([True, False, False]), 0.5)
    assert filled.dtype == np.int64 and filled.numpy().tolist() == [0, 1, 2]


def test_a_python_list_with_a_dtype_stays_on_the_cpu():
    """Tensor(list, dtype=np.float64) asked CuPy for the list's array module ("device 'cuda' needs CuPy")."""
    for data, dtype in (([1, 2], np.float64), ([[1.5]], np.float32), (3, np.int32), (True, bool), ((1, 2), np.int8)):
        t = Tensor(data, dtype=dtype)
        assert t.is_cpu and t.dtype == dtype and t.tolist() == np.asarray(data, dtype).tolist()
    assert Tensor([1.0, 2.0]).dtype == np.float32 and Tensor([1, 2], device="cpu").dtype == np.int64


def test_integer_minimum_and_maximum_are_exact_at_the_limits():
    """min was -max(-x): -(-2**31) overflows to -2**31 in int32, so [0, -2**31].min() gave 0; [5, -2**63] gave 5."""
    for dtype in (np.int8, np.int16, np.int32, np.int64, np.uint8):
        limits = np.iinfo(dtype)
        x = Tensor(np.array([1, limits.min, limits.max, 2], dtype))
        assert (x.min().item(), x.amin().item(), x.max().item()) == (limits.min, limits.min, limits.max)
        assert x.min(dim=0).indices.item() == 1 and x.min().dtype == dtype
    flags = Tensor(np.array([[True, False], [True, True]]))
    assert flags.min().tolist() is False and flags.max().tolist() is True and flags.amin(1).tolist() == [False, True]


def test_dtype_names_and_constants_are_pytorchs(torch):
    import tinygrad_llm as tl
    for name in ("float32", "float64", "float", "double", "long", "int", "int64", "int32", "int16", "int8", "uint8",
                 "bool", "short"):
        assert str(np.dtype(getattr(tl, name))) == str(getattr(torch, name)).removeprefix("torch."), name
    assert (tl.inf, tl.pi, tl.e) == (torch.inf, torch.pi, torch.e) and np.isnan(tl.nan)
    x = tl.ones(2)
    for name in ("float16", "half", "bfloat16"):   # never computed in float32 unannounced
        dtype = getattr(tl, name)
        assert x.dtype != dtype
        for use in (lambda: tl.zeros(2, dtype=dtype), lambda: x.to(dtype), lambda: tl.tensor([1.0], dtype=dtype)):
            with pytest.raises(NotImplementedError, match="half precision is not supported"):
                use()
