"""Tests of data-parallel training (tinygrad_llm/distributed.py and the trainer on N ranks): real `mpiexec -n 2`
runs on this machine, each checked against one process on the same global batches.

- N ranks make exactly one process's update: losses and final weights to 1e-6 in float64, with an uneven split
  (5 rows over 2 ranks), gradient accumulation and clipping on;
- a checkpoint written by 2 ranks resumes on 1, and the reverse, to the same weights;
- a rank that dies makes the run end within a bounded time, with a message, and the last checkpoint loads;
- without MPI, a clear error says what to install;
- on GPUs, the all-reduce goes through NCCL: one rank's all-reduce on this machine's GPU (the mock device without
  one, where MPI stands in for NCCL between processes), and 2 GPU ranks make one GPU process's update.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from tinygrad_llm import distributed
from tinygrad_llm.engine import backend
from tinygrad_llm.recipes.checkpoint import load_checkpoint
from tinygrad_llm.recipes.config import TrainConfig
from tinygrad_llm.recipes.train import train

RUN = dict(batch_size=5, block_size=16, n_layer=1, n_head=2, n_embd=16, max_iters=20, warmup_iters=5,
           lr_decay_iters=20, eval_interval=10, eval_iters=2, log_interval=1, dtype="float64",
           gradient_accumulation_steps=2, grad_clip=0.5)

needs_mpi = pytest.mark.skipif(shutil.which("mpiexec") is None, reason="no mpiexec: pip install -e '.[mpi]'")


def flags(out_dir, **changes):
    return [word for name, value in {**RUN, "out_dir": out_dir, **changes}.items()
            for word in ("--" + name.replace("_", "-"), str(value))]


def on_ranks(n, out_dir, *extra, **changes):
    """`mpiexec -n n python -m tinygrad_llm train ...`, to the end; what it printed."""
    done = subprocess.run(["mpiexec", "-n", str(n), sys.executable, "-m", "tinygrad_llm", "train",
                           *flags(out_dir, **changes), "--no-progress", *extra],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout + done.stderr


def one_process(out_dir, resume=False, **changes):
    train(TrainConfig(**{**RUN, "out_dir": str(out_dir), **changes}), resume=resume, progress=False,
          log=lambda line: None)


def losses(out_dir):
    records = [json.loads(line) for line in open(out_dir / "metrics.jsonl")]
    return [[r.get("loss"), r.get("train_loss"), r.get("val_loss")] for r in records]


def assert_same_run(a, b):
    np.testing.assert_allclose(np.array(losses(a), dtype=float), np.array(losses(b), dtype=float), rtol=1e-6)
    left, right = load_checkpoint(a / "last.safetensors"), load_checkpoint(b / "last.safetensors")
    assert left.meta["iter"] == right.meta["iter"]
    for name, array in left.model_state.items():
        np.testing.assert_allclose(right.model_state[name], array, rtol=1e-6, atol=1e-9, err_msg=name)


def test_a_world_of_one_shares_everything_and_does_nothing():
    world = distributed.World(None)
    assert (world.rank, world.size, world.share(7)) == (0, 1, (0, 7))
    assert world.sum([1.5, 2.0]).tolist() == [1.5, 2.0] and world.gather("x") == ["x"]


def test_shares_are_as_even_as_can_be():
    world = distributed.World(None)
    shares = []
    for rank in range(5):
        world.rank, world.size = rank, 5
        shares.append(world.share(12))
    assert shares == [(0, 3), (3, 6), (6, 8), (8, 10), (10, 12)]
    with pytest.raises(ValueError, match="a batch of 4 rows cannot be shared among 5 ranks"):
        world.share(4)


def test_mpiexec_without_mpi4py_says_what_to_install(monkeypatch):
    monkeypatch.setenv("PMI_SIZE", "2")
    monkeypatch.setitem(sys.modules, "mpi4py", None)  # as if not installed
    monkeypatch.setattr(distributed, "_world", None)
    with pytest.raises(RuntimeError, match=r"mpi4py is not installed: pip install 'tinygrad_llm\[mpi\]'"):
        distributed.init()


@needs_mpi
def test_two_ranks_make_one_process_update(shakespeare, tmp_path):
    one_process(tmp_path / "one")
    printed = on_ranks(2, tmp_path / "two")
    assert printed.count("iter 20: train loss") == 1 and "2 ranks" in printed  # rank 0 alone logs
    assert_same_run(tmp_path / "one", tmp_path / "two")
    assert len(load_checkpoint(tmp_path / "two" / "last.safetensors").meta["rank_rngs"]) == 1  # rank 1's state


@needs_mpi
def test_a_checkpoint_resumes_on_any_number_of_ranks(shakespeare, tmp_path):
    one_process(tmp_path / "straight")
    on_ranks(2, tmp_path / "two_then_one", max_iters=10)
    one_process(tmp_path / "two_then_one", resume=True)
    assert_same_run(tmp_path / "straight", tmp_path / "two_then_one")
    one_process(tmp_path / "one_then_two", max_iters=10)
    on_ranks(2, tmp_path / "one_then_two", "--resume")
    assert_same_run(tmp_path / "straight", tmp_path / "one_then_two")


def start_long_run(out_dir, eval_interval):
    """A 2-rank run far too long to end by itself, started in the background: the test stops it."""
    return subprocess.Popen(["mpiexec", "-n", "2", sys.executable, "-m", "tinygrad_llm", "train",
                             *flags(out_dir, max_iters=100000, lr_decay_iters=100000, eval_interval=eval_interval),
                             "--no-progress"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_until(condition, launcher, failure):
    """Poll condition() for up to 60 s while the run lives; `failure` is the message if it never holds."""
    deadline = time.monotonic() + 60
    while not condition():
        assert launcher.poll() is None and time.monotonic() < deadline, failure
        time.sleep(0.01)


def rank_pid(launcher, rank):
    """The pid of the process mpiexec `launcher` started as rank `rank`: found by its environment, among the
    launcher's descendants only (a rank another run left behind must not be taken for this run's)."""
    pids = []
    for entry in os.listdir("/proc"):
        try:
            environ = open(f"/proc/{entry}/environ", "rb").read().split(b"\0")
            cmdline = open(f"/proc/{entry}/cmdline", "rb").read()
        except (OSError, ValueError):
            continue
        if f"PMI_RANK={rank}".encode() in environ and b"tinygrad_llm" in cmdline and \
                launcher.pid in ancestors(int(entry)):
            pids.append(int(entry))
    assert len(pids) == 1, f"rank {rank} of mpiexec {launcher.pid}: found the processes {pids}"
    return pids[0]


def ancestors(pid):
    """The pids above `pid` in the process tree, its parent first (those that end meanwhile end the list)."""
    found = []
    while pid > 1:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                pid = int(stat.read().rsplit(")", 1)[1].split()[1])   # the field after the state: the parent's pid
        except (OSError, IndexError, ValueError):
            break
        found.append(pid)
    return found


@needs_mpi
def test_a_rank_that_dies_ends_the_run_and_the_last_checkpoint_loads(shakespeare, tmp_path):
    out_dir = tmp_path / "run"
    launcher = start_long_run(out_dir, eval_interval=5)
    try:
        wait_until((out_dir / "last.safetensors").exists, launcher, "no checkpoint was written")
        survivor, victim = rank_pid(launcher, 0), rank_pid(launcher, 1)
        os.kill(victim, signal.SIGKILL)
        killed = time.monotonic()
        out, err = launcher.communicate(timeout=30)  # bounded: the launcher ends the other rank
    finally:
        launcher.kill()
    assert launcher.returncode != 0 and time.monotonic() - killed < 30
    said = out + err  # MPICH's launcher: "BAD TERMINATION ... Killed (signal 9)"; Open MPI's: "... signal 9 (Killed)"
    # the launcher names a rank it saw end by signal 9: the victim, or the other rank it killed in turn, whichever
    # ending it handled first (MPICH has named either)
    assert "signal 9" in said and (str(victim) in said or str(survivor) in said), said
    load_checkpoint(out_dir / "last.safetensors")  # whole: rank 0 writes atomically


def gpu_or_skip():
    try:
        return backend.module_for("cuda")
    except RuntimeError as e:
        pytest.skip(f"no usable GPU: {e}")


@needs_mpi
def test_a_one_rank_nccl_all_reduce_on_the_gpu():
    cupy = gpu_or_skip()
    values = cupy.asarray(np.arange(6, dtype=np.float32))
    summed = cupy.empty_like(values)
    nccl = backend.nccl_communicator(1, 0)
    nccl.all_reduce(values, summed, "sum")
    assert summed.get().tolist() == [0, 1, 2, 3, 4, 5]
    nccl.broadcast(values, root=0)
    assert values.get().tolist() == [0, 1, 2, 3, 4, 5]


@needs_mpi
def test_two_gpu_ranks_make_one_gpu_process_update(shakespeare, tmp_path):
    gpu_or_skip()
    run = dict(device="cuda", dtype="float32", max_iters=10, lr_decay_iters=10, warmup_iters=2, eval_interval=5)
    one_process(tmp_path / "one", **run)
    on_ranks(2, tmp_path / "two", **run)  # on the mock device: two processes, MPI standing in for NCCL
    np.testing.assert_allclose(np.array(losses(tmp_path / "one"), dtype=float),
                               np.array(losses(tmp_path / "two"), dtype=float), rtol=1e-5)
    left, right = (load_checkpoint(tmp_path / name / "last.safetensors") for name in ("one", "two"))
    for name, array in left.model_state.items():
        np.testing.assert_allclose(right.model_state[name], array, rtol=1e-4, atol=1e-6, err_msg=name)


@needs_mpi
@pytest.mark.parametrize("number", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_or_sigterm_stops_every_rank_at_the_same_iteration_and_saves_it(shakespeare, tmp_path, number):
    out_dir = tmp_path / "run"
    launcher = start_long_run(out_dir, eval_interval=50000)
    try:
        metrics = out_dir / "metrics.jsonl"   # whole lines counted: the run may be writing the next one
        wait_until(lambda: metrics.exists() and metrics.read_text().count("\n") > 20, launcher,
                   "the run ended before the signal")
        launcher.send_signal(number)  # the launcher passes it on to every rank
        out, err = launcher.communicate(timeout=60)
    finally:
        launcher.kill()
    assert launcher.returncode == 128 + number and "Traceback" not in out + err, out + err
    reached = load_checkpoint(out_dir / "last.safetensors").meta["iter"]
    assert 20 <= reached < 50000 and f"interrupted at iteration {reached}" in out
    assert "to continue: mpiexec -n 2 python -m tinygrad_llm train " in err
