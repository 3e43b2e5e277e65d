"""Tests of training (tinygrad_llm/recipes/train.py) and the command line (tinygrad_llm/__main__.py): the loss falls,
`--resume` continues bit for bit, every output file is written, gradient accumulation, sampling, clear errors, and
the out-dir's rules (a run is refused, locked, or tidied after a kill; test_kill.py kills real runs).

Every run is a tiny GPT on Tiny Shakespeare (the copy the package ships) for at most a few hundred steps
(milliseconds each); test_cli.py tests the command line's own behaviour: help, validation, --version, Ctrl-C.
"""
import json
import math
import os
import pathlib
import signal
import subprocess
import sys
import warnings

import numpy as np
import pytest

from checkpoint_files import rewrite
from conftest import cli_error
from tinygrad_llm.__main__ import main
from tinygrad_llm.engine import rng
from tinygrad_llm.models.gpt import GPT, GPTConfig
from tinygrad_llm.optim import clip_grad_norm_, set_lr
from tinygrad_llm.recipes.checkpoint import load_checkpoint
from tinygrad_llm.recipes.checkpoint_schema import CheckpointError
from tinygrad_llm.recipes.config import DEFAULT_PRESET, PRESETS, ConfigError, TrainConfig
from tinygrad_llm.recipes.run_dir import claim_out_dir
from tinygrad_llm.recipes.train import Diverged, build_optimizer, learning_rate, run_config, train
from tinygrad_llm.text.char import CharTokenizer
from tinygrad_llm.text.datasets import TRAIN_STREAM, TextDataset, batch_generator, load_text, resolve_dataset

TINY = dict(batch_size=4, block_size=16, n_layer=2, n_head=2, n_embd=32, warmup_iters=10, lr_decay_iters=100,
            eval_iters=2, log_interval=1)


def config(out_dir, **changes):
    return TrainConfig(out_dir=str(out_dir), **{**TINY, **changes})


def flags(out_dir, **changes):
    """The command-line flags of config(out_dir, **changes): `--n-layer 2 ...`."""
    settings = {**TINY, "out_dir": out_dir, **changes}
    return [word for name, value in settings.items() for word in ("--" + name.replace("_", "-"), str(value))]


def records(out_dir):
    return [json.loads(line) for line in open(pathlib.Path(out_dir) / "metrics.jsonl")]


def without_timing(record):
    return {k: v for k, v in record.items() if k not in ("ms_per_iter", "tokens_per_s")}


def quiet(*args):
    pass


# ---- training ----

def test_the_loss_falls_well_below_uniform_guessing(shakespeare, tmp_path):
    result = train(config(tmp_path, max_iters=300, lr_decay_iters=300, eval_interval=300, eval_iters=4,
                          learning_rate=3e-3, min_lr=3e-4), progress=False, log=quiet)
    uniform = math.log(65)  # the loss of predicting every one of the 65 characters alike
    steps = [r["loss"] for r in records(tmp_path) if "loss" in r]
    assert len(steps) == 300 and abs(steps[0] - uniform) < 0.1
    assert np.mean(steps[-20:]) < 0.8 * uniform
    assert result["best_val_loss"] < 0.8 * uniform


def test_a_run_writes_metrics_plot_and_checkpoints(shakespeare, tmp_path):
    result = train(config(tmp_path, max_iters=30, eval_interval=10, log_interval=5), progress=False, log=quiet)
    lines = records(tmp_path)  # every line is JSON
    assert [r["iter"] for r in lines if "loss" in r] == [0, 5, 10, 15, 20, 25]
    evals = [r for r in lines if "val_loss" in r]
    assert [r["iter"] for r in evals] == [0, 10, 20, 30]
    png = (tmp_path / "loss.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 1000

    best_val = min(r["val_loss"] for r in evals)
    assert result["best_val_loss"] == best_val
    best, last = load_checkpoint(tmp_path / "best.safetensors"), load_checkpoint(tmp_path / "last.safetensors")
    assert best.meta["best_val_loss"] == last.meta["best_val_loss"] == best_val
    assert best.meta["iter"] == next(r["iter"] for r in evals if r["val_loss"] == best_val)
    assert last.meta["iter"] == 30 and last.optimizer_state is not None
    # the learning rate a checkpoint holds is its iteration's: the one the next step, resumed or not, takes
    assert {group["lr"] for group in last.optimizer_state["param_groups"]} == {learning_rate(run_config(tmp_path), 30)}


def test_the_trainer_sets_the_allocator_and_importing_the_engine_does_not(shakespeare, tmp_path, monkeypatch):
    """glibc's mallopt is the whole process's: train() calls backend.reuse_freed_memory(), an import makes no call."""
    from tinygrad_llm.engine import backend
    calls = []
    monkeypatch.setattr(backend, "reuse_freed_memory", lambda: calls.append("set"))
    train(config(tmp_path, max_iters=1, eval_interval=1), progress=False, log=quiet)
    assert calls == ["set"]
    probe = ("import ctypes; opened = []; CDLL = ctypes.CDLL\n"
             "ctypes.CDLL = lambda name, *a, **k: opened.append(name) or CDLL(name, *a, **k)\n"
             "import tinygrad_llm, tinygrad_llm.recipes.train; print('libc.so.6' in opened)")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "False", done.stderr


@pytest.mark.parametrize("on", [True, False])
def test_blas_on_pool_holds_for_the_run_and_is_undone_after_it(shakespeare, tmp_path, on):
    """--blas-on-pool (the shakespeare-char preset's) holds BLAS at one thread while the run trains, and leaves the
    process as it found it, as does its absence inside a with-block that set it."""
    from tinygrad_llm.engine import threads
    seen = []
    with threads.using_blas_on_pool(not on):
        result = train(config(tmp_path, max_iters=2, eval_interval=1, blas_on_pool=on), progress=False,
                       log=lambda line: seen.append(threads.blas_on_pool()))
        assert threads.blas_on_pool() is (not on)
    assert result["iterations"] == 2 and seen and set(seen) == {on}
    assert not threads.blas_on_pool()
    assert PRESETS["shakespeare-char"].blas_on_pool and not PRESETS[DEFAULT_PRESET].blas_on_pool


def interrupt_at(start):
    """A log that sends this process Ctrl-C on the line that starts with `start`: the run stops after it."""
    def log(line):
        if line.startswith(start):
            signal.raise_signal(signal.SIGINT)
    return log


@pytest.mark.parametrize("dropout", [0.0, 0.2])
def test_resume_continues_bit_for_bit(shakespeare, tmp_path, dropout):
    """100 steps in one go, against a run stopped at 50 and continued by `--resume` and --out-dir alone: the same
    losses and the same weights. The run's settings (none of them the preset's) come from its checkpoint. With
    dropout, this needs the dropout generator's state from the checkpoint."""
    straight, halves = tmp_path / "straight", tmp_path / "halves"
    common = dict(max_iters=100, eval_interval=25, dropout=dropout)
    assert main(["train", *flags(straight, **common), "--no-progress"]) == 0
    stopped = train(config(halves, **common), progress=False, log=interrupt_at("iter 50:"))
    assert stopped["interrupted"] and stopped["iterations"] == 50
    assert main(["train", "--out-dir", str(halves), "--resume", "--no-progress"]) == 0

    expected = [without_timing(r) for r in records(straight)]
    assert len(expected) == 100 + 5  # a line per step, and evaluations at 0, 25, 50, 75, 100
    assert [without_timing(r) for r in records(halves)] == expected
    a, b = load_checkpoint(straight / "last.safetensors"), load_checkpoint(halves / "last.safetensors")
    assert a.model_state.keys() == b.model_state.keys()
    assert all(np.array_equal(a.model_state[k], b.model_state[k]) for k in a.model_state)
    for index, entry in a.optimizer_state["state"].items():
        assert all(np.array_equal(value, b.optimizer_state["state"][index][key]) for key, value in entry.items())
    assert a.meta["rng"] == b.meta["rng"] and a.meta["iter"] == b.meta["iter"] == 100
    assert a.meta["best_val_loss"] == b.meta["best_val_loss"]


def test_a_bpe_run_trains_samples_and_resumes(shakespeare, tmp_path, capsys):
    """--tokenizer bpe: the vocabulary is trained on the training text, saved in the checkpoint, rebuilt identically
    on --resume, and used by sample."""
    run = tmp_path / "bpe"
    bpe = dict(tokenizer="bpe", bpe_vocab_size=300, eval_interval=10)
    assert main(["train", *flags(run, max_iters=10, **bpe), "--no-progress"]) == 0
    assert main(["train", *flags(run, max_iters=20, **bpe), "--resume", "--no-progress"]) == 0
    checkpoint = load_checkpoint(run / "last.safetensors")
    assert checkpoint.meta["tokenizer"]["type"] == "bpe" and checkpoint.model_config["vocab_size"] == 300
    assert checkpoint.meta["iter"] == 20
    capsys.readouterr()
    assert main(["sample", "--ckpt", str(run / "best.safetensors"), "--prompt", "KING:", "--max-new-tokens", "8"]) == 0
    assert capsys.readouterr().out.startswith("KING:")


def test_with_dropout_resume_depends_on_the_saved_rng_state(shakespeare, tmp_path, monkeypatch):
    """The control for the test above: ignore the saved RNG state and the resumed losses change."""
    straight, halves = tmp_path / "straight", tmp_path / "halves"
    train(config(straight, max_iters=60, eval_interval=30, dropout=0.2), progress=False, log=quiet)
    train(config(halves, max_iters=30, eval_interval=30, dropout=0.2), progress=False, log=quiet)
    monkeypatch.setattr(rng, "set_state", lambda state: None)
    train(config(halves, max_iters=60, eval_interval=30, dropout=0.2), resume=True, progress=False, log=quiet)
    losses = [[r["loss"] for r in records(d) if "loss" in r] for d in (straight, halves)]
    assert losses[0][:30] == losses[1][:30] and losses[0][30:] != losses[1][30:]


def test_a_checkpoint_with_the_older_generator_state_resumes_with_a_fresh_dropout_stream(shakespeare, tmp_path):
    """A checkpoint written before the engine drew PyTorch's numbers (NumPy's PCG64 state): the run resumes, says in
    one line naming the file that its dropout stream starts afresh, and saves the new generator's state."""
    run = tmp_path / "run"
    train(config(run, max_iters=10, eval_interval=10, dropout=0.2), progress=False, log=quiet)

    def older(header, tensors):
        header["rng"] = {"seed": 1337, "cpu": np.random.default_rng(1337).bit_generator.state}
    rewrite(run / "last.safetensors", older)
    lines = []
    train(config(run, max_iters=20, eval_interval=10, dropout=0.2), resume=True, progress=False, log=lines.append)
    said = [line for line in lines if "older version (NumPy's PCG64)" in line]
    assert len(said) == 1 and str(run / "last.safetensors") in said[0], lines
    checkpoint = load_checkpoint(run / "last.safetensors")
    assert checkpoint.meta["iter"] == 20 and rng.is_state(checkpoint.meta["rng"])


def test_gradient_accumulation_averages_the_micro_batches(shakespeare, tmp_path):
    """Two micro-batches of 4 per step: the logged loss is the mean of their losses, and the update is that of
    one batch of 8 holding both. (AdamW's first step is almost sign(gradient)·lr whatever the gradient's scale,
    so the update shows both micro-batches were used; the logged loss shows they are averaged.)"""
    cfg = config(tmp_path, gradient_accumulation_steps=2, max_iters=1, eval_interval=1, decay_lr=False)
    train(cfg, progress=False, log=quiet)

    text = load_text(resolve_dataset())
    tokenizer = CharTokenizer.from_text(text)
    dataset = TextDataset(text, tokenizer)
    rng.manual_seed(cfg.seed)  # the model train() starts from
    model = GPT(GPTConfig(vocab_size=tokenizer.vocab_size, block_size=cfg.block_size, n_layer=cfg.n_layer,
                          n_head=cfg.n_head, n_embd=cfg.n_embd, bias=cfg.bias))
    generator = batch_generator(cfg.seed, TRAIN_STREAM, 0)                     # the batches of iteration 0
    (x1, y1), (x2, y2) = (dataset.get_batch("train", cfg.batch_size, cfg.block_size, generator) for _ in "12")
    micro_losses = [model(x1, y1)[1].item(), model(x2, y2)[1].item()]
    logged = next(r["loss"] for r in records(tmp_path) if "loss" in r)
    assert logged == pytest.approx(np.mean(micro_losses), rel=1e-6)

    optimizer = build_optimizer(model, cfg)
    set_lr(optimizer, cfg.learning_rate)
    model(np.concatenate([x1, x2]), np.concatenate([y1, y2]))[1].backward()   # one batch (8, T)
    clip_grad_norm_(model.parameters(), cfg.grad_clip)
    optimizer.step()
    trained = load_checkpoint(tmp_path / "last.safetensors").model_state
    for name, array in model.state_dict().items():
        np.testing.assert_allclose(trained[name], array, atol=cfg.learning_rate / 20, err_msg=name)


# ---- the command line ----

def test_cli_trains_then_samples_repeatably(shakespeare, tmp_path, capsys):
    assert main(["train", *flags(tmp_path, max_iters=20, eval_interval=10), "--no-progress"]) == 0
    capsys.readouterr()
    texts = []
    for seed, cache in [("3", []), ("3", []), ("3", ["--no-cache"]), ("4", [])]:
        assert main(["sample", "--ckpt", str(tmp_path / "best.safetensors"), "--prompt", "ROMEO:",
                     "--max-new-tokens", "20", "--seed", seed, *cache]) == 0
        texts.append(capsys.readouterr().out)
    assert texts[0].startswith("ROMEO:") and len(texts[0]) == len("ROMEO:") + 20 + 1  # print adds "\n"
    assert texts[1] == texts[0] and texts[2] == texts[0]  # same seed, with or without the KV cache
    assert texts[3] != texts[0]


def test_a_dataset_shorter_than_block_size_is_a_clear_error(tmp_path, capsys):
    text = tmp_path / "short.txt"
    text.write_text("to be, or not to be")
    err = cli_error(capsys, ["train", *flags(tmp_path / "out", data=text, max_iters=5), "--no-progress"])
    assert "block_size=16" in err


def test_sampling_a_missing_checkpoint_names_it(tmp_path, capsys):
    path = tmp_path / "nowhere" / "best.safetensors"
    assert str(path) in cli_error(capsys, ["sample", "--ckpt", str(path)])


@pytest.mark.parametrize("content", [b"", b"this is not a checkpoint" * 10, bytes(range(256))])
def test_sampling_a_corrupt_checkpoint_names_it(tmp_path, capsys, content):
    path = tmp_path / "best.safetensors"
    path.write_bytes(content)
    assert str(path) in cli_error(capsys, ["sample", "--ckpt", str(path)])


def test_sampling_a_truncated_checkpoint_names_it(shakespeare, tmp_path, capsys):
    train(config(tmp_path, max_iters=1, eval_interval=1), progress=False, log=quiet)
    path = tmp_path / "last.safetensors"
    content = path.read_bytes()
    path.write_bytes(content[: len(content) // 2])
    assert str(path) in cli_error(capsys, ["sample", "--ckpt", str(path)])


def test_resuming_with_another_batch_or_model_is_refused_naming_both_values(shakespeare, tmp_path, capsys):
    """Before: --batch-size was taken without a word (the run went on with another batch); another --n-layer was
    refused by the model's shapes, after the data was loaded."""
    assert main(["train", *flags(tmp_path, max_iters=2, eval_interval=1), "--no-progress"]) == 0
    before = snapshot(tmp_path)
    err = cli_error(capsys, ["train", "--out-dir", str(tmp_path), "--batch-size", "12", "--n-layer", "1",
                             "--max-iters", "4", "--resume", "--no-progress"])
    assert "--batch-size 12 differs from the run's 4; --n-layer 1 differs from the run's 2: a resumed run keeps" in err
    assert "--max-iters" not in err  # that one may change
    err = cli_error(capsys, ["train", "--out-dir", str(tmp_path), "--preset", "shakespeare-char", "--resume",
                             "--no-progress"])
    assert err.startswith("tinygrad-llm train: error: --preset shakespeare-char with the flags given: --batch-size 64 "
                          "differs from the run's 4;")
    assert snapshot(tmp_path) == before
    # the Python API: the run's settings from run_config; a fixed one that differs is refused, naming it
    assert run_config(tmp_path) == config(tmp_path, max_iters=2, eval_interval=1)
    with pytest.raises(ConfigError, match=r"resume: batch_size 8 differs from the run's 4: a resumed run keeps"):
        train(config(tmp_path, max_iters=4, eval_interval=1, batch_size=8), resume=True, progress=False, log=quiet)
    assert snapshot(tmp_path) == before


# ---- a run that diverges stops, and keeps its last finite checkpoint (issue 23) ----

def test_a_diverging_run_stops_naming_the_iteration_and_keeps_its_finite_checkpoints(shakespeare, tmp_path, capsys):
    """Before: at a learning rate of 100 the loss turned NaN, NumPy's RuntimeWarnings filled the terminal, every
    evaluation saved NaN weights to last.safetensors, and the run printed "done" and exited 0."""
    blow_up = dict(learning_rate=100, min_lr=0, max_iters=40, eval_interval=5)
    done = subprocess.run([sys.executable, "-m", "tinygrad_llm", "train", *flags(tmp_path, **blow_up),
                           "--no-progress"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 3, done.stderr
    steps = [r for r in records(tmp_path) if "loss" in r]
    evals = [r for r in records(tmp_path) if "val_loss" in r]
    diverged = len(steps)  # steps 0 .. diverged - 1 were logged, finite; the next one stopped the run
    assert [r["iter"] for r in steps] == list(range(diverged)) and diverged < 40
    assert all(math.isfinite(r["loss"]) for r in steps)
    assert all(math.isfinite(r["val_loss"]) and math.isfinite(r["train_loss"]) for r in evals)
    assert f"tinygrad-llm train: stopped: the run diverged at iteration {diverged}: the " in done.stderr
    assert "the learning rate is likely too high" in done.stderr
    assert "RuntimeWarning" not in done.stderr and "Traceback" not in done.stderr
    assert "done after" not in done.stdout
    last = load_checkpoint(tmp_path / "last.safetensors")  # refuses NaN or inf: the weights are finite
    assert last.meta["iter"] == evals[-1]["iter"] and f"(the latest at iteration {evals[-1]['iter']})" in done.stderr
    load_checkpoint(tmp_path / "best.safetensors")
    # the way on that the message gives: resume with a lower learning rate
    assert main(["train", "--out-dir", str(tmp_path), "--learning-rate", "1e-3", "--min-lr", "1e-4", "--resume",
                 "--no-progress"]) == 0
    assert "learning_rate is 0.001 from here on (the run's was 100.0)" in capsys.readouterr().out
    assert load_checkpoint(tmp_path / "last.safetensors").meta["iter"] == 40


def test_allow_nonfinite_trains_on_through_the_blow_up_saying_so_once(shakespeare, tmp_path, capsys):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main(["train", *flags(tmp_path, learning_rate=100, min_lr=0, max_iters=40, eval_interval=20),
                     "--allow-nonfinite", "--no-progress"]) == 0
    assert not [w for w in caught if issubclass(w.category, RuntimeWarning)]
    out = capsys.readouterr().out
    assert len([line for line in out.splitlines() if "carrying on (allow_nonfinite)" in line]) == 1
    assert "done after" in out
    with pytest.raises(CheckpointError, match="NaN or infinite values"):
        load_checkpoint(tmp_path / "last.safetensors")
    assert load_checkpoint(tmp_path / "last.safetensors", allow_nonfinite=True).meta["iter"] == 40


def test_a_non_finite_evaluation_stops_the_run_before_it_is_saved(shakespeare, tmp_path, monkeypatch):
    from tinygrad_llm.recipes import train as recipe
    evaluate = recipe.evaluate

    def val_turns_infinite(run, iteration):  # finite weights, but a loss that overflows from iteration 10
        return {**evaluate(run, iteration), **({"val": math.inf} if iteration >= 10 else {})}
    monkeypatch.setattr(recipe, "evaluate", val_turns_infinite)
    with pytest.raises(Diverged, match="diverged at iteration 10: the evaluated val loss is inf; ") as stop:
        train(config(tmp_path, max_iters=20, eval_interval=5), progress=False, log=quiet)
    assert stop.value.iteration == 10
    assert load_checkpoint(tmp_path / "last.safetensors").meta["iter"] == 5
    assert [r["iter"] for r in records(tmp_path) if "val_loss" in r] == [0, 5]


def test_resume_without_a_checkpoint_is_a_clear_error(shakespeare, tmp_path, capsys):
    err = cli_error(capsys, ["train", *flags(tmp_path, max_iters=2), "--resume", "--no-progress"])
    assert str(tmp_path / "last.safetensors") in err


# ---- the out-dir: runs never clobber each other (issue 14) ----

def snapshot(directory):
    return {p.name: p.read_bytes() for p in pathlib.Path(directory).iterdir()}


def test_a_new_run_refuses_a_directory_holding_a_run(shakespeare, tmp_path, capsys):
    """Before: the second run replaced the first's best.safetensors by an untrained model and truncated its
    metrics."""
    assert main(["train", *flags(tmp_path, max_iters=4, eval_interval=2), "--no-progress"]) == 0
    before = snapshot(tmp_path)
    err = cli_error(capsys, ["train", *flags(tmp_path, max_iters=2, eval_interval=1), "--no-progress"])
    assert f"{tmp_path} holds a previous run (last.safetensors, best.safetensors, metrics.jsonl)" in err
    assert "--resume" in err and "--overwrite" in err
    assert snapshot(tmp_path) == before
    err = cli_error(capsys, ["train", *flags(tmp_path, max_iters=2), "--resume", "--overwrite", "--no-progress"])
    assert "give one of them" in err and snapshot(tmp_path) == before

    assert main(["train", *flags(tmp_path, max_iters=2, eval_interval=1), "--overwrite", "--no-progress"]) == 0
    assert [r["iter"] for r in records(tmp_path) if "val_loss" in r] == [0, 1, 2]  # the old lines are gone
    assert load_checkpoint(tmp_path / "best.safetensors").meta["iter"] <= 2


def test_nothing_is_written_before_the_run_is_known_to_start(shakespeare, tmp_path, capsys):
    short = tmp_path / "short.txt"
    short.write_text("to be, or not to be")
    for argv in (flags(tmp_path / "a", data=short), flags(tmp_path / "b", n_embd=30, n_head=4),
                 [*flags(tmp_path / "c"), "--resume"]):
        cli_error(capsys, ["train", *argv, "--max-iters", "2", "--no-progress"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["short.txt"]


def test_a_second_run_on_the_same_directory_fails_at_once(shakespeare, tmp_path, capsys):
    """Before: two runs interleaved metrics.jsonl and left the worse model as best."""
    with claim_out_dir(tmp_path, resume=False, overwrite=False, log=quiet):  # a run holding the directory
        err = cli_error(capsys, ["train", *flags(tmp_path, max_iters=2), "--no-progress"])
        assert f"{tmp_path} is in use by another run (pid {os.getpid()}, which holds {tmp_path / 'train.lock'})" in err
        assert sorted(p.name for p in tmp_path.iterdir()) == ["train.lock"]
    assert not (tmp_path / "train.lock").exists()  # released with the run


def test_a_lock_left_by_a_killed_run_is_taken_over(shakespeare, tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / "train.lock").write_text(f"{dead.pid}\n")
    lines = []
    train(config(tmp_path, max_iters=2, eval_interval=1), progress=False, log=lines.append)
    assert f"took over {tmp_path / 'train.lock'}, left by pid {dead.pid}, which is no longer running" in lines
    assert not (tmp_path / "train.lock").exists()


def test_a_file_system_without_locks_is_a_clear_error_and_leaves_nothing(shakespeare, tmp_path, capsys,
                                                                          monkeypatch):
    def no_locks(fd, operation):
        raise OSError(38, "Function not implemented")  # ENOSYS, as on file systems without flock(2)
    monkeypatch.setattr("tinygrad_llm.recipes.run_dir.fcntl.flock", no_locks)
    err = cli_error(capsys, ["train", *flags(tmp_path / "run", max_iters=2), "--no-progress"])
    assert f"cannot lock {tmp_path / 'run' / 'train.lock'} (Function not implemented)" in err
    assert "--out-dir on a local disk" in err
    assert not (tmp_path / "run").exists()


def test_a_resume_repairs_what_a_kill_left(shakespeare, tmp_path):
    """A kill leaves a torn last metrics line (before: every later resumed run failed at its very end, in
    plot_losses), lines logged after the last checkpoint, and the temporary file of a save; resume removes them
    all and the metrics read as one uninterrupted run's."""
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    train(config(straight, max_iters=30, eval_interval=10), progress=False, log=quiet)
    train(config(killed, max_iters=20, eval_interval=10), progress=False, log=quiet)
    with open(killed / "metrics.jsonl", "a") as f:  # what the killed run had written past iteration 20
        f.write(json.dumps({"iter": 20, "loss": 9.0}) + "\n" + json.dumps({"iter": 21, "loss": 9.0}) + "\n")
        f.write('{"iter": 22, "loss": 2.1')
    (killed / "last.safetensors.k2x9ab.tmp").mkdir()  # replace_atomically's folder, and the writer's own file
    (killed / "last.safetensors.k2x9ab.tmp" / ".tmpQ8aZ1w").write_bytes(b"half a checkpoint")
    lines = []
    train(config(killed, max_iters=30, eval_interval=10), resume=True, progress=False, log=lines.append)
    assert any("dropped 3 line(s) of metrics.jsonl" in line for line in lines)
    assert any("last.safetensors.k2x9ab.tmp, left by a run killed while writing it" in line for line in lines)
    assert not list(killed.glob("*.tmp"))
    assert [without_timing(r) for r in records(killed)] == [without_timing(r) for r in records(straight)]


def test_a_damaged_metrics_line_before_the_end_is_named(shakespeare, tmp_path, capsys):
    train(config(tmp_path, max_iters=4, eval_interval=2), progress=False, log=quiet)
    lines = (tmp_path / "metrics.jsonl").read_text().split("\n")
    lines[2] = "garbage"
    (tmp_path / "metrics.jsonl").write_text("\n".join(lines))
    err = cli_error(capsys, ["train", *flags(tmp_path, max_iters=6, eval_interval=2), "--resume", "--no-progress"])
    assert f"{tmp_path / 'metrics.jsonl'} line 3: not a metrics record" in err


def test_resume_falls_back_to_best_when_last_was_never_written(shakespeare, tmp_path):
    """A kill between saving best and last at the first evaluation leaves best alone."""
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    train(config(straight, max_iters=20, eval_interval=10), progress=False, log=quiet)
    train(config(killed, max_iters=10, eval_interval=10), progress=False, log=quiet)
    assert load_checkpoint(killed / "best.safetensors").meta["iter"] == 10  # the loss fell: best is as last
    (killed / "last.safetensors").unlink()
    lines = []
    train(config(killed, max_iters=20, eval_interval=10), resume=True, progress=False, log=lines.append)
    assert any(line.startswith("resuming from best.safetensors at iteration 10") for line in lines)
    a, b = load_checkpoint(straight / "last.safetensors"), load_checkpoint(killed / "last.safetensors")
    assert all(np.array_equal(a.model_state[k], b.model_state[k]) for k in a.model_state)
