"""The package's layout is its design: each folder is a layer, and a module imports only from its own layer or the
layers below it, with no import cycle anywhere (imports inside functions count too). README's table of modules
lists exactly the modules that exist.

    engine/ (with engine/cuda/) ─▶ nn/, optim/, utils/, distributed.py, serialization.py ─▶ text/ ─▶ models/
        ─▶ tools/ ─▶ recipes/ ─▶ __main__.py, __init__.py, as_torch/
"""
import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "tinygrad_llm"

# bottom to top; a module's layer is its first folder (or its own name, for the files at the top of the package)
LAYERS = [
    {"engine"},                   # arrays, the graph, the ops; engine/cuda is the same ops on the GPU
    {"nn", "optim", "utils", "distributed", "serialization"},   # layers, losses, optimizers, schedules, data
                                                                # loading, data parallelism, torch.save/load
    {"text"},                     # tokenizers and datasets
    {"models"},                   # GPT, BERT, encoder-decoder, RNNs and their shared parts
    {"tools"},                    # looking inside: the graph drawn, the profiler, anomaly detection, telemetry
    {"recipes"},                  # training, sampling, file formats, fine-tuning, distillation
    {"__main__", "__init__", "as_torch"},   # the command line, the package's front door, torch mapped onto it
]


def module_name(path):
    """tinygrad_llm/models/gpt.py -> "models.gpt"; a package's __init__.py -> its folder ("engine.cuda"), and the
    top-level __init__.py -> "__init__"."""
    parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
    if parts[-1] == "__init__" and len(parts) > 1:
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def layer_of(module):
    top = module.split(".")[0]
    for level, names in enumerate(LAYERS):
        if top in names:
            return level
    raise AssertionError(f"{MODULES[module].relative_to(ROOT)} is in no layer: add its folder to LAYERS "
                         f"(and to the layer table in DEVELOPERS.md)")


def package_of(module):
    """The package a module's relative imports start from: its own folder, or itself for an __init__.py."""
    if module == "__init__":
        return []
    parts = module.split(".")
    return parts if MODULES[module].name == "__init__.py" else parts[:-1]


def resolve(importer, node):
    """The package modules an import statement names (imports of other packages are left out)."""
    if isinstance(node, ast.Import):
        return [name[len("tinygrad_llm."):] or "__init__" for name in (alias.name for alias in node.names)
                if name == "tinygrad_llm" or name.startswith("tinygrad_llm.")]
    if node.level == 0:
        if node.module != "tinygrad_llm" and not node.module.startswith("tinygrad_llm."):
            return []
        base = node.module[len("tinygrad_llm."):]
    else:
        package = package_of(importer)
        base = ".".join(package[:len(package) - (node.level - 1)] + ([node.module] if node.module else []))
    # `from X import name` names the module X.name when there is one, else something defined in X
    return [f"{base}.{alias.name}".lstrip(".") if f"{base}.{alias.name}".lstrip(".") in MODULES else base or "__init__"
            for alias in node.names]


def imports():
    """{module: {imported module: line}} for every import in the package, at any depth of the file."""
    graph = {}
    for module, path in MODULES.items():
        edges = graph.setdefault(module, {})
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                for target in resolve(module, node):
                    assert target in MODULES, f"{path.relative_to(ROOT)}:{node.lineno} imports {target}, no such module"
                    if target != module:
                        edges.setdefault(target, node.lineno)
    return graph


def where(module):
    return str(MODULES[module].relative_to(ROOT))


def test_every_import_goes_down_the_layers():
    violations = [f"{where(a)}:{line} imports {where(b)}, a higher layer"
                  for a, edges in imports().items() for b, line in edges.items() if layer_of(b) > layer_of(a)]
    assert not violations, "\n".join(violations)


def find_cycle(graph):
    """One import cycle as a list of modules [a, b, ..., a], or None (iterative depth-first search)."""
    state = {}  # module -> "open" while on the current path, "done" after
    for start in graph:
        if start in state:
            continue
        path, stack = [], [(start, iter(graph[start]))]
        state[start] = "open"
        path.append(start)
        while stack:
            module, targets = stack[-1]
            target = next(targets, None)
            if target is None:
                state[module] = "done"
                stack.pop()
                path.pop()
            elif state.get(target) == "open":
                return path[path.index(target):] + [target]
            elif target not in state:
                state[target] = "open"
                path.append(target)
                stack.append((target, iter(graph[target])))
    return None


def test_no_import_cycle():
    graph = imports()
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(f"{where(a)}:{graph[a][b]}" for a, b in
                                                         zip(cycle, cycle[1:])) + f" -> {where(cycle[-1])}"


def test_the_layout_checks_can_fail():
    """The two checks above on made-up graphs: an upward import and a cycle are both caught."""
    assert find_cycle({"a": {"b": 1}, "b": {"c": 1}, "c": {"a": 1}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b": 1}, "b": {}, "c": {"b": 1}}) is None
    assert layer_of("engine.cuda.fused") == layer_of("engine.tensor") < layer_of("nn") < layer_of("text")
    assert layer_of("text") < layer_of("models.gpt") < layer_of("tools.viz") < layer_of("recipes.train") \
        < layer_of("__main__")


def test_imports_resolve_as_python_resolves_them():
    """Relative imports from a module and from a package's __init__, `from package import module`, and an import
    inside a function (found like one at the top of the file)."""
    def first_import(source):
        return next(n for n in ast.walk(ast.parse(source)) if isinstance(n, (ast.Import, ast.ImportFrom)))
    assert resolve("models.gpt", first_import("def f():\n    from ..recipes.train import train\n")) == ["recipes.train"]
    assert resolve("models.gpt", first_import("from .. import nn\n")) == ["nn"]
    assert resolve("engine.cuda.fused", first_import("from ..ops import unbroadcast\n")) == ["engine.ops"]
    assert resolve("engine.cuda", first_import("from . import loader\n")) == ["engine.cuda.loader"]
    assert resolve("__init__", first_import("from .engine.tensor import Tensor\n")) == ["engine.tensor"]
    assert resolve("nn", first_import("from tinygrad_llm import Tensor\n")) == ["__init__"]
    assert resolve("nn", first_import("import numpy as np\n")) == []


def readme_modules():
    """The paths in README's table of modules: rows whose first cell is a `tinygrad_llm/...` path in backticks."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return re.findall(r"^\| `tinygrad_llm/([\w/]+\.py)`", text, flags=re.M)


def test_readme_lists_every_module_and_no_other():
    listed = readme_modules()
    assert len(listed) == len(set(listed)), f"README lists a module twice: {listed}"
    actual = {str(path.relative_to(PACKAGE)) for path in MODULES.values() if path.name != "__init__.py"}
    assert set(listed) == actual, (f"README's module table is out of date: missing {sorted(actual - set(listed))}, "
                                   f"no such file {sorted(set(listed) - actual)}")


# folders whose __init__.py is PyTorch's namespace (torch.nn, torch.optim): it gathers the names PyTorch code reaches
# through it, and defines none
NAMESPACES = {"nn", "optim"}


@pytest.mark.parametrize("module", sorted(m for m in MODULES if MODULES[m].name == "__init__.py" and m != "__init__"))
def test_subpackages_say_what_they_hold(module):
    """Every folder's __init__.py is a docstring naming its modules, and imports nothing (so importing one module of
    a folder never drags in the rest); a namespace's imports names from the package's modules, and defines none."""
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    assert ast.get_docstring(tree), f"{where(module)} has no docstring"
    statements = tree.body[1:]
    if module in NAMESPACES:
        assert all(isinstance(n, ast.ImportFrom) and n.level > 0 for n in statements), \
            f"{where(module)} does more than import names from the package's modules"
    else:
        assert not statements, f"{where(module)} holds more than its docstring"


def test_importing_the_package_attaches_every_tensor_method():
    """The op modules attach their methods to Tensor beside each op (`Tensor.exp = exp`); a module that does so but
    is not imported by `import tinygrad_llm` would leave its methods missing, found only when a user calls one."""
    attaching = sorted(name for name, path in MODULES.items()
                       if any(isinstance(node, ast.Assign) and any(isinstance(t, ast.Attribute) and
                                                                   isinstance(t.value, ast.Name) and
                                                                   t.value.id == "Tensor" for t in node.targets)
                              for node in ast.parse(path.read_text(encoding="utf-8")).body))
    assert "engine.ops" in attaching and "engine.inplace" in attaching, attaching
    imported = subprocess.run([sys.executable, "-c", "import sys, tinygrad_llm; print(' '.join(sys.modules))"],
                              capture_output=True, text=True, check=True).stdout.split()
    missing = [name for name in attaching if f"tinygrad_llm.{name}" not in imported]
    assert not missing, f"import tinygrad_llm does not import {missing}, whose Tensor methods would be missing"
