"""A non-editable `pip install .` must ship the CUDA sources (and the mock device's headers) and Tiny Shakespeare,
and the installed package must find them there; the kernels/ folder they come from must never hide another
distribution's `kernels`."""
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_pip_install_ships_the_kernels(tmp_path):
    target = tmp_path / "site"
    isolation = [] if importlib.util.find_spec("setuptools") is None else ["--no-build-isolation"]
    install = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", *isolation,
                              "--target", str(target), str(ROOT)], capture_output=True, text=True)
    if install.returncode != 0:
        pytest.fail(f"pip install . failed:\n{install.stderr[-3000:]}")
    installed = target / "tinygrad_llm" / "kernels"
    for pattern in ("*.cu", "host/*.h"):   # the kernels, and the headers that run them on the mock device
        shipped = sorted(p.name for p in installed.glob(pattern))
        assert shipped and shipped == sorted(p.name for p in (ROOT / "kernels").glob(pattern)), pattern
    # the installed loader, run away from the source tree, finds the installed copies
    code = "from tinygrad_llm.engine.cuda.sources import kernels_dir; print(kernels_dir())"
    found = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
                           env={**os.environ, "PYTHONPATH": str(target)})
    assert found.returncode == 0, found.stderr
    assert Path(found.stdout.strip()) == target / "tinygrad_llm" / "kernels"
    # Tiny Shakespeare, the one data file the package carries: shipped, and the default of an installed package
    shipped = target / "tinygrad_llm" / "text" / "tinyshakespeare.txt.gz"
    assert shipped.read_bytes() == (ROOT / "tinygrad_llm" / "text" / "tinyshakespeare.txt.gz").read_bytes()
    code = ("from tinygrad_llm.text.datasets import load_text, resolve_dataset; "
            "path = resolve_dataset(download=False); print(path); print(len(load_text(path)))")
    found = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
                           env={**os.environ, "PYTHONPATH": str(target), "HOME": str(tmp_path / "home")})
    assert found.returncode == 0, found.stderr
    assert found.stdout.split() == [str(shipped), "1115394"]


# Run from the repository root, as pytest and scripts are: transformers' modeling code imports PyPI's `kernels`
WHICH_KERNELS = """
import importlib.metadata, importlib.util, json
if importlib.util.find_spec("transformers") is not None:
    from transformers import PreTrainedModel  # noqa: F401  (its module imports PyPI's `kernels` where installed)
import kernels
try:
    pypi = str(importlib.metadata.distribution("kernels").locate_file("kernels/__init__.py"))
except importlib.metadata.PackageNotFoundError:
    pypi = None
print(json.dumps({"file": kernels.__file__, "pypi": pypi}))
"""


def test_our_kernels_folder_never_hides_another_kernels_package():
    # With an __init__.py, kernels/ was a regular package named `kernels`: wherever the repository root was on
    # sys.path it hid PyPI's, so transformers failed to import ("cannot import name 'CUDAProperties' from 'kernels'")
    # and so did setuptools' entry points (`pip install -e .` failed where PyPI's `kernels` is installed).
    assert not (ROOT / "kernels" / "__init__.py").exists(), "kernels/ holds CUDA sources and must not be a package"
    path = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    run = subprocess.run([sys.executable, "-c", WHICH_KERNELS], capture_output=True, text=True, cwd=ROOT,
                         env={**os.environ, "PYTHONPATH": path})
    assert run.returncode == 0, run.stderr[-3000:]
    found = json.loads(run.stdout)
    if found["pypi"] is not None:   # CI's case: the pinned transformers brings PyPI's `kernels`
        assert found["file"] is not None and Path(found["file"]).resolve() == Path(found["pypi"]).resolve()
    else:   # without it `import kernels` finds only our folder, as a namespace with no code: nothing of ours runs
        assert found["file"] is None
