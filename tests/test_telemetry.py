"""tools/telemetry.py and telemetry_plots.py: every figure equals the same number computed by hand on a tiny GPT;
the plots are written; a resumed run drops the lines past its checkpoint."""
import json
import math

import numpy as np
import pytest

import tinygrad_llm as tl
from tinygrad_llm.__main__ import main
from tinygrad_llm.engine import backend, rng
from tinygrad_llm.models.gpt import GPT, GPTConfig
from tinygrad_llm.optim import AdamW, clip_grad_norm_
from tinygrad_llm.recipes.checkpoint import load_checkpoint
from tinygrad_llm.tools.telemetry import Telemetry, read
from tinygrad_llm.tools.telemetry_plots import plot_telemetry


def flags(out_dir, **settings):
    """`--out-dir DIR --n-layer 2 ...`"""
    return ["--out-dir", str(out_dir)] + [word for name, value in settings.items()
                                           for word in (f"--{name.replace('_', '-')}", str(value))]


def gelu_input_and_attention_input(model):
    """Forward hooks that keep, per block, what its MLP's GELU reads (c_fc's output), what attention reads
    (c_attn's output: q, k and v), and the block's output."""
    kept = {}

    def keep(key):
        return lambda m, a, out: kept.__setitem__(key, out.detach().numpy().copy())
    for i, block in enumerate(model.transformer.h):
        block.mlp.c_fc.register_forward_hook(keep(("gelu", i)))
        block.attn.c_attn.register_forward_hook(keep(("qkv", i)))
        block.register_forward_hook(keep(("out", i)))
    return kept


def entropy_by_hand(qkv, n_head):
    """Attention entropy per head from c_attn's output (B, T, 3C), every step written out: causal softmax of
    q kᵀ / sqrt(hs) per query, -Σ p log p, averaged over batch and queries."""
    B, T, C = qkv.shape[0], qkv.shape[1], qkv.shape[2] // 3
    hs = C // n_head
    q = qkv[..., :C].reshape(B, T, n_head, hs).transpose(0, 2, 1, 3).astype(np.float64)
    k = qkv[..., C:2 * C].reshape(B, T, n_head, hs).transpose(0, 2, 1, 3).astype(np.float64)
    entropies = np.zeros(n_head)
    for h in range(n_head):
        for b in range(B):
            for t in range(T):
                s = q[b, h, t] @ k[b, h, :t + 1].T / math.sqrt(hs)
                p = np.exp(s - s.max())
                p /= p.sum()
                entropies[h] += -(p * np.log(p)).sum() / (B * T)
    return entropies


def test_the_figures_equal_numbers_computed_by_hand(tmp_path):
    rng.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=65, block_size=8, n_layer=2, n_head=2, n_embd=16))
    model.transformer.h[1].mlp.c_fc.weight.data *= 40   # some GELU inputs beyond ±3
    optimizer = AdamW(model.parameters(), lr=1e-2, weight_decay=0.1)
    kept = gelu_input_and_attention_input(model)
    seen = []
    telemetry = Telemetry(model, every=2, path=tmp_path / "telemetry.jsonl", callback=seen.append)
    x, y = np.random.default_rng(0).integers(0, 65, (2, 3, 8))
    for iteration in range(3):
        with telemetry.watch(iteration):
            _, loss = model(x, y)
        optimizer.zero_grad()
        loss.backward()
        total = float(clip_grad_norm_(model.parameters(), 0.5))
        before = {name: p.detach().numpy().copy() for name, p in model.named_parameters()}
        grads = {name: p.grad.numpy().copy() for name, p in model.named_parameters()}
        with telemetry.watch_step(iteration, total, max_norm=0.5):
            optimizer.step()
        assert len(seen) == (1 if iteration < 2 else 2)   # a record on iterations 0 and 2 only
    records = read(tmp_path / "telemetry.jsonl")
    assert [r["iter"] for r in records] == [0, 2] and seen == records
    last = records[-1]
    assert last["grad_norm"] == total and last["clipped"] == (total > 0.5)
    for name, p in model.named_parameters():
        figures = last["params"][name]
        assert figures["grad"] == pytest.approx(np.linalg.norm(grads[name]), rel=1e-6)
        assert figures["weight"] == pytest.approx(np.linalg.norm(before[name]), rel=1e-6)
        ratio = np.linalg.norm(p.detach().numpy().astype(np.float64) - before[name]) / np.linalg.norm(before[name])
        assert figures["update_log10"] == pytest.approx(math.log10(ratio), abs=1e-6)
    for i in range(2):
        figures = last["blocks"][f"transformer.h.{i}"]
        out = kept[("out", i)]
        assert figures["mean"] == pytest.approx(out.mean(), rel=1e-5) and figures["std"] == pytest.approx(out.std())
        histogram = figures["histogram"]
        assert sum(histogram["counts"]) == out.size and len(histogram["counts"]) == 50
        assert [histogram["from"], histogram["to"]] == pytest.approx([out.mean() - 4 * out.std(),
                                                                       out.mean() + 4 * out.std()], rel=1e-4)
        assert figures["gelu_saturation"] == (np.abs(kept[("gelu", i)]) > 3).mean()
        assert figures["attention_entropy"] == pytest.approx(entropy_by_hand(kept[("qkv", i)], 2), rel=1e-5)
    assert 0 == last["blocks"]["transformer.h.0"]["gelu_saturation"] < last["blocks"]["transformer.h.1"][
        "gelu_saturation"]
    assert [len(block._forward_hooks) for block in model.transformer.h] == [1, 1]   # only the test's own remain
    pngs = plot_telemetry(tmp_path / "telemetry.jsonl", tmp_path, max_norm=0.5)
    for png in pngs:
        with open(png, "rb") as f:
            assert f.read(4) == b"\x89PNG"


def test_a_resumed_run_drops_the_lines_past_its_start(tmp_path):
    path = tmp_path / "telemetry.jsonl"
    path.write_text("".join(json.dumps({"iter": i}) + "\n" for i in (0, 10, 20)) + '{"iter": 3')  # a torn line
    rng.manual_seed(0)
    Telemetry(GPT(GPTConfig(vocab_size=5, block_size=4, n_layer=1, n_head=1, n_embd=4)), every=10, path=path,
              start=20)
    assert read(path) == [{"iter": 0}, {"iter": 10}]


def test_telemetry_observes_the_step_and_never_makes_it(tmp_path):
    """The caller makes optimizer.step(); with none inside watch_step, no weight moves and no update is seen."""
    rng.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=5, block_size=4, n_layer=1, n_head=1, n_embd=4))
    before = {name: p.detach().numpy().copy() for name, p in model.named_parameters()}
    telemetry = Telemetry(model, every=1, path=tmp_path / "telemetry.jsonl")
    model(np.zeros((1, 4), np.int64), np.ones((1, 4), np.int64))[1].backward()
    with telemetry.watch_step(0):
        pass
    assert all(np.array_equal(p.detach().numpy(), before[name]) for name, p in model.named_parameters())
    assert {p["update_log10"] for p in read(tmp_path / "telemetry.jsonl")[0]["params"].values()} == {None}


def test_every_0_records_nothing_and_leaves_the_file_alone(tmp_path):
    """every=0 is off (as `--telemetry 0`, and the trainer's ranks other than 0): a file there, even one a resumed
    run would trim, stays as it was."""
    path = tmp_path / "telemetry.jsonl"
    path.write_text(json.dumps({"iter": 30}) + "\n")
    rng.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=5, block_size=4, n_layer=1, n_head=1, n_embd=4))
    telemetry = Telemetry(model, every=0, path=path, start=10)
    with telemetry.watch(0):
        model(np.zeros((1, 4), np.int64), np.ones((1, 4), np.int64))[1].backward()
    with telemetry.watch_step(0):
        AdamW(model.parameters()).step()
    assert path.read_text() == json.dumps({"iter": 30}) + "\n"
    with pytest.raises(ValueError, match="every must be at least 0"):
        Telemetry(model, every=-1, path=path)


def test_train_with_telemetry_writes_it_and_plots_it_and_trains_the_same(tmp_path):
    """`train --telemetry 5`: a record every 5 steps and the three plots; the weights are those of the run
    without it (telemetry measures, never changes, the step)."""
    settings = {"batch_size": 4, "block_size": 16, "n_layer": 2, "n_head": 2, "n_embd": 32, "warmup_iters": 2,
                "lr_decay_iters": 20, "max_iters": 12, "eval_interval": 12, "eval_iters": 1, "log_interval": 1}
    main(["train", *flags(tmp_path / "with", telemetry=5, **settings)])
    main(["train", *flags(tmp_path / "without", **settings)])
    records = read(tmp_path / "with" / "telemetry.jsonl")
    assert [r["iter"] for r in records] == [0, 5, 10]
    assert set(records[0]["blocks"]) == {"transformer.h.0", "transformer.h.1"}
    assert len(records[0]["blocks"]["transformer.h.1"]["attention_entropy"]) == 2
    assert all(r["clipped"] == (r["grad_norm"] > 1.0) for r in records)
    for name in ("update_ratios.png", "activations.png", "grad_norm.png"):
        assert (tmp_path / "with" / name).stat().st_size > 1000 and not (tmp_path / "without" / name).exists()
    ours = load_checkpoint(tmp_path / "with" / "last.safetensors").model_state
    theirs = load_checkpoint(tmp_path / "without" / "last.safetensors").model_state
    assert all(np.array_equal(ours[name], theirs[name]) for name in theirs)


def test_the_global_norm_is_computed_when_not_clipped(tmp_path):
    rng.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=5, block_size=4, n_layer=1, n_head=1, n_embd=4))
    telemetry = Telemetry(model, every=1, path=tmp_path / "telemetry.jsonl")
    _, loss = model(np.zeros((1, 4), np.int64), np.ones((1, 4), np.int64))
    loss.backward()
    norms = [np.linalg.norm(p.grad.numpy()) for p in model.parameters()]
    with telemetry.watch_step(0):
        AdamW(model.parameters()).step()
    record = read(tmp_path / "telemetry.jsonl")[0]
    assert record["grad_norm"] == pytest.approx(math.sqrt(sum(n ** 2 for n in norms))) and record["clipped"] is None
    assert record["blocks"] == {}   # no watch() around this forward


def test_on_the_gpu_the_kernels_inputs_are_read(tmp_path):
    """On CUDA the GELU and attention of a GPT run as our kernels (CudaGeluTanhOp, CudaAttentionOp, at head size 32):
    telemetry reads their inputs and gives the CPU's figures (on the mock device where no GPU is usable)."""
    try:
        backend.module_for("cuda")
    except RuntimeError as e:
        pytest.skip(f"no usable GPU: {e}")
    figures = {}
    for device in ("cpu", "cuda"):
        rng.manual_seed(0)
        model = GPT(GPTConfig(vocab_size=65, block_size=8, n_layer=1, n_head=1, n_embd=32)).to(device)
        model.transformer.h[0].mlp.c_fc.weight.data *= 100
        telemetry = Telemetry(model, every=1, path=tmp_path / f"{device}.jsonl")
        x = np.random.default_rng(0).integers(0, 65, (1, 8))
        with tl.profile() as prof, telemetry.watch(0):
            _, loss = model(x, x)
        loss.backward()
        with telemetry.watch_step(0):
            AdamW(model.parameters()).step()
        figures[device] = read(tmp_path / f"{device}.jsonl")[0]["blocks"]["transformer.h.0"]
        assert {"CudaGeluTanhOp", "CudaAttentionOp"} <= {e.name for e in prof.events} or device == "cpu"
    for name in ("gelu_saturation", "attention_entropy", "mean", "std"):
        assert figures["cuda"][name] == pytest.approx(figures["cpu"][name], rel=1e-4), name
    assert figures["cpu"]["gelu_saturation"] > 0
