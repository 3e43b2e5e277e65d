"""Tests for tinygrad_llm.recipes.checkpoint: exact round trips, resuming training, clear errors, atomic saving, and
what a checkpoint proves about itself (checksums, one copy of the tied embedding, finite weights, every field of
its header checked before a model is built, its fields and moments agreeing with each other). test_checkpoint_fuzz.py
damages checkpoints at random."""
import json
import os

import numpy as np
import pytest
from safetensors.numpy import save_file

from tinygrad_llm.__main__ import main
from tinygrad_llm.engine import rng
from tinygrad_llm.models.gpt import GPT, GPTConfig
from tinygrad_llm.optim import SGD, AdamW
from tinygrad_llm.recipes.checkpoint import load_checkpoint, load_lm, model_from_checkpoint, restore, save_checkpoint
from tinygrad_llm.recipes.checkpoint_schema import METADATA_KEY, CheckpointError
from tinygrad_llm.recipes.config import TrainConfig
from tinygrad_llm.recipes.train import train as run_training

from checkpoint_files import CHARS, read_checkpoint, rewrite, tiny_optimizer, write_consistently, write_tiny_checkpoint

CONFIG = dict(vocab_size=11, block_size=8, n_layer=2, n_head=2, n_embd=16)


def make_model(seed=0, **changes):
    rng.manual_seed(seed)
    return GPT(GPTConfig(**{**CONFIG, **changes}))


def train(model, optimizer, steps, seed=1):
    """`steps` AdamW steps on random batches drawn from `seed` (the same batches for the same seed)."""
    batches = np.random.default_rng(seed)
    for _ in range(steps):
        x = batches.integers(0, CONFIG["vocab_size"], (2, CONFIG["block_size"]))
        y = batches.integers(0, CONFIG["vocab_size"], (2, CONFIG["block_size"]))
        optimizer.zero_grad()
        _, loss = model(x, y)
        loss.backward()
        optimizer.step()


def assert_same_state(a, b):
    assert a.keys() == b.keys()
    for name in a:
        assert a[name].dtype == b[name].dtype and np.array_equal(a[name], b[name]), name


@pytest.fixture
def trained(tmp_path):
    """A model and AdamW after 3 steps, saved to tmp_path/ckpt.safetensors."""
    model = make_model()
    optimizer = AdamW(model.parameters(), lr=1e-2, betas=(0.9, 0.95), weight_decay=0.1)
    train(model, optimizer, 3)
    path = tmp_path / "ckpt.safetensors"
    save_checkpoint(path, model, optimizer, meta={"iter": 3})
    return model, optimizer, path


def test_round_trip_is_exact_and_training_resumes_identically(tmp_path):
    model = make_model()
    optimizer = AdamW(model.parameters(), lr=1e-2, betas=(0.9, 0.95), weight_decay=0.1)
    train(model, optimizer, 3)
    meta = {"iter": 3, "best_val_loss": 2.5, "tokenizer": {"type": "char", "chars": list("abcdefghijk")},
            "rng": rng.get_state()}  # 624 words of mt19937
    path = tmp_path / "sub" / "dir" / "ckpt.safetensors"  # parent directories are created
    save_checkpoint(path, model, optimizer, meta=meta)

    ckpt = load_checkpoint(path)
    assert ckpt.meta == meta
    assert ckpt.model_config == model.config.to_dict()
    assert_same_state(ckpt.model_state, model.state_dict())

    model2 = make_model(seed=99)  # different initial weights
    optimizer2 = AdamW(model2.parameters(), lr=0.5)  # different options: the checkpoint's replace them
    restore(ckpt, model2, optimizer2)
    assert_same_state(model2.state_dict(), model.state_dict())
    saved, loaded = optimizer.state_dict(), optimizer2.state_dict()
    assert loaded["param_groups"] == saved["param_groups"]
    assert loaded["state"].keys() == saved["state"].keys()
    for index, entry in saved["state"].items():
        assert loaded["state"][index]["step"] == entry["step"] == 3
        assert_same_state({k: v for k, v in loaded["state"][index].items() if k != "step"},
                          {k: v for k, v in entry.items() if k != "step"})

    train(model, optimizer, 2, seed=7)
    train(model2, optimizer2, 2, seed=7)
    assert_same_state(model2.state_dict(), model.state_dict())

    rng.set_state(ckpt.meta["rng"])
    assert rng.get_state() == meta["rng"]


def test_a_checkpoint_with_the_older_generator_state_still_loads(tmp_path):
    """Checkpoints written before the engine drew PyTorch's numbers hold NumPy's PCG64 state: they load (for
    sampling, fine-tuning) and give the same model; train._resume restarts the dropout stream from them."""
    path = tmp_path / "old.safetensors"
    model, _ = write_tiny_checkpoint(path)
    old_state = {"seed": 0, "cpu": np.random.default_rng(0).bit_generator.state}

    def older(header, tensors):
        header["rng"] = old_state
    rewrite(path, older)
    checkpoint = load_checkpoint(path)
    assert checkpoint.meta["rng"] == old_state
    assert_same_state(model_from_checkpoint(checkpoint).state_dict(), model.state_dict())


def test_tied_weights_stay_tied(trained):
    model, _, path = trained
    loaded = model_from_checkpoint(load_checkpoint(path))
    assert loaded.lm_head.weight is loaded.transformer.wte.weight
    assert np.array_equal(loaded.lm_head.weight.detach().numpy(), model.transformer.wte.weight.detach().numpy())
    assert_same_state(loaded.state_dict(), model.state_dict())


def test_model_only_checkpoint(tmp_path):
    model = make_model().to("float64")
    save_checkpoint(tmp_path / "weights.safetensors", model)
    ckpt = load_checkpoint(tmp_path / "weights.safetensors")
    assert ckpt.optimizer_state is None and ckpt.meta == {}
    assert_same_state(model_from_checkpoint(ckpt).state_dict(), model.state_dict())  # rebuilt in float64


def test_missing_file(tmp_path):
    path = tmp_path / "nope.safetensors"
    with pytest.raises(FileNotFoundError, match="nope.safetensors.*python -m tinygrad_llm train"):
        load_checkpoint(path)


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty"])
def test_corrupt_file(trained, damage):
    _, _, path = trained
    data = path.read_bytes()
    path.write_bytes({"truncated": data[:len(data) // 2], "garbage": b"not a checkpoint\n" * 50,
                      "empty": b""}[damage])
    with pytest.raises(CheckpointError, match=r"ckpt.safetensors: not a readable checkpoint.*truncated or corrupt"):
        load_checkpoint(path)


def test_safetensors_file_of_someone_else(tmp_path):
    path = tmp_path / "other.safetensors"
    save_file({"w": np.zeros(3, np.float32)}, path)
    with pytest.raises(ValueError, match="other.safetensors.*not a tinygrad_llm checkpoint"):
        load_checkpoint(path)


def test_other_config_is_refused_and_nothing_is_loaded(trained):
    _, _, path = trained
    model = make_model(seed=5, n_layer=3)
    optimizer = AdamW(model.parameters())
    before = {name: t.clone() for name, t in model.state_dict().items()}
    with pytest.raises(ValueError, match="trained with n_layer=2, this model has n_layer=3"):
        restore(load_checkpoint(path), model, optimizer)
    assert_same_state(model.state_dict(), before)
    assert optimizer.state == {}


def test_optimizer_mismatch_loads_nothing(trained):
    _, _, path = trained
    ckpt = load_checkpoint(path)
    model = make_model(seed=5)
    before = {name: t.clone() for name, t in model.state_dict().items()}
    with pytest.raises(ValueError, match="checkpoint holds AdamW state, the optimizer given is SGD"):
        restore(ckpt, model, SGD(model.parameters(), lr=0.1))
    params = list(model.parameters())
    grouped = AdamW([{"params": params[:3]}, {"params": params[3:]}])  # two groups where one was saved
    with pytest.raises(ValueError, match="group"):
        restore(ckpt, model, grouped)
    assert_same_state(model.state_dict(), before)  # the weights written before the failure were undone
    assert grouped.state == {}


def test_meta_may_not_shadow_the_header(tmp_path):
    with pytest.raises(ValueError, match="reserved"):
        save_checkpoint(tmp_path / "c.safetensors", make_model(), meta={"model_config": {}})


def half_writer(tensors, filename, metadata=None):
    """A save_file that dies halfway: writes half the real bytes, then the user presses Ctrl-C."""
    save_file(tensors, filename, metadata=metadata)
    with open(filename, "r+b") as f:
        f.truncate(os.path.getsize(filename) // 2)
    raise KeyboardInterrupt


def failing(*args, **kwargs):
    raise OSError("disk full")


@pytest.mark.parametrize("target, fake, error", [
    ("tinygrad_llm.recipes.checkpoint.save_file", half_writer, KeyboardInterrupt),
    ("tinygrad_llm.recipes.checkpoint.save_file", failing, OSError),
    ("os.fsync", failing, OSError),
    ("os.replace", failing, OSError),
])
def test_crash_while_saving_keeps_the_previous_checkpoint(trained, monkeypatch, target, fake, error):
    model, optimizer, path = trained
    old = {name: t.clone() for name, t in model.state_dict().items()}   # the model's numbers as they are now
    train(model, optimizer, 1, seed=3)
    monkeypatch.setattr(target, fake)
    with pytest.raises(error):
        save_checkpoint(path, model, optimizer, meta={"iter": 4})
    monkeypatch.undo()

    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]  # no stray *.tmp
    ckpt = load_checkpoint(path)
    assert ckpt.meta == {"iter": 3}
    assert_same_state(ckpt.model_state, old)


# ---- integrity: checksums, the tie, finite weights (issue 14) ----

@pytest.fixture
def tiny(tmp_path):
    """The path of a checkpoint as training writes one (checkpoint_files.write_tiny_checkpoint)."""
    path = tmp_path / "tiny.safetensors"
    write_tiny_checkpoint(path)
    return path


def data_offsets(path):
    """{tensor name: (first byte, end) in the file} from the safetensors header."""
    raw = path.read_bytes()
    n = int.from_bytes(raw[:8], "little")
    entries = json.loads(raw[8:8 + n])
    return {name: (8 + n + e["data_offsets"][0], 8 + n + e["data_offsets"][1])
            for name, e in entries.items() if name != "__metadata__"}


def test_the_tied_embedding_is_stored_once_and_the_tie_recorded(tiny):
    header, tensors = read_checkpoint(tiny)
    assert "lm_head.weight" not in tensors and "transformer.wte.weight" in tensors
    assert header["tied"] == {"lm_head.weight": "transformer.wte.weight"}
    model, _ = load_lm(tiny)
    assert model.lm_head.weight is model.transformer.wte.weight


def test_a_second_copy_of_the_tied_embedding_is_refused(tiny):
    """Format 1 stored both names, and which copy won depended on PYTHONHASHSEED (set order in load_state_dict)."""
    rewrite(tiny, lambda header, t: t.update({"lm_head.weight": t["transformer.wte.weight"] + 1}))
    with pytest.raises(CheckpointError, match=r"tiny.safetensors: .*lm_head.weight: not a parameter of this GPT "
                                              r"\(it is transformer.wte.weight, stored once\)"):
        load_checkpoint(tiny)


@pytest.mark.parametrize("name", ["transformer.h.1.mlp.c_fc.weight", "optimizer.state.0.exp_avg_sq"])
def test_a_flipped_bit_in_a_tensor_is_found_and_named(tiny, name):
    """Format 1 loaded it silently."""
    first, end = data_offsets(tiny)[name]
    raw = bytearray(tiny.read_bytes())
    raw[(first + end) // 2] ^= 0x04
    tiny.write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match=rf"tiny.safetensors: {name}: its bytes do not match its checksum"):
        load_checkpoint(tiny)


def test_an_edited_header_is_found(tiny):
    raw = tiny.read_bytes()
    assert raw.count(b'\\"iter\\": 2') == 1
    tiny.write_bytes(raw.replace(b'\\"iter\\": 2', b'\\"iter\\": 3'))  # valid JSON, valid schema, wrong
    with pytest.raises(CheckpointError, match="header entry does not match its checksum"):
        load_checkpoint(tiny)


def test_nan_weights_are_refused_unless_asked_for(tiny, capsys):
    """Format 1 loaded them, and a resumed run trained NaN to the end with exit status 0."""
    def poison(header, t):
        t["transformer.wpe.weight"][3, 1] = np.nan
        t["optimizer.state.1.exp_avg"][0, 0] = np.inf
    rewrite(tiny, poison)
    with pytest.raises(CheckpointError, match=r"tiny.safetensors: NaN or infinite values in optimizer.state.1.exp_avg "
                                              r"\(1\), transformer.wpe.weight \(1\).*allow_nonfinite=True, or "
                                              r"sample's --allow-nonfinite"):
        load_checkpoint(tiny)
    model, _ = load_lm(tiny, allow_nonfinite=True)  # to look at
    assert np.isnan(model.transformer.wpe.weight.detach().numpy()[3, 1])
    assert main(["sample", "--ckpt", str(tiny), "--max-new-tokens", "2"]) == 2
    assert "--allow-nonfinite" in capsys.readouterr().err


def test_a_format_1_checkpoint_is_named_as_such(tiny):
    header, tensors = read_checkpoint(tiny)
    save_file(tensors, tiny, metadata={METADATA_KEY: json.dumps({**header, "format": 1})})  # no checksum
    with pytest.raises(CheckpointError, match=r"tiny.safetensors: .*format 1, without checksums.*reads format 2"):
        load_checkpoint(tiny)


# ---- the header's schema, checked before any tensor is read or model built (issue 14) ----

def edit(where, value):
    """An edit of the header at the dotted path `where` ("model_config.n_layer", "optimizer.params.0"): set it to
    `value`, or delete it for DELETE."""
    def apply(header, tensors):
        *parents, last = where.split(".")
        node = header
        for key in parents:
            node = node[int(key) if isinstance(node, list) else key]
        key = int(last) if isinstance(node, list) else last
        if value is DELETE:
            del node[key]
        else:
            node[key] = value
    return apply


DELETE = object()


def tensors_edit(change):
    return lambda header, tensors: change(tensors)


def renamed(old, new):
    return tensors_edit(lambda t: t.update({new: t.pop(old)}))


def edits(*changes):
    def apply(header, tensors):
        for change in changes:
            change(header, tensors)
    return apply


def negative_second_moment(header, tensors):
    tensors[M + "exp_avg_sq"][0, 0] = -1e-4  # Adam divides by sqrt(v): NaN from the first resumed step


def forget_state(index):
    """Parameter `index` without optimizer state, as if it had never had a gradient."""
    def apply(header, tensors):
        del header["optimizer"]["steps"][str(index)]
        for key in ("exp_avg", "exp_avg_sq"):
            del tensors[f"optimizer.state.{index}.{key}"]
    return apply


M = "optimizer.state.0."  # the moments of parameter 0 (transformer.wte.weight)
BAD_HEADERS = {
    # what format 1 did with it: KeyError 'model_config'
    "no model_config": (edit("model_config", DELETE), "the header lacks model_config"),
    # ZeroDivisionError
    "n_head 0": (edit("model_config.n_head", 0), r"n_head is 0, outside the sizes this GPT accepts"),
    "n_head 3": (edit("model_config.n_head", 3), "n_embd 8 is not divisible by n_head 3"),
    # TypeError
    "vocab_size a string": (edit("model_config.vocab_size", "11"), "model_config.vocab_size must be an integer"),
    "n_embd 1e300": (edit("model_config.n_embd", 1e300), "model_config.n_embd must be an integer"),
    # allocated gigabytes, and hung
    "n_layer 1e9": (edit("model_config.n_layer", 10 ** 9), "n_layer is 1000000000, outside the sizes"),
    "n_layer 3": (edit("model_config.n_layer", 3), "n_layer is 3, but the file holds layers 0 to 1"),
    "vocab_size 12": (edit("model_config.vocab_size", 12), r"wte.weight has shape \(11, 8\) in the file, but "
                                                           r"\(vocab_size, n_embd\) is \(12, 8\)"),
    "block_size 9": (edit("model_config.block_size", 9), r"wpe.weight has shape \(8, 8\)"),
    "dropout 1.5": (edit("model_config.dropout", 1.5), r"model_config.dropout must be a number in \[0, 1\)"),
    "bias a string": (edit("model_config.bias", "yes"), "model_config.bias must be true or false"),
    "extra field": (edit("model_config.n_kv_head", 2), "model_config must hold exactly"),
    "format 3": (edit("format", 3), "checkpoint format 3; this version reads format 2 only"),
    "tie edited": (edit("tied", {}), "tied is {}; a GPT ties exactly"),
    "iter -1": (edit("iter", -1), "iter is -1; an iteration is an integer from 0 to 2"),
    "best_val_loss a string": (edit("best_val_loss", "low"), "best_val_loss is 'low'; a loss is a float"),
    "rng damaged": (edit("rng.pos", 625), "rng is not the state of the engine's generator"),
    "rng word damaged": (edit("rng.mt19937", [0] * 623 + [2 ** 32]), "rng is not the state of the engine's"),
    "old rng damaged": (edit("rng", {"seed": 0, "cpu": {"bit_generator": "PCG64", "has_uint32": 0, "uinteger": 0,
                                                        "state": {"state": 2 ** 200, "inc": 1}}}),
                        "nor an older version's"),
    "rank_rngs not a list": (edit("rank_rngs", {"1": 0}), "rank_rngs must be a list of generator states"),
    "rank_rngs damaged": (edit("rank_rngs", [{"seed": 1}]), r"rank_rngs\[0\] is not the state of the engine's"),
    "tokenizer shortened": (edit("tokenizer.chars", list(CHARS[:-1])), "tokenizer: 10 tokens, but "
                                                                         "model_config.vocab_size is 11"),
    "tokenizer not a list": (edit("tokenizer.chars", 5), "tokenizer: CharTokenizer.from_dict: chars must be"),
    # the optimizer's state: format 1 took these, failing later with a bare KeyError or resetting Adam's moments
    "step -1": (edit("optimizer.steps.0", -1), r"optimizer.steps\['0'\] is -1; a step count is an integer from 0"),
    "step 2.5": (edit("optimizer.steps.0", 2.5), r"optimizer.steps\['0'\] is 2.5"),
    "step true": (edit("optimizer.steps.0", True), r"optimizer.steps\['0'\] is True"),
    "step missing": (edit("optimizer.steps.0", DELETE), r"parameter 0 \(transformer.wte.weight\) holds "
                                                        r"\['exp_avg', 'exp_avg_sq'\]; it must hold exactly"),
    "step of no parameter": (edit("optimizer.steps.99", 1), r"optimizer.steps\['99'\]: '99' is not a parameter "
                                                            r"index"),
    "moment renamed": (renamed(M + "exp_avg", M + "exp_avgX"), r"holds \['exp_avgX', 'exp_avg_sq', 'step'\]"),
    "moment missing": (tensors_edit(lambda t: t.pop(M + "exp_avg_sq")), r"holds \['exp_avg', 'step'\]"),
    "moment extra": (tensors_edit(lambda t: t.update({M + "max_exp_avg_sq": t[M + "exp_avg"]})),
                     "max_exp_avg_sq"),
    "moment of no parameter": (renamed(M + "exp_avg", "optimizer.state.99.exp_avg"),
                               "optimizer.state.99.exp_avg: '99' is not a parameter index"),
    "moment not a name": (renamed(M + "exp_avg", "optimizer.state.x"), "optimizer.state.x: not a name of "
                                                                       "optimizer state"),
    "moment of ints": (tensors_edit(lambda t: t.update({M + "exp_avg": t[M + "exp_avg"].astype(np.int64)})),
                       r"optimizer.state.0.exp_avg: I64 of shape \(11, 8\); the state of transformer.wte.weight "
                       r"is float32 of shape \(11, 8\)"),
    "moment of another shape": (tensors_edit(lambda t: t.update({M + "exp_avg": t[M + "exp_avg"][:5].copy()})),
                                r"optimizer.state.0.exp_avg: F32 of shape \(5, 8\)"),
    "optimizer class": (edit("optimizer.class", "Lion"), "optimizer.class is 'Lion'; known: Adam, AdamW, SGD"),
    "optimizer class a list": (edit("optimizer.class", ["AdamW"]), r"optimizer.class is \['AdamW'\]"),
    "optimizer params": (edit("optimizer.params.0", "transformer.wte.bias"), "optimizer.params must list"),
    "groups out of order": (lambda h, t: h["optimizer"]["param_groups"].reverse(), "param_groups' params must "
                                                                                   "number the"),
    "lr a string": (edit("optimizer.param_groups.0.lr", "fast"), r"param_groups\[0\].lr is 'fast'"),
    "no optimizer, moments": (edit("optimizer", None), "optimizer state, but the header has no optimizer"),
    # issue 23: every field valid, the whole contradicting itself; each of these loaded
    "exp_avg_sq negative": (negative_second_moment, "optimizer.state.0.exp_avg_sq holds 1 negative value"),
    "step 0, moments not": (edits(edit("iter", DELETE), edit("optimizer.steps.0", 0)),
                            r"optimizer.steps\['0'\] is 0 \(no update yet\), but optimizer.state.0.exp_avg is not"),
    "iter behind the steps": (edit("iter", 1), r"iter is 1, but parameter 0 \(transformer.wte.weight\) has stepped "
                                               r"2 times \(optimizer.steps\); the trainer steps every parameter once"),
    "iter ahead of the steps": (edit("iter", 3), r"iter is 3, but parameter 0 \(transformer.wte.weight\) has "
                                                 r"stepped 2 times"),
    "a state missing": (forget_state(5), r"iter is 2, but parameter 5 \(transformer.h.0.mlp.c_proj.weight\) has no "
                                         r"optimizer state"),
    "iter behind, not the trainer's": (edits(edit("train_config", DELETE), edit("iter", 1)),
                                       r"iter is 1, but parameter 0 .* a parameter steps at most once per iteration"),
    "best_val_loss -1": (edit("best_val_loss", -1.0), r"best_val_loss is -1.0; a loss is a float >= 0"),
    "lr missing": (edit("optimizer.param_groups.0.lr", DELETE), r"optimizer.param_groups\[0\] lacks lr: an AdamW "
                                                                r"group holds amsgrad, betas, .*, lr, maximize, "
                                                                r"weight_decay"),
    "option of another optimizer": (edit("optimizer.param_groups.1.momentum", 0.9),
                                    r"optimizer.param_groups\[1\] has momentum, not an option of AdamW"),
}


def test_the_header_error_cases_are_distinct():
    assert len({message for _, message in BAD_HEADERS.values()}) == len(BAD_HEADERS)


@pytest.mark.parametrize("case", BAD_HEADERS)
def test_a_wrong_header_is_refused_naming_file_and_field(tiny, case, monkeypatch):
    change, message = BAD_HEADERS[case]
    rewrite(tiny, change)
    original = tiny.read_bytes()
    monkeypatch.setattr(GPT, "__init__", lambda *a, **k: pytest.fail("a model was built"))
    with pytest.raises(CheckpointError, match=message) as caught:
        load_checkpoint(tiny)
    assert str(caught.value).startswith(f"{tiny}: ")
    assert tiny.read_bytes() == original


def test_json_that_does_not_parse_is_named(tiny):
    """Format 1 raised the decoder's message with no file name."""
    header, tensors = read_checkpoint(tiny)
    write_consistently(tiny, header, tensors, text=json.dumps(header)[:-1])
    with pytest.raises(CheckpointError, match=r"tiny.safetensors: the 'tinygrad_llm' header entry is not valid JSON"):
        load_checkpoint(tiny)


def test_every_tensor_must_have_a_checksum(tiny):
    header, tensors = read_checkpoint(tiny)
    header["checksums"].pop("transformer.wpe.weight")
    write_consistently(tiny, header, tensors, text=json.dumps(header))  # the JSON as it is: one checksum short
    with pytest.raises(CheckpointError, match="tiny.safetensors: checksums must list every tensor"):
        load_checkpoint(tiny)


def test_an_optimizer_over_other_parameters_is_refused(tiny):
    ckpt = load_checkpoint(tiny)
    model = make_model(**{k: v for k, v in ckpt.model_config.items() if k in CONFIG})
    params = list(model.parameters())
    shuffled = AdamW([{"params": params[1:], "weight_decay": 0.1}, {"params": params[:1], "weight_decay": 0.0}])
    with pytest.raises(CheckpointError, match=r"tiny.safetensors: the optimizer given is over other parameters"):
        restore(ckpt, model, shuffled)
    restore(ckpt, model, tiny_optimizer(model))  # the same parameters in the same order load


# ---- what a checkpoint holds agrees with itself (issue 23); what runs legitimately save still loads ----

def test_a_negative_second_moment_is_refused_even_where_nan_is_allowed(tiny):
    """allow_nonfinite opens a run that diverged (its v may be inf or NaN); no run makes v, a mean of squares,
    negative."""
    rewrite(tiny, negative_second_moment)
    with pytest.raises(CheckpointError, match=rf"{tiny}: optimizer.state.0.exp_avg_sq holds 1 negative value"):
        load_checkpoint(tiny, allow_nonfinite=True)
    rewrite(tiny, lambda header, tensors: tensors[M + "exp_avg_sq"].fill(np.nan))  # as a diverged run leaves it
    assert np.isnan(load_checkpoint(tiny, allow_nonfinite=True).optimizer_state["state"][0]["exp_avg_sq"]).all()


@pytest.mark.parametrize("given, twice", [('"best_val_loss": 2.25', '"best_val_loss": 2.25, "best_val_loss": 0.5'),
                                          ('"dropout": 0.0', '"dropout": 0.0, "dropout": 0.5')])
def test_a_key_given_twice_is_refused_naming_it(tiny, given, twice):
    """json.loads keeps the last of two: best_val_loss 0.5 (or dropout 0.5, in model_config) loaded silently."""
    header, tensors = read_checkpoint(tiny)
    text = json.dumps(header)
    assert text.count(given) == 1
    write_consistently(tiny, header, tensors, text=text.replace(given, twice))
    key = given.split('"')[1]
    with pytest.raises(CheckpointError, match=rf"{tiny}: the key '{key}' is given twice"):
        load_checkpoint(tiny)


@pytest.mark.parametrize("change", [edit("best_val_loss", float("inf")), edit("best_val_loss", 0.0),
                                    edit("optimizer.param_groups.0.initial_lr", 1e-2)],
                         ids=["no loss measured yet", "a loss of 0", "a scheduler's initial_lr"])
def test_what_a_run_may_save_loads(tiny, change):
    """The checks refuse only what no run writes."""
    rewrite(tiny, change)
    checkpoint = load_checkpoint(tiny)
    model = model_from_checkpoint(checkpoint)
    restore(checkpoint, model, tiny_optimizer(model))


def test_the_trainer_s_first_checkpoint_has_no_optimizer_state(tmp_path):
    """At iteration 0 no parameter has stepped, so none has state."""
    path = tmp_path / "first.safetensors"
    write_tiny_checkpoint(path, steps=0)
    checkpoint = load_checkpoint(path)
    assert checkpoint.meta["iter"] == 0 and checkpoint.optimizer_state["state"] == {}


def test_outside_the_trainer_a_parameter_without_gradient_steps_fewer_times(tmp_path):
    """A frozen parameter gets no gradient and is not updated: its step count lags the iterations (or it has no
    state). That loads; in a trainer's checkpoint (with train_config), where every parameter steps every iteration,
    it is refused."""
    model = make_model()
    optimizer = AdamW(model.parameters(), lr=1e-2)
    frozen, never = model.transformer.wpe.weight, model.transformer.ln_f.weight
    frozen.requires_grad = never.requires_grad = False
    train(model, optimizer, 1)
    frozen.requires_grad = True
    train(model, optimizer, 2, seed=2)
    path = tmp_path / "partly_frozen.safetensors"
    save_checkpoint(path, model, optimizer, meta={"iter": 3})
    names = load_checkpoint(path).optimizer_params
    steps = {names[index]: entry["step"] for index, entry in load_checkpoint(path).optimizer_state["state"].items()}
    assert steps["transformer.wpe.weight"] == 2 and "transformer.ln_f.weight" not in steps
    assert set(steps.values()) == {2, 3}
    fresh = make_model(seed=5)
    restore(load_checkpoint(path), fresh, AdamW(fresh.parameters()))

    save_checkpoint(path, model, optimizer, meta={"iter": 3, "train_config": {}})
    with pytest.raises(CheckpointError, match=r"iter is 3, but parameter 1 \(transformer.wpe.weight\) has stepped "
                                              r"2 times"):
        load_checkpoint(path)


def test_an_sgd_checkpoint_with_momentum_loads(tmp_path):
    """SGD keeps no step count, and its options are others than Adam's: the same checks pass it."""
    model = make_model()
    optimizer = SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True)
    train(model, optimizer, 2)
    save_checkpoint(tmp_path / "sgd.safetensors", model, optimizer, meta={"iter": 2})
    checkpoint = load_checkpoint(tmp_path / "sgd.safetensors")
    again = SGD(model.parameters(), lr=0.5)
    restore(checkpoint, model, again)
    assert again.param_groups[0]["momentum"] == 0.9 and again.param_groups[0]["nesterov"] is True


def test_a_training_run_s_checkpoints_pass_every_check_and_resume(tmp_path):
    """What the trainer writes: every parameter stepped once per iteration; a resumed run carries on from it."""
    cfg = dict(out_dir=str(tmp_path), batch_size=2, block_size=8, n_layer=1, n_head=2, n_embd=8, eval_iters=1,
               eval_interval=3, warmup_iters=1, lr_decay_iters=10)
    for max_iters, resume in ((3, False), (5, True)):
        run_training(TrainConfig(**cfg, max_iters=max_iters), resume=resume, progress=False, log=lambda line: None)
        checkpoint = load_checkpoint(tmp_path / "last.safetensors")
        steps = [entry["step"] for entry in checkpoint.optimizer_state["state"].values()]
        assert checkpoint.meta["iter"] == max_iters
        assert steps == [max_iters] * len(checkpoint.optimizer_params)
