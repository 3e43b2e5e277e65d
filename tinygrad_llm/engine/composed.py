"""The composed twins of the fused ops in functional.py: the same functions built from primitive ops only.

Autograd differentiates these through the chain rule, node by node; functional.py differentiates the same
formulas by hand. Tests check that the two agree in value and gradient. Read them side by side: what a fused
backward saves in memory and time is every intermediate kept here.
Some of torch.nn.functional's functions have no fused op, because fusing would save nothing (nll_loss, l1_loss,
leaky_relu, normalize, interpolate): functional.py checks their arguments and runs their composed form from here.
Arguments that functional.py has already checked and converted (axes, masks as an additive bias) arrive ready.
"""
import math

import numpy as np

from . import backend, rng
from .movement import concat, getitem, stack, where
from .ops import erf, sigmoid, tanh
from .tensor import Tensor


def linear(x, weight, bias=None):                     # (..., in), (out, in), (out,) -> (..., out)
    y = x @ weight.transpose()
    return y + bias if bias is not None else y


def softmax(x, dim=-1):
    # the shift by the row max leaves softmax unchanged, so no gradient needs to flow through it
    e = (x - x.amax(dim, keepdim=True).detach()).exp()
    return e / e.sum(axis=dim, keepdims=True)


def log_softmax(x, dim=-1):
    shifted = x - x.amax(dim, keepdim=True).detach()
    return shifted - shifted.exp().sum(axis=dim, keepdims=True).log()


def reduce_losses(losses, reduction):
    """Per-element (or per-row) losses as a loss: themselves ('none'), their sum, or their mean."""
    if reduction == "none":
        return losses
    return losses.sum() if reduction == "sum" else losses.mean()


def weighted_loss(errors, weight, reduction):
    """weight ∘ errors (both of one shape): themselves, their sum, or their sum over sum(weight) ('mean', PyTorch's
    for mse_loss and l1_loss with a weight)."""
    weighted = errors * weight
    if reduction == "none":
        return weighted
    return weighted.sum() if reduction == "sum" else weighted.sum() / weight.sum()


def _class_axis(weight, ndim):
    """Class weights (C,) as a constant broadcasting along axis 1 of an (N, C, d1..dk) tensor."""
    return Tensor(weight.reshape((-1,) + (1,) * (ndim - 2)))


def _row_weights(targets, ignore_index, weight):
    """(keep, t_safe, the weight of each row): its target class's weight (1 without class weights), 0 where the
    row is ignored; t_safe is the target with ignored rows pointing at class 0."""
    xp = backend.xp(targets)
    keep = targets != ignore_index
    t_safe = xp.where(keep, targets, 0)
    return keep, t_safe, (keep if weight is None else weight[t_safe] * keep)


def nll_loss(logp, targets, ignore_index=-100, reduction="mean", weight=None):
    """-w[t] logp[n, t[n, d..], d..] for log-probabilities logp (N, C, d1..dk), an integer target array (N, d1..dk)
    and class weights w (an array, or None for 1); ignored rows give 0, and the mean divides by the kept rows'
    weights."""
    keep, t_safe, row_weights = _row_weights(targets, ignore_index, weight)
    # pick logp[n, t[n, d..], d..] with one integer array per axis
    index = list(backend.xp(targets).indices(targets.shape, sparse=True))
    losses = where(keep, -logp[(index[0], t_safe) + tuple(index[1:])], 0.0)    # (N, d1..dk)
    if weight is not None:
        losses = losses * Tensor(row_weights)
    if reduction == "mean":
        return losses.sum() / float(row_weights.sum())
    return reduce_losses(losses, reduction)


def cross_entropy(logits, targets, ignore_index=-100, reduction="mean", label_smoothing=0.0, weight=None):
    """logits (N, C) or (N, C, d1..dk), integer target array (N,) or (N, d1..dk), class weights or None."""
    logp = log_softmax(logits, dim=1)                                  # (N, C, d1..dk)
    if not label_smoothing:
        return nll_loss(logp, targets, ignore_index, reduction, weight)
    # PyTorch's: (1-ε) nll + (ε/C) Σ_c w_c (-log p_c), 0 on ignored rows; the mean divides both by the rows' weights
    keep, _, row_weights = _row_weights(targets, ignore_index, weight)
    smooth = -(logp if weight is None else logp * _class_axis(weight, logp.ndim)).sum(axis=1)
    losses = (1 - label_smoothing) * nll_loss(logp, targets, ignore_index, "none", weight) \
        + where(keep, (label_smoothing / logits.shape[1]) * smooth, 0.0)
    if reduction == "mean":
        return losses.sum() / float(row_weights.sum())
    return reduce_losses(losses, reduction)


def soft_target_cross_entropy(logits, probs, reduction="mean", label_smoothing=0.0, weight=None):
    """logits and class probabilities, both (N, C) or (N, C, d1..dk): -Σ_c w_c q_c log softmax(x)_c per row
    (w the class weights, or 1), then the mean over the rows, their sum, or none."""
    q = probs * (1 - label_smoothing) + label_smoothing / logits.shape[1] if label_smoothing else probs
    if weight is not None:
        q = q * _class_axis(weight, logits.ndim)
    return reduce_losses(-(q * log_softmax(logits, dim=1)).sum(axis=1), reduction)


def binary_cross_entropy(x, y, weight=None, reduction="mean"):
    """weight (an array or None) rescales each element. Each log clamped at -100 as in the fused op; unlike it,
    the gradient at x = 0 or 1 is 0 here (the clamp's), where PyTorch and the fused op give (x - y)/1e-12."""
    losses = -(y * x.log().clamp(min=-100) + (1 - y) * (1 - x).log().clamp(min=-100))
    return reduce_losses(losses * Tensor(weight) if weight is not None else losses, reduction)


def binary_cross_entropy_with_logits(x, y, weight=None, pos_weight=None, reduction="mean"):
    """(1-y) x + l log(1 + e^-x), l = 1 + (p_w - 1) y, with log(1 + e^-x) = -log σ(x): infinite where σ(x) rounds to
    0 (x below about -100 in float32, -745 in float64), where the fused op stays exact."""
    log_weight = 1 + (Tensor(pos_weight) - 1) * y if pos_weight is not None else 1
    losses = (1 - y) * x + log_weight * -sigmoid(x).log()
    return reduce_losses(losses * Tensor(weight) if weight is not None else losses, reduction)


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
    return reduce_losses(diff * diff, reduction)


def silu(x):
    return x * sigmoid(x)


def softplus(x, beta=1.0, threshold=20.0):
    # e^(βx) only below the threshold (clamped), so that no inf reaches the log's gradient where x itself is taken
    bx = x * beta
    return where(bx.data > threshold, x, (1 + bx.clamp(max=threshold).exp()).log() / beta)


def logsigmoid(x):
    # min(x, 0) - log(1 + e^-|x|); at x = 0 minimum's tie gives half of g, as σ(-0) does
    return x.minimum(0) - (-x.abs()).exp().log1p()


def leaky_relu(x, negative_slope=0.01):
    return where(x.data > 0, x, x * negative_slope)


def batch_norm(x, weight=None, bias=None, running_stats=None, eps=1e-5):
    """running_stats None: the batch's own statistics per channel (autograd goes through them); else the arrays
    (mean, var), constants."""
    axes = (0,) + tuple(range(2, x.ndim))
    channel = (1, x.shape[1]) + (1,) * (x.ndim - 2)
    if running_stats is None:
        centered = x - x.mean(axis=axes, keepdims=True)
        y = centered / ((centered * centered).mean(axis=axes, keepdims=True) + eps).sqrt()
    else:
        mean, var = (Tensor(stat.reshape(channel)) for stat in running_stats)
        y = (x - mean) / (var + eps).sqrt()
    if weight is not None:
        y = y * weight.reshape(channel)
    return y + bias.reshape(channel) if bias is not None else y


def normalize(x, p=2.0, axes=(1,), eps=1e-12):
    return x / x.norm(p, axes, keepdim=True).clamp(min=eps)


def cosine_similarity(x1, x2, axis, eps):
    return ((x1 / _norm_at_least(x1, axis, eps)) * (x2 / _norm_at_least(x2, axis, eps))).sum(axis)


def _norm_at_least(x, axis, eps):
    """‖x‖ along axis (kept), raised to eps where smaller. PyTorch raises it in place without recording the change,
    so the gradient that reaches the norm is the norm's own: the raise is added here as a constant."""
    norm = x.norm(dim=axis, keepdim=True)
    return norm + (norm.detach().clamp(min=eps) - norm.detach())


def _along(axis, index):
    """An index that picks `index` along `axis` and everything along the axes before it."""
    return (slice(None),) * axis + (index,)


def pad(x, sources, value=0.0):
    """sources {axis: source position of each output position, -1 for the constant}: pick, then fill."""
    xp = backend.xp(x.data)
    for axis, source in sources.items():
        source = xp.asarray(source)
        picked = getitem(x, _along(axis, xp.maximum(source, 0)))
        inside = (source >= 0).reshape((-1,) + (1,) * (x.ndim - axis - 1))   # broadcasts along `axis`
        x = picked if inside.all() else where(inside, picked, Tensor(xp.asarray(value, dtype=x.dtype)))
    return x


def conv1d(x, weight, bias=None, stride=1, padding=(0, 0), dilation=1, groups=1):
    """x (N, C_in, L) padded with zeros, its columns gathered tap by tap, then one batched matmul per group."""
    n, c_in, length = x.shape
    c_out, c_group, k = weight.shape
    zeros = [Tensor(backend.xp(x.data).zeros((n, c_in, p), dtype=x.dtype)) for p in padding]
    x = concat([zeros[0], x, zeros[1]], dim=2)
    l_out = (x.shape[2] - dilation * (k - 1) - 1) // stride + 1
    span = stride * (l_out - 1) + 1
    columns = stack([x[:, :, j * dilation:j * dilation + span:stride] for j in range(k)], dim=2)  # (N, C_in, K, L_out)
    columns = columns.reshape(n, groups, c_group * k, l_out)
    y = (weight.reshape(groups, c_out // groups, c_group * k) @ columns).reshape(n, c_out, l_out)
    return y + bias.reshape(c_out, 1) if bias is not None else y


def _interpolation_sources(length, out, scale, mode, align_corners, dtype):
    """Where each of `out` output positions reads from an axis of `length`, computed as PyTorch's CPU kernels do
    (in float32 for the nearest modes; for linear, from the scale in the input's precision): for nearest, one index
    per position; for linear, (i0, i1, λ1): the two neighbours and the weight of the second. (PyTorch's float32
    weighted sum uses fused multiply-adds where the CPU has them: the last bit may differ from ours.)"""
    positions = np.arange(out)
    if mode in ("nearest", "nearest-exact"):
        shift = np.float32(0.5 if mode == "nearest-exact" else 0)     # nearest-exact reads each position's centre
        src = np.floor((positions.astype(np.float32) + shift) * np.float32(scale)).astype(np.int64)
        return np.minimum(src, length - 1)
    if out == length:                                 # linear: the same length is a copy
        return positions, positions, np.zeros(out, dtype)
    if align_corners:
        scale = (length - 1) / (out - 1) if out > 1 else 0.0
    scale = np.float64(dtype.type(scale))             # the scale in the input's precision, the source in float64
    src = (scale * positions if align_corners else np.maximum(scale * (positions + 0.5) - 0.5, 0)).astype(dtype)
    i0 = np.minimum(np.floor(src).astype(np.int64), length - 1)
    weight = np.clip(src - i0, 0, 1).astype(dtype)
    return i0, i0 + (i0 < length - 1), weight


def interpolate(x, sizes, mode, align_corners):
    """sizes: (output length, scale) per spatial axis; each axis resized in turn."""
    xp = backend.xp(x.data)
    for axis, (out, scale) in enumerate(sizes, start=2):
        sources = _interpolation_sources(x.shape[axis], out, scale, mode, align_corners, x.dtype)
        if mode != "linear":
            x = getitem(x, _along(axis, xp.asarray(sources)))
            continue
        i0, i1, weight = (xp.asarray(a) for a in sources)
        weight = Tensor(weight.reshape((-1,) + (1,) * (x.ndim - axis - 1)))   # broadcasts along `axis`
        x = getitem(x, _along(axis, i0)) * (1 - weight) + getitem(x, _along(axis, i1)) * weight
    return x
