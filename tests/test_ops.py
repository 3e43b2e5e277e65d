"""Tests for tinygrad_llm.engine.ops: every primitive op, table-driven.

One table (CASES) drives four checks per op: gradcheck in float64, value and gradient against PyTorch in float64
and float32, and float32 staying float32. Hypothesis then varies shapes and axes for the broadcasting binary ops
and the reductions, and a last table checks that mistakes raise errors naming the op and the shapes.
"""
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, mutually_broadcastable_shapes

import tinygrad_llm.engine.movement as movement
import tinygrad_llm.engine.ops as ops
from tinygrad_llm import Tensor
from tinygrad_llm.engine.gradcheck import gradcheck

from conftest import tensor, tolerances, torch_tensor

# ---------------------------------------------------------------- the table of cases


@dataclass
class Case:
    """fn(*tensors) -> Tensor is ours; ref(torch, *tensors) is torch's (None: fn works on torch tensors too).
    domain says how to draw each input: normal, positive (0.5..2), nonzero (|x| in 0.5..2) or distinct (no two
    elements within 0.25 of each other or of zero: no ties for max, no kink for relu)."""
    name: str
    fn: Callable
    shapes: tuple
    ref: Optional[Callable] = None
    domain: object = "normal"

    def __str__(self):
        return self.name

    def inputs(self, rng, dtype):
        domains = self.domain if isinstance(self.domain, tuple) else (self.domain,) * len(self.shapes)
        return [draw(rng, shape, d).astype(dtype) for shape, d in zip(self.shapes, domains)]

    def reference(self, torch, *xs):
        return self.fn(*xs) if self.ref is None else self.ref(torch, *xs)


def draw(rng, shape, domain):
    n = int(np.prod(shape))
    if domain == "normal":
        return rng.standard_normal(shape)
    if domain == "positive":
        return rng.uniform(0.5, 2.0, shape)
    if domain == "nonzero":
        return rng.uniform(0.5, 2.0, shape) * rng.choice([-1.0, 1.0], shape)
    if domain == "distinct":  # k + u, u in (0.25, 0.75): consecutive values >= 0.5 apart, none near an integer
        return ((rng.permutation(n) - n // 2 + rng.uniform(0.25, 0.75, n)) / 2).reshape(shape)
    raise ValueError(domain)


COND = np.array([[True], [False], [True]])              # broadcasts against (3, 4)
COND_WIDE = np.array([[[True, False, True, True]], [[False, False, True, False]]])  # (2, 1, 4): widens the output
MASK = np.array([[True, False, False, True]])           # broadcasts against (3, 4)
IDX = np.array([[1, 3, 1], [0, 4, 4]])                  # repeated rows: the gradient must add up


def _t(torch, array):
    return torch.from_numpy(array)


def reduction(name, axis, keepdims, shape=(2, 3, 4), **kw):
    """A sum/mean/max/var case; torch spells axis `dim`, keepdims `keepdim`, and max as amax."""
    def ref(torch, x):
        dim = tuple(range(x.ndim)) if axis is None else axis
        if name == "max":
            return torch.amax(x, dim=dim, keepdim=keepdims)
        return getattr(x, name)(dim=dim, keepdim=keepdims, **kw)
    return Case(f"{name}-axis{axis}-keep{keepdims}" + "".join(f"-{k}{v}" for k, v in kw.items()),
                lambda x: getattr(x, name)(axis=axis, keepdims=keepdims, **kw), (shape,), ref,
                "distinct" if name == "max" else "normal")


CASES = [
    # binary elementwise, with broadcasting and Python numbers
    Case("add", lambda a, b: a + b, ((2, 3), (2, 3))),
    Case("add-broadcast", lambda a, b: a + b, ((3, 1, 4), (5, 4))),
    Case("add-scalar", lambda a: 1.5 + a, ((2, 3),)),
    Case("sub-broadcast", lambda a, b: a - b, ((2, 1), (1, 3))),
    Case("rsub-scalar", lambda a: 2.0 - a, ((3,),)),
    Case("mul-broadcast", lambda a, b: a * b, ((2, 3), (3,))),
    Case("mul-0d", lambda a, b: a * b, ((), (2, 2))),
    Case("div-broadcast", lambda a, b: a / b, ((2, 3), (2, 1)), domain=("normal", "nonzero")),
    Case("rdiv-scalar", lambda a: 3.0 / a, ((2, 3),), domain="nonzero"),
    Case("pow", lambda a, b: a ** b, ((2, 3), (2, 3)), domain=("positive", "normal")),
    Case("pow-broadcast", lambda a, b: a ** b, ((3, 1), (4,)), domain=("positive", "normal")),
    Case("pow-int-exponent", lambda a: a ** 3, ((2, 3),)),
    Case("rpow-scalar", lambda a: 2.0 ** a, ((2, 3),)),
    Case("numpy-scalar-left", lambda a: np.float64(2.0) * a - np.float32(1.0), ((2, 3),)),  # not an object array
    Case("input-used-twice", lambda a: a * a + a, ((2, 3),)),  # gradients from both uses add up
    Case("maximum", lambda a, b: ops.maximum(a, b), ((3, 4), (4,)), lambda t, a, b: t.maximum(a, b), "distinct"),
    # unary elementwise
    Case("neg", lambda x: -x, ((2, 3),)),
    Case("neg-fn", lambda x: ops.neg(x), ((3,),), lambda t, x: t.neg(x)),
    Case("exp", lambda x: x.exp(), ((2, 3),)),
    Case("log", lambda x: x.log(), ((2, 3),), domain="positive"),
    Case("sqrt", lambda x: x.sqrt(), ((2, 3),), domain="positive"),
    Case("tanh", lambda x: x.tanh(), ((2, 3),)),
    Case("sigmoid", lambda x: x.sigmoid(), ((2, 3),)),
    Case("sigmoid-large", lambda x: (x * 30.0).sigmoid(), ((2, 3),)),   # both branches of the stable form
    Case("relu", lambda x: x.relu(), ((3, 4),), domain="distinct"),
    Case("erf", lambda x: x.erf(), ((2, 3),)),
    # matmul: plain, batched with broadcasting, 1-d operands
    Case("matmul", lambda a, b: a @ b, ((3, 4), (4, 2))),
    Case("matmul-batched-broadcast", lambda a, b: a @ b, ((2, 1, 3, 4), (5, 4, 2))),
    Case("matmul-vector-matrix", lambda a, b: a @ b, ((4,), (4, 3))),
    Case("matmul-matrix-vector", lambda a, b: a @ b, ((3, 4), (4,))),
    Case("matmul-vector-vector", lambda a, b: a @ b, ((4,), (4,))),
    Case("matmul-vector-batched", lambda a, b: a @ b, ((4,), (2, 4, 3))),
    Case("matmul-batched-vector", lambda a, b: a @ b, ((2, 3, 4), (4,))),
    Case("matmul-fn", lambda a, b: ops.matmul(a, b), ((2, 3), (3, 2)), lambda t, a, b: t.matmul(a, b)),
    # reductions
    *[reduction(name, axis, keepdims)
      for name in ("sum", "mean", "max", "var")
      for axis, keepdims in ((None, False), (1, True), ((0, 2), False), (-1, False))],
    reduction("var", 1, False, correction=0),
    reduction("max", None, True),
    # movement
    Case("reshape", lambda x: x.reshape(4, -1), ((2, 3, 2),)),
    Case("reshape-tuple", lambda x: x.reshape((3, 2, 2)), ((2, 6),)),
    Case("permute", lambda x: x.permute(2, 0, 1), ((2, 3, 4),)),
    Case("permute-negative", lambda x: x.permute(-1, 0, 1), ((2, 3, 4),)),
    Case("transpose", lambda x: x.transpose(0, 2), ((2, 3, 4),)),
    Case("transpose-last-two", lambda x: x.transpose(-2, -1), ((2, 3, 4),)),
    Case("T", lambda x: x.T, ((3, 4),)),
    # getitem
    Case("getitem-slice-int", lambda x: x[1:, 0, ::2], ((3, 2, 4),)),
    Case("getitem-negative-step", lambda x: x[::-1, -1], ((3, 4),), lambda t, x: x.flip(0)[:, -1]),
    Case("getitem-none-ellipsis", lambda x: x[None, ..., 1], ((2, 3, 4),)),
    Case("getitem-ints", lambda x: x[1, -1], ((3, 4),)),
    Case("getitem-repeated-int-array", lambda x: x[[0, 2, 0]], ((3, 4),)),
    Case("getitem-repeated-pairs", lambda x: x[[0, 2, 0], [1, 3, 1]], ((3, 4),)),
    Case("getitem-tensor-index", lambda x: x[Tensor(np.array([2, 2]))], ((3, 2),), lambda t, x: x[t.tensor([2, 2])]),
    Case("getitem-array-and-slice", lambda x: x[1:, [3, 0, 3, 3]], ((3, 4),)),
    Case("getitem-ndarray", lambda x: x[np.array([[1, 1], [0, 2]])], ((3, 2),),
         lambda t, x: x[t.tensor([[1, 1], [0, 2]])]),
    # joining and splitting, along a middle axis
    Case("concat", lambda a, b, c: movement.concat([a, b, c], axis=1), ((2, 1, 3), (2, 4, 3), (2, 2, 3)),
         lambda t, a, b, c: t.cat([a, b, c], dim=1)),
    Case("concat-negative-axis", lambda a, b: movement.concat([a, b], axis=-1), ((2, 3), (2, 1)),
         lambda t, a, b: t.cat([a, b], dim=-1)),
    Case("stack", lambda a, b, c: movement.stack([a, b, c], axis=1), ((2, 3),) * 3,
         lambda t, a, b, c: t.stack([a, b, c], dim=1)),
    Case("stack-last", lambda a, b: movement.stack([a, b], axis=-1), ((2, 3),) * 2,
         lambda t, a, b: t.stack([a, b], dim=-1)),
    # split: reassemble the pieces in reverse, so each piece's gradient must land in its own place
    Case("split-size", lambda x: movement.concat(x.split(2, axis=1)[::-1], axis=1), ((2, 5, 3),),
         lambda t, x: t.cat(x.split(2, dim=1)[::-1], dim=1)),
    Case("split-sizes", lambda x: movement.split(x, [1, 3], axis=1)[1] * 2.0, ((2, 4, 3),),
         lambda t, x: t.split(x, [1, 3], dim=1)[1] * 2.0),
    # where / masked_fill with a broadcasting condition
    Case("where", lambda a, b: movement.where(COND, a, b), ((3, 4), (4,)),
         lambda t, a, b: t.where(_t(t, COND), a, b)),
    Case("where-cond-widens", lambda a, b: movement.where(COND_WIDE, a, b), ((3, 1), ()),
         lambda t, a, b: t.where(_t(t, COND_WIDE), a, b)),
    Case("where-tensor-cond-scalar", lambda a: movement.where(Tensor(COND), a, -2.0), ((3, 4),),
         lambda t, a: t.where(_t(t, COND), a, -2.0)),
    Case("masked_fill", lambda x: x.masked_fill(MASK, -1.5), ((3, 4),),
         lambda t, x: x.masked_fill(_t(t, MASK), -1.5)),
    # embedding with repeated indices
    Case("embedding", lambda w: movement.embedding(IDX, w), ((5, 3),),
         lambda t, w: t.nn.functional.embedding(_t(t, IDX), w)),
    Case("embedding-tensor-idx", lambda w: movement.embedding(Tensor(IDX[0]), w), ((5, 2),),
         lambda t, w: t.nn.functional.embedding(_t(t, IDX[0]), w)),
]


# ---------------------------------------------------------------- 1. gradcheck, 2. torch, 3. float32


@pytest.mark.parametrize("case", CASES, ids=str)
def test_gradcheck(case, rng):
    inputs = [Tensor(x, requires_grad=True) for x in case.inputs(rng, np.float64)]
    report = gradcheck(case.fn, inputs)
    assert report.mode == "jacobian" and report.passed


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("case", CASES, ids=str)
def test_matches_torch(case, dtype, rng, torch):
    arrays = case.inputs(rng, dtype)
    ours = [tensor(a) for a in arrays]
    theirs = [torch_tensor(torch, a) for a in arrays]
    out, ref = case.fn(*ours), case.reference(torch, *theirs)
    assert out.shape == tuple(ref.shape)
    np.testing.assert_allclose(out.detach().numpy(), ref.detach().numpy(), **tolerances(dtype))

    g = rng.standard_normal(out.shape).astype(dtype)  # a random upstream gradient, not just ones
    out.backward(g)
    ref.backward(torch.from_numpy(g))
    for i, (x, tx) in enumerate(zip(ours, theirs)):
        expected = np.zeros(x.shape, dtype) if tx.grad is None else tx.grad.numpy()
        assert x.grad is not None, f"input {i} got no gradient"
        np.testing.assert_allclose(x.grad.numpy(), expected, **tolerances(dtype), err_msg=f"input {i}")


@pytest.mark.parametrize("case", CASES, ids=str)
def test_float32_stays_float32(case, rng):
    inputs = [tensor(a) for a in case.inputs(rng, np.float32)]
    out = case.fn(*inputs)
    assert out.dtype == np.float32
    out.backward(np.ones(out.shape, np.float32))
    assert [x.grad.dtype for x in inputs] == [np.float32] * len(inputs)


@pytest.mark.parametrize("wrap", [np.asarray, Tensor], ids=["array", "Tensor"])
def test_backward_grad_takes_the_output_dtype(wrap):
    x = tensor(np.ones(3, np.float32))
    (x * 2.0).backward(wrap(np.ones(3)))  # a float64 upstream gradient must not upcast float32 gradients
    assert x.grad.dtype == np.float32


# ---------------------------------------------------------------- 4. properties over random shapes and axes


def sum_to_shape(grad, shape):
    """The adjoint of broadcasting `shape` up to grad.shape, computed independently of ops.unbroadcast: every
    output position adds its gradient into the input element it was broadcast from."""
    source = np.broadcast_to(np.arange(int(np.prod(shape))).reshape(shape), grad.shape)
    return np.bincount(source.ravel(), weights=grad.ravel(), minlength=int(np.prod(shape))).reshape(shape)


BINARY = {  # name: (our op, NumPy forward, (da, db) as functions of a, b, g)
    "add": (ops.add, np.add, lambda a, b, g: (g, g)),
    "sub": (ops.sub, np.subtract, lambda a, b, g: (g, -g)),
    "mul": (ops.mul, np.multiply, lambda a, b, g: (g * b, g * a)),
    "div": (ops.div, np.divide, lambda a, b, g: (g / b, -g * a / b ** 2)),
    "maximum": (ops.maximum, np.maximum,  # ties split the gradient in half
                lambda a, b, g: (g * np.where(a == b, 0.5, a > b), g * np.where(a == b, 0.5, a < b))),
}


@pytest.mark.parametrize("name", sorted(BINARY))
@settings(max_examples=30, deadline=None)
@given(shapes=mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=4, max_side=3),
       seed=st.integers(0, 2 ** 32 - 1))
def test_binary_ops_broadcast_like_numpy(name, shapes, seed):
    op, forward, grads = BINARY[name]
    rng = np.random.default_rng(seed)
    a_shape, b_shape = shapes.input_shapes
    a = rng.integers(-1, 2, a_shape).astype(np.float64)  # small integers: maximum meets ties
    b = draw(rng, b_shape, "nonzero") if name == "div" else rng.integers(-1, 2, b_shape).astype(np.float64)
    ta, tb = tensor(a), tensor(b)
    out = op(ta, tb)
    assert out.shape == shapes.result_shape
    np.testing.assert_allclose(out.detach().numpy(), forward(a, b), rtol=1e-12)

    g = rng.standard_normal(out.shape)
    out.backward(g)
    da, db = grads(np.broadcast_to(a, out.shape), np.broadcast_to(b, out.shape), g)
    np.testing.assert_allclose(ta.grad.numpy(), sum_to_shape(da, a_shape), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(tb.grad.numpy(), sum_to_shape(db, b_shape), rtol=1e-12, atol=1e-12)


@st.composite
def shape_and_axis(draw_, max_dims=4, max_side=4):
    """A shape and an axis for it: None, an int (maybe negative) or a tuple of distinct axes (maybe empty)."""
    shape = draw_(array_shapes(min_dims=1, max_dims=max_dims, max_side=max_side))
    ndim = len(shape)
    some_axis = st.integers(-ndim, ndim - 1)
    axis = draw_(st.none() | some_axis
                 | st.lists(some_axis, max_size=ndim, unique_by=lambda a: a % ndim).map(tuple))
    return shape, axis


def _axes(axis, ndim):
    return tuple(range(ndim)) if axis is None else tuple(a % ndim for a in np.atleast_1d(axis).tolist())


def expected_reduction(name, x, axis, keepdims, g):
    """NumPy's forward and the gradient worked out by hand (g is the upstream gradient, keepdims-shaped)."""
    axes = _axes(axis, x.ndim)
    n = int(np.prod([x.shape[a] for a in axes]))
    if name == "sum":
        return x.sum(axis=axes, keepdims=keepdims), np.broadcast_to(g, x.shape)
    if name == "mean":
        return x.mean(axis=axes, keepdims=keepdims), np.broadcast_to(g / n, x.shape)
    if name == "var":
        centered = x - x.mean(axis=axes, keepdims=True)
        return x.var(axis=axes, ddof=1, keepdims=keepdims), g * 2 * centered / (n - 1)
    is_max = x == x.max(axis=axes, keepdims=True)  # max: tied positions share the gradient equally
    return x.max(axis=axes, keepdims=keepdims), g * is_max / is_max.sum(axis=axes, keepdims=True)


@pytest.mark.parametrize("name", ["sum", "mean", "max", "var"])
@settings(max_examples=40, deadline=None)
@given(shape_axis=shape_and_axis(), keepdims=st.booleans(), seed=st.integers(0, 2 ** 32 - 1))
def test_reductions_match_numpy(name, shape_axis, keepdims, seed):
    shape, axis = shape_axis
    rng = np.random.default_rng(seed)
    # max gets small integers (ties); the others real numbers
    x = rng.integers(-1, 2, shape).astype(np.float64) if name == "max" else rng.standard_normal(shape)
    t = tensor(x)
    n = int(np.prod([shape[a] for a in _axes(axis, len(shape))]))
    if name == "var" and n <= 1:
        with pytest.raises(ValueError, match="var.*degrees of freedom"):
            t.var(axis=axis, keepdims=keepdims)
        return
    out = getattr(t, name)(axis=axis, keepdims=keepdims)
    g_kept = rng.standard_normal([1 if i in _axes(axis, len(shape)) else s for i, s in enumerate(shape)])
    value, grad = expected_reduction(name, x, axis, keepdims, g_kept)
    assert out.shape == value.shape
    np.testing.assert_allclose(out.detach().numpy(), value, rtol=1e-12, atol=1e-12)
    out.backward(g_kept.reshape(out.shape))
    np.testing.assert_allclose(t.grad.numpy(), grad, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", ["sum", "mean", "max", "var"])
@settings(max_examples=25, deadline=None)
@given(shape_axis=shape_and_axis(max_dims=3, max_side=3), keepdims=st.booleans(), seed=st.integers(0, 2 ** 32 - 1))
def test_reductions_gradcheck(name, shape_axis, keepdims, seed):
    shape, axis = shape_axis
    if name == "var" and int(np.prod([shape[a] for a in _axes(axis, len(shape))])) <= 1:
        return  # no degrees of freedom: the error is checked above
    x = Tensor(draw(np.random.default_rng(seed), shape, "distinct"), requires_grad=True)
    gradcheck(lambda t: getattr(t, name)(axis=axis, keepdims=keepdims), [x])


def test_ties_share_the_gradient():
    """Ties worked out by hand: maximum splits g in half, max splits it equally among the tied maxima."""
    a, b = tensor([1.0, 2.0, 3.0]), tensor([1.0, 3.0, 3.0])
    ops.maximum(a, b).backward(np.array([2.0, 4.0, 6.0]))
    np.testing.assert_array_equal(a.grad.numpy(), [1.0, 0.0, 3.0])
    np.testing.assert_array_equal(b.grad.numpy(), [1.0, 4.0, 3.0])
    x = tensor([[3.0, 1.0, 3.0, 3.0], [0.0, 2.0, 2.0, 1.0]])
    x.max(axis=1).backward(np.array([6.0, 4.0]))
    np.testing.assert_array_equal(x.grad.numpy(), [[2.0, 0.0, 2.0, 2.0], [0.0, 2.0, 2.0, 0.0]])


# ---------------------------------------------------------------- 5. errors name the op and the shapes


def _x(*shape, dtype=np.float64):
    return Tensor(np.ones(shape, dtype))


ERRORS = [  # (name, call, exception, fragments the message must contain)
    ("matmul-misaligned", lambda: _x(3, 4) @ _x(5, 6), ValueError, ["matmul", "(3, 4)", "(5, 6)"]),
    ("matmul-batch", lambda: _x(2, 3, 4) @ _x(3, 4, 2), ValueError, ["matmul", "(2,)", "(3,)"]),
    ("matmul-0d", lambda: _x() @ _x(3), ValueError, ["matmul", "()", "(3,)"]),
    ("add-broadcast", lambda: _x(2, 3) + _x(4), ValueError, ["add", "(2, 3)", "(4,)"]),
    ("mul-broadcast", lambda: _x(2, 3) * _x(2, 2), ValueError, ["mul", "(2, 3)", "(2, 2)"]),
    ("maximum-broadcast", lambda: ops.maximum(_x(3), _x(2)), ValueError, ["maximum", "(3,)", "(2,)"]),
    ("where-broadcast", lambda: movement.where(np.ones(4, bool), _x(3), _x(3)), ValueError, ["where", "(4,)", "(3,)"]),
    ("add-dtypes", lambda: _x(2) + _x(2, dtype=np.float32), TypeError, ["add", "float64", "float32"]),
    ("matmul-dtypes", lambda: _x(2, 2, dtype=np.float32) @ _x(2, 2), TypeError, ["matmul", "float32", "float64"]),
    ("concat-dtypes", lambda: movement.concat([_x(2), _x(2, dtype=np.float32)]), TypeError, ["concat", "float32"]),
    ("reshape-size", lambda: _x(2, 3).reshape(4, 2), ValueError, ["reshape", "(2, 3)", "(4, 2)"]),
    ("getitem-range", lambda: _x(3, 4)[3], IndexError, ["getitem", "(3, 4)"]),
    ("getitem-array-range", lambda: _x(3, 4)[:, [0, 4]], IndexError, ["getitem", "(3, 4)"]),
    ("embedding-range", lambda: movement.embedding(np.array([1, 10]), _x(10, 4)), IndexError,
     ["embedding", "10", "(10, 4)"]),
    ("embedding-negative", lambda: movement.embedding(np.array([-1]), _x(10, 4)), IndexError, ["embedding", "-1"]),
    ("embedding-float-idx", lambda: movement.embedding(np.array([1.0]), _x(10, 4)), TypeError, ["embedding", "float"]),
    ("var-no-dof", lambda: _x(1, 3).var(axis=0), ValueError, ["var", "degrees of freedom", "(1, 3)"]),
    ("sum-axis-range", lambda: _x(2, 3).sum(axis=2), ValueError, ["sum", "axis 2"]),
    ("concat-shapes", lambda: movement.concat([_x(2, 3), _x(2, 4)], axis=0), ValueError, ["concat", "(2, 3)", "(2, 4)"]),
    ("stack-shapes", lambda: movement.stack([_x(2, 3), _x(3, 2)]), ValueError, ["stack", "(2, 3)", "(3, 2)"]),
    ("split-sizes", lambda: _x(2, 5).split([2, 2], axis=1), ValueError, ["split", "(2, 5)"]),
    ("split-zero", lambda: _x(2, 5).split(0, axis=1), ValueError, ["split", "at least 1", "0"]),
    ("sum-axis-twice", lambda: _x(2, 3, 4).sum(axis=(1, -2)), ValueError, ["sum", "(1, -2)", "twice"]),
    ("max-axis-twice", lambda: _x(2, 3).max(axis=(0, 0)), ValueError, ["max", "(0, 0)", "twice"]),
    ("where-no-tensor", lambda: movement.where(np.ones(3, bool), 1.0, 2.0), TypeError, ["where", "float"]),
    ("permute-axes", lambda: _x(2, 3).permute(0, 0), ValueError, ["permute", "(2, 3)"]),
    ("permute-out-of-range", lambda: _x(2, 3).permute(0, 3), ValueError, ["permute", "(0, 3)", "(2, 3)"]),
    ("transpose-out-of-range", lambda: _x(2, 3).transpose(0, 5), ValueError, ["transpose", "axis 5"]),
    ("T-of-vector", lambda: _x(3).T, ValueError, ["transpose", "1 axes"]),
    ("backward-grad-shape", lambda: (_x(2, 3) * Tensor(np.ones(3), requires_grad=True)).backward(np.ones(3)),
     ValueError, ["backward", "(3,)", "(2, 3)"]),
]


@pytest.mark.parametrize("call, exception, fragments", [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS])
def test_errors_name_op_and_shapes(call, exception, fragments):
    with pytest.raises(exception) as info:
        call()
    for fragment in fragments:
        assert fragment in str(info.value), f"{fragment!r} not in {str(info.value)!r}"


def test_python_numbers_take_the_tensor_dtype():
    for dtype in (np.float32, np.float64):
        x = tensor(np.ones(3, dtype))
        for out in (x + 1, 2 * x, x / 3.0, 1.0 - x, x ** 2, 2.0 ** x, movement.where(MASK[0, :3], x, 0.5)):
            assert out.dtype == dtype


# ---------------------------------------------------------------- 6. unbroadcast


@pytest.mark.parametrize("grad_shape, shape", [
    ((2, 3, 4), (2, 3, 4)),   # nothing to do
    ((2, 3, 4), (3, 1)),      # a leading axis dropped and a kept axis of 1
    ((2, 3, 4), (4,)),
    ((2, 3, 4), (1, 3, 1)),
    ((2, 3, 4), ()),          # a scalar receives everything
    ((5, 1), (1, 1)),         # an axis of 1 on both sides is not summed
])
def test_unbroadcast(grad_shape, shape):
    grad = np.arange(np.prod(grad_shape), dtype=np.float64).reshape(grad_shape)
    out = ops.unbroadcast(grad, shape)
    assert out.shape == shape
    np.testing.assert_array_equal(out, sum_to_shape(grad, shape))
    assert out.sum() == grad.sum()


def test_unbroadcast_by_hand():
    grad = np.ones((2, 3, 4))
    np.testing.assert_array_equal(ops.unbroadcast(grad, (3, 1)), np.full((3, 1), 8.0))
    np.testing.assert_array_equal(ops.unbroadcast(np.arange(6.0).reshape(2, 3), (2, 1)), [[3.0], [12.0]])
