"""Containers: modules that hold modules, as PyTorch's, in its forms only: Sequential(*modules) or
Sequential(OrderedDict), ModuleList(iterable), ModuleDict(mapping or iterable of (name, module) pairs). Anything
that is not a Module is refused, naming its type: Sequential([a, b]) or ModuleList(*blocks) must not build an
empty or partial model that trains without a word. The modules are the container's attributes "0", "1", ... (or
the given names), so parameters are named "0.weight", "h.1.attn.weight" as in PyTorch."""
import operator
from collections import OrderedDict
from collections.abc import Iterable, Mapping

from .module import Module, typename


def _module(where, value, hint=""):
    if not isinstance(value, Module):
        raise TypeError(f"{where}: {typename(value)} is not a Module subclass{hint}")
    return value


class _ModuleSequence(Module):
    """What Sequential and ModuleList share: modules numbered 0, 1, ..., reached by position."""

    def _position(self, index):
        """`index` as a position 0 .. len - 1 (negative ones count from the end), or PyTorch's IndexError."""
        size, index = len(self), operator.index(index)
        if not -size <= index < size:
            raise IndexError(f"index {index} is out of range")
        return index % size

    def _renumber(self, modules):
        """Hold exactly `modules`, named 0, 1, ... in order (after a deletion or an insertion, as PyTorch does)."""
        for name, _ in self._submodules():
            delattr(self, name)
        for i, module in enumerate(modules):
            self.add_module(str(i), module)

    def __len__(self):
        return len(self._submodules())

    def __iter__(self):
        return iter([module for _, module in self._submodules()])

    def __setitem__(self, index, module):
        setattr(self, self._submodules()[self._position(index)][0], _module(type(self).__name__, module))

    def __delitem__(self, index):
        modules = list(self)
        dropped = set(range(len(modules))[index] if isinstance(index, slice) else [self._position(index)])
        self._renumber([module for i, module in enumerate(modules) if i not in dropped])

    def pop(self, index):
        module = self[index]
        del self[index]
        return module

    def append(self, module):
        self.add_module(str(len(self)), _module(f"{type(self).__name__}.append", module))
        return self


class Sequential(_ModuleSequence):
    """Modules applied one after another: Sequential(*modules), named 0, 1, 2, ..., or Sequential(OrderedDict)
    named by its keys."""

    def __init__(self, *args):
        if len(args) == 1 and isinstance(args[0], OrderedDict):
            for name, module in args[0].items():
                self.add_module(name, _module("Sequential", module))
            return
        for i, module in enumerate(args):
            self.add_module(str(i), _module("Sequential", module, "; pass the modules themselves, "
                                                                  "Sequential(*modules), or an OrderedDict of them"))

    def __getitem__(self, index):
        """A module, or for a slice a Sequential of those modules under their names."""
        if isinstance(index, slice):
            return type(self)(OrderedDict(self._submodules()[index]))
        return self._submodules()[self._position(index)][1]

    def _sequential(self, other):
        if not isinstance(other, Sequential):
            raise ValueError(f"Sequential: add operator supports only objects of Sequential class, but "
                             f"{type(other)} is given.")
        return other

    def __add__(self, other):
        return Sequential(*self, *self._sequential(other))

    def __iadd__(self, other):
        return self.extend(self._sequential(other))

    def insert(self, index, module):
        """`module` placed before position `index` (0 .. len, negative from the end); returns self."""
        size, index = len(self), operator.index(index)
        if not -size <= index <= size:
            raise IndexError(f"Sequential.insert: index {index} is out of range for {size} modules")
        modules = list(self)
        modules.insert(index, _module("Sequential.insert", module))
        self._renumber(modules)
        return self

    def extend(self, sequential):
        for module in sequential:
            self.append(module)
        return self

    def forward(self, input):
        for module in self:
            input = module(input)
        return input


class ModuleList(_ModuleSequence):
    """A list of modules, ModuleList(iterable), named 0, 1, 2, ...; the caller decides how to use them (it has no
    forward). Indexing, slicing (a ModuleList), append, extend, insert, del, pop and + work as on a list."""

    def __init__(self, modules=None):
        if modules is not None:
            self.extend(modules)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return type(self)(list(self)[index])
        return self._submodules()[self._position(index)][1]

    def __iadd__(self, modules):
        return self.extend(modules)

    def __add__(self, other):
        return ModuleList([*self, *other])

    def insert(self, index, module):
        """`module` placed before position `index`, as list.insert."""
        modules = list(self)
        modules.insert(operator.index(index), _module("ModuleList.insert", module))
        self._renumber(modules)

    def extend(self, modules):
        if not isinstance(modules, Iterable):
            raise TypeError(f"ModuleList.extend should be called with an iterable, but got {typename(modules)}")
        for module in modules:
            self.append(module)
        return self

    def _child_lines(self):
        """PyTorch's ModuleList repr: a run of modules that print the same is one line, "(0-11): 12 x Block(...)"."""
        runs = []  # [first, last, repr]
        for i, module in enumerate(self):
            text = repr(module)
            if runs and runs[-1][2] == text:
                runs[-1][1] = i
            else:
                runs.append([i, i, text])
        return [(f"({first}): " if first == last else f"({first}-{last}): {last - first + 1} x ")
                + text.replace("\n", "\n  ") for first, last, text in runs]


class ModuleDict(Module):
    """Named sub-modules: ModuleDict(mapping) or ModuleDict(iterable of (name, module) pairs), reached by key
    (`transformer["wte"]`) or as attributes (`transformer.wte`), with a dict's methods."""

    def __init__(self, modules=None):
        if modules is not None:
            self.update(modules)

    def __getitem__(self, key):
        module = vars(self).get(key) if isinstance(key, str) else None
        if not isinstance(module, Module):
            raise KeyError(key)
        return module

    def __setitem__(self, key, module):
        self.add_module(key, _module("ModuleDict", module))

    def __delitem__(self, key):
        self[key]  # a KeyError for a name that holds no module
        delattr(self, key)

    def __len__(self):
        return len(self._submodules())

    def __iter__(self):
        return iter(self.keys())

    def __contains__(self, key):
        return key in self.keys()

    def keys(self):
        return dict(self._submodules()).keys()

    def values(self):
        return dict(self._submodules()).values()

    def items(self):
        return dict(self._submodules()).items()

    def clear(self):
        for key in list(self.keys()):
            del self[key]

    def pop(self, key):
        module = self[key]
        del self[key]
        return module

    def update(self, modules):
        """Add (or replace) the modules of a mapping, a ModuleDict or an iterable of (name, module) pairs."""
        if not isinstance(modules, Iterable):
            raise TypeError(f"ModuleDict.update should be called with an iterable of key/value pairs, but got "
                            f"{typename(modules)}")
        if isinstance(modules, (Mapping, ModuleDict)):
            pairs = list(modules.items())
        else:
            pairs = list(modules)
            for j, pair in enumerate(pairs):
                if not isinstance(pair, Iterable):
                    raise TypeError(f"ModuleDict update sequence element #{j} should be Iterable; is "
                                    f"{typename(pair)}")
                if len(pair) != 2:
                    raise ValueError(f"ModuleDict update sequence element #{j} has length {len(pair)}; "
                                     f"2 is required")
        for key, module in pairs:
            self[key] = module
