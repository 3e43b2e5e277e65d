"""Modules: parameters grouped into layers, layers into models (PyTorch's nn.Module, written small).

A Module finds its parameters and sub-modules by looking at its own attributes: an nn.Parameter (or any Tensor
with requires_grad) is a parameter, a Module is a child. Names follow the attribute path
(`transformer.h.0.attn.c_attn.weight`), so state dicts read like PyTorch's and can be mapped onto other checkpoints.
`print(model)` shows the tree as PyTorch does, with the number of parameters of each module.

Hooks, as in PyTorch: `register_forward_hook(hook)` calls hook(module, args, output) after every forward;
`register_full_backward_hook(hook)` calls hook(module, grad_input, grad_output) once the gradient with respect to
the module's input is known. Both may return a replacement (of the output; of grad_input) and both return a handle
whose remove() unregisters the hook.
"""
import itertools
from collections import OrderedDict, namedtuple

import numpy as np

from ..engine import backend
from ..engine.arguments import device_and_dtype
from ..engine.tensor import Function, Tensor, is_recording, observers

# The modules whose forward is running, outermost first, kept only while a tool watches the engine (tools/ name
# each op by the module that made it); empty otherwise.
module_stack = []


class Parameter(Tensor):
    """A Tensor that a Module counts as one of its parameters (PyTorch's nn.Parameter): Parameter(data,
    requires_grad=True). It shares the array of `data` (a Tensor or an array; numbers and lists convert as in
    Tensor). It stays a parameter with requires_grad turned off: a frozen layer is still saved and moved."""

    def __init__(self, data, requires_grad=True):
        super().__init__(data)
        if requires_grad and self.dtype.kind != "f":
            raise TypeError(f"Parameter: only floating data can require grad, got {self.dtype} {self.shape}; "
                            f"convert it with .to(np.float32) or pass requires_grad=False")
        self.requires_grad = bool(requires_grad)

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()


class Module:
    """PyTorch's nn.Module. A subclass assigns its parameters, buffers and sub-modules as attributes in __init__
    (calling super().__init__() is allowed and does nothing), and defines forward."""

    training = True

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} does not define forward")

    def __call__(self, *args, **kwargs):
        if not observers:
            # the common case: no tool watching and no hook ever registered here, so forward alone
            if "_forward_hooks" not in self.__dict__ and "_backward_hooks" not in self.__dict__:
                return self.forward(*args, **kwargs)
            return self._call(args, kwargs)
        module_stack.append(self)
        try:
            return self._call(args, kwargs)
        finally:
            module_stack.pop()

    def _call(self, args, kwargs):
        """forward with the hooks around it."""
        backward_hooks = list(vars(self).get("_backward_hooks", {}).values()) if is_recording() else []
        if backward_hooks:
            call = _BackwardHookCall(self, backward_hooks, args)
            args = call.inputs
        out = self.forward(*args, **kwargs)
        for hook in list(vars(self).get("_forward_hooks", {}).values()):
            replaced = hook(self, args, out)
            out = out if replaced is None else replaced
        return call.tap_output(out) if backward_hooks else out

    # ----- attributes: a module's parameters, buffers and children are its own attributes -----
    def __setattr__(self, name, value):
        """As in PyTorch, a name that holds a parameter, a buffer or a child module takes only its own kind or None:
        `self.weight = plain_tensor` would otherwise drop the parameter from the model without a word. A Parameter
        or a Module given to a buffer's name makes it a parameter or a child."""
        old, buffers = self.__dict__.get(name), self.__dict__.get("_buffer_persistence", {})
        if isinstance(value, (Parameter, Module)):
            buffers.pop(name, None)
        elif name in buffers:
            if value is not None and not isinstance(value, Tensor):
                raise TypeError(f"cannot assign '{typename(value)}' as buffer '{name}' (Tensor or None expected)")
        elif value is not None and _is_parameter(old) and not _is_parameter(value):
            raise TypeError(f"cannot assign '{typename(value)}' as parameter '{name}' "
                            f"(nn.Parameter or None expected)")
        elif value is not None and isinstance(old, Module):
            raise TypeError(f"cannot assign '{typename(value)}' as child module '{name}' "
                            f"(nn.Module or None expected)")
        object.__setattr__(self, name, value)

    def __delattr__(self, name):
        object.__delattr__(self, name)
        self.__dict__.get("_buffer_persistence", {}).pop(name, None)

    def _check_new_name(self, kind, name, registered):
        """PyTorch's checks of a name given to register_buffer, register_parameter or add_module; `registered`:
        whether the name already holds a member of that kind (which may then be replaced)."""
        if not isinstance(name, str):
            raise TypeError(f"{kind} name should be a string. Got {typename(name)}")
        if "." in name:
            raise KeyError(f"{kind} name can't contain \".\", got: {name}")
        if name == "":
            raise KeyError(f"{kind} name can't be empty string \"\"")
        if hasattr(self, name) and not registered:
            raise KeyError(f"attribute '{name}' already exists")

    def register_buffer(self, name, tensor, persistent=True):
        """A Tensor the module keeps that is not a parameter (never trained, not in parameters()): a causal mask, a
        running mean. It is moved by .to(), reached as self.<name>, and saved in state_dict unless persistent=False.
        Assigning self.<name> = tensor afterwards replaces the buffer."""
        self._check_new_name("buffer", name, name in self.__dict__.get("_buffer_persistence", {}))
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(f"cannot assign '{typename(tensor)}' object to buffer '{name}' "
                            f"(Tensor or None required)")
        self.__dict__.setdefault("_buffer_persistence", {})[name] = bool(persistent)
        object.__setattr__(self, name, tensor)

    def register_parameter(self, name, param):
        """self.<name> = param, with PyTorch's checks: param is an nn.Parameter or None (no parameter, as a Linear
        without bias)."""
        self._check_new_name("parameter", name, name in vars(self) and (vars(self)[name] is None or
                                                                       _is_parameter(vars(self)[name])))
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"cannot assign '{typename(param)}' object to parameter '{name}' "
                            f"(nn.Parameter or None required)")
        setattr(self, name, param)

    def add_module(self, name, module):
        """self.<name> = module, with PyTorch's checks (the containers add their modules this way)."""
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"{typename(module)} is not a Module subclass")
        self._check_new_name("module", name, isinstance(vars(self).get(name), Module))
        setattr(self, name, module)

    register_module = add_module

    def get_submodule(self, target):
        """The module at dotted path `target` ("transformer.h.0"); "" is this module."""
        module = self
        for item in target.split(".") if target else []:
            if not hasattr(module, item):
                raise AttributeError(f"{type(module).__name__} has no attribute `{item}`")
            module = getattr(module, item)
            if not isinstance(module, Module):
                raise AttributeError(f"`{item}` is not an nn.Module")
        return module

    def get_parameter(self, target):
        """The parameter at dotted path `target` ("transformer.h.0.attn.c_attn.weight")."""
        name, value = self._get_attribute(target)
        if not isinstance(value, Parameter):
            raise AttributeError(f"`{name}` is not an nn.Parameter")
        return value

    def get_buffer(self, target):
        """The buffer at dotted path `target` ("h.0.attn.bias")."""
        module_path, _, name = target.rpartition(".")
        _, value = self._get_attribute(target)
        if name not in vars(self.get_submodule(module_path)).get("_buffer_persistence", {}):
            raise AttributeError(f"`{name}` is not a buffer")
        return value

    def _get_attribute(self, target):
        """(its last name, the value) of dotted path `target`, with PyTorch's error naming what is not there."""
        module_path, _, name = target.rpartition(".")
        module = self.get_submodule(module_path)
        if not hasattr(module, name):
            raise AttributeError(f"{type(module).__name__} has no attribute `{name}`")
        return name, getattr(module, name)

    # ----- the tree -----
    def _submodules(self):
        """(name, module) for every attribute that holds a module, in the order they were assigned, a module held
        twice under both names (PyTorch's _modules.items())."""
        return [(name, value) for name, value in vars(self).items() if isinstance(value, Module)]

    def named_children(self):
        """(name, module) for each direct sub-module, in the order they were assigned (one held twice, once)."""
        seen = set()
        for name, value in self._submodules():
            if id(value) not in seen:
                seen.add(id(value))
                yield name, value

    def children(self):
        for _, child in self.named_children():
            yield child

    def named_modules(self, memo=None, prefix="", remove_duplicate=True):
        """(dotted name, module) for this module (named '' at the root) and every module below it, each parent
        before its children, in the order they were assigned: PyTorch's order and names. A module reached twice
        (shared) is listed once, under its first name, unless remove_duplicate=False."""
        memo = set() if memo is None else memo
        if remove_duplicate:
            if self in memo:
                return
            memo.add(self)
        yield prefix, self
        for name, child in self._submodules():
            yield from child.named_modules(memo, f"{prefix}.{name}" if prefix else name, remove_duplicate)

    def modules(self):
        """This module and every module below it, in named_modules' order."""
        for _, module in self.named_modules():
            yield module

    def apply(self, fn):
        """fn(module) for every module below this one, children first, then for this module (PyTorch's order);
        returns self. For example `model.apply(init_weights)` with an init_weights that looks at each type."""
        for child in self.children():
            child.apply(fn)
        fn(self)
        return self

    def _own_parameters(self):
        """This module's own (name, parameter) pairs, in the order they were assigned: its nn.Parameters and any
        other Tensor that requires grad, but not a buffer."""
        buffers = vars(self).get("_buffer_persistence", {})
        return [(name, value) for name, value in vars(self).items() if _is_parameter(value) and name not in buffers]

    def _own_buffers(self, persistent_only=False):
        """This module's own (name, buffer) pairs, in the order they were registered (None: none there now)."""
        return [(name, vars(self)[name]) for name, persistent in vars(self).get("_buffer_persistence", {}).items()
                if vars(self)[name] is not None and (persistent or not persistent_only)]

    def _named_members(self, own_members, prefix, recurse, remove_duplicate):
        """PyTorch's order: module by module (named_modules'), each module's own members in their order; a member
        shared by two modules (tied weights) once, under its first name, unless remove_duplicate=False."""
        seen = set()
        modules = self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate) if recurse else [(prefix,
                                                                                                         self)]
        for module_prefix, module in modules:
            for name, value in own_members(module):
                if remove_duplicate and id(value) in seen:
                    continue
                seen.add(id(value))
                yield (f"{module_prefix}.{name}" if module_prefix else name), value

    def named_parameters(self, prefix="", recurse=True, remove_duplicate=True):
        """(dotted name, parameter) pairs, as PyTorch's: this module's own parameters, then each sub-module's
        (recurse=False: this module's only). A parameter shared by two modules (tied weights) is listed once,
        under its first name, unless remove_duplicate=False."""
        yield from self._named_members(Module._own_parameters, prefix, recurse, remove_duplicate)

    def parameters(self, recurse=True):
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix="", recurse=True, remove_duplicate=True):
        """(dotted name, buffer) pairs in named_parameters' order, non-persistent buffers included."""
        yield from self._named_members(Module._own_buffers, prefix, recurse, remove_duplicate)

    def buffers(self, recurse=True):
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    def num_params(self):
        return sum(p.numel() for p in self.parameters())

    # ----- hooks -----
    def register_forward_hook(self, hook):
        """hook(module, args, output) after every forward; a value it returns replaces the output."""
        return _HookHandle(self.__dict__.setdefault("_forward_hooks", {}), hook)

    def register_full_backward_hook(self, hook):
        """hook(module, grad_input, grad_output) during backward, once dL/d(input) is known: grad_input has one entry
        per Tensor among the positional inputs (None for one that needs no gradient), grad_output is
        (dL/d(output),). A tuple it returns replaces grad_input. The module must return one Tensor and take at most
        one input that requires grad (our Functions have one output each, so one tap sees one input's gradient)."""
        return _HookHandle(self.__dict__.setdefault("_backward_hooks", {}), hook)

    # ----- printing -----
    def extra_repr(self):
        """The settings shown inside the parentheses of repr(module), such as "in_features=2, out_features=3"."""
        return ""

    def _child_lines(self):
        """repr's "(name): child" lines, each child's own lines indented."""
        return [f"({name}): " + repr(child).replace("\n", "\n  ") for name, child in self._submodules()]

    def __repr__(self):
        """PyTorch's layout: Name(settings), or Name( one "(name): child" line per child ), the children nested;
        each module that holds parameters says how many after its first line."""
        children = self._child_lines()
        count = Module.num_params(self)  # Module's own count: a model may define its own (GPT's leaves out wpe)
        note = f"  # {count:,} parameter{'s' if count != 1 else ''}" if count else ""
        if not children:
            return f"{type(self).__name__}({self.extra_repr()}){note}"
        lines = ([self.extra_repr()] if self.extra_repr() else []) + children
        return f"{type(self).__name__}({note}\n  " + "\n  ".join(lines) + "\n)"

    # ----- modes and gradients -----
    def train(self, mode=True):
        """Training mode (dropout on) for this module and every module below it, as each one's train() sets it;
        returns self."""
        if not isinstance(mode, bool):
            raise ValueError(f"train: training mode is expected to be boolean, got {mode!r}")
        self.training = mode
        for child in self.children():
            child.train(mode)
        return self

    def eval(self):
        return self.train(False)

    def requires_grad_(self, requires_grad=True):
        """Freeze (False) or unfreeze every parameter; returns self. A frozen parameter stays a parameter."""
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none=True):
        """Forget the gradients: `.grad = None` (PyTorch 2's default), or with set_to_none=False, fill each
        existing gradient with zeros in place."""
        for p in self.parameters():
            clear_grad(p, set_to_none)

    # ----- moving and saving -----
    def to(self, *args, **kwargs):
        """Move every parameter and buffer to a device ('cpu', 'cuda') and/or convert the floating ones to a float
        dtype, in place, as PyTorch's: to(device), to(dtype), to(device, dtype), to(tensor) (its device and dtype),
        or the keywords device=, dtype=. Integer and bool buffers keep their dtype. The Tensor objects stay the
        same, so optimizers and tied weights keep pointing at them; gradients move with their parameters.
        non_blocking is accepted: every copy here is synchronous."""
        device, dtype = device_and_dtype("Module.to", args, kwargs)
        if dtype is not None:
            backend.check_float_dtype(dtype, "Module.to")
        return self._convert(device, dtype)

    def cuda(self, device=None):
        if device not in (None, 0, "cuda"):
            raise ValueError(f"Module.cuda: the engine uses one GPU per process (choose it with use_gpu); got "
                             f"device {device!r}")
        return self._convert("cuda", None)

    def cpu(self):
        return self._convert("cpu", None)

    def float(self):
        return self._convert(None, np.dtype(np.float32))

    def double(self):
        return self._convert(None, np.dtype(np.float64))

    def half(self):
        raise TypeError("Module.half: dtype float16 is not supported; use float32 or float64")

    def bfloat16(self):
        raise TypeError("Module.bfloat16: dtype bfloat16 is not supported; use float32 or float64")

    def type(self, dst_type):
        """Every parameter and buffer, integer ones too, converted to `dst_type` (PyTorch's Module.type)."""
        return self._convert(None, backend.check_float_dtype(dst_type, "Module.type"), floating_only=False)

    def _convert(self, device, dtype, floating_only=True):
        """Each parameter, its gradient and each buffer, on `device` (None: where it is) in `dtype` (None: as it is;
        only floating tensors unless floating_only=False), changed in place; returns self."""
        def convert(array):
            array = array if device is None else backend.to_device(array, device)
            if dtype is None or (floating_only and array.dtype.kind != "f"):
                return array
            return array.astype(dtype, copy=False)
        for module in self.modules():
            for _, t in module._own_parameters() + module._own_buffers():
                t.data = convert(t.data)
                if t.grad is not None:
                    t.grad.data = convert(t.grad.data)
        return self

    def _state_items(self, prefix):
        """(dotted name, tensor) for the state dict, as PyTorch's: this module's parameters, then its persistent
        buffers, then each child's, every name of a shared tensor included."""
        yield from ((prefix + name, t) for name, t in self._own_parameters() + self._own_buffers(persistent_only=True))
        for name, child in self._submodules():
            yield from child._state_items(f"{prefix}{name}.")

    def state_dict(self, *, prefix="", keep_vars=False):
        """PyTorch's: an OrderedDict {dotted name: tensor} of every parameter and persistent buffer, in PyTorch's
        order (tied weights under each name), each detached but sharing the model's memory, so that writing into
        one (sd[name].copy_(w)) changes the model and a later step changes it; keep_vars=True gives the Tensors
        themselves. A snapshot is a copy: {name: t.clone() for name, t in model.state_dict().items()}."""
        return OrderedDict((name, t if keep_vars else t.detach()) for name, t in self._state_items(prefix))

    def load_state_dict(self, state_dict, strict=True):
        """Copy arrays (or Tensors, as PyTorch takes) into the parameters and persistent buffers. Every name, shape
        and dtype is checked before anything is written, so a mismatch leaves the model as it was. strict=False
        skips missing and unexpected names. Returns (missing_keys, unexpected_keys), PyTorch's named tuple."""
        own = dict(self._state_items(""))
        missing = [name for name in own if name not in state_dict]
        unexpected = [name for name in state_dict if name not in own]
        if strict and (missing or unexpected):
            raise KeyError(f"load_state_dict for {type(self).__name__}: missing keys {missing}, unexpected keys "
                           f"{unexpected}")
        common = [name for name in own if name in state_dict]
        for name in common:
            array, t = state_dict[name], own[name]
            if tuple(array.shape) != t.shape:
                raise ValueError(f"load_state_dict: {name} has shape {tuple(array.shape)} in the state dict, "
                                 f"{t.shape} in the model")
            if np.dtype(array.dtype) != t.dtype:
                raise TypeError(f"load_state_dict: {name} is {array.dtype} in the state dict, {t.dtype} in the "
                                f"model; convert the model with .to(dtype) first")
        for name in common:
            value = state_dict[name]
            array = value.data if isinstance(value, Tensor) else np.asarray(value)
            own[name].data[...] = backend.to_device(array, own[name].device)
        return IncompatibleKeys(missing, unexpected)


class IncompatibleKeys(namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])):
    """What load_state_dict returns, as PyTorch's: the model's names the state dict lacked, and its names the model
    does not have."""

    def __repr__(self):
        if not self.missing_keys and not self.unexpected_keys:
            return "<All keys matched successfully>"
        return super().__repr__()


def _is_parameter(value):
    return isinstance(value, Parameter) or (isinstance(value, Tensor) and value.requires_grad)


def typename(value):
    """How PyTorch's errors name a value's type: "int", "list", "Tensor", "numpy.ndarray"."""
    kind = type(value)
    return kind.__name__ if kind.__module__ in ("builtins", None) or isinstance(value, Tensor) else \
        f"{kind.__module__}.{kind.__qualname__}"


def clear_grad(p, set_to_none):
    """p.grad = None, or its numbers zeroed in place (set_to_none=False): PyTorch's zero_grad, for modules and
    optimizers."""
    if set_to_none:
        p.grad = None
    elif p.grad is not None:
        p.grad.data[...] = 0


_hook_ids = itertools.count()


class _HookHandle:
    """What register_*_hook returns: remove() unregisters the hook."""

    def __init__(self, hooks, hook):
        self.hooks, self.id = hooks, next(_hook_ids)
        hooks[self.id] = hook

    def remove(self):
        self.hooks.pop(self.id, None)


class GradientTapOp(Function):
    """out = x, an identity whose backward first shows g to `tap`:  dx = tap(g)  (g itself unless the tap
    replaces it). A module's backward hooks are two taps: one on its output, one on its input."""

    def forward(ctx, x, tap):
        ctx.tap = tap
        # a copy: the version check of in-place ops follows tensors, not memory, so a change made in place to the
        # output (or to the input) must not reach an array that the module's own ops saved for backward
        return x.copy()

    def backward(ctx, g):
        return ctx.tap(g)


class _BackwardHookCall:
    """One call of a module that has full backward hooks. Backward reaches the tap on the output first (it notes
    grad_output), then the module's own ops, then the tap on the input, where the hooks run; with no input that
    requires grad, they run at the output's tap."""

    def __init__(self, module, hooks, args):
        self.module, self.hooks, self.grad_output = module, hooks, None
        self.positions = [i for i, a in enumerate(args) if isinstance(a, Tensor)]  # the entries of grad_input
        needing = [k for k, i in enumerate(self.positions) if args[i].requires_grad]
        if len(needing) > 1:
            raise NotImplementedError(f"register_full_backward_hook: {type(module).__name__} got {len(needing)} "
                                      f"inputs that require grad; a backward hook supports modules with at most one")
        self.needing = needing[0] if needing else None
        inputs = list(args)
        if self.needing is not None:
            i = self.positions[self.needing]
            inputs[i] = GradientTapOp.apply(args[i], tap=self._at_input)
        self.inputs = tuple(inputs)

    def tap_output(self, out):
        if not isinstance(out, Tensor):
            raise TypeError(f"register_full_backward_hook: {type(self.module).__name__}.forward returned a "
                            f"{type(out).__name__}; a backward hook needs a single Tensor output")
        return GradientTapOp.apply(out, tap=self._at_output)

    def _at_output(self, g):
        self.grad_output = g
        if self.needing is None:
            self._run_hooks(None)
        return g

    def _at_input(self, g):
        return self._run_hooks(g)[self.needing]

    def _run_hooks(self, g):
        """Call every hook with (grad_input, grad_output) as Tensors; returns grad_input as arrays, as replaced."""
        grads = [g if k == self.needing else None for k in range(len(self.positions))]
        for hook in self.hooks:
            replaced = hook(self.module, tuple(None if a is None else Tensor(a) for a in grads),
                            (Tensor(self.grad_output),))
            if replaced is not None:
                if not isinstance(replaced, tuple) or len(replaced) != len(grads):
                    raise TypeError(f"backward hook of {type(self.module).__name__}: returned {replaced!r}; "
                                    f"expected None or a tuple of {len(grads)} gradient(s), like grad_input")
                grads = [None if r is None else r.data if isinstance(r, Tensor) else r for r in replaced]
        return grads
