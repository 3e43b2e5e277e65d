// kernels/attention.cu — fused causal / non-causal attention: FlashAttention-2, forward and backward,
// in float32 (CUDA cores) and in bfloat16 with float32 accumulation (tensor cores, WMMA m16n16k16).
//
// For each of the BH independent heads (Q, K, V, O: (T, HEAD_DIM), contiguous, row-major), never holding the T×T
// matrices S or P (they exist one BLOCK_M × BLOCK_N tile at a time, in shared memory):
//   forward:   O = softmax(s·Q Kᵀ + causal mask) V, by the online softmax;  LSE_i = m_i + log l_i, saved
//   backward:  P = exp(s·Q Kᵀ - LSE);  dV = Pᵀ dO;  dP = dO Vᵀ;  dS = P ∘ (dP - D),  D = rowsum(dO ∘ O);
//              dQ = s·dS K;  dK = s·dSᵀ Q
// The derivation, the online softmax and why its rescaling is exact, what is saved, and the bf16 path:
// docs/attention.md. NumPy tile twin, the same loops tile by tile (read it first):
// tinygrad_llm/engine/cuda/attention_tiles.py. Launchers: tinygrad_llm/engine/cuda/attention.py.
//
// Legend (llm.c style)
//   BH        batch · heads; blockIdx.y picks the head; every array below is offset to that head first
//   T         sequence length (queries = keys = T)
//   HEAD_DIM  per-head channels D (compile-time constant, -DHEAD_DIM=32, 64 or 128; default 64)
//   BLOCK_M   query rows per tile;  BLOCK_N  key/value rows per tile (BLOCK_M = BLOCK_N = BLOCK here)
//   i, j      absolute query and key row (0 .. T-1);  r, c  the same inside a tile (i = i0 + r, j = j0 + c)
//   s         scale (1/sqrt(D) unless the caller says otherwise)
//   m, l      running row max and running row sum of exp(S - m) of the online softmax
//   LSE       m + log(l), float32, (BH, T);   D  rowsum(dO ∘ O), one float per query row (not the head dim)
//
// Launch shapes: THREADS = 128 (4 warps) per block; BLOCK = 32 for HEAD_DIM <= 64, 16 for HEAD_DIM = 128.
//   forward:      grid (ceil(T / BLOCK_M), BH), one block per query tile; Q staged once, then every K/V tile
//                 its rows may see (causal: up to the diagonal): 1. S tile  2. online softmax  3. O ← α·O + P V
//   preprocess:   D, one warp per row, 4 rows per block.
//   backward:     grid (ceil(T / BLOCK_N), BH), one block per K/V tile, K and V in shared memory, dK and dV
//                 accumulated in registers; walks the query tiles that can see it: A. P, dP, dS  B. dV, dK
//                 C. dQ += s·dS K with float32 atomicAdd (every block adds into the same rows; the launcher
//                 zero-fills dq). dK is scaled by s once, at the end.
// Memory: a block's working set is static shared memory, under the 48 KB a block gets without opting in; the tiles
// are the largest whose backward fits (sizes per kernel: benchmarks/RESULTS.md; tests/test_kernels_compile.py fails
// on any register spill).
// fp32 tile products C (ROWS, COLS): thread tid owns the elements tid + n·THREADS (row-major), all in column
//   tid % COLS, THREADS / COLS rows apart; it walks the shared dimension once, loading the operand that depends on
//   its column once per step for all its rows, sums in registers. Shared rows are padded by one float, so a warp
//   reading down a column hits different banks.
// bf16 tile products: 16×16 output blocks, one warp each (WMMA, bf16 inputs, fp32 accumulators), dealt round-robin
//   to the 4 warps; everything between the products is fp32 in shared memory. bf16 rows are padded by 8 elements
//   and float rows by 4 (WMMA: a leading dimension a multiple of 8 (16-bit types) or 4 (float), 32-byte-aligned
//   block pointers). Outputs: O bf16, LSE fp32, dQ dK dV fp32. The bf16 kernels need sm_80 or newer; on older
//   GPUs only the fp32 kernels are compiled.
// ---------------------------------------------------------------------------------------------------------------

#include <cuda_bf16.h>
#include <mma.h>

#ifndef HEAD_DIM
#define HEAD_DIM 64
#endif
static_assert(HEAD_DIM == 32 || HEAD_DIM == 64 || HEAD_DIM == 128, "HEAD_DIM must be 32, 64 or 128");

constexpr int BLOCK_M = HEAD_DIM <= 64 ? 32 : 16;  // query rows per tile
constexpr int BLOCK_N = BLOCK_M;                   // key / value rows per tile
constexpr int THREADS = 128;                       // threads per block (the launcher uses the same number)
constexpr int WARPS = THREADS / 32;

// The launcher sizes its grids from its own copy of BLOCK (tinygrad_llm/engine/cuda/attention.py, block_size) and passes
// it as -DEXPECTED_BLOCK; if the two ever disagree, compilation stops here instead of rows being left unwritten.
#ifdef EXPECTED_BLOCK
static_assert(EXPECTED_BLOCK == BLOCK_M, "tinygrad_llm/engine/cuda/attention.py block_size() disagrees with BLOCK_M");
#endif

// Every "for n < X / THREADS" loop below gives each thread exactly X / THREADS elements: no thread idles, no tail.
static_assert(BLOCK_M * BLOCK_N % THREADS == 0, "a score tile must split evenly over the threads");
static_assert(BLOCK_M * HEAD_DIM % THREADS == 0, "a (BLOCK, HEAD_DIM) tile must split evenly over the threads");
static_assert(THREADS % BLOCK_N == 0 && THREADS % HEAD_DIM == 0, "a thread's elements must share one column");
static_assert(BLOCK_M <= THREADS, "one thread per query row in the softmax");

__device__ __forceinline__ float negative_infinity() { return -__int_as_float(0x7f800000); }

// May query row i attend to key row j? Padding rows past the end (i >= T, present only in the last query tile)
// see nothing; keys past the end (j >= T) are never seen; with a causal mask, query i sees keys 0..i only.
__device__ __forceinline__ bool visible(int i, int j, int T, int causal) {
    return i < T && j < T && (!causal || j <= i);
}

// ================================================================================================ float32

// Rows row0 .. row0+ROWS-1 of a (T, HEAD_DIM) matrix into a shared tile; rows past T become 0.
// Those rows are contiguous in memory, so element e of the tile (row e / HEAD_DIM, column e % HEAD_DIM) is
// src[row0·HEAD_DIM + e]: consecutive threads read consecutive floats (coalesced), all from one base pointer.
template <int ROWS, int LD>
__device__ __forceinline__ void load_tile_f32(float (*tile)[LD], const float* __restrict__ src, int row0, int T) {
    const float* rows = src + (size_t)row0 * HEAD_DIM;
    const int valid = (T - row0) * HEAD_DIM;   // elements of the tile that lie inside the matrix
#pragma unroll
    for (int n = 0; n < ROWS * HEAD_DIM / THREADS; ++n) {
        const int e = threadIdx.x + n * THREADS;
        tile[e / HEAD_DIM][e % HEAD_DIM] = e < valid ? rows[e] : 0.f;
    }
}

extern "C" __global__ void __launch_bounds__(THREADS)
attention_forward_f32(const float* __restrict__ q, const float* __restrict__ k, const float* __restrict__ v,
                      float* __restrict__ o, float* __restrict__ lse, int T, int causal, float scale)
{
    __shared__ float q_s[BLOCK_M][HEAD_DIM + 1];   // this block's query rows (+1: no bank conflicts, see top)
    __shared__ float k_s[BLOCK_N][HEAD_DIM + 1];   // the current key tile
    __shared__ float v_s[BLOCK_N][HEAD_DIM + 1];   // the current value tile
    __shared__ float p_s[BLOCK_M][BLOCK_N + 1];    // S of the current tile, then P = exp(S - m') in place
    __shared__ float m_s[BLOCK_M], l_s[BLOCK_M], alpha_s[BLOCK_M];  // online softmax state per query row

    const int tid = threadIdx.x;
    const int i0 = blockIdx.x * BLOCK_M;                         // first query row of this block
    const size_t head = (size_t)blockIdx.y * T * HEAD_DIM;       // offset of this head's (T, HEAD_DIM) matrices
    q += head; k += head; v += head; o += head;
    lse += (size_t)blockIdx.y * T;

    load_tile_f32<BLOCK_M>(q_s, q, i0, T);
    for (int r = tid; r < BLOCK_M; r += THREADS) { m_s[r] = negative_infinity(); l_s[r] = 0.f; }

    // This thread's share of the (BLOCK_M, HEAD_DIM) output tile, in registers: column d_me, rows r_me + n·O_STEP.
    constexpr int O_PER_THREAD = BLOCK_M * HEAD_DIM / THREADS, O_STEP = THREADS / HEAD_DIM;
    const int d_me = tid % HEAD_DIM, r_me = tid / HEAD_DIM;
    float acc[O_PER_THREAD];
#pragma unroll
    for (int n = 0; n < O_PER_THREAD; ++n) acc[n] = 0.f;

    // Keys any row of this block may see: all T, or (causal) only j <= i0 + BLOCK_M - 1, the block's last row.
    const int kv_end = causal ? min(T, i0 + BLOCK_M) : T;
    for (int j0 = 0; j0 < kv_end; j0 += BLOCK_N) {
        __syncthreads();                           // everyone is done reading the previous k_s, v_s, p_s
        load_tile_f32<BLOCK_N>(k_s, k, j0, T);
        load_tile_f32<BLOCK_N>(v_s, v, j0, T);
        __syncthreads();

        // 1. S = s·Q Kᵀ for this tile, -inf where not visible. This thread: column c_me, rows r + n·S_STEP.
        {
            constexpr int S_PER_THREAD = BLOCK_M * BLOCK_N / THREADS, S_STEP = THREADS / BLOCK_N;
            const int c_me = tid % BLOCK_N, r_first = tid / BLOCK_N;
            float dot[S_PER_THREAD];
#pragma unroll
            for (int n = 0; n < S_PER_THREAD; ++n) dot[n] = 0.f;
            for (int d = 0; d < HEAD_DIM; ++d) {
                const float k_cd = k_s[c_me][d];   // loaded once, used for all of this thread's rows
#pragma unroll
                for (int n = 0; n < S_PER_THREAD; ++n) dot[n] += q_s[r_first + n * S_STEP][d] * k_cd;
            }
#pragma unroll
            for (int n = 0; n < S_PER_THREAD; ++n) {
                const int r = r_first + n * S_STEP;
                p_s[r][c_me] = visible(i0 + r, j0 + c_me, T, causal) ? scale * dot[n] : negative_infinity();
            }
        }
        __syncthreads();

        // 2. Online softmax, one thread per query row: new max, P = exp(S - m'), α, l
        if (tid < BLOCK_M) {
            const int r = tid;
            float tile_max = negative_infinity();
            for (int c = 0; c < BLOCK_N; ++c) tile_max = fmaxf(tile_max, p_s[r][c]);
            const float m_old = m_s[r], m_new = fmaxf(m_old, tile_max);
            // A row that has seen no visible key yet (only the padding rows i >= T) still has m' = -inf: measure
            // from 0 instead, so that exp(-inf - (-inf)) = NaN never happens; its P and α are exp(-inf) = 0.
            const float m_ref = m_new == negative_infinity() ? 0.f : m_new;
            float row_sum = 0.f;
            for (int c = 0; c < BLOCK_N; ++c) {
                const float p = expf(p_s[r][c] - m_ref);
                p_s[r][c] = p;
                row_sum += p;
            }
            const float alpha = expf(m_old - m_ref);   // moves what was summed against m_old onto m_new
            l_s[r] = alpha * l_s[r] + row_sum;
            m_s[r] = m_new;
            alpha_s[r] = alpha;
        }
        __syncthreads();

        // 3. O ← α·O + P V
#pragma unroll
        for (int n = 0; n < O_PER_THREAD; ++n) acc[n] *= alpha_s[r_me + n * O_STEP];
        for (int c = 0; c < BLOCK_N; ++c) {
            const float v_cd = v_s[c][d_me];
#pragma unroll
            for (int n = 0; n < O_PER_THREAD; ++n) acc[n] += p_s[r_me + n * O_STEP][c] * v_cd;
        }
    }

    // O = acc / l and LSE = m + log l for the real rows (every real row sees key 0, so l > 0). This thread's
    // element (r_me + n·O_STEP, d_me) is element tid + n·THREADS of the tile's contiguous rows in o.
    float* o_rows = o + (size_t)i0 * HEAD_DIM;
    const int o_valid = (T - i0) * HEAD_DIM;
#pragma unroll
    for (int n = 0; n < O_PER_THREAD; ++n) {
        const int e = tid + n * THREADS;
        if (e < o_valid) o_rows[e] = acc[n] / l_s[r_me + n * O_STEP];
    }
    if (tid < BLOCK_M && i0 + tid < T) lse[i0 + tid] = m_s[tid] + logf(l_s[tid]);
}

// D_i = Σ_d dO_id · O_id for every row of every head (rows = BH·T): one warp per row, 4 rows per block.
extern "C" __global__ void __launch_bounds__(THREADS)
attention_backward_preprocess_f32(const float* __restrict__ o, const float* __restrict__ d_o,
                                  float* __restrict__ delta, int rows)
{
    const int row = blockIdx.x * WARPS + threadIdx.x / 32, lane = threadIdx.x % 32;
    if (row >= rows) return;                  // the whole warp leaves together: the shuffles below stay full
    o += (size_t)row * HEAD_DIM;
    d_o += (size_t)row * HEAD_DIM;
    float sum = 0.f;
    for (int d = lane; d < HEAD_DIM; d += 32) sum += d_o[d] * o[d];
    for (int offset = 16; offset > 0; offset /= 2) sum += __shfl_xor_sync(0xffffffffu, sum, offset);
    if (lane == 0) delta[row] = sum;
}

extern "C" __global__ void __launch_bounds__(THREADS)
attention_backward_f32(const float* __restrict__ q, const float* __restrict__ k, const float* __restrict__ v,
                       const float* __restrict__ d_o, const float* __restrict__ lse, const float* __restrict__ delta,
                       float* __restrict__ dq, float* __restrict__ dk, float* __restrict__ dv,
                       int T, int causal, float scale)
{
    __shared__ float k_s[BLOCK_N][HEAD_DIM + 1];   // this block's key rows
    __shared__ float v_s[BLOCK_N][HEAD_DIM + 1];   // this block's value rows
    __shared__ float q_s[BLOCK_M][HEAD_DIM + 1];   // the current query tile
    __shared__ float do_s[BLOCK_M][HEAD_DIM + 1];  // the current dO tile
    __shared__ float pt_s[BLOCK_N][BLOCK_M + 1];   // Pᵀ of the current (query tile, key tile) pair
    __shared__ float dst_s[BLOCK_N][BLOCK_M + 1];  // dSᵀ of the same pair
    __shared__ float lse_s[BLOCK_M], delta_s[BLOCK_M];

    const int tid = threadIdx.x;
    const int j0 = blockIdx.x * BLOCK_N;                         // first key row of this block
    const size_t head = (size_t)blockIdx.y * T * HEAD_DIM;
    q += head; k += head; v += head; d_o += head; dq += head; dk += head; dv += head;
    lse += (size_t)blockIdx.y * T;
    delta += (size_t)blockIdx.y * T;

    load_tile_f32<BLOCK_N>(k_s, k, j0, T);
    load_tile_f32<BLOCK_N>(v_s, v, j0, T);

    // This thread's share of the (BLOCK_N, HEAD_DIM) dK and dV tiles, in registers: column d_me, key rows
    // c_me + n·KV_STEP.
    constexpr int KV_PER_THREAD = BLOCK_N * HEAD_DIM / THREADS, KV_STEP = THREADS / HEAD_DIM;
    const int d_me = tid % HEAD_DIM, c_me = tid / HEAD_DIM;
    float dk_acc[KV_PER_THREAD], dv_acc[KV_PER_THREAD];
#pragma unroll
    for (int n = 0; n < KV_PER_THREAD; ++n) { dk_acc[n] = 0.f; dv_acc[n] = 0.f; }

    // Query rows that may see a key of this tile: all, or (causal) i >= j0, from the query tile holding row j0.
    const int i_start = causal ? j0 / BLOCK_M * BLOCK_M : 0;
    for (int i0 = i_start; i0 < T; i0 += BLOCK_M) {
        __syncthreads();                           // everyone is done with the previous q_s, do_s, pt_s, dst_s
        load_tile_f32<BLOCK_M>(q_s, q, i0, T);
        load_tile_f32<BLOCK_M>(do_s, d_o, i0, T);
        for (int r = tid; r < BLOCK_M; r += THREADS) {
            lse_s[r] = i0 + r < T ? lse[i0 + r] : 0.f;
            delta_s[r] = i0 + r < T ? delta[i0 + r] : 0.f;
        }
        __syncthreads();

        // A. P = exp(s·Q Kᵀ - LSE) (0 where not visible), dP = dO Vᵀ, dS = P ∘ (dP - D); stored transposed,
        //    because phase B reads them a key row c at a time. This thread: key column c, query rows r + n·S_STEP.
        {
            constexpr int S_PER_THREAD = BLOCK_M * BLOCK_N / THREADS, S_STEP = THREADS / BLOCK_N;
            const int c = tid % BLOCK_N, r_first = tid / BLOCK_N;
            float s_dot[S_PER_THREAD], dp[S_PER_THREAD];
#pragma unroll
            for (int n = 0; n < S_PER_THREAD; ++n) { s_dot[n] = 0.f; dp[n] = 0.f; }
            for (int d = 0; d < HEAD_DIM; ++d) {
                const float k_cd = k_s[c][d], v_cd = v_s[c][d];
#pragma unroll
                for (int n = 0; n < S_PER_THREAD; ++n) {
                    s_dot[n] += q_s[r_first + n * S_STEP][d] * k_cd;
                    dp[n] += do_s[r_first + n * S_STEP][d] * v_cd;
                }
            }
#pragma unroll
            for (int n = 0; n < S_PER_THREAD; ++n) {
                const int r = r_first + n * S_STEP;
                const float p = visible(i0 + r, j0 + c, T, causal) ? expf(scale * s_dot[n] - lse_s[r]) : 0.f;
                pt_s[c][r] = p;
                dst_s[c][r] = p * (dp[n] - delta_s[r]);
            }
        }
        __syncthreads();

        // B. dV += Pᵀ dO and dK += dSᵀ Q, on this thread's elements of the key tile
        for (int r = 0; r < BLOCK_M; ++r) {
            const float do_rd = do_s[r][d_me], q_rd = q_s[r][d_me];
#pragma unroll
            for (int n = 0; n < KV_PER_THREAD; ++n) {
                dv_acc[n] += pt_s[c_me + n * KV_STEP][r] * do_rd;
                dk_acc[n] += dst_s[c_me + n * KV_STEP][r] * q_rd;
            }
        }

        // C. dQ += s·dS K for the query tile; every key tile (every block) adds into these rows, hence atomicAdd.
        //    This thread: column d_me, query rows r + n·Q_STEP.
        {
            constexpr int Q_PER_THREAD = BLOCK_M * HEAD_DIM / THREADS, Q_STEP = THREADS / HEAD_DIM;
            const int r_first = tid / HEAD_DIM;
            float sum[Q_PER_THREAD];
#pragma unroll
            for (int n = 0; n < Q_PER_THREAD; ++n) sum[n] = 0.f;
            for (int c = 0; c < BLOCK_N; ++c) {
                const float k_cd = k_s[c][d_me];
#pragma unroll
                for (int n = 0; n < Q_PER_THREAD; ++n) sum[n] += dst_s[c][r_first + n * Q_STEP] * k_cd;
            }
            float* dq_rows = dq + (size_t)i0 * HEAD_DIM;   // element (r_first + n·Q_STEP, d_me) is tid + n·THREADS
            const int dq_valid = (T - i0) * HEAD_DIM;
#pragma unroll
            for (int n = 0; n < Q_PER_THREAD; ++n) {
                const int e = tid + n * THREADS;
                if (e < dq_valid) atomicAdd(&dq_rows[e], scale * sum[n]);
            }
        }
    }

    // dK = s·dSᵀ Q summed over the query tiles; dV = Pᵀ dO summed likewise. Only the real key rows are written.
    float* dk_rows = dk + (size_t)j0 * HEAD_DIM;       // element (c_me + n·KV_STEP, d_me) is tid + n·THREADS
    float* dv_rows = dv + (size_t)j0 * HEAD_DIM;
    const int kv_valid = (T - j0) * HEAD_DIM;
#pragma unroll
    for (int n = 0; n < KV_PER_THREAD; ++n) {
        const int e = tid + n * THREADS;
        if (e < kv_valid) {
            dk_rows[e] = scale * dk_acc[n];
            dv_rows[e] = dv_acc[n];
        }
    }
}

// ================================================================================================ bfloat16
#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 800   // bf16 tensor-core WMMA exists from sm_80 (Ampere) on

using bf16 = __nv_bfloat16;
namespace wmma = nvcuda::wmma;

constexpr int BF16_PAD = 8;  // bf16 rows padded by 16 bytes (WMMA: ldm a multiple of 8; 16-byte vector stores)
constexpr int F32_PAD = 4;   // float rows padded by 16 bytes (WMMA: ldm a multiple of 4)
constexpr int LD = HEAD_DIM + BF16_PAD;  // leading dimension of the bf16 (BLOCK, HEAD_DIM) tiles

static_assert(BLOCK_M % 16 == 0 && BLOCK_N % 16 == 0 && HEAD_DIM % 16 == 0, "WMMA works on 16×16 blocks");

// Fragments of one warp's 16×16×16 tensor-core product C += A B. The layout says how A or B sits in memory:
// row_major = as is, col_major = stored transposed (so Kᵀ is read straight from the rows of K).
using FragA = wmma::fragment<wmma::matrix_a, 16, 16, 16, bf16, wmma::row_major>;
using FragAT = wmma::fragment<wmma::matrix_a, 16, 16, 16, bf16, wmma::col_major>;
using FragB = wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, wmma::row_major>;
using FragBT = wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, wmma::col_major>;
using FragC = wmma::fragment<wmma::accumulator, 16, 16, 16, float>;

// One warp: acc += Σ_kk A_kk B_kk over the shared dimension K (K/16 steps of 16). a and b point at the first 16×16
// block (kk = 0) of A's block row and B's block column; a_step, b_step are how many elements further the next
// block along K starts (16 along a row, 16·ld down the rows).
template <int K, typename FragmentA, typename FragmentB>
__device__ __forceinline__ void mma_accumulate(FragC& acc, const bf16* a, int lda, int a_step,
                                               const bf16* b, int ldb, int b_step) {
    FragmentA fa;
    FragmentB fb;
#pragma unroll
    for (int kk = 0; kk < K / 16; ++kk) {
        wmma::load_matrix_sync(fa, a + kk * a_step, lda);
        wmma::load_matrix_sync(fb, b + kk * b_step, ldb);
        wmma::mma_sync(acc, fa, fb, acc);
    }
}

// Rows row0 .. row0+ROWS-1 of a (T, HEAD_DIM) bf16 matrix into a shared tile, 8 elements (16 bytes) per load;
// rows past T become 0. As in load_tile_f32, the tile's rows are contiguous in memory: chunk e of the tile is
// chunk e of the rows from row0 on. (16-byte aligned: HEAD_DIM·2 and LD·2 bytes are multiples of 16.)
template <int ROWS>
__device__ __forceinline__ void load_tile_bf16(bf16 (*tile)[LD], const bf16* __restrict__ src, int row0, int T) {
    constexpr int CHUNKS = HEAD_DIM / 8;   // 16-byte chunks per row
    static_assert(ROWS * CHUNKS % THREADS == 0, "a bf16 tile must split evenly over the threads");
    const uint4* rows = reinterpret_cast<const uint4*>(src + (size_t)row0 * HEAD_DIM);
    const int valid = (T - row0) * CHUNKS;   // chunks of the tile that lie inside the matrix
#pragma unroll
    for (int n = 0; n < ROWS * CHUNKS / THREADS; ++n) {
        const int e = threadIdx.x + n * THREADS;
        const uint4 bits = e < valid ? rows[e] : make_uint4(0u, 0u, 0u, 0u);   // bf16 0.0 is all zero bits
        *reinterpret_cast<uint4*>(&tile[e / CHUNKS][e % CHUNKS * 8]) = bits;
    }
}

extern "C" __global__ void __launch_bounds__(THREADS)
attention_forward_bf16(const bf16* __restrict__ q, const bf16* __restrict__ k, const bf16* __restrict__ v,
                       bf16* __restrict__ o, float* __restrict__ lse, int T, int causal, float scale)
{
    __shared__ __align__(32) bf16 q_s[BLOCK_M][LD];                     // this block's query rows
    __shared__ __align__(32) bf16 k_s[BLOCK_N][LD];                     // the current key tile
    __shared__ __align__(32) bf16 v_s[BLOCK_N][LD];                     // the current value tile
    __shared__ __align__(32) float s_s[BLOCK_M][BLOCK_N + F32_PAD];     // Q Kᵀ of the tile (fp32, unscaled)
    __shared__ __align__(32) bf16 p_s[BLOCK_M][BLOCK_N + BF16_PAD];     // P = exp(S - m'), rounded to bf16
    __shared__ __align__(32) float o_s[BLOCK_M][HEAD_DIM + F32_PAD];    // the unnormalised O accumulator (fp32)
    __shared__ float m_s[BLOCK_M], l_s[BLOCK_M], alpha_s[BLOCK_M];

    // O lives in shared memory, not in WMMA fragments: which (row, column) a fragment register holds is not
    // specified, and step 3 must multiply each row by its own α.
    const int tid = threadIdx.x, warp = tid / 32;
    const int i0 = blockIdx.x * BLOCK_M;
    const size_t head = (size_t)blockIdx.y * T * HEAD_DIM;
    q += head; k += head; v += head; o += head;
    lse += (size_t)blockIdx.y * T;

    load_tile_bf16<BLOCK_M>(q_s, q, i0, T);
    for (int r = tid; r < BLOCK_M; r += THREADS) { m_s[r] = negative_infinity(); l_s[r] = 0.f; }
#pragma unroll
    for (int n = 0; n < BLOCK_M * HEAD_DIM / THREADS; ++n) {
        const int e = tid + n * THREADS;
        o_s[e / HEAD_DIM][e % HEAD_DIM] = 0.f;
    }

    const int kv_end = causal ? min(T, i0 + BLOCK_M) : T;
    for (int j0 = 0; j0 < kv_end; j0 += BLOCK_N) {
        __syncthreads();
        load_tile_bf16<BLOCK_N>(k_s, k, j0, T);
        load_tile_bf16<BLOCK_N>(v_s, v, j0, T);
        __syncthreads();

        // 1. Q Kᵀ on tensor cores: its (BLOCK_M/16)·(BLOCK_N/16) blocks of 16×16, dealt round-robin to the warps
        constexpr int S_COLS = BLOCK_N / 16;
        for (int blk = warp; blk < (BLOCK_M / 16) * S_COLS; blk += WARPS) {
            const int bm = blk / S_COLS, bn = blk % S_COLS;
            FragC acc;
            wmma::fill_fragment(acc, 0.f);
            mma_accumulate<HEAD_DIM, FragA, FragBT>(acc, &q_s[16 * bm][0], LD, 16, &k_s[16 * bn][0], LD, 16);
            wmma::store_matrix_sync(&s_s[16 * bm][16 * bn], acc, BLOCK_N + F32_PAD, wmma::mem_row_major);
        }
        __syncthreads();

        // 2. Online softmax in fp32, one thread per query row (as in attention_forward_f32); P rounded to bf16
        if (tid < BLOCK_M) {
            const int r = tid;
            float tile_max = negative_infinity();
            for (int c = 0; c < BLOCK_N; ++c)
                if (visible(i0 + r, j0 + c, T, causal)) tile_max = fmaxf(tile_max, scale * s_s[r][c]);
            const float m_old = m_s[r], m_new = fmaxf(m_old, tile_max);
            const float m_ref = m_new == negative_infinity() ? 0.f : m_new;   // see attention_forward_f32
            float row_sum = 0.f;
            for (int c = 0; c < BLOCK_N; ++c) {
                const float p = visible(i0 + r, j0 + c, T, causal) ? expf(scale * s_s[r][c] - m_ref) : 0.f;
                p_s[r][c] = __float2bfloat16(p);
                row_sum += p;   // l sums the unrounded p, as FlashAttention does
            }
            const float alpha = expf(m_old - m_ref);
            l_s[r] = alpha * l_s[r] + row_sum;
            m_s[r] = m_new;
            alpha_s[r] = alpha;
        }
        __syncthreads();

        // 3a. O ← α·O, row by row, in fp32
#pragma unroll
        for (int n = 0; n < BLOCK_M * HEAD_DIM / THREADS; ++n) {
            const int e = tid + n * THREADS, r = e / HEAD_DIM;
            o_s[r][e % HEAD_DIM] *= alpha_s[r];
        }
        __syncthreads();

        // 3b. O += P V on tensor cores, one 16×16 block of O per warp at a time (loaded, accumulated, stored back)
        constexpr int O_COLS = HEAD_DIM / 16;
        for (int blk = warp; blk < (BLOCK_M / 16) * O_COLS; blk += WARPS) {
            const int bm = blk / O_COLS, bd = blk % O_COLS;
            FragC acc;
            wmma::load_matrix_sync(acc, &o_s[16 * bm][16 * bd], HEAD_DIM + F32_PAD, wmma::mem_row_major);
            mma_accumulate<BLOCK_N, FragA, FragB>(acc, &p_s[16 * bm][0], BLOCK_N + BF16_PAD, 16,
                                                  &v_s[0][16 * bd], LD, 16 * LD);
            wmma::store_matrix_sync(&o_s[16 * bm][16 * bd], acc, HEAD_DIM + F32_PAD, wmma::mem_row_major);
        }
    }
    __syncthreads();

    // O = acc / l (rounded to bf16) and LSE = m + log l (fp32) for the real rows
    bf16* o_rows = o + (size_t)i0 * HEAD_DIM;
    const int o_valid = (T - i0) * HEAD_DIM;
#pragma unroll
    for (int n = 0; n < BLOCK_M * HEAD_DIM / THREADS; ++n) {
        const int e = tid + n * THREADS, r = e / HEAD_DIM;
        if (e < o_valid) o_rows[e] = __float2bfloat16(o_s[r][e % HEAD_DIM] / l_s[r]);
    }
    if (tid < BLOCK_M && i0 + tid < T) lse[i0 + tid] = m_s[tid] + logf(l_s[tid]);
}

// D_i = Σ_d dO_id · O_id from bf16 O and dO, summed in fp32; as attention_backward_preprocess_f32.
extern "C" __global__ void __launch_bounds__(THREADS)
attention_backward_preprocess_bf16(const bf16* __restrict__ o, const bf16* __restrict__ d_o,
                                   float* __restrict__ delta, int rows)
{
    const int row = blockIdx.x * WARPS + threadIdx.x / 32, lane = threadIdx.x % 32;
    if (row >= rows) return;
    o += (size_t)row * HEAD_DIM;
    d_o += (size_t)row * HEAD_DIM;
    float sum = 0.f;
    for (int d = lane; d < HEAD_DIM; d += 32) sum += __bfloat162float(d_o[d]) * __bfloat162float(o[d]);
    for (int offset = 16; offset > 0; offset /= 2) sum += __shfl_xor_sync(0xffffffffu, sum, offset);
    if (lane == 0) delta[row] = sum;
}

extern "C" __global__ void __launch_bounds__(THREADS)
attention_backward_bf16(const bf16* __restrict__ q, const bf16* __restrict__ k, const bf16* __restrict__ v,
                        const bf16* __restrict__ d_o, const float* __restrict__ lse, const float* __restrict__ delta,
                        float* __restrict__ dq, float* __restrict__ dk, float* __restrict__ dv,
                        int T, int causal, float scale)
{
    static_assert(BLOCK_M == BLOCK_N, "stage_s holds a (BLOCK_M, HEAD_DIM) dQ tile and, at the end, dK and dV");
    __shared__ __align__(32) bf16 k_s[BLOCK_N][LD];                      // this block's key rows
    __shared__ __align__(32) bf16 v_s[BLOCK_N][LD];                      // this block's value rows
    __shared__ __align__(32) bf16 q_s[BLOCK_M][LD];                      // the current query tile
    __shared__ __align__(32) bf16 do_s[BLOCK_M][LD];                     // the current dO tile
    __shared__ __align__(32) float s_s[BLOCK_M][BLOCK_N + F32_PAD];      // Q Kᵀ (fp32, unscaled)
    __shared__ __align__(32) float dp_s[BLOCK_M][BLOCK_N + F32_PAD];     // dP = dO Vᵀ (fp32)
    __shared__ __align__(32) bf16 pt_s[BLOCK_N][BLOCK_M + BF16_PAD];     // Pᵀ, rounded to bf16
    __shared__ __align__(32) bf16 dst_s[BLOCK_N][BLOCK_M + BF16_PAD];    // dSᵀ, rounded to bf16
    __shared__ __align__(32) float stage_s[BLOCK_M][HEAD_DIM + F32_PAD]; // dQ of the pair; dK, dV at the end
    __shared__ float lse_s[BLOCK_M], delta_s[BLOCK_M];

    const int tid = threadIdx.x, warp = tid / 32;
    const int j0 = blockIdx.x * BLOCK_N;
    const size_t head = (size_t)blockIdx.y * T * HEAD_DIM;
    q += head; k += head; v += head; d_o += head; dq += head; dk += head; dv += head;
    lse += (size_t)blockIdx.y * T;
    delta += (size_t)blockIdx.y * T;

    load_tile_bf16<BLOCK_N>(k_s, k, j0, T);
    load_tile_bf16<BLOCK_N>(v_s, v, j0, T);

    // dK and dV accumulators: the (BLOCK_N/16)·(HEAD_DIM/16) 16×16 blocks of each, dealt round-robin to the warps
    // (warp w owns blocks w, w + WARPS, ...) and kept in fp32 fragments for the whole loop. No per-row rescaling
    // happens in the backward, so the unspecified fragment layout does not matter until they are written out.
    constexpr int KV_COLS = HEAD_DIM / 16;
    constexpr int KV_BLOCKS_PER_WARP = (BLOCK_N / 16) * KV_COLS / WARPS;
    static_assert((BLOCK_N / 16) * KV_COLS % WARPS == 0, "dK, dV blocks must split evenly over the warps");
    FragC dk_acc[KV_BLOCKS_PER_WARP], dv_acc[KV_BLOCKS_PER_WARP];
#pragma unroll
    for (int f = 0; f < KV_BLOCKS_PER_WARP; ++f) {
        wmma::fill_fragment(dk_acc[f], 0.f);
        wmma::fill_fragment(dv_acc[f], 0.f);
    }

    const int i_start = causal ? j0 / BLOCK_M * BLOCK_M : 0;
    for (int i0 = i_start; i0 < T; i0 += BLOCK_M) {
        __syncthreads();                           // everyone is done with the previous pair's tiles and stage_s
        load_tile_bf16<BLOCK_M>(q_s, q, i0, T);
        load_tile_bf16<BLOCK_M>(do_s, d_o, i0, T);
        for (int r = tid; r < BLOCK_M; r += THREADS) {
            lse_s[r] = i0 + r < T ? lse[i0 + r] : 0.f;
            delta_s[r] = i0 + r < T ? delta[i0 + r] : 0.f;
        }
        __syncthreads();

        // A1. Q Kᵀ and dP = dO Vᵀ on tensor cores: 2·(BLOCK_M/16)·(BLOCK_N/16) blocks dealt to the warps
        constexpr int S_COLS = BLOCK_N / 16, S_BLOCKS = (BLOCK_M / 16) * S_COLS;
        for (int blk = warp; blk < 2 * S_BLOCKS; blk += WARPS) {
            const bool is_dp = blk >= S_BLOCKS;
            const int bm = blk % S_BLOCKS / S_COLS, bn = blk % S_COLS;
            FragC acc;
            wmma::fill_fragment(acc, 0.f);
            mma_accumulate<HEAD_DIM, FragA, FragBT>(acc, is_dp ? &do_s[16 * bm][0] : &q_s[16 * bm][0], LD, 16,
                                                    is_dp ? &v_s[16 * bn][0] : &k_s[16 * bn][0], LD, 16);
            wmma::store_matrix_sync(is_dp ? &dp_s[16 * bm][16 * bn] : &s_s[16 * bm][16 * bn], acc,
                                    BLOCK_N + F32_PAD, wmma::mem_row_major);
        }
        __syncthreads();

        // A2. P = exp(s·S - LSE) (0 where not visible) and dS = P ∘ (dP - D) in fp32, stored transposed in bf16
        //     (unrolled by 2 only: all of a thread's expf in flight at once would cost many more registers;
        //     the count is in benchmarks/RESULTS.md)
#pragma unroll 2
        for (int n = 0; n < BLOCK_M * BLOCK_N / THREADS; ++n) {
            const int e = tid + n * THREADS, r = e / BLOCK_N, c = e % BLOCK_N;
            const float p = visible(i0 + r, j0 + c, T, causal) ? expf(scale * s_s[r][c] - lse_s[r]) : 0.f;
            pt_s[c][r] = __float2bfloat16(p);
            dst_s[c][r] = __float2bfloat16(p * (dp_s[r][c] - delta_s[r]));
        }
        __syncthreads();

        // B. dV += Pᵀ dO and dK += dSᵀ Q on this warp's blocks of the key tile
#pragma unroll
        for (int f = 0; f < KV_BLOCKS_PER_WARP; ++f) {
            const int blk = warp + f * WARPS, bn = blk / KV_COLS, bd = blk % KV_COLS;
            mma_accumulate<BLOCK_M, FragA, FragB>(dv_acc[f], &pt_s[16 * bn][0], BLOCK_M + BF16_PAD, 16,
                                                  &do_s[0][16 * bd], LD, 16 * LD);
            mma_accumulate<BLOCK_M, FragA, FragB>(dk_acc[f], &dst_s[16 * bn][0], BLOCK_M + BF16_PAD, 16,
                                                  &q_s[0][16 * bd], LD, 16 * LD);
        }

        // C. dQ_tile = dS K on tensor cores (dS is dSᵀ read column-major), staged, then added with atomicAdd
        for (int blk = warp; blk < (BLOCK_M / 16) * KV_COLS; blk += WARPS) {
            const int bm = blk / KV_COLS, bd = blk % KV_COLS;
            FragC acc;
            wmma::fill_fragment(acc, 0.f);
            mma_accumulate<BLOCK_N, FragAT, FragB>(acc, &dst_s[0][16 * bm], BLOCK_M + BF16_PAD,
                                                   16 * (BLOCK_M + BF16_PAD), &k_s[0][16 * bd], LD, 16 * LD);
            wmma::store_matrix_sync(&stage_s[16 * bm][16 * bd], acc, HEAD_DIM + F32_PAD, wmma::mem_row_major);
        }
        __syncthreads();
        float* dq_rows = dq + (size_t)i0 * HEAD_DIM;
        const int dq_valid = (T - i0) * HEAD_DIM;
#pragma unroll
        for (int n = 0; n < BLOCK_M * HEAD_DIM / THREADS; ++n) {
            const int e = tid + n * THREADS;
            if (e < dq_valid) atomicAdd(&dq_rows[e], scale * stage_s[e / HEAD_DIM][e % HEAD_DIM]);
        }
    }

    // Write dK = s·dK and dV, in fp32, through stage_s (a fragment's element → (row, column) map is unspecified,
    // store_matrix_sync is the way out); only the real key rows are written.
#pragma unroll
    for (int f = 0; f < KV_BLOCKS_PER_WARP; ++f)
        for (int t = 0; t < dk_acc[f].num_elements; ++t) dk_acc[f].x[t] *= scale;   // elementwise: layout-free
    const int kv_valid = (T - j0) * HEAD_DIM;
#pragma unroll
    for (int which = 0; which < 2; ++which) {
        float* out_rows = (which == 0 ? dk : dv) + (size_t)j0 * HEAD_DIM;
        __syncthreads();                           // stage_s is free: its last readers are done
#pragma unroll
        for (int f = 0; f < KV_BLOCKS_PER_WARP; ++f) {
            const int blk = warp + f * WARPS, bn = blk / KV_COLS, bd = blk % KV_COLS;
            wmma::store_matrix_sync(&stage_s[16 * bn][16 * bd], which == 0 ? dk_acc[f] : dv_acc[f],
                                    HEAD_DIM + F32_PAD, wmma::mem_row_major);
        }
        __syncthreads();
#pragma unroll
        for (int n = 0; n < BLOCK_N * HEAD_DIM / THREADS; ++n) {
            const int e = tid + n * THREADS;
            if (e < kv_valid) out_rows[e] = stage_s[e / HEAD_DIM][e % HEAD_DIM];
        }
    }
}

#endif  // bf16 kernels: sm_80+
