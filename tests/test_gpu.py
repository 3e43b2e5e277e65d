"""The engine on a GPU: the same model and steps on CuPy, with our kernels, agree with the CPU.
Every test here needs a usable CUDA GPU and skips cleanly without one (CuPy itself imports without a GPU)."""
import numpy as np
import pytest

import tinygrad_llm.engine.functional as F
from tinygrad_llm import Tensor
from tinygrad_llm.engine import backend, rng
from tinygrad_llm.models.gpt import GPT, GPTConfig
from tinygrad_llm.optim import AdamW


@pytest.fixture(autouse=True)
def gpu():
    try:
        return backend.module_for("cuda")
    except RuntimeError as e:
        pytest.skip(f"no usable GPU: {e}")


def training_losses(device, steps=20, kernels=True):
    """Per-step losses of a small GPT trained for `steps` AdamW steps on fixed batches."""
    rng.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=65, block_size=64, n_layer=2, n_head=2, n_embd=64, dropout=0.0)).to(device)
    optimizer = AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.99), weight_decay=0.1)
    data = np.random.default_rng(0)
    losses = []
    with F.cuda_kernels(kernels):
        for _ in range(steps):
            x, y = data.integers(0, 65, (2, 8, 64))
            _, loss = model(x, y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
    return np.array(losses)


def test_20_gpu_training_steps_match_the_cpu():
    cpu = training_losses("cpu")
    np.testing.assert_allclose(training_losses("cuda", kernels=True), cpu, atol=1e-4, rtol=0)
    np.testing.assert_allclose(training_losses("cuda", kernels=False), cpu, atol=1e-4, rtol=0)


def test_kernels_fused_and_composed_agree_on_the_gpu():
    r = np.random.default_rng(1)
    x = Tensor(r.standard_normal((4, 64, 128)).astype(np.float32), device="cuda", requires_grad=True)
    weight = Tensor(r.standard_normal(128).astype(np.float32), device="cuda", requires_grad=True)

    def run(fn):
        x.grad = weight.grad = None
        out = fn()
        out.backward(backend.module_for("cuda").ones(out.shape, dtype=np.float32))
        return out.detach().numpy(), x.grad.numpy(), weight.grad.numpy()

    for op in (lambda: F.gelu(x * weight, approximate="tanh"), lambda: F.layer_norm(x, (128,), weight)):
        with_kernels = run(op)
        with F.cuda_kernels(False):
            array_code = run(op)
        with F.fused(False):
            composed = run(op)
        for a, b, c in zip(with_kernels, array_code, composed):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)
            np.testing.assert_allclose(a, c, rtol=1e-4, atol=1e-4)


def test_tensors_on_two_devices_are_refused():
    with pytest.raises(RuntimeError, match="different devices"):
        Tensor(np.ones(3, np.float32)) + Tensor(np.ones(3, np.float32), device="cuda")


def test_train_and_sample_on_the_gpu(tmp_path, shakespeare):
    """`python -m tinygrad_llm train --device cuda` end to end: every logged training loss and both evaluations equal
    the CPU run's to 1e-4 (same seed, same batches, no dropout), then `sample --device cuda` reads its checkpoint."""
    import json

    from tinygrad_llm.__main__ import main

    def train(device):
        out = tmp_path / device
        assert main(["train", "--device", device, "--out-dir", str(out), "--max-iters", "20", "--eval-interval",
                     "10", "--eval-iters", "2", "--log-interval", "1", "--n-layer", "2", "--n-embd", "64",
                     "--n-head", "2", "--no-progress"]) == 0
        records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
        return out, [r.get("loss", r.get("val_loss")) for r in records]

    out, gpu = train("cuda")
    _, cpu = train("cpu")
    assert len(gpu) == len(cpu) >= 20
    np.testing.assert_allclose(gpu, cpu, atol=1e-4, rtol=0)
    assert main(["sample", "--device", "cuda", "--ckpt", str(out / "best.safetensors"), "--max-new-tokens", "20"]) == 0
