// adamw.cu: one fused Adam / AdamW step over the n float32 elements of a parameter, updating p, m and v in place.
//
//   if weight_decay != 0:   AdamW (decoupled = 1): p = p·(1 - lr·wd);   Adam (L2, decoupled = 0): g = g + wd·p
//   m = β1·m + (1 - β1)·g;   v = β2·v + (1 - β2)·g²;   p = p - (lr / bc1)·m / (sqrt(v) / sqrt(bc2) + eps)
// with bc1 = 1 - β1^t and bc2 = 1 - β2^t; the host computes them, 1 - β1 and 1 - β2 in float64. Each element is read
// once (p, g, m, v) and written once (p, m, v). The update in torch.optim's order, why those constants come from the
// host, and why the result matches the NumPy step to rounding, not bit for bit: docs/adamw.md. No backward: an
// optimizer step is not part of the graph.
// NumPy twin: tinygrad_llm.optim.optimizers.Adam._update.   Launcher: tinygrad_llm/engine/cuda/adamw.py.
//
// Launch shape: blocks of 256 threads and a grid-stride loop (thread i handles i, i + total threads, ...); the
// launcher caps the grid at 4096 blocks. Elements are independent: no shared memory, no synchronization.

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
