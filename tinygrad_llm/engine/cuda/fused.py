"""Fused Functions that run our CUDA kernels, the GPU twins of the fused Functions in functional.py.

Same math and the same derivatives (each derived in its docs/ page): forward launches the forward kernel and saves
what the backward kernel needs, backward launches it. Each class's `supports` says which calls of the public function
its kernel takes; the public function's FusedOp entry (functional.py) names the kernel and that predicate, and
dispatch.pick runs the kernel for a float32 Tensor on the GPU that it supports. Any other call (an attention mask,
dropout inside attention, exact GELU) runs the NumPy Function's array code on CuPy, as every call does inside
`with cuda_kernels(False):`.
"""
from ..row_losses import reduce_row_losses, row_loss_grads
from ..tensor import Function
from . import attention, cross_entropy, gelu, layernorm


class CudaLayerNormOp(Function):
    """layer_norm over the last axis; kernels/layernorm.cu (one warp per row), derived in docs/layernorm.md.
    Saves the input rows, the weight, and mean and rstd per row; backward rebuilds x̂ = (x - mean)·rstd from them
    (2 numbers per row kept instead of x̂'s C)."""

    @staticmethod
    def supports(x, axes, weight, bias, eps):
        """F.layer_norm's calls the kernel takes: normalizing over the last axis alone."""
        return len(axes) == 1

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

    @staticmethod
    def supports(logits, targets, ignore_index, reduction, label_smoothing):
        """F.cross_entropy's calls (class indices, no class weights) the kernel takes: (N, C) logits, no smoothing."""
        return logits.ndim == 2 and not label_smoothing

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

    @staticmethod
    def supports(x, approximate):
        """F.gelu's calls the kernel takes: the tanh approximation (the exact GELU has no kernel)."""
        return approximate == "tanh"

    def forward(ctx, x):
        ctx.save_for_backward(x)
        return gelu.forward(x)

    def backward(ctx, g):
        (x,) = ctx.saved
        return gelu.backward(x, g)


class CudaAttentionOp(Function):
    """Causal or full attention with Tq = Tk, no mask, no dropout; kernels/attention.cu (FlashAttention-2), derived
    in docs/attention.md. Saves q, k, v, O and the row logsumexp, never the T×T probabilities. precision "fp32" or
    "bf16" (cuda/attention.py: bfloat16 tensor cores, accumulating in float32)."""

    @staticmethod
    def supports(q, k, v, attn_mask, dropout_p, is_causal, scale, precision):
        """F.scaled_dot_product_attention's calls the kernel takes: no mask, no dropout, q, k, v of one shape
        (self-attention, Tq = Tk, Dv = D), a head dim the kernel is compiled for (attention.HEAD_DIMS)."""
        return (attn_mask is None and dropout_p == 0 and q.shape == k.shape == v.shape
                and q.shape[-1] in attention.HEAD_DIMS)

    def forward(ctx, q, k, v, is_causal=False, scale=None, precision="fp32"):
        ctx.is_causal, ctx.scale, ctx.precision = is_causal, scale, precision
        out, lse = attention.forward(q, k, v, is_causal, scale, precision)
        ctx.save_for_backward(q, k, v, out, lse)
        return out

    def backward(ctx, d_out):
        q, k, v, out, lse = ctx.saved
        dq, dk, dv = attention.backward(q, k, v, out, d_out, lse, ctx.is_causal, ctx.scale, ctx.precision)
        return dq, dk, dv
