"""Training speed on the CPU at five model sizes, ours against PyTorch eager, and the cost of one op in Python.

At each size, train_cpu.py's protocol: each engine runs in a process of its own, the processes alternate (ours,
PyTorch, ours, ...) for --rounds rounds, and every process builds the same model from the same seed (its matrices
drawn by NumPy: train_cpu.build's quick_init; PyTorch's copy takes our weights), trains on the same batches and
times --steps steps after --warmup untimed ones. A step is forward, backward, clip_grad_norm_(1.0) and AdamW's
step, in float32, without dropout. Every process makes the trainer's allocator setting and reports the load average
when it started, its thread pools (threadpoolctl: OpenBLAS's kernel and threads) and the threads of the engine's own
passes (ours: engine/threads.py's get_num_threads(); PyTorch's: torch.get_num_threads()). --blas-on-pool runs ours
with engine/threads.py's set_blas_on_pool(True): BLAS at one thread, the matmuls cut over the engine's own pool.

Printed per size: each engine's median step over all its timed steps, the ratio ours/PyTorch of those medians and
of each round's, each engine's loss after its last step (the two must agree: else the engines do not compute the
same thing, and the run ends with an error), and the share of the sgemm limit each engine reaches: the step's
matmul FLOPs per second of its median step, over the best float32 matmul rate that a NumPy process of its own
(the same threads) measures at the start of the run, on each size's (B·T, C) x (C, 4C) product. Those processes
also time a step's products with the weights (each linear layer's x Wᵀ, g W and gᵀ x, and the lm head's), and so
do PyTorch's (its own BLAS, not NumPy's OpenBLAS), alternated with NumPy's; they give each size's sgemm floor: the
ratio ours/PyTorch that the two libraries' matrix products alone would leave, were every other op as fast as
PyTorch's (PyTorch's step, its products with the weights taking NumPy's time instead of its own). A step's
matmul FLOPs, forward and backward, from the shapes (V vocabulary, C = n_embd, T block, B batch):

    6 · N · B·T  +  12 · n_layer · B · T² · C,    N = n_layer · 12 · C² + V · C

N counts the weights of the matrix products (per block c_attn 3C², its c_proj C², c_fc 4C², the MLP's c_proj 4C²;
the lm head V·C), each 2 FLOPs per token forward and 4 backward (its input's gradient and its weight's). Attention's
QKᵀ and PV cost 2·T²·C a sequence and block each forward, twice that backward, counted whole as our engine computes
them (PyTorch's fused CPU kernel skips the key blocks past the causal diagonal).

Then the per-op chain: forward, and backward, of 1,000 multiplications of a (2, 2) float32 tensor (y = y * 1.0001;
the backward from y.sum()), the fastest of --chain-repeats in each process, the processes alternated as above;
printed in µs per op, with the ratio ours/PyTorch.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/scale_cpu.py
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/scale_cpu.py --sizes 2,shakespeare-char --rounds 5
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/scale_cpu.py --blas-on-pool
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections import namedtuple

HERE = os.path.dirname(os.path.abspath(__file__))
ENGINES = ("ours", "pytorch")
CHAIN_OPS = 1000
LOSS_TOLERANCE = 1e-4   # float32 losses of the same steps in two engines

# steps and warmup: the defaults at each size, so that the whole default run takes minutes on 2 cores
Size = namedtuple("Size", "name n_layer n_embd n_head block_size batch_size vocab_size steps warmup")
SIZES = (
    Size("tiny", 2, 64, 4, 64, 8, 65, 30, 5),
    Size("shakespeare-char-cpu", 4, 128, 4, 64, 12, 65, 30, 5),
    Size("shakespeare-char-cpu-T128", 4, 128, 4, 128, 8, 65, 30, 5),
    Size("shakespeare-char", 6, 384, 6, 256, 12, 65, 10, 2),
    Size("gpt2-small", 12, 768, 12, 256, 2, 50304, 5, 2),
)


def step_flops(size):
    """The matmul FLOPs of one training step, forward and backward (the formula of the docstring)."""
    C, T, B = size.n_embd, size.block_size, size.batch_size
    return weight_product_flops(size) + 12 * size.n_layer * B * T * T * C


def weight_product_flops(size):
    """The part of step_flops in products with the weights (the linear layers and the lm head): 6 · N · B·T."""
    return sum(6 * rows * n_in * n_out * count for rows, n_in, n_out, count in linear_layers(size))


def linear_layers(size):
    """A step's products with the weights, as (rows, in, out, how many such layers): each block's c_attn, its
    c_proj, c_fc and the MLP's c_proj, and the lm head, each on B·T rows. Each layer makes three products a step:
    y = x Wᵀ, dx = g W and dW = gᵀ x (x (rows, in), W (out, in), g (rows, out))."""
    C, rows = size.n_embd, size.batch_size * size.block_size
    return [(rows, C, 3 * C, size.n_layer), (rows, C, C, size.n_layer), (rows, C, 4 * C, size.n_layer),
            (rows, 4 * C, C, size.n_layer), (rows, C, size.vocab_size, 1)]


def sgemm_shape(size):
    """The MLP's first product of the size: (B·T, C) x (C, 4C)."""
    return size.batch_size * size.block_size, size.n_embd, 4 * size.n_embd


def process_facts(engine):
    """What every worker reports besides its result: its BLAS pools and the threads of the engine's own passes
    (our engine/threads.py's pool; PyTorch's intra-op threads, and its version)."""
    from train_cpu import blas_info
    facts = {"blas": blas_info()}
    if engine == "ours":
        from tinygrad_llm.engine import threads
        on_pool = ", BLAS on the pool" if threads.blas_on_pool() else ""
        facts.update(engine_threads=f"tinygrad_llm {threads.get_num_threads()} threads{on_pool}")
    elif engine == "pytorch":
        import torch
        facts.update(engine_threads=f"torch {torch.__version__} {torch.get_num_threads()} threads")
    return facts


def train_worker(engine, size, warmup, steps):
    """Train `warmup + steps` steps of `size` with one engine: its step times and the last loss."""
    from train_cpu import build, time_steps, training_step
    shape = dict(n_layer=size.n_layer, n_embd=size.n_embd, n_head=size.n_head, block_size=size.block_size,
                 batch_size=size.batch_size)
    preset, model = build("shakespeare-char-cpu", size.vocab_size, quick_init=True, **shape)
    step = training_step(engine, preset, model, clip=True)
    times, loss = time_steps(step, preset, warmup, steps, size.vocab_size)
    return {"times": times, "loss": loss}


def chain_worker(engine, repeats):
    """The fastest forward and the fastest backward through the chain of CHAIN_OPS ops, in seconds."""
    from tools_overhead import chain_times
    times = chain_times(engine, "float32", CHAIN_OPS, repeats)
    return {"forward": min(f for f, _ in times), "backward": min(b for _, b in times)}


def sgemm_worker(engine, seconds=0.3, repeats=3):
    """Per size, in float32: the best rate (FLOP/s) of its sgemm_shape, the product repeated for `seconds`, and
    the seconds a step's products with the weights take (linear_layers: each product's best of `repeats`, summed).
    NumPy's matmul (OpenBLAS, which our engine calls) for "ours", PyTorch's (its own BLAS) for "pytorch"."""
    import numpy as np
    if engine == "pytorch":
        import torch
        array = torch.from_numpy
    else:
        def array(a):
            return a
    rates, products = [], []
    for size in SIZES:
        m, k, n = sgemm_shape(size)
        a, b = array(np.ones((m, k), np.float32)), array(np.ones((k, n), np.float32))
        rates.append(2 * m * k * n / best_time(lambda: a @ b, seconds=seconds))
        total = 0.0
        for rows, n_in, n_out, count in linear_layers(size):
            x, weight, g = (array(np.ones(shape, np.float32)) for shape in ((rows, n_in), (n_out, n_in), (rows, n_out)))
            total += count * sum(best_time(product, repeats=repeats)     # y = x Wᵀ, dx = g W, dW = gᵀ x
                                 for product in (lambda: x @ weight.T, lambda: g @ weight, lambda: g.T @ x))
        products.append(total)
    return {"rates": rates, "products": products}


def best_time(work, seconds=0.0, repeats=1):
    """The shortest of work()'s runs, after one untimed (the pool's threads start, the result's pages are mapped):
    at least `repeats` runs, and more until `seconds` have gone by."""
    work()
    best, spent, runs = float("inf"), 0.0, 0
    while runs < repeats or spent < seconds:
        start = time.perf_counter()
        work()
        elapsed = time.perf_counter() - start
        best, spent, runs = min(best, elapsed), spent + elapsed, runs + 1
    return best


def worker(args):
    """One process's work (--worker: train, chain or sgemm); prints its result as one JSON line."""
    load = os.getloadavg()[0]   # first: the load this process found
    from tinygrad_llm.engine import backend
    backend.reuse_freed_memory()  # the trainer's allocator setting (engine/backend.py), in every process alike
    if args.blas_on_pool and args.engine == "ours":
        from tinygrad_llm.engine import threads
        threads.set_blas_on_pool(True)
    if args.worker == "train":
        result = train_worker(args.engine, SIZES[args.size], args.warmup, args.steps)
    elif args.worker == "chain":
        result = chain_worker(args.engine, args.chain_repeats)
    else:
        result = sgemm_worker(args.engine)
    print(json.dumps({"load": load, **result, **process_facts(args.engine)}))


def run_worker(kind, engine, size=0, steps=0, warmup=0, chain_repeats=0, blas_on_pool=False):
    command = [sys.executable, os.path.abspath(__file__), "--worker", kind, "--engine", engine, "--size", str(size),
               "--steps", str(steps), "--warmup", str(warmup), "--chain-repeats", str(chain_repeats)] \
        + (["--blas-on-pool"] if blas_on_pool else [])
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"the {kind} process ({engine}) failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def describe_process(result):
    """A worker's load average at its start and its thread pools, in a line."""
    from train_cpu import describe_pools
    engine_threads = f"; {result['engine_threads']}" if "engine_threads" in result else ""
    return f"load {result['load']:.2f}; {describe_pools(result['blas'])}{engine_threads}"


def chosen_sizes(text):
    """--sizes: comma-separated row numbers (1-5) or names."""
    names = [s.name for s in SIZES]
    chosen = []
    for item in text.split(","):
        if item.isdigit() and 1 <= int(item) <= len(SIZES):
            chosen.append(int(item) - 1)
        elif item in names:
            chosen.append(names.index(item))
        else:
            raise argparse.ArgumentTypeError(f"{item!r} is neither a row 1-{len(SIZES)} nor one of "
                                             f"{', '.join(names)}")
    return chosen


def shape_label(size):
    label = f"{size.n_layer}, {size.n_embd}, {size.n_head}, {size.block_size}, {size.batch_size}"
    return label + (f", vocab {size.vocab_size}" if size.vocab_size != 65 else "")


def time_size(index, engines, args, sgemm):
    """Alternate the engines' processes at one size; print each and the summary; returns the summary's row and
    whether the engines' losses agree. sgemm: time_sgemm's figures."""
    size = SIZES[index]
    steps = size.steps if args.steps is None else args.steps
    warmup = size.warmup if args.warmup is None else args.warmup
    flops, limit = step_flops(size), max(sgemm["rates"]["ours"])
    print(f"\nsize {index + 1}, {size.name}: (n_layer, n_embd, n_head, T, B) = ({shape_label(size)}); "
          f"{flops / 1e9:.2f} GFLOP of matmuls a step; {args.rounds} rounds x {steps} timed steps after {warmup}")
    times = {engine: [] for engine in engines}
    losses = {engine: [] for engine in engines}
    ratios = []
    for r in range(args.rounds):
        medians = {}
        for engine in engines:
            result = run_worker("train", engine, index, steps, warmup, blas_on_pool=args.blas_on_pool)
            times[engine] += result["times"]
            losses[engine].append(result["loss"])
            medians[engine] = 1000 * statistics.median(result["times"])
            print(f"  round {r + 1} {engine:8s} {medians[engine]:9.1f} ms  loss {result['loss']:.6f}  "
                  f"({describe_process(result)})")
        if len(medians) == 2:
            ratios.append(medians["ours"] / medians["pytorch"])
    overall = {engine: statistics.median(t) for engine, t in times.items()}
    shares = {engine: flops / seconds / limit for engine, seconds in overall.items()}
    for engine, seconds in overall.items():
        print(f"  {engine:8s} {1000 * seconds:9.1f} ms a step (median of {len(times[engine])}), "
              f"{flops / seconds / 1e9:6.1f} GFLOP/s, {100 * shares[engine]:.0f}% of the sgemm limit")
    agree = True
    if len(overall) == 2:
        difference = max(abs(a - b) for a in losses["ours"] for b in losses["pytorch"])
        agree = difference <= LOSS_TOLERANCE
        print(f"  ratio ours/pytorch {overall['ours'] / overall['pytorch']:.2f}x (rounds: "
              + ", ".join(f"{q:.2f}" for q in ratios) + f"); losses differ by {difference:.1e}"
              + ("" if agree else f": MORE THAN {LOSS_TOLERANCE:g}, the engines do not compute the same"))
        floor = sgemm_floor(overall["pytorch"], sgemm["products"]["ours"][index],
                            sgemm["products"]["pytorch"][index])
        print(f"  the sgemm floor: {floor:.2f}x, the ratio if the products with the weights took NumPy's time above "
              f"and everything else PyTorch's")
    row = [f"{index + 1}", f"{shape_label(size)} ({size.name})", f"{1000 * overall['ours']:.1f}"]
    if len(overall) == 2:
        row += [f"{1000 * overall['pytorch']:.1f}", f"{overall['ours'] / overall['pytorch']:.2f}",
                ", ".join(f"{q:.2f}" for q in ratios), f"{floor:.2f}"]
    row += [f"{100 * shares[engine]:.0f}%" for engine in engines]
    return row, agree


def sgemm_floor(pytorch_step, our_products, pytorch_products):
    """ours/PyTorch's step time with only the libraries' matrix products between them: PyTorch's step, with its
    products with the weights taking NumPy's time for them instead of its own (time_sgemm's "products")."""
    return (pytorch_step + our_products - pytorch_products) / pytorch_step


def time_sgemm(engines, rounds):
    """Each engine's sgemm_worker over `rounds` alternated processes: the best rate of each size's sgemm_shape and
    the shortest time of each size's products with the weights, printed with their ratios. Returns
    {"rates": {engine: [FLOP/s per size]}, "products": {engine: [seconds per size]}}."""
    rates = {engine: [0.0] * len(SIZES) for engine in engines}
    products = {engine: [float("inf")] * len(SIZES) for engine in engines}
    library = {"ours": "NumPy", "pytorch": "PyTorch"}
    print(f"sgemm, each engine's best of {rounds} processes: the rate of each size's (B·T, C) x (C, 4C) and the time "
          f"of a step's products with the weights (each linear layer's x Wᵀ, g W and gᵀ x, the lm head's too)")
    for _ in range(rounds):
        for engine in engines:
            result = run_worker("sgemm", engine)
            rates[engine] = [max(a, b) for a, b in zip(rates[engine], result["rates"])]
            products[engine] = [min(a, b) for a, b in zip(products[engine], result["products"])]
            print(f"  {library[engine]}: " + ", ".join(f"{rate / 1e9:.0f}" for rate in result["rates"])
                  + " GFLOP/s; products " + ", ".join(f"{1000 * t:.1f}" for t in result["products"])
                  + f" ms  ({describe_process(result)})")
    for index, size in enumerate(SIZES):
        line = "  ({0}, {1}) x ({1}, {2}): ".format(*sgemm_shape(size)) + ", ".join(
            f"{library[engine]} {rates[engine][index] / 1e9:.0f} GFLOP/s" for engine in engines)
        line += f"; size {index + 1}'s products: " + ", ".join(
            f"{library[engine]} {1000 * products[engine][index]:.1f} ms" for engine in engines)
        if len(engines) == 2:
            line += f" (ours/pytorch {products['ours'][index] / products['pytorch'][index]:.2f}x)"
        print(line)
    print(f"  the sgemm limit: {max(rates['ours']) / 1e9:.0f} GFLOP/s (NumPy's best)")
    return {"rates": rates, "products": products}


def time_chain(engines, args):
    """Alternate the engines' chain processes; print each and the summary; returns the summary's line."""
    print(f"\nper-op chain: {CHAIN_OPS} multiplications of a (2, 2) float32 tensor, the fastest of "
          f"{args.chain_repeats} passes per process, {args.rounds} rounds")
    best = {engine: {"forward": float("inf"), "backward": float("inf")} for engine in engines}
    for r in range(args.rounds):
        for engine in engines:
            result = run_worker("chain", engine, chain_repeats=args.chain_repeats, blas_on_pool=args.blas_on_pool)
            for way in ("forward", "backward"):
                best[engine][way] = min(best[engine][way], result[way])
            print(f"  round {r + 1} {engine:8s} forward {1e6 * result['forward'] / CHAIN_OPS:5.2f} µs an op, "
                  f"backward {1e6 * result['backward'] / CHAIN_OPS:5.2f}  ({describe_process(result)})")
    lines = []
    for way in ("forward", "backward"):
        per_op = {engine: 1e6 * best[engine][way] / CHAIN_OPS for engine in engines}
        ratio = f", ours/pytorch {per_op['ours'] / per_op['pytorch']:.2f}x" if len(per_op) == 2 else ""
        lines.append(f"{way}: " + ", ".join(f"{e} {us:.2f} µs" for e, us in per_op.items()) + ratio)
    print("  an op, fastest over the rounds: " + "; ".join(lines))
    return lines


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=chosen_sizes, default=list(range(len(SIZES))),
                        help="rows 1-5 or names, comma-separated: " + ", ".join(s.name for s in SIZES)
                             + " (default: all)")
    parser.add_argument("--rounds", type=int, default=3, help="processes per engine and size, alternated (default 3)")
    parser.add_argument("--steps", type=int, help="timed steps per process (default: the size's, "
                        + ", ".join(str(s.steps) for s in SIZES) + ")")
    parser.add_argument("--warmup", type=int, help="untimed steps first, per process (default: the size's, "
                        + ", ".join(str(s.warmup) for s in SIZES) + ")")
    parser.add_argument("--chain-repeats", type=int, default=200, help="passes through the per-op chain per "
                        "process (default 200)")
    parser.add_argument("--no-torch", action="store_true", help="time ours only")
    parser.add_argument("--blas-on-pool", action="store_true", help="ours with BLAS at one thread and the matmuls "
                        "cut over the engine's own pool (engine/threads.py's set_blas_on_pool)")
    parser.add_argument("--worker", choices=("train", "chain", "sgemm"), help=argparse.SUPPRESS)
    parser.add_argument("--engine", help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    sys.path.insert(0, HERE)
    if args.worker:
        return worker(args)
    import numpy as np

    engines = ENGINES[:1] if args.no_torch else ENGINES
    print(f"{cpu_name()}, {len(os.sched_getaffinity(0))} cores; numpy {np.__version__}; each engine in processes of "
          f"its own, alternated; load average now {os.getloadavg()[0]:.2f}")
    for variable in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
        print(f"  {variable}: {os.environ.get(variable, 'unset')}")
    sgemm = time_sgemm(engines, args.rounds)

    rows, all_agree = [], True
    for index in args.sizes:
        row, agree = time_size(index, engines, args, sgemm)
        rows.append(row)
        all_agree &= agree
    chain = time_chain(engines, args)

    header = ["#", "(n_layer, n_embd, n_head, T, B)", "ours ms"]
    if len(engines) == 2:
        header += ["PyTorch ms", "ours/PyTorch", "rounds", "sgemm floor"]
    header += [f"{'ours' if e == 'ours' else 'PyTorch'} % of sgemm" for e in engines]
    print(f"\n| {' | '.join(header)} |\n|{'---|' * len(header)}")
    for row in rows:
        print(f"| {' | '.join(row)} |")
    print(f"\nper-op chain ({CHAIN_OPS} ops, (2, 2) float32), an op: " + "; ".join(chain))
    if not all_agree:
        sys.exit(f"the engines' losses differ by more than {LOSS_TOLERANCE:g} at some size (above): the timings "
                 f"compare different computations")


def cpu_name():
    with open("/proc/cpuinfo") as cpuinfo:
        return next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), "a CPU")


if __name__ == "__main__":
    main()
