"""Where did the NaN come from? A layer whose inputs are fine until one step makes a log(0), first without help
(the loss is simply inf), then inside detect_anomaly, which names the op, its inputs and the line that called it.
Then a NaN that appears only in backward: sqrt is fine at 0 forward, but its derivative 1/(2 sqrt(x)) is not.

    python examples/12_find_the_nan.py
"""
import numpy as np

import tinygrad_llm as tl

np.seterr(all="ignore")                                        # NumPy's warnings would say where, not which op


class LogLoss(tl.nn.Module):
    """-mean(log p) of a softmax's probabilities, written out: log(softmax) underflows where softmax rounds to 0."""

    def forward(self, logits, targets):                       # logits (N, C), targets (N,)
        p = tl.functional.softmax(logits, dim=-1)              # (N, C); a probability below 1e-45 becomes 0
        return -tl.log(p[np.arange(len(targets)), targets]).mean()


logits = tl.tensor([[0.0, 2.0, 1.0], [120.0, 0.0, 3.0]], requires_grad=True)   # row 2: class 1 is e^-120 ≈ 0
targets = np.array([1, 1])
loss = LogLoss()(logits, targets)
print(f"without help: loss = {loss.item()}")

try:
    with tl.detect_anomaly():
        loss = LogLoss()(logits, targets)
except tl.AnomalyError as e:
    print(f"\nwith detect_anomaly():\n{e}")
print("\n(the fix: F.cross_entropy, which works with log-softmax and never takes the log of a rounded 0)")

x = tl.tensor([0.0, 1.0, 4.0], requires_grad=True)
try:
    with tl.detect_anomaly():
        distance = tl.sqrt(x * x).sum()                        # |x|, fine in forward
        distance.backward()                                    # d sqrt(u)/du = 1/(2 sqrt(u)) = inf at u = 0
except tl.AnomalyError as e:
    print(f"\nin backward:\n{e}")
