"""Fused multiply-add in NumPy: a * b + c with one rounding, as the FMA instruction computes it, in float32 and
float64. PyTorch's CPU kernels are compiled for AVX2 with FMA, and the compiler fuses a multiplication into the
addition that follows it (in uniform_'s x (to - from) + from, in normal_'s x std + mean, ...): to give PyTorch's
numbers bit for bit, rng.py and avx_mathfun.py compute those steps with these functions.
"""
import numpy as np

_BELOW_FLOAT32 = np.uint64(0x1FFFFFFF)     # the 29 bits of a float64's mantissa that float32 drops
_FLOAT32_HALFWAY = np.uint64(0x10000000)  # those bits when the float64 lies exactly halfway between two float32


def fma32(a, b, c):
    """float32 a * b + c, one rounding. a * b is exact in float64 (24 + 24 bits); rounding the sum to float64 and
    then to float32 rounds it once correctly, except where the float64 sum lands exactly halfway between two
    float32 numbers without being exact: there the sum's error (TwoSum) says which way the exact value lies."""
    total = np.asarray(np.multiply(a, b, dtype=np.float64))
    total += c
    result = total.astype(np.float32)
    halfway = (total.view(np.uint64) & _BELOW_FLOAT32) == _FLOAT32_HALFWAY
    if halfway.any():
        s = total[halfway]
        product = np.multiply(*(np.broadcast_to(v, total.shape)[halfway] for v in (a, b)), dtype=np.float64)
        error = _two_sum_error(product, np.broadcast_to(c, total.shape)[halfway].astype(np.float64), s)
        result[halfway] = _to_odd(s, error).astype(np.float32)
    return result


def fma64(a, b, c):
    """float64 a * b + c, one rounding (Boldo and Melquiond's emulation: the product split exactly in two, the sum
    of the small parts rounded to odd, so that the last rounding is the only one that counts)."""
    a, b, c = np.asarray(a, np.float64), np.asarray(b, np.float64), np.asarray(c, np.float64)
    high, low = _two_product(a, b)                  # a * b = high + low exactly
    total = c + high
    rest = _two_sum_error(c, high, total)            # c + high = total + rest exactly
    small = rest + low
    return total + _to_odd(small, _two_sum_error(rest, low, small))


def _two_sum_error(a, b, total):
    """The rounding error of total = a + b (exact: a + b = total + error)."""
    b_part = total - a
    return (a - (total - b_part)) + (b - b_part)


def _two_product(a, b):
    """a * b = high + low exactly (Dekker: each factor split into halves of 26 bits)."""
    high = a * b
    a_hi, a_lo = _split(a)
    b_hi, b_lo = _split(b)
    return high, ((a_hi * b_hi - high) + a_hi * b_lo + a_lo * b_hi) + a_lo * b_lo


def _split(x):
    t = 134217729.0 * x                              # 2^27 + 1
    high = t - (t - x)
    return high, x - high


def _to_odd(rounded, error):
    """The value rounded to odd, from its round-to-nearest and the error: where inexact and even, the neighbour on
    the exact value's side (which is odd)."""
    bits = np.asarray(rounded, np.float64).view(np.int64)
    step = np.where((error == 0) | (bits & 1 == 1), 0, np.where((error > 0) == (rounded > 0), 1, -1))
    return (bits + step).view(np.float64)
