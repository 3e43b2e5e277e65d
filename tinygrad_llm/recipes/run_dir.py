"""A training run's out-dir: one run at a time, and nothing an earlier run saved is lost by accident.

    check_out_dir(out_dir, resume, overwrite)               # read only: refuses at once, before any work
    ...                                                     # load the data, check the config
    with claim_out_dir(out_dir, resume, overwrite, log) as resume_from:    # the directory is this run's now
        ...                                                 # on resume, load resume_from, trim_metrics(...)

- A new run refuses a directory that holds a previous run's files (checkpoints, metrics.jsonl) unless told to
  continue it (`--resume`) or to delete them (`--overwrite`).
- An out-dir this process cannot create or write in (another user's, a read-only disk) is refused at once, naming
  the cause. When a write fails while the run holds the directory (a full disk), the lock is released all the same.
- The lock: `train.lock`, held with flock(2) for as long as the run lives, holds its pid. A second run on the same
  directory fails at once, naming that pid. The kernel drops the lock of a process that dies, so a lock file left
  by a killed run is free to take, and is taken over (and said so).
- What a kill leaves is tidied at the next start, under the lock: replace_atomically's temporary folders, and on
  resume the lines of metrics.jsonl past the checkpoint (a torn last line among them). Resuming takes
  last.safetensors, or best.safetensors where a kill came before the first last was written.
"""
import contextlib
import errno
import fcntl
import json
import os
from pathlib import Path

from ..tools.telemetry_plots import PNGS
from .checkpoint import remove_temporaries, replace_atomically

LOCK = "train.lock"
CHECKPOINTS = ("last.safetensors", "best.safetensors")  # resume prefers the first
METRICS = "metrics.jsonl"
TELEMETRY = "telemetry.jsonl"  # with --telemetry, and its plots
RUN_FILES = (*CHECKPOINTS, METRICS, "loss.png", TELEMETRY, *PNGS)  # what a run writes


def check_out_dir(out_dir, resume, overwrite):
    """Refuse `out_dir` unless it suits the flags (reads only); returns the checkpoint to resume from, or None."""
    out_dir = Path(out_dir)
    if resume and overwrite:
        raise ValueError(f"--resume continues the run in {out_dir}, --overwrite deletes it: give one of them")
    _check_writable(out_dir)
    held = [name for name in (*CHECKPOINTS, METRICS) if (out_dir / name).exists()]
    if resume:
        for name in CHECKPOINTS:
            if (out_dir / name).is_file():
                return out_dir / name
        killed = " (metrics.jsonl is there: the run was stopped before its first checkpoint; start again " \
                 "with --overwrite)" if METRICS in held else ""
        raise FileNotFoundError(f"nothing to resume in {out_dir}: neither {out_dir / CHECKPOINTS[0]} nor "
                                f"{CHECKPOINTS[1]} exists{killed}")
    if held and not overwrite:
        raise ValueError(f"{out_dir} holds a previous run ({', '.join(held)}): continue it with --resume, or "
                         f"delete it and start again with --overwrite")
    return None


def _check_writable(out_dir):
    """Refuse an out-dir that this process may not create or write in (another user's directory, a read-only
    disk), naming the cause: claim_out_dir would find out only after the data and the tokenizer were made."""
    existing = out_dir
    while not existing.exists():  # the directory that mkdir would write in
        existing = existing.parent
    if not existing.is_dir():
        raise ValueError(f"--out-dir {out_dir} is a file, not a directory" if existing == out_dir else
                         f"--out-dir {out_dir}: {existing} is a file, not a directory")
    if not os.access(existing, os.W_OK | os.X_OK):
        code = errno.EROFS if os.statvfs(existing).f_flag & os.ST_RDONLY else errno.EACCES
        where = f"write in --out-dir {out_dir}" if existing == out_dir else f"create --out-dir {out_dir} in {existing}"
        raise OSError(code, f"cannot {where}: {os.strerror(code)}")


@contextlib.contextmanager
def claim_out_dir(out_dir, resume, overwrite, log):
    """Make `out_dir` this run's for the `with` block: create it, lock it, check it again (another run may have
    written there since check_out_dir), remove what a killed run left, and with `overwrite` the previous run.
    Yields the checkpoint to resume from (None unless `resume`). A directory it made is removed again if the
    block leaves it empty (the run failed before its first file)."""
    out_dir = Path(out_dir)
    made = not out_dir.exists()
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        lock = _lock(out_dir / LOCK, log)
    except BaseException:
        if made:  # nothing of ours may stay: the lock file this call created, and the directory
            with contextlib.suppress(OSError):  # the error that stopped us is the one to report
                (out_dir / LOCK).unlink(missing_ok=True)
                out_dir.rmdir()
        raise
    try:
        resume_from = check_out_dir(out_dir, resume, overwrite)
        for tmp in remove_temporaries(out_dir, RUN_FILES):
            log(f"removed {tmp}, left by a run killed while writing it")
        if overwrite:
            for name in RUN_FILES:
                (out_dir / name).unlink(missing_ok=True)
        yield resume_from
    finally:
        # In a directory made read-only or deleted under the run, removing fails: the error that ended the run is
        # the one to report, not this one raised over it.
        with contextlib.suppress(OSError):
            (out_dir / LOCK).unlink(missing_ok=True)  # while still locked: a run that opened it sees it gone (_lock)
        os.close(lock)  # unlocked, even where the file stays (the next run takes it over)
        if made:
            with contextlib.suppress(OSError):  # rmdir refuses a directory that is not empty
                out_dir.rmdir()  # a run that failed before writing anything leaves no trace


def _lock(path, log):
    """Take the lock file `path` (creating it), write our pid in it, return its descriptor; or raise, naming the
    pid of the live run that holds it."""
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise ValueError(f"{path.parent} is in use by another run (pid {holder}, which holds {path}): wait "
                             f"for it to end, or give another --out-dir") from None
        except OSError as e:  # some network file systems have no flock(2)
            os.close(fd)
            raise RuntimeError(f"cannot lock {path} ({e.strerror}): its file system may not support locks; give "
                               f"an --out-dir on a local disk") from None
        # The holder before us unlinks the file before unlocking it: if `path` is no longer the file we locked,
        # we locked a deleted file, and try again on the new one.
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(path))
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    previous = os.read(fd, 32).decode("ascii", "replace").strip()
    if previous:
        log(f"took over {path}, left by pid {previous}, which is no longer running")
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def trim_metrics(out_dir, iteration):
    """Before resuming at `iteration`: keep the lines of metrics.jsonl that the checkpoint had seen (steps before
    it, evaluations up to it), so the resumed run's lines carry on as one run's would. Drops what a kill left
    behind it: a torn last line, and lines the resumed run logs again. A damaged line before the end is an error
    naming it. Returns how many lines were dropped."""
    path = Path(out_dir) / METRICS
    if not path.exists():
        return 0
    text = path.read_text(encoding="utf-8", errors="replace")
    lines = text.split("\n")
    kept = []
    for number, line in enumerate(lines, start=1):
        if not line:
            continue
        try:
            record = json.loads(line)
            step = record["iter"]
            if type(step) is not int:
                raise TypeError
        except (ValueError, KeyError, TypeError):
            if number == len(lines):  # the last line, with no newline after it: torn by a kill
                continue
            raise ValueError(f"{path} line {number}: not a metrics record ({line[:60]!r}); move the file away to "
                             f"resume without it") from None
        if step < iteration or (step == iteration and "val_loss" in record):
            kept.append(line)
    dropped = sum(1 for line in lines if line) - len(kept)
    if dropped or text and not text.endswith("\n"):  # appending after a line with no newline would join two lines
        replace_atomically(path, lambda tmp: Path(tmp).write_text("".join(line + "\n" for line in kept)))
    return dropped
