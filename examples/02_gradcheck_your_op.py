"""Write your own op, then prove its backward with gradcheck (central differences in float64).

    python examples/02_gradcheck_your_op.py
"""
import numpy as np

from tinygrad_llm import Function, Tensor
from tinygrad_llm.engine.gradcheck import GradcheckError, gradcheck


class Softplus(Function):
    """out = log(1 + e^x).   dx = g · e^x / (1 + e^x) = g · sigmoid(x)."""

    def forward(ctx, x):
        ctx.save_for_backward(x)
        return np.logaddexp(0, x)

    def backward(ctx, g):
        (x,) = ctx.saved
        return g / (1 + np.exp(-x))


# the three lines of a gradient check
x = Tensor(np.random.default_rng(0).standard_normal((4, 5)), requires_grad=True)   # float64
report = gradcheck(Softplus.apply, [x])
print(report)


# and what a mistake looks like: forget the minus sign in e^-x
class BrokenSoftplus(Softplus):
    def backward(ctx, g):
        (x,) = ctx.saved
        return g / (1 + np.exp(x))


try:
    gradcheck(BrokenSoftplus.apply, [x])
except GradcheckError as e:
    print("\nthe broken backward is caught:\n" + str(e.report))
