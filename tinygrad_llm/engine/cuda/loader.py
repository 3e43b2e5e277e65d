"""Compiling (once) and launching the kernels in kernels/*.cu."""
import functools

import numpy as np

from .. import backend
from .sources import kernel_source

INT32_MAX = 2**31 - 1  # the kernels count elements with 32-bit ints


@functools.lru_cache(maxsize=None)
def _module(filename, options):
    cupy = backend.module_for("cuda")
    return cupy.RawModule(code=kernel_source(filename), options=("-std=c++17",) + options)


def get_kernel(filename, name, options=()):
    """The compiled kernel `name` of kernels/<filename>; compiled once per (file, options) and cached."""
    return _module(filename, tuple(options)).get_function(name)


def launch(kernel, grid, block, args, shared_mem=0):
    """Launch and check: a bad launch (too many threads, too much shared memory, an argument the mock device
    refuses) raises here, naming the kernel, instead of surfacing later at an unrelated synchronisation."""
    cupy = backend.module_for("cuda")
    name = getattr(kernel, "name", None) or getattr(getattr(kernel, "kernel", None), "name", kernel)
    where = f"with grid {grid}, block {block}, {shared_mem} bytes of shared memory"
    try:
        kernel(grid, block, args, shared_mem=shared_mem)
    except cupy.cuda.driver.CUDADriverError as e:
        raise RuntimeError(f"CUDA kernel {name} failed {where}: {e}") from e
    error = cupy.cuda.runtime.getLastError()
    if error != 0:
        raise RuntimeError(f"CUDA kernel {name} failed to launch {where}: "
                           f"{cupy.cuda.runtime.getErrorString(error).decode()}")


def float32_input(op, name, array, shape=None):
    """`array` as a C-contiguous float32 CuPy array, or a clear error naming the op. `shape`: the exact shape
    (a tuple), the number of axes (an int), or None for any shape."""
    cupy = backend.module_for("cuda")
    if not isinstance(array, cupy.ndarray):
        raise TypeError(f"{op}: {name} must be a CuPy array (the kernel runs on the GPU), got {type(array).__name__}")
    if array.dtype != np.float32:
        raise TypeError(f"{op}: {name} has dtype {array.dtype}; the CUDA kernel supports float32 only")
    if shape is not None and ((array.ndim != shape) if isinstance(shape, int) else (array.shape != tuple(shape))):
        expected = f"{shape} axes" if isinstance(shape, int) else f"shape {tuple(shape)}"
        raise ValueError(f"{op}: {name} has shape {array.shape}, expected {expected}")
    if array.size > INT32_MAX:
        raise ValueError(f"{op}: {name} has {array.size} elements, more than the kernel's 32-bit count allows")
    return cupy.ascontiguousarray(array)
