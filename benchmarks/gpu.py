"""GPU speed: our fused attention kernels against the composed CuPy array code and PyTorch's SDPA, and a GPT training
step at the shakespeare-char preset against PyTorch eager. Needs a CUDA GPU, CuPy and PyTorch; prints the device.

Attention: D = 64, causal, T = 256 ... 2048 with B·T = 16k tokens and 32 heads (a 2048-wide model, as
FlashAttention's own benchmark). FLOPs counted as FlashAttention does: forward 4·B·H·T²·D, halved when causal;
backward 2.5× forward. Times are medians of CUDA-event timings after warmup.

    python benchmarks/gpu.py                  # everything
    python benchmarks/gpu.py --skip-gpt       # attention only
"""
import argparse
import os
import statistics
import sys

import numpy as np

import tinygrad_llm.engine.functional as F
from tinygrad_llm import Tensor
from tinygrad_llm.engine import backend, rng
from tinygrad_llm.engine.cuda import attention
from tinygrad_llm.models.gpt import GPT, GPTConfig
from tinygrad_llm.optim import AdamW
from tinygrad_llm.recipes.config import PRESETS

HEADS, HEAD_DIM, TOKENS = 32, 64, 16 * 1024


def gpu_median_ms(cupy, fn, repeats=20, warmup=3):
    """Median milliseconds of fn() on the GPU, timed with CUDA events around each call."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start, stop = cupy.cuda.Event(), cupy.cuda.Event()
        start.record()
        fn()
        stop.record()
        stop.synchronize()
        times.append(cupy.cuda.get_elapsed_time(start, stop))
    return statistics.median(times)


def attention_flops(B, T, causal=True):
    forward = 4 * B * HEADS * T * T * HEAD_DIM / (2 if causal else 1)
    return forward, 3.5 * forward  # forward, forward + backward


def bench_attention(cupy, torch):
    print(f"\nattention, D={HEAD_DIM}, causal, {HEADS} heads, B·T = {TOKENS} (TFLOP/s; higher is better)")
    print(f"{'T':>5} {'precision':>9} {'pass':>8} {'ours':>8} {'composed':>9} {'torch SDPA':>11} {'ours/torch':>10}")
    for T in (256, 512, 1024, 2048):
        B = TOKENS // T
        r = cupy.random.default_rng(0)
        q, k, v, d_o = (r.standard_normal((B, HEADS, T, HEAD_DIM), dtype=np.float32) for _ in range(4))
        fwd_flops, all_flops = attention_flops(B, T)
        for precision in ("fp32", "bf16"):
            def ours_forward():
                return attention.forward(q, k, v, True, None, precision)

            def ours_both():
                o, lse = attention.forward(q, k, v, True, None, precision)
                attention.backward(q, k, v, o, d_o, lse, True, None, precision)

            tq, tk, tv, tdo = (torch.as_tensor(a, device="cuda") for a in (q, k, v, d_o))
            if precision == "bf16":
                tq, tk, tv, tdo = (t.bfloat16() for t in (tq, tk, tv, tdo))
            tq, tk, tv = (t.requires_grad_() for t in (tq, tk, tv))

            def torch_forward():
                with torch.no_grad():
                    torch.nn.functional.scaled_dot_product_attention(tq, tk, tv, is_causal=True)

            def torch_both():
                out = torch.nn.functional.scaled_dot_product_attention(tq, tk, tv, is_causal=True)
                torch.autograd.grad(out, (tq, tk, tv), tdo)

            rows = {"fwd": (ours_forward, torch_forward, fwd_flops), "fwd+bwd": (ours_both, torch_both, all_flops)}
            for name, (ours_fn, torch_fn, flops) in rows.items():
                ours = flops / gpu_median_ms(cupy, ours_fn) / 1e9
                theirs = flops / gpu_median_ms(cupy, torch_fn) / 1e9
                composed = _composed_tflops(cupy, q, k, v, d_o, name, flops) if precision == "fp32" else float("nan")
                print(f"{T:>5} {precision:>9} {name:>8} {ours:8.1f} {composed:9.1f} {theirs:11.1f} {ours / theirs:9.2f}x")


def _composed_tflops(cupy, q, k, v, d_o, name, flops):
    """The composed twin of attention (primitive ops on CuPy arrays, the T×T matrix in memory), fp32."""
    tq, tk, tv = (Tensor(a, requires_grad=(name != "fwd")) for a in (q, k, v))

    def run():
        with F.fused(False):
            out = F.scaled_dot_product_attention(tq, tk, tv, is_causal=True)
        if name != "fwd":
            out.backward(d_o)

    try:
        return flops / gpu_median_ms(cupy, run, repeats=5) / 1e9
    except cupy.cuda.memory.OutOfMemoryError:
        return float("nan")


def bench_gpt(cupy, torch):
    preset = PRESETS["shakespeare-char"]
    config = GPTConfig(vocab_size=65, block_size=preset.block_size, n_layer=preset.n_layer, n_head=preset.n_head,
                       n_embd=preset.n_embd, dropout=0.0, bias=preset.bias)
    B, T = preset.batch_size, preset.block_size
    rng.manual_seed(0)
    model = GPT(config)
    sys.path.insert(0, os.path.dirname(__file__))
    from torch_gpt import torch_gpt_like
    reference = torch_gpt_like(model).cuda()
    model.to("cuda")
    optimizer = AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.99), weight_decay=0.1)
    torch_optimizer = torch.optim.AdamW(reference.parameters(), lr=1e-3, betas=(0.9, 0.99), weight_decay=0.1)
    data = np.random.default_rng(0)
    x, y = data.integers(0, 65, (2, B, T))
    tx, ty = torch.as_tensor(x, device="cuda"), torch.as_tensor(y, device="cuda")

    def ours():
        _, loss = model(x, y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    def theirs():
        _, loss = reference(tx, ty)
        torch_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch_optimizer.step()

    ours_ms, torch_ms = gpu_median_ms(cupy, ours), gpu_median_ms(cupy, theirs)
    print(f"\nGPT step, shakespeare-char preset (6/6/384, block {T}, batch {B}, dropout 0 in both), fp32:")
    print(f"ours {ours_ms:.1f} ms/iter, pytorch eager {torch_ms:.1f} ms/iter, ratio ours/pytorch "
          f"{ours_ms / torch_ms:.2f}x")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--skip-gpt", action="store_true")
    parser.add_argument("--skip-attention", action="store_true")
    args = parser.parse_args()
    backend.reuse_freed_memory()  # the trainer's allocator setting (engine/backend.py)
    if backend.mock_cuda_enabled():
        sys.exit(f"benchmarks/gpu.py times a real GPU; {backend.MOCK_ENV} is set, and the mock device runs kernels on "
                 f"the host, where timings mean nothing")
    cupy = backend.module_for("cuda")
    import torch
    props = cupy.cuda.runtime.getDeviceProperties(0)
    print(f"device: {props['name'].decode()}; CuPy {cupy.__version__}, torch {torch.__version__}")
    if not args.skip_attention:
        bench_attention(cupy, torch)
    if not args.skip_gpt:
        bench_gpt(cupy, torch)


if __name__ == "__main__":
    main()
