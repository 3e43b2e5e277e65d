"""Tests for tinygrad_llm.recipes.pretrained: Hugging Face GPT-2 checkpoints in and out.

With transformers installed, a tiny GPT-2 crosses in both directions and gives the same logits; without it those
tests skip and the rest (exact round trips, clear errors, nothing half-loaded, atomic saving) still run: their
broken checkpoints are written with safetensors.numpy directly. Nothing is downloaded."""
import json
import re

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from tinygrad_llm.engine import rng
from tinygrad_llm.models.gpt import GPT, GPTConfig
from tinygrad_llm.recipes.gpt_tensors import gpt2_shapes
from tinygrad_llm.recipes.pretrained import load_pretrained, save_pretrained

TINY = dict(vocab_size=101, block_size=16, n_layer=2, n_head=2, n_embd=32)
HF_TINY = dict(vocab_size=101, n_positions=16, n_layer=2, n_head=2, n_embd=32, activation_function="gelu_new",
               resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=0, eos_token_id=0)
IDX = np.random.default_rng(0).integers(0, TINY["vocab_size"], (2, TINY["block_size"]))


def our_model(seed=0, **changes):
    """Our GPT, its weights moved off GPT-2's init (zero biases and unit gains would hide layout mistakes)."""
    rng.manual_seed(seed)
    model = GPT(GPTConfig(**{**TINY, **changes}))
    noise = np.random.default_rng(seed + 1)
    for p in model.parameters():
        p.data[...] += (0.1 * noise.standard_normal(p.shape)).astype(p.dtype)
    return model


def our_logits(model, idx=IDX):
    """(B, T, V) logits: passing targets makes the model score every position, not only the last."""
    logits, _ = model(idx, idx)
    return logits.detach().numpy()


def assert_same_weights(a, b):
    a, b = a.state_dict(), b.state_dict()
    assert a.keys() == b.keys()
    for name in a:
        assert a[name].dtype == b[name].dtype and np.array_equal(a[name], b[name]), name


@pytest.fixture
def hf(monkeypatch):
    """transformers (offline) and torch, or the test is skipped."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    transformers = pytest.importorskip("transformers")
    return transformers, pytest.importorskip("torch")


def hf_model(hf, seed=0):
    """A randomly initialised GPT2LMHeadModel with TINY's sizes, every weight perturbed, in eval mode."""
    transformers, torch = hf
    torch.manual_seed(seed)
    model = transformers.GPT2LMHeadModel(transformers.GPT2Config(**HF_TINY))
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return model.eval()


def hf_logits(hf, model, idx=IDX):
    _, torch = hf
    with torch.no_grad():
        return model(torch.tensor(idx)).logits.float().numpy()


@pytest.fixture
def saved(tmp_path):
    """(our model, the directory save_pretrained wrote it to)."""
    model = our_model()
    save_pretrained(model, tmp_path / "gpt")
    return model, tmp_path / "gpt"


# ----- the layout -----

def test_gpt2_layout_is_ours_with_conv1d_weights_transposed():
    config = GPTConfig(**TINY)
    ours = {name: array.shape for name, array in GPT(config).state_dict().items() if name != "lm_head.weight"}
    conv1d = ("c_attn.weight", "c_proj.weight", "c_fc.weight")
    theirs = {"transformer." + name: shape[::-1] if name.endswith(conv1d) else shape
              for name, shape in gpt2_shapes(config).items()}
    assert theirs == ours


@pytest.mark.parametrize("n_layer, n_head, n_embd, params", [
    (12, 12, 768, 124_439_808), (24, 16, 1024, 354_823_168), (36, 20, 1280, 774_030_080),
    (48, 25, 1600, 1_557_611_200),  # gpt2, gpt2-medium, gpt2-large, gpt2-xl
])
def test_gpt2_layout_counts_the_published_sizes(n_layer, n_head, n_embd, params):
    config = GPTConfig(vocab_size=50257, block_size=1024, n_layer=n_layer, n_head=n_head, n_embd=n_embd)
    assert sum(int(np.prod(shape)) for shape in gpt2_shapes(config).values()) == params


# ----- transformers -> ours -----

def test_loads_a_transformers_gpt2_with_the_same_logits(hf, tmp_path):
    theirs = hf_model(hf)
    theirs.save_pretrained(tmp_path, safe_serialization=True)
    ours = load_pretrained(tmp_path)
    assert ours.config == GPTConfig(**TINY, dropout=0.0, bias=True)
    np.testing.assert_allclose(our_logits(ours), hf_logits(hf, theirs), rtol=1e-4, atol=1e-4)
    last, _ = ours(IDX)  # without targets: the last position only
    np.testing.assert_allclose(last.detach().numpy()[:, 0], hf_logits(hf, theirs)[:, -1], rtol=1e-4, atol=1e-4)


def test_loads_a_gpt2model_save_without_prefix_or_head(hf, tmp_path):
    theirs = hf_model(hf)
    theirs.transformer.save_pretrained(tmp_path, safe_serialization=True)  # GPT2Model: `h.0...`, no lm_head
    np.testing.assert_allclose(our_logits(load_pretrained(tmp_path)), hf_logits(hf, theirs),
                               rtol=1e-4, atol=1e-4)


def test_loads_a_sharded_checkpoint(hf, tmp_path):
    theirs = hf_model(hf)
    theirs.save_pretrained(tmp_path / "one", safe_serialization=True)
    theirs.save_pretrained(tmp_path / "shards", safe_serialization=True, max_shard_size="20KB")
    assert (tmp_path / "shards" / "model.safetensors.index.json").exists()
    assert len(list((tmp_path / "shards").glob("model-*.safetensors"))) > 1
    assert_same_weights(load_pretrained(tmp_path / "shards"), load_pretrained(tmp_path / "one"))


@pytest.mark.parametrize("half", ["float16", "bfloat16"])
def test_loads_half_precision_weights_exactly(hf, tmp_path, half):
    _, torch = hf
    theirs = hf_model(hf).to(getattr(torch, half))
    theirs.save_pretrained(tmp_path, safe_serialization=True)
    ours = load_pretrained(tmp_path)
    assert ours.transformer.wte.weight.dtype == np.float32
    expected = {name: p.float().numpy() for name, p in theirs.state_dict().items()}
    for name, array in ours.state_dict().items():
        hf_array = expected[name]
        assert np.array_equal(array, hf_array.T if name.endswith(("c_attn.weight", "c_proj.weight",
                                                                   "c_fc.weight")) else hf_array), name


# ----- ours -> transformers -----

def test_transformers_loads_ours_with_the_same_logits(hf, saved):
    transformers, _ = hf
    ours, directory = saved
    theirs, info = transformers.GPT2LMHeadModel.from_pretrained(directory, output_loading_info=True)
    assert not any(info.values()), info  # no missing, unexpected or mismatched tensors
    assert theirs.config.n_positions == TINY["block_size"] and theirs.config.activation_function == "gelu_new"
    np.testing.assert_allclose(hf_logits(hf, theirs.eval()), our_logits(ours), rtol=1e-4, atol=1e-4)


def test_saved_files_look_like_transformers_own(saved):
    _, directory = saved
    assert sorted(p.name for p in directory.iterdir()) == ["config.json", "model.safetensors"]  # no stray *.tmp
    config = json.loads((directory / "config.json").read_text())
    assert config["model_type"] == "gpt2" and config["architectures"] == ["GPT2LMHeadModel"]
    assert config["n_positions"] == config["n_ctx"] == 16 and config["layer_norm_epsilon"] == 1e-5
    tensors = load_file(directory / "model.safetensors")
    assert "lm_head.weight" not in tensors                                   # tied: transformers ties it back
    assert tensors["transformer.h.0.mlp.c_fc.weight"].shape == (32, 128)      # Conv1D: (in, out)


# ----- ours -> ours -----

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_round_trip_is_bit_exact(tmp_path, dtype):
    model = our_model().to(dtype)
    save_pretrained(model, tmp_path)
    loaded = load_pretrained(tmp_path, dtype=dtype)
    assert_same_weights(loaded, model)
    assert loaded.lm_head.weight is loaded.transformer.wte.weight             # still tied
    np.testing.assert_array_equal(our_logits(loaded), our_logits(model))


def test_loads_into_float64(saved):
    model, directory = saved
    loaded = load_pretrained(directory, dtype=np.float64)
    assert {p.dtype for p in loaded.parameters()} == {np.dtype(np.float64)}
    np.testing.assert_array_equal(loaded.transformer.h[1].mlp.c_fc.weight.detach().numpy(),
                                  model.transformer.h[1].mlp.c_fc.weight.detach().numpy().astype(np.float64))


def test_float16_file_and_old_style_names(saved):
    """No `transformer.` prefix, float16 tensors and the causal-mask buffers old GPT-2 checkpoints carry."""
    _, directory = saved
    tensors = load_file(directory / "model.safetensors")
    old = {name.removeprefix("transformer."): array.astype(np.float16) for name, array in tensors.items()}
    old["h.0.attn.bias"] = np.tril(np.ones((1, 1, 16, 16), np.float32))
    old["h.0.attn.masked_bias"] = np.array(-1e4, np.float32)
    save_file(old, directory / "model.safetensors", metadata={"format": "pt"})
    loaded = load_pretrained(directory)
    np.testing.assert_array_equal(loaded.transformer.wpe.weight.detach().numpy(),
                                  tensors["transformer.wpe.weight"].astype(np.float16).astype(np.float32))


def test_loading_does_not_move_the_random_stream(saved):
    _, directory = saved
    rng.manual_seed(7)
    expected = rng.get_state()
    load_pretrained(directory)
    assert rng.get_state() == expected


# ----- errors: nothing loaded, nothing changed -----

def rewrite(directory, change):
    """Apply change(tensors) to the saved model.safetensors, in place."""
    tensors = load_file(directory / "model.safetensors")
    change(tensors)
    save_file(tensors, directory / "model.safetensors", metadata={"format": "pt"})


def truncate(directory):
    data = (directory / "model.safetensors").read_bytes()
    (directory / "model.safetensors").write_bytes(data[:len(data) // 2])


C_FC = "transformer.h.1.mlp.c_fc.weight"
BROKEN_WEIGHTS = {
    "missing": (lambda d: rewrite(d, lambda t: t.pop("transformer.h.1.ln_2.bias")),
                ValueError, "transformer.h.1.ln_2.bias: missing"),
    "wrong shape": (lambda d: rewrite(d, lambda t: t.update({C_FC: t[C_FC][:, :126].copy()})),
                    ValueError, re.escape(f"{C_FC}: expected shape (32, 128) in the file, got (32, 126)")),
    "wrong dtype": (lambda d: rewrite(d, lambda t: t.update({C_FC: t[C_FC].astype(np.int32)})),
                    ValueError, f"{C_FC}: dtype I32 in the file"),
    "unexpected": (lambda d: rewrite(d, lambda t: t.update({"transformer.h.1.ln_3.weight": np.ones(32, np.float32)})),
                   ValueError, "transformer.h.1.ln_3.weight: unexpected tensor"),
    "a layer too many": (lambda d: rewrite(d, lambda t: t.update({"transformer.h.2.ln_1.weight": np.ones(32)})),
                         ValueError, "n_layer is 2, but the file holds layers 0 to 2"),
    "twice": (lambda d: rewrite(d, lambda t: t.update({"h.0.ln_1.bias": t["transformer.h.0.ln_1.bias"]})),
              ValueError, "stored twice"),
    "untied head": (lambda d: rewrite(d, lambda t: t.update({"lm_head.weight": t["transformer.wte.weight"] + 1})),
                    ValueError, "lm_head.weight differs from transformer.wte.weight"),
    "truncated": (truncate, ValueError, r"model\.safetensors: not a readable safetensors file .*truncated"),
    "no weights": (lambda d: (d / "model.safetensors").unlink(), FileNotFoundError, r"no model\.safetensors"),
    "pickle only": (lambda d: (d / "model.safetensors").rename(d / "pytorch_model.bin"),
                    FileNotFoundError, "pytorch_model.bin, a pickle"),
}


def edit_config(**changes):
    def edit(directory):
        config = json.loads((directory / "config.json").read_text())
        config.update(changes)
        for field in [field for field, value in changes.items() if value is None]:
            del config[field]
        (directory / "config.json").write_text(json.dumps(config))
    return edit


BROKEN_CONFIGS = {
    "no config": (lambda d: (d / "config.json").unlink(), FileNotFoundError, r"config\.json: not found"),
    "not json": (lambda d: (d / "config.json").write_text("{"), ValueError, r"config\.json: not valid JSON"),
    "activation": (edit_config(activation_function="relu"), ValueError, "activation_function is 'relu'"),
    "eps": (edit_config(layer_norm_epsilon=1e-6), ValueError, "layer_norm_epsilon is 1e-06"),
    "model type": (edit_config(model_type="gpt_neo"), ValueError, "model_type is 'gpt_neo'"),
    "untied": (edit_config(tie_word_embeddings=False), ValueError, "tie_word_embeddings is False"),
    "n_inner": (edit_config(n_inner=100), ValueError, "n_inner is 100"),
    "no n_layer": (edit_config(n_layer=None), ValueError, "n_layer must be an integer, got None"),
    "bad sizes": (edit_config(n_head=3), ValueError, "n_embd 32 is not divisible by n_head 3"),
    "sizes disagree": (edit_config(n_layer=3), ValueError, r"config\.json with .*model\.safetensors: n_layer is 3, "
                                                           r"but the file holds layers 0 to 1"),
    "vocab disagrees": (edit_config(vocab_size=100), ValueError, r"wte.weight has shape \(101, 32\) in the file, "
                                                                 r"but \(vocab_size, n_embd\) is \(100, 32\)"),
    "n_positions disagrees": (edit_config(n_positions=17), ValueError, r"\(n_positions, n_embd\) is \(17, 32\)"),
    # n_layer 10**9 allocated gigabytes and hung; 58 TiB were asked for with a large n_embd
    "n_layer 1e9": (edit_config(n_layer=10 ** 9), ValueError, "n_layer is 1000000000, outside the sizes"),
    "n_embd huge": (edit_config(n_embd=2 ** 40, n_head=1), ValueError, "n_embd is 1099511627776, outside"),
    "a number of 5000 digits": (lambda d: (d / "config.json").write_text('{"n_layer": ' + "9" * 5000 + "}"),
                                ValueError, r"config\.json: not valid JSON"),
}


@pytest.mark.parametrize("case", list(BROKEN_WEIGHTS) + list(BROKEN_CONFIGS))
def test_a_broken_checkpoint_raises_a_clear_error_and_changes_nothing(saved, case):
    _, directory = saved
    breaks, error, message = {**BROKEN_WEIGHTS, **BROKEN_CONFIGS}[case]
    breaks(directory)
    files = {p.name: p.read_bytes() for p in directory.iterdir()}
    rng.manual_seed(3)
    state = rng.get_state()
    with pytest.raises(error, match=message):
        load_pretrained(directory)
    assert rng.get_state() == state
    assert {p.name: p.read_bytes() for p in directory.iterdir()} == files


def test_a_missing_shard_is_named(saved):
    _, directory = saved
    (directory / "model.safetensors").rename(directory / "model-00001-of-00002.safetensors")
    names = load_file(directory / "model-00001-of-00002.safetensors")
    weight_map = {name: "model-00001-of-00002.safetensors" for name in names}
    weight_map["transformer.ln_f.bias"] = "model-00002-of-00002.safetensors"
    (directory / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))
    with pytest.raises(FileNotFoundError, match=r"model-00002-of-00002\.safetensors: not found"):
        load_pretrained(directory)


@pytest.mark.parametrize("shard", ["../outside.safetensors", "../../x", "/tmp/x.safetensors", "sub/x.safetensors",
                                   "..", ""])
def test_a_shard_outside_the_directory_is_refused(saved, tmp_path, shard):
    """Before: `../../x` was followed outside the model's directory."""
    _, directory = saved
    (directory / "model.safetensors").rename(tmp_path / "outside.safetensors")  # a valid file, where it points
    weight_map = {name: shard for name in load_file(tmp_path / "outside.safetensors")}
    (directory / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))
    with pytest.raises(ValueError, match=rf"model\.safetensors\.index\.json: the shard {re.escape(repr(shard))} of "
                                         rf".* is not a file name in"):
        load_pretrained(directory)


@pytest.mark.parametrize("index", ['{"weight_map": {"a": 3}}', '{"weight_map": []}', '[1]', '{"a": 1}', "{"])
def test_a_broken_index_is_named(saved, index):
    _, directory = saved
    (directory / "model.safetensors").unlink()
    (directory / "model.safetensors.index.json").write_text(index)
    with pytest.raises(ValueError, match=r"model\.safetensors\.index\.json: (not a safetensors index|expected a "
                                         r"JSON object|not valid JSON)"):
        load_pretrained(directory)


def test_only_float32_or_float64_models(saved):
    with pytest.raises(TypeError, match="float16 is not supported"):
        load_pretrained(saved[1], dtype=np.float16)


def test_saving_needs_biases(tmp_path):
    with pytest.raises(ValueError, match="bias=False"):
        save_pretrained(our_model(bias=False), tmp_path)
    assert list(tmp_path.iterdir()) == []


def failing(*args, **kwargs):
    raise OSError("disk full")


@pytest.mark.parametrize("target", ["tinygrad_llm.recipes.pretrained.save_file", "os.replace"])
def test_crash_while_saving_keeps_the_previous_save(saved, monkeypatch, target):
    old, directory = saved
    files = {p.name: p.read_bytes() for p in directory.iterdir()}
    monkeypatch.setattr(target, failing)
    with pytest.raises(OSError, match=re.escape("disk full")):
        save_pretrained(our_model(seed=5), directory)
    monkeypatch.undo()
    assert {p.name: p.read_bytes() for p in directory.iterdir()} == files  # no stray *.tmp either
    assert_same_weights(load_pretrained(directory), old)
