"""torch.nn.utils: clipping the gradients of a model's parameters, together."""
from ..engine import backend
from ..engine.tensor import Tensor


def clip_grad_norm_(params, max_norm):
    """Scale all gradients together, in place, so that their total L2 norm is at most about `max_norm`.

    total_norm = sqrt(sum over parameters of sum(g^2)); parameters without a gradient are skipped. With
    coef = max_norm / (total_norm + 1e-6), the gradients are multiplied by coef when coef < 1 (torch's rule:
    the 1e-6 guards against dividing by zero). Scaling all gradients by one factor keeps the update direction.
    Returns total_norm (before clipping) as a Python float, handy to log.
    """
    if max_norm <= 0:
        raise ValueError(f"clip_grad_norm_: max_norm must be > 0, got {max_norm}")
    params = [params] if isinstance(params, Tensor) else list(params)
    grads = [p.grad.data for p in params if p.grad is not None]
    if not grads:
        return 0.0
    squared = 0
    for g in grads:
        flat = g.ravel()
        squared = squared + flat.dot(flat)  # stays on the device: one transfer at the end, not one per parameter
    total_norm = float(backend.xp(grads[0]).sqrt(squared))
    coef = max_norm / (total_norm + 1e-6)
    if coef < 1:
        for g in grads:
            g *= coef
    return total_norm
