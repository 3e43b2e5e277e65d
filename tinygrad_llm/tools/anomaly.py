"""Anomaly detection that finds the cause: `with detect_anomaly():` checks every op's output and every gradient for
NaN and infinity, and stops at the first op that made one out of finite numbers.

PyTorch's anomaly mode names the first backward that produced a NaN; when the NaN was made in forward (log(0),
0/0), that backward is only where it surfaced. Here the forward is checked too, so the error names the op that
made the value, its inputs' shapes and ranges, and the line that called it. A non-finite gradient whose forward
was finite (sqrt's backward at 0: 1/(2·sqrt(0)) = inf) is named in backward, with the forward line of its op.
An op given a non-finite input (a mask of -inf, on purpose) is not blamed for passing it on.
"""
import os
import sys

import numpy as np

from ..engine import backend
from ..engine.tensor import SparseGradient, Tensor
from .observer import Observer

TOOLS = os.path.dirname(os.path.abspath(__file__)) + os.sep       # tinygrad_llm/tools/
PACKAGE = os.path.dirname(TOOLS.rstrip(os.sep)) + os.sep            # tinygrad_llm/
ENGINE = os.path.join(PACKAGE, "engine") + os.sep                   # tinygrad_llm/engine/


class AnomalyError(FloatingPointError):
    """The first NaN or infinity: the op that made it and where it was called."""


def call_site():
    """Where the running op was called: the first frame outside the engine (and this folder) as "file:line in
    function", and, when that frame is inside the package (a layer's forward), the first one outside it too (the
    user's line): "nn/layers.py:34 in forward, called from train.py:40 in main"."""
    frame, first = sys._getframe(1), None
    while frame is not None:
        filename = os.path.abspath(frame.f_code.co_filename)
        if not filename.startswith((ENGINE, TOOLS)):
            where = f"{filename}:{frame.f_lineno} in {frame.f_code.co_name}"
            if first is None:
                first = where
            if not filename.startswith(PACKAGE):
                return first if first == where else f"{first}, called from {where}"
        frame = frame.f_back
    return first or "?"


def finite(value):
    """True when `value` (an array, a Tensor, a number; integers and booleans always) holds no NaN or infinity."""
    data = value.data if isinstance(value, Tensor) else value
    if isinstance(data, (bool, int, float)):
        return bool(np.isfinite(data))
    if not hasattr(data, "dtype") or data.dtype.kind != "f":
        return True
    return bool(backend.xp(data).isfinite(data).all())


def describe(value):
    """"(4, 3) float32 in [-2.1, 5]" for an array or Tensor (the range of its finite values, and how many are NaN
    or infinite), the number itself for a number."""
    data = value.data if isinstance(value, Tensor) else value
    if not hasattr(data, "shape"):
        return repr(data)
    text = f"{tuple(data.shape)} {data.dtype}"
    if data.dtype.kind not in "biuf" or data.size == 0:
        return text
    array = backend.to_device(data, "cpu").astype(np.float64)
    ok = np.isfinite(array)
    if ok.any():
        text += f" in [{array[ok].min():.4g}, {array[ok].max():.4g}]"
    if not ok.all():
        text += f", {int(np.isnan(array).sum())} NaN, {int(np.isinf(array).sum())} inf"
    return text


class detect_anomaly(Observer):
    """`with detect_anomaly():` raises AnomalyError at the first op whose forward made a NaN or infinity from finite
    inputs, or whose backward made a non-finite gradient from a finite one. Slow (every value is checked and every
    op's calling line kept until its backward): for finding a bug, not for training runs."""

    def __enter__(self):
        self.lines = {}   # op -> the line that called its forward, kept until its backward has run
        return super().__enter__()

    def forward(self, ctx, inputs, out, seconds):
        where = call_site()
        if out._ctx is ctx:
            self.lines[ctx] = where
        if finite(out):
            return
        if all(finite(x) for x in inputs):
            raise AnomalyError(f"{type(ctx).__name__} made {describe(out)} in forward, from finite inputs:\n"
                               + "".join(f"  input {i}: {describe(x)}\n" for i, x in enumerate(inputs))
                               + f"  called at {where}")

    def backward(self, ctx, out, grad, input_grads, seconds):
        if ctx is None:
            return   # a leaf: its gradient was checked where it was made
        where = self.lines.pop(ctx, "?")
        if not finite(grad):
            return   # reported where it was made
        for parent, parent_grad in input_grads:
            dense = parent_grad.dense() if isinstance(parent_grad, SparseGradient) else parent_grad
            if not finite(dense):
                raise AnomalyError(f"{type(ctx).__name__}.backward made a non-finite gradient, {describe(dense)}, "
                                   f"for its input {describe(parent)} from a finite dL/d(out) "
                                   f"({describe(grad)}); its forward was called at {where}")
