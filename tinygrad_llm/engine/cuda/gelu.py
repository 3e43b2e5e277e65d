"""Launcher for kernels/gelu.cu: GELU with the tanh approximation, elementwise on a float32 CuPy array of any shape.

The math is derived in docs/gelu.md, the launch shape explained at the top of kernels/gelu.cu; the CPU twin is
engine.functional.GeluOp with approximate="tanh". CuPy is imported lazily, so this module imports on a machine
without CuPy or a GPU.
"""
import numpy as np

from .. import backend
from . import loader

THREADS = 256      # threads per block
MAX_BLOCKS = 4096  # grid cap: ~1M threads fill any current GPU; the kernel's grid-stride loop covers the rest


def _grid(n):
    return (min(MAX_BLOCKS, (n + THREADS - 1) // THREADS),)


def forward(x):
    """x (any shape) -> y = 0.5·x·(1 + tanh(√(2/π)(x + 0.044715x³))), same shape."""
    op = "gelu (CUDA)"
    x = loader.float32_input(op, "x", x)
    y = backend.module_for("cuda").empty_like(x)
    if x.size:
        kernel = loader.get_kernel("gelu.cu", "gelu_forward")
        loader.launch(kernel, _grid(x.size), (THREADS,), (x, y, np.int32(x.size)))
    return y


def backward(x, dy):
    """x (the forward's input) and dy = dL/dy, both the same shape -> dx = dy · dGELU/dx."""
    op = "gelu backward (CUDA)"
    x = loader.float32_input(op, "x", x)
    dy = loader.float32_input(op, "dy", dy)
    if dy.shape != x.shape:
        raise ValueError(f"{op}: dy has shape {dy.shape}, x has shape {x.shape}; they must match")
    dx = backend.module_for("cuda").empty_like(x)
    if x.size:
        kernel = loader.get_kernel("gelu.cu", "gelu_backward")
        loader.launch(kernel, _grid(x.size), (THREADS,), (x, dy, dx, np.int32(x.size)))
    return dx
