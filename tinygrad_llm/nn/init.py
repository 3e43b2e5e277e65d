"""Initialising parameters: the engine's seeded draws for a new layer's weights, and `skip_init` for a model whose
weights are read in next."""
import numpy as np

from ..engine import rng
from .module import Parameter

_skipping_init = False


class skip_init:
    """Inside `with nn.skip_init():` new modules get zero parameters and draw no random numbers. For a model whose
    weights are read in next (a checkpoint, a GPT-2 directory): drawing every weight only to overwrite it would take
    most of the loading time, and would move the seeded generator."""

    def __enter__(self):
        global _skipping_init
        self._previous, _skipping_init = _skipping_init, True

    def __exit__(self, *exc):
        global _skipping_init
        _skipping_init = self._previous


def skipping_init():
    """True inside `skip_init`: initialisers (models.transformer.init_gpt2_weights, ...) leave parameters alone."""
    return _skipping_init


def random_parameter(shape, draw):
    """A float32 parameter of `shape` filled by draw(generator, shape), or zeros inside skip_init."""
    data = np.zeros(shape, np.float32) if _skipping_init else draw(rng.generator("cpu"), shape).astype(np.float32)
    return Parameter(data)


def uniform_parameter(shape, bound):
    """A float32 Parameter drawn uniformly from [-bound, bound] with the engine's seeded generator."""
    return random_parameter(shape, lambda generator, shape: generator.uniform(-bound, bound, shape))
