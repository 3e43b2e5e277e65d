"""torch and its submodules as a script run by `tinygrad-llm run` sees them: each a TorchModule holding the
stand-ins of stand_ins.py and the names of the engine's module that stands for it (torch -> the front door
tinygrad_llm, torch.nn -> tinygrad_llm.nn, ...). A name neither has is an AttributeError naming the PyTorch API
("torch.nn.functional.unfold is not implemented in tinygrad_llm"): an AttributeError, so that hasattr() finds it
missing, as code probing for an optional feature expects (nanoGPT's flash-attention check).

run.py puts them in sys.modules, for its process only, so that `import torch`, `import torch.nn.functional as
F` and `from torch.utils.data import DataLoader` find them and never PyTorch. Each is a package with no folder, so
`import torch.distributions`, a module not here, fails in Python's own import as ModuleNotFoundError naming it.
This is the one place inside the package that uses the front door itself: mapping `torch` onto it is the point.
"""
import types
from importlib.machinery import ModuleSpec

import tinygrad_llm

from .. import nn, optim, utils
from ..nn import functional, init
from ..nn import utils as nn_utils
from ..optim import lr_scheduler
from ..utils import data
from .stand_ins import STAND_INS

ENGINE_MODULES = {   # torch's module -> the engine's module that stands for it (None: stand-ins only)
    "torch": tinygrad_llm, "torch.nn": nn, "torch.nn.functional": functional, "torch.nn.init": init,
    "torch.nn.utils": nn_utils, "torch.optim": optim, "torch.optim.lr_scheduler": lr_scheduler,
    "torch.utils": utils, "torch.utils.data": data,
    **{name: None for name in STAND_INS if name != "torch"},
}

MISSING = object()


class TorchModule(types.ModuleType):
    """One of torch's modules: the names set on it (its stand-ins, its submodules, whatever a script assigns), then
    the public names of `engine` that are not modules (tinygrad_llm.np is no torch.np), then an AttributeError
    naming the API."""

    def __init__(self, name, engine, stand_ins):
        super().__init__(name, f"{name}, as tinygrad_llm provides it (tinygrad-llm run)")
        self.__spec__ = ModuleSpec(name, None, is_package=True)
        self.__path__ = []        # a package whose submodules are all in sys.modules already
        self._engine = engine
        self.__dict__.update(stand_ins)

    def __getattr__(self, name):
        value = MISSING if self._engine is None or name.startswith("_") else getattr(self._engine, name, MISSING)
        if value is MISSING or isinstance(value, types.ModuleType):
            raise AttributeError(f"{self.__name__}.{name} is not implemented in tinygrad_llm", name=name, obj=self)
        return value

    def __dir__(self):
        engine = [] if self._engine is None else [
            name for name in dir(self._engine)
            if not name.startswith("_") and not isinstance(getattr(self._engine, name), types.ModuleType)]
        return sorted(set(super().__dir__()) | set(engine))


def torch_modules():
    """{name: TorchModule} for torch and each submodule, each set as its parent's attribute (torch.nn.functional)."""
    modules = {}
    for name in sorted(ENGINE_MODULES):   # a parent before its children
        modules[name] = TorchModule(name, ENGINE_MODULES[name], STAND_INS.get(name, {}))
        parent, _, child = name.rpartition(".")
        if parent:
            setattr(modules[parent], child, modules[name])
    return modules
