"""The Tensor API of README's table, entry by entry: each one's value (and gradient, where differentiable) against
PyTorch in float64, gradcheck where differentiable, and its error on bad input. The last test reads the table
itself and fails for a name that has no value case or no error case here."""
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

import tinygrad_llm as tl
from tinygrad_llm.engine.gradcheck import gradcheck

README = Path(__file__).resolve().parent.parent / "README.md"


@dataclass
class Case:
    name: str                  # the README name it covers
    ours: Callable             # ours(*tensors) -> a Tensor, a tuple of them, or a Python value
    theirs: Callable           # theirs(torch, *tensors) -> the same from PyTorch
    shapes: tuple              # float64 inputs of these shapes
    positive: bool = False     # inputs in (0.5, 2.5) instead of standard normal (log, sqrt, pow)
    differentiable: bool = True
    distinct: bool = False     # inputs well apart (max/min/topk/clamp/abs: no ties or kinks at a probe point)
    gradcheckable: bool = True  # False where the function leaves float64 (float()) or the math (detach)

    def arrays(self):
        r = np.random.default_rng(abs(hash(self.name)) % 2**32)
        if self.positive:
            return [r.uniform(0.5, 2.5, s) for s in self.shapes]
        if self.distinct:
            return [(r.permutation(int(np.prod(s))) * 0.37 - 1.3).reshape(s) for s in self.shapes]
        return [r.standard_normal(s) for s in self.shapes]


def both(f):
    """A case whose code is the same for ours and PyTorch's."""
    return f, lambda torch, *xs: f(*xs)


IDX = np.array([[2, 0], [1, 1]])
CASES = [
    # ----- arithmetic
    Case("+", *both(lambda a, b: a + b), ((2, 3), (3,))),
    Case("-", *both(lambda a, b: 2.5 - a - b), ((2, 3), (2, 1))),
    Case("*", *both(lambda a, b: a * b * 3), ((2, 3), (3,))),
    Case("/", *both(lambda a, b: a / b / 2), ((2, 3), (3,)), positive=True),
    Case("**", *both(lambda a, b: a ** b + 2 ** a), ((2, 3), (3,)), positive=True),
    Case("@", *both(lambda a, b: a @ b), ((2, 3), (3, 4))),
    Case("matmul", lambda a, b: tl.matmul(a, b), lambda t, a, b: t.matmul(a, b), ((2, 2, 3), (3,))),
    Case("neg", *both(lambda a: -a), ((4,),)),
    Case("maximum", lambda a, b: tl.maximum(a, b), lambda t, a, b: t.maximum(a, b), ((2, 3), (3,)), distinct=True),
    Case("minimum", lambda a, b: a.minimum(b), lambda t, a, b: t.minimum(a, b), ((2, 3), (3,)), distinct=True),
    # ----- elementwise math
    Case("exp", *both(lambda a: a.exp()), ((3, 2),)),
    Case("log", *both(lambda a: a.log()), ((3, 2),), positive=True),
    Case("sqrt", *both(lambda a: a.sqrt()), ((3, 2),), positive=True),
    Case("tanh", *both(lambda a: a.tanh()), ((3, 2),)),
    Case("sigmoid", *both(lambda a: a.sigmoid()), ((3, 2),)),
    Case("relu", *both(lambda a: a.relu()), ((3, 2),), distinct=True),
    Case("erf", *both(lambda a: a.erf()), ((3, 2),)),
    Case("abs", *both(lambda a: a.abs()), ((3, 2),), distinct=True),
    Case("clamp", *both(lambda a: a.clamp(-0.5, 0.9)), ((3, 4),), distinct=True),
    Case("clamp", *both(lambda a: a.clamp(min=0.1)), ((3, 4),), distinct=True),
    Case("where", lambda a, b: tl.where(a > 0, a, b), lambda t, a, b: t.where(a > 0, a, b), ((2, 3), (3,)),
         distinct=True),
    Case("masked_fill", *both(lambda a: a.masked_fill(a > 0, -1.0)), ((2, 3),), distinct=True),
    # ----- reductions
    Case("sum", *both(lambda a: a.sum(dim=1, keepdim=True)), ((2, 3, 4),)),
    Case("sum", *both(lambda a: a.sum((0, 2))), ((2, 3, 4),)),
    Case("mean", *both(lambda a: a.mean(dim=-1)), ((2, 3),)),
    Case("var", *both(lambda a: a.var(dim=0)), ((4, 3),)),
    Case("var", *both(lambda a: a.var(dim=1, correction=0, keepdim=True)), ((4, 3),)),
    Case("std", *both(lambda a: a.std(dim=1)), ((4, 3),)),
    Case("amax", *both(lambda a: a.amax(dim=1)), ((3, 4),), distinct=True),
    Case("amin", *both(lambda a: a.amin(dim=(0, 1))), ((3, 4),), distinct=True),
    Case("max", *both(lambda a: a.max()), ((3, 4),), distinct=True),
    Case("max", *both(lambda a: a.max(dim=1)), ((3, 4),), distinct=True),
    Case("max", *both(lambda a: a.max(0, keepdim=True)), ((3, 4),), distinct=True),
    Case("min", *both(lambda a: a.min(dim=1)), ((3, 4),), distinct=True),
    Case("min", *both(lambda a: a.min()), ((3, 4),), distinct=True),
    Case("norm", *both(lambda a: a.norm()), ((3, 4),)),
    Case("norm", *both(lambda a: a.norm(dim=1, keepdim=True)), ((3, 4),)),
    Case("norm", lambda a: a.norm(p=1, dim=0), lambda t, a: t.linalg.vector_norm(a, ord=1, dim=0), ((3, 4),),
         distinct=True),
    Case("argmax", *both(lambda a: a.argmax(dim=1)), ((3, 4),), differentiable=False, distinct=True),
    Case("argmax", *both(lambda a: a.argmax()), ((3, 4),), differentiable=False, distinct=True),
    Case("argmin", *both(lambda a: a.argmin(dim=0, keepdim=True)), ((3, 4),), differentiable=False, distinct=True),
    Case("topk", *both(lambda a: a.topk(2, dim=1)), ((3, 5),), distinct=True),
    Case("topk", *both(lambda a: a.topk(3, dim=0, largest=False)), ((4, 2),), distinct=True),
    # ----- shape
    Case("reshape", *both(lambda a: a.reshape(3, -1)), ((2, 3, 2),)),
    Case("view", *both(lambda a: a.view(-1)), ((2, 3),)),
    Case("unsqueeze", *both(lambda a: a.unsqueeze(1).unsqueeze(-1)), ((2, 3),)),
    Case("squeeze", *both(lambda a: a.squeeze()), ((2, 1, 3, 1),)),
    Case("squeeze", *both(lambda a: a.squeeze(1)), ((2, 1, 3, 1),)),
    Case("flatten", *both(lambda a: a.flatten(1)), ((2, 3, 4),)),
    Case("permute", *both(lambda a: a.permute(2, 0, 1)), ((2, 3, 4),)),
    Case("transpose", *both(lambda a: a.transpose(0, 2)), ((2, 3, 4),)),
    Case("t", *both(lambda a: a.t()), ((2, 3),)),
    Case("expand", *both(lambda a: a.expand(2, 3, 4)), ((3, 1),)),
    Case("expand", *both(lambda a: a.expand(-1, 4)), ((3, 1),)),
    Case("repeat", *both(lambda a: a.repeat(2, 1, 3)), ((2, 3),)),
    Case("cat", lambda a, b: tl.cat([a, b], dim=1), lambda t, a, b: t.cat([a, b], dim=1), ((2, 3), (2, 1))),
    Case("stack", lambda a, b: tl.stack([a, b], dim=-1), lambda t, a, b: t.stack([a, b], dim=-1), ((2, 3),) * 2),
    Case("split", lambda a: a.split(2, dim=1)[1], lambda t, a: a.split(2, dim=1)[1], ((2, 5),)),
    Case("take_along_dim", lambda a: tl.take_along_dim(a, IDX, 1),
         lambda t, a: t.take_along_dim(a, t.from_numpy(IDX), 1), ((2, 3),)),
    Case("getitem", *both(lambda a: a[1:, ::2] * a[0, 1]), ((3, 4),)),
    # ----- comparison and logic
    Case("eq", *both(lambda a, b: (a == b) | (a == a[0, 0])), ((2, 3), (3,)), differentiable=False),
    Case("ne", *both(lambda a, b: a != b), ((2, 3), (3,)), differentiable=False),
    Case("lt", *both(lambda a, b: a < b), ((2, 3), (3,)), differentiable=False),
    Case("le", *both(lambda a: a <= 0.25), ((2, 3),), differentiable=False),
    Case("gt", *both(lambda a: a > 0), ((2, 3),), differentiable=False),
    Case("ge", *both(lambda a, b: a.ge(b)), ((2, 3), (3,)), differentiable=False),
    Case("and", *both(lambda a: (a > 0) & (a < 1)), ((2, 3),), differentiable=False),
    Case("or", *both(lambda a: (a > 1) | (a < 0)), ((2, 3),), differentiable=False),
    Case("xor", *both(lambda a: (a > 0) ^ (a > 1)), ((2, 3),), differentiable=False),
    Case("logical_not", *both(lambda a: ~(a > 0)), ((2, 3),), differentiable=False),
    # ----- conversion
    Case("to", lambda a: a.to(np.float32), lambda t, a: a.to(t.float32), ((3,),), differentiable=False),
    Case("float", *both(lambda a: a.float() * 2), ((3,),), differentiable=False),
    Case("double", *both(lambda a: a.float().double()), ((3,),), gradcheckable=False),
    Case("long", *both(lambda a: (a * 3).long()), ((3,),), differentiable=False),
    Case("int", *both(lambda a: (a * 3).int()), ((3,),), differentiable=False),
    Case("bool", *both(lambda a: a.bool()), ((3,),), differentiable=False),
    Case("clone", *both(lambda a: a.clone() * 2), ((3,),)),
    Case("detach", *both(lambda a: a.detach() * a), ((3,),), gradcheckable=False),
    Case("item", *both(lambda a: a.sum().item()), ((3,),), differentiable=False),
    Case("tolist", *both(lambda a: a.tolist()), ((2, 2),), differentiable=False),
    Case("numpy", *both(lambda a: a.detach().numpy()), ((2, 2),), differentiable=False),
    Case("size", *both(lambda a: (tuple(a.size()), a.size(1), a.size(-1))), ((2, 3),), differentiable=False),
    Case("numel", *both(lambda a: a.numel()), ((2, 3),), differentiable=False),
    Case("dim", *both(lambda a: a.dim()), ((2, 3),), differentiable=False),
    Case("requires_grad_", *both(lambda a: a.detach().requires_grad_().requires_grad), ((2,),),
         differentiable=False),
    # ----- in place (on a copy in the graph, so the gradient flows through the change)
    Case("add_", *both(lambda a, b: a.clone().add_(b, alpha=2)), ((2, 3), (3,))),
    Case("sub_", *both(lambda a, b: a.clone().sub_(b)), ((2, 3), (3,))),
    Case("mul_", *both(lambda a, b: a.clone().mul_(b)), ((2, 3), (3,))),
    Case("div_", *both(lambda a, b: a.clone().div_(b)), ((2, 3), (3,)), positive=True),
    Case("clamp_", *both(lambda a: a.clone().clamp_(-0.5, 0.5)), ((2, 3),), distinct=True),
    Case("fill_", *both(lambda a: a.clone().fill_(2.0) * a), ((2, 3),)),
    Case("zero_", *both(lambda a: a.clone().zero_() + a), ((2, 3),)),
    Case("copy_", *both(lambda a, b: a.clone().copy_(b)), ((2, 3), (3,))),
]


def flat(value):
    """A result as a list of arrays or Python values, for comparison (tuples and named tuples unpacked)."""
    if isinstance(value, tuple):
        return [v for part in value for v in flat(part)]
    if hasattr(value, "detach"):
        return [value.detach().numpy()]
    return [np.asarray(value) if isinstance(value, list) else value]


def run_ours(case, arrays):
    xs = [tl.tensor(a, requires_grad=True) for a in arrays]
    return xs, case.ours(*xs)


def run_theirs(torch, case, arrays):
    xs = [torch.tensor(a, requires_grad=True) for a in arrays]
    return xs, case.theirs(torch, *xs)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_value_and_gradient_match_pytorch(torch, case):
    arrays = case.arrays()
    our_inputs, ours = run_ours(case, arrays)
    their_inputs, theirs = run_theirs(torch, case, arrays)
    for a, b in zip(flat(ours), flat(theirs)):
        if isinstance(a, np.ndarray):
            assert a.shape == b.shape and str(a.dtype) == str(b.dtype), (a.dtype, b.dtype)
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
        else:
            assert a == pytest.approx(b, rel=1e-10)
    if not case.differentiable:
        return
    out, ref = (ours[0], theirs[0]) if isinstance(ours, tuple) else (ours, theirs)
    upstream = np.random.default_rng(7).standard_normal(out.shape)
    out.backward(upstream)
    ref.backward(torch.tensor(upstream))
    for x, y in zip(our_inputs, their_inputs):
        want = np.zeros(x.shape) if y.grad is None else y.grad.numpy()
        got = np.zeros(x.shape) if x.grad is None else x.grad.numpy()
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("case", [c for c in CASES if c.differentiable and c.gradcheckable], ids=lambda c: c.name)
def test_gradcheck(case):
    def fn(*xs):
        out = case.ours(*xs)
        return out[0] if isinstance(out, tuple) else out
    assert gradcheck(fn, [tl.tensor(a, requires_grad=True) for a in case.arrays()]).passed


def test_creation_functions_match_pytorch(torch):
    for ours, theirs in [(tl.zeros(2, 3), torch.zeros(2, 3)), (tl.ones((2,)), torch.ones((2,))),
                         (tl.full((2, 2), 7), torch.full((2, 2), 7)), (tl.full((2,), 0.5), torch.full((2,), 0.5)),
                         (tl.zeros_like(tl.ones(2, dtype=tl.int64)), torch.zeros_like(torch.ones(2, dtype=torch.int64))),
                         (tl.ones_like(tl.zeros(3)), torch.ones_like(torch.zeros(3))),
                         (tl.full_like(tl.zeros(2), 3.0), torch.full_like(torch.zeros(2), 3.0)),
                         (tl.arange(5), torch.arange(5)), (tl.arange(1, 2, 0.25), torch.arange(1, 2, 0.25)),
                         (tl.tensor([[1, 2]]), torch.tensor([[1, 2]])), (tl.tensor([1.5]), torch.tensor([1.5]))]:
        assert str(ours.dtype) == str(theirs.dtype).replace("torch.", "")
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    tl.manual_seed(3)
    first = (tl.rand(2, 3), tl.randn(4), tl.randint(2, 5, (10,)), tl.randint(3, (4,)))
    tl.manual_seed(3)
    again = (tl.rand(2, 3), tl.randn(4), tl.randint(2, 5, (10,)), tl.randint(3, (4,)))
    for a, b, shape, dtype in zip(first, again, [(2, 3), (4,), (10,), (4,)], [np.float32] * 2 + [np.int64] * 2):
        assert a.shape == shape and a.dtype == dtype and np.array_equal(a.numpy(), b.numpy())   # seeded
    assert 0 <= first[0].numpy().min() and first[0].numpy().max() < 1
    assert set(first[2].tolist()) <= {2, 3, 4} and set(first[3].tolist()) <= {0, 1, 2}
    assert tl.randn(2, requires_grad=True).requires_grad


# ---------------------------------------------------------------- errors on bad input

def x23():
    return tl.ones(2, 3, requires_grad=True)


ERRORS = [
    ("tensor", lambda: tl.tensor([[1, 2], [3]]), ValueError, "tensor: cannot make a tensor of"),
    ("tensor", lambda: tl.tensor(["a"]), TypeError, "holds numbers and booleans only"),
    ("zeros", lambda: tl.zeros(2, -1), ValueError, "zeros: a size must be whole numbers"),
    ("ones", lambda: tl.ones(1.5), ValueError, "ones: a size"),
    ("full", lambda: tl.full((-2,), 1.0), ValueError, "full: a size"),
    ("zeros_like", lambda: tl.zeros_like(np.ones(2)), TypeError, "zeros_like: expects a Tensor"),
    ("ones_like", lambda: tl.ones_like([1, 2]), TypeError, "ones_like: expects a Tensor"),
    ("full_like", lambda: tl.full_like(3, 1.0), TypeError, "full_like: expects a Tensor"),
    ("arange", lambda: tl.arange(0, 5, 0), ValueError, "arange: step must not be 0"),
    ("rand", lambda: tl.rand(-1), ValueError, "rand: a size"),
    ("randn", lambda: tl.randn(2, dtype=np.int64), TypeError, "randn: dtype int64 is not supported"),
    ("randint", lambda: tl.randint(5, 2, (3,)), ValueError, "randint: low 5 must be below high 2"),
    ("+", lambda: x23() + tl.ones(4), ValueError, r"add: shapes \(2, 3\) and \(4,\)"),
    ("-", lambda: tl.tensor([True]) - tl.tensor([1]), TypeError, "sub: subtraction with a bool"),
    ("*", lambda: x23() * "a", TypeError, "mul: cannot combine a Tensor with str"),
    ("/", lambda: x23() / tl.ones((3, 2)), ValueError, "div: shapes"),
    ("**", lambda: tl.tensor([2]) ** -1, ValueError, "pow: integers to negative integer powers"),
    ("@", lambda: x23() @ x23(), ValueError, r"matmul: shapes \(2, 3\) and \(2, 3\) do not align"),
    ("matmul", lambda: tl.matmul(tl.tensor(1.0), x23()), ValueError, "matmul: operands must have at least one"),
    ("neg", lambda: tl.engine.ops.neg([1.0]), TypeError, "neg: expects a Tensor"),
    ("maximum", lambda: tl.maximum(x23(), tl.ones(2)), ValueError, "maximum: shapes"),
    ("maximum", lambda: tl.maximum(1.0, 2.0), TypeError, "maximum: needs a Tensor among its inputs, got float, float"),
    ("minimum", lambda: tl.minimum(x23(), tl.ones(4)), ValueError, "minimum: shapes"),
    ("exp", lambda: tl.exp([1.0]), TypeError, "exp: expects a Tensor, got list"),
    ("log", lambda: tl.log(np.ones(2)), TypeError, "log: expects a Tensor, got ndarray"),
    ("sqrt", lambda: tl.sqrt(2.0), TypeError, "sqrt: expects a Tensor, got float"),
    ("tanh", lambda: tl.tanh([0.5]), TypeError, "tanh: expects a Tensor"),
    ("sigmoid", lambda: tl.sigmoid(None), TypeError, "sigmoid: expects a Tensor, got NoneType"),
    ("relu", lambda: tl.relu(np.ones(2)), TypeError, "relu: expects a Tensor"),
    ("erf", lambda: tl.erf((1.0,)), TypeError, "erf: expects a Tensor"),
    ("abs", lambda: tl.abs([-1]), TypeError, "abs: expects a Tensor"),
    ("clamp", lambda: x23().clamp(2, 1), ValueError, "clamp: min 2 is above max 1"),
    ("where", lambda: tl.where(np.ones(4, bool), x23(), 0.0), ValueError, r"where: shapes \(4,\)"),
    ("masked_fill", lambda: x23().masked_fill(np.ones(4, bool), 0.0), ValueError, "where: shapes"),
    ("sum", lambda: x23().sum(dim=2), ValueError, "sum: axis 2 is out of range"),
    ("mean", lambda: tl.tensor([1, 2]).mean(), TypeError, "mean: needs a floating tensor"),
    ("var", lambda: x23().var(dim=0, correction=2), ValueError, "var: 2 elements with correction=2"),
    ("std", lambda: tl.tensor([1]).std(), TypeError, "var: needs a floating tensor"),
    ("amax", lambda: tl.zeros(0, 3).amax(dim=0), ValueError, "max: cannot reduce axis 0"),
    ("amin", lambda: x23().amin(dim=(0, 0)), ValueError, "names the same axis twice"),
    ("max", lambda: x23().max(dim=4), ValueError, "argmax: axis 4 is out of range"),
    ("min", lambda: tl.zeros(2, 0).min(dim=1), ValueError, "argmin: cannot search axis 1"),
    ("norm", lambda: x23().norm(p=-1), ValueError, "norm: p must be a positive number"),
    ("argmax", lambda: x23().argmax(dim=-3), ValueError, "argmax: axis -3 is out of range"),
    ("argmin", lambda: tl.zeros(0).argmin(), ValueError, "argmin: cannot search"),
    ("topk", lambda: x23().topk(4, dim=1), ValueError, "topk: k = 4 is out of range"),
    ("reshape", lambda: x23().reshape(4, 2), ValueError, r"reshape: cannot reshape \(2, 3\)"),
    ("view", lambda: x23().view(5), ValueError, "reshape: cannot reshape"),
    ("unsqueeze", lambda: x23().unsqueeze(4), ValueError, "unsqueeze: axis 4 is out of range"),
    ("squeeze", lambda: x23().squeeze(3), ValueError, "squeeze: axis 3 is out of range"),
    ("flatten", lambda: x23().flatten(1, 0), ValueError, "flatten: start_dim 1 comes after end_dim 0"),
    ("permute", lambda: x23().permute(0, 0), ValueError, r"permute: \(0, 0\) is not an ordering"),
    ("transpose", lambda: x23().transpose(0, 3), ValueError, "transpose: axis 3 is out of range"),
    ("t", lambda: tl.zeros(2, 3, 4).t(), ValueError, "t: expects a tensor of at most 2 axes"),
    ("expand", lambda: x23().expand(4, 3), ValueError, r"expand: shape \(2, 3\) cannot be expanded"),
    ("repeat", lambda: x23().repeat(2), ValueError, "repeat: needs one count >= 0 per axis"),
    ("cat", lambda: tl.cat([x23(), tl.ones(2, 4)]), ValueError, "concat: shapes"),
    ("cat", lambda: tl.cat([]), ValueError, "concat: expected a non-empty list of Tensors"),
    ("cat", lambda: tl.cat(()), ValueError, "concat: expected a non-empty list of Tensors"),
    ("cat", lambda: tl.cat(x23()), TypeError, r"concat: expected a list of Tensors, got a single Tensor \(2, 3\)"),
    ("cat", lambda: tl.cat([np.ones(3)]), TypeError, "concat: needs a Tensor among its inputs, got ndarray"),
    ("stack", lambda: tl.stack([x23(), tl.ones(3, 2)]), ValueError, "stack: all inputs must have one shape"),
    ("stack", lambda: tl.stack([]), ValueError, "stack: expected a non-empty list of Tensors"),
    ("split", lambda: x23().split([1, 1], dim=1), ValueError, "split: sizes"),
    ("split", lambda: x23().split([4, -1], dim=1), ValueError, r"split: sizes must be whole numbers >= 0, got \[4, -1"),
    ("split", lambda: x23().split(1.5, dim=1), ValueError, "split: split_size must be a whole number, at least 1"),
    ("take_along_dim", lambda: tl.take_along_dim(x23(), np.zeros(2, int), 1), ValueError,
     "take_along_dim: indices"),
    ("getitem", lambda: x23()[5], IndexError, "getitem: index 5 does not fit"),
    ("eq", lambda: x23() == tl.ones(4), ValueError, "eq: shapes"),
    ("ne", lambda: x23() != tl.ones(4), ValueError, "ne: shapes"),
    ("lt", lambda: x23() < "a", TypeError, "lt: cannot combine"),
    ("le", lambda: x23() <= tl.ones(5), ValueError, "le: shapes"),
    ("gt", lambda: x23() > tl.ones(5), ValueError, "gt: shapes"),
    ("ge", lambda: x23() >= tl.ones(5), ValueError, "ge: shapes"),
    ("and", lambda: x23() & x23(), TypeError, "and: needs bool or integer"),
    ("or", lambda: x23() | x23(), TypeError, "or: needs bool or integer"),
    ("xor", lambda: x23() ^ x23(), TypeError, "xor: needs bool or integer"),
    ("logical_not", lambda: ~x23(), TypeError, "logical_not: needs a bool tensor"),
    ("to", lambda: x23().to("tpu"), TypeError, "to: dtype|tpu"),
    ("item", lambda: x23().item(), ValueError, "item: only a one-element tensor"),
    ("numpy", lambda: x23().numpy(), RuntimeError, r"numpy: .* requires grad; use tensor\.detach\(\)\.numpy\(\)"),
    ("numpy", lambda: (x23() * 2).numpy(), RuntimeError, "numpy: can't call numpy"),
    ("size", lambda: x23().size(2), IndexError, "size: dim 2 is out of range"),
    ("requires_grad_", lambda: tl.tensor([1]).requires_grad_(), TypeError, "requires_grad_: only floating"),
    ("add_", lambda: x23().add_(1.0), RuntimeError, "add_: .* is a leaf tensor that requires grad"),
    ("sub_", lambda: tl.ones(2, 3).sub_(tl.ones(4, 2, 3)), ValueError, "sub_: the result has shape"),
    ("mul_", lambda: tl.tensor([1, 2]).mul_(0.5), TypeError, "mul_: the result is float32, which cannot"),
    ("div_", lambda: tl.tensor([1, 2]).div_(2), TypeError, "div_: the result is float32"),
    ("clamp_", lambda: tl.ones(2).clamp_(), ValueError, "clamp: give min, max or both"),
    ("fill_", lambda: x23().fill_(0.0), RuntimeError, "fill_: .* leaf tensor that requires grad"),
    ("zero_", lambda: tl.ones(3).expand(2, 3).zero_(), ValueError, "fill_: this tensor .* is a read-only view"),
    ("copy_", lambda: tl.ones(2).copy_(tl.ones(3)), ValueError, "expand: shape"),
]

# names with no bad input to give: they take no argument, or any tensor
NO_BAD_INPUT = {"float", "double", "long", "int", "bool", "clone", "detach", "tolist", "numel", "dim"}


@pytest.mark.parametrize("name, call, error, message", ERRORS, ids=[e[0] for e in ERRORS])
def test_bad_input_is_a_clear_error(name, call, error, message):
    with pytest.raises(error, match=message):
        call()


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
    valued = {c.name for c in CASES} | {"tensor", "zeros", "ones", "full", "zeros_like", "ones_like", "full_like",
                                        "arange", "rand", "randn", "randint"}   # test_creation_functions_...
    erred = {e[0] for e in ERRORS} | NO_BAD_INPUT
    assert not [n for n in names if n not in valued], "no value test for: " + str([n for n in names if n not in valued])
    assert not [n for n in names if n not in erred], "no error test for: " + str([n for n in names if n not in erred])
