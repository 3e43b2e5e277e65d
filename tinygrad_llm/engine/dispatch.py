"""Which implementation of a fused op runs: the one place that decides it, and its two switches.

A fused op can run as
    its NumPy Function  (functional.py): array code with a hand-derived backward, NumPy on the CPU, CuPy on the GPU;
    its composed twin   (composed.py): the same math built from primitives, which the tests compare against;
    its CUDA kernel     (cuda/fused.py), for some ops: a Function that launches kernels/*.cu, for the calls its
                        `supports` accepts (the kernel's own limits stand there, with the kernel).
Each op declares these in one `FusedOp` entry beside the op (functional.py; the Adam step in optim/optimizers.py)
and runs through `run(ENTRY, *args)`, which calls the implementation `pick` chooses:
    1. the composed twin inside `with fused(False):` (an op without a twin, the Adam step, ignores this switch);
    2. else the kernel, where the op has one, kernels are on (see `cuda_kernels`), the first argument is a float32
       Tensor on the GPU and the kernel's supports(*args) accepts the call;
    3. else the NumPy Function.
Every implementation of an op takes the same arguments, the public function's checked ones, in one order; where a
Function's own signature differs, the entry adapts it in one line.
"""
import contextlib

import numpy as np

from . import backend

_composed = False   # set by fused(False)
_kernels = True     # cleared by cuda_kernels(False)


@contextlib.contextmanager
def fused(enabled):
    """`with fused(False):` runs the composed twins instead of the fused ops (the default is fused), so the two can
    be compared anywhere, a whole GPT too."""
    global _composed
    previous, _composed = _composed, not enabled
    try:
        yield
    finally:
        _composed = previous


@contextlib.contextmanager
def cuda_kernels(enabled):
    """`with cuda_kernels(False):` runs the NumPy Functions' array code on CuPy arrays instead of our CUDA kernels
    (the default is on), so each kernel can be compared with the array code it replaces."""
    global _kernels
    previous, _kernels = _kernels, enabled
    try:
        yield
    finally:
        _kernels = previous


class FusedOp:
    """One fused op's implementations, each called with the public function's arguments:
    function: the NumPy Function, applied;   composed: the composed twin, or None (no twin);
    kernel: the CUDA kernel's Function, applied, or None;   supports: which calls the kernel takes (a predicate)."""

    __slots__ = ("name", "function", "composed", "kernel", "supports")

    def __init__(self, name, function, composed, kernel=None, supports=None):
        if (kernel is None) != (supports is None):
            raise ValueError(f"FusedOp {name}: a kernel comes with its supports predicate, and only then")
        self.name, self.function, self.composed, self.kernel, self.supports = name, function, composed, kernel, supports

    def __repr__(self):
        return f"FusedOp({self.name})"


def pick(op, *args):
    """The implementation of `op` that runs for these arguments (the rules in this module's docstring)."""
    if _composed and op.composed is not None:
        return op.composed
    if op.kernel is not None and _kernels:
        array = args[0].data
        if array.dtype == np.float32 and backend.device_of(array) == "cuda" and op.supports(*args):
            return op.kernel
    return op.function


def run(op, *args):
    """op computed by the implementation `pick` chooses."""
    return pick(op, *args)(*args)
