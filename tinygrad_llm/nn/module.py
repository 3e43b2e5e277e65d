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

import numpy as np

from ..engine import backend
from ..engine.tensor import Function, Tensor, is_grad_enabled, observers

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
    training = True

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} does not define forward")

    def __call__(self, *args, **kwargs):
        if not observers:
            return self._call(args, kwargs)
        module_stack.append(self)
        try:
            return self._call(args, kwargs)
        finally:
            module_stack.pop()

    def _call(self, args, kwargs):
        """forward with the hooks around it."""
        backward_hooks = list(vars(self).get("_backward_hooks", {}).values()) if is_grad_enabled() else []
        if backward_hooks:
            call = _BackwardHookCall(self, backward_hooks, args)
            args = call.inputs
        out = self.forward(*args, **kwargs)
        for hook in list(vars(self).get("_forward_hooks", {}).values()):
            replaced = hook(self, args, out)
            out = out if replaced is None else replaced
        return call.tap_output(out) if backward_hooks else out

    # ----- the tree -----
    def named_children(self):
        for name, value in vars(self).items():
            if isinstance(value, Module):
                yield name, value

    def children(self):
        return [child for _, child in self.named_children()]

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
        for name, child in self.named_children():
            yield from child.named_modules(memo, f"{prefix}.{name}" if prefix else name, remove_duplicate)

    def modules(self):
        """This module and every module below it, in named_modules' order."""
        return [module for _, module in self.named_modules()]

    def apply(self, fn):
        """fn(module) for every module below this one, children first, then for this module (PyTorch's order);
        returns self. For example `model.apply(init_weights)` with an init_weights that looks at each type."""
        for child in self.children():
            child.apply(fn)
        fn(self)
        return self

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
            if isinstance(value, Parameter) or (isinstance(value, Tensor) and value.requires_grad):
                yield prefix + name, value
            elif isinstance(value, Module):
                yield from value._all_parameters(prefix + name + ".")

    def parameters(self):
        return [p for _, p in self.named_parameters()]

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

    def __repr__(self):
        """PyTorch's layout: Name(settings), or Name( one "(name): child" line per child ), the children nested;
        each module that holds parameters says how many after its first line."""
        children = [f"({name}): " + repr(child).replace("\n", "\n  ") for name, child in self.named_children()]
        count = Module.num_params(self)  # Module's own count: a model may define its own (GPT's leaves out wpe)
        note = f"  # {count:,} parameter{'s' if count != 1 else ''}" if count else ""
        if not children:
            return f"{type(self).__name__}({self.extra_repr()}){note}"
        lines = ([self.extra_repr()] if self.extra_repr() else []) + children
        return f"{type(self).__name__}({note}\n  " + "\n  ".join(lines) + "\n)"

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
        return {name: p.detach().numpy().copy() for name, p in self.named_parameters(with_duplicates=True)}

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
            value = state_dict[name]   # arrays, or Tensors as PyTorch takes (another model's parameters)
            array = value.data if isinstance(value, Tensor) else np.asarray(value)
            own[name].data[...] = backend.to_device(array, own[name].device)


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
