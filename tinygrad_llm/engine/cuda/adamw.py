"""Launcher for kernels/adamw.cu: one fused Adam / AdamW step on float32 CuPy arrays, updating p, m, v in place.

The math is optim/optimizers.py's _adam_step_arrays (torch.optim's order of operations), derived in docs/adamw.md;
the launch shape is at the top of kernels/adamw.cu. 1 - beta and the bias corrections 1 - beta^step are computed
here, on the host, in float64 (as NumPy does), then rounded to float32: from float32 betas they would lose digits to
cancellation.
CuPy is imported lazily, so this module imports on a machine without CuPy or a GPU.
"""
import numpy as np

from . import loader

THREADS = 256      # threads per block
MAX_BLOCKS = 4096  # grid cap: ~1M threads fill any current GPU; the kernel's grid-stride loop covers the rest


def supports(p, g, state, group):
    """The Adam and AdamW steps (optim/optimizers.py's ADAM_STEP) the kernel takes: all but AMSGrad's, whose running
    maximum of v the kernel does not keep."""
    return not group["amsgrad"]


def step(p, g, m, v, *, lr, beta1, beta2, eps, weight_decay, step, decoupled):
    """One Adam step on parameter p with gradient g and moments m (exp_avg), v (exp_avg_sq), all the same shape.

    p, m and v are updated in place, so they must be C-contiguous float32 CuPy arrays (a contiguous copy would take
    the update and be thrown away); g may be any float32 CuPy array of that shape. `step` is the 1-based step count
    (after incrementing it, as optim/optimizers.py does). decoupled=True is AdamW (p *= 1 - lr·weight_decay), False
    is Adam (g += weight_decay·p)."""
    op = "adamw step (CUDA)"
    for name, array in (("p", p), ("m", m), ("v", v)):
        loader.float32_input(op, name, array, p.shape)
        if not array.flags.c_contiguous:
            raise ValueError(f"{op}: {name} is updated in place and must be C-contiguous")
    g = loader.float32_input(op, "g", g, p.shape)
    if step < 1:
        raise ValueError(f"{op}: step must be >= 1 (the count after this update), got {step}")
    if p.size == 0:
        return
    bias_correction1 = 1 - beta1 ** step
    bias_correction2 = 1 - beta2 ** step
    kernel = loader.get_kernel("adamw.cu", "adamw_step")
    grid = min(MAX_BLOCKS, (p.size + THREADS - 1) // THREADS)
    loader.launch(kernel, (grid,), (THREADS,),
                  (p, g, m, v, np.float32(lr), np.float32(beta1), np.float32(beta2), np.float32(1 - beta1),
                   np.float32(1 - beta2), np.float32(eps), np.float32(weight_decay), np.float32(bias_correction1),
                   np.float32(bias_correction2), np.int32(bool(decoupled)), np.int32(p.size)))
