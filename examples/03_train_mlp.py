"""Train a small classifier with the engine: two interleaved spirals, a 2-layer MLP, AdamW with warmup + cosine.

    python examples/03_train_mlp.py
"""
import numpy as np

import tinygrad_llm.engine.functional as F
from tinygrad_llm import Tensor, no_grad
from tinygrad_llm.optim import AdamW, clip_grad_norm_, set_lr, warmup_cosine_lr

rng = np.random.default_rng(0)

# ---- data: 2 spirals of 200 points each, (400, 2) points and (400,) labels
n = 200
t = np.sqrt(rng.random(n)) * 3 * np.pi
spiral = np.stack([t * np.cos(t), t * np.sin(t)], axis=1) / (3 * np.pi)
points = np.concatenate([spiral, -spiral]) + 0.02 * rng.standard_normal((2 * n, 2))
labels = np.repeat([0, 1], n)
x = Tensor(points.astype(np.float32))                                    # (400, 2)

# ---- model: 2 -> 64 -> 64 -> 2, weights (out, in) as in PyTorch
def init(fan_out, fan_in):
    return Tensor((rng.standard_normal((fan_out, fan_in)) / np.sqrt(fan_in)).astype(np.float32), requires_grad=True)

w1, b1 = init(64, 2), Tensor(np.zeros(64, np.float32), requires_grad=True)
w2, b2 = init(64, 64), Tensor(np.zeros(64, np.float32), requires_grad=True)
w3, b3 = init(2, 64), Tensor(np.zeros(2, np.float32), requires_grad=True)


def model(x):                                                             # (N, 2) -> (N, 2) logits
    h = F.gelu(F.linear(x, w1, b1))
    h = F.gelu(F.linear(h, w2, b2))
    return F.linear(h, w3, b3)


optimizer = AdamW([{"params": [w1, w2, w3], "weight_decay": 1e-4},      # decay the matrices only
                   {"params": [b1, b2, b3], "weight_decay": 0.0}], lr=1e-2)
steps = 600
for step in range(steps):
    set_lr(optimizer, warmup_cosine_lr(step, max_lr=1e-2, min_lr=1e-3, warmup_steps=30, decay_steps=steps))
    loss = F.cross_entropy(model(x), labels)
    optimizer.zero_grad()
    loss.backward()
    clip_grad_norm_(optimizer.param_groups[0]["params"] + optimizer.param_groups[1]["params"], 1.0)
    optimizer.step()
    if step % 100 == 0 or step == steps - 1:
        with no_grad():
            accuracy = (model(x).numpy().argmax(axis=1) == labels).mean()
        print(f"step {step:4d}  loss {loss.item():.4f}  accuracy {accuracy:.1%}")

assert accuracy > 0.95, "the MLP should separate the spirals"
