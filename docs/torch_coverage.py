"""Writes docs/torch_coverage.md: which of PyTorch's public names a script run by `tinygrad-llm run` finds here,
drawn from both libraries as they are installed (PyTorch from the `torch` extra). Run from anywhere:

    python docs/torch_coverage.py

tests/test_torch_coverage.py fails when the file differs from what this prints now (an op added without the table
regenerated), and when README's counts differ from the file's.
"""
import inspect
import textwrap
import types
from pathlib import Path

import torch
import torch.nn.functional

import tinygrad_llm
from tinygrad_llm.as_torch.modules import torch_modules

PAGE = Path(__file__).with_suffix(".md")


def tensor_names():
    return [name for name in dir(torch.Tensor) if not name.startswith("_")]


def torch_names():
    def kept(name, value):
        return not (isinstance(value, types.ModuleType) or type(value).__name__ == "pybind11_type" or name.isupper()
                    or isinstance(value, type) and (name.endswith("Storage") or name.endswith("Tensor"))
                    and name != "Tensor")
    return [name for name in dir(torch) if not name.startswith("_") and kept(name, getattr(torch, name))]


def layer_names():
    return sorted(torch.nn.modules.__all__)


def functional_names():
    def kept(value):
        return (inspect.isfunction(value) or inspect.isbuiltin(value)) and \
            value.__module__ in ("torch.nn.functional", "torch", "torch._C._nn")
    return [name for name in dir(torch.nn.functional) if not name.startswith("_")
            and kept(getattr(torch.nn.functional, name))]


def found(owner, name):
    """Whether `owner` has `name`: an attribute that refuses this particular object (a property) exists all the
    same."""
    try:
        getattr(owner, name)
    except AttributeError:
        return False
    except Exception:
        return True
    return True


def kinds():
    """[(kind, how its names are drawn, PyTorch's names, where ours are looked up)]."""
    modules = torch_modules()
    return [
        ("Tensor methods and attributes", "the public names of `torch.Tensor` (`dir`, no leading underscore), "
         "looked up on a tensor", tensor_names(), tinygrad_llm.ones(2, 2)),
        ("`torch.*` functions, classes and constants", "the public names of `torch`, leaving out its submodules, "
         "the C++ classes of TorchScript, the typed Storage and Tensor classes (`FloatTensor`) and the all-capitals "
         "build flags", torch_names(), modules["torch"]),
        ("`torch.nn` layers", "`torch.nn.modules.__all__`", layer_names(), modules["torch.nn"]),
        ("`torch.nn.functional` functions", "the public functions of `torch.nn.functional`, defined there or built "
         "in (leaving out the helpers it imports: `handle_torch_function`, `boolean_dispatch`, ...)",
         functional_names(), modules["torch.nn.functional"]),
    ]


def summary(rows):
    """The table of counts, also in README (tests/test_torch_coverage.py keeps the two equal)."""
    lines = ["| PyTorch's names | here | in PyTorch |", "|---|---:|---:|"]
    lines += [f"| {kind} | {len(here)} | {len(here) + len(missing)} |" for kind, _, here, missing in rows]
    return "\n".join(lines)


def names(title, listed):
    return textwrap.fill(f"**{title} ({len(listed)}):** " + (", ".join(f"`{name}`" for name in listed) or "none"),
                         120, break_long_words=False, break_on_hyphens=False)


def render():
    rows = []
    for kind, drawn, pytorch, ours in kinds():
        here = [name for name in pytorch if found(ours, name)]
        rows.append((kind, drawn, here, [name for name in pytorch if name not in here]))
    version = torch.__version__.split("+")[0]
    parts = [f"""# PyTorch's API in tinygrad_llm

Which of PyTorch {version}'s public names a script run by `tinygrad-llm run` finds (`torch` as the runner maps it
onto tinygrad_llm, stand-ins included). Made by `python docs/torch_coverage.py`; do not edit by hand. A name found
here takes PyTorch's arguments where the engine does, refuses the others by name, and refuses what it cannot compute
as PyTorch does (half precision, autocast switched on) rather than compute something else.

{summary(rows)}
"""]
    for kind, drawn, here, missing in rows:
        parts.append(f"""## {kind}: {len(here)} of {len(here) + len(missing)}

Drawn from {drawn}.

{names("Here", here)}

{names("Not here", missing)}
""")
    return "\n".join(parts)


if __name__ == "__main__":
    PAGE.write_text(render())
    print(f"wrote {PAGE}")
