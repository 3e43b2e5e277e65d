"""The op test table: every op of the Tensor API, one row each.

A row names the op (as README's Tensor API table does) and gives one call, `fn(m, *xs)`, where `m` is the module:
tinygrad_llm or torch, so a call PyTorch code writes (`m.cat([a, b], dim=1)`, `a.exp()`) is written once and runs
on both; `torch_fn(torch, *xs)` only where PyTorch spells it differently. Every row is checked:
1. value and gradient equal PyTorch's, dtypes included: in float64 (1e-10) and in float32 (1e-5);
2. gradcheck in float64, for every differentiable row;
and for every name, 3. bad input raises an error naming the op, the shapes or the argument (ERRORS), and
4. every name in README's Tensor API table has a row and an error (or needs none).
Then properties over random shapes (broadcasting, reductions, ties) and unbroadcast, against NumPy.

The rows are in sections by kind, each its own list: elementwise, reductions, movement and indexing, creation,
conversion, in place, functional, random. A new op is one row in its section (and one error below).
"""
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, mutually_broadcastable_shapes

import tinygrad_llm as tl
import tinygrad_llm.engine.movement as movement
import tinygrad_llm.engine.ops as ops
from tinygrad_llm import Tensor
from tinygrad_llm.engine.gradcheck import gradcheck

from conftest import tensor, tolerances

README = Path(__file__).resolve().parent.parent / "README.md"

# ---------------------------------------------------------------- the row


@dataclass
class Op:
    """One row. fn(m, *xs) -> a Tensor, a tuple of them, or Python values; torch_fn(torch, *xs) where PyTorch's call
    differs (None: fn serves both). The inputs: one per shape in `shapes`, drawn from `domain` (one for all inputs,
    or a tuple of one per input; see draw) in the dtype under test; or `values`, fixed arrays of their own dtypes
    (checked once, as they are). Floating inputs require grad."""
    name: str                       # the name README's Tensor API table gives it
    fn: Callable
    shapes: tuple = ()
    torch_fn: Optional[Callable] = None
    domain: object = "normal"
    values: Optional[tuple] = None
    differentiable: bool = True
    gradcheck: bool = True          # False where the result leaves float64 (.float()) or the math (.detach())
    note: str = ""                  # what this row adds to the others of its name (shown in the test id)

    def __str__(self):
        return f"{self.name}({self.note})" if self.note else self.name

    def inputs(self, rng, dtype):
        if self.values is not None:
            return [np.array(v) for v in self.values]
        domains = self.domain if isinstance(self.domain, tuple) else (self.domain,) * len(self.shapes)
        return [draw(rng, shape, d).astype(dtype) for shape, d in zip(self.shapes, domains)]

    def run(self, m, arrays):
        """(the input tensors, the result) in module m: tinygrad_llm or torch."""
        xs = [m.tensor(a, requires_grad=a.dtype.kind == "f") for a in arrays]
        call = self.torch_fn if m is not tl and self.torch_fn is not None else self.fn
        return xs, call(m, *xs)


def draw(rng, shape, domain):
    """normal; positive (0.5..2); nonzero (|x| in 0.5..2); distinct (no two elements within 0.25 of each other or
    of zero, none near a multiple of 0.5: no ties for max, no kink for relu, abs or clamp)."""
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
ALONG = np.array([[2, 0], [1, 1]])
PICK = np.array([[0, 3, 3], [1, 1, 0], [2, 0, 1]])      # gather along dim 1 of (3, 4): repeats add up
PUT = np.array([[0, 2], [3, 1], [1, 0]])                # scatter along dim 1 of (3, 4): each row's positions differ
INT32_MIN, INT64_MIN = np.array([0, -2 ** 31], np.int32), np.array([5, -2 ** 63], np.int64)
WHOLE = (np.array([7, -7, 6, -6, 0]), np.array([2, 2, -4, -4, 3]))       # both signs of each, for // and %
TIES = np.array([[3, 1, 3, 2, 1], [0, 0, 5, 0, 5]])                         # sort must keep tied elements in order
TARGETS, TARGETS_3D = np.array([0, 3, -100]), np.array([[0, 3, 1], [1, 2, 2]])   # class indices; one row ignored
WEIGHTS = np.array([0.5, 2.0, 1.0, 0.25])               # broadcasts along the last axis of (3, 4)
ROUNDED = np.array([0.25, 1.25, 2.675, -0.35, 15.0, 25.0, -35.0, 1234.5678])   # halves, and numbers just off them
SPECIAL = np.array([1.0, np.nan, np.inf, -np.inf, -0.0])
TRUTHS = (np.array([[0.0, 1.5, -2.0], [0.0, 0.0, 3.0]]), np.array([2, 0, 5]))   # any dtype: nonzero is true
CUMPROD_ZEROS = np.array([[1.0, 0.0, 2.0, 0.0], [0.0, 3.0, 4.0, 2.0], [2.0, 0.5, 0.0, 0.0], [1.5, -2.0, 3.0, 3.0]])
MEDIAN_NANS = np.array([[2.0, np.nan, 1.0, np.nan], [3.0, 1.0, 2.0, 0.5]])


def F(m):
    """torch.nn.functional, ours or torch's."""
    return m.nn.functional


def reduction(name, axis, keepdims, shape=(2, 3, 4), **kw):
    """A sum/mean/amax/var row in NumPy's spelling (axis=, keepdims=); torch's is dim=, keepdim=."""
    def torch_fn(torch, x):
        dim = tuple(range(x.ndim)) if axis is None else axis
        return getattr(x, name)(dim=dim, keepdim=keepdims, **kw)
    return Op(name, lambda m, x: getattr(x, name)(axis=axis, keepdims=keepdims, **kw), (shape,), torch_fn,
              "distinct" if name == "amax" else "normal",
              note=f"axis={axis},keepdims={keepdims}" + "".join(f",{k}={v}" for k, v in kw.items()))


def assigned(x, index, value):
    """x[index] = value on a copy of x, inside the graph: the gradient reaches x's other elements and value."""
    y = x.clone()
    y[index] = value
    return y


def meshgrid_mixed(m, a, b, indexing):
    """Both of meshgrid's outputs in one result, so each carries a gradient back."""
    rows, columns = m.meshgrid(a, b, indexing=indexing)
    return rows * 2.0 + columns * rows


# ---------------------------------------------------------------- the table, by kind

ELEMENTWISE = [
    # arithmetic, with broadcasting and Python numbers
    Op("+", lambda m, a, b: a + b, ((2, 3), (2, 3))),
    Op("+", lambda m, a, b: a + b, ((3, 1, 4), (5, 4)), note="broadcast"),
    Op("+", lambda m, a, b: a + b, ((2, 3), (3,)), note="broadcast-row"),
    Op("+", lambda m, a: 1.5 + a, ((2, 3),), note="number-left"),
    Op("-", lambda m, a, b: a - b, ((2, 1), (1, 3)), note="broadcast"),
    Op("-", lambda m, a: 2.0 - a, ((3,),), note="number-left"),
    Op("-", lambda m, a, b: 2.5 - a - b, ((2, 3), (2, 1)), note="chain"),
    Op("*", lambda m, a, b: a * b, ((2, 3), (3,)), note="broadcast"),
    Op("*", lambda m, a, b: a * b, ((), (2, 2)), note="0-d"),
    Op("*", lambda m, a, b: a * b * 3, ((2, 3), (3,)), note="number-right"),
    Op("*", lambda m, a: np.float64(2.0) * a - np.float32(1.0), ((2, 3),), note="numpy-number-left"),  # no object array
    Op("*", lambda m, a: a * a + a, ((2, 3),), note="input-used-twice"),   # gradients from both uses add up
    Op("/", lambda m, a, b: a / b, ((2, 3), (2, 1)), domain=("normal", "nonzero"), note="broadcast"),
    Op("/", lambda m, a: 3.0 / a, ((2, 3),), domain="nonzero", note="number-left"),
    Op("/", lambda m, a, b: a / b / 2, ((2, 3), (3,)), domain="positive", note="chain"),
    Op("**", lambda m, a, b: a ** b, ((2, 3), (2, 3)), domain=("positive", "normal")),
    Op("**", lambda m, a, b: a ** b, ((3, 1), (4,)), domain=("positive", "normal"), note="broadcast"),
    Op("**", lambda m, a: a ** 3, ((2, 3),), note="int-exponent"),
    Op("**", lambda m, a: 2.0 ** a, ((2, 3),), note="number-base"),
    Op("**", lambda m, a, b: a ** b + 2 ** a, ((2, 3), (3,)), domain="positive", note="chain"),
    Op("@", lambda m, a, b: a @ b, ((3, 4), (4, 2))),
    Op("@", lambda m, a, b: a @ b, ((2, 1, 3, 4), (5, 4, 2)), note="batched-broadcast"),
    Op("@", lambda m, a, b: a @ b, ((4,), (4, 3)), note="vector-matrix"),
    Op("@", lambda m, a, b: a @ b, ((3, 4), (4,)), note="matrix-vector"),
    Op("@", lambda m, a, b: a @ b, ((4,), (4,)), note="vector-vector"),
    Op("@", lambda m, a, b: a @ b, ((4,), (2, 4, 3)), note="vector-batched"),
    Op("@", lambda m, a, b: a @ b, ((2, 3, 4), (4,)), note="batched-vector"),
    Op("matmul", lambda m, a, b: m.matmul(a, b), ((2, 3), (3, 2))),
    Op("matmul", lambda m, a, b: m.matmul(a, b), ((2, 2, 3), (3,)), note="batched-vector"),
    Op("neg", lambda m, x: -x, ((2, 3),)),
    Op("neg", lambda m, x: ops.neg(x), ((3,),), lambda t, x: t.neg(x), note="function"),
    Op("maximum", lambda m, a, b: m.maximum(a, b), ((3, 4), (4,)), domain="distinct"),
    Op("minimum", lambda m, a, b: a.minimum(b), ((2, 3), (3,)), domain="distinct"),
    # math, one input
    Op("exp", lambda m, x: x.exp(), ((2, 3),)),
    Op("log", lambda m, x: x.log(), ((2, 3),), domain="positive"),
    Op("sqrt", lambda m, x: x.sqrt(), ((2, 3),), domain="positive"),
    Op("tanh", lambda m, x: x.tanh(), ((2, 3),)),
    Op("sigmoid", lambda m, x: x.sigmoid(), ((2, 3),)),
    Op("sigmoid", lambda m, x: (x * 30.0).sigmoid(), ((2, 3),), note="large"),   # both branches of the stable form
    Op("relu", lambda m, x: x.relu(), ((3, 4),), domain="distinct"),
    Op("erf", lambda m, x: x.erf(), ((2, 3),)),
    Op("abs", lambda m, x: x.abs(), ((3, 2),), domain="distinct"),
    Op("clamp", lambda m, x: x.clamp(-0.5, 0.9), ((3, 4),), domain="distinct"),
    Op("clamp", lambda m, x: x.clamp(min=0.1), ((3, 4),), domain="distinct", note="min-only"),
    # comparison and logic: bool tensors, outside the graph
    Op("eq", lambda m, a, b: (a == b) | (a == a[0, 0]), ((2, 3), (3,)), differentiable=False),
    Op("ne", lambda m, a, b: a != b, ((2, 3), (3,)), differentiable=False),
    Op("lt", lambda m, a, b: a < b, ((2, 3), (3,)), differentiable=False),
    Op("le", lambda m, a: a <= 0.25, ((2, 3),), differentiable=False),
    Op("gt", lambda m, a: a > 0, ((2, 3),), differentiable=False),
    Op("ge", lambda m, a, b: a.ge(b), ((2, 3), (3,)), differentiable=False),
    Op("and", lambda m, a: (a > 0) & (a < 1), ((2, 3),), differentiable=False),
    Op("or", lambda m, a: (a > 1) | (a < 0), ((2, 3),), differentiable=False),
    Op("xor", lambda m, a: (a > 0) ^ (a > 1), ((2, 3),), differentiable=False),
    Op("logical_not", lambda m, a: m.logical_not(a > 0), ((2, 3),), differentiable=False),
    Op("logical_not", lambda m, a: a.logical_not(), ((2, 3),), domain="distinct", differentiable=False,
       note="float"),
    Op("logical_not", lambda m, a: m.logical_not(a), values=(WHOLE[0],), differentiable=False, note="int"),
    Op("bitwise_not", lambda m, a: ~(a > 0), ((2, 3),), differentiable=False, note="bool"),
    Op("bitwise_not", lambda m, a: ~a, values=(WHOLE[0],), differentiable=False, note="int"),
    Op("eq", lambda m, a: (a == None, a != None), ((2,),), differentiable=False, note="None"),   # noqa: E711
    Op("allclose", lambda m, a, b: (m.allclose(a, a + 1e-9), a.allclose(b), m.allclose(a, a + 1e-3, atol=1e-2)),
       ((2, 3), (3,)), differentiable=False),
    # PyTorch's methods and functions for the operators, with its extra arguments
    Op("add", lambda m, a, b: a.add(b, alpha=2), ((2, 3), (3,))),
    Op("add", lambda m, a, b: m.add(a, b), ((2, 3), (2, 3)), note="function"),
    Op("add", lambda m, a, b: m.add(a, b, alpha=3), values=WHOLE, differentiable=False, note="int-alpha"),
    Op("sub", lambda m, a, b: a.sub(b, alpha=0.5), ((2, 3), (3,))),
    Op("sub", lambda m, a: m.sub(a, 1), ((2, 3),), note="function-number"),
    Op("mul", lambda m, a, b: a.mul(b), ((2, 3), (3,))),
    Op("mul", lambda m, a: m.mul(a, 2.5), ((2, 3),), note="function-number"),
    Op("div", lambda m, a, b: a.div(b), ((2, 3), (3,)), domain="nonzero"),
    Op("div", lambda m, a, b: m.div(a, b, rounding_mode="floor"), ((2, 3), (2, 3)), domain=("normal", "nonzero"),
       note="floor"),
    Op("div", lambda m, a, b: a.div(b, rounding_mode="trunc"), ((2, 3), (2, 3)), domain=("normal", "nonzero"),
       note="trunc"),
    Op("div", lambda m, a, b: (a.div(b, rounding_mode="floor"), a.div(b, rounding_mode="trunc"), a.div(b)),
       values=WHOLE, differentiable=False, note="int"),
    Op("pow", lambda m, a, b: a.pow(b), ((2, 3), (3,)), domain="positive"),
    Op("pow", lambda m, a: (m.pow(a, 2), m.pow(2, a)), ((2, 3),), note="function"),
    Op("matmul", lambda m, a, b: a.matmul(b), ((2, 3), (3, 4)), note="method"),
    Op("//", lambda m, a, b: a // b, ((2, 3), (3,)), domain=("normal", "nonzero"),
       differentiable=False),   # PyTorch leaves floor_divide's derivative unimplemented (div floor's is 0)
    Op("//", lambda m, a: (7.5 // a, a // 0.5, m.floor_divide(a, 2)), ((4,),), domain="nonzero",
       differentiable=False, note="numbers"),
    Op("//", lambda m, a, b: (a // b, a // 3, -7 // b), values=WHOLE, differentiable=False, note="int"),
    Op("%", lambda m, a, b: a % b, ((2, 3), (3,)), domain=("normal", "nonzero")),
    Op("%", lambda m, a: m.remainder(a, -0.75), ((4,),), note="function-number"),
    Op("%", lambda m, a: 7.5 % a, ((4,),), domain="nonzero", differentiable=False,
       note="number-left"),   # PyTorch leaves this one's derivative unimplemented (ours: -g * floor(7.5 / a))
    Op("%", lambda m, a, b: (a % b, a % -3, 7 % b), values=WHOLE, differentiable=False, note="int"),
    Op("sin", lambda m, x: x.sin(), ((2, 3),)),
    Op("cos", lambda m, x: m.cos(x), ((2, 3),)),
    Op("rsqrt", lambda m, x: x.rsqrt(), ((2, 3),), domain="positive"),
    Op("log2", lambda m, x: x.log2(), ((2, 3),), domain="positive"),
    Op("log1p", lambda m, x: m.log1p(x), ((2, 3),), domain="positive"),
    Op("log1p", lambda m, x: (x * 1e-9).log1p(), ((3,),), note="tiny"),   # where log(1 + x) loses x's digits
    Op("square", lambda m, x: x.square(), ((2, 3),)),
    Op("square", lambda m, x: (m.square(x), (x > 0).square()), values=(WHOLE[0],), differentiable=False, note="int"),
    Op("floor", lambda m, x: (x * 3).floor(), ((2, 3),), domain="distinct"),
    Op("ceil", lambda m, x: m.ceil(x * 3), ((2, 3),), domain="distinct"),
    Op("floor", lambda m, x: (x.floor(), x.ceil()), values=(WHOLE[0],), differentiable=False, note="int"),
    Op("sin", lambda m, x: (x.sin(), x.cos(), x.rsqrt(), x.log2()), values=(np.array([1, 4]),),
       differentiable=False, note="int-to-float32"),
    # more math: trigonometry, exp2, reciprocal, atan2, lerp
    Op("tan", lambda m, x: (x * 0.4).tan(), ((2, 3),)),
    Op("sinh", lambda m, x: x.sinh(), ((2, 3),)),
    Op("cosh", lambda m, x: m.cosh(x), ((2, 3),)),
    Op("asin", lambda m, x: (x.tanh() * 0.9).asin(), ((2, 3),)),
    Op("acos", lambda m, x: m.acos(x.tanh() * 0.9), ((2, 3),)),
    Op("atan", lambda m, x: x.atan(), ((2, 3),)),
    Op("atan2", lambda m, a, b: m.atan2(a, b), ((2, 3), (3,)), domain="nonzero"),
    Op("atan2", lambda m, a, b: a.atan2(b), values=(np.array([1, -2, 0]), np.array([0, 3, -1])), differentiable=False,
       note="int"),
    Op("exp2", lambda m, x: x.exp2(), ((2, 3),)),
    Op("reciprocal", lambda m, x: x.reciprocal(), ((2, 3),), domain="nonzero"),
    Op("reciprocal", lambda m, x: (m.reciprocal(x), x.exp2(), x.tan(), m.sinh(x), x.cosh(), x.atan()),
       values=(np.array([1, 4]),), differentiable=False, note="int-to-float32"),
    Op("lerp", lambda m, a, b, w: m.lerp(a, b, w), ((2, 3), (3,), (2, 1))),
    Op("lerp", lambda m, a, b: a.lerp(b, 0.7), ((2, 3), (2, 3)), note="number-weight"),
    Op("lerp", lambda m, a, b, w: a.lerp(b, w), ((4, 8), (4, 8), (4, 8)), domain=("normal", "normal", "positive"),
       note="far-end"),   # weights from 0.5 up: PyTorch's other formula, from the end
    # rounding: no gradient reaches the input
    Op("sign", lambda m, x: x.sign(), ((2, 3),), domain="distinct"),
    Op("sign", lambda m, x: (m.sign(x), (x > 0).sign()), values=(WHOLE[0],), differentiable=False, note="int-bool"),
    Op("trunc", lambda m, x: (x * 3).trunc(), ((2, 3),), domain="distinct"),
    Op("round", lambda m, x: (x * 3).round(), ((2, 3),), domain="distinct"),
    Op("round", lambda m, x: x.round(), values=(np.array([0.5, 1.5, 2.5, -0.5, -2.5, 3.49]),), differentiable=False,
       note="half-to-even"),
    Op("round", lambda m, x: (m.round(x, decimals=1), x.round(decimals=2), x.round(decimals=-1)),
       values=(ROUNDED,), differentiable=False, note="decimals"),
    Op("round", lambda m, x: (x.round(decimals=1), x.round(decimals=-2)), values=(ROUNDED.astype(np.float32),),
       differentiable=False, note="decimals-float32"),
    Op("round", lambda m, x: (x.round(), x.trunc()), values=(WHOLE[0],), differentiable=False, note="int"),
    Op("frac", lambda m, x: (x * 3).frac(), ((2, 3),), domain="distinct"),
    Op("clamp_min", lambda m, x: x.clamp_min(0.1), ((3, 4),), domain="distinct"),
    Op("clamp_max", lambda m, x: m.clamp_max(x, -0.2), ((3, 4),), domain="distinct"),
    Op("clamp", lambda m, x: (x.clamp(2.5), m.clamp_min(x, 1), x.clamp_max(-1.5)), values=(WHOLE[0],),
       differentiable=False, note="int-float-bound"),
    Op("neg", lambda m, x: x.neg() * m.negative(x), ((3,),), note="method-negative"),
    # tests of each element, and logic on any dtype: bool tensors, outside the graph
    Op("isnan", lambda m, x: (m.isnan(x), x.isnan()), values=(SPECIAL,), differentiable=False),
    Op("isinf", lambda m, x: (m.isinf(x), x.isinf()), values=(SPECIAL,), differentiable=False),
    Op("isfinite", lambda m, x: (m.isfinite(x), x.isfinite()), values=(SPECIAL,), differentiable=False),
    Op("isnan", lambda m, x: (x.isnan(), x.isinf(), m.isfinite(x), (x > 0).isnan()), values=(WHOLE[0],),
       differentiable=False, note="int-bool"),
    Op("logical_and", lambda m, a, b: m.logical_and(a, b), values=TRUTHS, differentiable=False),
    Op("logical_or", lambda m, a, b: a.logical_or(b), values=TRUTHS, differentiable=False),
    Op("logical_xor", lambda m, a, b: (m.logical_xor(a, b), (a > 0).logical_xor(b > 1)), values=TRUTHS,
       differentiable=False),
    # the strict matrix products: mm, bmm, mv, dot (exact ranks, no broadcasting), outer, addmm, baddbmm
    Op("mm", lambda m, a, b: m.mm(a, b), ((3, 4), (4, 2))),
    Op("mm", lambda m, a, b: a.mm(b), values=(np.array([[1, 2], [3, 4]]), np.array([[5], [6]])), differentiable=False,
       note="int"),
    Op("bmm", lambda m, a, b: m.bmm(a, b), ((2, 3, 4), (2, 4, 5))),
    Op("mv", lambda m, a, b: a.mv(b), ((3, 4), (4,))),
    Op("dot", lambda m, a, b: m.dot(a, b), ((4,), (4,))),
    Op("dot", lambda m, a, b: a.dot(b), values=(np.array([1, 2]), np.array([3, 4])), differentiable=False, note="int"),
    Op("outer", lambda m, a, b: m.outer(a, b), ((3,), (4,))),
    Op("outer", lambda m, a, b: a.outer(b), values=(np.array([1, 2]), np.array([1.5, 2.0])), differentiable=False,
       note="int-float"),
    Op("addmm", lambda m, c, a, b: m.addmm(c, a, b), ((4,), (3, 5), (5, 4))),
    Op("addmm", lambda m, c, a, b: c.addmm(a, b, beta=0.5, alpha=2.0), ((3, 1), (3, 5), (5, 4)), note="beta-alpha"),
    Op("addmm", lambda m, c, a, b: m.addmm(c.masked_fill(c < 0, float("nan")), a, b, beta=0), ((3, 4), (3, 5), (5, 4)),
       note="beta=0-ignores-nan"),   # the NaN in input must not reach the output
    Op("baddbmm", lambda m, c, a, b: m.baddbmm(c, a, b, alpha=0.5), ((2, 1, 4), (2, 3, 5), (2, 5, 4))),
    Op("baddbmm", lambda m, c, a, b: c.baddbmm(a, b, beta=2), ((4,), (2, 3, 5), (2, 5, 4)), note="method"),
]

REDUCTIONS = [
    *[reduction(name, axis, keepdims)
      for name in ("sum", "mean", "amax", "var")
      for axis, keepdims in ((None, False), (1, True), ((0, 2), False), (-1, False))],
    reduction("var", 1, False, correction=0),
    reduction("amax", None, True),
    Op("sum", lambda m, x: x.sum(dim=1, keepdim=True), ((2, 3, 4),), note="dim"),
    Op("sum", lambda m, x: x.sum((0, 2)), ((2, 3, 4),), note="dims-positional"),
    Op("mean", lambda m, x: x.mean(dim=-1), ((2, 3),), note="dim"),
    Op("var", lambda m, x: x.var(dim=0), ((4, 3),), note="dim"),
    Op("var", lambda m, x: x.var(dim=1, correction=0, keepdim=True), ((4, 3),), note="correction"),
    Op("std", lambda m, x: x.std(dim=1), ((4, 3),)),
    Op("amax", lambda m, x: x.amax(dim=1), ((3, 4),), domain="distinct"),
    Op("amin", lambda m, x: x.amin(dim=(0, 1)), ((3, 4),), domain="distinct"),
    Op("max", lambda m, x: x.max(), ((3, 4),), domain="distinct"),
    Op("max", lambda m, x: x.max(dim=1), ((3, 4),), domain="distinct", note="dim"),
    Op("max", lambda m, x: x.max(0, keepdim=True), ((3, 4),), domain="distinct", note="dim-keepdim"),
    Op("min", lambda m, x: x.min(dim=1), ((3, 4),), domain="distinct", note="dim"),
    Op("min", lambda m, x: x.min(), ((3, 4),), domain="distinct"),
    Op("norm", lambda m, x: x.norm(), ((3, 4),)),
    Op("norm", lambda m, x: x.norm(dim=1, keepdim=True), ((3, 4),), note="dim"),
    Op("norm", lambda m, x: x.norm(p=1, dim=0), ((3, 4),), lambda t, x: t.linalg.vector_norm(x, ord=1, dim=0),
       domain="distinct", note="p=1"),
    Op("argmax", lambda m, x: x.argmax(dim=1), ((3, 4),), domain="distinct", differentiable=False),
    Op("argmax", lambda m, x: x.argmax(), ((3, 4),), domain="distinct", differentiable=False, note="all"),
    Op("argmin", lambda m, x: x.argmin(dim=0, keepdim=True), ((3, 4),), domain="distinct", differentiable=False),
    Op("topk", lambda m, x: x.topk(2, dim=1), ((3, 5),), domain="distinct"),
    Op("topk", lambda m, x: x.topk(3, dim=0, largest=False), ((4, 2),), domain="distinct", note="smallest"),
    # axis= is dim=, for max and min too: the pair (values, indices)
    Op("max", lambda m, x: x.max(axis=1), ((3, 4),), domain="distinct", note="axis"),
    Op("max", lambda m, x: x.max(axis=0, keepdims=True), ((3, 4),), domain="distinct", note="axis-keepdims"),
    Op("min", lambda m, x: x.min(axis=-1), ((3, 4),), domain="distinct", note="axis"),
    # integers at their limits and bools: min is not -max(-x)
    Op("min", lambda m, x: (x.min(), x.amin(), x.max(), x.min(dim=0)), values=(INT32_MIN,), differentiable=False,
       note="int32-minimum"),
    Op("min", lambda m, x: (x.min(), x.amin(dim=0), x.max()), values=(INT64_MIN,), differentiable=False,
       note="int64-minimum"),
    Op("min", lambda m, x: (x.min(), x.max(), x.amin(dim=1), x.amax(), x.min(dim=1), x.max(dim=0)),
       values=(np.array([[True, False], [True, True]]),), differentiable=False, note="bool"),
    # a 0-d tensor takes dim 0 or -1, and is its own reduction
    Op("sum", lambda m, x: (x.sum(0), x.sum(-1, keepdim=True), x.mean(-1)), ((),), note="0-d"),
    Op("max", lambda m, x: x.max(0), ((),), note="0-d"),
    Op("argmax", lambda m, x: (x.argmax(0), x.argmin(-1, keepdim=True)), ((),), differentiable=False, note="0-d"),
    Op("prod", lambda m, x: x.prod(-1) * x.cumsum(0), ((),), note="0-d"),
    Op("sort", lambda m, x: x.sort(), ((),), note="0-d"),
    # var and std: PyTorch's unbiased=, positional forms, no degrees of freedom, a constant's spread
    Op("var", lambda m, x: x.var(unbiased=False), ((3, 4),), note="unbiased=False"),
    Op("var", lambda m, x: x.var(False), ((3, 4),), note="var(False)"),
    Op("std", lambda m, x: x.std(1, False, True), ((3, 4),), note="dim-unbiased-keepdim"),
    Op("std", lambda m, x: x.std(dim=0, unbiased=True), ((3, 4),), note="unbiased=True"),
    Op("std", lambda m, x: x.std(1), values=(np.array([[2.0, 2.0, 2.0], [1.0, 2.0, 4.0]]),), note="constant-row"),
    Op("var", lambda m, x: (x.var(), x.var(1)), values=(np.array([[1.5]]),), note="one-element"),
    Op("std", lambda m, x: x.std(), values=(np.array([1.5]),), note="one-element"),
    Op("var", lambda m, x: x.var(correction=2), values=(np.array([1.0, 2.0]),), note="correction=N"),
    Op("var", lambda m, x: x.var(1, correction=2), values=(np.array([[1.0, 2.0]]),), note="correction=N-dim"),
    Op("var", lambda m, x: x.var(1, correction=3), values=(np.array([[1.0, 2.0]]),), note="correction>N-dim"),
    Op("std", lambda m, x: x.std(1, correction=3), values=(np.array([[1.0, 2.0]]),), note="correction>N-dim"),
    Op("prod", lambda m, x: x.prod(), ((2, 3),)),
    Op("prod", lambda m, x: x.prod(1), ((2, 3),), note="dim"),
    Op("prod", lambda m, x: m.prod(x, dim=0, keepdim=True), ((3, 2),), note="keepdim"),
    Op("prod", lambda m, x: (x.prod(), x.prod(0), x.prod(1)),
       values=(np.array([[0.0, 2.0, 3.0], [0.0, 0.0, 1.5], [1.0, -2.0, 4.0]]),), note="zeros"),
    Op("prod", lambda m, x: (x.prod(), x.prod(1)), values=(np.array([[3, -1], [2, 2]], np.int32),),
       differentiable=False, note="int32"),
    Op("cumsum", lambda m, x: x.cumsum(1), ((2, 4),)),
    Op("cumsum", lambda m, x: m.cumsum(x, dim=-3), ((3, 2, 2),), note="function"),
    Op("cumsum", lambda m, x: (x.cumsum(0), (x > 0).cumsum(0)), values=(np.array([3, -1, 2], np.int32),),
       differentiable=False, note="int32-bool"),
    Op("all", lambda m, a, b: ((a == b).all(), (a == a).all(), (a > 0).all(dim=1), a.all()), ((2, 3), (3,)),
       differentiable=False),
    Op("any", lambda m, a: ((a > 0).any(), (a > 5).any(1, keepdim=True), m.any(a, dim=0)), ((2, 3),),
       differentiable=False),
    Op("all", lambda m, x: (x.all(), x.any(), x.all(0)), values=(np.array([[1, 0], [2, 3]], np.uint8),),
       differentiable=False, note="uint8"),
    Op("sort", lambda m, x: x.sort(), ((3, 4),), domain="distinct"),
    Op("sort", lambda m, x: x.sort(dim=0, descending=True), ((3, 4),), domain="distinct", note="descending"),
    Op("sort", lambda m, x: m.sort(x, 1), ((2, 3),), domain="distinct", note="function"),
    Op("sort", lambda m, x: (x.sort(stable=True), x.sort(descending=True, stable=True), x.sort(dim=0, stable=True)),
       values=(TIES,), differentiable=False, note="ties"),
    Op("sort", lambda m, x: x.sort(descending=True), values=(INT64_MIN,), differentiable=False,
       note="int64-minimum"),
    # logsumexp, cumprod, var_mean and std_mean, median; argsort, count_nonzero, unique, bincount (no gradient)
    Op("logsumexp", lambda m, x: x.logsumexp(1), ((3, 4),)),
    Op("logsumexp", lambda m, x: m.logsumexp(x * 300, dim=(0, 2), keepdim=True), ((2, 3, 4),),
       note="large-dims"),   # exp(300 x) overflows unless the largest is taken out first
    Op("logsumexp", lambda m, x: x.logsumexp(-1), values=(np.array([[-np.inf, -np.inf], [np.inf, 1.0], [1.0, 2.0]]),),
       note="infinities"),
    Op("logsumexp", lambda m, x: m.logsumexp(x, 0), values=(np.array([1, 2]),), differentiable=False, note="int"),
    Op("cumprod", lambda m, x: x.cumprod(1), ((2, 4),)),
    Op("cumprod", lambda m, x: m.cumprod(x, dim=0), values=(CUMPROD_ZEROS,), note="zeros"),
    Op("cumprod", lambda m, x: (x.cumprod(0), (x > 0).cumprod(0)), values=(np.array([3, -1, 2], np.int32),),
       differentiable=False, note="int32-bool"),
    Op("var_mean", lambda m, x: m.var_mean(x, 1), ((3, 4),)),
    Op("var_mean", lambda m, x: m.var_mean(x, dim=(0, 1), correction=0, keepdim=True)[::-1], ((3, 4),),
       note="correction-keepdim"),   # reversed, so the mean's gradient is checked too
    Op("std_mean", lambda m, x: m.std_mean(x, 0, unbiased=False), ((3, 4),)),
    Op("std_mean", lambda m, x: m.std_mean(x)[::-1], ((3, 4),), note="all"),
    Op("median", lambda m, x: x.median(), ((3, 4),), domain="distinct"),
    Op("median", lambda m, x: x.median(dim=1), ((3, 4),), domain="distinct", note="dim"),
    Op("median", lambda m, x: m.median(x, 0, keepdim=True), ((5, 2),), domain="distinct", note="odd-keepdim"),
    Op("median", lambda m, x: (x.median(), x.median(1), x.median(0)), values=(TIES.astype(np.float64),),
       note="ties"),   # median() shares the gradient among the tied medians
    Op("median", lambda m, x: (x.median(), x.median(1), x.median(-1, True)), values=(TIES,), differentiable=False,
       note="int"),
    Op("median", lambda m, x: (x.median(), x.median(1)), values=(MEDIAN_NANS,), note="nan"),
    Op("argsort", lambda m, x: x.argsort(dim=0), ((3, 4),), domain="distinct", differentiable=False),
    Op("argsort", lambda m, x: (m.argsort(x, descending=True, stable=True), x.argsort(stable=True),
                                x.argsort(dim=0, stable=True), m.argsort(x[0, 0], stable=True)), values=(TIES,),
       differentiable=False, note="ties"),
    Op("count_nonzero", lambda m, x: (m.count_nonzero(x), x.count_nonzero(dim=0), m.count_nonzero(x, dim=(0, 1))),
       values=(TRUTHS[0],), differentiable=False),
    Op("unique", lambda m, x: m.unique(x), values=(TIES,), differentiable=False),
    Op("unique", lambda m, x: x.unique(return_inverse=True, return_counts=True), values=(TIES,), differentiable=False,
       note="inverse-counts"),
    Op("unique", lambda m, x: m.unique(x, sorted=False, return_inverse=True, return_counts=True, dim=1),
       values=(np.array([[1, 2, 1, 0], [3, 0, 3, 5]]),), differentiable=False, note="dim"),
    Op("unique", lambda m, x: m.unique(x, return_inverse=True), values=(MEDIAN_NANS[0],), differentiable=False,
       note="nan"),
    Op("bincount", lambda m, x: (m.bincount(x), x.bincount(minlength=8)), values=(np.array([0, 2, 2, 5]),),
       differentiable=False),
    Op("bincount", lambda m, x, w: (m.bincount(x, w), x.bincount(w.float()), x.bincount(x)),
       values=(np.array([0, 2, 2, 5]), np.array([0.5, 1.0, 2.0, 3.0])), differentiable=False, note="weights"),
]

MOVEMENT = [
    Op("reshape", lambda m, x: x.reshape(4, -1), ((2, 3, 2),)),
    Op("reshape", lambda m, x: x.reshape((3, 2, 2)), ((2, 6),), note="tuple"),
    Op("view", lambda m, x: x.view(-1), ((2, 3),)),
    Op("unsqueeze", lambda m, x: x.unsqueeze(1).unsqueeze(-1), ((2, 3),)),
    Op("squeeze", lambda m, x: x.squeeze(), ((2, 1, 3, 1),)),
    Op("squeeze", lambda m, x: x.squeeze(1), ((2, 1, 3, 1),), note="dim"),
    Op("squeeze", lambda m, x: (x.squeeze(0), x.squeeze(-1)), ((),), note="0-d"),
    Op("flatten", lambda m, x: x.flatten(1), ((2, 3, 4),)),
    Op("permute", lambda m, x: x.permute(2, 0, 1), ((2, 3, 4),)),
    Op("permute", lambda m, x: x.permute(-1, 0, 1), ((2, 3, 4),), note="negative"),
    Op("transpose", lambda m, x: x.transpose(0, 2), ((2, 3, 4),)),
    Op("transpose", lambda m, x: x.transpose(-2, -1), ((2, 3, 4),), note="last-two"),
    Op("T", lambda m, x: x.T, ((3, 4),)),
    Op("t", lambda m, x: x.t(), ((2, 3),)),
    Op("expand", lambda m, x: x.expand(2, 3, 4), ((3, 1),)),
    Op("expand", lambda m, x: x.expand(-1, 4), ((3, 1),), note="-1"),
    Op("repeat", lambda m, x: x.repeat(2, 1, 3), ((2, 3),)),
    Op("take_along_dim", lambda m, x: m.take_along_dim(x, m.tensor(ALONG), 1), ((2, 3),)),
    # getitem
    Op("getitem", lambda m, x: x[1:, ::2] * x[0, 1], ((3, 4),)),
    Op("getitem", lambda m, x: x[1:, 0, ::2], ((3, 2, 4),), note="slice-int"),
    Op("getitem", lambda m, x: x[::-1, -1], ((3, 4),), lambda t, x: x.flip(0)[:, -1], note="negative-step"),
    Op("getitem", lambda m, x: x[None, ..., 1], ((2, 3, 4),), note="none-ellipsis"),
    Op("getitem", lambda m, x: x[1, -1], ((3, 4),), note="ints"),
    Op("getitem", lambda m, x: x[[0, 2, 0]], ((3, 4),), note="repeated-list"),
    Op("getitem", lambda m, x: x[[0, 2, 0], [1, 3, 1]], ((3, 4),), note="repeated-pairs"),
    Op("getitem", lambda m, x: x[m.tensor([2, 2])], ((3, 2),), note="tensor-index"),
    Op("getitem", lambda m, x: x[1:, [3, 0, 3, 3]], ((3, 4),), note="list-and-slice"),
    Op("getitem", lambda m, x: x[np.array([[1, 1], [0, 2]])], ((3, 2),),
       lambda t, x: x[t.tensor([[1, 1], [0, 2]])], note="ndarray"),
    # joining and splitting, along a middle axis
    Op("cat", lambda m, a, b: m.cat([a, b], dim=1), ((2, 3), (2, 1))),
    Op("cat", lambda m, a, b, c: movement.concat([a, b, c], axis=1), ((2, 1, 3), (2, 4, 3), (2, 2, 3)),
       lambda t, a, b, c: t.cat([a, b, c], dim=1), note="axis"),
    Op("cat", lambda m, a, b: movement.concat([a, b], axis=-1), ((2, 3), (2, 1)),
       lambda t, a, b: t.cat([a, b], dim=-1), note="negative-axis"),
    Op("stack", lambda m, a, b: m.stack([a, b], dim=-1), ((2, 3),) * 2),
    Op("stack", lambda m, a, b, c: movement.stack([a, b, c], axis=1), ((2, 3),) * 3,
       lambda t, a, b, c: t.stack([a, b, c], dim=1), note="axis"),
    Op("split", lambda m, x: x.split(2, dim=1)[1], ((2, 5),)),
    # the pieces reassembled in reverse, so each piece's gradient must land in its own place
    Op("split", lambda m, x: m.cat(x.split(2, dim=1)[::-1], dim=1), ((2, 5, 3),), note="reassembled"),
    Op("split", lambda m, x: m.split(x, [1, 3], dim=1)[1] * 2.0, ((2, 4, 3),), note="sizes"),
    # where and masked_fill, with a broadcasting condition
    Op("where", lambda m, a, b: m.where(a > 0, a, b), ((2, 3), (3,)), domain="distinct"),
    Op("where", lambda m, a, b: movement.where(COND, a, b), ((3, 4), (4,)),
       lambda t, a, b: t.where(t.tensor(COND), a, b), note="ndarray-cond"),
    Op("where", lambda m, a, b: movement.where(COND_WIDE, a, b), ((3, 1), ()),
       lambda t, a, b: t.where(t.tensor(COND_WIDE), a, b), note="cond-widens"),
    Op("where", lambda m, a: m.where(m.tensor(COND), a, -2.0), ((3, 4),), note="number"),
    Op("masked_fill", lambda m, x: x.masked_fill(x > 0, -1.0), ((2, 3),), domain="distinct"),
    Op("masked_fill", lambda m, x: x.masked_fill(MASK, -1.5), ((3, 4),),
       lambda t, x: x.masked_fill(t.tensor(MASK), -1.5), note="ndarray-mask"),
    Op("masked_fill", lambda m, x, v: m.masked_fill(x, x > 0, v), ((2, 3), ()), domain="distinct",
       note="0-d-value"),   # the value receives the gradient where the mask is true
    Op("masked_fill", lambda m, x: x.masked_fill(m.tensor(COND_WIDE), 2.0), ((3, 1),), note="mask-widens"),
    Op("masked_fill", lambda m, x: x.masked_fill(m.tensor([True, False]), 2.7), values=(np.array([5, 6]),),
       differentiable=False, note="int-truncates"),
    Op("where", lambda m: (m.where(m.tensor(COND), 1, 3), m.where(m.tensor(COND), 1.5, 0), m.where(m.tensor(COND),
                           True, False)), differentiable=False, note="two-numbers"),
    Op("where", lambda m, a, b: a.where(a > 0, b), ((2, 3), (3,)), domain="distinct", note="method"),
    Op("where", lambda m, x: m.where(x > 0), ((3, 4),), domain="distinct", differentiable=False, note="alone"),
    # item assignment (on a copy in the graph)
    Op("setitem", lambda m, x, v: assigned(x, (slice(1, 3), 0), v), ((4, 3), (2,))),
    Op("setitem", lambda m, x, v: assigned(x, x > 0, v), ((3, 4), ()), domain="distinct", note="mask"),
    Op("setitem", lambda m, x, v: assigned(x, m.tensor([2, 0]), v), ((3, 4), (4,)), note="tensor-index"),
    Op("setitem", lambda m, x, v: assigned(x, (1, slice(None), [0, 2]), v), ((2, 3, 4), (3, 2)),
       note="int-apart-from-list"),
    Op("setitem", lambda m, x: assigned(x, Ellipsis, 0.5) * x, ((2, 3),), note="number"),
    # gathering and scattering
    Op("gather", lambda m, x: m.gather(x, 1, m.tensor(PICK)), ((3, 4),)),
    Op("gather", lambda m, x: x.gather(0, m.tensor([[2, 0, 1, 1]])), ((3, 4),), note="method-dim0"),
    Op("index_select", lambda m, x: m.index_select(x, 1, m.tensor([2, 0, 2])), ((3, 4),)),
    Op("index_select", lambda m, x: x.index_select(0, m.tensor(1)), ((3, 4),), note="0-d-index"),
    Op("scatter", lambda m, x, s: x.scatter(1, m.tensor(PUT), s), ((3, 4), (3, 2))),
    Op("scatter", lambda m, x, s: x.scatter(1, m.tensor(PUT), s), ((3, 4), (3, 3)), differentiable=False,
       note="src-read-in-part"),   # PyTorch's backward fails on this one (a gradient of src's shape is due)
    Op("scatter", lambda m, x: m.scatter(x, 0, m.tensor([[1, 0, 2, 1]]), 2.5), ((3, 4),), note="number"),
    Op("scatter_add", lambda m, x, s: x.scatter_add(0, m.tensor([[0, 1, 0, 0], [0, 2, 2, 1]]), s), ((3, 4), (2, 4))),
    Op("repeat_interleave", lambda m, x: x.repeat_interleave(2, dim=1), ((2, 3),)),
    Op("repeat_interleave", lambda m, x: m.repeat_interleave(x, m.tensor([1, 0, 3]), dim=0), ((3, 2),),
       note="counts"),
    Op("repeat_interleave", lambda m, x: x.repeat_interleave(2), ((2, 2),), note="flattened"),
    Op("repeat_interleave", lambda m: m.repeat_interleave(m.tensor([2, 0, 1])), differentiable=False,
       note="counts-alone"),
    # reordering and masking
    Op("chunk", lambda m, x: m.cat(x.chunk(3, dim=1)[::-1], dim=1), ((2, 5),)),
    Op("chunk", lambda m, x: [c.shape for c in m.chunk(x, 4)], ((6,),), differentiable=False, note="fewer"),
    Op("flip", lambda m, x: x.flip(0, 2), ((2, 3, 4),)),
    Op("flip", lambda m, x: m.flip(x, (1,)), ((2, 3),), note="function"),
    Op("roll", lambda m, x: m.roll(x, 2), ((2, 3),), note="flattened"),
    Op("roll", lambda m, x: x.roll((1, -2), (0, 2)), ((2, 3, 4),)),
    Op("tril", lambda m, x: m.tril(x), ((3, 4),)),
    Op("tril", lambda m, x: x.tril(diagonal=1), ((2, 3, 4),), note="batched-diagonal"),
    Op("tril", lambda m: m.tril(m.ones(3, 3)), differentiable=False, note="causal-mask"),
    Op("triu", lambda m, x: m.triu(x, -1), ((4, 3),)),
    Op("triu", lambda m, x: x.triu(), ((2, 3, 3),), note="method"),
    Op("expand_as", lambda m, x, y: x.expand_as(y) * y, ((3, 1), (2, 3, 4))),
    Op("nonzero", lambda m, x: m.nonzero(x > 0), ((3, 4),), domain="distinct", differentiable=False),
    Op("nonzero", lambda m, x: x.nonzero(as_tuple=True), ((3, 4),), domain="distinct", differentiable=False,
       note="as_tuple"),
    Op("meshgrid", lambda m, a, b: meshgrid_mixed(m, a, b, "ij"), ((3,), (4,))),
    Op("meshgrid", lambda m, a, b: meshgrid_mixed(m, a, b, "xy"), ((3,), (4,)), note="xy"),
    Op("einsum", lambda m, a, b: m.einsum("ij,jk->ik", a, b), ((2, 3), (3, 4))),
    Op("einsum", lambda m, q, k: m.einsum("bhid,bhjd->bhij", q, k), ((2, 2, 3, 4), (2, 2, 5, 4)), note="attention"),
    Op("einsum", lambda m, a, b: m.einsum("...ij,...jk", a, b), ((2, 1, 2, 3), (4, 3, 5)), note="ellipsis"),
    Op("einsum", lambda m, x: m.einsum("ii->i", x), ((3, 3),), note="diagonal"),
    Op("einsum", lambda m, a, b: m.einsum("ba,Ab", a, b), ((2, 3), (4, 2)), note="implicit"),
    Op("einsum", lambda m, a, b: m.einsum("i,j", a, b), ((2,), (3,)), note="outer"),
    Op("einsum", lambda m, a, b: m.einsum("ij,k->i", [a, b]), ((2, 3), (4,)), note="list"),
    # selecting, cutting and joining along an axis; moving axes; diagonals; PyTorch's functions for the methods
    Op("select", lambda m, x: x.select(1, -1), ((2, 3, 4),)),
    Op("select", lambda m, x: m.select(x, 0, 1), ((3, 2),), note="function"),
    Op("unbind", lambda m, x: m.cat(x.unbind(1)[::-1], dim=0), ((2, 3, 2),)),   # reassembled in reverse
    Op("unbind", lambda m, x: m.unbind(x), ((3, 2),), note="function"),
    Op("narrow", lambda m, x: x.narrow(1, 1, 2), ((2, 4),)),
    Op("narrow", lambda m, x: m.narrow(x, -1, -3, 2), ((2, 3, 4),), note="negative-start"),
    Op("tensor_split", lambda m, x: m.cat(m.tensor_split(x, 3, dim=1)[::-1], dim=1), ((2, 7),)),
    Op("tensor_split", lambda m, x: m.cat(x.tensor_split([1, 5, 3, -1])[::-1]), ((6, 2),), note="indices"),
    Op("tensor_split", lambda m, x: m.tensor_split(x, m.tensor([1, 4])), ((6,),), note="tensor-indices"),
    Op("tensor_split", lambda m, x: x.tensor_split(5), ((3,),), note="more-sections-than-elements"),
    Op("hstack", lambda m, a, b: m.hstack([a, b]), ((2, 1), (2, 3))),
    Op("hstack", lambda m, a, b: m.hstack((a, b)), ((), (3,)), note="vectors"),
    Op("vstack", lambda m, a, b: m.vstack([a, b]), ((3,), (2, 3))),
    Op("diag", lambda m, x: m.diag(x), ((3,),)),
    Op("diag", lambda m, x: x.diag(-1), ((3,),), note="vector-below"),
    Op("diag", lambda m, x: m.diag(x, 1), ((3, 4),), note="matrix"),
    Op("diagonal", lambda m, x: x.diagonal(), ((3, 4),)),
    Op("diagonal", lambda m, x: m.diagonal(x, 1, 2, 0), ((2, 3, 4),), note="dims-offset"),
    Op("diagonal", lambda m, x: x.diagonal(-2), ((3, 4),), note="below"),
    Op("movedim", lambda m, x: m.movedim(x, (0, 1), (2, 0)), ((2, 3, 4),)),
    Op("movedim", lambda m, x: x.moveaxis(0, -1) + m.moveaxis(x, -3, 2), ((2, 3, 4),), note="moveaxis"),
    Op("swapaxes", lambda m, x: m.swapaxes(x, 0, 2), ((2, 3, 4),)),
    Op("swapdims", lambda m, x: x.swapdims(-1, 1), ((2, 3, 4),)),
    Op("unflatten", lambda m, x: x.unflatten(1, (2, -1)), ((2, 6),)),
    Op("unflatten", lambda m, x: m.unflatten(x, -1, (3, 1, 2)), ((2, 6),), note="function"),
    Op("view_as", lambda m, x, y: x.view_as(y) * y, ((2, 6), (3, 4))),
    Op("reshape_as", lambda m, x, y: x.reshape_as(y) * y, ((2, 6), (4, 3))),
    Op("flatten", lambda m, x: m.flatten(x, 0, 1), ((2, 3, 4),), note="function"),
    Op("reshape", lambda m, x: (m.reshape(x, (3, 2)), m.permute(x, (1, 0)), m.transpose(x, 0, 1), m.t(x),
                                m.squeeze(m.unsqueeze(x, 0), 0)), ((2, 3),), note="functions"),
]

CREATION = [   # no inputs: the made tensor's dtype and values are PyTorch's
    Op("tensor", lambda m: m.tensor([[1, 2]]), differentiable=False),
    Op("tensor", lambda m: m.tensor([1.5]), differentiable=False, note="float"),
    Op("zeros", lambda m: m.zeros(2, 3), differentiable=False),
    Op("ones", lambda m: m.ones((2,)), differentiable=False),
    Op("full", lambda m: m.full((2, 2), 7), differentiable=False),
    Op("full", lambda m: m.full((2,), 0.5), differentiable=False, note="float"),
    Op("zeros_like", lambda m: m.zeros_like(m.ones(2, dtype=m.int64)), differentiable=False),
    Op("ones_like", lambda m: m.ones_like(m.zeros(3)), differentiable=False),
    Op("full_like", lambda m: m.full_like(m.zeros(2), 3.0), differentiable=False),
    Op("arange", lambda m: m.arange(5), differentiable=False),
    Op("arange", lambda m: m.arange(1, 2, 0.25), differentiable=False, note="float-step"),
    Op("arange", lambda m: (m.arange(-3.3, 10.1, 0.7), m.arange(0, 300, 0.0137), m.arange(10, 0, -0.7, dtype=m.float64),
                            m.arange(1e6, 1e6 + 1, 0.1, dtype=m.float64)), differentiable=False, note="float-numbers"),
    Op("arange", lambda m: (m.arange(0, 5.5, 1, dtype=m.int64), m.arange(0.5, 5.2, 1, dtype=m.int32),
                            m.arange(-2.5, 2, 1.5, dtype=m.int64), m.arange(m.tensor(4)), m.arange(7, 1, -2.5)),
       differentiable=False, note="int-dtypes"),   # int64 counts from the truncated bounds, int32 in float64
    Op("empty_like", lambda m: (m.empty_like(m.ones(2, 3)).fill_(1.5), m.empty_like(m.ones(2), dtype=m.int64).fill_(3)),
       differentiable=False),
    Op("zeros", lambda m: (m.zeros([2, 3]), m.ones([2]), m.zeros((1, 2), dtype=m.int64)), differentiable=False,
       note="list"),
    Op("empty", lambda m: (m.empty(2, 3).fill_(1.5), m.empty((2,), dtype=m.int64).fill_(3)), differentiable=False),
    Op("eye", lambda m: (m.eye(3), m.eye(2, 3), m.eye(2, dtype=m.int64)), differentiable=False),
    Op("linspace", lambda m: (m.linspace(0, 1, 7), m.linspace(-3.3, 10.1, 101), m.linspace(0, 10, 1),
                              m.linspace(0, 10, 0)), differentiable=False),
    Op("linspace", lambda m: (m.linspace(-3.3, 10.1, 9, dtype=m.float64), m.linspace(-2.5, 7, 6, dtype=m.int64)),
       differentiable=False, note="dtype"),
    Op("from_numpy", lambda m: numpy_written_after(m, np.arange(3.0)), differentiable=False),
    Op("from_numpy", lambda m: numpy_written_after(m, np.array([[1, 2]], np.int32)), differentiable=False,
       note="int32"),
    Op("new_zeros", lambda m, x: (x.new_zeros(2, 3), x.new_zeros((1,), dtype=m.int64)), ((2,),),
       differentiable=False),
    Op("new_ones", lambda m, x: x.new_ones((2,)), ((2,),), differentiable=False),
    Op("new_full", lambda m, x: (x.new_full((2, 2), 3), x.new_full((2,), 0.5)), ((2,),), differentiable=False),
    Op("new_tensor", lambda m, x: (x.new_tensor([1, 2]), x.new_tensor([1.5], dtype=m.float64)), ((2,),),
       differentiable=False),
    Op("new_tensor", lambda m, x: x.new_tensor([1.5, -2.5]), values=(np.array([1], np.int32),), differentiable=False,
       note="int32"),
]


def numpy_written_after(m, array):
    """m.from_numpy(array), then array written: the tensor shares its memory, so it shows the new numbers."""
    made = m.from_numpy(array)
    array[0] = 5
    return made

CONVERSION = [
    Op("to", lambda m, x: x.to(m.float32), ((3,),), differentiable=False),
    Op("to", lambda m, x: x.to(dtype=m.float64) * x.to(m.float64), ((3,),), note="dtype=", gradcheck=False),
    Op("to", lambda m, x: (x.to(m.int64), x.to("cpu", m.long), x.to(m.tensor([1], dtype=m.int32)),
                           x.to(device="cpu"), x.to(dtype=m.bool)), ((3,),), differentiable=False, note="forms"),
    Op("to", lambda m, x: x.to(m.float64, copy=True) * 2, ((3,),), note="copy", gradcheck=False),
    Op("type", lambda m, x: (x.type(), x.long().type(), x.int().type(), x.bool().type(), x.double().type()), ((3,),),
       differentiable=False),
    Op("type", lambda m, x: (x.type(m.float64), x.type("torch.DoubleTensor"), x.type(m.int64)), ((3,),),
       differentiable=False, note="convert"),
    Op("format", lambda m, x: (f"{x.sum():.4f}", f"{x[0]:+.2e}", format(x[0], ""), f"{(x > 0).sum():d}"), ((3,),),
       differentiable=False),
    Op("float", lambda m, x: x.float() * 2, ((3,),), differentiable=False),
    Op("double", lambda m, x: x.float().double(), ((3,),), gradcheck=False),
    Op("long", lambda m, x: (x * 3).long(), ((3,),), differentiable=False),
    Op("int", lambda m, x: (x * 3).int(), ((3,),), differentiable=False),
    Op("bool", lambda m, x: x.bool(), ((3,),), differentiable=False),
    Op("clone", lambda m, x: x.clone() * 2, ((3,),)),
    Op("detach", lambda m, x: x.detach() * x, ((3,),), gradcheck=False),
    Op("item", lambda m, x: x.sum().item(), ((3,),), differentiable=False),
    Op("tolist", lambda m, x: x.tolist(), ((2, 2),), differentiable=False),
    Op("numpy", lambda m, x: x.detach().numpy(), ((2, 2),), differentiable=False),
    Op("size", lambda m, x: (tuple(x.size()), x.size(1), x.size(-1)), ((2, 3),), differentiable=False),
    Op("numel", lambda m, x: x.numel(), ((2, 3),), differentiable=False),
    Op("dim", lambda m, x: x.dim(), ((2, 3),), differentiable=False),
    Op("requires_grad_", lambda m, x: x.detach().requires_grad_().requires_grad, ((2,),), differentiable=False),
]

IN_PLACE = [   # on a copy in the graph, so the gradient flows through the change
    Op("add_", lambda m, a, b: a.clone().add_(b, alpha=2), ((2, 3), (3,))),
    Op("sub_", lambda m, a, b: a.clone().sub_(b), ((2, 3), (3,))),
    Op("mul_", lambda m, a, b: a.clone().mul_(b), ((2, 3), (3,))),
    Op("div_", lambda m, a, b: a.clone().div_(b), ((2, 3), (3,)), domain="positive"),
    Op("clamp_", lambda m, x: x.clone().clamp_(-0.5, 0.5), ((2, 3),), domain="distinct"),
    Op("fill_", lambda m, x: x.clone().fill_(2.0) * x, ((2, 3),)),
    Op("zero_", lambda m, x: x.clone().zero_() + x, ((2, 3),)),
    Op("copy_", lambda m, a, b: a.clone().copy_(b), ((2, 3), (3,))),
    Op("masked_fill_", lambda m, x: x.clone().masked_fill_(x > 0, 2.0), ((2, 3),), domain="distinct"),
    Op("masked_fill_", lambda m, x: x.clone().masked_fill_(m.tensor(MASK), -1.5) * x, ((3, 4),), note="broadcast"),
]

FUNCTIONAL = [
    Op("embedding", lambda m, w: movement.embedding(IDX, w), ((5, 3),),
       lambda t, w: t.nn.functional.embedding(t.tensor(IDX), w)),
    Op("embedding", lambda m, w: movement.embedding(Tensor(IDX[0]), w), ((5, 2),),
       lambda t, w: t.nn.functional.embedding(t.tensor(IDX[0]), w), note="tensor-idx"),
    # torch.nn.functional, spelled F.<name>; the fused ops' own cases (fused against composed) are in test_functional
    Op("F.pad", lambda m, x: F(m).pad(x, (1, 2, 0, 1), value=0.5), ((2, 3, 4),), note="constant"),
    Op("F.pad", lambda m, x: F(m).pad(x, (-1, 2, 1, -1)), ((2, 3, 4),), note="constant-crop"),
    Op("F.pad", lambda m, x: F(m).pad(x, (2, 1), mode="reflect"), ((2, 3, 5),), note="reflect"),
    Op("F.pad", lambda m, x: F(m).pad(x, (1, 2, 2, 0), mode="replicate"), ((1, 2, 3, 4),), note="replicate"),
    Op("F.pad", lambda m, x: F(m).pad(x, (1, 3), mode="circular"), ((2, 3, 4),), note="circular"),
    Op("F.normalize", lambda m, x: F(m).normalize(x), ((3, 4),)),
    Op("F.normalize", lambda m, x: F(m).normalize(x, p=1, dim=0), ((3, 4),), note="p=1,dim=0"),
    Op("F.silu", lambda m, x: F(m).silu(3 * x), ((3, 4),)),
    Op("F.softplus", lambda m, x: F(m).softplus(10 * x, beta=2, threshold=5), ((3, 4),), domain="distinct"),
    Op("F.leaky_relu", lambda m, x: F(m).leaky_relu(x, 0.2), ((3, 4),), domain="distinct"),
    Op("F.leaky_relu", lambda m, x: F(m).leaky_relu(x * 1, 0.2, inplace=True), ((3, 4),), domain="distinct",
       note="inplace"),
    Op("F.silu", lambda m, x: F(m).silu(x * 1, inplace=True), ((3, 4),), note="inplace"),
    Op("F.softmax", lambda m, x: F(m).softmax(x, dim=-1), ((),), note="0-d"),
    Op("F.log_softmax", lambda m, x: F(m).log_softmax(x, 0), ((),), note="0-d"),
    Op("F.cross_entropy", lambda m, x, p: F(m).cross_entropy(x, p), ((4, 5), (4, 5)), domain=("normal", "positive"),
       note="probabilities"),
    Op("F.cross_entropy", lambda m, x, p: F(m).cross_entropy(x, p, reduction="none", label_smoothing=0.3),
       ((2, 4, 3), (2, 4, 3)), domain=("normal", "positive"), note="probabilities-3d-smoothing"),
    Op("F.cross_entropy", lambda m, x: F(m).cross_entropy(x, m.tensor(2)), ((5,),), note="unbatched"),
    Op("F.nll_loss", lambda m, x: F(m).nll_loss(x.log_softmax(1), m.tensor(TARGETS)), ((3, 4),)),
    Op("F.nll_loss", lambda m, x: F(m).nll_loss(x, m.tensor(TARGETS_3D), reduction="sum", ignore_index=1),
       ((2, 4, 3),), note="3d-sum"),
    Op("F.mse_loss", lambda m, x, y, w: F(m).mse_loss(x, y, weight=w), ((3, 4),) * 3,
       domain=("normal", "normal", "positive"), note="weight"),
    Op("F.l1_loss", lambda m, x, y: F(m).l1_loss(x, y), ((3, 4), (3, 4))),
    Op("F.l1_loss", lambda m, x, y, w: F(m).l1_loss(x, y, reduction="sum", weight=w), ((3, 4),) * 3,
       domain=("normal", "normal", "positive"), note="weight"),
    Op("F.binary_cross_entropy", lambda m, x, y: F(m).binary_cross_entropy(x.sigmoid(), y.sigmoid()), ((3, 4),) * 2),
    Op("F.binary_cross_entropy", lambda m, x, y: F(m).binary_cross_entropy(
        x.sigmoid(), y.sigmoid(), weight=m.tensor(WEIGHTS, dtype=x.dtype), reduction="none"), ((3, 4),) * 2,
       note="weight"),
    Op("F.binary_cross_entropy_with_logits", lambda m, x, y: F(m).binary_cross_entropy_with_logits(3 * x, y.sigmoid()),
       ((3, 4),) * 2),
    Op("F.binary_cross_entropy_with_logits", lambda m, x, y: F(m).binary_cross_entropy_with_logits(
        3 * x, y.sigmoid(), weight=m.tensor(WEIGHTS, dtype=x.dtype), reduction="sum",
        pos_weight=m.tensor(3 * WEIGHTS, dtype=x.dtype)), ((3, 4),) * 2, note="weights"),
    Op("F.conv1d", lambda m, x, w, b: F(m).conv1d(x, w, b), ((2, 3, 7), (4, 3, 3), (4,))),
    Op("F.conv1d", lambda m, x, w, b: F(m).conv1d(x, w, b, stride=2, padding=1, dilation=2, groups=2),
       ((2, 4, 9), (6, 2, 3), (6,)), note="stride-padding-dilation-groups"),
    Op("F.conv1d", lambda m, x, w: F(m).conv1d(x, w, padding="same", dilation=2), ((3, 6), (2, 3, 3)),
       note="unbatched-same"),
    Op("F.batch_norm", lambda m, x, w, b: F(m).batch_norm(x, m.zeros(3, dtype=x.dtype), m.ones(3, dtype=x.dtype),
                                                         w, b, training=True), ((4, 3, 2), (3,), (3,)),
       note="training"),
    Op("F.batch_norm", lambda m, x, w, b: F(m).batch_norm(x, m.tensor(WEIGHTS[:3], dtype=x.dtype),
                                                         m.tensor(1 + WEIGHTS[1:], dtype=x.dtype), w, b),
       ((5, 3), (3,), (3,)), note="eval"),
    Op("F.embedding", lambda m, w: F(m).embedding(m.tensor(IDX), w, padding_idx=4), ((5, 3),), note="padding_idx",
       gradcheck=False),   # by design not the derivative: the padding row gets none, as in PyTorch
    Op("F.interpolate", lambda m, x: F(m).interpolate(x, scale_factor=2.5), ((2, 3, 4),), note="nearest"),
    Op("F.interpolate", lambda m, x: F(m).interpolate(x, size=7, mode="linear"), ((2, 3, 5),), note="linear"),
    Op("F.interpolate", lambda m, x: F(m).interpolate(x, size=(5, 2), mode="bilinear", align_corners=True),
       ((1, 2, 3, 4),), note="bilinear-align_corners"),
    Op("F.cosine_similarity", lambda m, a, b: F(m).cosine_similarity(a, b), ((3, 4), (3, 4))),
    Op("F.cosine_similarity", lambda m, a, b: m.cosine_similarity(a, b, 0), ((3, 4), (3, 1)), note="torch-broadcast"),
    Op("F.cosine_similarity", lambda m, a, b: F(m).cosine_similarity(a * 0.1, b, dim=-1, eps=0.5), ((2, 1, 4), (3, 4)),
       gradcheck=False, note="norm-below-eps"),   # PyTorch raises the norm to eps unrecorded: not the derivative
    Op("F.logsigmoid", lambda m, x: F(m).logsigmoid(10 * x), ((3, 4),)),
]

def seeded(draw):
    """A random row's fn: manual_seed, then draw(m, *xs), so both libraries draw from the same state."""
    return lambda m, *xs: (m.manual_seed(1337), draw(m, *xs))[1]


CATEGORY_WEIGHTS = (np.array([[0.1, 0.5, 0.2, 0.2], [1.0, 0.0, 3.0, 2.0]]),)   # unnormalised, a zero among them

RANDOM = [   # the same draws as PyTorch's for the same seed (tests/test_rng.py: every size, dtype and path)
    Op("manual_seed", seeded(lambda m: m.tensor(m.initial_seed())), values=(), differentiable=False),
    Op("Generator", lambda m: m.randn(20, generator=m.Generator().manual_seed(7)), values=(), differentiable=False),
    Op("rand", seeded(lambda m: m.rand(3, 5)), values=(), differentiable=False),
    Op("randn", seeded(lambda m: m.randn(4, 9)), values=(), differentiable=False, note="blocks of 16"),
    Op("randn", seeded(lambda m: m.randn(5)), values=(), differentiable=False, note="below 16"),
    Op("randint", seeded(lambda m: m.randint(-3, 12, (4, 6))), values=(), differentiable=False),
    Op("randperm", seeded(lambda m: m.randperm(50)), values=(), differentiable=False),
    Op("multinomial", seeded(lambda m, p: m.multinomial(p, 1)), values=CATEGORY_WEIGHTS, differentiable=False),
    Op("multinomial", seeded(lambda m, p: m.multinomial(p, 5, replacement=True)), values=CATEGORY_WEIGHTS,
       differentiable=False, note="replacement"),
    Op("normal", seeded(lambda m: m.normal(1.0, 2.0, size=(3, 7))), values=(), differentiable=False),
    Op("normal", seeded(lambda m, mean, std: m.normal(mean, std)), ((3, 4), (4,)), domain=("normal", "positive"),
       gradcheck=False, note="tensors: zero gradients"),
    Op("bernoulli", seeded(lambda m, p: m.bernoulli(p.detach())), values=(np.linspace(0, 1, 12),),
       differentiable=False),
    Op("rand_like", seeded(lambda m, x: m.rand_like(x)), ((2, 9),), differentiable=False),
    Op("randn_like", seeded(lambda m, x: m.randn_like(x)), ((2, 9),), differentiable=False),
    Op("randint_like", seeded(lambda m, x: m.randint_like(x, 4, 9)), ((2, 9),), differentiable=False),
    Op("normal_", seeded(lambda m, x: x.detach().normal_(0.5, 2.0)), ((3, 6),), differentiable=False),
    Op("uniform_", seeded(lambda m, x: x.detach().uniform_(-2.0, 3.0)), ((3, 6),), differentiable=False),
    Op("random_", seeded(lambda m, x: x.detach().random_(3, 10)), ((3, 6),), differentiable=False),
    Op("bernoulli_", seeded(lambda m, x: x.detach().bernoulli_(0.3)), ((3, 6),), differentiable=False),
    Op("exponential_", seeded(lambda m, x: x.detach().exponential_(2.0)), ((3, 6),), differentiable=False),
]

ROWS = ELEMENTWISE + REDUCTIONS + MOVEMENT + CREATION + CONVERSION + IN_PLACE + FUNCTIONAL + RANDOM


# ---------------------------------------------------------------- 1. value and gradient against PyTorch, 2. gradcheck


def flat(value):
    """A result as a list of arrays and Python values, for comparison (tuples and named tuples unpacked)."""
    if isinstance(value, tuple):
        return [v for part in value for v in flat(part)]
    if hasattr(value, "detach"):
        return [value.detach().numpy()]
    return [np.asarray(value) if isinstance(value, list) else value]


def first(value):
    """The tensor a gradient flows back from: the result, or the first of a tuple (max's values, topk's)."""
    return value[0] if isinstance(value, tuple) else value


MATCH_TORCH = ([pytest.param(row, np.float64, id=f"float64-{row}") for row in ROWS]
               + [pytest.param(row, np.float32, id=f"float32-{row}") for row in ROWS
                  if row.shapes and row.values is None])


@pytest.mark.parametrize("row, dtype", MATCH_TORCH)
def test_value_and_gradient_match_torch(row, dtype, rng, torch):
    arrays = row.inputs(rng, dtype)
    our_inputs, ours = row.run(tl, arrays)
    their_inputs, theirs = row.run(torch, arrays)
    close = tolerances(dtype)
    for got, want in zip(flat(ours), flat(theirs), strict=True):
        if isinstance(want, np.ndarray):
            assert isinstance(got, np.ndarray) and (got.shape, got.dtype) == (want.shape, want.dtype), (got, want)
            np.testing.assert_allclose(got, want, **tolerances(np.float32 if want.dtype == np.float32 else dtype))
        elif isinstance(want, float):
            assert got == pytest.approx(want, rel=close["rtol"], abs=close["atol"], nan_ok=True)
        else:   # ints, bools, strings: exactly, and of the same type
            assert got == want and type(got) is type(want), (got, want)
    if not row.differentiable:
        return
    out, ref = first(ours), first(theirs)
    upstream = np.asarray(rng.standard_normal(out.shape), dtype)   # a random upstream gradient, not just ones
    out.backward(upstream)
    ref.backward(torch.from_numpy(upstream))
    for i, (x, tx) in enumerate(zip(our_inputs, their_inputs)):
        if tx.grad is None:
            assert x.grad is None or not x.grad.numpy().any(), f"input {i}: torch gives no gradient"
            continue
        assert x.grad is not None, f"input {i} got no gradient"
        assert x.grad.dtype == tx.grad.numpy().dtype, f"input {i}"
        np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), **close, err_msg=f"input {i}")


@pytest.mark.parametrize("row", [row for row in ROWS if row.differentiable and row.gradcheck and row.shapes
                                 and row.values is None], ids=str)
def test_gradcheck(row, rng):
    inputs = [Tensor(x, requires_grad=True) for x in row.inputs(rng, np.float64)]
    report = gradcheck(lambda *xs: first(row.fn(tl, *xs)), inputs)
    assert report.mode == "jacobian" and report.passed


@pytest.mark.parametrize("wrap", [np.asarray, Tensor], ids=["array", "Tensor"])
def test_backward_grad_takes_the_output_dtype(wrap):
    x = tensor(np.ones(3, np.float32))
    (x * 2.0).backward(wrap(np.ones(3)))  # a float64 upstream gradient must not upcast float32 gradients
    assert x.grad.dtype == np.float32


def test_arange_and_lerp_give_pytorchs_numbers_to_the_bit(torch):
    """The table compares within a tolerance; these two compute as PyTorch's CPU kernels do (the multiply-add rounded
    once, arange's vectors of AVX2's width), so their numbers are PyTorch's exactly, where NumPy's arange and a plain
    lerp differ in the last bit."""
    for args in [(-3.3, 10.1, 0.7), (0, 300, 0.0137), (3, -7, -0.013), (1e6, 1e6 + 1, 0.1), (0.5, 2.7, 0.3)]:
        for dtype in (np.float32, np.float64):
            theirs = torch.arange(*args, dtype=getattr(torch, dtype.__name__)).numpy()
            assert np.array_equal(tl.arange(*args, dtype=dtype).numpy(), theirs), (args, dtype)
    rng = np.random.default_rng(0)
    start, end, weight = rng.standard_normal((3, 1000))
    weight = weight + 0.5   # both of PyTorch's formulas
    for dtype in (np.float32, np.float64):
        ours = tl.lerp(*(tl.tensor(a.astype(dtype)) for a in (start, end, weight)))
        theirs = torch.lerp(*(torch.tensor(a.astype(dtype)) for a in (start, end, weight)))
        assert np.array_equal(ours.numpy(), theirs.numpy()), dtype
        assert np.array_equal(tl.tensor(start.astype(dtype)).lerp(tl.tensor(end.astype(dtype)), 0.7).numpy(),
                              torch.tensor(start.astype(dtype)).lerp(torch.tensor(end.astype(dtype)), 0.7).numpy())


def test_python_numbers_take_the_tensor_dtype():
    for dtype in (np.float32, np.float64):
        x = tensor(np.ones(3, dtype))
        for out in (x + 1, 2 * x, x / 3.0, 1.0 - x, x ** 2, 2.0 ** x, movement.where(MASK[0, :3], x, 0.5)):
            assert out.dtype == dtype


# ---------------------------------------------------------------- 3. errors name the op and the shapes


class Error:
    """call() raises `exception`, whose message holds each of `says` (the op, the shapes, the argument) verbatim."""

    def __init__(self, name, call, exception, *says):
        self.name, self.call, self.exception, self.says = name, call, exception, says

    def __str__(self):
        return self.name


def x23():
    return tl.ones(2, 3, requires_grad=True)


def _x(*shape, dtype=np.float64):
    return Tensor(np.ones(shape, dtype))


ERRORS = [
    # elementwise
    Error("+", lambda: x23() + tl.ones(4), ValueError, "add: shapes (2, 3) and (4,)"),
    Error("+", lambda: _x(2) + _x(2, dtype=np.float32), TypeError, "add", "float64", "float32"),
    Error("-", lambda: tl.tensor([True]) - tl.tensor([1]), TypeError, "sub: subtraction with a bool"),
    Error("*", lambda: x23() * "a", TypeError, "mul: cannot combine a Tensor with str"),
    Error("*", lambda: _x(2, 3) * _x(2, 2), ValueError, "mul", "(2, 3)", "(2, 2)"),
    Error("/", lambda: x23() / tl.ones((3, 2)), ValueError, "div: shapes"),
    Error("**", lambda: tl.tensor([2]) ** -1, ValueError, "pow: integers to negative integer powers"),
    Error("@", lambda: x23() @ x23(), ValueError, "matmul: shapes (2, 3) and (2, 3) do not align"),
    Error("@", lambda: _x(2, 3, 4) @ _x(3, 4, 2), ValueError, "matmul", "(2,)", "(3,)"),
    Error("@", lambda: _x() @ _x(3), ValueError, "matmul", "()", "(3,)"),
    Error("@", lambda: _x(2, 2, dtype=np.float32) @ _x(2, 2), TypeError, "matmul", "float32", "float64"),
    Error("matmul", lambda: tl.matmul(tl.tensor(1.0), x23()), ValueError, "matmul: operands must have at least one"),
    Error("neg", lambda: ops.neg([1.0]), TypeError, "neg: expects a Tensor"),
    Error("maximum", lambda: tl.maximum(x23(), tl.ones(2)), ValueError, "maximum: shapes (2, 3) and (2,)"),
    Error("maximum", lambda: tl.maximum(1.0, 2.0), TypeError,
          "maximum: needs a Tensor among its inputs, got float, float"),
    Error("minimum", lambda: tl.minimum(x23(), tl.ones(4)), ValueError, "minimum: shapes"),
    Error("exp", lambda: tl.exp([1.0]), TypeError, "exp: expects a Tensor, got list"),
    Error("log", lambda: tl.log(np.ones(2)), TypeError, "log: expects a Tensor, got ndarray"),
    Error("sqrt", lambda: tl.sqrt(2.0), TypeError, "sqrt: expects a Tensor, got float"),
    Error("tanh", lambda: tl.tanh([0.5]), TypeError, "tanh: expects a Tensor"),
    Error("sigmoid", lambda: tl.sigmoid(None), TypeError, "sigmoid: expects a Tensor, got NoneType"),
    Error("relu", lambda: tl.relu(np.ones(2)), TypeError, "relu: expects a Tensor"),
    Error("erf", lambda: tl.erf((1.0,)), TypeError, "erf: expects a Tensor"),
    Error("abs", lambda: tl.abs([-1]), TypeError, "abs: expects a Tensor"),
    Error("clamp", lambda: x23().clamp(2, 1), ValueError, "clamp: min 2 is above max 1"),
    Error("eq", lambda: x23() == tl.ones(4), ValueError, "eq: shapes"),
    Error("ne", lambda: x23() != tl.ones(4), ValueError, "ne: shapes"),
    Error("lt", lambda: x23() < "a", TypeError, "lt: cannot combine"),
    Error("le", lambda: x23() <= tl.ones(5), ValueError, "le: shapes"),
    Error("gt", lambda: x23() > tl.ones(5), ValueError, "gt: shapes"),
    Error("ge", lambda: x23() >= tl.ones(5), ValueError, "ge: shapes"),
    Error("and", lambda: x23() & x23(), TypeError, "and: needs bool or integer"),
    Error("or", lambda: x23() | x23(), TypeError, "or: needs bool or integer"),
    Error("xor", lambda: x23() ^ x23(), TypeError, "xor: needs bool or integer"),
    Error("logical_not", lambda: tl.logical_not([1]), TypeError, "logical_not: expects a Tensor, got list"),
    Error("bitwise_not", lambda: ~x23(), TypeError, "bitwise_not: ~ needs a bool or integer tensor, got float32"),
    Error("allclose", lambda: tl.allclose(x23(), _x(2, 3)), TypeError, "allclose: dtypes differ (float32 and float64)"),
    Error("allclose", lambda: tl.allclose(x23(), tl.ones(4)), ValueError, "allclose: shapes (2, 3) and (4,)"),
    Error("add", lambda: tl.tensor([1, 2]).add(1, alpha=0.5), TypeError,
          "add: alpha=0.5 is a float and the operands are integers"),
    Error("add", lambda: x23().add(tl.ones(4)), ValueError, "add: shapes (2, 3) and (4,)"),
    Error("sub", lambda: tl.tensor([1]).sub(tl.tensor([2]), alpha=1.5), TypeError, "sub: alpha=1.5 is a float"),
    Error("mul", lambda: x23().mul("a"), TypeError, "mul: cannot combine a Tensor with str"),
    Error("div", lambda: x23().div(2, rounding_mode="round"), ValueError,
          "div: rounding_mode must be None, 'floor' or 'trunc', got 'round'"),
    Error("div", lambda: tl.tensor([1, 2]).div(tl.tensor([1, 0]), rounding_mode="trunc"), ZeroDivisionError,
          "div: integer division by zero"),
    Error("div", lambda: tl.tensor([True]).div(True, rounding_mode="floor"), TypeError,
          "div: rounding_mode='floor' is not defined for bool operands"),
    Error("pow", lambda: tl.tensor([2]).pow(-1), ValueError, "pow: integers to negative integer powers"),
    Error("matmul", lambda: x23().matmul(x23()), ValueError, "matmul: shapes (2, 3) and (2, 3) do not align"),
    Error("//", lambda: tl.tensor([1, 2]) // 0, ZeroDivisionError, "div: integer division by zero"),
    Error("//", lambda: x23() // tl.ones(4), ValueError, "div: shapes (2, 3) and (4,)"),
    Error("%", lambda: tl.tensor([1, 2]) % tl.tensor([0, 1]), ZeroDivisionError,
          "remainder: integer division by zero (divisor (2,))"),
    Error("%", lambda: tl.tensor([True]) % True, TypeError, "remainder: not defined for bool operands"),
    Error("sin", lambda: tl.sin([1.0]), TypeError, "sin: expects a Tensor, got list"),
    Error("cos", lambda: tl.cos(1.0), TypeError, "cos: expects a Tensor, got float"),
    Error("rsqrt", lambda: tl.rsqrt(np.ones(2)), TypeError, "rsqrt: expects a Tensor, got ndarray"),
    Error("log2", lambda: tl.log2([2]), TypeError, "log2: expects a Tensor"),
    Error("log1p", lambda: tl.log1p(None), TypeError, "log1p: expects a Tensor, got NoneType"),
    Error("square", lambda: tl.square([2]), TypeError, "square: expects a Tensor"),
    Error("floor", lambda: tl.tensor([True]).floor(), TypeError, "floor: not defined for a bool tensor"),
    Error("ceil", lambda: tl.ceil([1.5]), TypeError, "ceil: expects a Tensor"),
    Error("tan", lambda: tl.tan([1.0]), TypeError, "tan: expects a Tensor, got list"),
    Error("sinh", lambda: tl.sinh(1.0), TypeError, "sinh: expects a Tensor, got float"),
    Error("cosh", lambda: tl.cosh(np.ones(2)), TypeError, "cosh: expects a Tensor, got ndarray"),
    Error("asin", lambda: tl.asin([0.5]), TypeError, "asin: expects a Tensor"),
    Error("acos", lambda: tl.acos(None), TypeError, "acos: expects a Tensor, got NoneType"),
    Error("atan", lambda: tl.atan((1.0,)), TypeError, "atan: expects a Tensor"),
    Error("atan2", lambda: tl.atan2(x23(), tl.ones(4)), ValueError, "atan2: shapes (2, 3) and (4,)"),
    Error("exp2", lambda: tl.exp2([1]), TypeError, "exp2: expects a Tensor"),
    Error("reciprocal", lambda: tl.reciprocal(2.0), TypeError, "reciprocal: expects a Tensor, got float"),
    Error("lerp", lambda: tl.lerp(tl.tensor([1, 2]), tl.tensor([3, 4]), 0.5), TypeError,
          "lerp: needs a floating tensor, got int64 (2,)"),
    Error("lerp", lambda: tl.lerp(x23(), _x(2, 3), 0.5), TypeError,
          "lerp: end must be a Tensor of input's dtype float32, got float64 (2, 3)"),
    Error("lerp", lambda: x23().lerp(x23(), "a"), TypeError,
          "lerp: weight must be a Tensor of input's dtype float32 or a number, got str"),
    Error("lerp", lambda: x23().lerp(tl.ones(4), 0.5), ValueError, "lerp: shapes (2, 3) and (4,) and ()"),
    Error("sign", lambda: tl.sign([1]), TypeError, "sign: expects a Tensor"),
    Error("trunc", lambda: tl.tensor([True]).trunc(), TypeError, "trunc: not defined for a bool tensor"),
    Error("round", lambda: tl.tensor([1, 2]).round(decimals=1), TypeError,
          "round: decimals=1 needs a floating tensor, got int64"),
    Error("round", lambda: x23().round(decimals=0.5), TypeError, "round: decimals must be an int, got 0.5"),
    Error("frac", lambda: tl.tensor([1, 2]).frac(), TypeError, "frac: needs a floating tensor, got int64 (2,)"),
    Error("clamp", lambda: x23().clamp(min=tl.zeros(3)), TypeError, "clamp: min and max must be numbers here"),
    Error("clamp_min", lambda: x23().clamp_min(tl.zeros(3)), TypeError, "clamp: min and max must be numbers"),
    Error("clamp_max", lambda: tl.clamp_max(x23(), None), ValueError, "clamp: give min, max or both"),
    Error("neg", lambda: -tl.tensor([True]), TypeError, "neg: negation, the `-` operator, on a bool tensor"),
    Error("isnan", lambda: tl.isnan([1.0]), TypeError, "isnan: expects a Tensor, got list"),
    Error("isinf", lambda: tl.isinf(1.0), TypeError, "isinf: expects a Tensor, got float"),
    Error("isfinite", lambda: tl.isfinite(np.ones(2)), TypeError, "isfinite: expects a Tensor, got ndarray"),
    Error("logical_and", lambda: tl.logical_and(x23(), tl.ones(4)), ValueError, "logical_and: shapes (2, 3) and (4,)"),
    Error("logical_or", lambda: x23().logical_or(1), TypeError, "logical_or: expects a Tensor, got int"),
    Error("logical_xor", lambda: tl.logical_xor(x23(), tl.ones(3, 2)), ValueError, "logical_xor: shapes"),
    Error("mm", lambda: tl.mm(tl.ones(3), tl.ones(3, 2)), ValueError,
          "mm: expects two matrices (2-d), got shapes (3,) and (3, 2)"),
    Error("mm", lambda: tl.mm(x23(), tl.ones(4, 2)), ValueError, "mm: shapes (2, 3) and (4, 2) cannot be multiplied"),
    Error("mm", lambda: tl.mm(tl.ones(2, 2, dtype=tl.int64), tl.ones(2, 2)), TypeError,
          "mm: expects operands of one dtype, got int64 and float32"),
    Error("bmm", lambda: tl.bmm(tl.ones(2, 2, 3), tl.ones(3, 3, 2)), ValueError,
          "bmm: shapes (2, 2, 3) and (3, 3, 2) cannot be multiplied"),
    Error("bmm", lambda: tl.bmm(x23(), tl.ones(3, 2)), ValueError, "bmm: expects two batches of matrices (3-d)"),
    Error("mv", lambda: tl.mv(tl.ones(3, 2), tl.ones(3)), ValueError, "mv: shapes (3, 2) and (3,) cannot be"),
    Error("dot", lambda: tl.dot(tl.ones(3), tl.ones(4)), ValueError, "dot: shapes (3,) and (4,) cannot be multiplied"),
    Error("dot", lambda: tl.dot(tl.ones(3, 1), tl.ones(3)), ValueError,
          "dot: expects two vectors (1-d), got shapes (3, 1) and (3,)"),
    Error("outer", lambda: tl.outer(tl.ones(3, 2), tl.ones(3)), ValueError,
          "outer: expects two vectors (1-d), got shapes (3, 2) and (3,)"),
    Error("addmm", lambda: tl.addmm(tl.ones(3, 3), tl.ones(2, 3), tl.ones(3, 2)), ValueError,
          "addmm: input (3, 3) cannot be broadcast to the product's shape (2, 2)"),
    Error("addmm", lambda: tl.addmm(tl.ones(2, dtype=tl.int64), tl.ones(2, 3, dtype=tl.int64),
                                    tl.ones(3, 2, dtype=tl.int64), beta=0.5), TypeError,
          "addmm: beta=0.5 is a float and the operands are integers"),
    Error("addmm", lambda: tl.addmm(_x(2), tl.ones(2, 3), tl.ones(3, 2)), TypeError,
          "addmm: input is float64, the matrices float32"),
    Error("baddbmm", lambda: tl.baddbmm(tl.ones(2), x23(), tl.ones(3, 2)), ValueError,
          "baddbmm: expects two batches of matrices (3-d), got shapes (2, 3) and (3, 2)"),
    Error("backward", lambda: (_x(2, 3) * Tensor(np.ones(3), requires_grad=True)).backward(np.ones(3)), ValueError,
          "backward", "(3,)", "(2, 3)"),
    # reductions
    Error("sum", lambda: x23().sum(dim=2), ValueError, "sum: axis 2 is out of range"),
    Error("sum", lambda: _x(2, 3, 4).sum(axis=(1, -2)), ValueError, "sum", "(1, -2)", "twice"),
    Error("mean", lambda: tl.tensor([1, 2]).mean(), TypeError, "mean: needs a floating tensor"),
    Error("var", lambda: tl.tensor([1]).var(), TypeError, "var: needs a floating tensor, got int64"),
    Error("var", lambda: x23().var(0, unbiased=True, correction=0), TypeError,
          "var: pass unbiased or correction, not both"),
    Error("var", lambda: x23().var(dim=3), ValueError, "var: axis 3 is out of range"),
    Error("std", lambda: tl.tensor([1]).std(), TypeError, "std: needs a floating tensor"),
    Error("amax", lambda: tl.zeros(0, 3).amax(dim=0), ValueError, "max: cannot reduce axis 0"),
    Error("amin", lambda: x23().amin(dim=(0, 0)), ValueError, "names the same axis twice"),
    Error("max", lambda: x23().max(dim=4), ValueError, "argmax: axis 4 is out of range"),
    Error("amax", lambda: _x(2, 3).amax(axis=(0, 0)), ValueError, "max", "(0, 0)", "twice"),
    Error("min", lambda: tl.zeros(2, 0).min(dim=1), ValueError, "argmin: cannot search axis 1"),
    Error("norm", lambda: x23().norm(p=-1), ValueError, "norm: p must be a positive number"),
    Error("argmax", lambda: x23().argmax(dim=-3), ValueError, "argmax: axis -3 is out of range"),
    Error("argmin", lambda: tl.zeros(0).argmin(), ValueError, "argmin: cannot search"),
    Error("topk", lambda: x23().topk(4, dim=1), ValueError, "topk: k = 4 is out of range"),
    Error("max", lambda: x23().max(dim=(0, 1)), TypeError, "max: dim must be one axis (an int), got (0, 1)"),
    Error("sum", lambda: tl.tensor(2.0).sum(1), ValueError, "sum: axis 1 is out of range for a tensor with 0 axes"),
    Error("prod", lambda: x23().prod(dim=(0, 1)), TypeError, "prod: dim must be one axis (an int) or None"),
    Error("prod", lambda: x23().prod(2), ValueError, "prod: axis 2 is out of range"),
    Error("cumsum", lambda: x23().cumsum(2), ValueError, "cumsum: axis 2 is out of range"),
    Error("all", lambda: x23().all(dim=3), ValueError, "all: axis 3 is out of range"),
    Error("any", lambda: x23().any(dim=0, axis=1), TypeError, "any: pass dim or axis, not both"),
    Error("sort", lambda: x23().sort(dim=2), ValueError, "sort: axis 2 is out of range"),
    Error("logsumexp", lambda: x23().logsumexp(2), ValueError, "logsumexp: axis 2 is out of range"),
    Error("logsumexp", lambda: tl.logsumexp([1.0], 0), TypeError, "logsumexp: expects a Tensor, got list"),
    Error("cumprod", lambda: x23().cumprod(2), ValueError, "cumprod: axis 2 is out of range"),
    Error("var_mean", lambda: tl.var_mean(tl.tensor([1, 2])), TypeError, "var: needs a floating tensor, got int64"),
    Error("std_mean", lambda: tl.std_mean(x23(), 0, unbiased=True, correction=0), TypeError,
          "std: pass unbiased or correction, not both"),
    Error("median", lambda: tl.median(tl.zeros(0, 2), 1), ValueError, "median: an empty tensor (0, 2) has no median"),
    Error("median", lambda: x23().median(dim=(0, 1)), TypeError, "median: dim must be one axis (an int), got (0, 1)"),
    Error("median", lambda: x23().median(2), ValueError, "median: axis 2 is out of range"),
    Error("argsort", lambda: x23().argsort(dim=2), ValueError, "argsort: axis 2 is out of range"),
    Error("count_nonzero", lambda: tl.count_nonzero(x23(), dim=3), ValueError, "count_nonzero: axis 3 is out of range"),
    Error("unique", lambda: tl.unique([1, 2]), TypeError, "unique: expects a Tensor, got list"),
    Error("unique", lambda: x23().unique(dim=2), ValueError, "unique: axis 2 is out of range"),
    Error("bincount", lambda: tl.bincount(tl.tensor([-1, 2])), ValueError,
          "bincount: only supports a vector of non-negative integers, got int64 (2,)"),
    Error("bincount", lambda: tl.bincount(tl.tensor([[1.0]])), ValueError, "bincount", "float32 (1, 1)"),
    Error("bincount", lambda: tl.bincount(tl.tensor([1, 2]), weights=tl.ones(3)), ValueError,
          "bincount: weights (3,) must be a vector of the input's length (2,)"),
    Error("bincount", lambda: tl.bincount(tl.tensor([1]), minlength=-1), ValueError,
          "bincount: minlength should be a whole number >= 0, got -1"),
    # movement and indexing
    Error("reshape", lambda: x23().reshape(4, 2), ValueError, "reshape: cannot reshape (2, 3)", "(4, 2)"),
    Error("view", lambda: x23().view(5), ValueError, "reshape: cannot reshape"),
    Error("unsqueeze", lambda: x23().unsqueeze(4), ValueError, "unsqueeze: axis 4 is out of range"),
    Error("squeeze", lambda: x23().squeeze(3), ValueError, "squeeze: axis 3 is out of range"),
    Error("flatten", lambda: x23().flatten(1, 0), ValueError, "flatten: start_dim 1 comes after end_dim 0"),
    Error("permute", lambda: x23().permute(0, 0), ValueError, "permute: (0, 0) is not an ordering", "(2, 3)"),
    Error("permute", lambda: x23().permute(0, 3), ValueError, "permute: (0, 3) is not an ordering", "(2, 3)"),
    Error("transpose", lambda: x23().transpose(0, 3), ValueError, "transpose: axis 3 is out of range"),
    Error("T", lambda: _x(3).T, ValueError, "transpose", "1 axes"),
    Error("t", lambda: tl.zeros(2, 3, 4).t(), ValueError, "t: expects a tensor of at most 2 axes"),
    Error("expand", lambda: x23().expand(4, 3), ValueError, "expand: shape (2, 3) cannot be expanded"),
    Error("repeat", lambda: x23().repeat(2), ValueError, "repeat: needs one count >= 0 per axis"),
    Error("take_along_dim", lambda: tl.take_along_dim(x23(), np.zeros(2, int), 1), ValueError,
          "take_along_dim: indices"),
    Error("getitem", lambda: x23()[5], IndexError, "getitem: index 5 does not fit"),
    Error("getitem", lambda: _x(3, 4)[:, [0, 4]], IndexError, "getitem", "(3, 4)"),
    Error("cat", lambda: tl.cat([x23(), tl.ones(2, 4)]), ValueError, "concat: shapes", "(2, 3)", "(2, 4)"),
    Error("cat", lambda: tl.cat([]), ValueError, "concat: expected a non-empty list of Tensors"),
    Error("cat", lambda: tl.cat(()), ValueError, "concat: expected a non-empty list of Tensors"),
    Error("cat", lambda: tl.cat(x23()), TypeError, "concat: expected a list of Tensors, got a single Tensor (2, 3)"),
    Error("cat", lambda: tl.cat([np.ones(3)]), TypeError, "concat: needs a Tensor among its inputs, got ndarray"),
    Error("cat", lambda: tl.cat([_x(2), _x(2, dtype=np.float32)]), TypeError, "concat", "float32"),
    Error("stack", lambda: tl.stack([x23(), tl.ones(3, 2)]), ValueError, "stack: all inputs must have one shape",
          "(2, 3)", "(3, 2)"),
    Error("stack", lambda: tl.stack([]), ValueError, "stack: expected a non-empty list of Tensors"),
    Error("split", lambda: x23().split([1, 1], dim=1), ValueError, "split: sizes", "(2, 3)"),
    Error("split", lambda: x23().split([4, -1], dim=1), ValueError,
          "split: sizes must be whole numbers >= 0, got [4, -1"),
    Error("split", lambda: x23().split(1.5, dim=1), ValueError, "split: split_size must be a whole number, at least 1"),
    Error("split", lambda: _x(2, 5).split(0, axis=1), ValueError, "split", "at least 1", "0"),
    Error("where", lambda: tl.where(np.ones(4, bool), x23(), 0.0), ValueError, "where: shapes (4,)"),
    Error("where", lambda: movement.where(np.ones(4, bool), _x(3), _x(3)), ValueError, "where", "(4,)", "(3,)"),
    Error("where", lambda: tl.where(tl.tensor([1, 0]), 1.0, 2.0), TypeError,
          "where: the condition must be a bool tensor, got int64"),
    Error("where", lambda: tl.where(np.ones(2, bool), 1.0), TypeError, "where: give both input and other"),
    Error("masked_fill", lambda: x23().masked_fill(np.ones(4, bool), 0.0), ValueError, "where: shapes"),
    Error("masked_fill", lambda: x23().masked_fill(np.ones(3, int), 0.0), TypeError,
          "masked_fill: the condition must be a bool tensor, got int64"),
    Error("masked_fill", lambda: x23().masked_fill(np.ones(3, bool), tl.ones(1)), ValueError,
          "masked_fill: the value must be a number or a 0-d tensor, got shape (1,)"),
    Error("masked_fill", lambda: tl.tensor([1, 2]).masked_fill(np.ones(2, bool), float("inf")), OverflowError,
          "masked_fill: inf cannot be converted to int64"),
    Error("setitem", lambda: x23().__setitem__(0, 1.0), RuntimeError, "setitem: (2, 3) is a leaf tensor"),
    Error("setitem", lambda: tl.ones(2, 3).__setitem__(0, [1.0]), TypeError, "setitem: can't assign a list"),
    Error("setitem", lambda: tl.ones(2, 3).__setitem__(0, tl.ones(2)), ValueError,
          "setitem: a value of shape (2,) cannot be broadcast to the indexed shape (3,) (tensor (2, 3))"),
    Error("setitem", lambda: tl.ones(2, 3).__setitem__([0], tl.ones(3, dtype=tl.float64)), TypeError,
          "setitem: with an array index the value's dtype must be the tensor's", "float64", "float32"),
    Error("setitem", lambda: tl.zeros(3, dtype=tl.int32).__setitem__(0, 2 ** 40), OverflowError,
          "setitem: 1099511627776 cannot be converted to int32"),
    Error("gather", lambda: tl.gather(x23(), 1, tl.tensor([[3]])), IndexError,
          "gather: index 3 is out of bounds for dim 1 of the tensor (2, 3)"),
    Error("gather", lambda: tl.gather(x23(), 1, tl.tensor([[-1]])), IndexError, "gather: index -1 is out of bounds"),
    Error("gather", lambda: tl.gather(x23(), 1, tl.tensor([[0], [1], [2]])), ValueError,
          "gather: index (3, 1) must have the axes of the tensor (2, 3), be no longer than it apart from dim 1"),
    Error("gather", lambda: tl.gather(x23(), 1, tl.tensor([[0.0]])), TypeError, "gather: index must be integers"),
    Error("index_select", lambda: tl.index_select(x23(), 1, tl.tensor([[1]])), IndexError,
          "index_select: index must be a vector of integers, got int64 (1, 1)"),
    Error("index_select", lambda: tl.index_select(x23(), 1, tl.tensor([-1])), IndexError,
          "index_select: index -1 is out of bounds for dim 1 of the tensor (2, 3)"),
    Error("scatter", lambda: tl.zeros(2, 3).scatter(1, tl.tensor([[0]]), tl.tensor([[1]])), TypeError,
          "scatter: src is int64, the tensor float32"),
    Error("scatter", lambda: tl.zeros(2, 3).scatter(1, tl.tensor([[0, 1]]), tl.ones(1, 1)), ValueError,
          "no longer than src (1, 1)"),
    Error("scatter", lambda: tl.zeros(2, 3).scatter(1, tl.tensor([[0]]), tl.ones(1, 1), reduce="add"), ValueError,
          "scatter: reduce='add' is not supported"),
    Error("scatter_add", lambda: tl.zeros(2, 3).scatter_add(1, tl.tensor([[0]]), 1.0), TypeError,
          "scatter_add: src must be a Tensor, got float"),
    Error("repeat_interleave", lambda: x23().repeat_interleave(-1), ValueError,
          "repeat_interleave: repeats must be >= 0"),
    Error("repeat_interleave", lambda: x23().repeat_interleave(tl.tensor([1, 2, 3]), dim=0), ValueError,
          "repeat_interleave: repeats must be an integer or one integer per slice along dim 0 of (2, 3)"),
    Error("repeat_interleave", lambda: x23().repeat_interleave(2, dim=1, output_size=5), ValueError,
          "repeat_interleave: output_size 5 is not the 6"),
    Error("chunk", lambda: x23().chunk(0), ValueError, "chunk: chunks must be a whole number, at least 1, got 0"),
    Error("flip", lambda: x23().flip(0, 0), ValueError, "flip: axis (0, 0) names the same axis twice"),
    Error("roll", lambda: x23().roll((1, 2), 0), ValueError, "roll: shifts (1, 2) and dims (0,) must have one shift"),
    Error("roll", lambda: x23().roll((1, 2)), ValueError, "roll: without dims, one shift"),
    Error("tril", lambda: tl.tril(tl.ones(3)), ValueError, "tril: needs a tensor of at least 2 axes", "(3,)"),
    Error("triu", lambda: tl.ones(3).triu(), ValueError, "triu: needs a tensor of at least 2 axes", "(3,)"),
    Error("expand_as", lambda: x23().expand_as(tl.ones(3, 2)), ValueError, "expand: shape (2, 3) cannot be expanded"),
    Error("nonzero", lambda: tl.nonzero([1, 0]), TypeError, "nonzero: expects a Tensor, got list"),
    Error("meshgrid", lambda: tl.meshgrid(x23(), tl.ones(2), indexing="ij"), ValueError,
          "meshgrid: expects 0-d or 1-d tensors, got shape (2, 3)"),
    Error("meshgrid", lambda: tl.meshgrid(tl.ones(2), indexing="ab"), ValueError,
          "meshgrid: indexing must be 'ij' or 'xy', got 'ab'"),
    Error("einsum", lambda: tl.einsum("ij->ik", x23()), ValueError, "einsum: output subscript k of 'ij->ik'"),
    Error("einsum", lambda: tl.einsum("ij,jk", x23(), tl.ones(4, 4)), ValueError,
          "einsum: operands of shapes (2, 3), (4, 4) do not fit 'ij,jk->ik'"),
    Error("einsum", lambda: tl.einsum("ij,jk", x23()), ValueError, "einsum: 'ij,jk' has 2 input terms for 1 operands"),
    Error("einsum", lambda: tl.einsum("ijk", x23()), ValueError, "einsum: 'ijk' names 3 axes of an operand with 2"),
    Error("einsum", lambda: tl.einsum("i1", x23()), ValueError, "einsum: 'i1' in 'i1' is not letters"),
    Error("select", lambda: x23().select(1, 3), IndexError,
          "select: index 3 is out of range for axis 1 of length 3 (shape (2, 3))"),
    Error("select", lambda: tl.tensor(1.0).select(0, 0), IndexError, "select: a 0-d tensor has no axis 0"),
    Error("unbind", lambda: x23().unbind(2), ValueError, "unbind: axis 2 is out of range"),
    Error("narrow", lambda: x23().narrow(1, 2, 2), ValueError,
          "narrow: start 2 + length 2 runs past axis 1 of length 3 (shape (2, 3))"),
    Error("narrow", lambda: x23().narrow(1, -4, 1), IndexError,
          "narrow: start -4 is out of range for axis 1 of length 3"),
    Error("tensor_split", lambda: x23().tensor_split(0), ValueError,
          "tensor_split: the number of sections must be at least 1, got 0"),
    Error("tensor_split", lambda: x23().tensor_split(tl.tensor([1.0])), TypeError,
          "tensor_split: indices_or_sections as a tensor must be integers with 0 or 1 axes, got float32 (1,)"),
    Error("hstack", lambda: tl.hstack([x23(), tl.ones(3, 1)]), ValueError, "concat: shapes", "(2, 3)", "(3, 1)"),
    Error("hstack", lambda: tl.hstack([1.0]), TypeError, "hstack: expects a Tensor, got float"),
    Error("vstack", lambda: tl.vstack([tl.ones(2), tl.ones(3)]), ValueError, "concat: shapes", "(1, 2)", "(1, 3)"),
    Error("vstack", lambda: tl.vstack(x23()), TypeError, "vstack: expected a list of Tensors, got a single Tensor"),
    Error("diag", lambda: tl.diag(tl.ones(2, 2, 2)), ValueError,
          "diag: expects a vector or a matrix, got shape (2, 2, 2)"),
    Error("diagonal", lambda: x23().diagonal(0, 1, -1), ValueError,
          "diagonal: dim1 and dim2 must be two axes, both are axis 1 of (2, 3)"),
    Error("diagonal", lambda: tl.ones(3).diagonal(), ValueError, "diagonal: axis 1 is out of range"),
    Error("movedim", lambda: tl.movedim(x23(), (0,), (0, 1)), ValueError,
          "movedim: source [0] and destination [0, 1] must name as many axes"),
    Error("movedim", lambda: x23().movedim((0, 0), (0, 1)), ValueError, "movedim: (0, 0) names an axis twice"),
    Error("swapaxes", lambda: x23().swapaxes(0, 2), ValueError, "transpose: axis 2 is out of range"),
    Error("swapdims", lambda: tl.swapdims(x23(), 3, 0), ValueError, "transpose: axis 3 is out of range"),
    Error("unflatten", lambda: tl.ones(6).unflatten(0, (4, -1)), ValueError,
          "unflatten: sizes (4, -1) do not multiply up to 6, the length of axis 0 of (6,)"),
    Error("view_as", lambda: x23().view_as(tl.ones(4)), ValueError, "reshape: cannot reshape (2, 3)"),
    Error("reshape_as", lambda: x23().reshape_as(tl.ones(5)), ValueError, "reshape: cannot reshape (2, 3)"),
    # creation
    Error("tensor", lambda: tl.tensor([[1, 2], [3]]), ValueError, "tensor: cannot make a tensor of"),
    Error("tensor", lambda: tl.tensor(["a"]), TypeError, "holds numbers and booleans only"),
    Error("zeros", lambda: tl.zeros(2, -1), ValueError, "zeros: a size must be whole numbers"),
    Error("ones", lambda: tl.ones(1.5), ValueError, "ones: a size"),
    Error("full", lambda: tl.full((-2,), 1.0), ValueError, "full: a size"),
    Error("zeros_like", lambda: tl.zeros_like(np.ones(2)), TypeError, "zeros_like: expects a Tensor"),
    Error("ones_like", lambda: tl.ones_like([1, 2]), TypeError, "ones_like: expects a Tensor"),
    Error("full_like", lambda: tl.full_like(3, 1.0), TypeError, "full_like: expects a Tensor"),
    Error("arange", lambda: tl.arange(0, 5, 0), ValueError, "arange: step must not be 0"),
    Error("arange", lambda: tl.arange(0, -5, 1), ValueError,
          "arange: the range 0 -> -5 goes against the sign of step 1"),
    Error("arange", lambda: tl.arange(0, 5, 0.5, dtype=tl.int64), ValueError,
          "arange: step must not be 0 (got 0.5, which int64 truncates to 0)"),
    Error("arange", lambda: tl.arange(0, float("inf")), ValueError, "arange: unsupported range 0 -> inf"),
    Error("empty_like", lambda: tl.empty_like([1.0]), TypeError, "empty_like: expects a Tensor, got list"),
    Error("empty", lambda: tl.empty(2, -1), ValueError, "empty: a size must be whole numbers >= 0, got (2, -1)"),
    Error("eye", lambda: tl.eye(2, 1.5), ValueError, "eye: a size must be whole numbers"),
    Error("linspace", lambda: tl.linspace(0, 1, -1), ValueError, "linspace: steps must be a whole number >= 0"),
    Error("from_numpy", lambda: tl.from_numpy([1.0]), TypeError, "from_numpy: expects a numpy.ndarray, got list"),
    Error("from_numpy", lambda: tl.from_numpy(np.array(["a"])), TypeError, "holds numbers and booleans only"),
    Error("new_zeros", lambda: x23().new_zeros(2, -1), ValueError, "new_zeros: a size must be whole numbers"),
    Error("new_ones", lambda: x23().new_ones(0.5), ValueError, "new_ones: a size"),
    Error("new_full", lambda: x23().new_full((-1,), 2.0), ValueError, "new_full: a size"),
    Error("new_tensor", lambda: x23().new_tensor([[1], [1, 2]]), ValueError, "tensor: cannot make a tensor of"),
    Error("zeros", lambda: tl.zeros(2, dtype=tl.float16), NotImplementedError,
          "torch.float16: half precision is not supported"),
    # conversion
    Error("to", lambda: x23().to("tpu"), TypeError, "to: 'tpu' is neither a device ('cpu', 'cuda'), a dtype nor a"),
    Error("to", lambda: x23().to(tl.bfloat16), NotImplementedError, "torch.bfloat16: half precision is not supported"),
    Error("to", lambda: x23().to(tl.float32, blocking=True), TypeError, "to: unexpected keyword argument(s)"),
    Error("type", lambda: x23().type("torch.FancyTensor"), TypeError,
          "type: 'torch.FancyTensor' is not a tensor type name such as 'torch.FloatTensor'"),
    Error("format", lambda: f"{x23():.2f}", TypeError, "unsupported format string passed to Tensor.__format__"),
    Error("item", lambda: x23().item(), ValueError, "item: only a one-element tensor"),
    Error("numpy", lambda: x23().numpy(), RuntimeError, "numpy: ", "requires grad; use tensor.detach().numpy()"),
    Error("numpy", lambda: (x23() * 2).numpy(), RuntimeError, "numpy: can't call numpy"),
    Error("size", lambda: x23().size(2), IndexError, "size: dim 2 is out of range"),
    Error("requires_grad_", lambda: tl.tensor([1]).requires_grad_(), TypeError, "requires_grad_: only floating"),
    # in place
    Error("add_", lambda: x23().add_(1.0), RuntimeError, "add_: ", "is a leaf tensor that requires grad"),
    Error("sub_", lambda: tl.ones(2, 3).sub_(tl.ones(4, 2, 3)), ValueError, "sub_: the result has shape"),
    Error("mul_", lambda: tl.tensor([1, 2]).mul_(0.5), TypeError, "mul_: the result is float32, which cannot"),
    Error("div_", lambda: tl.tensor([1, 2]).div_(2), TypeError, "div_: the result is float32"),
    Error("clamp_", lambda: tl.ones(2).clamp_(), ValueError, "clamp: give min, max or both"),
    Error("fill_", lambda: x23().fill_(0.0), RuntimeError, "fill_: ", "leaf tensor that requires grad"),
    Error("zero_", lambda: tl.ones(3).expand(2, 3).zero_(), ValueError, "fill_: this tensor", "is a read-only view"),
    Error("copy_", lambda: tl.ones(2).copy_(tl.ones(3)), ValueError, "expand: shape"),
    Error("masked_fill_", lambda: x23().masked_fill_(x23() > 0, 0.0), RuntimeError, "masked_fill_: ",
          "leaf tensor that requires grad"),
    Error("masked_fill_", lambda: tl.ones(2, 3).masked_fill_(np.ones(4, bool), 0.0), ValueError, "where: shapes"),
    # functional
    Error("embedding", lambda: movement.embedding(np.array([1, 10]), _x(10, 4)), IndexError,
          "embedding", "10", "(10, 4)"),
    Error("embedding", lambda: movement.embedding(np.array([-1]), _x(10, 4)), IndexError, "embedding", "-1"),
    Error("embedding", lambda: movement.embedding(np.array([1.0]), _x(10, 4)), TypeError, "embedding", "float"),
    Error("F.pad", lambda: F(tl).pad(_x(2, 3), (1, 1), mode="wrap"), NotImplementedError, "pad: mode 'wrap'"),
    Error("F.pad", lambda: F(tl).pad(_x(2, 3), (1, 3), mode="reflect"), ValueError,
          "pad: mode 'reflect' needs pads from 0 to 2 for an axis of length 3", "(1, 3)"),
    Error("F.pad", lambda: F(tl).pad(_x(2, 3), (1, 1, 1)), ValueError, "pad: pad must be pairs", "(2, 3)"),
    Error("F.pad", lambda: F(tl).pad(_x(2, 3), (1, 1), mode="replicate", value=1.0), ValueError,
          "pad: mode 'replicate' takes no value"),
    Error("F.pad", lambda: F(tl).pad(_x(3), (1, 1), mode="circular"), NotImplementedError,
          "pad: mode 'circular' pads the last 1, 2 or 3 axes", "(3,)"),
    Error("F.normalize", lambda: F(tl).normalize(_x(3)), ValueError, "normalize: axis 1 is out of range"),
    Error("F.silu", lambda: F(tl).silu(tl.tensor([1, 2])), TypeError, "silu: needs floating inputs, got int64"),
    Error("F.softplus", lambda: F(tl).softplus(tl.tensor([1, 2])), TypeError, "softplus: needs floating inputs"),
    Error("F.leaky_relu", lambda: F(tl).leaky_relu(x23(), inplace=True), RuntimeError,
          "leaky_relu_: (2, 3) is a leaf tensor that requires grad"),
    Error("F.softmax", lambda: F(tl).softmax(_x(2, 3), dim=2), ValueError, "softmax: axis 2 is out of range"),
    Error("F.log_softmax", lambda: F(tl).log_softmax(_x(), dim=1), ValueError, "log_softmax: axis 1 is out of range"),
    Error("F.cross_entropy", lambda: F(tl).cross_entropy(_x(3, 4), _x(3, 5)), ValueError,
          "cross_entropy: float targets are class probabilities", "(3, 4)", "(3, 5)"),
    Error("F.cross_entropy", lambda: F(tl).cross_entropy(_x(3, 4), _x(3, 4, dtype=np.float32)), TypeError,
          "cross_entropy: class-probability targets are float32, the logits float64"),
    Error("F.cross_entropy", lambda: F(tl).cross_entropy(_x(3, 4), np.array([0, 1, 2]), _x(3)), ValueError,
          "cross_entropy: weight should hold one weight for each of the 4 classes of input (3, 4), got shape (3,)"),
    Error("F.nll_loss", lambda: F(tl).nll_loss(_x(3, 4), np.array([0, 4, 1])), IndexError,
          "nll_loss: target 4 is out of range for 4 classes"),
    Error("F.nll_loss", lambda: F(tl).nll_loss(_x(3, 4), np.array([0, 1])), ValueError,
          "nll_loss: input (3, 4) and targets (2,) do not fit"),
    Error("F.mse_loss", lambda: F(tl).mse_loss(_x(3, 4), _x(3, 4), weight=_x(4)), ValueError,
          "mse_loss: weight (4,) and input (3, 4) must have one shape"),
    Error("F.l1_loss", lambda: F(tl).l1_loss(_x(3, 1), _x(3)), ValueError, "l1_loss: input (3, 1) and target (3,)"),
    Error("F.l1_loss", lambda: F(tl).l1_loss(_x(3), _x(3), reduction="avg"), ValueError, "l1_loss: reduction must"),
    Error("F.binary_cross_entropy", lambda: F(tl).binary_cross_entropy(_x(3) * 2, _x(3)), ValueError,
          "binary_cross_entropy: all elements of input (3,) should be between 0 and 1"),
    Error("F.binary_cross_entropy", lambda: F(tl).binary_cross_entropy(_x(3) / 2, _x(3), weight=x23()[0]),
          RuntimeError, "binary_cross_entropy: not differentiable with respect to weight"),
    Error("F.binary_cross_entropy_with_logits", lambda: F(tl).binary_cross_entropy_with_logits(_x(2, 3), _x(3)),
          ValueError, "binary_cross_entropy_with_logits: input (2, 3) and target (3,)"),
    Error("F.binary_cross_entropy_with_logits",
          lambda: F(tl).binary_cross_entropy_with_logits(_x(2, 3), _x(2, 3), pos_weight=_x(2)), ValueError,
          "binary_cross_entropy_with_logits: pos_weight: shapes (2,) and (2, 3) cannot be broadcast"),
    Error("F.conv1d", lambda: F(tl).conv1d(_x(1, 3, 5), _x(4, 2, 3)), ValueError,
          "conv1d: weight (4, 2, 3) with groups=1 expects 2 input channels, input (1, 3, 5) has 3"),
    Error("F.conv1d", lambda: F(tl).conv1d(_x(1, 2, 3), _x(4, 2, 5)), ValueError,
          "conv1d: the kernel reaches over 5 positions", "(1, 2, 3)"),
    Error("F.conv1d", lambda: F(tl).conv1d(_x(1, 2, 3), _x(4, 2, 3), stride=2, padding="same"), ValueError,
          "conv1d: padding='same' is not supported for strided convolutions"),
    Error("F.conv1d", lambda: F(tl).conv1d(_x(1, 4, 3), _x(3, 2, 3), groups=2), ValueError,
          "conv1d: groups=2 must divide the input's 4 channels and the weight's 3 output channels"),
    Error("F.batch_norm", lambda: F(tl).batch_norm(_x(1, 3), None, None, training=True), ValueError,
          "batch_norm: expected more than 1 value per channel when training, got input (1, 3)"),
    Error("F.batch_norm", lambda: F(tl).batch_norm(_x(4, 3), _x(2), _x(2)), ValueError,
          "batch_norm: running_mean has shape (2,), expected (3,)", "(4, 3)"),
    Error("F.batch_norm", lambda: F(tl).batch_norm(_x(4, 3), None, None), ValueError,
          "batch_norm: running_mean and running_var must be given when training=False"),
    Error("F.embedding", lambda: F(tl).embedding(np.array([0]), _x(5, 2), padding_idx=5), ValueError,
          "embedding: padding_idx 5 is out of range for 5 rows"),
    Error("F.embedding", lambda: F(tl).embedding(np.array([0]), _x(5, 2), max_norm=1.0), NotImplementedError,
          "embedding: max_norm"),
    Error("F.interpolate", lambda: F(tl).interpolate(_x(1, 2, 3), size=4, mode="bicubic"), NotImplementedError,
          "interpolate: mode 'bicubic' is not supported"),
    Error("F.interpolate", lambda: F(tl).interpolate(_x(1, 2, 3), size=4, align_corners=True), ValueError,
          "interpolate: align_corners can only be set with the linear modes"),
    Error("F.interpolate", lambda: F(tl).interpolate(_x(1, 2, 3), size=4, scale_factor=2), ValueError,
          "interpolate: give exactly one of size or scale_factor"),
    Error("F.interpolate", lambda: F(tl).interpolate(_x(1, 2, 3, 3), size=4, mode="linear"), ValueError,
          "interpolate: mode 'linear' needs input (N, C, ...) with 1 spatial axes, got (1, 2, 3, 3)"),
    Error("F.cosine_similarity", lambda: F(tl).cosine_similarity(x23(), tl.ones(3, 2)), ValueError,
          "cosine_similarity: shapes (2, 3) and (3, 2)"),
    Error("F.cosine_similarity", lambda: F(tl).cosine_similarity(tl.tensor([1, 2]), tl.tensor([3, 4]), dim=0),
          TypeError, "cosine_similarity: needs floating inputs, got int64"),
    Error("F.cosine_similarity", lambda: F(tl).cosine_similarity(x23(), x23(), dim=2), ValueError,
          "cosine_similarity: axis 2 is out of range"),
    Error("F.logsigmoid", lambda: F(tl).logsigmoid(tl.tensor([1])), TypeError,
          "logsigmoid: needs floating inputs, got int64"),
    # random
    Error("rand", lambda: tl.rand(-1), ValueError, "rand: a size"),
    Error("randn", lambda: tl.randn(2, dtype=np.int64), TypeError, "randn: dtype int64 is not supported"),
    Error("randint", lambda: tl.randint(5, 2, (3,)), ValueError, "randint: low 5 must be below high 2"),
    Error("manual_seed", lambda: tl.manual_seed(2 ** 64), ValueError, "manual_seed: the seed must be in"),
    Error("Generator", lambda: tl.Generator("cuda"), ValueError, "Generator: device 'cuda': only CPU generators"),
    Error("randperm", lambda: tl.randperm(-1), ValueError, "randperm: n must be a whole number >= 0, got -1"),
    Error("multinomial", lambda: tl.multinomial(tl.tensor([0.5, -0.1]), 1), ValueError,
          "multinomial: probability tensor contains either `inf`, `nan` or element < 0"),
    Error("normal", lambda: tl.normal(0.0, 1.0), TypeError, "normal: with a number mean and std, size= is needed"),
    Error("bernoulli", lambda: tl.bernoulli(tl.tensor([1, 0])), TypeError,
          "bernoulli: expects a floating-point Tensor, got int64"),
    Error("rand_like", lambda: tl.rand_like(np.zeros(3)), TypeError, "rand_like: expects a Tensor, got ndarray"),
    Error("randn_like", lambda: tl.randn_like([0.0]), TypeError, "randn_like: expects a Tensor, got list"),
    Error("randint_like", lambda: tl.randint_like(x23(), 5, 2), ValueError, "randint_like: low 5 must be below high 2"),
    Error("normal_", lambda: tl.zeros(3).normal_(0.0, -1.0), ValueError, "normal_: expects std >= 0.0"),
    Error("uniform_", lambda: tl.zeros(3).uniform_(2.0, 1.0), ValueError,
          "uniform_: expects to return a [from, to) range, but found from=2.0 > to=1.0"),
    Error("random_", lambda: tl.zeros(3, dtype=np.uint8).random_(0, 300), ValueError,
          "random_: [0, 300) does not fit in uint8"),
    Error("bernoulli_", lambda: tl.zeros(3).bernoulli_(1.5), ValueError,
          "bernoulli_: expects p to be in [0, 1], but got p=1.5"),
    Error("exponential_", lambda: tl.zeros(3).exponential_(0.0), ValueError, "exponential_: expects lambd > 0.0"),
]

# names with no bad input to give: they take no argument, or any tensor
NO_BAD_INPUT = {"float", "double", "long", "int", "bool", "clone", "detach", "tolist", "numel", "dim"}


@pytest.mark.parametrize("error", ERRORS, ids=str)
def test_bad_input_is_a_clear_error(error):
    with pytest.raises(error.exception) as info:
        error.call()
    for fragment in error.says:
        assert fragment in str(info.value), f"{fragment!r} not in {str(info.value)!r}"


@pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy")   # torch's own __array__
def test_numpy_refuses_a_tensor_that_requires_grad_as_pytorch_does(torch):
    """numpy() shares the buffer backward reads, so it is refused where the tensor requires grad (writing through
    it would change the gradient unseen) and np.asarray(t) with it; detach().numpy(), tolist() and item() are not,
    in PyTorch as here."""
    w = tl.tensor([1.0, 2.0], requires_grad=True)
    w_torch = torch.tensor([1.0, 2.0], requires_grad=True)
    for make in (lambda t: t, lambda t: t * 3):   # a leaf, and an op's output
        for read in (lambda t: t.numpy(), np.asarray, np.array):
            with pytest.raises(RuntimeError, match="numpy"):
                read(make(w_torch))
            with pytest.raises(RuntimeError, match=r"numpy: .* requires grad; use tensor\.detach\(\)\.numpy\(\)"):
                read(make(w))
        assert make(w).tolist() == make(w_torch).tolist() and make(w).sum().item() == make(w_torch).sum().item()
    shared = w.detach().numpy()
    shared[0] = 5.0                                    # as in PyTorch: detach() shares the data, knowingly
    assert w.tolist() == [5.0, 2.0]
    (w * w).sum().backward()
    assert w.grad.numpy().tolist() == [10.0, 4.0]      # a gradient does not require grad
    plain = tl.tensor([[1, 2]])
    assert np.asarray(plain).tolist() == [[1, 2]] and np.asarray(plain, dtype=np.float64).dtype == np.float64
    assert np.asarray(plain) is plain.data             # numbers, sharing memory, not an object array of Tensors
    assert repr(w) == "tensor([5., 2.], requires_grad=True)"


# ---------------------------------------------------------------- 4. README's table: every name has its tests


def readme_names():
    table = README.read_text(encoding="utf-8").split("## The Tensor API", 1)[1].split("\n\n", 2)[2]
    names = []
    for line in table.splitlines():
        if line.startswith("| ") and not line.startswith("| kind") and not line.startswith("|---"):
            cell = line.split("|")[2].split("(and")[0]
            names += [n.removeprefix("tl.") for n in re.findall(r"`([^`]+)`", cell)]
    return names


def test_every_name_in_readmes_table_has_its_tests():
    names = readme_names()
    assert len(names) > 90, names
    valued = {row.name for row in ROWS}
    erred = {error.name for error in ERRORS} | NO_BAD_INPUT
    assert not [n for n in names if n not in valued], "no value test for: " + str([n for n in names if n not in valued])
    assert not [n for n in names if n not in erred], "no error test for: " + str([n for n in names if n not in erred])


# ---------------------------------------------------------------- 5. properties over random shapes and axes


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


@pytest.mark.parametrize("name", ["sum", "mean", "amax", "var"])
@settings(max_examples=40, deadline=None)
@given(shape_axis=shape_and_axis(), keepdims=st.booleans(), seed=st.integers(0, 2 ** 32 - 1))
def test_reductions_match_numpy(name, shape_axis, keepdims, seed):
    shape, axis = shape_axis
    rng = np.random.default_rng(seed)
    # amax gets small integers (ties); the others real numbers
    x = rng.integers(-1, 2, shape).astype(np.float64) if name == "amax" else rng.standard_normal(shape)
    t = tensor(x)
    n = int(np.prod([shape[a] for a in _axes(axis, len(shape))]))
    if name == "var" and n <= 1:   # as PyTorch: a warning, and nan for the value and the gradient
        with pytest.warns(UserWarning, match="var: 1 elements with correction=1 leave no degrees of freedom"):
            out = t.var(axis=axis, keepdims=keepdims)
        out.backward(np.ones(out.shape))
        assert np.isnan(out.detach().numpy()).all() and np.isnan(t.grad.numpy()).all()
        return
    out = getattr(t, name)(axis=axis, keepdims=keepdims)
    g_kept = rng.standard_normal([1 if i in _axes(axis, len(shape)) else s for i, s in enumerate(shape)])
    value, grad = expected_reduction(name, x, axis, keepdims, g_kept)
    assert out.shape == value.shape
    np.testing.assert_allclose(out.detach().numpy(), value, rtol=1e-12, atol=1e-12)
    out.backward(g_kept.reshape(out.shape))
    np.testing.assert_allclose(t.grad.numpy(), grad, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", ["sum", "mean", "amax", "var"])
@settings(max_examples=25, deadline=None)
@given(shape_axis=shape_and_axis(max_dims=3, max_side=3), keepdims=st.booleans(), seed=st.integers(0, 2 ** 32 - 1))
def test_reductions_gradcheck(name, shape_axis, keepdims, seed):
    shape, axis = shape_axis
    if name == "var" and int(np.prod([shape[a] for a in _axes(axis, len(shape))])) <= 1:
        return  # no degrees of freedom: nan, checked above
    x = Tensor(draw(np.random.default_rng(seed), shape, "distinct"), requires_grad=True)
    gradcheck(lambda t: getattr(t, name)(axis=axis, keepdims=keepdims), [x])


def test_ties_share_the_gradient():
    """Ties worked out by hand: maximum splits g in half, amax splits it equally among the tied maxima."""
    a, b = tensor([1.0, 2.0, 3.0]), tensor([1.0, 3.0, 3.0])
    ops.maximum(a, b).backward(np.array([2.0, 4.0, 6.0]))
    np.testing.assert_array_equal(a.grad.numpy(), [1.0, 0.0, 3.0])
    np.testing.assert_array_equal(b.grad.numpy(), [1.0, 4.0, 3.0])
    x = tensor([[3.0, 1.0, 3.0, 3.0], [0.0, 2.0, 2.0, 1.0]])
    x.amax(axis=1).backward(np.array([6.0, 4.0]))
    np.testing.assert_array_equal(x.grad.numpy(), [[2.0, 0.0, 2.0, 2.0], [0.0, 2.0, 2.0, 0.0]])


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
