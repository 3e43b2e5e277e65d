"""A stand-in for the parts of cupyx the engine uses, on the mock CUDA device (see cupy.py beside it)."""
import math
import types

import numpy as np

from .cupy import _unwrap, _wrap


def scatter_add(a, slices, value):
    """a[slices] += value, where slices may pick an element twice (each pick adds), in place on the device."""
    np.add.at(_unwrap(a, "cupyx.scatter_add"), _unwrap(slices, "cupyx.scatter_add"),
              _unwrap(value, "cupyx.scatter_add"))


def _erf(x):
    x = _unwrap(x, "cupyx.scipy.special.erf")
    try:
        from scipy.special import erf
    except ImportError:
        return _wrap(np.vectorize(math.erf, otypes=[x.dtype])(x))
    return _wrap(erf(x).astype(x.dtype, copy=False))


scipy = types.SimpleNamespace(special=types.SimpleNamespace(erf=_erf))
