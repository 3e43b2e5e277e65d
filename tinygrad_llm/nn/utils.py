"""torch.nn.utils: clipping the gradients of a model's parameters together (clip_grad_norm_, clip_grad_value_), and
all parameters as one vector and back (parameters_to_vector, vector_to_parameters)."""
import math

import numpy as np

from ..engine import backend
from ..engine.movement import cat
from ..engine.tensor import Tensor
from .module import typename


def _grads(parameters):
    """The gradient arrays of `parameters` (a Tensor or an iterable of them), skipping those without one."""
    parameters = [parameters] if isinstance(parameters, Tensor) else list(parameters)
    return [p.grad.data for p in parameters if p.grad is not None]


def _vector_norm(x, norm_type):
    """torch.linalg.vector_norm(x, norm_type) of a flat array: max |x| for inf, min |x| for -inf, the number of
    nonzero elements for 0, else (sum |x|^p)^(1/p)."""
    xp = backend.xp(x)
    if norm_type == math.inf:
        return xp.abs(x).max()
    if norm_type == -math.inf:
        return xp.abs(x).min()
    if norm_type == 0:
        return xp.asarray(xp.count_nonzero(x), dtype=x.dtype)
    if norm_type == 2:
        return xp.sqrt(x.dot(x))  # one pass, no temporary
    return (xp.abs(x) ** norm_type).sum() ** (1 / norm_type)


def clip_grad_norm_(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False, foreach=None):
    """Scale all gradients together, in place, so that their total norm is at most about `max_norm`; returns the
    total norm before clipping, a 0-d Tensor, as torch.nn.utils.clip_grad_norm_ (take float() of it to log it).

    total_norm = ‖(‖g_1‖_p, ‖g_2‖_p, ...)‖_p over the parameters that have a gradient (p = norm_type: 2.0, inf or
    any other order; 0 with none). With coef = max_norm / (total_norm + 1e-6), computed in the gradients' dtype,
    the gradients are multiplied by coef when coef < 1 (PyTorch's rule: the 1e-6 guards against dividing by zero).
    Scaling all gradients by one factor keeps the update direction. A NaN or infinite total norm is an error with
    error_if_nonfinite=True (else the gradients are scaled by it, as in PyTorch). foreach chooses PyTorch's
    implementation and changes no number: here it is one pass per gradient whatever it says. max_norm must be
    > 0 (PyTorch would zero or flip the gradients).
    """
    if not max_norm > 0:
        raise ValueError(f"clip_grad_norm_: max_norm must be > 0, got {max_norm}")
    if foreach not in (None, True, False):
        raise ValueError(f"clip_grad_norm_: foreach must be None, True or False, got {foreach!r}")
    norm_type = float(norm_type)
    grads = _grads(parameters)
    if not grads:
        return Tensor(np.float32(0.0))
    xp = backend.xp(grads[0])
    norms = xp.stack([_vector_norm(g.ravel(), norm_type) for g in grads])  # stays on the device
    total_norm = _vector_norm(norms, norm_type)
    if error_if_nonfinite and not math.isfinite(total_norm):
        raise RuntimeError(f"clip_grad_norm_: the total norm of order {norm_type} for gradients from `parameters` "
                           f"is non-finite, so it cannot be clipped. To disable this error and scale the gradients "
                           f"by the non-finite norm anyway, set `error_if_nonfinite=False`")
    coef = total_norm.dtype.type(max_norm) / (total_norm + total_norm.dtype.type(1e-6))
    if coef < 1:
        for g in grads:
            g *= coef.astype(g.dtype)
    return Tensor(total_norm)


def clip_grad_value_(parameters, clip_value, foreach=None):
    """Clamp every gradient into [-clip_value, clip_value], in place (torch.nn.utils.clip_grad_value_); returns
    None. foreach changes no number (see clip_grad_norm_)."""
    clip_value = float(clip_value)
    if not clip_value >= 0:
        raise ValueError(f"clip_grad_value_: clip_value must be >= 0, got {clip_value}")
    if foreach not in (None, True, False):
        raise ValueError(f"clip_grad_value_: foreach must be None, True or False, got {foreach!r}")
    for g in _grads(parameters):
        backend.xp(g).clip(g, -clip_value, clip_value, out=g)


def parameters_to_vector(parameters):
    """Every parameter flattened and joined into one vector, in order (in the graph, as PyTorch's)."""
    return cat([p.reshape(-1) for p in parameters])


def vector_to_parameters(vec, parameters):
    """The parameters' numbers set from consecutive pieces of `vec` (as parameters_to_vector made it), in place."""
    if not isinstance(vec, Tensor):
        raise TypeError(f"vector_to_parameters: expected a Tensor, but got: {typename(vec)}")
    parameters = list(parameters)
    sizes = [p.numel() for p in parameters]
    if sum(sizes) != vec.numel():
        raise ValueError(f"vector_to_parameters: vec has {vec.numel()} elements, the parameters {sum(sizes)}")
    pointer = 0
    for p, size in zip(parameters, sizes):
        p.data[...] = vec.data[pointer:pointer + size].reshape(p.shape)
        pointer += size
