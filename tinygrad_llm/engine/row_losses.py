"""Per-row losses reduced to the loss returned, and back: the gradient of each row's loss. Shared by the fused
cross-entropy (functional.CrossEntropyOp) and its CUDA Function (cuda/fused.CudaCrossEntropyOp), which cannot import
functional.py: functional.py imports it, to declare the kernel in cross_entropy's FusedOp entry."""


def reduce_row_losses(losses, keep, reduction):
    """Per-row losses (M,) -> (the loss returned, the number of rows averaged over): all rows for "none", their
    sum for "sum", their mean over the kept (not ignored) rows for "mean" (count None unless "mean")."""
    if reduction == "none":
        return losses, None
    if reduction == "sum":
        return losses.sum(), None
    count = int(keep.sum())
    return losses.sum() / losses.dtype.type(count), count


def row_loss_grads(g, keep, reduction, count):
    """dL/d(loss of each row) (M,) from g = dL/d(the loss returned): g itself per row ("none"), g ("sum"), or
    g / count ("mean"); 0 for ignored rows."""
    if reduction == "none":
        return g.reshape(-1) * keep
    return keep * (g / g.dtype.type(count) if reduction == "mean" else g)
