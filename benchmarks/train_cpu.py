"""Training speed on the CPU: ms/iter and tokens/s of our GPT, and of the same model in PyTorch eager.

Both models start from the same weights and see the same batches. The two alternate in rounds of --round steps
(ours ×10, torch ×10, ours ×10, ...) so that both see the same machine noise, while neither's idle thread pool
(OpenBLAS's, OpenMP's, which spin for a while after each call) competes with the other's step. Medians are
reported, and the ratio ours/PyTorch (< 1 means we are faster).

    python benchmarks/train_cpu.py                       # the shakespeare-char-cpu preset, 50 timed steps
    python benchmarks/train_cpu.py --steps 20 --preset shakespeare-char
"""
import argparse
import os
import statistics
import sys
import time

import numpy as np

from tinygrad_llm.engine import backend, rng
from tinygrad_llm.models.gpt import GPT, GPTConfig
from tinygrad_llm.optim import AdamW
from tinygrad_llm.recipes.config import PRESETS


def our_step(model, optimizer, x, y):
    _, loss = model(x, y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()


def torch_step(torch, model, optimizer, x, y):
    _, loss = model(torch.from_numpy(x), torch.from_numpy(y))
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.item()


def main():
    backend.reuse_freed_memory()  # see its docstring; PyTorch, in the same process, benefits as much
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="shakespeare-char-cpu", choices=sorted(PRESETS))
    parser.add_argument("--steps", type=int, default=50, help="timed steps per framework")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps first")
    parser.add_argument("--round", type=int, default=10, help="steps of one framework before switching")
    parser.add_argument("--no-torch", action="store_true", help="time ours only")
    args = parser.parse_args()

    preset = PRESETS[args.preset]
    config = GPTConfig(vocab_size=65, block_size=preset.block_size, n_layer=preset.n_layer, n_head=preset.n_head,
                       n_embd=preset.n_embd, dropout=0.0, bias=preset.bias)
    B, T = preset.batch_size, preset.block_size
    rng.manual_seed(0)
    model = GPT(config)
    optimizer = AdamW(model.parameters(), lr=preset.learning_rate, betas=(preset.beta1, preset.beta2),
                      weight_decay=preset.weight_decay)
    data = np.random.default_rng(0)
    batches = [data.integers(0, config.vocab_size, (2, B, T)) for _ in range(args.warmup + args.steps)]

    torch = None
    if not args.no_torch:
        try:
            import torch
        except ImportError:
            print("torch is not installed: timing ours only")
    if torch is not None:
        sys.path.insert(0, os.path.dirname(__file__))
        from torch_gpt import torch_gpt_like
        reference = torch_gpt_like(model)
        torch_optimizer = torch.optim.AdamW(reference.parameters(), lr=preset.learning_rate,
                                            betas=(preset.beta1, preset.beta2), weight_decay=preset.weight_decay)

    print(f"preset {args.preset}: n_layer {config.n_layer}, n_head {config.n_head}, n_embd {config.n_embd}, "
          f"block {T}, batch {B}; {model.num_params() / 1e6:.2f}M parameters; numpy {np.__version__}"
          + (f", torch {torch.__version__} ({torch.get_num_threads()} threads)" if torch is not None else "")
          # OpenBLAS's kernels set our matmul speed: a pinned OPENBLAS_CORETYPE may hide AVX-512 (RESULTS.md)
          + f"; OPENBLAS_CORETYPE {os.environ.get('OPENBLAS_CORETYPE', 'unset (OpenBLAS chooses)')}")
    ours, theirs = [], []
    for first in range(0, len(batches), args.round):
        for x, y in batches[first:first + args.round]:
            start = time.perf_counter()
            loss = our_step(model, optimizer, x, y)
            ours.append(time.perf_counter() - start)
        if torch is None:
            continue
        for x, y in batches[first:first + args.round]:
            start = time.perf_counter()
            torch_loss = torch_step(torch, reference, torch_optimizer, x, y)
            theirs.append(time.perf_counter() - start)
        if first == 0:
            print(f"loss after {min(args.round, len(batches))} steps: ours {loss:.6f}, torch {torch_loss:.6f}")
    ours_ms = 1000 * statistics.median(ours[args.warmup:])
    print(f"ours:    {ours_ms:7.1f} ms/iter  {B * T / ours_ms * 1000:9.0f} tokens/s  (median of {args.steps})")
    if torch is not None:
        torch_ms = 1000 * statistics.median(theirs[args.warmup:])
        print(f"pytorch: {torch_ms:7.1f} ms/iter  {B * T / torch_ms * 1000:9.0f} tokens/s  (median of {args.steps})")
        print(f"ratio ours/pytorch: {ours_ms / torch_ms:.2f}x")


if __name__ == "__main__":
    main()
