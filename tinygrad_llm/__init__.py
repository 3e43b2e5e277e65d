"""tinygrad_llm: a tensor and autograd engine on NumPy (and CuPy), and the GPT built on it."""
from .engine import ops  # attaches the operators and methods to Tensor
from .engine.ops import concat, embedding, masked_fill, matmul, maximum, split, stack, where
from .engine.rng import manual_seed
from .engine.tensor import Function, Tensor, is_grad_enabled, no_grad

__version__ = "0.1.0"
__all__ = ["Function", "Tensor", "concat", "embedding", "is_grad_enabled", "manual_seed", "masked_fill", "matmul",
           "maximum", "no_grad", "ops", "split", "stack", "where"]
