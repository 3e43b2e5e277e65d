"""PyTorch's float32 Box-Muller, in NumPy, bit for bit: normal_fill_16_AVX2 of ATen's cpu/DistributionTemplates.h,
with the log and sincos of cpu/avx_mathfun.h (Cephes' float polynomials, by J. Pommier and G. Garberoglio).

torch.randn and normal_ take this path for a contiguous float32 tensor of 16 elements or more, on any CPU with
AVX2 (PyTorch's AVX512 build runs the same code). Its numbers depend on every rounding, so each step is written as
the compiled code does it: float32 operations, and a fused multiply-add (one rounding) wherever GCC fused a
multiplication into the addition that follows it (fma.py gives NumPy that instruction).
"""
import numpy as np

from .fma import fma32 as fma

f32 = np.float32

_SQRT_HALF = f32(0.707106781186547524)
_LOG_POLY = [f32(c) for c in (7.0376836292E-2, -1.1514610310E-1, 1.1676998740E-1, -1.2420140846E-1,
                              1.4249322787E-1, -1.6668057665E-1, 2.0000714765E-1, -2.4999993993E-1,
                              3.3333331174E-1)]
_LOG_Q1, _LOG_Q2 = f32(-2.12194440e-4), f32(0.693359375)     # ln 2 = Q2 - Q1, split so that e * Q2 is exact
_FOUR_OVER_PI = f32(1.27323954473516)
_DP1, _DP2, _DP3 = f32(-0.78515625), f32(-2.4187564849853515625e-4), f32(-3.77489497744594108e-8)   # -pi/4 in 3
_SIN_POLY = [f32(c) for c in (-1.9515295891E-4, 8.3321608736E-3, -1.6666654611E-1)]
_COS_POLY = [f32(c) for c in (2.443315711809948E-005, -1.388731625493765E-003, 4.166664568298827E-002)]
_TWO_PI = f32(2.0 * np.pi)


def log(x):
    """log256_ps: ln x for float32 x > 0 (the mantissa in [sqrt(1/2), sqrt(2)) by a degree-9 polynomial)."""
    bits = np.maximum(x, np.array(0x00800000, np.int32).view(f32)).view(np.int32)   # no denormals
    e = ((bits >> 23) - 126).astype(f32)                                       # x = m 2^e, m in [0.5, 1)
    m = ((bits & ~0x7f800000) | np.array(0.5, f32).view(np.int32)).view(f32)
    small = m < _SQRT_HALF
    e = e - small.astype(f32)
    m = (m - f32(1)) + np.where(small, m, f32(0))                              # m - 1, or 2m - 1
    z = m * m
    y = np.full_like(m, _LOG_POLY[0])
    for coefficient in _LOG_POLY[1:]:
        y = fma(y, m, coefficient)
    y = fma(y * m, z, e * _LOG_Q1)
    y = y - z * f32(0.5)
    return (m + y) + e * _LOG_Q2


def sincos(x):
    """sincos256_ps: (sin x, cos x) for float32 x, reduced to [-pi/4, pi/4] by the octant j."""
    sin_negative = np.signbit(x)
    x = np.abs(x)
    j = (x * _FOUR_OVER_PI).astype(np.int32)                                   # truncation, as cvttps
    j = (j + 1) & ~1
    y = j.astype(f32)
    sin_negative ^= (j & 4) != 0
    cos_negative = (~(j - 2) & 4) != 0
    use_sin_poly = (j & 2) == 0
    x = (x + y * _DP1) + y * _DP2                                              # both products exact
    x = fma(y, _DP3, x)
    z = x * x
    cos_poly = fma(fma(_COS_POLY[0], z, _COS_POLY[1]), z, _COS_POLY[2])
    cos_poly = fma(cos_poly * z, z, -(z * f32(0.5))) + f32(1)
    sin_poly = fma(fma(_SIN_POLY[0], z, _SIN_POLY[1]), z, _SIN_POLY[2])
    sin_poly = fma(sin_poly * z, x, x)
    sin, cos = np.where(use_sin_poly, sin_poly, cos_poly), np.where(use_sin_poly, cos_poly, sin_poly)
    return np.where(sin_negative, -sin, sin), np.where(cos_negative, -cos, cos)


def normal_fill_16(uniforms, mean, std):
    """Blocks of 16 float32 uniforms in [0, 1) (a multiple of 16, flat) -> normals: in each block, element j and
    j + 8 (j < 8) become r cos(theta) and r sin(theta), r = sqrt(-2 ln(1 - u_j)), theta = 2 pi u_(j+8)."""
    blocks = uniforms.reshape(-1, 2, 8)
    radius = np.sqrt(f32(-2) * log(f32(1) - blocks[:, 0]))
    sin, cos = sincos(_TWO_PI * blocks[:, 1])
    normals = np.stack([radius * cos, radius * sin], axis=1).reshape(-1)
    if mean == 0:   # the fused n std + 0 rounds once, as n std does (+ 0 only turns -0 into 0, as the FMA does)
        return normals * f32(std) + f32(0)
    return fma(normals, f32(std), f32(mean))
