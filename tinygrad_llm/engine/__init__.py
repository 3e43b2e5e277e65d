"""The engine: arrays, the graph, and the ops that autograd differentiates. It knows no layer, model or file.

Read in this order:
    backend.py     which array module holds the numbers (NumPy on "cpu", CuPy on "cuda"); the dtype rule
    tensor.py      Tensor, Function and the backward walk (the chain rule, applied in reverse topological order)
    ops.py         the primitive ops, each a Function with its forward, backward, function and Tensor method together:
                   elementwise math, comparisons, conversions, matmul; reductions.py and movement.py hold the rest
    arguments.py   what the op modules turn their arguments into: broadcast shapes, axes, promotion
    creation.py    making tensors (zeros, randn, arange, ...);  inplace.py  in-place ops and autograd's checks on them
    functional.py  the fused ops (linear, softmax, cross-entropy, layer norm, attention, dropout, GELU), whose
                   backward is derived by hand; composed.py builds the same functions from primitives, to compare;
                   dispatch.py picks which of a fused op's implementations runs (Function, twin or CUDA kernel)
    gradcheck.py   proves a backward right with central differences
    rng.py         the seeded random numbers (dropout masks)
    cuda/          the same fused ops on the GPU: our kernels (kernels/*.cu), compiled and launched through CuPy
"""
