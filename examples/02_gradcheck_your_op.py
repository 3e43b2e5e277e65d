"""Write your own op, then prove its backward with gradcheck (central differences in float64).

An op is one recipe in three parts, the way every op in tinygrad_llm/engine/ (ops.py, reductions.py, movement.py)
is written:
    1. a Function class: forward computes the output and saves what backward needs; backward applies the chain
       rule for this op, turning dL/d(out) into dL/d(input); the docstring states the derivative
    2. the function users call
    3. the Tensor method, attached right after it

    python examples/02_gradcheck_your_op.py
"""
import numpy as np

from tinygrad_llm import Function, Tensor
from tinygrad_llm.engine import backend
from tinygrad_llm.engine.gradcheck import GradcheckError, gradcheck


class SoftplusOp(Function):
    """out = log(1 + e^x).   dx = g · e^x / (1 + e^x) = g · sigmoid(x)."""

    def forward(ctx, x):
        ctx.save_for_backward(x)
        return backend.xp(x).logaddexp(0, x)  # xp: NumPy on the CPU, CuPy on the GPU, so the op runs on both

    def backward(ctx, g):
        (x,) = ctx.saved
        return g / (1 + backend.xp(x).exp(-x))


def softplus(x):
    """log(1 + e^x), elementwise."""
    return SoftplusOp.apply(x)


Tensor.softplus = softplus


# the three lines of a gradient check
x = Tensor(np.random.default_rng(0).standard_normal((4, 5)), requires_grad=True)   # float64
report = gradcheck(lambda x: x.softplus(), [x])
print(report)


# and what a mistake looks like: forget the minus sign in e^-x
class BrokenSoftplusOp(SoftplusOp):
    def backward(ctx, g):
        (x,) = ctx.saved
        return g / (1 + np.exp(x))


try:
    gradcheck(BrokenSoftplusOp.apply, [x])
except GradcheckError as e:
    print("\nthe broken backward is caught:\n" + str(e.report))
