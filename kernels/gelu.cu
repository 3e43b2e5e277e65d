// gelu.cu: GELU, tanh approximation (GPT-2's), elementwise over n float32 numbers, forward and backward.
//
// NumPy twin: tinygrad_llm.engine.functional.GeluOp with approximate="tanh" (same math; docs/gelu.md derives the
// backward).
// Launcher:   tinygrad_llm/engine/cuda/gelu.py.
//
// Forward:   y = 0.5·x·(1 + tanh u),   u = √(2/π)·(x + 0.044715·x³)
// Backward:  with t = tanh u, and d tanh u / du = 1 - t²:
//     dy/dx = 0.5·(1 + t) + 0.5·x·(1 - t²)·du/dx,   du/dx = √(2/π)·(1 + 3·0.044715·x²)
//     dx = g · dy/dx                                  (g = dL/dy)
// Backward recomputes t from x (one tanhf) instead of reading a saved t: that saves an array as large as x, the
// largest activation of the GPT (B, T, 4C), for a little arithmetic in a kernel that waits on memory anyway.
//
// Launch shape: 1-D blocks of 256 threads and a GRID-STRIDE LOOP: thread i of the whole grid handles elements
// i, i + (total threads), i + 2·(total threads), ... The launcher caps the grid (4096 blocks, about a million
// threads: enough to fill any current GPU), so one launch handles any n and each thread does a few elements.
// Neighbouring threads touch neighbouring floats: every load and store is coalesced.
//
// Indices: the loop counter is 64-bit (long long), so i + stride cannot overflow near n = 2^31.

#define SQRT_2_OVER_PI 0.7978845608028654f  // √(2/π)
#define GELU_CUBIC 0.044715f

// x, y: n floats.
extern "C" __global__ void gelu_forward(const float* __restrict__ x, float* __restrict__ y, int n) {
    const long long stride = (long long)gridDim.x * blockDim.x;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        const float xi = x[i];
        const float u = SQRT_2_OVER_PI * (xi + GELU_CUBIC * xi * xi * xi);
        y[i] = 0.5f * xi * (1.0f + tanhf(u));
    }
}

// x (the forward's input), dy (= dL/dy), dx (output): n floats.
extern "C" __global__ void gelu_backward(const float* __restrict__ x, const float* __restrict__ dy,
                                         float* __restrict__ dx, int n) {
    const long long stride = (long long)gridDim.x * blockDim.x;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        const float xi = x[i];
        const float u = SQRT_2_OVER_PI * (xi + GELU_CUBIC * xi * xi * xi);
        const float t = tanhf(u);
        const float du_dx = SQRT_2_OVER_PI * (1.0f + 3.0f * GELU_CUBIC * xi * xi);
        const float dy_dx = 0.5f * (1.0f + t) + 0.5f * xi * (1.0f - t * t) * du_dx;
        dx[i] = dy[i] * dy_dx;
    }
}
