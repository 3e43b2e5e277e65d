"""Training speed on the CPU: ms per training step of our GPT and of the same model in PyTorch eager.

Each engine runs in a process of its own, and the processes alternate (ours, PyTorch, ours, PyTorch, ...) for
--rounds rounds, so that both see the same machine noise while neither's thread pool (OpenBLAS's and PyTorch's spin
for a while after each call) slows the other down. Every process builds the model from the same seed (PyTorch's
copies our initial weights), trains on the same batches, times --steps steps after --warmup untimed ones, and reports
which BLAS kernels it runs (threadpoolctl). Printed: the median step of each engine over all its timed steps, the
ratio of the medians (< 1: we are faster) and each round's ratio.

OPENBLAS_CORETYPE pins OpenBLAS's kernels (some machines set it); unset it, and OPENBLAS_L2_SIZE, for the run:

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/train_cpu.py             # shakespeare-char-cpu
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/train_cpu.py --preset shakespeare-char --steps 10
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import replace

import numpy as np

from tinygrad_llm import nn
from tinygrad_llm.engine import backend, rng
from tinygrad_llm.models.gpt import GPT, GPTConfig
from tinygrad_llm.optim import AdamW, clip_grad_norm_
from tinygrad_llm.recipes.config import PRESETS

ENGINES = ("ours", "pytorch")
VOCAB_SIZE = 65   # Tiny Shakespeare's characters


def build(preset_name, vocab_size=VOCAB_SIZE, quick_init=False, **shape):
    """The preset, with the fields in `shape` changed (n_layer=12, batch_size=2, ...), and our model at its shape,
    from seed 0, without dropout. quick_init: every matrix drawn from N(0, 0.02) by NumPy's generator, the layer
    norms' gains 1 and the biases 0 (GPT-2's initialisation but for the residual projections' smaller spread),
    where the engine's generator, which draws PyTorch's numbers, takes seconds for a model of GPT-2's size."""
    preset = replace(PRESETS[preset_name], **shape)
    config = GPTConfig(vocab_size=vocab_size, block_size=preset.block_size, n_layer=preset.n_layer,
                       n_head=preset.n_head, n_embd=preset.n_embd, dropout=0.0, bias=preset.bias)
    rng.manual_seed(0)
    if not quick_init:
        return preset, GPT(config)
    with nn.skip_init():
        model = GPT(config)
    draws = np.random.default_rng(0)
    for p in model.parameters():
        if p.ndim == 2:
            p.data[...] = 0.02 * draws.standard_normal(p.shape, np.float32)
    return preset, model


def batches(preset, n, vocab_size=VOCAB_SIZE):
    """The (x, y) token batches of n steps, the same in every process."""
    data = np.random.default_rng(0)
    return [data.integers(0, vocab_size, (2, preset.batch_size, preset.block_size)) for _ in range(n)]


def blas_info():
    """What threadpoolctl sees in this process: library, version, kernel (OpenBLAS's architecture), threads."""
    from threadpoolctl import threadpool_info
    return [{key: pool.get(key) for key in ("internal_api", "version", "architecture", "num_threads")}
            for pool in threadpool_info()]


def describe_pools(blas):
    """blas_info's pools in a line: "openblas 0.3.31 SkylakeX 2 threads; ..."."""
    return "; ".join(" ".join(str(p[key]) for key in ("internal_api", "version", "architecture") if p[key])
                     + f" {p['num_threads']} threads" for p in blas)


def training_step(engine, preset, model, clip=False):
    """One training step of `model` (engine "ours") or of PyTorch's copy of it ("pytorch"), as a function
    step(x, y) -> the loss: forward, backward, clip_grad_norm_(preset.grad_clip) where `clip`, AdamW's step."""
    if engine == "ours":
        optimizer = AdamW(model.parameters(), lr=preset.learning_rate, betas=(preset.beta1, preset.beta2),
                          weight_decay=preset.weight_decay)

        def step(x, y):
            _, loss = model(x, y)
            optimizer.zero_grad()
            loss.backward()
            if clip:
                clip_grad_norm_(model.parameters(), preset.grad_clip)
            optimizer.step()
            return loss.item()
        return step
    import torch
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from torch_gpt import torch_gpt_like
    reference = torch_gpt_like(model)  # our initial weights
    torch_optimizer = torch.optim.AdamW(reference.parameters(), lr=preset.learning_rate,
                                        betas=(preset.beta1, preset.beta2), weight_decay=preset.weight_decay)

    def step(x, y):
        _, loss = reference(torch.from_numpy(x), torch.from_numpy(y))
        torch_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if clip:
            torch.nn.utils.clip_grad_norm_(reference.parameters(), preset.grad_clip)
        torch_optimizer.step()
        return loss.item()
    return step


def worker(engine, preset_name, warmup, steps):
    """Train `steps + warmup` steps with one engine; print one JSON line: step times, the last loss, BLAS info."""
    backend.reuse_freed_memory()  # the trainer's allocator setting (engine/backend.py), in both engines' processes
    preset, model = build(preset_name)
    times, loss = time_steps(training_step(engine, preset, model), preset, warmup, steps)
    print(json.dumps({"engine": engine, "times": times, "loss": loss, "blas": blas_info()}))


def time_steps(step, preset, warmup, steps, vocab_size=VOCAB_SIZE):
    """Run step(x, y) on the batches of `warmup + steps` steps; returns (the timed steps' seconds, the last loss)."""
    times = []
    for x, y in batches(preset, warmup + steps, vocab_size):
        start = time.perf_counter()
        loss = step(x, y)
        times.append(time.perf_counter() - start)
    return times[warmup:], loss


def run_worker(engine, args):
    command = [sys.executable, __file__, "--worker", engine, "--preset", args.preset, "--warmup", str(args.warmup),
               "--steps", str(args.steps)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"the {engine} process failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="shakespeare-char-cpu", choices=sorted(PRESETS))
    parser.add_argument("--rounds", type=int, default=3, help="processes per engine, alternated (default 3)")
    parser.add_argument("--steps", type=int, default=30, help="timed steps per process (default 30)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps first, per process (default 5)")
    parser.add_argument("--no-torch", action="store_true", help="time ours only")
    parser.add_argument("--worker", choices=ENGINES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args.worker, args.preset, args.warmup, args.steps)

    engines = ENGINES[:1] if args.no_torch else ENGINES
    preset = PRESETS[args.preset]
    print(f"preset {args.preset}: n_layer {preset.n_layer}, n_head {preset.n_head}, n_embd {preset.n_embd}, "
          f"block {preset.block_size}, batch {preset.batch_size}; numpy {np.__version__}; "
          f"{args.rounds} rounds x {args.steps} timed steps per engine, one process each, alternated")
    for variable in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
        print(f"  {variable}: {os.environ.get(variable, 'unset')}")
    times = {engine: [] for engine in engines}
    round_medians = []
    for r in range(args.rounds):
        medians = {}
        for engine in engines:
            result = run_worker(engine, args)
            times[engine] += result["times"]
            medians[engine] = 1000 * statistics.median(result["times"])
            if r == 0:
                print(f"  {engine} process: {describe_pools(result['blas'])}; loss after "
                      f"{args.warmup + args.steps} steps {result['loss']:.6f}")
        round_medians.append(medians)
        print(f"round {r + 1}: " + ", ".join(f"{e} {m:.1f} ms" for e, m in medians.items())
              + (f", ratio {medians['ours'] / medians['pytorch']:.2f}x" if len(medians) == 2 else ""))
    B, T = preset.batch_size, preset.block_size
    overall = {engine: 1000 * statistics.median(t) for engine, t in times.items()}
    for engine, ms in overall.items():
        print(f"{engine:8s} {ms:7.1f} ms/iter  {B * T / ms * 1000:9.0f} tokens/s  (median of {len(times[engine])})")
    if len(overall) == 2:
        print(f"ratio ours/pytorch: {overall['ours'] / overall['pytorch']:.2f}x (rounds: "
              + ", ".join(f"{m['ours'] / m['pytorch']:.2f}" for m in round_medians) + ")")


if __name__ == "__main__":
    main()
