"""The composed twins of the fused ops in functional.py: the same functions built from primitive ops only.

Autograd differentiates these through the chain rule, node by node; functional.py differentiates the same
formulas by hand. Tests check that the two agree in value and gradient. Read them side by side: what a fused
backward saves in memory and time is every intermediate kept here.
Arguments that functional.py has already checked and converted (axes, masks as an additive bias) arrive ready.
"""
import math

from . import backend, rng
from .movement import where
from .ops import erf, tanh
from .tensor import Tensor


def linear(x, weight, bias=None):                     # (..., in), (out, in), (out,) -> (..., out)
    y = x @ weight.transpose()
    return y + bias if bias is not None else y


def softmax(x, dim=-1):
    # the shift by the row max leaves softmax unchanged, so no gradient needs to flow through it
    e = (x - x.max(axis=dim, keepdims=True).detach()).exp()
    return e / e.sum(axis=dim, keepdims=True)


def log_softmax(x, dim=-1):
    shifted = x - x.max(axis=dim, keepdims=True).detach()
    return shifted - shifted.exp().sum(axis=dim, keepdims=True).log()


def cross_entropy(logits, targets, ignore_index=-100, reduction="mean", label_smoothing=0.0):
    """logits (N, C) or (N, C, d1..dk), integer target array (N,) or (N, d1..dk)."""
    xp = backend.xp(logits.data)
    logp = log_softmax(logits, dim=1)                                  # (N, C, d1..dk)
    keep = targets != ignore_index
    t_safe = xp.where(keep, targets, 0)
    # pick logp[n, t[n, d..], d..] with one integer array per axis
    index = list(xp.indices(targets.shape, sparse=True))
    picked = logp[(index[0], t_safe) + tuple(index[1:])]              # (N, d1..dk)
    losses = -picked
    if label_smoothing:  # the target (1-ε) onehot + ε/C: -Σ_c q_c log p_c
        losses = (1 - label_smoothing) * losses - label_smoothing * logp.mean(axis=1)
    losses = where(keep, losses, 0.0)
    if reduction == "none":
        return losses
    if reduction == "sum":
        return losses.sum()
    return losses.sum() / float(keep.sum())


def layer_norm(x, axes, weight=None, bias=None, eps=1e-5):
    mu = x.mean(axis=axes, keepdims=True)
    centered = x - mu
    variance = (centered * centered).mean(axis=axes, keepdims=True)
    y = centered / (variance + eps).sqrt()
    if weight is not None:
        y = y * weight
    return y + bias if bias is not None else y


def scaled_dot_product_attention(q, k, v, bias, dropout_p=0.0, scale=None):
    """q (..., Tq, D), k (..., Tk, D), v (..., Tk, Dv), additive bias (..., Tq, Tk) -> (..., Tq, Dv).
    A row that may attend to nothing gives NaN here (0 in the fused op)."""
    scale = 1 / math.sqrt(q.shape[-1]) if scale is None else scale
    scores = (q @ k.transpose()) * scale + Tensor(bias)            # (..., Tq, Tk)
    p = dropout(softmax(scores, dim=-1), dropout_p) if dropout_p > 0 else softmax(scores, dim=-1)
    return p @ v


def dropout(x, p=0.5):
    keep = rng.dropout_keep_mask(x.shape, p, like=x.data) / x.dtype.type(1 - p)
    return x * Tensor(keep)


def gelu(x, approximate="none"):
    if approximate == "tanh":
        return 0.5 * x * (1 + tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x * x * x)))
    return x * 0.5 * (1 + erf(x * (1 / math.sqrt(2))))


def mse_loss(input, target, reduction="mean"):
    diff = input - target
    squares = diff * diff
    if reduction == "none":
        return squares
    return squares.sum() if reduction == "sum" else squares.mean()
