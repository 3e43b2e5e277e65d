// mma.h for the host (see cuda_host.h): a reference WMMA for 16x16x16 tiles, bf16 (or float) inputs, fp32
// accumulators. Every lane keeps the whole 16x16 tile in its fragment: CUDA leaves unspecified which lane holds which
// element, and our kernels touch fragment elements only uniformly (all of them alike), which does not depend on the
// layout. Each *_sync call is warp-synchronous, as on the GPU: all 32 lanes must reach it.
#pragma once
#include <type_traits>

#include "cuda_bf16.h"

namespace nvcuda {
namespace wmma {

struct matrix_a {};
struct matrix_b {};
struct accumulator {};
struct row_major {};
struct col_major {};
enum layout_t { mem_row_major, mem_col_major };

inline float to_float(float v) { return v; }
inline float to_float(__nv_bfloat16 v) { return __bfloat162float(v); }
template <class T> T from_float(float v) { return (T)v; }
template <> inline __nv_bfloat16 from_float<__nv_bfloat16>(float v) { return __float2bfloat16(v); }

template <class Use, int M, int N, int K, class T, class Layout = void>
struct fragment {
    static constexpr int rows = std::is_same<Use, matrix_b>::value ? K : M;
    static constexpr int cols = std::is_same<Use, matrix_a>::value ? K : N;
    static constexpr int num_elements = rows * cols;
    T x[num_elements];   // row-major, whatever the layout in memory
};

// matrix_a / matrix_b: the layout is part of the type
template <class Use, int M, int N, int K, class T, class Layout>
void load_matrix_sync(fragment<Use, M, N, K, T, Layout>& f, const T* p, unsigned ldm) {
    using F = fragment<Use, M, N, K, T, Layout>;
    tl_mock::warp_barrier(0xffffffffu);
    for (int r = 0; r < F::rows; ++r)
        for (int c = 0; c < F::cols; ++c)
            f.x[r * F::cols + c] = std::is_same<Layout, col_major>::value ? p[c * ldm + r] : p[r * ldm + c];
}

// accumulator: the layout is an argument
template <int M, int N, int K>
void load_matrix_sync(fragment<accumulator, M, N, K, float>& f, const float* p, unsigned ldm, layout_t layout) {
    tl_mock::warp_barrier(0xffffffffu);
    for (int r = 0; r < M; ++r)
        for (int c = 0; c < N; ++c) f.x[r * N + c] = layout == mem_col_major ? p[c * ldm + r] : p[r * ldm + c];
}

template <int M, int N, int K>
void store_matrix_sync(float* p, const fragment<accumulator, M, N, K, float>& f, unsigned ldm, layout_t layout) {
    tl_mock::warp_barrier(0xffffffffu);
    for (int r = 0; r < M; ++r)
        for (int c = 0; c < N; ++c) (layout == mem_col_major ? p[c * ldm + r] : p[r * ldm + c]) = f.x[r * N + c];
    tl_mock::warp_barrier(0xffffffffu);   // the whole tile is in memory before any lane goes on
}

template <class Use, int M, int N, int K, class T, class Layout, class V>
void fill_fragment(fragment<Use, M, N, K, T, Layout>& f, V value) {
    tl_mock::warp_barrier(0xffffffffu);
    for (int i = 0; i < fragment<Use, M, N, K, T, Layout>::num_elements; ++i) f.x[i] = from_float<T>((float)value);
}

// d = a b + c, products of the inputs summed in fp32 over k = 0 .. K-1
template <int M, int N, int K, class T, class LayoutA, class LayoutB>
void mma_sync(fragment<accumulator, M, N, K, float>& d, const fragment<matrix_a, M, N, K, T, LayoutA>& a,
              const fragment<matrix_b, M, N, K, T, LayoutB>& b, const fragment<accumulator, M, N, K, float>& c) {
    tl_mock::warp_barrier(0xffffffffu);
    float result[M * N];
    for (int r = 0; r < M; ++r)
        for (int col = 0; col < N; ++col) {
            float sum = c.x[r * N + col];
            for (int k = 0; k < K; ++k) sum += to_float(a.x[r * K + k]) * to_float(b.x[k * N + col]);
            result[r * N + col] = sum;
        }
    for (int i = 0; i < M * N; ++i) d.x[i] = result[i];
}

}  // namespace wmma
}  // namespace nvcuda
