"""gradcheck must pass correct gradients and, just as important, catch wrong ones."""
import numpy as np
import pytest

from tinygrad_llm import Function, Tensor
from tinygrad_llm.engine.gradcheck import GradcheckError, gradcheck


class Cube(Function):
    """out = x³.  dx = 3x² g."""

    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x ** 3

    def backward(ctx, g):
        (x,) = ctx.saved
        return 3 * x * x * g


class WrongCube(Cube):
    """The same forward with a deliberately wrong derivative (2x² instead of 3x²)."""

    def backward(ctx, g):
        (x,) = ctx.saved
        return 2 * x * x * g


def inputs(*shape, seed=0):
    return [Tensor(np.random.default_rng(seed).standard_normal(shape), requires_grad=True)]


@pytest.mark.parametrize("mode", ["jacobian", "directions"])
def test_a_correct_backward_passes(mode):
    report = gradcheck(Cube.apply, inputs(3, 4), mode=mode)
    assert report.passed and report[0]["max_abs_error"] < 1e-6


@pytest.mark.parametrize("mode", ["jacobian", "directions"])
def test_a_wrong_backward_fails(mode):
    with pytest.raises(GradcheckError) as failure:
        gradcheck(WrongCube.apply, inputs(3, 4), mode=mode)
    assert not failure.value.report.passed
    assert "FAILED" in str(failure.value)
    report = gradcheck(WrongCube.apply, inputs(3, 4), mode=mode, raise_on_failure=False)
    assert not report.passed and report[0]["max_rel_error"] > 0.1


def test_the_report_names_each_input():
    a, b = inputs(2, 3, seed=1)[0], inputs(3, seed=2)[0]
    report = gradcheck(lambda x, y: (x * y).tanh(), [a, b])
    assert [row["index"] for row in report.rows] == [0, 1]
    assert [row["shape"] for row in report.rows] == [(2, 3), (3,)]


def test_large_inputs_use_random_directions():
    report = gradcheck(lambda x: (x @ x.T).tanh().sum(axis=0), inputs(40, 30))
    assert report.mode == "directions" and report.passed


def test_float32_inputs_are_refused():
    with pytest.raises(TypeError, match="float64"):
        gradcheck(Cube.apply, [Tensor(np.ones(3, np.float32), requires_grad=True)])


def test_the_callers_tensors_are_untouched():
    (x,) = inputs(5)
    before = x.detach().numpy().copy()
    gradcheck(Cube.apply, [x])
    np.testing.assert_array_equal(x.detach().numpy(), before)
    assert x.grad is None
