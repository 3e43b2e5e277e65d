"""Shared test helpers. Tests that compare with PyTorch take the `torch` fixture: it skips them cleanly where
torch is not installed (CI installs it, so there they run).

Where the GPU tests run: `--cuda=auto` (the default) on a real GPU where CuPy finds one, else on the mock CUDA
device (tinygrad_llm/engine/cuda/mock/: our kernels executed on the host), which is how CI runs them; `--cuda=mock`
always on the mock device, `--cuda=real` only on a real GPU (they skip without one)."""
import os
import shutil

import numpy as np
import pytest

from tinygrad_llm import Tensor
from tinygrad_llm.engine import backend
from tinygrad_llm.text.datasets import DATA_FILENAME, PACKAGED_SHAKESPEARE, read_bytes


def pytest_addoption(parser):
    parser.addoption("--cuda", choices=("auto", "mock", "real"), default="auto",
                     help="where the GPU tests run: a real GPU, the mock CUDA device, or auto (a real GPU if usable, "
                          "else the mock device)")


def real_gpu_usable():
    try:
        import cupy
        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:  # no CuPy, no driver, no device
        return False


def pytest_configure(config):
    choice = config.getoption("--cuda")
    if choice == "mock" or (choice == "auto" and not backend.mock_cuda_enabled() and not real_gpu_usable()
                            and shutil.which(os.environ.get("CXX", "g++"))):
        os.environ[backend.MOCK_ENV] = "1"
    elif choice == "real":
        os.environ.pop(backend.MOCK_ENV, None)


def pytest_report_header(config):
    where = "the mock device (kernels executed on the host)" if backend.mock_cuda_enabled() else "a real GPU, if any"
    return f"GPU tests: {where}"


@pytest.fixture(scope="session")
def shakespeare(tmp_path_factory):
    """A directory holding tinyshakespeare.txt, unpacked from the copy the package ships: no test needs the network
    or a data variable (resolve_dataset() itself finds the packaged copy)."""
    directory = tmp_path_factory.mktemp("data")
    (directory / DATA_FILENAME).write_bytes(read_bytes(PACKAGED_SHAKESPEARE))
    return directory


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


def assert_raises_naming(call, error, words):
    """call() raises `error`, and every one of `words` (the op, the shapes, the argument) is in its message."""
    with pytest.raises(error) as info:
        call()
    for word in words:
        assert word in str(info.value), f"{word!r} not in {str(info.value)!r}"


def cli_error(capsys, argv):
    """Run the command line, expecting the clean failure: exit code 2 and one line on stderr. Returns that line."""
    from tinygrad_llm.__main__ import main
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"tinygrad-llm {argv[0]}: error:") and err.count("\n") == 1, err
    return err


def tolerances(dtype):
    """How close our values and gradients must be to PyTorch's: 1e-10 relative in float64, 1e-5 in float32."""
    return dict(rtol=1e-10, atol=1e-12) if np.dtype(dtype) == np.float64 else dict(rtol=1e-5, atol=1e-5)


def gradcheck_parameters(model, loss):
    """gradcheck of every parameter of `model` (float64) for the scalar `loss()`, along random directions.
    gradcheck runs its function on copies of the inputs, so the function first puts each copy where its parameter
    sits in the model, under every name it has (a tied weight has two), then computes the loss."""
    from tinygrad_llm.engine.gradcheck import gradcheck
    named = dict(model.named_parameters())
    every_name = dict(model.named_parameters(remove_duplicate=False))
    places = [[_owner(model, other) for other, q in every_name.items() if q is p] for p in named.values()]

    def loss_of(*params):
        for p, owners in zip(params, places):
            for module, attribute in owners:
                setattr(module, attribute, p)
        return loss()

    report = gradcheck(loss_of, list(named.values()), mode="directions", atol=1e-8, rtol=1e-6)
    assert report.passed and len(report.rows) == len(named)
    assert not any(p is q for p, q in zip(model.parameters(), named.values()))  # the model holds the checked copies
    return report


def _owner(model, name):
    """(module, attribute) that holds the parameter called `name` ("transformer.h.0.attn.c_attn.weight")."""
    *path, attribute = name.split(".")
    module = model
    for part in path:
        module = getattr(module, part)
    return module, attribute
