// cross_entropy.cu: softmax + cross-entropy fused, over the rows of (M, V) float32 logits, forward and backward.
//
//   forward:   loss_r = lse_r - x_rt,   lse_r = max_r + log Σ_c exp(x_rc - max_r)      (saves lse: one float per row)
//   backward:  dlogits_rc = (exp(x_rc - lse_r) - [c == t_r]) · g_r                    (g_r = dL/dloss_r, row_grads)
// A row whose target is ignore_index gets loss 0 and gradient 0; a target outside 0..V-1 gets loss NaN (never a
// read outside the row). The derivation, the reductions (the caller turns 'mean'/'sum'/'none' into row_grads) and
// what is saved: docs/cross_entropy.md.
// NumPy twin: tinygrad_llm.engine.functional.CrossEntropyOp.   Launcher: tinygrad_llm/engine/cuda/cross_entropy.py.
//
// Launch shape (both kernels): ONE BLOCK PER ROW, grid = M; blockDim a multiple of 32, at most 1024 (the launcher
// picks about V/8). Thread i handles classes i, i + blockDim, ... (coalesced). Forward: two passes over the row
// (max, then Σ exp), each a block reduction (warp shuffles, then one value per warp through shared memory).
// Backward: one pass, no reduction.
// Row offsets are 64-bit (long long): row·V can pass 2^31 (M = 65536, V = 50257).

// −∞ and NaN as bit patterns: NVRTC compiles without <math.h>, so INFINITY and NAN are not defined.
__device__ __forceinline__ float negative_infinity() { return __int_as_float(0xff800000); }
__device__ __forceinline__ float quiet_nan() { return __int_as_float(0x7fffffff); }

// The max (take_max) or the sum of v over the 32 lanes of a warp, returned to every lane (butterfly shuffles).
__device__ __forceinline__ float warp_reduce(float v, bool take_max) {
    for (int offset = 16; offset > 0; offset /= 2) {
        const float other = __shfl_xor_sync(0xffffffffu, v, offset);
        v = take_max ? fmaxf(v, other) : v + other;
    }
    return v;
}

// The max or the sum of v over all threads of the block, returned to every thread. Every thread of the block must
// call it (it has __syncthreads). blockDim.x must be a multiple of 32, at most 1024. scratch: 32 shared floats.
__device__ float block_reduce(float v, bool take_max, float* scratch) {
    const int lane = threadIdx.x % 32;
    const int warp = threadIdx.x / 32;
    const int n_warps = blockDim.x / 32;
    v = warp_reduce(v, take_max);  // each warp's result, in all its lanes
    __syncthreads();               // scratch may still be being read from a previous call
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    if (warp == 0) {               // warp 0 combines the n_warps results
        v = lane < n_warps ? scratch[lane] : (take_max ? negative_infinity() : 0.0f);
        v = warp_reduce(v, take_max);
        if (lane == 0) scratch[0] = v;
    }
    __syncthreads();
    return scratch[0];             // the block's result, broadcast to every thread
}

// logits (M, V); targets (M,) int64; losses, lse (M,) outputs. ignore_index: the target value of rows to skip.
extern "C" __global__ void __launch_bounds__(1024)
cross_entropy_forward(const float* __restrict__ logits, const long long* __restrict__ targets,
                      float* __restrict__ losses, float* __restrict__ lse, int M, int V, int ignore_index) {
    __shared__ float scratch[32];
    const int row = blockIdx.x;
    if (row >= M) return;  // never taken with grid = M; the whole block would leave together anyway
    const float* x = logits + (long long)row * V;

    // pass 1: the row max
    float row_max = negative_infinity();
    for (int c = threadIdx.x; c < V; c += blockDim.x) row_max = fmaxf(row_max, x[c]);
    row_max = block_reduce(row_max, true, scratch);

    // pass 2: the sum of exp(x - max); every term is in (0, 1], the largest exactly 1
    float sum_exp = 0.0f;
    for (int c = threadIdx.x; c < V; c += blockDim.x) sum_exp += expf(x[c] - row_max);
    sum_exp = block_reduce(sum_exp, false, scratch);

    if (threadIdx.x == 0) {
        const float log_sum = logf(sum_exp);
        const long long t = targets[row];
        float loss;
        if (t == ignore_index) loss = 0.0f;
        else if (t < 0 || t >= V) loss = quiet_nan();  // out of range: never read x[t]
        else loss = log_sum - (x[t] - row_max);      // lse - x_t, computed on the shifted logits as the CPU op
        losses[row] = loss;
        lse[row] = row_max + log_sum;
    }
}

// logits, dlogits (M, V); targets (M,) int64; lse (M,) from the forward; row_grads (M,) = dL/dloss_row.
extern "C" __global__ void __launch_bounds__(1024)
cross_entropy_backward(const float* __restrict__ logits, const long long* __restrict__ targets,
                       const float* __restrict__ lse, const float* __restrict__ row_grads,
                       float* __restrict__ dlogits, int M, int V, int ignore_index) {
    const int row = blockIdx.x;
    if (row >= M) return;
    const float* x = logits + (long long)row * V;
    float* dx = dlogits + (long long)row * V;
    const long long t = targets[row];

    if (t == ignore_index) {  // an ignored row contributes nothing to the loss
        for (int c = threadIdx.x; c < V; c += blockDim.x) dx[c] = 0.0f;
        return;
    }
    const float g = row_grads[row];
    const float row_lse = lse[row];
    for (int c = threadIdx.x; c < V; c += blockDim.x) {
        const float p = expf(x[c] - row_lse);                // softmax(x)_c, recomputed
        dx[c] = (c == t ? p - 1.0f : p) * g;                 // (softmax - onehot) · g
    }
}
