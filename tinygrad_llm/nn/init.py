"""torch.nn.init: fill a parameter in place, under no_grad, and return it (PyTorch's functions, names, arguments and
formulas), drawing from the engine's generator (engine/rng.py: PyTorch's numbers for the same seed on the CPU) or
from `generator=`; and `skip_init`, for a model whose weights are read in next.

    uniform_(t, a, b)            U(a, b)
    normal_(t, mean, std)        N(mean, std²)
    trunc_normal_(t, mean, std, a, b)   N(mean, std²) cut to [a, b] (rejection sampling, as PyTorch)
    constant_ / ones_ / zeros_ / eye_
    xavier_uniform_(t, gain)     U(±gain·sqrt(6 / (fan_in + fan_out)))          (Glorot & Bengio, 2010)
    xavier_normal_(t, gain)      N(0, gain²·2 / (fan_in + fan_out))
    kaiming_uniform_(t, a, mode, nonlinearity)   U(±gain·sqrt(3 / fan))          (He et al., 2015)
    kaiming_normal_(t, a, mode, nonlinearity)    N(0, gain² / fan)

fan_in and fan_out of a weight (out, in, *kernel) are in·k and out·k, k the kernel's size (1 for a matrix);
calculate_gain(nonlinearity, param) is the factor that keeps activations' variance steady through that function.
nn.Linear draws its weight with kaiming_uniform_(a=sqrt(5)), i.e. U(±1/sqrt(in_features)), as PyTorch does.
"""
import math
import warnings

import numpy as np

from ..engine import backend
from ..engine.tensor import Tensor, no_grad
from .module import Parameter

_skipping_init = False


class skip_init:
    """Inside `with nn.skip_init():` the random initialisers (uniform_, normal_, kaiming_*, ...) leave tensors as
    they are, so new modules keep zero parameters and draw no random numbers. For a model whose weights are read in
    next (a checkpoint, a GPT-2 directory): drawing every weight only to overwrite it would take most of the loading
    time, and would move the seeded generator."""

    def __enter__(self):
        global _skipping_init
        self._previous, _skipping_init = _skipping_init, True

    def __exit__(self, *exc):
        global _skipping_init
        _skipping_init = self._previous


def skipping_init():
    """True inside `skip_init`: initialisers (models.transformer.init_gpt2_weights, ...) leave parameters alone."""
    return _skipping_init


def calculate_gain(nonlinearity, param=None):
    """The gain for `nonlinearity`, as PyTorch's: 1 for linear (and conv) and sigmoid, 5/3 for tanh, sqrt(2) for
    relu, sqrt(2 / (1 + slope²)) for leaky_relu (param: the negative slope, 0.01 by default), 3/4 for selu."""
    linear = ["linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d"]
    if nonlinearity in linear or nonlinearity == "sigmoid":
        return 1
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            negative_slope = 0.01
        elif not isinstance(param, bool) and isinstance(param, (int, float)):
            negative_slope = param
        else:
            raise ValueError(f"calculate_gain: negative_slope {param} not a valid number")
        return math.sqrt(2.0 / (1 + negative_slope ** 2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"calculate_gain: unsupported nonlinearity {nonlinearity}")


def _calculate_fan_in_and_fan_out(tensor):
    """(fan_in, fan_out) of a weight of shape (out, in, *kernel): (in·k, out·k), k the product of the kernel."""
    if tensor.ndim < 2:
        raise ValueError(f"Fan in and fan out can not be computed for tensor with fewer than 2 dimensions (shape "
                         f"{tensor.shape})")
    receptive_field_size = math.prod(tensor.shape[2:])
    return tensor.shape[1] * receptive_field_size, tensor.shape[0] * receptive_field_size


def _calculate_correct_fan(tensor, mode):
    mode = mode.lower()
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"Mode {mode} not supported, please use one of ['fan_in', 'fan_out']")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return fan_in if mode == "fan_in" else fan_out


def uniform_(tensor, a=0.0, b=1.0, generator=None):
    """`tensor` filled with numbers uniform in [a, b), in place; returns it."""
    if _skipping_init:
        return tensor
    with no_grad():
        return tensor.uniform_(a, b, generator=generator)


def normal_(tensor, mean=0.0, std=1.0, generator=None):
    """`tensor` filled with numbers from N(mean, std²), in place; returns it."""
    if _skipping_init:
        return tensor
    with no_grad():
        return tensor.normal_(mean, std, generator=generator)


def trunc_normal_(tensor, mean=0.0, std=1.0, a=-2.0, b=2.0, generator=None):
    """`tensor` filled from N(mean, std²) truncated to [a, b], in place, by PyTorch's method and draws: where [a, b]
    holds more than 0.3 of the normal's mass, normal draws, those outside [a, b] (bounds in the tensor's dtype) drawn
    again, a whole tensor of draws per round; else uniform proposals in [a, b], each kept with probability
    pdf(x) / pdf(mode) (one more uniform per element per round)."""
    def norm_cdf(x):
        return (1.0 + math.erf(x / math.sqrt(2.0))) / 2.0
    if mean < a - 2 * std or mean > b + 2 * std:
        warnings.warn("mean is more than 2 std from [a, b] in nn.init.trunc_normal_. The distribution of values may "
                      "be incorrect.", stacklevel=2)
    if _skipping_init:
        return tensor
    xp, number = backend.xp(tensor.data), tensor.dtype.type

    def drawn(fill):
        """A new array like tensor's, filled by fill(t): t.normal_(...) or t.uniform_(...) with `generator`."""
        return fill(Tensor(xp.zeros(tensor.shape, tensor.dtype))).data

    def normals(t):
        return t.normal_(mean, std, generator=generator)

    if norm_cdf((b - mean) / std) - norm_cdf((a - mean) / std) > 0.3:
        low, high = number(a), number(b)
        result = drawn(normals)
        outside = (result < low) | (result > high)
        while outside.any():
            result = xp.where(outside, drawn(normals), result)
            outside = (result < low) | (result > high)
    else:
        mode = max(a, min(mean, b))
        log_peak = number(-0.5 * ((mode - mean) / std) ** 2)

        def rejected(x):  # log u > log(pdf(x) / pdf(mode)), in the tensor's dtype as PyTorch computes it
            log_density = ((x - number(mean)) / number(std)) ** 2 * number(-0.5) - log_peak
            return xp.log(drawn(lambda t: t.uniform_(generator=generator))) > log_density
        result = drawn(lambda t: t.uniform_(a, b, generator=generator))
        pending = rejected(result)
        while pending.any():
            candidates = drawn(lambda t: t.uniform_(a, b, generator=generator))
            result = xp.where(pending, candidates, result)
            pending = xp.where(pending, rejected(candidates), pending)
    with no_grad():
        return tensor.copy_(Tensor(result))


def uniform_parameter(shape, bound):
    """A new float32 Parameter of `shape` drawn by uniform_ from [-bound, bound) (zeros inside skip_init): the
    recurrent layers' weights, drawn one by one in PyTorch's order."""
    return uniform_(Parameter(np.zeros(shape, np.float32)), -bound, bound)


def constant_(tensor, val):
    """Every element set to `val`, in place; returns the tensor."""
    with no_grad():
        return tensor.fill_(val)


def ones_(tensor):
    return constant_(tensor, 1.0)


def zeros_(tensor):
    return constant_(tensor, 0.0)


def eye_(tensor):
    """A matrix set to the identity (ones on the diagonal), in place; returns it."""
    if tensor.ndim != 2:
        raise ValueError(f"eye_: only tensors with 2 dimensions are supported, got shape {tensor.shape}")
    with no_grad():
        return tensor.copy_(Tensor(np.eye(*tensor.shape, dtype=tensor.dtype)))


def xavier_uniform_(tensor, gain=1.0, generator=None):
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    std = gain * math.sqrt(2.0 / float(fan_in + fan_out))
    bound = math.sqrt(3.0) * std
    return uniform_(tensor, -bound, bound, generator)


def xavier_normal_(tensor, gain=1.0, generator=None):
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    std = gain * math.sqrt(2.0 / float(fan_in + fan_out))
    return normal_(tensor, 0.0, std, generator)


def _kaiming_std(tensor, a, mode, nonlinearity):
    """gain / sqrt(fan), or None for a tensor with no elements (PyTorch leaves it, with a warning)."""
    if 0 in tensor.shape:
        warnings.warn("Initializing zero-element tensors is a no-op", stacklevel=3)
        return None
    return calculate_gain(nonlinearity, a) / math.sqrt(_calculate_correct_fan(tensor, mode))


def kaiming_uniform_(tensor, a=0, mode="fan_in", nonlinearity="leaky_relu", generator=None):
    std = _kaiming_std(tensor, a, mode, nonlinearity)
    return tensor if std is None else uniform_(tensor, -math.sqrt(3.0) * std, math.sqrt(3.0) * std, generator)


def kaiming_normal_(tensor, a=0, mode="fan_in", nonlinearity="leaky_relu", generator=None):
    std = _kaiming_std(tensor, a, mode, nonlinearity)
    return tensor if std is None else normal_(tensor, 0.0, std, generator)
