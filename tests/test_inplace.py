"""In-place ops and autograd's safety net around them (engine/inplace.py): the leaf rule, the version counter that
catches an array changed after an op saved it, the graph kept through an in-place change, and a hand-written SGD
step under no_grad equal to optim.SGD."""
import numpy as np
import pytest

import tinygrad_llm as tl
from tinygrad_llm.optim import SGD


def test_plus_equals_changes_the_tensor_itself():
    x = tl.tensor([1.0, 2.0])
    data, same = x.data, x
    x += 1
    x *= 3
    assert x is same and x.data is data and x.tolist() == [6.0, 9.0] and x._version == 2


def test_a_saved_output_changed_in_place_stops_backward_naming_the_op():
    """The must-show: sigmoid saves its output; doubling it in place would make d sigmoid wrong."""
    x = tl.tensor([0.5, -1.0], requires_grad=True)
    y = x.sigmoid()
    y.mul_(2)
    with pytest.raises(RuntimeError, match=r"sigmoid\.backward: an array this op saved .*version 0 is now 1"):
        y.sum().backward()


def test_a_saved_input_changed_in_place_stops_backward():
    w = tl.tensor([1.0, 2.0], requires_grad=True)
    mask = tl.tensor([1.0, 0.0])            # not a parameter: it may change in place, but mul saved it
    out = w * mask
    mask.zero_()
    with pytest.raises(RuntimeError, match=r"mul\.backward: an array this op saved"):
        out.sum().backward()


def test_a_change_through_a_view_counts():
    """Versions belong to the buffer: changing x.detach() or a slice of x changes x's numbers, and is caught."""
    for view in (lambda y: y.detach(), lambda y: y.detach()[1:]):
        x = tl.tensor([0.5, -1.0, 2.0], requires_grad=True)
        y = x.exp()                               # exp saves its output
        view(y).mul_(0)
        with pytest.raises(RuntimeError, match=r"exp\.backward: an array this op saved"):
            y.sum().backward()


def test_an_unsaved_tensor_may_change_freely():
    """add saves neither input: changing one after the forward changes no gradient, so backward runs."""
    w = tl.tensor([1.0, 2.0], requires_grad=True)
    shift = tl.tensor([3.0, 4.0])
    out = w + shift
    shift.add_(100)
    out.sum().backward()
    np.testing.assert_array_equal(w.grad.numpy(), [1, 1])


def test_a_parameter_changes_in_place_only_inside_no_grad():
    w = tl.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match=r"sub_: .* is a leaf tensor that requires grad"):
        w -= 1
    with tl.no_grad():
        w -= 1
    assert w.requires_grad and w.is_leaf and w.tolist() == [0.0, 1.0]
    (w * w).sum().backward()                 # still a parameter: the next backward reaches it
    np.testing.assert_array_equal(w.grad.numpy(), [0, 2])


def test_an_in_place_change_inside_the_graph_is_differentiated():
    x = tl.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = x * 2
    y.add_(x)                                 # y = 3x, through the in-place op
    y.mul_(y.detach().clone())                # y = 3x · 3x, the second factor a constant (a copy: see below)
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 3 * 3 * np.array([1.0, 2.0, 3.0]))


def test_a_tensor_already_used_by_another_op_cannot_change_in_place():
    """z used y; changing y now would route z's gradient through the change: refused (see inplace.py)."""
    x = tl.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    z = y * 3
    with pytest.raises(RuntimeError, match=r"mul_: this tensor .* is already an input of another op"):
        y.mul_(2)
    assert z.tolist() == [6.0, 12.0]


def test_a_view_of_another_tensor_cannot_join_the_graph_in_place():
    """y[0].add_(w) wrote w into y's numbers while only the view's graph knew of w: a loss of y then came out with
    w's numbers and without w's gradient (PyTorch rewrites y's graph there). Refused, in and out of the graph's
    views; an op's own output changes in place as before, and outside the graph a view is written as before."""
    x = tl.tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    w = tl.tensor(np.ones(3), requires_grad=True)
    w32 = tl.tensor(np.ones(3, np.float32), requires_grad=True)
    cases = {"y[0]": lambda: ((x * 2)[0], w), "y.t()": lambda: ((x * 2).t(), w.reshape(3, 1)),
             "zeros(2, 3)[0]": lambda: (tl.zeros(2, 3)[0], w32), "y.view(6)": lambda: ((x * 2).view(6)[:3], w)}
    for name, case in cases.items():
        view, value = case()
        with pytest.raises(RuntimeError, match=r"add_: this tensor .* is a view of another one's numbers"):
            view.add_(value)
    h = tl.nn.Linear(3, 3).double()(x)   # its output may view a temporary of the op: not another tensor
    h += w
    (h * h).sum().backward()
    assert w.grad is not None and np.allclose(w.grad.numpy(), 2 * h.detach().numpy().sum(0))
    y = tl.zeros(2, 3)
    with tl.no_grad():
        y[0].add_(1.0)
    assert y.tolist() == [[1.0, 1.0, 1.0], [0.0, 0.0, 0.0]]


def test_the_result_must_fit_the_tensor():
    with pytest.raises(TypeError, match="add_: the result is float32, which cannot be stored in the int64"):
        tl.tensor([1, 2]).add_(0.5)
    with pytest.raises(ValueError, match=r"add_: the result has shape \(2, 2\)"):
        tl.tensor([1.0, 2.0]).add_(tl.ones(2, 2))
    ints = tl.tensor([1, 2])
    ints += 3                                 # int into int: fine
    assert ints.tolist() == [4, 5] and ints.dtype == np.int64


def test_a_hand_written_sgd_loop_equals_optim_sgd():
    """The newcomer's first loop: forward, backward, `with no_grad(): w -= lr * w.grad`, zero the gradient."""
    r = np.random.default_rng(0)
    x, y = tl.tensor(r.standard_normal((16, 3))), tl.tensor(r.standard_normal((16, 1)))
    start_w, start_b = r.standard_normal((3, 1)), np.zeros(1)

    def loss_of(w, b):
        return ((x @ w + b - y) ** 2).mean()

    w, b = tl.tensor(start_w, requires_grad=True), tl.tensor(start_b, requires_grad=True)
    for _ in range(20):
        loss_of(w, b).backward()
        with tl.no_grad():
            w -= 0.1 * w.grad
            b -= 0.1 * b.grad
        w.grad = b.grad = None
    w2, b2 = tl.tensor(start_w, requires_grad=True), tl.tensor(start_b, requires_grad=True)
    optimizer = SGD([w2, b2], lr=0.1)
    for _ in range(20):
        optimizer.zero_grad()
        loss_of(w2, b2).backward()
        optimizer.step()
    np.testing.assert_allclose(w.detach().numpy(), w2.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(b.detach().numpy(), b2.detach().numpy(), rtol=1e-12)
    assert loss_of(w, b).item() < 0.5 * loss_of(tl.tensor(start_w), tl.tensor(start_b)).item()
