"""tinygrad_llm: a tensor and autograd engine on NumPy (and CuPy), and the GPT built on it.

    import tinygrad_llm as tl
    x = tl.randn(4, 8, requires_grad=True)
    loss = tl.functional.cross_entropy(tl.nn.Linear(8, 3)(x), tl.tensor([0, 2, 1, 2]))
    loss.backward()

The front door, PyTorch's names: the Tensor and its functions, tl.nn, tl.optim, tl.functional (also
tl.nn.functional), tl.gradcheck, dtype names, manual_seed, no_grad; and the tools for looking inside: tl.viz (the
graph drawn), tl.profile, tl.detect_anomaly. The modules themselves live in the folders
(engine/, text/, models/, recipes/); inside the package, code imports from them, never from here.
"""
import math

import numpy as np

from . import nn, optim
from .as_torch.stand_ins import BFLOAT16 as bfloat16, FLOAT16 as float16   # refused wherever used as a dtype
from .engine import functional
from .engine.backend import Device as device
from .engine.creation import (arange, bernoulli, empty, empty_like, eye, from_numpy, full, full_like, linspace,
                              multinomial, normal, ones, ones_like, rand, rand_like, randint, randint_like, randn,
                              randn_like, randperm, tensor, zeros, zeros_like)
from .engine.functional import cosine_similarity, torch_log_softmax as log_softmax, torch_softmax as softmax
from .engine.gradcheck import GradcheckError, gradcheck
from .engine.movement import (cat, chunk, concat, diag, diagonal, einsum, embedding, flatten, flip, gather, hstack,
                              index_select, masked_fill, meshgrid, moveaxis, movedim, narrow, nonzero, permute,
                              repeat_interleave, reshape, roll, scatter, scatter_add, select, split, squeeze, stack,
                              swapaxes, swapdims, t, take_along_dim, tensor_split, transpose, tril, triu, unbind,
                              unflatten, unsqueeze, vstack, where)
from .engine.ops import (abs, acos, add, addmm, allclose, asin, atan, atan2, baddbmm, bitwise_not, bmm, ceil, clamp,
                         clamp_max, clamp_min, clone, cos, cosh, div, dot, eq, erf, exp, exp2, floor, floor_divide,
                         frac, ge, gt, isfinite, isinf, isnan, le, lerp, log, log1p, log2, logical_and, logical_not,
                         logical_or, logical_xor, lt, matmul, maximum, minimum, mm, mul, mv, ne, neg, negative, outer,
                         pow, reciprocal, relu, remainder, round, rsqrt, sigmoid, sign, sin, sinh, sqrt, square, sub,
                         tan, tanh, trunc)
from .engine.reductions import (all, amax, amin, any, argmax, argmin, argsort, bincount, count_nonzero, cumprod, cumsum,
                                logsumexp, max, mean, median, min, norm, prod, sort, std, std_mean, sum, topk, unique,
                                var, var_mean)
from .engine.rng import Generator, default_generator, initial_seed, manual_seed, seed
from .engine.rng import get_state as get_rng_state, set_state as set_rng_state
from .engine.tensor import (Function, Tensor, enable_grad, inference_mode, is_grad_enabled, is_inference_mode_enabled,
                            no_grad, set_grad_enabled)
from .serialization import load, save
from .tools import viz
from .tools.anomaly import AnomalyError, detect_anomaly
from .tools.profiler import profile

float32, float64, int32, int64, bool = np.float32, np.float64, np.int32, np.int64, np.bool_   # dtype names
float, double, long = np.float32, np.float64, np.int64
int16, int8, uint8, int, short, half = np.int16, np.int8, np.uint8, np.int32, np.int16, float16
inf, nan, pi, e = math.inf, math.nan, math.pi, math.e   # PyTorch's constants

__version__ = "0.1.0"
