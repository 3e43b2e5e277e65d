"""Where the CUDA sources are: kernels/*.cu, and kernels/host/ (the headers that run them on the mock device)."""
from pathlib import Path


def kernels_dir():
    """tinygrad_llm/kernels/ in an installed package (setup.py ships them there), or kernels/ beside the package in
    a source checkout (and an editable install)."""
    package = Path(__file__).resolve().parent.parent.parent
    for candidate in (package / "kernels", package.parent / "kernels"):
        if (candidate / "attention.cu").is_file():
            return candidate
    raise FileNotFoundError(f"the CUDA kernel sources (kernels/*.cu) are neither in {package / 'kernels'} nor in "
                            f"{package.parent / 'kernels'}; reinstall the package (pip install .)")


def kernel_source(filename):
    """The text of kernels/<filename>."""
    return (kernels_dir() / filename).read_text()
