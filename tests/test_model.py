"""Tests of the GPT (tinygrad_llm/models/gpt.py) and the Module machinery it stands on: nanoGPT's names and shapes,
GPT-2's initialisation, state dicts, exact agreement with a PyTorch reference, gradcheck of the whole model,
the KV cache, sampling options and input errors."""
import math
import pathlib
import sys

import numpy as np
import pytest

from tinygrad_llm import nn
from tinygrad_llm.engine import rng
from tinygrad_llm.models.gpt import GPT, GPTConfig
from tinygrad_llm.models.transformer import init_gpt2_weights

from conftest import gradcheck_parameters

TINY = dict(vocab_size=13, block_size=8, n_layer=2, n_head=2, n_embd=16)


def make_model(seed=0, dtype=np.float32, **changes):
    rng.manual_seed(seed)
    return GPT(GPTConfig(**{**TINY, **changes})).to(dtype)


def perturb(model, scale=0.3, seed=1):
    """Add N(0, scale²) noise to every parameter: GPT-2's init leaves biases at 0, gains at 1 and logits almost
    uniform, which would hide mistakes in their gradients or make sampling a coin toss."""
    noise = np.random.default_rng(seed)
    for p in model.parameters():
        p.data[...] += (scale * noise.standard_normal(p.shape)).astype(p.dtype)
    return model


def batch(config, B=3, seed=2):
    """Random token ids x and targets y, (B, block_size) each."""
    ids = np.random.default_rng(seed)
    shape = (B, config["block_size"])
    return ids.integers(0, config["vocab_size"], shape), ids.integers(0, config["vocab_size"], shape)


# ---- modules: names, shapes, tying, initialisation, modes, state dicts ----

def test_parameter_names_and_shapes_are_nanogpts():
    model = make_model()
    V, T, C = TINY["vocab_size"], TINY["block_size"], TINY["n_embd"]
    expected = {"transformer.wte.weight": (V, C), "transformer.wpe.weight": (T, C)}
    for i in range(TINY["n_layer"]):
        h = f"transformer.h.{i}."
        expected.update({h + "ln_1.weight": (C,), h + "ln_1.bias": (C,),
                         h + "attn.c_attn.weight": (3 * C, C), h + "attn.c_attn.bias": (3 * C,),
                         h + "attn.c_proj.weight": (C, C), h + "attn.c_proj.bias": (C,),
                         h + "ln_2.weight": (C,), h + "ln_2.bias": (C,),
                         h + "mlp.c_fc.weight": (4 * C, C), h + "mlp.c_fc.bias": (4 * C,),
                         h + "mlp.c_proj.weight": (C, 4 * C), h + "mlp.c_proj.bias": (C,)})
    expected.update({"transformer.ln_f.weight": (C,), "transformer.ln_f.bias": (C,), "lm_head.weight": (V, C)})
    assert {name: a.shape for name, a in model.state_dict().items()} == expected
    assert list(model.state_dict()) == list(expected)  # and in nanoGPT's order


def test_without_bias_there_are_no_bias_parameters():
    names = list(make_model(bias=False).state_dict())
    assert names and not any(name.endswith(".bias") for name in names)


def test_lm_head_is_tied_to_wte_and_counted_once():
    model = make_model()
    wte = model.transformer.wte.weight
    assert model.lm_head.weight is wte
    params = list(model.parameters())
    assert sum(p is wte for p in params) == 1
    assert len({id(p) for p in params}) == len(params)
    assert "lm_head.weight" not in dict(model.named_parameters())  # listed under its first name only
    total = sum(p.numel() for p in params)
    assert model.num_params(non_embedding=False) == total
    assert model.num_params() == total - model.transformer.wpe.weight.numel()  # nanoGPT: wpe not counted


def test_gpt2_initialisation():
    model = make_model(vocab_size=65, block_size=64, n_layer=4, n_head=4, n_embd=128)
    residual_std = 0.02 / math.sqrt(2 * 4)
    named = dict(model.named_parameters())
    for name, p in named.items():
        data = p.detach().numpy()
        # ≥ 8192 draws per matrix: the sample std's standard error is ≤ 0.8%, so 5% is over 6 of them
        if name.endswith("c_proj.weight"):
            assert abs(data.std() - residual_std) < 0.05 * residual_std, name
            assert abs(data.mean()) < 5 * residual_std / math.sqrt(data.size), name
        elif p.ndim == 2:
            assert abs(data.std() - 0.02) < 0.05 * 0.02, name
            assert abs(data.mean()) < 5 * 0.02 / math.sqrt(data.size), name
        elif ".ln_" in name and name.endswith(".weight"):
            assert np.all(data == 1), name
        else:
            assert np.all(data == 0), name  # biases


def test_a_layer_norm_gets_unit_gain_whatever_its_name():
    """The initialisation finds LayerNorms by their type: a gain held under any attribute name starts at 1 and its
    bias at 0 (a LayerNorm not called ln_* used to get gain 0, which zeroes everything after it)."""
    class Head(nn.Module):
        def __init__(self):
            self.norm = nn.LayerNorm(8)
            self.proj = nn.Linear(8, 8)

    head = Head()
    init_gpt2_weights(head, residual_std=0.01)
    assert np.all(head.norm.weight.detach().numpy() == 1) and np.all(head.norm.bias.detach().numpy() == 0)
    assert np.all(head.proj.bias.detach().numpy() == 0) and head.proj.weight.detach().numpy().std() > 0.005


def test_skip_init_draws_nothing_and_ends_with_its_block():
    """Inside nn.skip_init (used when weights are read in next) matrices and embeddings are zero, LayerNorm gains
    one, and the engine's generator does not move; after the block, models are initialised again."""
    rng.manual_seed(0)
    state = rng.get_state()
    with nn.skip_init():
        model = GPT(GPTConfig(**TINY))
    assert rng.get_state() == state
    for name, p in model.named_parameters():
        assert np.all(p.detach().numpy() == (1 if ".ln_" in name and name.endswith(".weight") else 0)), name
    assert not nn.init.skipping_init()
    assert GPT(GPTConfig(**TINY)).transformer.wte.weight.detach().numpy().std() > 0.01


def test_train_and_eval_reach_every_module():
    model = make_model(dropout=0.5)
    assert all(m.training for m in model.modules())
    assert model.eval() is model and not any(m.training for m in model.modules())
    x, _ = batch(TINY)
    assert np.array_equal(model(x)[0].detach().numpy(), model(x)[0].detach().numpy())      # eval: dropout is off
    model.train()
    assert all(m.training for m in model.modules())
    assert not np.array_equal(model(x)[0].detach().numpy(), model(x)[0].detach().numpy())  # train: fresh masks each call


def test_zero_grad_clears_every_gradient():
    model = make_model()
    x, y = batch(TINY)
    model(x, y)[1].backward()
    assert all(p.grad is not None for p in model.parameters())
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())


def test_state_dict_round_trip_gives_identical_logits():
    source, target = perturb(make_model(seed=0)), make_model(seed=1)
    x, y = batch(TINY)
    target.load_state_dict(source.state_dict())
    assert target.lm_head.weight is target.transformer.wte.weight  # still tied after loading
    assert np.array_equal(target(x, y)[0].detach().numpy(), source(x, y)[0].detach().numpy())


def test_state_dict_shares_the_models_memory():
    """As PyTorch's: detached tensors over the model's own numbers, so writing into one changes the model (a
    pretrained model's weights are copied in that way)."""
    model = make_model()
    state = model.state_dict()
    assert not state["transformer.ln_f.weight"].requires_grad
    state["transformer.ln_f.weight"][...] = 7.0
    state["transformer.wte.weight"].copy_(np.ones(state["lm_head.weight"].shape, np.float32))   # tied: one matrix
    assert np.all(model.transformer.ln_f.weight.detach().numpy() == 7.0)
    assert np.all(model.lm_head.weight.detach().numpy() == 1.0)


def _missing(state):
    del state["transformer.h.1.mlp.c_fc.weight"]


def _unexpected(state):
    state["transformer.h.2.mlp.c_fc.weight"] = state["transformer.h.1.mlp.c_fc.weight"]


def _wrong_shape(state):
    state["transformer.ln_f.weight"] = np.ones(TINY["n_embd"] + 1, np.float32)


def _wrong_dtype(state):
    state["transformer.ln_f.weight"] = state["transformer.ln_f.weight"].double()


@pytest.mark.parametrize("spoil, error, named", [
    (_missing, KeyError, "transformer.h.1.mlp.c_fc.weight"),
    (_unexpected, KeyError, "transformer.h.2.mlp.c_fc.weight"),
    (_wrong_shape, ValueError, "transformer.ln_f.weight"),
    (_wrong_dtype, TypeError, "transformer.ln_f.weight"),
])
def test_a_bad_state_dict_is_an_error_and_changes_nothing(spoil, error, named):
    model = make_model(seed=0)
    before = {name: t.clone() for name, t in model.state_dict().items()}
    state = perturb(make_model(seed=1)).state_dict()  # every other array differs: a partial load would show
    spoil(state)
    with pytest.raises(error, match=named):
        model.load_state_dict(state)
    after = model.state_dict()
    assert all(np.array_equal(before[name], after[name]) for name in before)


def test_to_float64_keeps_the_parameter_objects_and_the_tie():
    model = make_model()
    params = list(model.parameters())
    model.to(np.float64)
    assert all(a is b for a, b in zip(params, model.parameters()))
    assert all(p.dtype == np.float64 for p in params)
    assert model.lm_head.weight is model.transformer.wte.weight


# ---- forward: shapes and errors ----

def test_forward_shapes():
    model = make_model()
    x, y = batch(TINY, B=3)
    logits, loss = model(x, y)
    assert logits.shape == (3, TINY["block_size"], TINY["vocab_size"]) and loss.shape == ()
    assert abs(loss.item() - math.log(TINY["vocab_size"])) < 0.1  # GPT-2 init: almost uniform predictions
    logits, loss = model(x[:, :5])
    assert logits.shape == (3, 1, TINY["vocab_size"]) and loss is None  # the last position only
    assert np.allclose(logits.detach().numpy()[:, 0], model(x[:, :5], y[:, :5])[0].detach().numpy()[:, -1], atol=1e-6)


def test_a_sequence_longer_than_block_size_is_an_error():
    with pytest.raises(ValueError, match="block_size"):
        make_model()(np.zeros((1, TINY["block_size"] + 1), dtype=np.int64))


@pytest.mark.parametrize("bad_id", [TINY["vocab_size"], -1])
def test_a_token_id_outside_the_vocabulary_is_an_error(bad_id):
    idx = np.zeros((2, 4), dtype=np.int64)
    idx[1, 2] = bad_id
    with pytest.raises(ValueError, match="vocab_size"):
        make_model()(idx)


@pytest.mark.parametrize("shape", [(4,), (1, 2, 4)])
def test_idx_must_be_two_dimensional(shape):
    with pytest.raises(ValueError, match=r"\(B, T\)"):
        make_model()(np.zeros(shape, dtype=np.int64))


# ---- gradients: the PyTorch reference and gradcheck ----

def torch_reference(torch, model):
    """benchmarks/torch_gpt.py's TorchGPT holding exactly our weights.
    torch_gpt_like builds the module in float32 and converts it after loading, which rounds float64 weights to
    float32; loading the state dict again into the converted module copies them exactly."""
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "benchmarks"))
    from torch_gpt import torch_gpt_like
    reference = torch_gpt_like(model)
    reference.load_state_dict({name: torch.from_numpy(t.numpy()) for name, t in model.state_dict().items()})
    return reference


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-10), (np.float32, 1e-4)])
def test_loss_and_every_gradient_match_pytorch(torch, bias, dtype, rtol):
    model = perturb(make_model(dtype=dtype, bias=bias))
    reference = torch_reference(torch, model)
    x, y = batch(TINY)
    logits, loss = model(x, y)
    loss.backward()
    ref_logits, ref_loss = reference(torch.from_numpy(x), torch.from_numpy(y))
    ref_loss.backward()

    assert loss.dtype == dtype
    np.testing.assert_allclose(loss.item(), ref_loss.item(), rtol=rtol)
    np.testing.assert_allclose(logits.detach().numpy(), ref_logits.detach().numpy(), rtol=rtol, atol=rtol)
    ref_params = dict(reference.named_parameters())  # torch too lists the tied weight once, as wte
    assert list(ref_params) == [name for name, _ in model.named_parameters()]
    for name, p in model.named_parameters():
        expected = ref_params[name].grad.numpy()
        # relative to each gradient's largest entry, so entries that are almost 0 do not demand 1e-10 of 0
        np.testing.assert_allclose(p.grad.numpy(), expected, rtol=rtol, atol=rtol * np.abs(expected).max(),
                                   err_msg=name)


def test_the_whole_gpt_passes_gradcheck():
    """Every parameter's analytic gradient against central differences of the real model's loss.
    gradcheck runs fn on copies of its inputs, so fn puts each copy where the parameter sits in the model
    (under both names of the tied weight) before computing the loss."""
    model = perturb(make_model(dtype=np.float64, vocab_size=11))
    x, y = batch({**TINY, "vocab_size": 11}, B=2)
    gradcheck_parameters(model, lambda: model(x, y)[1])
    assert model.lm_head.weight is model.transformer.wte.weight


# ---- generation: the KV cache and the sampling options ----

def test_cached_attention_gives_the_logits_of_a_full_forward():
    model = perturb(make_model()).eval()
    x, _ = batch(TINY, B=2)
    caches = [{} for _ in model.transformer.h]
    model(x[:, :5], caches=caches)
    assert caches[0]["k"].shape == (2, TINY["n_head"], 5, TINY["n_embd"] // TINY["n_head"])
    step, _ = model(x[:, 5:6], caches=caches, start=5)                     # position 5 from the cache
    full, _ = model(x[:, :6])
    np.testing.assert_allclose(step.detach().numpy(), full.detach().numpy(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("temperature, top_k, top_p", [(1.0, None, None), (0.8, 5, None), (1.2, None, 0.9),
                                                       (1.0, 4, 0.8), (0.0, None, None)])
def test_kv_cache_gives_the_same_tokens(temperature, top_k, top_p):
    model = perturb(make_model()).eval()
    prompt = batch(TINY, B=2)[0][:, :3]
    new = 2 * TINY["block_size"]  # runs past block_size: the context is cropped and the cache rebuilt

    def generate(use_cache):
        return model.generate(prompt, new, temperature=temperature, top_k=top_k, top_p=top_p,
                              generator=np.random.default_rng(5), use_cache=use_cache)

    cached = generate(True)
    assert cached.shape == (2, 3 + new) and np.array_equal(cached[:, :3], prompt)
    assert np.array_equal(cached, generate(False))


def test_top_k_1_and_a_tiny_top_p_are_greedy():
    model = perturb(make_model()).eval()
    prompt = batch(TINY, B=2)[0][:, :3]
    greedy = model.generate(prompt, 10, temperature=0.0)
    top_k = model.generate(prompt, 10, temperature=1.0, top_k=1, generator=np.random.default_rng(0))
    top_p = model.generate(prompt, 10, temperature=1.0, top_p=1e-6, generator=np.random.default_rng(0))
    assert np.array_equal(top_k, greedy) and np.array_equal(top_p, greedy)
    sampled = model.generate(prompt, 10, temperature=1.0, generator=np.random.default_rng(0))
    assert not np.array_equal(sampled, greedy)  # so the two above are not equal by chance


def test_generation_repeats_with_the_same_generator_seed():
    model = perturb(make_model()).eval()
    prompt = batch(TINY, B=1)[0][:, :2]
    a, b, c = (model.generate(prompt, 12, generator=np.random.default_rng(s)) for s in (3, 3, 4))
    assert np.array_equal(a, b) and not np.array_equal(a, c)
