"""What every tool here shares: an Observer switches itself on for the length of a `with` block (the engine then
calls its forward and backward after every op), ModulePaths names the module whose forward made an op, and norm
measures an array."""
import time

import numpy as np

from ..engine import backend, tensor
from ..nn.module import module_stack

# The engine's two steps as it defines them (engine/tensor.py): every op's forward (Function.apply) and each step of
# the backward walk go through tensor.run_forward and tensor.run_backward. While an Observer is on, these timed
# versions take their places; when the last one is off, the plain ones come back.
plain_forward, plain_backward = tensor.run_forward, tensor.run_backward


def observed_forward(ctx, inputs, options):
    began = time.perf_counter()
    out = plain_forward(ctx, inputs, options)
    seconds = time.perf_counter() - began
    for observer in tensor.observers:
        observer.forward(ctx, inputs, out, seconds)
    return out


def observed_backward(out, grad):
    began = time.perf_counter()
    input_grads = plain_backward(out, grad)
    seconds = time.perf_counter() - began
    for observer in tensor.observers:
        observer.backward(out._ctx, out, grad, input_grads, seconds)
    return input_grads


def norm(array):
    """The L2 norm of an array of any shape and device, as a Python float (summed in float64 on the host)."""
    return float(np.sqrt((backend.to_device(array, "cpu").astype(np.float64) ** 2).sum()))


class Observer:
    """A context manager that the engine reports to while it is on. Subclasses override forward and/or backward;
    both are called with the op (the Function node, `ctx`) and the time its forward or backward took."""

    def __enter__(self):
        tensor.observers.append(self)
        tensor.run_forward, tensor.run_backward = observed_forward, observed_backward
        return self

    def __exit__(self, *exc):
        tensor.observers.remove(self)
        if not tensor.observers:
            tensor.run_forward, tensor.run_backward = plain_forward, plain_backward

    def forward(self, ctx, inputs, out, seconds):
        """After ctx's forward: `inputs` as the op was given them (Tensors, arrays, numbers), `out` its Tensor."""

    def backward(self, ctx, out, grad, input_grads, seconds):
        """After each step of the backward walk (tensor.run_backward): ctx's backward, grad = dL/d(out), input_grads =
        [(input Tensor, dL/d(input)), ...]; or, with ctx None, grad added into the .grad of the leaf `out`. The
        seconds leave out the walk's summing of input_grads into the inputs' gradients."""


class ModulePaths:
    """The dotted path (`transformer.h.0.attn.c_attn`) of the module whose forward is running now, found from the
    outermost module on module_stack (nn/module.py): its named_modules() are listed once per model and kept."""

    def __init__(self):
        self.names = {}        # id(root module) -> {id(module): path}
        self.parameters = {}   # id(parameter) -> the path of the module holding it, for every model seen
        self.roots = []        # the outermost modules seen, kept alive so that their ids stay theirs

    def current(self):
        """The innermost running module's path ("" for the model itself), or None outside every module."""
        if not module_stack:
            return None
        root = module_stack[0]
        names = self.names.get(id(root))
        if names is None:
            names = self.names[id(root)] = {id(m): name for name, m in root.named_modules()}
            for name, p in root.named_parameters():
                self.parameters.setdefault(id(p), name.rpartition(".")[0])
            self.roots.append(root)
        return names.get(id(module_stack[-1]))

    def module(self, path):
        """The module at `path` in the first model seen that has one, or None."""
        for root in self.roots:
            for name, m in root.named_modules():
                if name == path:
                    return m
        return None
