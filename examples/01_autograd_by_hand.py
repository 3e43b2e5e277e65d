"""Autograd, checked by hand: build a small expression, call backward, compare with the chain rule.

    python examples/01_autograd_by_hand.py
"""
import numpy as np

from tinygrad_llm import Tensor

# y = tanh(w·x + b): one neuron
x = Tensor(np.array([0.5, -1.0, 2.0]))
w = Tensor(np.array([0.3, 0.8, -0.2]), requires_grad=True)
b = Tensor(np.array(0.1), requires_grad=True)
y = (w * x).sum() + b
out = y.tanh()
out.backward()                     # walks the graph backwards: tanh, add, sum, mul

# the chain rule, written out: d out/d w = (1 - tanh²(y)) · x,   d out/d b = 1 - tanh²(y)
dtanh = 1 - np.tanh(y.item()) ** 2
print("dout/dw by autograd:", w.grad.numpy())
print("dout/dw by hand:    ", dtanh * x.numpy())
print("dout/db by autograd:", b.grad.item(), " by hand:", dtanh)
assert np.allclose(w.grad.numpy(), dtanh * x.numpy()) and np.isclose(b.grad.item(), dtanh)
