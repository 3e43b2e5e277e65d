"""Fused Functions that run our CUDA kernels, the GPU twins of the fused Functions in functional.py.

Same math and the same derivatives (derived step by step in docs/, stated in functional.py's docstrings and the
kernels' own comments): forward launches the forward kernel and saves what the backward kernel needs, backward
launches it.
functional.py hands a call here when `kernels_wanted(array)`: a float32 CuPy array, kernels enabled; where a
kernel cannot take the call (an attention mask, dropout inside attention, exact GELU), the array code of the
Function in functional.py runs on CuPy instead, as it does everywhere with `loader.enabled = False`.
"""
import numpy as np

from .. import backend
from ..reductions import reduce_row_losses, row_loss_grads
from ..tensor import Function
from . import attention, cross_entropy, gelu, layernorm, loader


def kernels_wanted(array):
    """True for a float32 CuPy array while kernels are enabled (see loader.enabled); the kernels are float32
    (attention also bf16, through its own launcher), so float64 on the GPU runs the array code."""
    return loader.enabled and array.dtype == np.float32 and backend.device_of(array) == "cuda"


class CudaLayerNormOp(Function):
    """layer_norm over the last axis; kernels/layernorm.cu (one warp per row), derived in docs/layernorm.md.
    Saves the input rows, the weight, and mean and rstd per row; backward rebuilds x̂ = (x - mean)·rstd from them
    (2 numbers per row kept instead of x̂'s C)."""

    def forward(ctx, x, weight=None, bias=None, eps=1e-5):
        rows = x.reshape(-1, x.shape[-1])                                     # (N, C)
        y, mean, rstd = layernorm.forward(rows, weight, bias, eps)
        ctx.shape = x.shape
        ctx.save_for_backward(rows, weight, mean, rstd)
        return y.reshape(x.shape)

    def backward(ctx, g):
        rows, weight, mean, rstd = ctx.saved
        need_weight_grads = ctx.needs_input_grad[1] or ctx.needs_input_grad[2]
        dx, dweight, dbias = layernorm.backward(g.reshape(rows.shape), rows, weight, mean, rstd, need_weight_grads)
        return (dx.reshape(ctx.shape), dweight if ctx.needs_input_grad[1] else None,
                dbias if ctx.needs_input_grad[2] else None)


class CudaCrossEntropyOp(Function):
    """cross_entropy of (N, C) logits; kernels/cross_entropy.cu, derived in docs/cross_entropy.md. Forward keeps the
    logits and the logsumexp per row, never the softmax; backward writes (softmax - onehot) · dL/dloss_row in one
    pass, recomputing softmax = e^(x - lse)."""

    def forward(ctx, logits, targets, ignore_index=-100, reduction="mean"):
        losses, lse = cross_entropy.forward(logits, targets, ignore_index)   # (N,), (N,)
        keep = targets != ignore_index
        ctx.save_for_backward(logits, targets, lse, keep)
        ctx.ignore_index, ctx.reduction = ignore_index, reduction
        loss, ctx.count = reduce_row_losses(losses, keep, reduction)
        return loss

    def backward(ctx, g):
        logits, targets, lse, keep = ctx.saved
        row_grads = row_loss_grads(g, keep, ctx.reduction, ctx.count)       # (N,)
        dlogits = cross_entropy.backward(logits, targets, lse, row_grads.astype(logits.dtype), ctx.ignore_index)
        return dlogits, None


class CudaGeluTanhOp(Function):
    """GELU, tanh approximation; kernels/gelu.cu, derived in docs/gelu.md. Saves x, recomputes tanh in backward."""

    def forward(ctx, x):
        ctx.save_for_backward(x)
        return gelu.forward(x)

    def backward(ctx, g):
        (x,) = ctx.saved
        return gelu.backward(x, g)


class CudaAttentionOp(Function):
    """Causal or full attention with Tq = Tk, no mask, no dropout; kernels/attention.cu (FlashAttention-2), derived
    in docs/attention.md. Saves q, k, v, O and the row logsumexp, never the T×T probabilities."""

    def forward(ctx, q, k, v, is_causal=False, scale=None):
        ctx.is_causal, ctx.scale = is_causal, scale
        out, lse = attention.forward(q, k, v, is_causal, scale)
        ctx.save_for_backward(q, k, v, out, lse)
        return out

    def backward(ctx, d_out):
        q, k, v, out, lse = ctx.saved
        dq, dk, dv = attention.backward(q, k, v, out, d_out, lse, ctx.is_causal, ctx.scale)
        return dq, dk, dv
