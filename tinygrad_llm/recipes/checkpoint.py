"""Checkpoints: a model, its optimizer and the trainer's bookkeeping in one safetensors file.

    save_checkpoint("out/ckpt.safetensors", model, optimizer, meta={"iter": 500, "rng": rng.get_state()})
    ckpt = load_checkpoint("out/ckpt.safetensors")
    restore(ckpt, model, optimizer)               # resume training exactly where it stopped
    model = model_from_checkpoint(ckpt)           # or rebuild the model alone, to sample from it

The file holds the model's arrays under their state_dict names (`transformer.wte.weight`, ...), the optimizer's
per-parameter arrays as `optimizer.state.{index}.{key}` (`optimizer.state.3.exp_avg`), and one header entry,
METADATA_KEY, whose value is JSON: the format version, the model config, the optimizer's class, options and step
counts, and the trainer's `meta` (anything JSON can hold: iteration, tokenizer, RNG state, ...).

Saving is atomic: the file is written under a temporary name beside `path`, forced to disk, then renamed over
`path` in one step, so a crash while saving leaves the previous checkpoint as it was.
"""
import contextlib
import dataclasses
import json
import os
import pathlib
import tempfile
from typing import Optional

from safetensors import SafetensorError, safe_open
from safetensors.numpy import save_file

from .. import nn
from ..models.gpt import GPT, GPTConfig
from ..text.bpe import BPETokenizer
from ..text.char import CharTokenizer

FORMAT = 1
METADATA_KEY = "tinygrad_llm"
OPTIMIZER_PREFIX = "optimizer.state."
RESERVED = ("format", "model_config", "optimizer")  # header keys that `meta` may not use


@dataclasses.dataclass
class Checkpoint:
    """What load_checkpoint read: `model_state` and `optimizer_state` are ready for the load_state_dict
    methods (`optimizer_state` is None when no optimizer was saved); `meta` is the trainer's dict."""
    path: pathlib.Path
    model_config: dict
    model_state: dict
    optimizer_class: Optional[str]
    optimizer_state: Optional[dict]
    meta: dict


def save_checkpoint(path, model, optimizer=None, meta=None):
    """Write `model` (a GPT), `optimizer` (optional) and `meta` (a JSON-friendly dict) to `path`, atomically."""
    meta = dict(meta or {})
    clash = sorted(set(meta) & set(RESERVED))
    if clash:
        raise ValueError(f"save_checkpoint: meta may not use the reserved key(s) {clash}")
    tensors = model.state_dict()
    header = {"format": FORMAT, "model_config": model.config.to_dict(), "optimizer": None, **meta}
    if optimizer is not None:
        state = optimizer.state_dict()
        steps = {}
        for index, entry in state["state"].items():
            for key, value in entry.items():
                if key == "step":
                    steps[index] = value
                else:
                    tensors[f"{OPTIMIZER_PREFIX}{index}.{key}"] = value
        header["optimizer"] = {"class": type(optimizer).__name__, "param_groups": state["param_groups"],
                               "steps": steps}
    metadata = {METADATA_KEY: json.dumps(header)}
    replace_atomically(pathlib.Path(path), lambda tmp: save_file(tensors, tmp, metadata=metadata))


def replace_atomically(path, write):
    """write(temporary path) beside `path`, force the bytes to disk, then rename over `path` in one step: a crash
    leaves the old file or the new one, never half of one. On any exception, KeyboardInterrupt included, the
    temporary file is removed and `path` is left untouched. (pretrained.py writes its files with this too.)"""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())  # the bytes reach the disk before the rename makes them the file
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def load_checkpoint(path):
    """Read a checkpoint written by save_checkpoint; a missing, corrupt or foreign file raises a clear error."""
    path = pathlib.Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}: checkpoints are written by "
                                f"`python -m tinygrad_llm train`")
    try:
        with safe_open(path, framework="np") as f:
            header = (f.metadata() or {}).get(METADATA_KEY)
            arrays = {name: f.get_tensor(name) for name in f.keys()}
    except SafetensorError as err:
        raise ValueError(f"{path} is not a readable checkpoint: {err} (truncated or corrupt?)") from None
    if header is None:
        raise ValueError(f"{path} is a safetensors file but not a tinygrad_llm checkpoint "
                         f"(its header has no {METADATA_KEY!r} entry)")
    header = json.loads(header)
    if header.get("format") != FORMAT:
        raise ValueError(f"{path} has checkpoint format {header.get('format')}; this version reads format "
                         f"{FORMAT}")
    del header["format"]
    model_config, saved = header.pop("model_config"), header.pop("optimizer")
    model_state = {name: array for name, array in arrays.items() if not name.startswith(OPTIMIZER_PREFIX)}
    optimizer_state = None
    if saved is not None:
        state = {int(index): {"step": step} for index, step in saved["steps"].items()}
        for name, array in arrays.items():
            if name.startswith(OPTIMIZER_PREFIX):
                index, key = name[len(OPTIMIZER_PREFIX):].split(".", 1)
                state.setdefault(int(index), {})[key] = array
        # JSON turned the betas tuples into lists; the optimizers keep tuples
        groups = [{k: tuple(v) if k == "betas" else v for k, v in group.items()}
                  for group in saved["param_groups"]]
        optimizer_state = {"state": state, "param_groups": groups}
    optimizer_class = None if saved is None else saved["class"]
    return Checkpoint(path, model_config, model_state, optimizer_class, optimizer_state, meta=header)


def restore(checkpoint, model, optimizer=None):
    """Load the checkpoint's weights into `model` and, when both exist, its state into `optimizer`.

    The model config and optimizer class are checked first, the load_state_dict methods check names, shapes
    and dtypes before writing, and a failing optimizer load puts the old weights back: an error leaves model
    and optimizer as they were. Without saved optimizer state, `optimizer` is left as it is."""
    theirs, ours = checkpoint.model_config, model.config.to_dict()
    differ = [k for k in {**theirs, **ours} if theirs.get(k) != ours.get(k)]
    if differ:
        raise ValueError(f"{checkpoint.path}: checkpoint was trained with "
                         f"{', '.join(f'{k}={theirs.get(k)!r}' for k in differ)}, this model has "
                         f"{', '.join(f'{k}={ours.get(k)!r}' for k in differ)}")
    load_optimizer = optimizer is not None and checkpoint.optimizer_state is not None
    if load_optimizer and checkpoint.optimizer_class != type(optimizer).__name__:
        raise ValueError(f"{checkpoint.path}: checkpoint holds {checkpoint.optimizer_class} state, "
                         f"the optimizer given is {type(optimizer).__name__}")
    previous = model.state_dict()
    model.load_state_dict(checkpoint.model_state, strict=True)
    if load_optimizer:
        try:
            optimizer.load_state_dict(checkpoint.optimizer_state)
        except BaseException:
            model.load_state_dict(previous)  # all or nothing: undo the weights too
            raise


def model_from_checkpoint(checkpoint):
    """A GPT built from the checkpoint's config, in its dtype, holding its weights (to sample or evaluate)."""
    with nn.skip_init():  # every weight is read from the checkpoint next
        model = GPT(GPTConfig(**checkpoint.model_config))
    model.to(str(checkpoint.model_state["transformer.wte.weight"].dtype))  # float32 or float64
    restore(checkpoint, model)
    return model


def tokenizer_from_dict(d):
    """The tokenizer a checkpoint saved (its `to_dict()`): a CharTokenizer or a byte-level BPETokenizer."""
    if d.get("type") == "bpe":
        return BPETokenizer.from_dict(d)
    return CharTokenizer.from_dict(d)
