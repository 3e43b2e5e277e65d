"""The GPU side of the fused ops: compile our CUDA kernels (kernels/*.cu) with CuPy and launch them.

Only fused Functions in functional.py (and the fused AdamW step) call into this package, and only with CuPy
arrays. Each module here wraps one .cu file: it checks shapes and dtypes, allocates outputs, picks the launch
shape, and passes every scalar as an explicit np.int32 / np.float32 (CUDA reads raw bytes: a Python int would be
passed as 64 bits).
"""
