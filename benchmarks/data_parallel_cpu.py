"""Data parallelism on the CPU: tokens per second of a full training step (forward, backward, clip, AdamW) at one
global batch, for our engine in one process and on one MPI rank per core, beside PyTorch eager (one process, its
default threads) and PyTorch DDP (gloo, one rank per core).

Every configuration runs in processes of its own, and the configurations alternate for --rounds rounds, so that
all see the same machine noise and no thread pool spins beside another's work. Every rank limits its BLAS (or
PyTorch's) threads to its share of the cores. Each run starts from the same weights and trains on the same global
batches; each rank of a parallel run takes its rows of each batch, so all four make the same updates. Printed: the
median step and tokens/s of each configuration, its ratio to PyTorch eager, and each process's BLAS kernels.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/data_parallel_cpu.py
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/data_parallel_cpu.py --preset shakespeare-char \
        --steps 5 --warmup 2
"""
import argparse
import json
import os
import socket
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
CONFIGURATIONS = ("ours", "ours-ranks", "pytorch", "pytorch-ddp")


def worker(configuration, preset_name, warmup, steps):
    """Train `warmup + steps` steps as `configuration` says (this process is one rank of it, or all of it); rank 0
    prints one JSON line: its step times, the last loss, its BLAS pools."""
    sys.path.insert(0, HERE)
    from train_cpu import blas_info, build, time_steps

    from tinygrad_llm.engine import backend
    backend.reuse_freed_memory()  # the trainer's allocator setting (engine/backend.py), in every configuration
    preset, model = build(preset_name)
    rank, size = 0, 1
    if configuration.startswith("ours"):
        from tinygrad_llm import distributed
        from tinygrad_llm.optim import AdamW, clip_grad_norm_
        world = distributed.init()
        rank, size = world.rank, world.size
        world.broadcast_parameters(model.parameters())
        optimizer = AdamW(model.parameters(), lr=preset.learning_rate, betas=(preset.beta1, preset.beta2),
                          weight_decay=preset.weight_decay)

        def step(x, y):                                                      # (B, T) each: the global batch
            lo, hi = world.share(len(x))
            _, loss = model(x[lo:hi], y[lo:hi])
            optimizer.zero_grad()
            (loss * (size * (hi - lo) / len(x))).backward()
            world.average_gradients(model.parameters())
            clip_grad_norm_(model.parameters(), preset.grad_clip)
            optimizer.step()
            return loss.item()
    else:
        import torch
        from torch_gpt import torch_gpt_like
        reference = torch_gpt_like(model)  # our initial weights
        if configuration == "pytorch-ddp":
            import torch.distributed as dist
            rank, size = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
            torch.set_num_threads(max(1, len(os.sched_getaffinity(0)) // size))
            dist.init_process_group("gloo", rank=rank, world_size=size)
            reference = torch.nn.parallel.DistributedDataParallel(reference)
        torch_optimizer = torch.optim.AdamW(reference.parameters(), lr=preset.learning_rate,
                                            betas=(preset.beta1, preset.beta2), weight_decay=preset.weight_decay)

        def step(x, y):
            share = len(x) // size  # DDP averages the ranks' gradients: equal shares (--batch-size a multiple)
            lo, hi = rank * share, (rank + 1) * share
            _, loss = reference(torch.from_numpy(x[lo:hi]), torch.from_numpy(y[lo:hi]))
            torch_optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(reference.parameters(), preset.grad_clip)
            torch_optimizer.step()
            return loss.item()
    times, loss = time_steps(step, preset, warmup, steps)
    if rank == 0:
        print(json.dumps({"configuration": configuration, "times": times, "loss": loss,
                          "blas": blas_info()}), flush=True)


def launch(configuration, ranks, args):
    """Start one run of `configuration` (its processes), wait for it; rank 0's JSON result."""
    command = [sys.executable, __file__, "--worker", configuration, "--preset", args.preset, "--warmup",
               str(args.warmup), "--steps", str(args.steps)]
    if configuration == "ours-ranks":
        runs = [subprocess.Popen(["mpiexec", "-n", str(ranks), *command], stdout=subprocess.PIPE, text=True)]
    elif configuration == "pytorch-ddp":
        with socket.socket() as s:  # a free port for gloo's rendezvous
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        runs = [subprocess.Popen(command, stdout=subprocess.PIPE, text=True,
                                 env={**os.environ, "RANK": str(r), "WORLD_SIZE": str(ranks),
                                      "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}) for r in range(ranks)]
    else:
        runs = [subprocess.Popen(command, stdout=subprocess.PIPE, text=True)]
    outputs = [run.communicate()[0] for run in runs]
    if any(run.returncode for run in runs):
        sys.exit(f"the {configuration} run failed")
    return json.loads(outputs[0].strip().splitlines()[-1])


def main():
    from train_cpu import describe_pools  # this folder's own module: the script's folder is on sys.path
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="shakespeare-char-cpu")
    parser.add_argument("--rounds", type=int, default=3, help="runs per configuration, alternated")
    parser.add_argument("--steps", type=int, default=30, help="timed steps per run")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps first, per run")
    parser.add_argument("--ranks", type=int, default=len(os.sched_getaffinity(0)), help="ranks of the parallel "
                        "runs (default: one per core this process may use)")
    parser.add_argument("--worker", choices=CONFIGURATIONS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args.worker, args.preset, args.warmup, args.steps)

    from tinygrad_llm.recipes.config import PRESETS
    preset = PRESETS[args.preset]
    B, T = preset.batch_size, preset.block_size
    if B % args.ranks:
        sys.exit(f"--ranks {args.ranks} must divide the preset's batch of {B} (DDP's average needs equal shares)")
    print(f"preset {args.preset}: global batch {B} x {T} tokens; {args.ranks} ranks in the parallel runs; "
          f"{args.rounds} rounds x {args.steps} timed steps; cores {len(os.sched_getaffinity(0))}")
    for variable in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
        print(f"  {variable}: {os.environ.get(variable, 'unset')}")
    times = {c: [] for c in CONFIGURATIONS}
    for r in range(args.rounds):
        line = []
        for configuration in CONFIGURATIONS:
            result = launch(configuration, args.ranks, args)
            times[configuration] += result["times"]
            line.append(f"{configuration} {1000 * statistics.median(result['times']):.1f} ms")
            if r == 0:
                pools = describe_pools(result["blas"])
                print(f"  {configuration} (rank 0): {pools}; loss after {args.warmup + args.steps} steps "
                      f"{result['loss']:.6f}")
        print(f"round {r + 1}: " + ", ".join(line))
    eager = statistics.median(times["pytorch"])
    for configuration, t in times.items():
        median = statistics.median(t)
        print(f"{configuration:12s} {1000 * median:7.1f} ms/step  {B * T / median:9.0f} tokens/s  "
              f"{eager / median:5.2f}x PyTorch eager's tokens/s  (median of {len(t)})")


if __name__ == "__main__":
    main()
