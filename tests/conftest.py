"""Shared test helpers. Tests that compare with PyTorch take the `torch` fixture: it skips them cleanly where
torch is not installed (CI installs it, so there they run)."""
import numpy as np
import pytest

from tinygrad_llm import Tensor


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture
def torch():
    return pytest.importorskip("torch")


def tensor(array, requires_grad=True):
    """Our Tensor over a copy of a NumPy array."""
    return Tensor(np.array(array), requires_grad=requires_grad)


def torch_tensor(torch, array, requires_grad=True):
    """A torch tensor over a copy of a NumPy array (same dtype)."""
    return torch.tensor(np.array(array), requires_grad=requires_grad)


def tolerances(dtype):
    """How close our values and gradients must be to PyTorch's: 1e-10 relative in float64, 1e-5 in float32."""
    return dict(rtol=1e-10, atol=1e-12) if np.dtype(dtype) == np.float64 else dict(rtol=1e-5, atol=1e-5)
