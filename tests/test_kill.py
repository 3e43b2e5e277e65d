"""kill -9 at random moments of real training runs, and what must hold after each.

Each trial starts `python -m tinygrad_llm train` in a subprocess (a tiny GPT that evaluates and saves at every
iteration, so saves fill much of its time) and kills it with SIGKILL:
- "start" trials after a random delay from the process's start (in its imports, or later);
- "random" trials at a random moment of training: a few milliseconds after metrics.jsonl has reached a random
  number of lines;
- "save" trials inside a save: the run is stopped (SIGSTOP) as soon as a temporary checkpoint file appears, at a
  random one of its saves, and killed if the file is still there, that is between the save's first byte and its
  rename (else it is let go on, and caught at a later save).
Then every checkpoint the kill left must load, `--resume` (or `--overwrite`, if the run died before its first
checkpoint) must run to the end, and the result must be the uninterrupted run's, bit for bit: weights, optimizer
state, RNG state and every line of metrics (timings aside); and what the kill left (the lock, temporary files, a
torn metrics line) must be gone.
"""
import json
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from tinygrad_llm.__main__ import main
from tinygrad_llm.recipes.checkpoint import load_checkpoint
from tinygrad_llm.recipes.config import TrainConfig
from tinygrad_llm.recipes.train import train

RUN = dict(batch_size=4, block_size=16, n_layer=1, n_head=2, n_embd=16, dropout=0.1, max_iters=40,
           warmup_iters=5, lr_decay_iters=40, eval_interval=1, eval_iters=1, log_interval=1)
TRIALS = [("start", 0), ("random", 1), ("random", 2), ("random", 3), ("save", 4), ("save", 5), ("save", 6)]
POLL_S = 0.0005


def flags(out_dir):
    return [word for name, value in {**RUN, "out_dir": out_dir}.items()
            for word in ("--" + name.replace("_", "-"), str(value))]


def metrics(out_dir):
    return [{k: v for k, v in json.loads(line).items() if k not in ("ms_per_iter", "tokens_per_s")}
            for line in open(out_dir / "metrics.jsonl")]


def wait_for(condition, process):
    """Poll until condition() or the process ends; True if the condition came first."""
    while process.poll() is None:
        if condition():
            return True
        time.sleep(POLL_S)
    return False


def kill_in_a_save(process, out_dir, saves_to_let_pass):
    """SIGKILL `process` while a temporary checkpoint file of its save exists, after letting `saves_to_let_pass`
    saves go on; True if it was caught so, False if the run ended first."""
    def saving():
        return any(out_dir.glob("*.tmp"))
    while wait_for(saving, process):
        process.send_signal(signal.SIGSTOP)
        if saving():  # stopped inside the save
            if saves_to_let_pass == 0:
                process.kill()
                return True
            saves_to_let_pass -= 1
        process.send_signal(signal.SIGCONT)
        wait_for(lambda: not saving(), process)
    return False


def lines_logged(out_dir):
    try:
        return (out_dir / "metrics.jsonl").read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The uninterrupted run: its last checkpoint and its metrics."""
    out_dir = tmp_path_factory.mktemp("uninterrupted")
    train(TrainConfig(out_dir=str(out_dir), **RUN), progress=False, log=lambda line: None)
    return load_checkpoint(out_dir / "last.safetensors"), metrics(out_dir)


@pytest.mark.parametrize("kind, seed", TRIALS)
def test_a_run_killed_at_any_moment_resumes_bit_for_bit(shakespeare, reference, tmp_path, kind, seed):
    expected, expected_metrics = reference
    r = random.Random(seed)
    out_dir = tmp_path / "run"
    process = subprocess.Popen([sys.executable, "-m", "tinygrad_llm", "train", *flags(out_dir), "--no-progress"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        if kind == "start":
            time.sleep(r.uniform(0, 2))
        elif kind == "random":
            lines = r.randrange(len(expected_metrics))
            wait_for(lambda: lines_logged(out_dir) > lines, process)
            time.sleep(r.uniform(0, 0.02))
        else:
            assert kill_in_a_save(process, out_dir, r.randrange(20)), "the run ended before a save was caught"
            assert list(out_dir.glob("*.tmp")) and (out_dir / "train.lock").exists()  # what the kill left
    finally:
        process.kill()  # SIGKILL, as kill -9 (a no-op where the save trial has killed it already)
        process.wait()

    survivors = [out_dir / name for name in ("last.safetensors", "best.safetensors") if (out_dir / name).exists()]
    for path in survivors:
        load_checkpoint(path)  # checksums and every field: a kill never leaves half a checkpoint
    assert main(["train", *flags(out_dir), "--resume" if survivors else "--overwrite", "--no-progress"]) == 0

    assert sorted(p.name for p in out_dir.iterdir()) == ["best.safetensors", "last.safetensors", "loss.png",
                                                         "metrics.jsonl"]  # no lock, no temporary left
    assert metrics(out_dir) == expected_metrics
    resumed = load_checkpoint(out_dir / "last.safetensors")
    def meta(checkpoint):  # iteration, best loss, RNG state, tokenizer, config but where it was written
        return {**checkpoint.meta, "train_config": {**checkpoint.meta["train_config"], "out_dir": None}}
    assert meta(resumed) == meta(expected)
    for name, array in expected.model_state.items():
        assert resumed.model_state[name].tobytes() == array.tobytes(), name
    for index, entry in expected.optimizer_state["state"].items():
        for key, value in entry.items():
            assert np.array_equal(resumed.optimizer_state["state"][index][key], value), (index, key)
