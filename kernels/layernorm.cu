// layernorm.cu: layer normalization over the last axis of an (N, C) float32 array, forward and backward.
//
//   forward:   y = x̂·w + b,   x̂ = (x - mean)·rstd,   rstd = 1 / sqrt(var + eps)     (mean, var over the row's C)
//   backward:  dx = rstd·(d - mean(d) - x̂·mean(d·x̂)),  d = g·w;   dw = Σ_rows g·x̂;   db = Σ_rows g
// Saves mean and rstd (N floats each); backward rebuilds x̂ from x. The derivation, the two-pass variance, what is
// saved and why, and why dw/db are not bitwise repeatable: docs/layernorm.md.
// NumPy twin: tinygrad_llm.engine.functional.LayerNormOp.   Launcher: tinygrad_llm/engine/cuda/layernorm.py.
//
// Launch shape (both kernels): blocks of 256 threads = 8 warps, ONE WARP PER ROW. Lane l handles columns l, l+32,
// l+64, ... (coalesced loads); row sums are warp shuffles (no shared memory, no __syncthreads).
//   forward:  grid = ceil(N / 8); warp w of block b normalizes row 8b + w.
//   backward: grid = min(ceil(N / 8), 4 blocks per SM); each warp strides over rows (row += 8·grid). A block sums
//             its rows' dw/db into shared memory (2·C floats), then adds them to the global dw/db (zero-filled by
//             the launcher) with one atomicAdd per column; with use_shared = 0 (C > 6144: 2·C floats over 48 KiB)
//             each row adds straight into global memory.
// Row offsets are 64-bit (long long): row·C can pass 2^31.

// The sum of v over the 32 lanes of a warp, returned to every lane. Butterfly: at each step a lane adds the value of
// the lane whose index differs in one bit (16, 8, 4, 2, 1 apart); after 5 steps every lane holds the total.
// All 32 lanes must take part (mask 0xffffffff): callers keep whole warps together.
__device__ __forceinline__ float warp_sum(float v) {
    for (int offset = 16; offset > 0; offset /= 2)
        v += __shfl_xor_sync(0xffffffffu, v, offset);
    return v;
}

// x, y (N, C); weight, bias (C,), never read when has_weight / has_bias is 0; mean, rstd (N,).
extern "C" __global__ void layernorm_forward(const float* __restrict__ x, const float* __restrict__ weight,
                                             const float* __restrict__ bias, float* __restrict__ y,
                                             float* __restrict__ mean, float* __restrict__ rstd,
                                             int N, int C, float eps, int has_weight, int has_bias) {
    const int warps_per_block = blockDim.x / 32;
    const int warp = threadIdx.x / 32;
    const int lane = threadIdx.x % 32;
    const long long row = (long long)blockIdx.x * warps_per_block + warp;
    if (row >= N) return;  // the whole warp leaves together, so the shuffles below always see 32 lanes

    const float* x_row = x + row * C;
    float* y_row = y + row * C;

    // pass 1: the mean
    float sum = 0.0f;
    for (int c = lane; c < C; c += 32) sum += x_row[c];
    const float m = warp_sum(sum) / C;

    // pass 2: the variance, as the mean of squared deviations
    float sum_sq = 0.0f;
    for (int c = lane; c < C; c += 32) {
        const float dev = x_row[c] - m;
        sum_sq += dev * dev;
    }
    const float var = warp_sum(sum_sq) / C;
    const float r = 1.0f / sqrtf(var + eps);  // IEEE sqrt and division (CuPy does not pass --use_fast_math)

    // pass 3: normalize, scale, shift
    for (int c = lane; c < C; c += 32) {
        float v = (x_row[c] - m) * r;  // x̂
        if (has_weight) v *= weight[c];
        if (has_bias) v += bias[c];
        y_row[c] = v;
    }
    if (lane == 0) {
        mean[row] = m;
        rstd[row] = r;
    }
}

// dy, x, dx (N, C); weight (C,), never read when has_weight is 0; mean, rstd (N,) from the forward;
// dweight, dbias (C,), zero-filled, never touched when weight_grads is 0 (then they are not computed).
// Dynamic shared memory: 2·C floats when weight_grads and use_shared are both 1, else none.
extern "C" __global__ void layernorm_backward(const float* __restrict__ dy, const float* __restrict__ x,
                                              const float* __restrict__ weight, const float* __restrict__ mean,
                                              const float* __restrict__ rstd, float* __restrict__ dx,
                                              float* dweight, float* dbias, int N, int C, int has_weight,
                                              int weight_grads, int use_shared) {
    extern __shared__ float partials[];  // [0, C): this block's dw partial sums, [C, 2C): its db partial sums

    // Where the rows add their dw/db contributions: this block's shared partials, or straight into global memory.
    // atomicAdd takes a generic pointer, so the same call works on either.
    float* dw_sum = dweight;
    float* db_sum = dbias;
    const bool block_partials = weight_grads && use_shared;  // the same for every thread: __syncthreads is safe
    if (block_partials) {
        for (int c = threadIdx.x; c < 2 * C; c += blockDim.x) partials[c] = 0.0f;
        __syncthreads();  // zeros written before any warp adds to them
        dw_sum = partials;
        db_sum = partials + C;
    }

    const int warps_per_block = blockDim.x / 32;
    const int warp = threadIdx.x / 32;
    const int lane = threadIdx.x % 32;
    const long long row_stride = (long long)gridDim.x * warps_per_block;
    // The loop condition is the same for all 32 lanes of a warp, so whole warps enter the shuffles together.
    for (long long row = (long long)blockIdx.x * warps_per_block + warp; row < N; row += row_stride) {
        const float* dy_row = dy + row * C;
        const float* x_row = x + row * C;
        float* dx_row = dx + row * C;
        const float m = mean[row];
        const float r = rstd[row];

        // pass 1: the two row means of the formula, mean(d) and mean(d·x̂)
        float sum_d = 0.0f, sum_d_xhat = 0.0f;
        for (int c = lane; c < C; c += 32) {
            const float xhat = (x_row[c] - m) * r;
            const float d = has_weight ? dy_row[c] * weight[c] : dy_row[c];
            sum_d += d;
            sum_d_xhat += d * xhat;
        }
        const float mean_d = warp_sum(sum_d) / C;
        const float mean_d_xhat = warp_sum(sum_d_xhat) / C;

        // pass 2: dx, and this row's share of dw and db
        for (int c = lane; c < C; c += 32) {
            const float xhat = (x_row[c] - m) * r;
            const float g = dy_row[c];
            const float d = has_weight ? g * weight[c] : g;
            dx_row[c] = r * (d - mean_d - xhat * mean_d_xhat);
            if (weight_grads) {
                atomicAdd(&dw_sum[c], g * xhat);
                atomicAdd(&db_sum[c], g);
            }
        }
    }

    if (block_partials) {
        __syncthreads();  // every warp of the block has added its rows
        for (int c = threadIdx.x; c < C; c += blockDim.x) {
            atomicAdd(&dweight[c], partials[c]);
            atomicAdd(&dbias[c], partials[C + c]);
        }
    }
}
