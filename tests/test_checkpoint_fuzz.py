"""A fuzz test of the checkpoint loader: hundreds of seeded random mutations of one tiny checkpoint, each loaded
the way sampling and resuming load one (load_checkpoint, model_from_checkpoint, restore into an AdamW).

Two kinds of mutation:
- of the bytes (what a disk, a copy or a kill does): bit flips in the header's length, in the JSON header and in
  the tensor data; truncation; appended bytes; spans overwritten, deleted or inserted;
- of the content, written consistently (checkpoint_files.rewrite: every checksum made to fit, as a buggy writer or
  a hand edit would): fields removed or given wrong types and values, optimizer moments removed, renamed, added,
  retyped or reshaped, step counts made negative or fractional, tensors dropped, added or reshaped, NaN put in;
  or every field left valid and the whole made impossible (a negative second moment, moments at step 0, an iter
  other than the steps, a negative best loss, a group option missing or foreign). Each of these is wrong, so each
  must be refused.

What every case must end in: a load equal to the original in every bit (possible only where the mutation left
alone every byte that matters), or a clear error, meaning a CheckpointError (our ValueError) whose message starts
with the file's path. No other exception may escape, no case may hang (a watchdog turns a hang into a failure),
the loader never writes to the file it reads, and the original file is never changed.
"""
import hashlib
import random
import signal

import numpy as np

from tinygrad_llm.recipes.checkpoint import load_checkpoint, model_from_checkpoint, restore
from tinygrad_llm.recipes.checkpoint_schema import CheckpointError

from checkpoint_files import rewrite, tiny_optimizer, write_tiny_checkpoint

BYTE_CASES = 400
CONTENT_CASES = 200
WATCHDOG_S = 60  # far beyond one load of a 36 KB file (milliseconds): only a hang reaches it


def load_everything(path):
    checkpoint = load_checkpoint(path)
    model = model_from_checkpoint(checkpoint)
    optimizer = tiny_optimizer(model)
    restore(checkpoint, model, optimizer)
    return checkpoint, model, optimizer


# ---- mutations of the bytes ----

def regions(raw):
    """(first, end) of the header's length, the JSON header, the tensor data."""
    n = int.from_bytes(raw[:8], "little")
    return {"length": (0, 8), "header": (8, 8 + n), "data": (8 + n, len(raw))}


def flip_bits(raw, r):
    first, end = regions(raw)[r.choice(["length", "header", "data"])]
    out = bytearray(raw)
    for _ in range(r.choice([1, 1, 2, 3])):
        out[r.randrange(first, end)] ^= 1 << r.randrange(8)
    return bytes(out)


def truncate(raw, r):
    return raw[:r.randrange(len(raw))]


def append(raw, r):
    return raw + r.randbytes(r.randint(1, 64))


def overwrite(raw, r):
    at, n = r.randrange(len(raw)), r.randint(1, 16)
    return raw[:at] + r.randbytes(n) + raw[at + n:]


def delete_span(raw, r):
    at = r.randrange(len(raw))
    return raw[:at] + raw[at + r.randint(1, 16):]


def insert(raw, r):
    at = r.randrange(len(raw))
    return raw[:at] + r.randbytes(r.randint(1, 16)) + raw[at:]


def swap_spans(raw, r):
    """Two spans of the same length swapped: the length and every offset stay right."""
    n = r.randint(1, 8)
    a, b = sorted(r.sample(range(len(raw) - n), 2))
    if b < a + n:
        return raw
    return raw[:a] + raw[b:b + n] + raw[a + n:b] + raw[a:a + n] + raw[b + n:]


BYTE_MUTATIONS = [flip_bits, flip_bits, flip_bits, truncate, append, overwrite, delete_span, insert, swap_spans]


# ---- mutations of the content, checksums made to fit ----

WRONG_VALUES = [None, -1, 0, 2 ** 70, 10 ** 9, 1.5, float("nan"), "7", [], {}, True]


def content_mutation(header, tensors, r):
    """Change one thing that makes the checkpoint wrong; returns a description."""
    moments = sorted(name for name in tensors if name.startswith("optimizer."))
    params = sorted(name for name in tensors if not name.startswith("optimizer."))
    kind = r.choice(["size", "field gone", "field wrong", "step", "moment", "param", "nan", "tokenizer", "tie",
                     "contradiction"])
    if kind == "size":
        field = r.choice(["vocab_size", "block_size", "n_layer", "n_head", "n_embd", "dropout", "bias"])
        value = r.choice([v for v in WRONG_VALUES + [3, 5, 16, 2 ** 20 + 1] if v != header["model_config"][field]
                          and not (field == "n_head" and v == 1)])  # n_head 1 is a valid config of these tensors
        header["model_config"][field] = value
        return f"model_config.{field} = {value!r}"
    if kind == "field gone":
        where = r.choice(["format", "model_config", "tied", "optimizer.class", "optimizer.params",
                          "optimizer.param_groups", "optimizer.steps", "model_config.n_embd", "model_config.bias"])
        parent, _, key = where.rpartition(".")
        del (header[parent] if parent else header)[key]
        return f"{where} removed"
    if kind == "field wrong":
        where, valid = r.choice([("format", ()), ("iter", ()), ("best_val_loss", (1.5,)), ("rng", ()),
                                 ("rng.seed", (0, 10 ** 9)), ("rng.pos", (0,)), ("rng.mt19937", ()),
                                 ("rng.next_normal", (None, 1.5)),
                                 ("train_config", ({},)), ("optimizer", ()), ("optimizer.class", ()), ("tied", ())])
        value = r.choice([v for v in WRONG_VALUES if v not in valid])
        *parents, last = where.split(".")
        node = header
        for key in parents:
            node = node[key]
        node[last] = value
        return f"{where} = {value!r}"
    if kind == "step":
        index = r.choice(sorted(header["optimizer"]["steps"]))
        value = r.choice([-1, -5, 2.5, "2", True, None, 2 ** 60, []])
        header["optimizer"]["steps"][index] = value
        return f"optimizer.steps[{index}] = {value!r}"
    if kind == "moment":
        name = r.choice(moments)
        action = r.choice(["remove", "rename", "add", "retype", "reshape"])
        if action == "remove":
            del tensors[name]
        elif action == "rename":
            tensors[name.replace("exp_avg", r.choice(["exp_avgs", "m", "exp_avg_sq_"]))] = tensors.pop(name)
        elif action == "add":
            tensors[name.replace("exp_avg", "max_exp_avg")] = tensors[name].copy()
        elif action == "retype":
            tensors[name] = tensors[name].astype(r.choice([np.int64, np.int32, np.float16, np.float64]))
        else:
            tensors[name] = tensors[name].reshape(1, -1).copy()
        return f"{action} {name}"
    if kind == "param":
        name = r.choice(params)
        action = r.choice(["remove", "add", "reshape", "retype"])
        if action == "remove":
            del tensors[name]
        elif action == "add":
            tensors[name + "s"] = tensors[name].copy()
        elif action == "reshape":
            tensors[name] = tensors[name].reshape(-1)[:-1].copy()
        else:
            tensors[name] = tensors[name].astype(np.float64)
        return f"{action} {name}"
    if kind == "nan":
        name = r.choice(params + moments)
        flat = tensors[name].reshape(-1)
        flat[r.randrange(flat.size)] = r.choice([np.nan, np.inf, -np.inf])
        return f"a non-finite value in {name}"
    if kind == "tokenizer":
        chars = header["tokenizer"]["chars"]
        action = r.choice(["shorten", "lengthen", "repeat", "retype"])
        header["tokenizer"]["chars"] = {"shorten": chars[:-1], "lengthen": chars + ["z"],
                                        "repeat": chars[:-1] + chars[:1], "retype": "".join(chars)}[action]
        return f"tokenizer.chars: {action}"
    if kind == "contradiction":
        return contradiction(header, tensors, r)
    header["tied"] = r.choice([{}, {"lm_head.weight": "transformer.wpe.weight"}, {"transformer.wte.weight":
                                                                                   "lm_head.weight"}])
    return f"tied = {header['tied']}"


def contradiction(header, tensors, r):
    """Every field valid, together impossible (issue 23)."""
    index = r.choice(sorted(header["optimizer"]["steps"]))
    group = r.choice(header["optimizer"]["param_groups"])
    action = r.choice(["negative v", "step 0", "iter", "negative loss", "option gone", "option added"])
    if action == "negative v":
        flat = tensors[f"optimizer.state.{index}.exp_avg_sq"].reshape(-1)
        flat[r.randrange(flat.size)] = -r.choice([1e-30, 1e-3, 5.0, np.inf])
    elif action == "step 0":
        header["optimizer"]["steps"][index] = 0
        if r.random() < 0.5:
            del header["iter"]  # past the step counts' check to the moments'
    elif action == "iter":
        header["iter"] = r.choice([0, 1, 3, 50])  # the steps say 2
    elif action == "negative loss":
        header["best_val_loss"] = -r.choice([1e-9, 1.0, float("inf")])
    elif action == "option gone":
        del group[r.choice(["lr", "betas", "eps", "weight_decay"])]
    else:
        group[r.choice(["momentum", "nesterov", "amsgrad"])] = r.choice([0.9, True])
    return f"{action} (parameter {index})"


# ---- the test ----

def sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def assert_equal_load(loaded, reference):
    """Bit for bit the same checkpoint, model and optimizer."""
    (a, model_a, opt_a), (b, model_b, opt_b) = loaded, reference
    assert a.model_config == b.model_config and a.meta == b.meta and a.tokenizer.to_dict() == b.tokenizer.to_dict()
    assert a.optimizer_params == b.optimizer_params and a.optimizer_class == b.optimizer_class
    for x, y in ((a.model_state, b.model_state), (model_a.state_dict(), model_b.state_dict())):
        assert x.keys() == y.keys()
        assert all(x[k].dtype == y[k].dtype and np.asarray(x[k]).tobytes() == np.asarray(y[k]).tobytes() for k in x)
    sa, sb = opt_a.state_dict(), opt_b.state_dict()
    assert sa["param_groups"] == sb["param_groups"] and sa["state"].keys() == sb["state"].keys()
    for index, entry in sa["state"].items():
        assert entry.keys() == sb["state"][index].keys()
        assert all(np.asarray(v).tobytes() == np.asarray(sb["state"][index][k]).tobytes() for k, v in entry.items())


def outcome(path, reference):
    """"loaded" (and equal to the reference), or the kind of the clear error; fails the test otherwise."""
    before = path.read_bytes()
    try:
        loaded = load_everything(path)
    except CheckpointError as err:
        assert str(err).startswith(f"{path}: "), err
        kind = next((kind for kind, words in ERROR_KINDS.items() if words in str(err)), "schema")
    else:
        assert_equal_load(loaded, reference)
        kind = "loaded"
    assert path.read_bytes() == before, "the loader changed the file it read"
    return kind


ERROR_KINDS = {"unreadable (safetensors)": "not a readable checkpoint",
               "header checksum": "does not match its checksum: it was",
               "tensor checksum": "its bytes do not match its checksum",
               "not ours": "not a tinygrad_llm checkpoint",
               "non-finite": "NaN or infinite values"}


def watchdog(signum, frame):
    raise AssertionError(f"one load took over {WATCHDOG_S} s: a hang")


def test_every_damaged_checkpoint_loads_exactly_or_fails_clearly(tmp_path):
    original = tmp_path / "original.safetensors"
    write_tiny_checkpoint(original)
    reference = load_everything(original)
    digest = sha256(original)
    raw = original.read_bytes()
    case = tmp_path / "case.safetensors"
    outcomes = {"bytes": {}, "content": {}}
    previous = signal.signal(signal.SIGALRM, watchdog)
    try:
        for seed in range(BYTE_CASES):
            r = random.Random(seed)
            mutation = r.choice(BYTE_MUTATIONS)
            case.write_bytes(mutation(raw, r))
            signal.alarm(WATCHDOG_S)
            kind = outcome(case, reference)
            signal.alarm(0)
            outcomes["bytes"][kind] = outcomes["bytes"].get(kind, 0) + 1
        for seed in range(CONTENT_CASES):
            r = random.Random(10_000 + seed)
            described = []
            rewrite(original, lambda header, tensors: described.append(content_mutation(header, tensors, r)),
                    target=case)
            signal.alarm(WATCHDOG_S)
            kind = outcome(case, reference)
            signal.alarm(0)
            assert kind != "loaded", f"case {seed}: {described[0]} was accepted"
            outcomes["content"][kind] = outcomes["content"].get(kind, 0) + 1
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert sha256(original) == digest
    print(outcomes)
    # the byte mutations reached each line of defence, and the content ones got past the checksums
    assert {"unreadable (safetensors)", "header checksum", "tensor checksum"} <= set(outcomes["bytes"])
    assert not {"header checksum", "tensor checksum"} & set(outcomes["content"])
