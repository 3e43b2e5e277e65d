"""tinygrad_llm: a tensor and autograd engine on NumPy (and CuPy), and the GPT built on it."""
from . import ops  # noqa: F401  (attaches the operators and methods to Tensor)
from .tensor import Function, Tensor, is_grad_enabled, no_grad
from .ops import concat, embedding, masked_fill, matmul, maximum, split, stack, where

__version__ = "0.1.0"
