"""The mock CUDA device: `device="cuda"` without a GPU or CuPy, for tests (CI has no GPU).

    cupy.py          a CuPy stand-in: arrays that keep CuPy's rules where bugs hide, and RawModule
    cupyx.py         the cupyx functions the engine uses
    host_kernels.py  kernels/*.cu compiled by g++ with kernels/host/cuda_host.h, CUDA's execution model on the host

Switched on by TINYGRAD_LLM_MOCK_CUDA=1 (or pytest --cuda=mock; --cuda=auto, the default, uses it where no GPU is
usable). Everything our code does with CuPy runs unchanged against it; it replaces CuPy, not our code. It never
replaces a run on a real GPU: it shows that the kernels compute the right numbers under CUDA's rules, not how fast.
"""
