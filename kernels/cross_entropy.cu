// cross_entropy.cu: softmax + cross-entropy fused, over the rows of (M, V) float32 logits, forward and backward.
//
// NumPy twin: tinygrad_llm.engine.functional.CrossEntropyOp (same math; docs/cross_entropy.md derives it).
// Launcher:   tinygrad_llm/engine/cuda/cross_entropy.py.
//
// Legend:  M rows (one per prediction, B·T for a GPT), V classes (the vocabulary), t = the target class of a row.
//
// Forward, for each row x (V logits) with target t:
//     max = max_c x_c                                subtracting it keeps exp from overflowing, and changes nothing
//     lse = max + log Σ_c exp(x_c - max)             the logsumexp, saved for backward (one float per row)
//     loss = lse - x_t = log Σ_c exp(x_c - max) - (x_t - max)
// A row whose target equals ignore_index gets loss 0 (the caller leaves it out of the mean). A target outside
// 0..V-1 that is not ignore_index gets loss NaN: the kernel never reads outside the row, and the NaN shows up in
// the loss instead of a silent wrong number (F.cross_entropy checks the targets and raises an IndexError before
// either path runs; only a direct call of the launcher can get here).
//
// Backward: d loss / d x_c = softmax(x)_c - [c == t], and softmax(x)_c = exp(x_c - lse), so with g_r = dL/dloss_r
//     dlogits_rc = (exp(x_rc - lse_r) - [c == t_r]) · g_r          (0 for an ignored row, whatever g_r)
// computed in one pass from the logits and the saved lse: no (M, V) probability tensor is ever stored.
// g_r is an array of M floats, row_grads, which the caller computes from the reduction:
//     'mean': g / (number of rows kept);   'sum': g;   'none': the incoming gradient of each row's loss.
// One array covers all three reductions, so the kernel needs no reduction flag.
//
// Launch shape (both kernels): ONE BLOCK PER ROW, grid = M. The block's threads (a multiple of 32, at most 1024;
// the launcher picks about V/8 so each thread handles ~8 classes) stride over the row: thread i handles classes
// i, i + blockDim, ...; neighbouring threads read neighbouring floats (coalesced). The row max and the row sum are
// block reductions (warp shuffles, then one value per warp through shared memory). Two passes over the row (max,
// then sum of exp) instead of an online single pass: simpler, and a row of V floats is still in L1/L2 the second
// time. Backward needs no reduction at all: lse is known, so each element is independent.
//
// Indices: row·V can pass 2^31 (M = 65536, V = 50257), so row offsets are computed in 64-bit (long long).

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
