"""What the tools for looking inside cost: ms per training step of the CPU preset with every tool off (this tree),
the same in a tree from before the engine had its observer hooks (--before), and with tl.profile or
tl.detect_anomaly on.

The protocol of train_cpu.py: each configuration runs in a process of its own, the processes alternate for
--rounds rounds, every process builds the same model from the same seed and trains on the same batches, times
--steps steps after --warmup untimed ones and reports its BLAS kernels. Printed: each configuration's median step
over all its timed steps, and its ratio to "off"; and, where Python is all the cost, the fastest of 40 forward and
backward passes through a chain of 3,000 ops on (2, 2) arrays (the per-op price of the hooks' checks).

    git archive <commit before the hooks> | tar -x -C /tmp/before
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/tools_overhead.py --before /tmp/before
"""
import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
CONFIGS = ("off", "before", "profile", "anomaly")


def worker(config, preset_name, warmup, steps):
    """Train `warmup + steps` steps in one configuration; print one JSON line: the step times and the BLAS info."""
    sys.path.insert(0, HERE)
    from train_cpu import blas_info, build, time_steps  # the same model, batches and timing as the speed benchmark

    from tinygrad_llm.engine import backend
    from tinygrad_llm.optim import AdamW
    preset, model = build(preset_name)
    backend.reuse_freed_memory()  # the trainer's allocator setting (engine/backend.py), in every configuration
    optimizer = AdamW(model.parameters(), lr=preset.learning_rate, betas=(preset.beta1, preset.beta2),
                      weight_decay=preset.weight_decay)
    if config == "profile":
        from tinygrad_llm.tools.profiler import profile as tool
    elif config == "anomaly":
        from tinygrad_llm.tools.anomaly import detect_anomaly as tool
    else:   # off and before: the same empty `with`, so that only the tool differs
        tool = contextlib.nullcontext

    def step(x, y):
        with tool():
            _, loss = model(x, y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        return loss.item()

    times, loss = time_steps(step, preset, warmup, steps)
    chain = min(forward + backward for forward, backward in chain_times())
    print(json.dumps({"times": times, "loss": loss, "chain": chain, "blas": blas_info()}))


def chain_times(engine="ours", dtype="float64", ops=3000, repeats=40):
    """(forward, backward) seconds of each of `repeats` passes through a chain of `ops` multiplications of a (2, 2)
    tensor, y = y * 1.0001, then y.sum().backward(), with no tool on; engine "ours" or "pytorch"."""
    import numpy as np
    if engine == "ours":
        from tinygrad_llm.engine.tensor import Tensor as tensor
    else:
        from torch import tensor
    times = []
    for _ in range(repeats):
        y = tensor(np.ones((2, 2), dtype), requires_grad=True)
        start = time.perf_counter()
        for _ in range(ops):
            y = y * 1.0001
        middle = time.perf_counter()
        y.sum().backward()
        times.append((middle - start, time.perf_counter() - middle))
    return times


def run_worker(config, args):
    tree = args.before if config == "before" else os.path.dirname(HERE)
    command = [sys.executable, os.path.abspath(__file__), "--worker", config, "--preset", args.preset,
               "--warmup", str(args.warmup), "--steps", str(args.steps)]
    # the tree's own package first on the path: "before" imports the engine from before the hooks
    done = subprocess.run(command, capture_output=True, text=True, cwd=tree, env={**os.environ, "PYTHONPATH": tree},
                          check=False)
    if done.returncode != 0:
        sys.exit(f"the {config} process failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main():
    from train_cpu import describe_pools  # this folder's own module: the script's folder is on sys.path
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="shakespeare-char-cpu")
    parser.add_argument("--before", help="a checkout from before the observer hooks (else that row is left out)")
    parser.add_argument("--rounds", type=int, default=5, help="processes per configuration, alternated (default 5)")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per process (default 20)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps first, per process (default 5)")
    parser.add_argument("--worker", choices=CONFIGS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args.worker, args.preset, args.warmup, args.steps)

    configs = [c for c in CONFIGS if c != "before" or args.before]
    print(f"preset {args.preset}; {args.rounds} rounds x {args.steps} timed steps per configuration, one process "
          f"each, alternated; before: {args.before or 'not given'}")
    for variable in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
        print(f"  {variable}: {os.environ.get(variable, 'unset')}")
    times = {config: [] for config in configs}
    chains = {config: [] for config in configs}
    for r in range(args.rounds):
        medians = {}
        for config in configs:
            result = run_worker(config, args)
            times[config] += result["times"]
            chains[config].append(result["chain"])
            medians[config] = 1000 * statistics.median(result["times"])
            if r == 0:
                pools = describe_pools(result["blas"])
                print(f"  {config} process: {pools}; loss after {args.warmup + args.steps} steps {result['loss']:.6f}")
        print(f"round {r + 1}: " + ", ".join(f"{c} {m:.1f} ms" for c, m in medians.items()))
    off = statistics.median(times["off"])
    for config, t in times.items():
        print(f"{config:8s} {1000 * statistics.median(t):7.1f} ms/step  {statistics.median(t) / off:5.2f}x off  "
              f"(median of {len(t)});  3,000-op chain, no tool on: {1000 * min(chains[config]):.2f} ms (fastest)")


if __name__ == "__main__":
    main()
