"""FlashAttention-2, tile by tile, in plain NumPy: the CPU twin of kernels/attention.cu.

Read this before the CUDA file. It runs the same loops as the kernels (over the kernels' tiles when given their
sizes, block_m = block_n = 32 for D <= 64 and 16 for D = 128, as the tests do; the defaults here are 64), so every
step here has a counterpart there (named in the comments), and the tests (tests/test_attention_tiles.py) prove that
these loops give exactly the attention of engine.functional, forward and backward. What the kernels add on top is only
*who* computes each number (threads, warps, tensor cores), not *which* numbers are computed.

Shapes (llm.c-style legend):
    BH      batch · heads: independent attention problems; the kernels put one on each blockIdx.y
    T       sequence length (queries = keys = T)
    D       head dim
    q, k, v, o, d_o, dq, dk, dv   (BH, T, D);   lse, delta   (BH, T)
    block_m, block_n   rows of a query tile / of a key-value tile
    i, j    absolute query / key row;  i0, j0 the first row of a tile;  r, c a row inside a tile

Forward: O = softmax(s·Q Kᵀ + mask) V, never holding the (T, T) scores: for each query tile, walk the key/value
tiles it may see, keeping per row the running max m and the running sum l of exp(S - m) (the online softmax), and
rescaling the output accumulator by α = exp(m_old - m_new) whenever the max grows. Also returns
LSE = m + log(l), the log of each row's softmax denominator, which is all the backward needs to recompute P.

Backward: for each key/value tile, walk the query tiles that can see it; recompute P = exp(s·Q Kᵀ - LSE), then
    dV += Pᵀ dO,   dP = dO Vᵀ,   dS = P ∘ (dP - D),   dK += s·dSᵀ Q,   dQ += s·dS K,
with D = rowsum(dO ∘ O) (= rowsum(P ∘ dP)) computed once beforehand. Derivation: docs/attention.md.
"""
import numpy as np

# ---------------------------------------------------------------- the pieces every kernel shares

def load_tile(x, row0, rows):
    """Rows row0 .. row0+rows-1 of x (T, D), zero-padded past the end: the tile as a kernel stages it in shared
    memory (load_tile_f32 / load_tile_bf16). The padding rows are masked out of every result below."""
    tile = np.zeros((rows,) + x.shape[1:], dtype=x.dtype)
    real = x[row0:row0 + rows]
    tile[:len(real)] = real
    return tile


def visible(i0, j0, block_m, block_n, T, causal):
    """(block_m, block_n) booleans: may query row i = i0 + r attend to key row j = j0 + c? (the kernels' `visible`)
    Never for a padding row or key (past T); with a causal mask only for j <= i."""
    i = i0 + np.arange(block_m)[:, None]
    j = j0 + np.arange(block_n)[None, :]
    ok = (i < T) & (j < T)
    return ok & (j <= i) if causal else ok


def kv_end(i0, block_m, T, causal):
    """One past the last key any row of the query tile at i0 may see: all T, or (causal) the tile's last row + 1."""
    return min(T, i0 + block_m) if causal else T


def first_query_tile(j0, block_m, causal):
    """The first row of the first query tile that can see the key tile at j0: 0, or (causal) the tile holding j0."""
    return j0 // block_m * block_m if causal else 0


# ---------------------------------------------------------------- forward

def flash_forward_head(q, k, v, causal, scale, block_m=64, block_n=64):
    """One head: q, k, v (T, D) -> o (T, D), lse (T,). Grid: one iteration of the outer loop per thread block."""
    T, D = q.shape
    o, lse = np.empty_like(q), np.empty(T, dtype=q.dtype)
    for i0 in range(0, T, block_m):                               # blockIdx.x: one query tile per block
        q_tile = load_tile(q, i0, block_m)                        # q_s
        m = np.full(block_m, -np.inf, dtype=q.dtype)              # m_s: running row max
        l = np.zeros(block_m, dtype=q.dtype)                      # l_s: running sum of exp(S - m)
        acc = np.zeros((block_m, D), dtype=q.dtype)               # unnormalised O (registers / o_s)
        for j0 in range(0, kv_end(i0, block_m, T, causal), block_n):
            k_tile, v_tile = load_tile(k, j0, block_n), load_tile(v, j0, block_n)   # k_s, v_s
            # 1. scores of the tile, -inf where not visible
            s = np.where(visible(i0, j0, block_m, block_n, T, causal), scale * (q_tile @ k_tile.T), -np.inf)
            # 2. online softmax: new max, P = exp(S - m'), α = exp(m - m'), l' = α l + rowsum P
            m_new = np.maximum(m, s.max(axis=1))
            m_ref = np.where(m_new == -np.inf, 0, m_new)          # rows with nothing visible yet: padding only
            p = np.exp(s - m_ref[:, None])
            alpha = np.exp(m - m_ref)
            l = alpha * l + p.sum(axis=1)
            m = m_new
            # 3. O ← α O + P V
            acc = alpha[:, None] * acc + p @ v_tile
        rows = slice(i0, min(i0 + block_m, T))                    # only the real rows are written
        real = rows.stop - rows.start
        o[rows] = acc[:real] / l[:real, None]                    # every real row sees key 0, so l > 0
        lse[rows] = m[:real] + np.log(l[:real])
    return o, lse


def flash_forward(q, k, v, causal, scale, block_m=64, block_n=64):
    """q, k, v (BH, T, D) -> o (BH, T, D), lse (BH, T). Heads are independent: blockIdx.y."""
    _check(q, k, v)
    o, lse = np.empty_like(q), np.empty(q.shape[:2], dtype=q.dtype)
    for h in range(q.shape[0]):
        o[h], lse[h] = flash_forward_head(q[h], k[h], v[h], causal, scale, block_m, block_n)
    return o, lse


# ---------------------------------------------------------------- backward

def backward_preprocess(o, d_o):
    """D = rowsum(dO ∘ O), (BH, T): attention_backward_preprocess_*. Equal to rowsum(P ∘ dP), without needing P."""
    return (d_o * o).sum(axis=-1)


def flash_backward_head(q, k, v, d_o, lse, delta, causal, scale, block_m=64, block_n=64):
    """One head: (T, D) inputs, lse and delta (T,) -> dq, dk, dv (T, D)."""
    T, D = q.shape
    dq = np.zeros_like(q)                                         # the launcher zero-fills dq: blocks add into it
    dk, dv = np.empty_like(k), np.empty_like(v)
    for j0 in range(0, T, block_n):                               # blockIdx.x: one key/value tile per block
        k_tile, v_tile = load_tile(k, j0, block_n), load_tile(v, j0, block_n)       # k_s, v_s
        dk_acc = np.zeros((block_n, D), dtype=q.dtype)            # registers (fp32) / fragments (bf16)
        dv_acc = np.zeros((block_n, D), dtype=q.dtype)
        for i0 in range(first_query_tile(j0, block_m, causal), T, block_m):
            q_tile, do_tile = load_tile(q, i0, block_m), load_tile(d_o, i0, block_m)  # q_s, do_s
            lse_tile, delta_tile = load_tile(lse, i0, block_m), load_tile(delta, i0, block_m)  # 0 past T
            # A. P recomputed from LSE (0 where not visible), dP = dO Vᵀ, dS = P ∘ (dP - D)
            s = scale * (q_tile @ k_tile.T)
            p = np.exp(np.where(visible(i0, j0, block_m, block_n, T, causal), s - lse_tile[:, None], -np.inf))
            dp = do_tile @ v_tile.T
            ds = p * (dp - delta_tile[:, None])
            # B. dV += Pᵀ dO, dK += dSᵀ Q (the factor s of dK comes once, at the end)
            dv_acc += p.T @ do_tile
            dk_acc += ds.T @ q_tile
            # C. dQ += s dS K for the real rows of the query tile (atomicAdd in the kernel: every key tile adds)
            real = min(i0 + block_m, T) - i0
            dq[i0:i0 + real] += (scale * (ds @ k_tile))[:real]
        real = min(j0 + block_n, T) - j0
        dk[j0:j0 + real] = scale * dk_acc[:real]
        dv[j0:j0 + real] = dv_acc[:real]
    return dq, dk, dv


def flash_backward(q, k, v, o, d_o, lse, causal, scale, block_m=64, block_n=64):
    """(BH, T, D) q, k, v, o, d_o and lse (BH, T) from flash_forward -> dq, dk, dv (BH, T, D)."""
    _check(q, k, v, o, d_o)
    delta = backward_preprocess(o, d_o)                           # first kernel launch
    grads = [np.empty_like(x) for x in (q, k, v)]
    for h in range(q.shape[0]):                                   # second launch, blockIdx.y = h
        for g, x in zip(grads, flash_backward_head(q[h], k[h], v[h], d_o[h], lse[h], delta[h], causal, scale,
                                                   block_m, block_n)):
            g[h] = x
    return tuple(grads)


def _check(q, *others):
    if q.ndim != 3 or any(x.shape != q.shape for x in others):
        raise ValueError(f"scaled_dot_product_attention (tile twin): expected arrays of one shape (BH, T, D), "
                         f"got {[q.shape] + [x.shape for x in others]}")
