"""tinygrad_llm.nn, as torch.nn: Module and Parameter, the layers, losses and containers, and the submodules
functional (F), init and utils. This file only gathers names: each is defined in the module it is imported from."""
from . import functional, init, utils  # noqa: F401
from .containers import ModuleDict, ModuleList, Sequential  # noqa: F401
from .init import skip_init  # noqa: F401
from .layers import (GELU, BatchNorm1d, BCELoss, BCEWithLogitsLoss, Conv1d, CrossEntropyLoss,  # noqa: F401
                     Dropout, Embedding, Flatten, Identity, L1Loss, LayerNorm, LeakyReLU, Linear, LogSoftmax,
                     MSELoss, MultiheadAttention, NLLLoss, NonDynamicallyQuantizableLinear, ReLU, Sigmoid, SiLU,
                     Softmax, Softplus, Tanh, Unflatten)
from .module import Module, Parameter  # noqa: F401
