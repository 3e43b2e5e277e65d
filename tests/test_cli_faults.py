"""Faults of the machine around a run, as a user meets them on the command line: an out-dir that cannot be written,
a disk that fills or a file-size limit during a save, a --data that is no readable text file, Ctrl-C during
start-up. Each ends with one line naming the path and the cause (exit status 2; 130 after Ctrl-C), never a
traceback, and loses nothing: the previous checkpoint stays whole, the lock is released, no temporary is left.

As root, chmod does not stop writes or reads: there the tests make os.access say what it would say to a user.
"""
import errno
import fcntl
import os
import pathlib
import resource
import shutil
import signal
import subprocess
import sys
import time

import pytest
from safetensors import SafetensorError

from conftest import cli_error
from test_cli import TINY, flags
from tinygrad_llm.recipes import checkpoint
from tinygrad_llm.recipes.checkpoint import load_checkpoint, replace_atomically
from tinygrad_llm.recipes.config import TrainConfig
from tinygrad_llm.recipes.run_dir import LOCK, claim_out_dir
from tinygrad_llm.recipes.train import _write, train


def deny(monkeypatch, path):
    """As root, make os.access refuse `path`, as a user's would after the chmod the test did."""
    if os.geteuid() == 0:
        real = os.access
        monkeypatch.setattr(os, "access", lambda where, mode, **kw: os.fspath(where) != os.fspath(path) and
                            real(where, mode, **kw))


def no_data_may_be_read(*args):
    raise AssertionError("the data was read before the out-dir was checked")


def assert_unlocked(path):
    """No process holds an flock on the file at `path`."""
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # BlockingIOError if one did
    finally:
        os.close(fd)


def assert_unlocked_and_tidy(out_dir):
    assert not (out_dir / LOCK).exists()
    assert not list(out_dir.glob("*.tmp"))
    assert_unlocked(out_dir)


# ---- the out-dir ----

@pytest.mark.parametrize("new", [False, True], ids=["existing", "new"])
def test_an_out_dir_that_cannot_be_written_is_refused_before_any_work(tmp_path, capsys, monkeypatch, new):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    deny(monkeypatch, locked)
    monkeypatch.setattr("tinygrad_llm.recipes.train.load_text", no_data_may_be_read)
    out_dir = locked / "run" if new else locked
    err = cli_error(capsys, ["train", *flags(out_dir), "--no-progress"])
    expected = f"cannot create --out-dir {out_dir} in {locked}" if new else f"cannot write in --out-dir {out_dir}"
    assert f"{expected}: Permission denied" in err, err
    locked.chmod(0o755)
    assert list(locked.iterdir()) == []


def disk_full_after(saves_that_succeed):
    """safetensors' save_file, writing part of the file and failing as it does on a full disk once
    `saves_that_succeed` calls have gone through."""
    calls, real = [], checkpoint.save_file

    def save_file(tensors, filename, metadata=None):
        calls.append(filename)
        real(tensors, filename, metadata=metadata)
        if len(calls) > saves_that_succeed:
            os.truncate(filename, 100)
            raise SafetensorError(f"Error while serializing: I/O error: {os.strerror(errno.ENOSPC)} "
                                  f"(os error {errno.ENOSPC})")
    return save_file


def test_a_save_that_fails_mid_run_keeps_the_previous_checkpoint_and_frees_the_out_dir(shakespeare, tmp_path,
                                                                                        capsys, monkeypatch):
    out_dir = tmp_path / "run"
    monkeypatch.setattr(checkpoint, "save_file", disk_full_after(2))  # iteration 0's last and best
    err = cli_error(capsys, ["train", *flags(out_dir, max_iters=40, eval_interval=20), "--no-progress"])
    assert f"cannot save {out_dir / 'last.safetensors'}: No space left on device" in err, err
    assert load_checkpoint(out_dir / "last.safetensors").meta["iter"] == 0  # the previous one, whole
    assert_unlocked_and_tidy(out_dir)


def test_an_out_dir_deleted_under_the_run_fails_the_next_save(shakespeare, tmp_path):
    out_dir = tmp_path / "run"

    def delete_it_before_the_first_save(line):
        if line.startswith("iter 0:"):  # iteration 0's evaluation, logged before its checkpoints are saved
            shutil.rmtree(out_dir)

    with pytest.raises(FileNotFoundError, match=f"^cannot save {out_dir / 'last.safetensors'}: {out_dir} was deleted"):
        train(TrainConfig(out_dir=str(out_dir), **TINY), progress=False, log=delete_it_before_the_first_save)
    assert not out_dir.exists()  # not made anew, without its metrics and its lock


def test_a_lock_file_that_cannot_be_removed_hides_no_error_and_is_released(tmp_path, monkeypatch):
    out_dir = tmp_path / "run"
    out_dir.mkdir()
    with pytest.raises(OSError, match="cannot save"):
        with claim_out_dir(out_dir, resume=False, overwrite=False, log=print):
            out_dir.chmod(0o555)  # made read-only under the run
            if os.geteuid() == 0:
                monkeypatch.setattr(pathlib.Path, "unlink", read_only)
            raise OSError(errno.EACCES, f"cannot save {out_dir / 'last.safetensors'}: Permission denied")
    monkeypatch.undo()
    out_dir.chmod(0o755)
    assert_unlocked(out_dir / LOCK)  # the file stays, unlocked: the next run takes it over


def read_only(path, missing_ok=False):
    raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))


def test_a_file_size_limit_fails_the_first_save_cleanly(shakespeare, tmp_path):
    """A real limit (ulimit -f; it binds root too): safetensors' own error, read for its cause."""
    out_dir = tmp_path / "run"

    def limit_files_to_8_kb():
        resource.setrlimit(resource.RLIMIT_FSIZE, (8_000, 8_000))  # the checkpoint is larger; Python ignores SIGXFSZ

    done = subprocess.run([sys.executable, "-m", "tinygrad_llm", "train", *flags(out_dir), "--no-progress"],
                          capture_output=True, text=True, preexec_fn=limit_files_to_8_kb, timeout=120)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.splitlines()[-1] == (f"tinygrad-llm train: error: cannot save {out_dir / 'last.safetensors'}: "
                                            f"File too large")
    assert not (out_dir / "last.safetensors").exists()
    assert_unlocked_and_tidy(out_dir)


def test_a_metrics_line_on_a_full_disk_names_the_file():
    with open("/dev/full", "a") as full:  # every write there fails with ENOSPC
        with pytest.raises(OSError) as info:
            _write(full, {"iter": 0, "loss": 4.2})
        assert info.value.strerror == "cannot write /dev/full: No space left on device"
        assert full.closed  # so that the `with` closing it does not raise the bare error over this one


def test_replace_atomically_names_the_file_and_the_cause_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "notes.txt"
    target.write_text("before")

    def disk_full(tmp):
        with open(tmp, "w") as f:
            f.write("half")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), tmp)

    with pytest.raises(OSError) as info:
        replace_atomically(target, disk_full)
    assert info.value.errno == errno.ENOSPC and info.value.strerror == f"cannot save {target}: No space left on device"
    assert target.read_text() == "before" and list(tmp_path.iterdir()) == [target]


def test_a_bug_in_a_writer_is_not_taken_for_a_full_disk(tmp_path):
    def buggy(tmp):
        raise SafetensorError("Error while serializing: invalid tensor view")  # no (os error N): not the machine
    with pytest.raises(SafetensorError, match="invalid tensor view"):
        replace_atomically(tmp_path / "a.safetensors", buggy)
    assert list(tmp_path.iterdir()) == []


# ---- --data ----

def unreadable(tmp_path, monkeypatch):
    path = tmp_path / "secret.txt"
    path.write_text("no one may read this\n")
    path.chmod(0o000)
    deny(monkeypatch, path)
    return path, f"cannot read --data {path}: Permission denied"


def directory(tmp_path, monkeypatch):
    return tmp_path, f"--data {tmp_path} is a directory, not a text file"


def fifo(tmp_path, monkeypatch):
    path = tmp_path / "pipe"
    os.mkfifo(path)  # opening it would wait for a writer: it must be refused from its stat alone
    return path, f"--data {path} is a named pipe (FIFO), not a text file"


def device(tmp_path, monkeypatch):
    return "/dev/null", "--data /dev/null is a device, not a text file"


def missing(tmp_path, monkeypatch):
    path = tmp_path / "nowhere.txt"
    return path, f"--data {path} does not exist"


@pytest.mark.parametrize("case", [unreadable, directory, fifo, device, missing])
def test_a_data_path_that_is_no_readable_text_file_is_named_and_nothing_is_written(tmp_path, capsys, monkeypatch,
                                                                                    case):
    data, message = case(tmp_path, monkeypatch)
    out_dir = tmp_path / "run"
    err = cli_error(capsys, ["train", *flags(out_dir, data=data), "--no-progress"])
    assert message in err, err
    assert not out_dir.exists()


# ---- Ctrl-C during start-up ----

THE_COMMAND = """
import signal, sys
import tinygrad_llm  # Python's start-up and the package's imports come first: no code of ours can catch a Ctrl-C there

class CtrlC:  # Ctrl-C as the module named first on the command line starts being imported
    def find_spec(self, name, path=None, target=None):
        if name == interrupted_at:
            signal.raise_signal(signal.SIGINT)

interrupted_at = sys.argv.pop(1)
if interrupted_at in sys.modules:
    sys.exit(f"{interrupted_at} was imported with the package: no Ctrl-C would come")
sys.meta_path.insert(0, CtrlC())
from tinygrad_llm.__main__ import main  # as the tinygrad-llm command does (and python -m, running the module)
print("started", flush=True)
sys.exit(main())
"""


def start(out_dir, interrupted_at="no module"):
    """The tinygrad-llm command training a run long enough to be in start-up or training when Ctrl-C comes,
    interrupted as the module `interrupted_at` starts being imported (if it is)."""
    process = subprocess.Popen([sys.executable, "-c", THE_COMMAND, interrupted_at, "train",
                                *flags(out_dir, max_iters=100_000, lr_decay_iters=100_000), "--no-progress"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    process.stdout.readline()  # "started", or nothing where it ended first
    return process


def assert_stopped_without_a_traceback(process):
    try:
        out, err = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == 130 and "Traceback" not in err, err
    return err


@pytest.mark.parametrize("module", ["tinygrad_llm.recipes.run_dir", "tinygrad_llm.models.gpt",
                                    "tinygrad_llm.recipes.train", "tqdm"])
def test_ctrl_c_while_the_command_line_imports_its_modules(shakespeare, tmp_path, module):
    err = assert_stopped_without_a_traceback(start(tmp_path / "run", interrupted_at=module))
    assert err.strip() in ("tinygrad-llm: interrupted", "tinygrad-llm train: stopped at once"), err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("delay", [0.0, 0.1, 0.25, 0.5, 1.0])
def test_ctrl_c_at_any_moment_of_start_up(shakespeare, tmp_path, delay):
    process = start(tmp_path / "run")
    time.sleep(delay)
    process.send_signal(signal.SIGINT)
    assert_stopped_without_a_traceback(process)
