"""What a checkpoint must hold before anything in it is trusted: the one check of its header, and of its tensors.

A checkpoint (checkpoint.py) is a safetensors file whose header carries our JSON under METADATA_KEY, with that
JSON's CRC-32 under CHECKSUM_KEY:

    format        FORMAT (2)
    model_config  GPTConfig's fields: vocab_size, block_size, n_layer, n_head, n_embd (ints), dropout, bias
    tied          {"lm_head.weight": "transformer.wte.weight"}: names not stored, and the tensor they are
    checksums     {tensor name: CRC-32 of its bytes}, for every tensor in the file
    optimizer     null, or {"class", "params" (the parameter name of each index), "param_groups", "steps"}
    ...           the trainer's entries: iter, best_val_loss, rng, rank_rngs, tokenizer, train_config (each checked
                  if there)

`check_header` reads only the file's header (our JSON, and each tensor's name, dtype and shape), so every size and
field is confirmed before any tensor is read or any model built, and the fields agree with each other (the
optimizer's step counts with the trainer's iter); `check_tensors` then proves each tensor's bytes by its checksum,
refuses NaN and inf unless asked, and Adam's moments that no update makes. Every error is a CheckpointError naming
the file and the field or tensor.

CRC-32 (zlib) is the checksum of zip and PNG: it finds every error burst of up to 32 bits and any other damage
but for one chance in 4 billion, and is faster than sha256 (figures in benchmarks/RESULTS.md). sha256 would guard
against forgery, which is not the risk: a checkpoint is as trusted as the code that reads it.
"""
import collections
import dataclasses
import json
import math
import re
import zlib

import numpy as np

from ..engine import rng
from ..models.gpt import GPTConfig
from ..optim import ADDED_OPTIONS, SCHEDULER_KEYS, SGD, Adam, AdamW, default_options
from ..text.bpe import BPETokenizer
from ..text.char import CharTokenizer
from ..text.wordpiece import WordPieceTokenizer
from .gpt_tensors import SIZES, TIED, check_sizes, checkpoint_shapes

FORMAT = 2  # 1: no checksums, the tied embedding stored twice, optimizer state keyed by index only
METADATA_KEY = "tinygrad_llm"
CHECKSUM_KEY = METADATA_KEY + ".crc32"
OPTIMIZER_PREFIX = "optimizer.state."
RESERVED = ("format", "model_config", "tied", "checksums", "optimizer")  # header keys that `meta` may not use
FLOAT_DTYPES = {"F32": np.float32, "F64": np.float64}  # safetensors' names of the dtypes a GPT is kept in
# per optimizer class, what each parameter's state holds: "step" (in the JSON) and arrays (tensors)
STATE_KEYS = {"Adam": {"step", "exp_avg", "exp_avg_sq"}, "AdamW": {"step", "exp_avg", "exp_avg_sq"},
              "SGD": {"momentum_buffer"}}
OPTIMIZERS = {optimizer.__name__: optimizer for optimizer in (Adam, AdamW, SGD)}
MOMENT = re.compile(re.escape(OPTIMIZER_PREFIX) + r"(0|[1-9]\d*)\.(\w+)")


class CheckpointError(ValueError):
    """A checkpoint that cannot be used as it is; the message starts with its path."""

    def __init__(self, path, problem):
        super().__init__(f"{path}: {problem}")
        self.path = path


class MissingCheckpointError(CheckpointError, FileNotFoundError):
    """No file at the path (a FileNotFoundError too, so callers may catch either)."""


@dataclasses.dataclass
class Header:
    """A checked header: the config (a GPTConfig), the parameters' dtype, the checksums, the optimizer's entry
    (None, or its class, parameter names, groups and steps by index), the trainer's meta and its tokenizer."""
    config: GPTConfig
    dtype: type
    checksums: dict
    optimizer: dict
    meta: dict
    tokenizer: object


def checksum(array):
    """CRC-32 of an array's bytes in C order, as safetensors stores them."""
    return zlib.crc32(np.ascontiguousarray(array).data)


def check_header(metadata, stored, path):
    """The Header of the file at `path`, from its safetensors metadata (a dict of strings, or None) and `stored`
    ({tensor name: (safetensors dtype, shape)}, from the file's header): everything is checked but the data."""
    text = (metadata or {}).get(METADATA_KEY)
    if text is None:
        raise CheckpointError(path, f"a safetensors file but not a tinygrad_llm checkpoint (its header has no "
                                    f"{METADATA_KEY!r} entry)")
    if CHECKSUM_KEY not in metadata:  # format 1 had none
        raise CheckpointError(path, f"no {CHECKSUM_KEY!r} in its header: an older version's checkpoint (format 1, "
                                    f"without checksums); this version reads format {FORMAT} only: train again")
    if metadata[CHECKSUM_KEY] != str(zlib.crc32(text.encode("utf-8"))):
        raise CheckpointError(path, f"its {METADATA_KEY!r} header entry does not match its checksum: it was "
                                    f"damaged or edited")
    try:
        header = json.loads(text, object_pairs_hook=_unique_keys(path))
    except CheckpointError:
        raise  # a key given twice
    except (ValueError, RecursionError) as err:  # ValueError: bad JSON, or a number of more than 4,300 digits
        raise CheckpointError(path, f"the {METADATA_KEY!r} header entry is not valid JSON ({err})") from None
    if not isinstance(header, dict):
        raise CheckpointError(path, f"the {METADATA_KEY!r} header entry is not a JSON object")
    if not (_is_int(header.get("format")) and header["format"] == FORMAT):
        raise CheckpointError(path, f"checkpoint format {header.get('format')!r:.40}; this version reads format "
                                    f"{FORMAT} only")
    missing = [key for key in RESERVED if key not in header]
    if missing:
        raise CheckpointError(path, f"the header lacks {', '.join(missing)}")
    config = _model_config(header["model_config"], stored, path)
    params = checkpoint_shapes(config)
    if header["tied"] != TIED:
        raise CheckpointError(path, f"tied is {header['tied']!r:.80}; a GPT ties exactly {TIED}")
    dtype = _check_parameters(params, stored, path)
    optimizer = _optimizer(header["optimizer"], params, stored, dtype, path)
    checksums = header["checksums"]
    if not isinstance(checksums, dict) or set(checksums) != set(stored):
        raise CheckpointError(path, "checksums must list every tensor in the file, and only those")
    for name, value in checksums.items():
        if not _is_int(value) or not 0 <= value < 2 ** 32:
            raise CheckpointError(path, f"checksums: {name}'s is {value!r:.40}, not a CRC-32")
    meta = {key: value for key, value in header.items() if key not in RESERVED}
    tokenizer = _trainer_meta(meta, config, path)
    _check_steps(optimizer, meta, path)
    return Header(config, dtype, checksums, optimizer, meta, tokenizer)


def check_tensors(arrays, header, path, allow_nonfinite=False):
    """Each array's bytes against its checksum, then (unless `allow_nonfinite`) every value finite, then Adam's
    moments as its updates make them."""
    for name, array in arrays.items():
        if checksum(array) != header.checksums[name]:
            raise CheckpointError(path, f"{name}: its bytes do not match its checksum: the file was damaged")
    if not allow_nonfinite:
        counts = {name: array.size - int(np.count_nonzero(np.isfinite(array))) for name, array in arrays.items()}
        bad = [f"{name} ({n})" for name, n in counts.items() if n]
        if bad:
            raise CheckpointError(path, f"NaN or infinite values in {', '.join(bad)}: did the run diverge? "
                                        f"(allow_nonfinite=True, or sample's --allow-nonfinite, loads it to look at)")
    if header.optimizer is not None:
        _check_moments(arrays, header.optimizer["steps"], path)


def _check_moments(arrays, steps, path):
    """Adam's moments (`steps` holds Adam's step counts only), even in a run that diverged: the second moment, a
    running mean of squares, never negative (Adam divides by its square root), and both zero before the first
    step."""
    for index, step in steps.items():
        first, second = (f"{OPTIMIZER_PREFIX}{index}.{key}" for key in ("exp_avg", "exp_avg_sq"))
        negative = int(np.count_nonzero(arrays[second] < 0))
        if negative:
            raise CheckpointError(path, f"{second} holds {negative} negative value(s); a second moment is a mean of "
                                        f"squares, >= 0")
        moved = [name for name in (first, second) if step == 0 and np.any(arrays[name])]
        if moved:
            raise CheckpointError(path, f"optimizer.steps['{index}'] is 0 (no update yet), but {moved[0]} is not "
                                        f"zero; Adam's moments start at zero")


def _unique_keys(path):
    """json.loads' object_pairs_hook: each object as a dict, refusing a key given twice (json.loads keeps the last
    of them, silently)."""
    def build(pairs):
        result = dict(pairs)
        if len(result) < len(pairs):
            twice = next(key for key, count in collections.Counter(key for key, _ in pairs).items() if count > 1)
            raise CheckpointError(path, f"the key {twice!r:.40} is given twice in one object of the "
                                        f"{METADATA_KEY!r} header entry")
        return result
    return build


def _is_int(value):
    return type(value) is int  # not bool, which JSON has apart and Python counts as an int


def _is_count(value):
    """An integer from 0 to 2**53: exact as a float, so arithmetic on it cannot overflow."""
    return _is_int(value) and 0 <= value <= 2 ** 53


def _is_number(value):
    """An int or a finite float (JSON's Infinity and NaN are floats to Python)."""
    return _is_int(value) and abs(value) <= 2 ** 53 or type(value) is float and math.isfinite(value)


def _model_config(config, stored, path):
    """The GPTConfig of `config` (the header's dict), its sizes bounded and compared with the stored tensors."""
    fields = [field.name for field in dataclasses.fields(GPTConfig)]
    if not isinstance(config, dict) or sorted(config) != sorted(fields):
        raise CheckpointError(path, f"model_config must hold exactly {', '.join(fields)}, got "
                                    f"{sorted(config) if isinstance(config, dict) else config!r:.120}")
    for name in SIZES:
        if not _is_int(config[name]):
            raise CheckpointError(path, f"model_config.{name} must be an integer, got {config[name]!r:.40}")
    if not _is_number(config["dropout"]) or not 0 <= config["dropout"] < 1:
        raise CheckpointError(path, f"model_config.dropout must be a number in [0, 1), got "
                                    f"{config['dropout']!r:.40}")
    if type(config["bias"]) is not bool:
        raise CheckpointError(path, f"model_config.bias must be true or false, got {config['bias']!r:.40}")
    try:
        check_sizes(config, {name: shape for name, (_, shape) in stored.items()}, "model_config")
        return GPTConfig(**config)
    except ValueError as err:
        raise CheckpointError(path, str(err)) from None


def _check_parameters(params, stored, path):
    """Every parameter of the model is stored, in its shape, all in one float dtype (returned); nothing else is
    stored but optimizer state."""
    problems = [f"{name}: missing" for name in params if name not in stored]
    problems += [f"{name}: not a parameter of this GPT" + (f" (it is {TIED[name]}, stored once)"
                                                           if name in TIED else "")
                 for name in stored if name not in params and not name.startswith(OPTIMIZER_PREFIX)]
    problems += [f"{name}: shape {stored[name][1]}, expected {shape}" for name, shape in params.items()
                 if name in stored and tuple(stored[name][1]) != shape]
    dtypes = {stored[name][0] for name in params if name in stored}
    if not problems and (len(dtypes) != 1 or not dtypes <= set(FLOAT_DTYPES)):
        problems.append(f"the parameters are {' and '.join(sorted(dtypes))}; they must all be F32, or all F64")
    if problems:
        raise CheckpointError(path, "tensors do not match model_config: " + "; ".join(problems[:8]) +
                              (f"; and {len(problems) - 8} more" if len(problems) > 8 else ""))
    return FLOAT_DTYPES[dtypes.pop()]


def _optimizer(saved, params, stored, dtype, path):
    """The optimizer's entry, checked against the parameters and the stored moments: None, or
    {"class", "params", "param_groups", "steps" ({index: step})}."""
    moments = [name for name in stored if name.startswith(OPTIMIZER_PREFIX)]
    if saved is None:
        if moments:
            raise CheckpointError(path, f"{moments[0]}: optimizer state, but the header has no optimizer")
        return None
    fields = ["class", "param_groups", "params", "steps"]
    if not isinstance(saved, dict) or sorted(saved) != fields:
        raise CheckpointError(path, f"optimizer must be null or hold exactly {', '.join(fields)}; it holds "
                                    f"{sorted(saved) if isinstance(saved, dict) else saved!r:.80}")
    kind, names, groups, steps = saved["class"], saved["params"], saved["param_groups"], saved["steps"]
    if not isinstance(kind, str) or kind not in STATE_KEYS:
        raise CheckpointError(path, f"optimizer.class is {kind!r:.40}; known: {', '.join(STATE_KEYS)}")
    if (not isinstance(names, list) or not all(isinstance(name, str) and name in params for name in names)
            or len(set(names)) != len(names) or not names):
        raise CheckpointError(path, "optimizer.params must list distinct parameter names of this GPT")
    _check_groups(groups, len(names), kind, path)
    if not isinstance(steps, dict):
        raise CheckpointError(path, "optimizer.steps must map parameter indices to step counts")
    state = {}  # index -> the keys present
    for key, step in steps.items():
        index = _index(key, len(names), f"optimizer.steps[{key!r:.20}]", path)
        if not _is_count(step):
            raise CheckpointError(path, f"optimizer.steps[{key!r}] is {step!r:.40}; a step count is an "
                                        f"integer from 0 to 2**53")
        state.setdefault(index, set()).add("step")
    for name in moments:
        match = MOMENT.fullmatch(name)
        if not match:
            raise CheckpointError(path, f"{name}: not a name of optimizer state ({OPTIMIZER_PREFIX}INDEX.KEY)")
        index = _index(match.group(1), len(names), name, path)
        dtype_name, shape = stored[name]
        if FLOAT_DTYPES.get(dtype_name) is not dtype or tuple(shape) != params[names[index]]:
            raise CheckpointError(path, f"{name}: {dtype_name} of shape {tuple(shape)}; the state of "
                                        f"{names[index]} is {np.dtype(dtype)} of shape {params[names[index]]}")
        state.setdefault(index, set()).add(match.group(2))
    amsgrad = {index for group in groups if group.get("amsgrad") is True for index in group["params"]}
    for index, keys in sorted(state.items()):
        wanted = STATE_KEYS[kind] | ({"max_exp_avg_sq"} if index in amsgrad else set())  # the largest v so far
        if keys != wanted:
            raise CheckpointError(path, f"the {kind} state of parameter {index} ({names[index]}) holds "
                                        f"{sorted(keys)}; it must hold exactly {sorted(wanted)}")
    return {"class": kind, "params": names, "param_groups": groups,
            "steps": {int(key): step for key, step in steps.items()}}


def _index(text, count, where, path):
    if not re.fullmatch(r"0|[1-9]\d{0,8}", text) or int(text) >= count:
        raise CheckpointError(path, f"{where}: {text!r:.20} is not a parameter index (0 to {count - 1})")
    return int(text)


def _check_groups(groups, count, kind, path):
    """Parameter groups as Optimizer.state_dict writes them: "params" lists the indices in order, 0 to count - 1,
    each group holds every option of the optimizer `kind` (those a new group holds; one added since our first
    checkpoints may be missing) and no other but a scheduler's, and every option is a number, a flag, null or a
    pair of numbers (the optimizer checks their ranges when loading)."""
    if not isinstance(groups, list) or not all(isinstance(group, dict) for group in groups):
        raise CheckpointError(path, "optimizer.param_groups must be a list of objects")
    indices = [group.get("params") for group in groups]
    if not all(isinstance(group, list) and all(map(_is_int, group)) for group in indices) or \
            sum(indices, []) != list(range(count)):
        raise CheckpointError(path, f"optimizer.param_groups' params must number the {count} parameters in "
                                    f"order, 0 to {count - 1}")
    options = set(default_options(OPTIMIZERS[kind]))
    for i, group in enumerate(groups):
        missing = sorted(options - set(group) - set(ADDED_OPTIONS))
        unknown = sorted(set(group) - options - {"params"} - SCHEDULER_KEYS)
        if missing:  # the optimizer's load would keep its own value there
            raise CheckpointError(path, f"optimizer.param_groups[{i}] lacks {', '.join(missing)}: an {kind} group "
                                        f"holds {', '.join(sorted(options))}")
        if unknown:
            raise CheckpointError(path, f"optimizer.param_groups[{i}] has {', '.join(unknown)}, not an option of "
                                        f"{kind} ({', '.join(sorted(options))})")
        for option, value in group.items():
            pair = isinstance(value, list) and len(value) == 2 and all(map(_is_number, value))
            if option != "params" and not (_is_number(value) or type(value) in (bool, type(None)) or pair):
                raise CheckpointError(path, f"optimizer.param_groups[{i}].{option} is {value!r:.40}; an option "
                                            f"is a finite number, true/false, null, or a pair of numbers")


def _trainer_meta(meta, config, path):
    """Check the trainer's entries that are there (a checkpoint saved outside training may hold none); returns
    the tokenizer, built, or None."""
    if "iter" in meta and not _is_count(meta["iter"]):
        raise CheckpointError(path, f"iter is {meta['iter']!r:.40}; an iteration is an integer from 0 to 2**53")
    loss = meta.get("best_val_loss", 0.0)
    if type(loss) is not float or not 0 <= loss <= math.inf:  # a cross-entropy; inf: none measured yet
        raise CheckpointError(path, f"best_val_loss is {loss!r:.40}; a loss is a float >= 0, finite or Infinity "
                                    f"(none measured yet)")
    if "train_config" in meta and not isinstance(meta["train_config"], dict):
        raise CheckpointError(path, "train_config must be an object")
    if "rng" in meta:
        _check_rng(meta["rng"], path)
    if "rank_rngs" in meta:  # ranks 1.. of a distributed run, each its own dropout generator
        if not isinstance(meta["rank_rngs"], list):
            raise CheckpointError(path, "rank_rngs must be a list of generator states, one per rank after rank 0")
        for i, state in enumerate(meta["rank_rngs"]):
            _check_rng(state, path, f"rank_rngs[{i}]")
    if "tokenizer" not in meta:
        return None
    try:
        tokenizer = tokenizer_from_dict(meta["tokenizer"])
    except ValueError as err:
        raise CheckpointError(path, f"tokenizer: {err}") from None
    if tokenizer.vocab_size != config.vocab_size:
        raise CheckpointError(path, f"tokenizer: {tokenizer.vocab_size} tokens, but model_config.vocab_size is "
                                    f"{config.vocab_size}")
    return tokenizer


def _check_steps(optimizer, meta, path):
    """The optimizer's step counts against the trainer's `iter`. A parameter steps once in each iteration that gave
    it a gradient: the trainer's loss uses every parameter, so in its checkpoints (those with a train_config) each
    has stepped exactly `iter` times (none has state at iteration 0); in another loop a parameter may get no
    gradient (frozen, unused) and step fewer times or not at all, never more. Without `iter` the counts may differ
    from each other for the same reason: nothing to compare."""
    if optimizer is None or "iter" not in meta:
        return
    iteration, steps, names = meta["iter"], optimizer["steps"], optimizer["params"]  # steps: Adam's only
    if "train_config" in meta and "step" in STATE_KEYS[optimizer["class"]]:
        rule = "the trainer steps every parameter once per iteration"
        expected = iteration if iteration else None  # before the first step no parameter has state
        wrong = [i for i in range(len(names)) if steps.get(i) != expected]
    else:
        rule = "a parameter steps at most once per iteration"
        wrong = [i for i, step in sorted(steps.items()) if step > iteration]
    if wrong:
        i = wrong[0]
        stepped = f"stepped {steps[i]} times" if i in steps else "no optimizer state"
        raise CheckpointError(path, f"iter is {iteration}, but parameter {i} ({names[i]}) has {stepped} "
                                    f"(optimizer.steps); {rule}")


def _check_rng(state, path, name="rng"):
    """rng.get_state()'s dict, exactly (every value in its range: set_state takes nothing else), or the state an
    older version saved: a seed and NumPy's PCG64 state. That one still loads (for sampling, fine-tuning); a run
    resumed from it starts its dropout stream afresh (train._resume says so)."""
    if not (rng.is_state(state) or is_pcg64_state(state)):
        raise CheckpointError(path, f"{name} is not the state of the engine's generator (rng.get_state(): seed, "
                                    f"mt19937, pos, next_normal), nor an older version's (a seed and a PCG64 state)")


def is_pcg64_state(state):
    """True for the generator state of versions before the engine drew PyTorch's numbers: {"seed", "cpu": NumPy's
    PCG64 state}, every integer in its range."""
    def below(value, bound):
        return _is_int(value) and 0 <= value < bound
    cpu = state.get("cpu") if isinstance(state, dict) else None
    pcg = cpu.get("state") if isinstance(cpu, dict) else None
    return (isinstance(state, dict) and sorted(state) == ["cpu", "seed"] and below(state["seed"], 2 ** 128)
            and isinstance(cpu, dict) and sorted(cpu) == ["bit_generator", "has_uint32", "state", "uinteger"]
            and cpu["bit_generator"] == "PCG64" and below(cpu["has_uint32"], 2) and below(cpu["uinteger"], 2 ** 32)
            and isinstance(pcg, dict) and sorted(pcg) == ["inc", "state"]
            and all(below(value, 2 ** 128) for value in pcg.values()))


def tokenizer_from_dict(d):
    """The tokenizer a checkpoint saved (its `to_dict()`): a CharTokenizer, a byte-level BPETokenizer or a
    WordPieceTokenizer."""
    if not isinstance(d, dict):
        raise ValueError(f"expected an object, got {type(d).__name__}")
    if d.get("type") == "bpe":
        return BPETokenizer.from_dict(d)
    if d.get("type") == "wordpiece":
        return WordPieceTokenizer.from_dict(d)
    return CharTokenizer.from_dict(d)
