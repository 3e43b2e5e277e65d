// cuda_bf16.h for the host (see cuda_host.h): bfloat16 as CUDA defines it, the top 16 bits of a float32, and its
// conversions. float -> bf16 rounds to nearest, ties to even, as __float2bfloat16 does on the GPU; NaN stays NaN.
#pragma once
#include <cstdint>
#include <cstring>

struct __nv_bfloat16 {
    unsigned short x;   // the bit pattern (trivial type: no constructor, so __shared__ arrays of it stay static)
};

inline __nv_bfloat16 __float2bfloat16(float f) {
    unsigned int bits;
    std::memcpy(&bits, &f, sizeof bits);
    __nv_bfloat16 b;
    if ((bits & 0x7fffffffu) > 0x7f800000u) {   // NaN: keep it a quiet NaN, which rounding could carry to inf
        b.x = (unsigned short)((bits >> 16) | 0x0040u);
        return b;
    }
    bits += 0x7fffu + ((bits >> 16) & 1u);      // round the dropped half to nearest, ties to the even result
    b.x = (unsigned short)(bits >> 16);
    return b;
}

inline __nv_bfloat16 __float2bfloat16_rn(float f) { return __float2bfloat16(f); }

inline __nv_bfloat16 __float2bfloat16_rz(float f) {   // toward zero: drop the low half (NaN stays NaN)
    unsigned int bits;
    std::memcpy(&bits, &f, sizeof bits);
    __nv_bfloat16 b;
    b.x = (unsigned short)(bits >> 16);
    if ((bits & 0x7fffffffu) > 0x7f800000u) b.x |= 0x0040u;
    return b;
}

inline float __bfloat162float(__nv_bfloat16 b) {
    const unsigned int bits = (unsigned int)b.x << 16;
    float f;
    std::memcpy(&f, &bits, sizeof f);
    return f;
}
