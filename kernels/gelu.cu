// gelu.cu: GELU, tanh approximation (GPT-2's), elementwise over n float32 numbers, forward and backward.
//
//   forward:   y = 0.5·x·(1 + t),   t = tanh u,   u = √(2/π)·(x + 0.044715·x³)
//   backward:  dx = g · (0.5·(1 + t) + 0.5·x·(1 - t²)·√(2/π)·(1 + 3·0.044715·x²))      (g = dL/dy)
// Saves only x: backward recomputes t (one tanhf). The derivation and why recompute: docs/gelu.md.
// NumPy twin: tinygrad_llm.engine.functional.GeluOp with approximate="tanh".
// Launcher:   tinygrad_llm/engine/cuda/gelu.py.
//
// Launch shape: blocks of 256 threads and a GRID-STRIDE LOOP: thread i of the grid handles elements i,
// i + (total threads), ...; the launcher caps the grid at 4096 blocks, so one launch handles any n. Neighbouring
// threads touch neighbouring floats (coalesced). The loop counter is 64-bit, so i + stride cannot overflow near 2^31.

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
