"""The random numbers of the engine: one seeded generator per device, so runs repeat exactly.

`manual_seed(seed)` fixes every draw that follows (dropout masks, and whatever else asks `generator`);
`get_state`/`set_state` let a checkpoint resume the stream where it stopped.
"""
import numpy as np

from . import backend

_seed = 0
_generators = {}


def manual_seed(seed):
    """Restart every device's generator from `seed`."""
    global _seed
    _seed = int(seed)
    _generators.clear()


def generator(device="cpu"):
    """The generator of `device` (a numpy or cupy `Generator`), created from the current seed on first use."""
    if device not in _generators:
        _generators[device] = backend.module_for(device).random.default_rng(_seed)
    return _generators[device]


def get_state():
    """The CPU generator's state (a plain dict, JSON-friendly)."""
    return {"seed": _seed, "cpu": generator("cpu").bit_generator.state}


def set_state(state):
    manual_seed(state["seed"])
    generator("cpu").bit_generator.state = state["cpu"]


def dropout_keep_mask(shape, p, like):
    """A random boolean mask of `shape`, True with probability 1 - p, on the device of the array `like`."""
    draws = generator(backend.device_of(like)).random(shape, dtype=np.float32)
    return draws >= np.float32(p)
