"""Tests of the command line as a user meets it (tinygrad_llm/__main__.py): help and defaults for every flag,
negative numbers as values, settings checked before anything is written, --version, and Ctrl-C, which ends a run
cleanly with its iteration saved, so that --resume carries on bit for bit.

test_train.py tests what training does; these test what the command line does around it.
"""
import importlib.metadata
import json
import math
import shlex
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import tinygrad_llm
from conftest import cli_error
from tinygrad_llm.__main__ import _attach_negative_values, main
from tinygrad_llm.recipes.checkpoint import load_checkpoint
from tinygrad_llm.recipes.config import FIELDS, PRESETS, ConfigError, TrainConfig
from tinygrad_llm.recipes.run_dir import claim_out_dir
from tinygrad_llm.recipes.train import StopSignals, train

TINY = dict(batch_size=4, block_size=16, n_layer=1, n_head=2, n_embd=16, warmup_iters=5, lr_decay_iters=40,
            max_iters=40, eval_interval=20, eval_iters=1, log_interval=1)


def flags(out_dir, **changes):
    settings = {**TINY, "out_dir": out_dir, **changes}
    return [word for name, value in settings.items() for word in ("--" + name.replace("_", "-"), str(value))]


def help_entries(capsys, monkeypatch, argv):
    """--help's options, one string per option: its flags, then its help, unwrapped."""
    monkeypatch.setenv("COLUMNS", "1000")  # a wide terminal: argparse wraps no help line
    with pytest.raises(SystemExit) as exit:
        main([*argv, "--help"])
    assert exit.value.code == 0
    entries = []
    for line in capsys.readouterr().out.split("options:")[1].splitlines():
        if line.startswith("  -"):  # an option; its help follows on this line or on the next, indented deeper
            entries.append(line.strip())
        elif line.startswith("   ") and entries:
            entries[-1] += " " + line.strip()
    return entries


# ---- help ----

@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_every_train_flag_has_help_and_shows_its_presets_default(capsys, monkeypatch, preset):
    entries = help_entries(capsys, monkeypatch, ["train", "--preset", preset])
    assert len(entries) == 1 + 5 + len(FIELDS)  # --help, --preset, --resume, --overwrite, --no-progress, --allow-...
    for name in FIELDS:
        flag = "--" + name.replace("_", "-")
        entry = next(entry for entry in entries if entry.split()[0].rstrip(",") == flag)
        default = getattr(PRESETS[preset], name)
        if default == "":  # --data: the help line says what empty means, and no "(default: )" follows it
            assert "(default:" not in entry and "empty: Tiny Shakespeare" in entry, entry
        else:
            assert entry.endswith(f"(default: {default})"), entry
        help_words = entry.split("(default:")[0].split()[2:]  # after the flag and its metavar (or --no-flag)
        assert len(help_words) >= 2, f"{flag} has no help line: {entry}"
    assert any(entry.startswith("--resume") and entry.endswith("(default: False)") for entry in entries)


def test_train_help_lists_the_exit_statuses(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "1000")
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "Exit status: 0 when the run is done; 2 when a flag, a setting or a file is refused; 3 when the run " \
           "diverged" in out and "130 after Ctrl-C, 143 after SIGTERM" in out


def test_every_sample_flag_has_help_and_its_default(capsys, monkeypatch):
    entries = help_entries(capsys, monkeypatch, ["sample"])[1:]  # after --help
    assert len(entries) == 12
    for entry in entries:
        assert "(default: " in entry and len(entry.split("(default:")[0].split()) > 3, entry
    assert any(entry.startswith("--temperature") and entry.endswith("(default: 0.8)") for entry in entries)
    assert any(entry.startswith("--prompt") and entry.endswith("(default: '\\n')") for entry in entries)  # not a break


def test_version_is_the_packages(capsys):
    with pytest.raises(SystemExit) as exit:
        main(["--version"])
    assert exit.value.code == 0
    assert capsys.readouterr().out == f"tinygrad-llm {tinygrad_llm.__version__}\n"
    assert importlib.metadata.version("tinygrad_llm") == tinygrad_llm.__version__  # setup.py reads the same


# ---- values: negative numbers reach the checks, which name the flag; nothing is written before they pass ----

def test_negative_numbers_are_values_not_flags():
    assert _attach_negative_values(["train", "--learning-rate", "-1e-3", "--min-lr", "-inf", "--no-progress"]) == \
        ["train", "--learning-rate=-1e-3", "--min-lr=-inf", "--no-progress"]
    assert _attach_negative_values(["--prompt", "-x", "--seed=-1", "--top-k", "5"]) == \
        ["--prompt", "-x", "--seed=-1", "--top-k", "5"]


@pytest.mark.parametrize("flag, value, message", [
    ("--learning-rate", "-1e-3", "--learning-rate must be positive, got -0.001"),
    ("--learning-rate", "nan", "--learning-rate must be a finite number, got nan"),
    ("--learning-rate", "inf", "--learning-rate must be a finite number, got inf"),
    ("--min-lr", "-inf", "--min-lr must be a finite number, got -inf"),
    ("--warmup-iters", "-5", "--warmup-iters must not be negative, got -5"),
    ("--dropout", "1", "--dropout must be in [0, 1), got 1.0"),
    ("--beta2", "-0.5", "--beta2 must be in [0, 1), got -0.5"),
    ("--grad-clip", "-1", "--grad-clip must not be negative, got -1.0"),
    ("--n-head", "3", "--n-embd (16) must be a multiple of --n-head (3)"),
    ("--min-lr", "0.5", "--min-lr must be in [0, --learning-rate]"),
    ("--batch-size", "0", "--batch-size must be at least 1, got 0"),
    ("--lr-decay-iters", "5", "--lr-decay-iters (5) must exceed --warmup-iters (5)"),
    ("--seed", "-1", "--seed must not be negative, got -1"),
    ("--device", "tpu", "--device must be 'cpu' or 'cuda', got 'tpu'"),
])
def test_a_setting_that_cannot_work_is_refused_naming_its_flag(tmp_path, capsys, flag, value, message):
    out_dir = tmp_path / "run"
    err = cli_error(capsys, ["train", *flags(out_dir), flag, value, "--no-progress"])
    assert message in err, err
    assert not out_dir.exists()


def test_resume_with_another_max_iters_keeps_the_runs_own_settings(shakespeare, tmp_path, capsys):
    """Before: the flags not given took the preset's values, so this resume was refused for the architecture, and
    given it, went on with the preset's batch size (12, not 4), warmup (100, not 5) and decay (2000, not 40)."""
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    assert main(["train", *flags(straight, max_iters=60), "--no-progress"]) == 0
    assert main(["train", *flags(resumed, max_iters=20), "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["train", "--out-dir", str(resumed), "--max-iters", "60", "--resume", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert [line for line in out.splitlines() if "from here on" in line] == \
        ["max_iters is 60 from here on (the run's was 20)"]
    assert metrics(resumed) == metrics(straight)  # the run's batches and schedule throughout
    saved = load_checkpoint(resumed / "last.safetensors").meta["train_config"]
    assert {k: saved[k] for k in TINY} == {**TINY, "max_iters": 60}


def test_the_python_api_names_the_field():
    with pytest.raises(ConfigError, match=r"TrainConfig: warmup_iters must not be negative, got -5"):
        TrainConfig(warmup_iters=-5)
    with pytest.raises(ConfigError, match=r"TrainConfig: learning_rate must be a finite number, got nan"):
        TrainConfig(learning_rate=math.nan)


def test_a_learning_rate_of_100_trains_with_a_warning(shakespeare, tmp_path, capsys):
    assert main(["train", *flags(tmp_path, max_iters=2, learning_rate=100, min_lr=0), "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert "tinygrad-llm train: warning: --learning-rate 100.0 is far above AdamW's usual" in err
    assert TrainConfig().doubts() == []


def test_a_run_that_fails_before_its_first_file_leaves_no_directory(tmp_path):
    out_dir = tmp_path / "new" / "run"
    with pytest.raises(RuntimeError, match="no GPU"):
        with claim_out_dir(out_dir, resume=False, overwrite=False, log=print):
            raise RuntimeError("no GPU")  # as a model that cannot move to its device
    assert not out_dir.exists()
    with claim_out_dir(tmp_path, resume=False, overwrite=False, log=print):  # a directory it did not make stays
        pass
    assert tmp_path.is_dir()


@pytest.mark.parametrize("flag, value, message", [
    ("--temperature", "-1", "--temperature must be a finite number at least 0"),
    ("--temperature", "nan", "--temperature must be a finite number at least 0"),
    ("--top-k", "0", "--top-k must be at least 1, got 0"),
    ("--top-p", "1.5", "--top-p must be in (0, 1], got 1.5"),
    ("--top-p", "nan", "--top-p must be in (0, 1], got nan"),
    ("--max-new-tokens", "-1", "--max-new-tokens must not be negative, got -1"),
    ("--num-samples", "0", "--num-samples must be at least 1, got 0"),
    ("--prompt", "", "--prompt must hold at least one character"),
])
def test_sample_refuses_meaningless_values_before_reading_the_checkpoint(tmp_path, capsys, flag, value, message):
    err = cli_error(capsys, ["sample", "--ckpt", str(tmp_path / "missing.safetensors"), flag, value])
    assert message in err, err  # the setting, not the missing file


# ---- Ctrl-C and SIGTERM ----

def test_ctrl_c_is_noted_once_then_stops_at_once():
    lines = []
    with StopSignals(lines.append) as stop:
        signal.raise_signal(signal.SIGINT)
        assert stop.received == signal.SIGINT and "Ctrl-C: stopping after this step" in lines[0]
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_sigterm_is_noted_once_then_left_to_end_the_process():
    lines = []
    with StopSignals(lines.append) as stop:
        signal.raise_signal(signal.SIGTERM)
        assert stop.received == signal.SIGTERM and "SIGTERM: stopping after this step" in lines[0]
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # a second SIGTERM ends the process
        signal.raise_signal(signal.SIGINT)
        assert stop.received == signal.SIGTERM  # the first signal decides the exit status
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


class SignalDuringAllReduce:
    """A world of 2 ranks whose first all-reduce is interrupted by Ctrl-C (where a rank spends its waiting); the
    other rank has received nothing, so the sum is this rank's own votes."""
    size = 2

    def __init__(self):
        self.calls = 0

    def sum(self, values):
        self.calls += 1
        if self.calls == 1:
            signal.raise_signal(signal.SIGINT)
        return np.array(values, dtype=np.float64)


def test_a_signal_that_lands_during_the_all_reduce_is_counted_at_the_next_one():
    with StopSignals(lambda line: None) as stop:
        world = SignalDuringAllReduce()
        assert stop.agree(world) is None            # this rank had voted before the signal came: all go on
        assert stop.agree(world) == signal.SIGINT   # not lost: every rank stops one iteration later
        assert stop.agreed == signal.SIGINT


def test_signals_a_caller_handles_are_left_alone():
    def mine(number, frame):
        pass
    previous = signal.signal(signal.SIGTERM, mine)
    try:
        with StopSignals(lambda line: None) as stop:
            assert signal.getsignal(signal.SIGTERM) is mine
            signal.raise_signal(signal.SIGTERM)
            assert stop.received is None
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_ctrl_c_before_training_begins_stops_without_a_traceback(tmp_path, capsys, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt  # as a Ctrl-C while the data loads
    monkeypatch.setattr("tinygrad_llm.recipes.train.train", interrupted)
    assert main(["train", *flags(tmp_path / "run")]) == 130
    assert capsys.readouterr().err == "\ntinygrad-llm train: stopped at once\n"


def metrics(out_dir):
    return [{k: v for k, v in json.loads(line).items() if k not in ("ms_per_iter", "tokens_per_s")}
            for line in open(out_dir / "metrics.jsonl")]


def test_ctrl_c_saves_the_iteration_reached_and_resume_continues_bit_for_bit(shakespeare, tmp_path):
    run = dict(max_iters=400, lr_decay_iters=400, eval_interval=200, dropout=0.1)
    reference = tmp_path / "uninterrupted"
    train(TrainConfig(out_dir=str(reference), **{**TINY, **run}), progress=False, log=lambda line: None)

    out_dir = tmp_path / "run"
    process = subprocess.Popen([sys.executable, "-m", "tinygrad_llm", "train", *flags(out_dir, **run)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        # step 29 was logged: whole lines counted, as the run may be writing the next one
        while not ((out_dir / "metrics.jsonl").exists() and (out_dir / "metrics.jsonl").read_text().count("\n") > 30):
            assert process.poll() is None and time.monotonic() < deadline, "the run ended before it was interrupted"
            time.sleep(0.001)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 130 and "Traceback" not in err, err
    saved = load_checkpoint(out_dir / "last.safetensors")
    reached = saved.meta["iter"]
    assert 30 <= reached < 200  # between two evaluations: this checkpoint is Ctrl-C's own
    assert f"interrupted at iteration {reached}, saved in {out_dir / 'last.safetensors'}" in out
    assert [r["iter"] for r in metrics(out_dir) if "loss" in r] == list(range(reached))  # every step done
    command = err.split("to continue: ")[1].strip()
    assert command.startswith("python -m tinygrad_llm train ") and command.endswith(" --resume")

    assert main(shlex.split(command)[3:] + ["--no-progress"]) == 0  # as typed, less the progress bar
    assert metrics(out_dir) == metrics(reference)
    resumed, expected = load_checkpoint(out_dir / "last.safetensors"), load_checkpoint(reference / "last.safetensors")
    assert resumed.meta["rng"] == expected.meta["rng"]
    for name, array in expected.model_state.items():
        assert resumed.model_state[name].tobytes() == array.tobytes(), name
    for index, entry in expected.optimizer_state["state"].items():
        for key, value in entry.items():
            assert np.array_equal(resumed.optimizer_state["state"][index][key], value), (index, key)
