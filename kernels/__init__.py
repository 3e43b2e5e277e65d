"""CUDA C sources of the engine's fused kernels. Not Python: this package only ships the *.cu files, which
tinygrad_llm/engine/cuda/loader.py reads and CuPy compiles at run time (NVRTC), once per process and options."""
