"""Launcher for kernels/cross_entropy.cu: fused softmax + cross-entropy over the rows of (M, V) float32 CuPy logits.

The math is derived in docs/cross_entropy.md, the launch shape explained at the top of kernels/cross_entropy.cu; the
CPU twin is engine.functional.CrossEntropyOp. The reduction ('mean', 'sum', 'none') stays with the caller: forward
returns one loss per row, and backward takes row_grads = dL/dloss_row, which the caller computes from the reduction
('mean': g / rows kept; 'sum': g; 'none': the incoming gradient). CuPy is imported lazily, so this module imports on
a machine without CuPy or a GPU.
"""
import numpy as np

from .. import backend
from . import loader

MAX_THREADS = 1024      # a block's limit
CLASSES_PER_THREAD = 8  # enough work per thread that the two block reductions are a small part of the time
INT32_MIN = -2**31


def _check_targets(op, targets, n_rows):
    """Integer targets (M,) as a contiguous int64 CuPy array (the kernel reads 64-bit integers)."""
    cupy = backend.module_for("cuda")
    if not isinstance(targets, cupy.ndarray):
        raise TypeError(f"{op}: targets must be a CuPy array, got {type(targets).__name__}")
    if targets.dtype.kind not in "iu":
        raise TypeError(f"{op}: targets must be integer class indices, got dtype {targets.dtype}")
    if targets.shape != (n_rows,):
        raise ValueError(f"{op}: targets has shape {targets.shape}, expected ({n_rows},) (one per row of logits)")
    return cupy.ascontiguousarray(targets.astype(np.int64, copy=False))


def _check_sizes(op, n_rows, n_classes, ignore_index):
    if n_classes == 0:
        raise ValueError(f"{op}: logits have 0 classes")
    if n_rows > loader.INT32_MAX or n_classes > loader.INT32_MAX:
        raise ValueError(f"{op}: logits shape ({n_rows}, {n_classes}) is too large for the kernel's 32-bit sizes")
    if not INT32_MIN <= ignore_index <= loader.INT32_MAX:
        raise ValueError(f"{op}: ignore_index {ignore_index} does not fit in 32 bits")


def _threads(n_classes):
    """Threads per block (one block per row): about V/8, a multiple of 32 (whole warps), between 32 and 1024."""
    wanted = -(-n_classes // CLASSES_PER_THREAD)       # ceil(V / 8)
    return min(MAX_THREADS, max(32, -(-wanted // 32) * 32))


def _checked_rows(op, logits2d, targets1d, ignore_index):
    """The logits (M, V) and targets (M,) as the kernels read them (contiguous float32 and int64), or a clear error."""
    logits2d = loader.float32_input(op, "logits", logits2d, 2)
    _check_sizes(op, logits2d.shape[0], logits2d.shape[1], ignore_index)
    return logits2d, _check_targets(op, targets1d, logits2d.shape[0])


def forward(logits2d, targets1d, ignore_index):
    """logits (M, V) float32, integer targets (M,) -> losses (M,), lse (M,) (the row logsumexp, for backward).
    An ignored row's loss is 0; a target out of 0..V-1 that is not ignore_index gives a NaN loss."""
    op = "cross_entropy (CUDA)"
    cupy = backend.module_for("cuda")
    logits2d, targets1d = _checked_rows(op, logits2d, targets1d, ignore_index)
    n_rows, n_classes = logits2d.shape
    losses = cupy.empty(n_rows, dtype=np.float32)
    lse = cupy.empty(n_rows, dtype=np.float32)
    if n_rows == 0:
        return losses, lse
    kernel = loader.get_kernel("cross_entropy.cu", "cross_entropy_forward")
    loader.launch(kernel, (n_rows,), (_threads(n_classes),),
                  (logits2d, targets1d, losses, lse, np.int32(n_rows), np.int32(n_classes), np.int32(ignore_index)))
    return losses, lse


def backward(logits2d, targets1d, lse, row_grads, ignore_index):
    """logits (M, V), integer targets (M,), lse (M,) from forward, row_grads (M,) = dL/dloss_row
    -> dlogits (M, V) = (softmax(logits) - onehot(targets)) · row_grads, zero on ignored rows."""
    op = "cross_entropy backward (CUDA)"
    cupy = backend.module_for("cuda")
    logits2d, targets1d = _checked_rows(op, logits2d, targets1d, ignore_index)
    n_rows, n_classes = logits2d.shape
    lse = loader.float32_input(op, "lse", lse, (n_rows,))
    row_grads = loader.float32_input(op, "row_grads", row_grads, (n_rows,))
    dlogits = cupy.empty_like(logits2d)
    if n_rows == 0:
        return dlogits
    kernel = loader.get_kernel("cross_entropy.cu", "cross_entropy_backward")
    loader.launch(kernel, (n_rows,), (_threads(n_classes),),
                  (logits2d, targets1d, lse, row_grads, dlogits, np.int32(n_rows), np.int32(n_classes),
                   np.int32(ignore_index)))
    return dlogits
