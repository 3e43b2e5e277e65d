"""Containers: modules that hold modules (Sequential, ModuleList, ModuleDict), as in PyTorch."""
from .module import Module


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
