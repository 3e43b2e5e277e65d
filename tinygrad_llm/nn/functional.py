"""torch.nn.functional's names, so that `import tinygrad_llm.nn.functional as F` finds what PyTorch code expects: the
fused ops (engine/functional.py) and the elementwise functions PyTorch lists here too (engine/ops.py). Nothing is
defined here; each name's code is in the module it comes from."""
from ..engine.functional import (cross_entropy, dropout, gelu, layer_norm, linear, log_softmax,  # noqa: F401
                                 mse_loss, one_hot, relu, scaled_dot_product_attention, softmax)
from ..engine.ops import sigmoid, tanh  # noqa: F401
