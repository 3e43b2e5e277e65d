"""Layers and losses as Modules (PyTorch's names and settings): Linear, Embedding, LayerNorm, Dropout, the
activations and the losses, each a thin Module over its function in engine/functional.py or engine/ops.py."""
import math

import numpy as np

from ..engine import functional as F
from ..engine.movement import embedding
from ..engine.ops import sigmoid, tanh
from .init import random_parameter, uniform_parameter
from .module import Module, Parameter


def _check_sizes(layer, **sizes):
    """Refuse a layer size that is not a whole number >= 0 (0 is allowed, as in PyTorch), naming layer and size."""
    for name, size in sizes.items():
        if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 0:
            raise ValueError(f"{layer}: {name} must be a whole number >= 0, got {size!r}")


class Linear(Module):
    """y = x Wᵀ + b.   x (..., in_features) -> (..., out_features); weight (out, in) as in PyTorch,
    initialised uniform in ±1/sqrt(in_features) (PyTorch's default; models may re-initialise). With in_features 0
    the weight is empty, the bias zero and the output the bias, as in PyTorch."""

    def __init__(self, in_features, out_features, bias=True):
        _check_sizes("Linear", in_features=in_features, out_features=out_features)
        self.in_features, self.out_features = in_features, out_features
        bound = 1 / math.sqrt(in_features) if in_features > 0 else 0.0
        self.weight = uniform_parameter((out_features, in_features), bound)
        self.bias = uniform_parameter((out_features,), bound) if bias else None

    def forward(self, x):
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class Embedding(Module):
    """Row lookup: integer ids (...) -> (..., embedding_dim); weight (num_embeddings, embedding_dim) ~ N(0, 1)."""

    def __init__(self, num_embeddings, embedding_dim):
        _check_sizes("Embedding", num_embeddings=num_embeddings, embedding_dim=embedding_dim)
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        self.weight = random_parameter((num_embeddings, embedding_dim),
                                        lambda generator, shape: generator.standard_normal(shape))

    def forward(self, idx):
        return embedding(idx, self.weight)

    def extra_repr(self):
        return f"{self.num_embeddings}, {self.embedding_dim}"


class LayerNorm(Module):
    """Normalise the last axis to mean 0, variance 1, then scale by weight (ones) and shift by bias (zeros)."""

    def __init__(self, ndim, bias=True, eps=1e-5):
        self.weight = Parameter(np.ones(ndim, np.float32))
        self.bias = Parameter(np.zeros(ndim, np.float32)) if bias else None
        self.eps = eps

    def forward(self, x):
        return F.layer_norm(x, self.weight.shape, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return f"{self.weight.shape}, eps={self.eps}, bias={self.bias is not None}"


class Dropout(Module):
    """Zero each element with probability p while training (scaling the rest by 1/(1-p)); identity in eval."""

    def __init__(self, p=0.5):
        self.p = p

    def forward(self, x):
        return F.dropout(x, self.p, self.training)

    def extra_repr(self):
        return f"p={self.p}"


# ----- activations and losses: their functions as modules, to place in a Sequential -----

class ReLU(Module):
    """max(x, 0), elementwise."""

    def forward(self, x):
        return F.relu(x)


class GELU(Module):
    """x Φ(x), exact (approximate='none') or with GPT-2's tanh formula (approximate='tanh'); see F.gelu."""

    def __init__(self, approximate="none"):
        self.approximate = approximate

    def forward(self, x):
        return F.gelu(x, self.approximate)

    def extra_repr(self):
        return f"approximate={self.approximate!r}"


class Tanh(Module):
    """tanh(x), elementwise."""

    def forward(self, x):
        return tanh(x)


class Sigmoid(Module):
    """1 / (1 + e^-x), elementwise."""

    def forward(self, x):
        return sigmoid(x)


class CrossEntropyLoss(Module):
    """F.cross_entropy as a module: loss_fn(logits, targets), logits (N, C) or (N, C, d1..dk), integer targets (N,)
    or (N, d1..dk). The options are keywords only (PyTorch's first positional argument, class weights, is not
    supported)."""

    def __init__(self, *, ignore_index=-100, reduction="mean", label_smoothing=0.0):
        self.ignore_index, self.reduction, self.label_smoothing = ignore_index, reduction, label_smoothing

    def forward(self, input, target):
        return F.cross_entropy(input, target, ignore_index=self.ignore_index, reduction=self.reduction,
                               label_smoothing=self.label_smoothing)


class MSELoss(Module):
    """F.mse_loss as a module: loss_fn(input, target), both of one shape."""

    def __init__(self, *, reduction="mean"):
        self.reduction = reduction

    def forward(self, input, target):
        return F.mse_loss(input, target, reduction=self.reduction)
