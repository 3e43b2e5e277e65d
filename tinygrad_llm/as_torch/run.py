"""`tinygrad-llm run SCRIPT.py [ARGS...]`: a PyTorch script run as `python SCRIPT.py ARGS...` would run it (its
sys.argv, `__name__ == "__main__"`, its folder first on sys.path), with `torch` resolving to the engine (modules.py).

Where the script reaches for something the engine lacks, it stops there with one line naming the PyTorch API and
the script's line, never an engine traceback, and never a silently different result:

    tinygrad-llm run: train.py line 42: torch.Tensor.unfold is not implemented in tinygrad_llm (see ...)

That is: a name missing from torch or one of its modules (torch.foo, `from torch.nn import Foo`, `import
torch.distributions`), from a Tensor or another object of the engine (x.unfold), or from nn.Module when the
script's own Module subclass reaches for it (model.ipu()); a keyword argument the engine's function does not take
(x.var(unbiased=False)); and what stand_ins.py refuses (autocast, half precision). The script's own errors keep
their traceback, without the runner's frames.

The flags turn on the engine's tools for the whole script: --profile (tl.profile; its table printed at the end),
--graph FILE (tl.viz: the graph of the first backward), --detect-anomaly (tl.detect_anomaly).
"""
import inspect
import os
import re
import runpy
import sys
import sysconfig
import traceback
from contextlib import ExitStack

from ..engine import backend
from ..nn.module import Module
from ..tools import anomaly, profiler, viz
from .modules import TorchModule, torch_modules
from .stand_ins import PRECISION, NotSupported

HERE = os.path.dirname(os.path.abspath(__file__)) + os.sep       # tinygrad_llm/as_torch/
PACKAGE = os.path.dirname(HERE.rstrip(os.sep)) + os.sep          # tinygrad_llm/
LIBRARIES = tuple({sysconfig.get_paths()[kind] + os.sep for kind in ("stdlib", "platstdlib", "purelib", "platlib")})
COVERAGE = "see docs/torch_coverage.md"

# torch.nn.Module's public names (PyTorch 2.13; tests/test_run_script.py checks them against torch): one of these
# missing from a script's own Module subclass is a missing API; any other name is the script's own attribute
NN_MODULE_NAMES = frozenset((
    "T_destination", "add_module", "apply", "bfloat16", "buffers", "call_super_init", "children", "compile", "cpu",
    "cuda", "double", "dump_patches", "eval", "extra_repr", "float", "forward", "get_buffer", "get_extra_state",
    "get_parameter", "get_submodule", "half", "ipu", "load_state_dict", "modules", "mtia", "named_buffers",
    "named_children", "named_modules", "named_parameters", "parameters", "register_backward_hook",
    "register_buffer", "register_forward_hook", "register_forward_pre_hook", "register_full_backward_hook",
    "register_full_backward_pre_hook", "register_load_state_dict_post_hook", "register_load_state_dict_pre_hook",
    "register_module", "register_parameter", "register_state_dict_post_hook", "register_state_dict_pre_hook",
    "requires_grad_", "set_extra_state", "set_submodule", "share_memory", "state_dict", "to", "to_empty", "train",
    "type", "xpu", "zero_grad"))
HALF_PRECISION_METHODS = ("half", "bfloat16")

# Python's TypeError for a keyword argument the called function does not take
UNEXPECTED_KEYWORD = re.compile(r"([\w.]+)\(\) got an unexpected keyword argument '(\w+)'$")


def run(script, args=(), profile=False, graph=None, detect_anomaly=False):
    """Run `script` with `args` as its command line; returns the exit status (the script's sys.exit, 1 after an
    error). `graph`: the file the first backward's graph is drawn into (.dot, or any format of Graphviz's dot)."""
    if not os.path.isfile(script):
        print(f"tinygrad-llm run: cannot open {script}: no such file", file=sys.stderr)
        return 2
    if graph is not None and not os.path.splitext(graph)[1]:
        print(f"tinygrad-llm run: --graph {graph}: name the format by the file's suffix (.dot, .png, .svg, .pdf)",
              file=sys.stderr)
        return 2
    backend.reuse_freed_memory()   # the script is a training loop of its own: the allocator setting the trainer makes
    modules = torch_modules()
    sys.modules.update(modules)
    sys.argv = [script, *args]
    sys.path[0] = os.path.dirname(os.path.abspath(script))   # as Python puts a script's folder first
    with ExitStack() as tools:
        if detect_anomaly:
            tools.enter_context(anomaly.detect_anomaly())
        profiled = tools.enter_context(profiler.profile()) if profile else None
        drawing = tools.enter_context(FirstBackward()) if graph is not None else None
        status = _run_script(script, modules)
    if profiled is not None:
        print(f"tinygrad-llm run: --profile: the ops of {script}\n{profiled.table()}", file=sys.stderr)
    if drawing is not None:
        status = _save_graph(drawing.graph, graph) or status
    return status


def _run_script(script, modules):
    try:
        runpy.run_path(script, run_name="__main__")
    except SystemExit as e:   # as Python ends a script: sys.exit(3), sys.exit("message")
        if e.code is None or isinstance(e.code, int):
            return e.code or 0
        print(e.code, file=sys.stderr)
        return 1
    except Exception as e:
        line = missing_api(e, modules)
        if line is not None:
            print(f"tinygrad-llm run: {line}", file=sys.stderr)
        else:
            traceback.print_exception(type(e), e, _without_the_runner(e.__traceback__))
        return 1
    return 0


def missing_api(error, modules):
    """The one-line report of `error` if the engine's lack of a PyTorch API caused it ("train.py line 42:
    torch.Tensor.unfold is not implemented in tinygrad_llm (...)"), else None. `modules`: torch's, by name."""
    frames = _frames(_without_the_runner(error.__traceback__))   # the script's module first
    if not frames:
        return None   # raised before the script's first line ran: a SyntaxError
    raised_by_script = _is_script(frames[-1][0])   # not inside the engine: no bug of ours
    if isinstance(error, NotSupported):
        what = str(error)
    elif isinstance(error, anomaly.AnomalyError):
        return str(error)   # names the op, its inputs and the script's line itself
    elif isinstance(error, ModuleNotFoundError) and (error.name or "").startswith("torch."):
        what = f"{error.name} is not implemented in tinygrad_llm ({COVERAGE})"
    elif isinstance(error, ImportError) and error.name in modules:   # from torch.nn import Foo
        missing = re.match(r"cannot import name '(\w+)'", str(error))
        what = f"{error.name}.{missing[1]} is not implemented in tinygrad_llm ({COVERAGE})" if missing else None
    elif isinstance(error, AttributeError) and raised_by_script:
        owner = _torch_owner(error.obj, error.name, modules)
        why = f"; half precision is not supported: {PRECISION}" if error.name in HALF_PRECISION_METHODS else ""
        what = f"{owner}.{error.name} is not implemented in tinygrad_llm{why} ({COVERAGE})" if owner else None
    elif isinstance(error, TypeError) and raised_by_script:
        what = _keyword_refused(str(error), modules)
    else:
        what = None
    if what is None:
        return None
    file, line = next(((file, line) for file, line in reversed(frames) if _is_script(file)), frames[0])
    return f"{_shown(file)} line {line}: {what}"


def _frames(tb):
    """[(file, line)] of a traceback, innermost last, leaving out this folder's (a TorchModule's __getattr__)."""
    frames = []
    while tb is not None:
        file = tb.tb_frame.f_code.co_filename
        if not os.path.abspath(file).startswith(HERE):
            frames.append((file, tb.tb_lineno))
        tb = tb.tb_next
    return frames


def _is_script(file):
    """Whether `file` is the script's code (or a module of its own), not the engine's, Python's or a library's."""
    path = os.path.abspath(file)
    return not file.startswith("<") and not path.startswith(PACKAGE) and not path.startswith(LIBRARIES)


def _shown(file):
    """The file as the user knows it: relative to the working directory when it is inside it."""
    relative = os.path.relpath(os.path.abspath(file))
    return file if relative.startswith("..") else relative


def _torch_owner(obj, name, modules):
    """The PyTorch name of what lacked the attribute `name`: a torch module ("torch.nn.functional"), the engine's
    class or one of its objects ("torch.Tensor", "torch.nn.Linear"), nn.Module for one of its names missing from the
    script's own Module subclass; None for the script's own objects."""
    if isinstance(obj, TorchModule):
        return obj.__name__
    cls = obj if isinstance(obj, type) else type(obj)
    for module in modules.values():
        for attribute in dir(module):
            value = getattr(module, attribute, None)
            if value is obj or value is cls:
                return f"{module.__name__}.{attribute}"
    if issubclass(cls, Module) and name in NN_MODULE_NAMES:
        return "torch.nn.Module"
    return None


def _keyword_refused(message, modules):
    """"torch.Tensor.var in tinygrad_llm: var() got an unexpected keyword argument 'unbiased' (its arguments: ...)"
    when `message` is Python's refusal of a keyword by a function of the engine, else None. The function is found by
    the name Python gives (its __qualname__) among torch's names, and must lack that keyword: a function of the
    script's own that bears the same name and lacks it too would be taken for ours (the line shown is still right)."""
    refused = UNEXPECTED_KEYWORD.match(message)
    if refused is None:
        return None
    head, *rest = refused[1].split(".")
    for module in modules.values():
        function = getattr(module, head, None)
        if getattr(function, "__qualname__", None) != head or \
                not getattr(function, "__module__", "").startswith("tinygrad_llm"):
            continue
        for part in rest:
            function = getattr(function, part)
        parameters = inspect.signature(function).parameters
        if refused[2] in parameters or any(p.kind is p.VAR_KEYWORD for p in parameters.values()):
            return None   # it takes that keyword: the refusal was some other function's
        api = ".".join([module.__name__, head, *(part for part in rest if part != "__init__")])
        return f"{api} in tinygrad_llm: {message} (its arguments: {inspect.signature(function)})"
    return None


def _without_the_runner(tb):
    """The traceback from the script's first frame on, as Python shows a script's error."""
    while tb is not None and tb.tb_frame.f_globals.get("__name__") in (__name__, runpy.__name__):
        tb = tb.tb_next
    return tb


class FirstBackward(viz.trace):
    """viz.trace that draws the graph of the first backward as it begins, the last moment every op of it is there:
    the walk frees each op once its backward has run. So the picture has every op, tensor, shape and module, and
    the gradient norm of the output only (the others are not computed yet). Nothing is recorded after it."""

    def __enter__(self):
        self.graph = None
        return super().__enter__()

    def forward(self, ctx, inputs, out, seconds):
        if self.graph is None:
            super().forward(ctx, inputs, out, seconds)

    def backward(self, ctx, out, grad, input_grads, seconds):
        if self.graph is None:
            super().backward(ctx, out, grad, input_grads, seconds)
            self.graph = viz.draw(out, self)
            self.module_of.clear()   # the ops of every forward so far: none is needed again


def _save_graph(graph, path):
    """Write the graph to `path` (a .dot file: its source; another suffix: rendered by Graphviz's dot, with the
    source beside it); returns 1 when nothing could be drawn, None when done."""
    if graph is None:
        print(f"tinygrad-llm run: --graph {path}: the script ran no backward, so there is no graph to draw",
              file=sys.stderr)
        return 1
    stem, suffix = os.path.splitext(path)
    try:
        if suffix == ".dot":
            with open(path, "w") as f:
                f.write(graph.source)
        else:
            viz.save(graph, stem, suffix[1:])
    except (OSError, RuntimeError) as e:
        print(f"tinygrad-llm run: --graph {path}: {e}", file=sys.stderr)
        return 1
    print(f"tinygrad-llm run: --graph: the first backward's graph is in {path}", file=sys.stderr)
    return None
