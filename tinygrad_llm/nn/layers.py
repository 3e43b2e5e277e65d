"""Layers and losses as Modules, with PyTorch's names, arguments, parameters, initialisation and printing; each a
thin Module over its function in engine/functional.py (F) or engine/ops.py.

Each layer's parameters are made, then filled by nn/init.py's functions in PyTorch's order (Linear: the weight by
kaiming_uniform_(a=sqrt(5)), then the bias uniform in ±1/sqrt(fan_in)), so that with PyTorch's generator the same
seed gives the same layer.
"""
import math

import numpy as np

from ..engine import backend
from ..engine import functional as F
from ..engine.arguments import normalize_axes
from ..engine.ops import sigmoid, tanh
from ..engine.tensor import Tensor, no_grad
from . import init
from .module import Module, Parameter


def _check_sizes(layer, **sizes):
    """Refuse a layer size that is not a whole number >= 0 (0 is allowed, as in PyTorch), naming layer and size."""
    for name, size in sizes.items():
        if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 0:
            raise ValueError(f"{layer}: {name} must be a whole number >= 0, got {size!r}")


def _zeros(*shape):
    """A float32 Parameter of zeros, for init to fill (zeros it stays inside skip_init)."""
    return Parameter(np.zeros(shape, np.float32))


def _uniform_bias(bias, fan_in):
    """PyTorch's bias of Linear and Conv1d: uniform in ±1/sqrt(fan_in) (0 for fan_in 0)."""
    if bias is not None:
        bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0.0
        init.uniform_(bias, -bound, bound)


# ---------------------------------------------------------------- layers with parameters

class Linear(Module):
    """y = x Wᵀ + b.   x (..., in_features) -> (..., out_features); weight (out, in) as in PyTorch. With in_features
    0 the weight is empty, the bias zero and the output the bias, as in PyTorch."""

    def __init__(self, in_features, out_features, bias=True):
        _check_sizes("Linear", in_features=in_features, out_features=out_features)
        self.in_features, self.out_features = in_features, out_features
        self.weight = _zeros(out_features, in_features)
        self.bias = _zeros(out_features) if bias else None
        self.reset_parameters()

    def reset_parameters(self):
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))                  # U(±1/sqrt(in_features))
        _uniform_bias(self.bias, self.in_features)

    def forward(self, x):
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class NonDynamicallyQuantizableLinear(Linear):
    """PyTorch's name for MultiheadAttention's out_proj: a Linear (kept so that print(model) reads as PyTorch's)."""


class Embedding(Module):
    """Row lookup: integer ids (...) -> (..., embedding_dim); weight (num_embeddings, embedding_dim) ~ N(0, 1).
    padding_idx: that row starts at zero and gets no gradient (the padding token's vector stays as it is)."""

    def __init__(self, num_embeddings, embedding_dim, padding_idx=None, max_norm=None, norm_type=2.0,
                 scale_grad_by_freq=False, sparse=False, _weight=None, _freeze=False):
        _check_sizes("Embedding", num_embeddings=num_embeddings, embedding_dim=embedding_dim)
        if max_norm is not None or norm_type != 2.0 or scale_grad_by_freq or sparse:
            raise NotImplementedError("Embedding: max_norm, norm_type, scale_grad_by_freq and sparse are not "
                                      "supported; leave them at their defaults")
        if padding_idx is not None:
            if not -num_embeddings <= padding_idx < num_embeddings:
                raise ValueError(f"Embedding: padding_idx {padding_idx} must be within num_embeddings "
                                 f"{num_embeddings}")
            padding_idx %= num_embeddings                                   # -1: the last row, as PyTorch
        self.num_embeddings, self.embedding_dim, self.padding_idx = num_embeddings, embedding_dim, padding_idx
        if _weight is None:
            self.weight = _zeros(num_embeddings, embedding_dim)
            self.reset_parameters()
        else:
            if tuple(_weight.shape) != (num_embeddings, embedding_dim):
                raise ValueError(f"Embedding: _weight has shape {tuple(_weight.shape)}, expected "
                                 f"({num_embeddings}, {embedding_dim})")
            self.weight = Parameter(_weight, requires_grad=not _freeze)

    def reset_parameters(self):
        init.normal_(self.weight)
        if self.padding_idx is not None:
            with no_grad():
                self.weight[self.padding_idx].fill_(0)      # a view of the padding row, zeroed in place

    @classmethod
    def from_pretrained(cls, embeddings, freeze=True, padding_idx=None, max_norm=None, norm_type=2.0,
                        scale_grad_by_freq=False, sparse=False):
        """An Embedding whose weight is `embeddings` (V, C) itself (shared, not copied, as PyTorch); frozen
        (requires_grad False) unless freeze=False."""
        if embeddings.ndim != 2:
            raise ValueError(f"Embedding.from_pretrained: embeddings must be 2-dimensional, got {embeddings.shape}")
        return cls(*embeddings.shape, padding_idx, max_norm, norm_type, scale_grad_by_freq, sparse,
                   _weight=embeddings, _freeze=freeze)

    def forward(self, input):
        return F.embedding(input, self.weight, self.padding_idx)

    def extra_repr(self):
        return f"{self.num_embeddings}, {self.embedding_dim}" + (
            f", padding_idx={self.padding_idx}" if self.padding_idx is not None else "")


class LayerNorm(Module):
    """Normalise the trailing normalized_shape axes to mean 0, variance 1, then scale by weight (ones) and shift by
    bias (zeros), as PyTorch's LayerNorm(normalized_shape, eps, elementwise_affine, bias)."""

    def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True, bias=True):
        self.normalized_shape = (normalized_shape,) if isinstance(normalized_shape, (int, np.integer)) \
            else tuple(normalized_shape)
        _check_sizes("LayerNorm", **{f"normalized_shape[{i}]": n for i, n in enumerate(self.normalized_shape)})
        self.eps, self.elementwise_affine = eps, elementwise_affine
        self.weight = Parameter(np.ones(self.normalized_shape, np.float32)) if elementwise_affine else None
        self.bias = Parameter(np.zeros(self.normalized_shape, np.float32)) if elementwise_affine and bias else None

    def forward(self, x):
        return F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return (f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}, "
                f"bias={self.bias is not None}")


class BatchNorm1d(Module):
    """Normalise each of num_features channels over the batch: input (N, C) or (N, C, L). While training, the
    batch's statistics, and running_mean/running_var (buffers) updated in place with `momentum` (None: the
    cumulative average over num_batches_tracked batches), as PyTorch; in eval, the running statistics (or the
    batch's when track_running_stats=False). weight ones, bias zeros (affine)."""

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True, *, bias=True):
        _check_sizes("BatchNorm1d", num_features=num_features)
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        self.weight = Parameter(np.ones(num_features, np.float32)) if affine else None
        self.bias = Parameter(np.zeros(num_features, np.float32)) if affine and bias else None
        tracked = track_running_stats
        self.register_buffer("running_mean", Tensor(np.zeros(num_features, np.float32)) if tracked else None)
        self.register_buffer("running_var", Tensor(np.ones(num_features, np.float32)) if tracked else None)
        self.register_buffer("num_batches_tracked", Tensor(np.array(0)) if tracked else None)

    def forward(self, input):
        if input.ndim not in (2, 3):
            raise ValueError(f"BatchNorm1d: expected 2D or 3D input (N, C) or (N, C, L), got {input.shape}")
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats:
            self.num_batches_tracked.add_(1)
            if self.momentum is None:                                  # the cumulative moving average
                factor = 1.0 / float(self.num_batches_tracked.item())
        batch_stats = self.training or self.running_mean is None     # eval without running statistics: the batch's
        updated = not self.training or self.track_running_stats
        return F.batch_norm(input, self.running_mean if updated else None, self.running_var if updated else None,
                            self.weight, self.bias, batch_stats, factor, self.eps)

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"bias={self.bias is not None}, track_running_stats={self.track_running_stats}")


def _one(layer, name, value):
    """A Conv1d setting given as an int or a 1-tuple, as PyTorch's (kernel_size=3 or (3,)), as the 1-tuple."""
    value = tuple(value) if isinstance(value, (tuple, list)) else (value,)
    if len(value) != 1 or not isinstance(value[0], (int, np.integer)):
        raise ValueError(f"{layer}: {name} must be an int or a 1-tuple of one, got {value!r}")
    return value


class Conv1d(Module):
    """A 1-d convolution: (N, in_channels, L) or (in_channels, L) -> (N, out_channels, L_out); weight
    (out_channels, in_channels/groups, kernel_size), bias (out_channels,), both uniform in ±1/sqrt(fan_in) as
    PyTorch (fan_in = in_channels/groups · kernel_size). padding: a whole number, 'valid' or 'same'; padding_mode
    'zeros', or 'reflect', 'replicate', 'circular' (the input padded by F.pad first, as PyTorch)."""

    PADDING_MODES = ("zeros", "reflect", "replicate", "circular")

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1, bias=True,
                 padding_mode="zeros"):
        _check_sizes("Conv1d", in_channels=in_channels, out_channels=out_channels)
        if groups < 1 or in_channels % groups or out_channels % groups:
            raise ValueError(f"Conv1d: groups={groups} must divide in_channels {in_channels} and out_channels "
                             f"{out_channels}")
        if padding_mode not in self.PADDING_MODES:
            raise ValueError(f"Conv1d: padding_mode must be one of {', '.join(self.PADDING_MODES)}, got "
                             f"{padding_mode!r}")
        self.in_channels, self.out_channels, self.groups, self.padding_mode = (in_channels, out_channels, groups,
                                                                              padding_mode)
        self.kernel_size, self.stride, self.dilation = (_one("Conv1d", name, value) for name, value in
                                                        (("kernel_size", kernel_size), ("stride", stride),
                                                         ("dilation", dilation)))
        if isinstance(padding, str):
            if padding not in ("valid", "same"):
                raise ValueError(f"Conv1d: padding must be a whole number, 'valid' or 'same', got {padding!r}")
            if padding == "same" and self.stride != (1,):
                raise ValueError("Conv1d: padding='same' is not supported for strided convolutions (as in PyTorch)")
            self.padding = padding
        else:
            self.padding = _one("Conv1d", "padding", padding)
        self.weight = _zeros(out_channels, in_channels // groups, self.kernel_size[0])
        self.bias = _zeros(out_channels) if bias else None
        self.reset_parameters()

    def reset_parameters(self):
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        _uniform_bias(self.bias, self.in_channels // self.groups * self.kernel_size[0])

    def _padding_each_side(self):
        """(before, after) for F.pad in a non-zeros padding_mode: 'same' puts the odd one after, as PyTorch."""
        if self.padding == "valid":
            return 0, 0
        if self.padding == "same":
            total = self.dilation[0] * (self.kernel_size[0] - 1)
            return total // 2, total - total // 2
        return self.padding[0], self.padding[0]

    def forward(self, input):
        if self.padding_mode == "zeros":
            return F.conv1d(input, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)
        padded = F.pad(input, self._padding_each_side(), mode=self.padding_mode)
        return F.conv1d(padded, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)

    def extra_repr(self):
        settings = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0,):
            settings += f", padding={self.padding}"
        if self.dilation != (1,):
            settings += f", dilation={self.dilation}"
        if self.groups != 1:
            settings += f", groups={self.groups}"
        if self.bias is None:
            settings += ", bias=False"
        if self.padding_mode != "zeros":
            settings += f", padding_mode={self.padding_mode}"
        return settings


class MultiheadAttention(Module):
    """PyTorch's nn.MultiheadAttention: attention over num_heads heads of embed_dim // num_heads channels, with its
    parameters (in_proj_weight (3E, E) holding W_q, W_k, W_v one under the other, in_proj_bias (3E,), out_proj a
    Linear(E, E)), its initialisation (out_proj as a Linear, then in_proj_weight xavier_uniform_, both biases 0) and
    its forward:

        forward(query, key, value, key_padding_mask=None, need_weights=True, attn_mask=None,
                average_attn_weights=True, is_causal=False) -> (output, weights or None)

    query (L, N, E), key and value (S, N, E); (N, L, E) and (N, S, E) with batch_first=True; (L, E), (S, E) for one
    unbatched sequence. Masks as PyTorch's: a bool mask is True where attention is NOT allowed (the opposite of
    F.scaled_dot_product_attention's), a float mask is added to the scores; attn_mask (L, S) or (N·num_heads, L, S),
    key_padding_mask (N, S). is_causal is a hint that attn_mask is the causal mask (which must be given, as in
    PyTorch). weights: the attention probabilities, averaged over the heads (N, L, S) or per head (N, num_heads, L,
    S). kdim/vdim other than embed_dim, add_bias_kv and add_zero_attn are not supported."""

    def __init__(self, embed_dim, num_heads, dropout=0.0, bias=True, add_bias_kv=False, add_zero_attn=False,
                 kdim=None, vdim=None, batch_first=False):
        if embed_dim <= 0 or num_heads <= 0:
            raise ValueError(f"MultiheadAttention: embed_dim and num_heads must be greater than 0, got "
                             f"embed_dim={embed_dim} and num_heads={num_heads}")
        if embed_dim % num_heads:
            raise ValueError(f"MultiheadAttention: embed_dim {embed_dim} must be divisible by num_heads {num_heads}")
        if add_bias_kv or add_zero_attn or kdim not in (None, embed_dim) or vdim not in (None, embed_dim):
            raise NotImplementedError("MultiheadAttention: add_bias_kv, add_zero_attn and kdim/vdim other than "
                                      "embed_dim are not supported")
        self.embed_dim, self.num_heads, self.dropout, self.batch_first = embed_dim, num_heads, dropout, batch_first
        self.kdim = self.vdim = embed_dim
        self.head_dim = embed_dim // num_heads
        self.in_proj_weight = _zeros(3 * embed_dim, embed_dim)
        self.in_proj_bias = _zeros(3 * embed_dim) if bias else None
        self.out_proj = NonDynamicallyQuantizableLinear(embed_dim, embed_dim, bias=bias)   # draws, as PyTorch's
        init.xavier_uniform_(self.in_proj_weight)
        if bias:
            init.constant_(self.in_proj_bias, 0.0)
            init.constant_(self.out_proj.bias, 0.0)

    def forward(self, query, key, value, key_padding_mask=None, need_weights=True, attn_mask=None,
                average_attn_weights=True, is_causal=False):
        batched = query.ndim == 3
        self._check_shapes(query, key, value, batched)
        if not batched:                                   # one sequence: a batch of one, in (L, N, E) layout
            query, key, value = (x.unsqueeze(1) for x in (query, key, value))
            key_padding_mask = None if key_padding_mask is None else Tensor(key_padding_mask).unsqueeze(0)
        elif self.batch_first:
            query, key, value = (x.transpose(0, 1) for x in (query, key, value))
        if is_causal and attn_mask is None:
            raise RuntimeError("MultiheadAttention: is_causal needs attn_mask (the causal mask), as in PyTorch")
        q, k, v = self._project(query, key, value)         # (N, H, L, D), (N, H, S, D), (N, H, S, D)
        n, _, tgt_len, _ = q.shape
        mask = self._additive_mask(attn_mask, key_padding_mask, n, tgt_len, k.shape[2], q)
        dropout_p = self.dropout if self.training else 0.0
        if need_weights:
            scores = (q * math.sqrt(1.0 / self.head_dim)) @ k.transpose(-2, -1)
            weights = F.softmax(scores if mask is None else scores + mask, dim=-1)          # (N, H, L, S)
            out = F.dropout(weights, dropout_p) @ v if dropout_p > 0 else weights @ v
        else:                                              # as PyTorch, the causal hint stands for the mask here
            causal_only = is_causal and key_padding_mask is None
            out = F.scaled_dot_product_attention(q, k, v, None if causal_only else mask, dropout_p, causal_only)
            weights = None
        out = self.out_proj(out.permute(2, 0, 1, 3).reshape(tgt_len, n, self.embed_dim))    # (L, N, E)
        if weights is not None and average_attn_weights:
            weights = weights.mean(dim=1)                                                    # (N, L, S)
        if not batched:
            return out.squeeze(1), None if weights is None else weights.squeeze(0)
        return (out.transpose(0, 1) if self.batch_first else out), weights

    def _check_shapes(self, query, key, value, batched):
        batch = 0 if self.batch_first else 1
        shapes_fit = (query.ndim == key.ndim == value.ndim == (3 if batched else 2) and key.shape == value.shape
                      and query.shape[-1] == self.embed_dim and key.shape[-1] == self.embed_dim
                      and (not batched or query.shape[batch] == key.shape[batch]))
        if not shapes_fit:
            layout = "(N, L, E)" if self.batch_first else "(L, N, E)"
            raise ValueError(f"MultiheadAttention: query {query.shape}, key {key.shape} and value {value.shape} do "
                             f"not fit: expected query {layout} (or (L, E) unbatched) and key and value of one "
                             f"shape, E = embed_dim = {self.embed_dim}")

    def _project(self, query, key, value):
        """q, k, v: the input projections (one matmul with the packed weight when query, key and value are the
        same tensor, as PyTorch), split into heads: (L, N, E) -> (N, H, L, D)."""
        e = self.embed_dim
        w, b = self.in_proj_weight, self.in_proj_bias
        if query is key is value:
            q, k, v = F.linear(query, w, b).split(e, dim=-1)
        else:
            q, k, v = (F.linear(x, w[i * e:(i + 1) * e], None if b is None else b[i * e:(i + 1) * e])
                       for i, x in enumerate((query, key, value)))
        return tuple(x.reshape(x.shape[0], x.shape[1], self.num_heads, self.head_dim).permute(1, 2, 0, 3)
                     for x in (q, k, v))

    def _additive_mask(self, attn_mask, key_padding_mask, n, tgt_len, src_len, like):
        """attn_mask and key_padding_mask as one float mask added to the scores, broadcastable to (N, H, L, S):
        -inf where a bool mask is True, a float mask as it is; None without either."""
        xp, mask = backend.xp(like.data), None
        for given, shapes, name in ((attn_mask, [(tgt_len, src_len), (n * self.num_heads, tgt_len, src_len)],
                                     "attn_mask"), (key_padding_mask, [(n, src_len)], "key_padding_mask")):
            if given is None:
                continue
            array = given.data if isinstance(given, Tensor) else xp.asarray(given)
            if array.shape not in shapes:
                raise ValueError(f"MultiheadAttention: {name} has shape {array.shape}, expected "
                                 f"{' or '.join(map(str, shapes))}")
            if array.dtype == bool:
                array = xp.where(array, -np.inf, 0.0)
            array = array.astype(like.dtype)
            if name == "attn_mask":
                array = array.reshape(-1, self.num_heads, tgt_len, src_len) if array.ndim == 3 else array
            else:
                array = array.reshape(n, 1, 1, src_len)
            mask = array if mask is None else mask + array
        return None if mask is None else Tensor(mask)


# ---------------------------------------------------------------- layers without parameters

class Identity(Module):
    """x itself. Takes any arguments and uses none of them, as PyTorch's Identity (a placeholder in a model)."""

    def __init__(self, *args, **kwargs):
        pass

    def forward(self, x):
        return x


class Flatten(Module):
    """Axes start_dim .. end_dim merged into one (from axis 1: the batch axis stays)."""

    def __init__(self, start_dim=1, end_dim=-1):
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x):
        return x.flatten(self.start_dim, self.end_dim)

    def extra_repr(self):
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Unflatten(Module):
    """Axis `dim` split into unflattened_size (a tuple of ints, one of them may be -1)."""

    def __init__(self, dim, unflattened_size):
        if not isinstance(unflattened_size, (tuple, list)) or not all(
                isinstance(n, (int, np.integer)) for n in unflattened_size):
            raise TypeError(f"Unflatten: unflattened_size must be a tuple of ints, got {unflattened_size!r}")
        self.dim, self.unflattened_size = dim, unflattened_size

    def forward(self, x):
        dim = normalize_axes("Unflatten", self.dim, x.ndim)[0]
        return x.reshape(x.shape[:dim] + tuple(self.unflattened_size) + x.shape[dim + 1:])

    def extra_repr(self):
        return f"dim={self.dim}, unflattened_size={self.unflattened_size}"


class Dropout(Module):
    """Zero each element with probability p while training (scaling the rest by 1/(1-p)); identity in eval."""

    def __init__(self, p=0.5, inplace=False):
        if not 0 <= p <= 1:
            raise ValueError(f"Dropout: dropout probability has to be between 0 and 1, but got {p}")
        self.p, self.inplace = p, inplace

    def forward(self, x):
        return F.dropout(x, self.p, self.training, self.inplace)

    def extra_repr(self):
        return f"p={self.p}, inplace={self.inplace}"


class _InPlaceActivation(Module):
    """An elementwise activation with PyTorch's inplace flag (the result written into the input: see F.relu)."""

    def __init__(self, inplace=False):
        self.inplace = inplace

    def extra_repr(self):
        return "inplace=True" if self.inplace else ""


class ReLU(_InPlaceActivation):
    """max(x, 0), elementwise."""

    def forward(self, x):
        return F.relu(x, self.inplace)


class LeakyReLU(Module):
    """x where x > 0, else negative_slope · x."""

    def __init__(self, negative_slope=0.01, inplace=False):
        self.negative_slope, self.inplace = negative_slope, inplace

    def forward(self, x):
        return F.leaky_relu(x, self.negative_slope, self.inplace)

    def extra_repr(self):
        return f"negative_slope={self.negative_slope}" + (", inplace=True" if self.inplace else "")


class SiLU(_InPlaceActivation):
    """x σ(x), elementwise (swish)."""

    def forward(self, x):
        return F.silu(x, self.inplace)


class GELU(Module):
    """x Φ(x), exact (approximate='none') or with GPT-2's tanh formula (approximate='tanh'); see F.gelu."""

    def __init__(self, approximate="none"):
        self.approximate = approximate

    def forward(self, x):
        return F.gelu(x, self.approximate)

    def extra_repr(self):
        return f"approximate={self.approximate!r}"


class Softplus(Module):
    """log(1 + e^(βx)) / β, elementwise; x where βx > threshold."""

    def __init__(self, beta=1.0, threshold=20.0):
        self.beta, self.threshold = beta, threshold

    def forward(self, x):
        return F.softplus(x, self.beta, self.threshold)

    def extra_repr(self):
        return f"beta={self.beta}, threshold={self.threshold}"


class Tanh(Module):
    """tanh(x), elementwise."""

    def forward(self, x):
        return tanh(x)


class Sigmoid(Module):
    """1 / (1 + e^-x), elementwise."""

    def forward(self, x):
        return sigmoid(x)


class Softmax(Module):
    """softmax along `dim` (None: PyTorch's old implicit choice, with its warning; see F.softmax)."""

    def __init__(self, dim=None):
        self.dim = dim

    def forward(self, x):
        return F.softmax(x, self.dim)

    def extra_repr(self):
        return f"dim={self.dim}"


class LogSoftmax(Softmax):
    """log_softmax along `dim`."""

    def forward(self, x):
        return F.log_softmax(x, self.dim)


# ---------------------------------------------------------------- losses: their functions as modules

class CrossEntropyLoss(Module):
    """F.cross_entropy as a module: loss_fn(logits, targets), logits (N, C) or (N, C, d1..dk), targets integer class
    indices (N,) or (N, d1..dk), or class probabilities of the logits' shape. weight (PyTorch's first argument): one
    weight per class, kept as a buffer. The legacy size_average and reduce are read into reduction as PyTorch
    reads them."""

    def __init__(self, weight=None, size_average=None, ignore_index=-100, reduce=None, reduction="mean",
                 label_smoothing=0.0):
        self.register_buffer("weight", weight)
        self.ignore_index, self.label_smoothing = ignore_index, label_smoothing
        self.reduction = F.loss_reduction("CrossEntropyLoss", reduction, size_average, reduce)

    def forward(self, input, target):
        return F.cross_entropy(input, target, self.weight, ignore_index=self.ignore_index, reduction=self.reduction,
                               label_smoothing=self.label_smoothing)


class NLLLoss(Module):
    """F.nll_loss as a module: loss_fn(log_probabilities, targets); weight: one weight per class (a buffer)."""

    def __init__(self, weight=None, size_average=None, ignore_index=-100, reduce=None, reduction="mean"):
        self.register_buffer("weight", weight)
        self.ignore_index = ignore_index
        self.reduction = F.loss_reduction("NLLLoss", reduction, size_average, reduce)

    def forward(self, input, target):
        return F.nll_loss(input, target, self.weight, ignore_index=self.ignore_index, reduction=self.reduction)


class MSELoss(Module):
    """F.mse_loss as a module: loss_fn(input, target), both of one shape."""

    def __init__(self, size_average=None, reduce=None, reduction="mean"):
        self.reduction = F.loss_reduction(type(self).__name__, reduction, size_average, reduce)   # or L1Loss

    def forward(self, input, target):
        return F.mse_loss(input, target, reduction=self.reduction)


class L1Loss(MSELoss):
    """F.l1_loss as a module: loss_fn(input, target), both of one shape."""

    def forward(self, input, target):
        return F.l1_loss(input, target, reduction=self.reduction)


class BCELoss(Module):
    """F.binary_cross_entropy as a module: loss_fn(probabilities, targets); `weight` (a buffer, broadcastable to
    the input) rescales each element's loss."""

    def __init__(self, weight=None, size_average=None, reduce=None, reduction="mean"):
        self.register_buffer("weight", weight)
        self.reduction = F.loss_reduction("BCELoss", reduction, size_average, reduce)

    def forward(self, input, target):
        return F.binary_cross_entropy(input, target, self.weight, reduction=self.reduction)


class BCEWithLogitsLoss(Module):
    """F.binary_cross_entropy_with_logits as a module: loss_fn(logits, targets); weight and pos_weight buffers."""

    def __init__(self, weight=None, size_average=None, reduce=None, reduction="mean", pos_weight=None):
        self.register_buffer("weight", weight)
        self.register_buffer("pos_weight", pos_weight)
        self.reduction = F.loss_reduction("BCEWithLogitsLoss", reduction, size_average, reduce)

    def forward(self, input, target):
        return F.binary_cross_entropy_with_logits(input, target, self.weight, reduction=self.reduction,
                                                  pos_weight=self.pos_weight)
