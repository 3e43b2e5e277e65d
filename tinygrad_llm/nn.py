"""Modules: parameters grouped into layers, layers into models (PyTorch's nn.Module, written small).

A Module finds its parameters and sub-modules by looking at its own attributes: a Tensor with requires_grad is a
parameter, a Module is a child. Names follow the attribute path (`transformer.h.0.attn.c_attn.weight`), so
state dicts read like PyTorch's and can be mapped onto other checkpoints.
"""
import math

import numpy as np

from .engine import backend, rng
from .engine import functional as F
from .engine.movement import embedding
from .engine.tensor import Tensor


class Module:
    training = True

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} does not define forward")

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    # ----- the tree -----
    def named_children(self):
        for name, value in vars(self).items():
            if isinstance(value, Module):
                yield name, value

    def children(self):
        return [child for _, child in self.named_children()]

    def modules(self):
        """This module and every module below it, depth first."""
        found = [self]
        for child in self.children():
            found += child.modules()
        return found

    def named_parameters(self, prefix="", with_duplicates=False):
        """(dotted name, parameter) pairs. A parameter shared by two modules (tied weights) is listed once,
        under its first name, unless with_duplicates (as state_dict needs, to keep every name)."""
        seen = set()
        for name, p in self._all_parameters(prefix):
            if with_duplicates or id(p) not in seen:
                seen.add(id(p))
                yield name, p

    def _all_parameters(self, prefix):
        for name, value in vars(self).items():
            if isinstance(value, Tensor) and value.requires_grad:
                yield prefix + name, value
            elif isinstance(value, Module):
                yield from value._all_parameters(prefix + name + ".")

    def parameters(self):
        return [p for _, p in self.named_parameters()]

    def num_params(self):
        return sum(p.numel() for p in self.parameters())

    # ----- modes and gradients -----
    def train(self, mode=True):
        for m in self.modules():
            m.training = mode
        return self

    def eval(self):
        return self.train(False)

    def zero_grad(self):
        for p in self.parameters():
            p.grad = None

    # ----- moving and saving -----
    def to(self, target):
        """Move every parameter to a device ('cpu', 'cuda') or float dtype, in place: the Tensor objects stay
        the same, so optimizers and tied weights keep pointing at them."""
        for p in self.parameters():
            p.data = p.to(target).data
            p.grad = None
        return self

    def state_dict(self):
        """{dotted name: NumPy array copy} for every parameter name (tied weights appear under each name)."""
        return {name: p.numpy().copy() for name, p in self.named_parameters(with_duplicates=True)}

    def load_state_dict(self, state_dict, strict=True):
        """Copy arrays into the parameters. Every name, shape and dtype is checked before anything is written,
        so a mismatch leaves the model as it was. strict=False ignores missing and unexpected names."""
        own = dict(self.named_parameters(with_duplicates=True))
        missing = sorted(set(own) - set(state_dict))
        unexpected = sorted(set(state_dict) - set(own))
        if strict and (missing or unexpected):
            raise KeyError(f"load_state_dict: missing keys {missing}, unexpected keys {unexpected}")
        for name in set(own) & set(state_dict):
            array, p = state_dict[name], own[name]
            if tuple(array.shape) != p.shape:
                raise ValueError(f"load_state_dict: {name} has shape {tuple(array.shape)} in the state dict, "
                                 f"{p.shape} in the model")
            if np.dtype(array.dtype) != p.dtype:
                raise TypeError(f"load_state_dict: {name} is {array.dtype} in the state dict, {p.dtype} in the "
                                f"model; convert the model with .to(dtype) first")
        for name in set(own) & set(state_dict):
            own[name].data[...] = backend.to_device(np.asarray(state_dict[name]), own[name].device)


_skipping_init = False


class skip_init:
    """Inside `with nn.skip_init():` new modules get zero parameters and draw no random numbers. For a model whose
    weights are read in next (a checkpoint, a GPT-2 directory): drawing every weight only to overwrite it took
    most of the loading time (6 s of a 124M-parameter GPT-2's), and would move the seeded generator."""

    def __enter__(self):
        global _skipping_init
        self._previous, _skipping_init = _skipping_init, True

    def __exit__(self, *exc):
        global _skipping_init
        _skipping_init = self._previous


def skipping_init():
    """True inside `skip_init`: initialisers (models.transformer.init_gpt2_weights, ...) leave parameters alone."""
    return _skipping_init


def _random_parameter(shape, draw):
    """A float32 parameter of `shape` filled by draw(generator, shape), or zeros inside skip_init."""
    data = np.zeros(shape, np.float32) if _skipping_init else draw(rng.generator("cpu"), shape).astype(np.float32)
    return Tensor(data, requires_grad=True)


def uniform_parameter(shape, bound):
    """A float32 parameter drawn uniformly from [-bound, bound] with the engine's seeded generator."""
    return _random_parameter(shape, lambda generator, shape: generator.uniform(-bound, bound, shape))


class Linear(Module):
    """y = x Wᵀ + b.   x (..., in_features) -> (..., out_features); weight (out, in) as in PyTorch,
    initialised uniform in ±1/sqrt(in_features) (PyTorch's default; models may re-initialise)."""

    def __init__(self, in_features, out_features, bias=True):
        bound = 1 / math.sqrt(in_features)
        self.weight = uniform_parameter((out_features, in_features), bound)
        self.bias = uniform_parameter((out_features,), bound) if bias else None

    def forward(self, x):
        return F.linear(x, self.weight, self.bias)


class Embedding(Module):
    """Row lookup: integer ids (...) -> (..., embedding_dim); weight (num_embeddings, embedding_dim) ~ N(0, 1)."""

    def __init__(self, num_embeddings, embedding_dim):
        self.weight = _random_parameter((num_embeddings, embedding_dim),
                                        lambda generator, shape: generator.standard_normal(shape))

    def forward(self, idx):
        return embedding(idx, self.weight)


class LayerNorm(Module):
    """Normalise the last axis to mean 0, variance 1, then scale by weight (ones) and shift by bias (zeros)."""

    def __init__(self, ndim, bias=True, eps=1e-5):
        self.weight = Tensor(np.ones(ndim, np.float32), requires_grad=True)
        self.bias = Tensor(np.zeros(ndim, np.float32), requires_grad=True) if bias else None
        self.eps = eps

    def forward(self, x):
        return F.layer_norm(x, self.weight.shape, self.weight, self.bias, self.eps)


class Dropout(Module):
    """Zero each element with probability p while training (scaling the rest by 1/(1-p)); identity in eval."""

    def __init__(self, p=0.5):
        self.p = p

    def forward(self, x):
        return F.dropout(x, self.p, self.training)


class Sequential(Module):
    """Modules applied one after another; named 0, 1, 2, ... as in PyTorch."""

    def __init__(self, *layers):
        for i, layer in enumerate(layers):
            setattr(self, str(i), layer)

    def __iter__(self):
        return iter(self.children())

    def __len__(self):
        return len(self.children())

    def __getitem__(self, i):
        return self.children()[i]

    def forward(self, x):
        for layer in self:
            x = layer(x)
        return x


class ModuleList(Sequential):
    """A list of modules, named 0, 1, 2, ...; the caller decides how to use them (no forward)."""

    def forward(self, *args, **kwargs):
        raise TypeError("ModuleList has no forward: iterate over it")


class ModuleDict(Module):
    """Named sub-modules, reached as attributes (`transformer.wte`) or by key (`transformer["wte"]`)."""

    def __init__(self, **modules):
        for name, module in modules.items():
            setattr(self, name, module)

    def __getitem__(self, name):
        return getattr(self, name)
