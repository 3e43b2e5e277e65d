// adamw.cu: one fused Adam / AdamW step over the n float32 elements of a parameter, updating p, m and v in place.
//
// NumPy twin: tinygrad_llm.optim.Adam._update (AdamW: decoupled = 1; Adam with L2 weight decay: decoupled = 0).
// Launcher:   tinygrad_llm/engine/cuda/adamw.py.
//
// The NumPy step makes about 14 passes over whole arrays (each `m *= b1`, `m += ...` reads and writes memory);
// here each element is read once (p, g, m, v) and written once (p, m, v): 7 floats of traffic per element.
//
// For step t, with bias_correction1 = 1 - beta1^t and bias_correction2 = 1 - beta2^t:
//     if weight_decay != 0:
//         AdamW (decoupled):  p = p · (1 - lr·weight_decay)          shrink the weight directly
//         Adam  (L2):         g = g + weight_decay · p               the L2 penalty's gradient
//     m = beta1·m + (1 - beta1)·g                                   running mean of g
//     v = beta2·v + (1 - beta2)·g·g                                 running mean of g²
//     p = p - (lr / bias_correction1)·m / (sqrt(v) / sqrt(bias_correction2) + eps)
// The same array operations in the same order as optim.py (which follows torch.optim); the scalars lr/bc1,
// sqrt(bc2) and 1 - lr·weight_decay are formed in float32 here, in float64 there, so the two agree to rounding.
//
// The host computes 1 - beta1, 1 - beta2 and the bias corrections in float64 and passes them rounded to float32,
// as NumPy does. Computed here from the float32 betas they would be wrong in the 5th digit: beta2 = 0.999 is stored
// as 0.99900001287, so 1 - beta2 in float32 is 0.00099998713, 1.3e-5 relative off 0.001 (cancellation).
// Results agree with the NumPy float32 step to rounding, not bit for bit: the compiler fuses a·b + c into one FMA
// (one rounding instead of two).
// There is no backward: this is not a differentiable op.
//
// Launch shape: 1-D blocks of 256 threads and a grid-stride loop (thread i handles i, i + total threads, ...);
// the launcher caps the grid at 4096 blocks. Each element is independent: no shared memory, no synchronization.

// p, m, v: n floats, read and written; g: n floats, read.
extern "C" __global__ void adamw_step(float* __restrict__ p, const float* __restrict__ g, float* __restrict__ m,
                                      float* __restrict__ v, float lr, float beta1, float beta2,
                                      float one_minus_beta1, float one_minus_beta2, float eps, float weight_decay,
                                      float bias_correction1, float bias_correction2, int decoupled, int n) {
    // The same for every element: computed once per thread, outside the loop.
    const float step_size = lr / bias_correction1;
    const float sqrt_bias_correction2 = sqrtf(bias_correction2);
    const float decay = 1.0f - lr * weight_decay;  // AdamW's shrink factor

    const long long stride = (long long)gridDim.x * blockDim.x;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        float param = p[i];
        float grad = g[i];
        if (weight_decay != 0.0f) {
            if (decoupled) param *= decay;
            else grad += weight_decay * param;
        }
        const float m_new = beta1 * m[i] + one_minus_beta1 * grad;
        const float v_new = beta2 * v[i] + one_minus_beta2 * grad * grad;
        const float denom = sqrtf(v_new) / sqrt_bias_correction2 + eps;
        param -= step_size * m_new / denom;
        p[i] = param;
        m[i] = m_new;
        v[i] = v_new;
    }
}
