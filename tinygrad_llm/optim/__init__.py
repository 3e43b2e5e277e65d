"""tinygrad_llm.optim, as torch.optim: the optimizers and the submodule lr_scheduler; also nanoGPT's schedule
(warmup_cosine_lr, set_lr) and clip_grad_norm_ (defined in nn/utils.py, as torch.nn.utils'). This file only gathers
names: each is defined in the module it is imported from."""
from . import lr_scheduler  # noqa: F401
from ..nn.utils import clip_grad_norm_  # noqa: F401
from .optimizers import (ADDED_OPTIONS, SCHEDULER_KEYS, SGD, Adam, AdamW, Optimizer,  # noqa: F401
                         check_hyperparameter, default_options, set_lr, warmup_cosine_lr)
