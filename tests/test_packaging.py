"""A non-editable `pip install .` must ship the CUDA sources (and the mock device's headers) and Tiny Shakespeare,
and the installed package must find them there."""
import importlib.util
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
