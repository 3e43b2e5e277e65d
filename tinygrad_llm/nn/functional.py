"""torch.nn.functional's names, so that `import tinygrad_llm.nn.functional as F` finds what PyTorch code expects: the
fused ops and the functions built from primitives (engine/functional.py) and the elementwise functions PyTorch lists
here too (engine/ops.py). Nothing is defined here; each name's code is in the module it comes from."""
from ..engine.functional import (batch_norm, binary_cross_entropy, binary_cross_entropy_with_logits,  # noqa: F401
                                 conv1d, cosine_similarity, cross_entropy, dropout, embedding, gelu, interpolate,
                                 l1_loss, layer_norm, leaky_relu, linear, log_softmax, logsigmoid, mse_loss, nll_loss,
                                 normalize, one_hot, pad, relu, scaled_dot_product_attention, silu, softmax, softplus)
from ..engine.ops import sigmoid, tanh  # noqa: F401
