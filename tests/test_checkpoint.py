"""Tests for tinygrad_llm.recipes.checkpoint: exact round trips, resuming training, clear errors, atomic saving."""
import os

import numpy as np
import pytest
from safetensors.numpy import save_file

from tinygrad_llm.engine import rng
from tinygrad_llm.models.gpt import GPT, GPTConfig
from tinygrad_llm.optim import SGD, AdamW
from tinygrad_llm.recipes.checkpoint import load_checkpoint, model_from_checkpoint, restore, save_checkpoint

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
    meta = {"iter": 3, "best_val_loss": 2.5, "tokenizer": {"type": "char", "chars": list("abc")},
            "rng": rng.get_state()}  # the PCG64 state holds 128-bit integers
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


def test_tied_weights_stay_tied(trained):
    model, _, path = trained
    loaded = model_from_checkpoint(load_checkpoint(path))
    assert loaded.lm_head.weight is loaded.transformer.wte.weight
    assert np.array_equal(loaded.lm_head.weight.numpy(), model.transformer.wte.weight.numpy())
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
    with pytest.raises(ValueError, match=r"ckpt.safetensors is not a readable checkpoint.*truncated or corrupt"):
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
    before = model.state_dict()
    with pytest.raises(ValueError, match="trained with n_layer=2, this model has n_layer=3"):
        restore(load_checkpoint(path), model, optimizer)
    assert_same_state(model.state_dict(), before)
    assert optimizer.state == {}


def test_optimizer_mismatch_loads_nothing(trained):
    _, _, path = trained
    ckpt = load_checkpoint(path)
    model = make_model(seed=5)
    before = model.state_dict()
    with pytest.raises(ValueError, match="checkpoint holds AdamW state, the optimizer given is SGD"):
        restore(ckpt, model, SGD(model.parameters(), lr=0.1))
    params = model.parameters()
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
    old = model.state_dict()
    train(model, optimizer, 1, seed=3)
    monkeypatch.setattr(target, fake)
    with pytest.raises(error):
        save_checkpoint(path, model, optimizer, meta={"iter": 4})
    monkeypatch.undo()

    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]  # no stray *.tmp
    ckpt = load_checkpoint(path)
    assert ckpt.meta == {"iter": 3}
    assert_same_state(ckpt.model_state, old)
