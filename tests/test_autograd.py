"""The backward walk itself: order, accumulation, freeing the graph, no_grad, retain_grad, memory."""
import gc
import os
import subprocess
import sys
import tracemalloc
import weakref

import numpy as np
import pytest

import tinygrad_llm as tl
from conftest import assert_raises_naming
import tinygrad_llm.engine.functional as F
from tinygrad_llm import Tensor, no_grad
from tinygrad_llm.engine import backend
from tinygrad_llm.engine.movement import IndexedGrad
from tinygrad_llm.engine.tensor import _add_gradients
from tinygrad_llm.optim import SGD


def test_a_10000_op_chain_needs_no_recursion():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    y = x
    for _ in range(10_000):
        y = y * 1.0001
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [1.0001 ** 10_000] * 2, rtol=1e-9)


def test_a_tensor_used_twice_receives_both_gradients():
    x = Tensor(np.array(3.0), requires_grad=True)
    y = x * x + x            # dy/dx = 2x + 1 = 7
    y.backward()
    assert x.grad.item() == 7.0


@pytest.mark.parametrize("slices_first", [True, False])
def test_slice_gradients_and_a_shared_gradient_add_up(slices_first):
    """x feeds many slices (whose gradients the walk adds into one buffer, in place) and an Add, which hands one
    array to both of its inputs: x gets every contribution, and w exactly Add's."""
    generator = np.random.default_rng(0)
    x = Tensor(generator.standard_normal((5, 3)), requires_grad=True)
    w = Tensor(generator.standard_normal((5, 3)), requires_grad=True)
    c, d = generator.standard_normal((5, 3)), generator.standard_normal((3,))
    slices = sum((x[t] * d).sum() for t in range(5)) + (x[[0, 0, 4]] * 2.0).sum()
    shared = ((x + w) * c).sum()
    (slices + shared if slices_first else shared + slices).backward()
    picked = np.zeros((5, 3))
    np.add.at(picked, [0, 0, 4], 2.0)                                 # row 0 picked twice
    np.testing.assert_allclose(x.grad.numpy(), d + c + picked, rtol=1e-12)
    np.testing.assert_array_equal(w.grad.numpy(), c)


def test_slices_of_one_tensor_add_into_one_buffer(monkeypatch):
    """T slices of one array hand back T IndexedGrads, and the walk writes every one into a single buffer: O(T)
    work, never a full-size array per slice (O(T²))."""
    targets, add_to = [], IndexedGrad.add_to

    def recorded(self, array):
        targets.append(array)   # kept alive, so that two arrays never share an id
        add_to(self, array)

    monkeypatch.setattr(IndexedGrad, "add_to", recorded)
    T = 16
    x = Tensor(np.zeros((T, 3)), requires_grad=True)
    sum((x[t] * (t + 1.0)).sum() for t in range(T)).backward()
    assert len(targets) == T and all(array is targets[0] for array in targets)
    np.testing.assert_array_equal(x.grad.numpy(), np.repeat(np.arange(1.0, T + 1)[:, None], 3, axis=1))


def test_adding_gradients_never_writes_into_an_array_the_walk_does_not_own():
    """_add_gradients may add in place only into a buffer the walk allocated (in_place=True); an op's own array,
    which it may have handed to another input too, is never changed, whichever side the slice gradient is on."""
    shared = np.ones((4, 2))
    piece = IndexedGrad((4, 2), (slice(1, 3),), np.full((2, 2), 5.0), repeats=False)
    total = _add_gradients(shared, piece, in_place=False)
    np.testing.assert_array_equal(total, [[1, 1], [6, 6], [6, 6], [1, 1]])
    np.testing.assert_array_equal(shared, np.ones((4, 2)))
    total = _add_gradients(piece, shared, in_place=False)                 # the slice first: a new buffer
    np.testing.assert_array_equal(total, [[1, 1], [6, 6], [6, 6], [1, 1]])
    np.testing.assert_array_equal(shared, np.ones((4, 2)))
    _add_gradients(total, shared, in_place=True)                          # ours: the sum lands in it
    np.testing.assert_array_equal(total, [[2, 2], [7, 7], [7, 7], [2, 2]])


def test_gradients_accumulate_across_backward_calls_like_pytorch():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    (x * 3).sum().backward()
    (x * x).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [3 + 2, 3 + 4])


def test_a_second_backward_through_a_freed_graph_raises():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    y = (x.exp() * 2).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="retain_graph=True"):
        y.backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * np.exp([1.0, 2.0]))  # the failed call changed nothing


def test_retain_graph_allows_a_second_backward():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    y = (x.exp() * 2).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), 4 * np.exp([1.0, 2.0]))


def test_backward_frees_saved_arrays_and_the_graph():
    x = Tensor(np.ones(3), requires_grad=True)
    y = x.tanh()
    node = weakref.ref(y._ctx)
    assert y._ctx.saved
    y.sum().backward()
    assert y._ctx.freed and not hasattr(y._ctx, "saved")
    del y
    gc.collect()
    assert node() is None


def test_backward_of_a_non_scalar_needs_a_gradient():
    y = Tensor(np.ones((2, 3)), requires_grad=True) * 2
    with pytest.raises(RuntimeError, match=r"shape \(2, 3\)"):
        y.backward()
    with pytest.raises(ValueError, match=r"\(3,\).*\(2, 3\)"):
        y.backward(np.ones(3))
    y.backward(np.full((2, 3), 0.5))


def test_backward_without_a_graph_says_so():
    with pytest.raises(RuntimeError, match="does not require grad"):
        Tensor(np.ones(2)).sum().backward()


def test_no_grad_records_nothing_and_works_as_a_decorator():
    x = Tensor(np.ones(2), requires_grad=True)
    with no_grad():
        y = x * 2
    assert not y.requires_grad and y._ctx is None

    @no_grad()
    def double(t):
        return t * 2
    assert not double(x).requires_grad
    assert (x * 2).requires_grad


def test_grad_modes_nest_decorate_and_restore_as_pytorchs(torch):
    """no_grad, enable_grad, inference_mode(mode) and set_grad_enabled(mode), as blocks, as decorators with and
    without the call, and set_grad_enabled as a plain call: grad mode, inference mode and whether the graph is
    recorded at each point, the same in both libraries (inside inference_mode nothing is recorded even with grad
    mode on, and a parameter may change in place); a bad mode is refused naming the function."""
    def trace(lib):
        seen = []
        x = lib.ones(2, requires_grad=True)

        def record():
            seen.append((lib.is_grad_enabled(), lib.is_inference_mode_enabled(), (x * 2).requires_grad))

        with lib.no_grad():
            record()
            with lib.enable_grad():
                record()
            with lib.inference_mode(mode=False):
                record()
            record()
        with lib.inference_mode():
            record()
            with lib.set_grad_enabled(True):
                record()
                x.add_(1)
            record()
        lib.no_grad(record)()
        lib.inference_mode(record)()
        lib.enable_grad()(record)()
        lib.set_grad_enabled(False)(record)()
        record()   # decorating with set_grad_enabled(False) changed nothing here

        @lib.no_grad
        def countdown(n):   # each recursive call restores what its caller had
            with lib.enable_grad():
                record()
                return n if n == 0 else countdown(n - 1)
        countdown(2)
        record()
        lib.set_grad_enabled(mode=False)
        record()
        lib.set_grad_enabled(True)
        record()
        return seen, x.tolist()

    assert trace(tl) == trace(torch)
    for make in (tl.set_grad_enabled, tl.inference_mode):
        assert_raises_naming(lambda: make(1), TypeError, [make.__name__, "bool", "int"])
    assert tl.is_grad_enabled()


def test_retain_grad_keeps_an_intermediate_gradient():
    x = Tensor(np.array([1.0, -2.0]), requires_grad=True)
    h = (x * 3).retain_grad()
    other = x * 5
    (h * h + other).sum().backward()
    np.testing.assert_array_equal(h.grad.numpy(), 2 * h.detach().numpy())
    assert other.grad is None


def test_detach_cuts_the_graph():
    x = Tensor(np.array([2.0]), requires_grad=True)
    y = x * x.detach()         # d/dx = x (the detached factor is a constant)
    y.sum().backward()
    assert x.grad.item() == 2.0


def test_leaf_gradients_never_share_memory():
    a = Tensor(np.ones(3), requires_grad=True)
    b = Tensor(np.ones(3), requires_grad=True)
    (a + b).sum().backward()   # add hands one gradient array to both inputs
    a.grad.data *= 10
    np.testing.assert_array_equal(b.grad.numpy(), np.ones(3))


def test_to_dtype_converts_the_gradient_back():
    x = Tensor(np.array([1.5, 2.0], dtype=np.float32), requires_grad=True)
    y = x.to(np.float64)
    assert y.dtype == np.float64
    (y * y).sum().backward()
    assert x.grad.dtype == np.float32
    np.testing.assert_allclose(x.grad.numpy(), [3.0, 4.0])
    assert x.to("cpu") is x


def test_to_cuda_without_a_gpu_is_a_clear_error():
    """Where CuPy is missing or finds no GPU, and the mock device is off, device 'cuda' says which, and how to go on
    without a GPU. In a fresh process: the GPU tests of this run may be using the mock device."""
    code = "import numpy as np; from tinygrad_llm import Tensor; Tensor(np.ones(2)).to('cuda')"
    env = {name: value for name, value in os.environ.items() if name != backend.MOCK_ENV}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    if done.returncode == 0:
        pytest.skip("a usable GPU is present")
    assert "RuntimeError: device 'cuda'" in done.stderr and f"{backend.MOCK_ENV}=1" in done.stderr, done.stderr


def test_only_floating_tensors_require_grad():
    with pytest.raises(TypeError, match="int64"):
        Tensor(np.arange(3), requires_grad=True)


def test_dtype_defaults():
    assert Tensor([1.0, 2.0]).dtype == np.float32          # Python floats: float32
    assert Tensor(np.zeros(2)).dtype == np.float64         # NumPy arrays keep their dtype
    assert Tensor(np.float64(1.0)).dtype == np.float64
    assert (Tensor(np.zeros(2, np.float32)) * 2.5).dtype == np.float32  # numbers adopt the tensor's dtype


def test_memory_does_not_grow_over_1000_training_steps():
    rng = np.random.default_rng(0)
    w1 = Tensor(rng.standard_normal((16, 32)).astype(np.float32) * 0.1, requires_grad=True)
    w2 = Tensor(rng.standard_normal((10, 16)).astype(np.float32) * 0.1, requires_grad=True)
    x = Tensor(rng.standard_normal((8, 32)).astype(np.float32))
    targets = rng.integers(0, 10, 8)
    opt = SGD([w1, w2], lr=0.1)

    def step():
        loss = F.cross_entropy(F.linear(F.gelu(F.linear(x, w1), approximate="tanh"), w2), targets)
        opt.zero_grad()
        loss.backward()
        opt.step()

    for _ in range(50):
        step()
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for _ in range(1000):
        step()
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    assert after - before < 64 * 1024, f"memory grew by {after - before} bytes over 1000 steps"


def graph_names(node):
    """The graph below a grad_fn as nested (name, inputs) pairs, walked through next_functions as in PyTorch; None
    for an input that needs no gradient."""
    if node is None:
        return None
    return node.name(), tuple(graph_names(child) for child, _ in node.next_functions)


def test_grad_fn_and_next_functions_walk_the_graph_as_in_pytorch(torch):
    """A learner's walk over loss.grad_fn: the same graph, node for node, with PyTorch's names where our Functions
    are named as its nodes (MulOp: MulBackward0), and one AccumulateGrad per leaf, whose .variable is the leaf."""
    values = [np.array([0.5, -1.0, 2.0]), np.array([1.5, 2.0, -0.5]), np.array([2.0, 4.0, -1.0])]
    a, b, c = (Tensor(v, requires_grad=i == 0) for i, v in enumerate(values))
    ta, tb, tc = (torch.tensor(v, requires_grad=i == 0) for i, v in enumerate(values))
    loss = ((a * b + a.exp()).tanh() - a / c).mean()
    expected = ((ta * tb + ta.exp()).tanh() - ta / tc).mean()
    assert graph_names(loss.grad_fn) == graph_names(expected.grad_fn)
    assert graph_names(loss.grad_fn)[0] == "MeanBackward0" and type(loss.grad_fn).__name__ == "MeanOp"

    leaves = []
    stack = [loss.grad_fn]
    while stack:
        node = stack.pop()
        for child, index in node.next_functions:
            assert index == 0
            if child is not None and not child.next_functions:
                leaves.append(child)
            elif child is not None:
                stack.append(child)
    assert len(leaves) == 3 and all(leaf is leaves[0] for leaf in leaves)   # a's node, met once per use
    assert leaves[0].variable is a and leaves[0].name() == "torch::autograd::AccumulateGrad"
    assert a.grad_fn is None and b.grad_fn is None and loss.grad_fn is loss._ctx
    assert repr(loss).endswith(", grad_fn=<MeanBackward0>)") and repr(expected).endswith(", grad_fn=<MeanBackward0>)")


def test_next_functions_after_backward_says_the_graph_was_freed():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    kept, freed = (x * x).sum(), (x * x).sum()
    kept.backward(retain_graph=True)
    assert kept.grad_fn.next_functions[0][0].name() == "MulBackward0"
    freed.backward()
    with pytest.raises(RuntimeError, match="next_functions: the graph through sum was freed by backward; pass "
                                           "retain_graph=True"):
        freed.grad_fn.next_functions
