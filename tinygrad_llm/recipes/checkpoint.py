"""Checkpoints: a model, its optimizer and the trainer's bookkeeping in one safetensors file that proves its integrity.

    save_checkpoint("out/ckpt.safetensors", model, optimizer, meta={"iter": 500, "rng": rng.get_state()})
    ckpt = load_checkpoint("out/ckpt.safetensors")
    restore(ckpt, model, optimizer)               # resume training exactly where it stopped
    model = model_from_checkpoint(ckpt)           # or rebuild the model alone, to sample from it
    model, tokenizer = load_lm("out/best.safetensors")   # both, as sampling and fine-tuning want them

The file holds each model parameter once under its state_dict name (`transformer.wte.weight`, ...; the tied
`lm_head.weight` is not stored again, the header records the tie), the optimizer's per-parameter arrays as
`optimizer.state.{index}.{key}` (`optimizer.state.3.exp_avg`), and one header entry of JSON: the format version,
the model config, a CRC-32 per tensor, the optimizer's class, parameter names, options and step counts, and the
trainer's `meta` (iteration, tokenizer, RNG state, ...), itself under a checksum. checkpoint_schema.py says what
each field must be; loading checks all of it from the header before reading a tensor, then each tensor's
checksum, and refuses NaN or inf weights unless allow_nonfinite. Every error names the file, and the field or the
tensor.

Saving is atomic: the file is written under a temporary name beside `path`, forced to disk, then renamed over
`path` in one step, so a crash while saving leaves the previous checkpoint as it was (a kill also leaves the
temporary folder, which `remove_temporaries` clears), and so does a failed save (a full disk: an OSError naming the
file and the cause).
"""
import dataclasses
import json
import os
import pathlib
import re
import shutil
import tempfile
import zlib
from typing import Optional

from safetensors import SafetensorError, safe_open
from safetensors.numpy import save_file

from .. import nn
from ..models.gpt import GPT, GPTConfig
from .checkpoint_schema import (CHECKSUM_KEY, FORMAT, METADATA_KEY, OPTIMIZER_PREFIX, RESERVED, CheckpointError,
                                MissingCheckpointError, check_header, check_tensors, checksum)
from .gpt_tensors import LM_HEAD, TIED

TEMPORARY_SUFFIX = ".tmp"  # replace_atomically's folders are `{name}.{random}.tmp`


@dataclasses.dataclass
class Checkpoint:
    """What load_checkpoint read: `model_state` and `optimizer_state` are ready for the load_state_dict
    methods (`optimizer_state` is None when no optimizer was saved; `model_state` names a tied parameter under
    each of its names, one array); `meta` is the trainer's dict, `tokenizer` the one it describes (or None)."""
    path: pathlib.Path
    model_config: dict
    model_state: dict
    optimizer_class: Optional[str]
    optimizer_params: Optional[list]
    optimizer_state: Optional[dict]
    meta: dict
    tokenizer: object = None


def save_checkpoint(path, model, optimizer=None, meta=None):
    """Write `model` (a GPT), `optimizer` (optional, over some of the model's parameters) and `meta` (a
    JSON-friendly dict) to `path`, atomically."""
    meta = dict(meta or {})
    clash = sorted(set(meta) & set(RESERVED))
    if clash:
        raise ValueError(f"save_checkpoint: meta may not use the reserved key(s) {clash}")
    names = {id(p): name for name, p in model.named_parameters()}  # a tied parameter under its first name only
    state = model.state_dict()
    tied = {name: names[id(p)] for name, p in model.named_parameters(remove_duplicate=False) if names[id(p)] != name}
    if tied != TIED:
        raise ValueError(f"save_checkpoint: the model's tied parameters are {tied}; a GPT's are {TIED}")
    tensors = {name: state[name].numpy() for name in names.values()}
    header = {"format": FORMAT, "model_config": model.config.to_dict(), "tied": tied, "optimizer": None}
    if optimizer is not None:
        params = [p for group in optimizer.param_groups for p in group["params"]]
        if any(id(p) not in names for p in params):
            raise ValueError("save_checkpoint: the optimizer holds a tensor that is not a parameter of the model")
        saved = optimizer.state_dict()
        steps = {}
        for index, entry in saved["state"].items():
            for key, value in entry.items():
                if key == "step":
                    steps[index] = int(value)
                else:
                    tensors[f"{OPTIMIZER_PREFIX}{index}.{key}"] = value.numpy()
        header["optimizer"] = {"class": type(optimizer).__name__, "params": [names[id(p)] for p in params],
                               "param_groups": saved["param_groups"], "steps": steps}
    header["checksums"] = {name: checksum(array) for name, array in tensors.items()}
    text = json.dumps({**header, **meta})
    metadata = {METADATA_KEY: text, CHECKSUM_KEY: str(zlib.crc32(text.encode("utf-8")))}
    replace_atomically(pathlib.Path(path), lambda tmp: save_file(tensors, tmp, metadata=metadata))


def replace_atomically(path, write):
    """write(temporary path) inside a temporary folder beside `path`, force the bytes to disk, then rename over
    `path` in one step: a crash leaves the old file or the new one, never half of one. On any exception,
    KeyboardInterrupt included, the folder is removed (as far as the disk lets it) and `path` is left untouched.
    Its directories are made if need be. The machine's refusal (a full disk, a file-size limit, a directory that
    cannot be written) is raised as an OSError of its errno naming `path` and the cause, "cannot save
    out/last.safetensors: No space left on device". The folder holds whatever the writer makes (safetensors writes
    a `.tmpXXXXXX` of its own beside its target), so a kill leaves one thing, `{name}.{random}.tmp`, which
    remove_temporaries clears. (pretrained.py and run_dir.py write with this too.)"""
    folder = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        folder = tempfile.mkdtemp(dir=path.parent, prefix=path.name + ".", suffix=TEMPORARY_SUFFIX)
        tmp = os.path.join(folder, path.name)
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())  # the bytes reach the disk before the rename makes them the file
        os.replace(tmp, path)
    except OSError as err:
        raise _cannot_save(path, err.errno, err.strerror or str(err)) from err
    except SafetensorError as err:  # its writer reports the system's error as "... No space left (os error 28)"
        code = re.search(r"\(os error (\d+)\)", str(err))
        if code is None:
            raise  # not the machine's doing: a bug, shown with its traceback
        raise _cannot_save(path, int(code[1]), os.strerror(int(code[1]))) from err
    finally:
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)  # what it cannot remove, the next run's start does


def _cannot_save(path, code, cause):
    message = f"cannot save {path}: {cause}"
    return OSError(code, message) if code is not None else OSError(message)  # OSError(ENOENT, ...): FileNotFoundError


def remove_temporaries(directory, names):
    """Delete what replace_atomically left in `directory` for the files `names` when its process was killed
    mid-write; returns the paths removed. (Only while no process may be writing them.)"""
    removed = []
    for name in names:
        for tmp in pathlib.Path(directory).glob(f"{name}.*{TEMPORARY_SUFFIX}"):
            if tmp.is_dir():
                shutil.rmtree(tmp)
            else:  # versions before the folder left the file itself
                tmp.unlink()
            removed.append(tmp)
    return removed


def load_checkpoint(path, allow_nonfinite=False):
    """Read a checkpoint written by save_checkpoint. A missing, damaged, edited or foreign file raises a
    CheckpointError (MissingCheckpointError for none) naming it and what is wrong; so do NaN or infinite weights
    or moments, unless `allow_nonfinite` (to look at a run that diverged)."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise MissingCheckpointError(path, "no checkpoint here: checkpoints are written by "
                                           "`python -m tinygrad_llm train`")
    try:
        with safe_open(path, framework="np") as f:
            stored = {name: (f.get_slice(name).get_dtype(), tuple(f.get_slice(name).get_shape()))
                      for name in f.keys()}
            header = check_header(f.metadata(), stored, path)  # all of it, before any tensor is read
            arrays = {name: f.get_tensor(name) for name in stored}
    except SafetensorError as err:
        raise CheckpointError(path, f"not a readable checkpoint: {err} (truncated or corrupt?)") from None
    check_tensors(arrays, header, path, allow_nonfinite)
    model_state = {name: array for name, array in arrays.items() if not name.startswith(OPTIMIZER_PREFIX)}
    model_state.update({alias: model_state[name] for alias, name in TIED.items()})  # one array, each name
    saved, optimizer_state = header.optimizer, None
    if saved is not None:
        state = {index: {"step": step} for index, step in saved["steps"].items()}
        for name, array in arrays.items():
            if name.startswith(OPTIMIZER_PREFIX):
                index, key = name[len(OPTIMIZER_PREFIX):].split(".", 1)
                state.setdefault(int(index), {})[key] = array
        # JSON turned the betas tuples into lists; the optimizers keep tuples
        groups = [{k: tuple(v) if k == "betas" else v for k, v in group.items()} for group in saved["param_groups"]]
        optimizer_state = {"state": dict(sorted(state.items())), "param_groups": groups}
    return Checkpoint(path, header.config.to_dict(), model_state, saved and saved["class"], saved and saved["params"],
                      optimizer_state, header.meta, header.tokenizer)


def restore(checkpoint, model, optimizer=None):
    """Load the checkpoint's weights into `model` and, when both exist, its state into `optimizer`.

    The model config, the optimizer's class and its parameters (the model's, by name, in the saved order) are
    checked first, the load_state_dict methods check names, shapes, dtypes and options before writing, and a
    failing optimizer load puts the old weights back: an error (a CheckpointError naming the file) leaves model
    and optimizer as they were. Without saved optimizer state, `optimizer` is left as it is."""
    path = checkpoint.path
    theirs, ours = checkpoint.model_config, model.config.to_dict()
    differ = [k for k in {**theirs, **ours} if theirs.get(k) != ours.get(k)]
    if differ:
        raise CheckpointError(path, f"checkpoint was trained with "
                                    f"{', '.join(f'{k}={theirs.get(k)!r}' for k in differ)}, this model has "
                                    f"{', '.join(f'{k}={ours.get(k)!r}' for k in differ)}")
    load_optimizer = optimizer is not None and checkpoint.optimizer_state is not None
    if load_optimizer:
        if checkpoint.optimizer_class != type(optimizer).__name__:
            raise CheckpointError(path, f"checkpoint holds {checkpoint.optimizer_class} state, the optimizer "
                                        f"given is {type(optimizer).__name__}")
        names = {id(p): name for name, p in model.named_parameters()}
        given = [names.get(id(p), "a tensor not of this model") for group in optimizer.param_groups
                 for p in group["params"]]
        saved = checkpoint.optimizer_params
        if given != saved:
            i = next((i for i, (a, b) in enumerate(zip(given, saved)) if a != b), min(len(given), len(saved)))
            raise CheckpointError(path, f"the optimizer given is over other parameters than the checkpoint's "
                                        f"({len(given)} and {len(saved)}; at position {i}: {given[i:i + 1]} and "
                                        f"{saved[i:i + 1]}): build it over the same ones, in the same order")
    previous = {name: t.clone() for name, t in model.state_dict().items()}   # state_dict shares the model's memory
    try:
        model.load_state_dict(checkpoint.model_state, strict=True)
    except (KeyError, TypeError, ValueError) as err:
        raise CheckpointError(path, str(err)) from None
    if load_optimizer:
        try:
            optimizer.load_state_dict(checkpoint.optimizer_state)
        except BaseException as err:
            model.load_state_dict(previous)  # all or nothing: undo the weights too
            if isinstance(err, ValueError):
                raise CheckpointError(path, str(err)) from None
            raise


def model_from_checkpoint(checkpoint):
    """A GPT built from the checkpoint's config, in its dtype, holding its weights (to sample or evaluate)."""
    with nn.skip_init():  # every weight is read from the checkpoint next
        model = GPT(GPTConfig(**checkpoint.model_config))
    model.to(str(checkpoint.model_state[TIED[LM_HEAD]].dtype))  # float32 or float64, one for all (checked)
    restore(checkpoint, model)
    return model


def load_lm(path, allow_nonfinite=False):
    """(GPT, tokenizer) from a checkpoint written by `python -m tinygrad_llm train`, to sample or fine-tune."""
    checkpoint = load_checkpoint(path, allow_nonfinite)
    if checkpoint.tokenizer is None:
        raise CheckpointError(checkpoint.path, "no tokenizer in its metadata, so its ids cannot be read as text "
                                               "(checkpoints written by `python -m tinygrad_llm train` hold one)")
    return model_from_checkpoint(checkpoint), checkpoint.tokenizer
