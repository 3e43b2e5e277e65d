"""The GPU side of the fused ops: compile our CUDA kernels (kernels/*.cu) with CuPy and launch them.

Only fused Functions in functional.py (and the fused AdamW step) call into this package, and only with CuPy
arrays. Each launcher here wraps one .cu file (attention, layernorm, cross_entropy, gelu, adamw): it checks shapes
and dtypes, allocates outputs, picks the launch shape, and passes every scalar as an explicit np.int32 /
np.float32 (CUDA reads raw bytes: a Python int would be passed as 64 bits).

    sources.py          where kernels/*.cu are          loader.py     compile once, launch, check the launch
    fused.py            the Functions that run kernels  attention_tiles.py   the attention kernel's NumPy twin
    mock/               the mock CUDA device: the same kernels run on the host, for CI (see mock/__init__.py)
"""
