"""Tests of fine-tuning (tinygrad_llm/recipes/finetune.py: GPTClassifier, the speaker task) and distillation
(tinygrad_llm/recipes/distill.py: distillation_loss, student training)."""
import numpy as np
import pytest

from tinygrad_llm.engine import rng
from tinygrad_llm.engine.gradcheck import gradcheck
from tinygrad_llm.engine.tensor import Tensor
from tinygrad_llm.models.gpt import GPT, GPTConfig
from tinygrad_llm.recipes.distill import compare_with_alone, distillation_loss, kl_divergence
from tinygrad_llm.recipes.finetune import (
    GPTClassifier,
    accuracy,
    compare_with_scratch,
    speaker_task,
    speeches,
    train_classifier,
)
from tinygrad_llm.text.char import CharTokenizer
from tinygrad_llm.text.datasets import TextDataset, load_text, resolve_dataset

TINY = dict(vocab_size=13, block_size=8, n_layer=1, n_head=2, n_embd=16)


def make_gpt(seed=0, dtype=np.float32, **changes):
    rng.manual_seed(seed)
    return GPT(GPTConfig(**{**TINY, **changes})).to(dtype)


def logits_and_targets(N=6, V=5, seed=0):
    generator = np.random.default_rng(seed)
    return generator.standard_normal((N, V)), generator.standard_normal((N, V)), generator.integers(0, V, N)


# ---- distillation loss ----

@pytest.mark.parametrize("temperature, alpha", [(1.0, 0.5), (2.5, 0.3), (4.0, 1.0)])
def test_distillation_loss_gradcheck(temperature, alpha):
    student, teacher, targets = logits_and_targets()
    gradcheck(lambda s: distillation_loss(s, teacher, targets, temperature, alpha),
              [Tensor(student, requires_grad=True)])


def test_kl_is_zero_when_student_is_teacher():
    student, _, targets = logits_and_targets()
    assert abs(kl_divergence(Tensor(student), student, temperature=3.0).item()) < 1e-12
    # so with alpha = 1 the whole loss is 0, and with alpha = 0 it is the cross-entropy alone
    assert abs(distillation_loss(Tensor(student), student, targets, 3.0, alpha=1.0).item()) < 1e-12


def test_distillation_loss_matches_torch(torch):
    student, teacher, targets = logits_and_targets(N=8, V=7, seed=3)
    T, alpha = 2.0, 0.7
    ours = Tensor(student, requires_grad=True)
    loss = distillation_loss(ours, teacher, targets, T, alpha)
    loss.backward()
    s = torch.tensor(student, requires_grad=True)
    kl = torch.nn.functional.kl_div(torch.log_softmax(s / T, -1), torch.log_softmax(torch.tensor(teacher) / T, -1),
                                    reduction="batchmean", log_target=True)
    expected = alpha * T * T * kl + (1 - alpha) * torch.nn.functional.cross_entropy(s, torch.tensor(targets))
    expected.backward()
    np.testing.assert_allclose(loss.item(), expected.item(), rtol=1e-10)
    np.testing.assert_allclose(ours.grad.numpy(), s.grad.numpy(), rtol=1e-8, atol=1e-12)


def test_distillation_loss_checks_its_arguments():
    student, teacher, targets = logits_and_targets()
    with pytest.raises(ValueError, match="alpha"):
        distillation_loss(Tensor(student), teacher, targets, 2.0, alpha=1.5)
    with pytest.raises(ValueError, match="shape"):
        distillation_loss(Tensor(student), teacher[:, :3], targets)


# ---- the classifier ----

@pytest.mark.parametrize("pooling", ["last", "mean"])
def test_classifier_shapes(pooling):
    model = GPTClassifier(make_gpt(), n_classes=3, pooling=pooling)
    idx = np.random.default_rng(0).integers(0, 13, (4, 8))
    assert model(idx, np.array([8, 3, 1, 5])).shape == (4, 3)
    assert model(idx).shape == (4, 3)
    with pytest.raises(ValueError, match="pooling"):
        GPTClassifier(make_gpt(), 2, pooling="max")


def test_pooling_reads_only_the_real_positions():
    gpt = make_gpt(dtype=np.float64)
    line = np.array([[3, 1, 4, 1, 5]])                                 # (1, 5)
    padded = np.array([[3, 1, 4, 1, 5, 9, 2, 6], [3, 1, 4, 1, 5, 0, 0, 0]])  # (2, 8): two paddings
    h = gpt.hidden_states(line).detach().numpy()[0]                    # (5, C)
    for pooling, expected in (("last", h[-1]), ("mean", h.mean(axis=0))):
        model = GPTClassifier(gpt, 2, pooling=pooling)
        pooled = model.pool(gpt.hidden_states(padded), np.array([5, 5])).detach().numpy()  # (2, C)
        np.testing.assert_allclose(pooled, [expected, expected], rtol=1e-10, atol=1e-12)


def test_classifier_gradcheck():
    model = GPTClassifier(make_gpt(dtype=np.float64), 2, pooling="mean").to(np.float64)
    idx, lengths = np.array([[1, 2, 3, 0], [4, 5, 0, 0]]), np.array([3, 2])
    gradcheck(lambda w: model.head.forward(model.pool(model.gpt.hidden_states(idx), lengths)) * w,
              [Tensor(np.ones(2), requires_grad=True)])
    for p in model.parameters():  # every parameter gets a gradient through the pooled head
        p.grad = None
    model(idx, lengths).sum().backward()
    assert all(p.grad is not None for p in model.parameters())


# ---- the speaker task on Tiny Shakespeare ----

def test_speaker_task_splits_are_disjoint(shakespeare):
    text = load_text(resolve_dataset())
    assert speeches(text)[0] == ("First Citizen", ["Before we proceed any further, hear me speak."])
    task = speaker_task(text, CharTokenizer.from_text(text), block_size=32)
    assert task["speakers"] == ("GLOUCESTER", "DUKE VINCENTIO")
    train, test = task["train"], task["test"]
    assert len(test["labels"]) > 200 and len(train["labels"]) > 3 * len(test["labels"])
    assert set(np.unique(train["labels"])) == {0, 1} and train["ids"].shape[1] == 32
    assert 1 <= train["lengths"].min() and train["lengths"].max() <= 32


def test_finetuning_beats_chance_on_the_speaker_task(shakespeare):
    text = load_text(resolve_dataset())
    task = speaker_task(text, CharTokenizer.from_text(text), block_size=32)
    model = GPTClassifier(make_gpt(vocab_size=65, block_size=32, n_embd=32), 2, pooling="mean")
    train_classifier(model, task["train"], steps=200, batch_size=32, lr=1e-3)
    majority = max(np.mean(task["test"]["labels"]), 1 - np.mean(task["test"]["labels"]))  # always the commoner one
    assert accuracy(model, task["test"]) > majority + 0.02  # well below the worst seed's result (small test set)


def test_a_linear_probe_leaves_the_trunk_alone_and_fine_tuning_does_not():
    """train_trunk=False trains only the heads: the pretrained GPT is unchanged afterwards (and trainable again);
    with train_trunk=True fine-tuning moves it. Labels: is the first token even? (learnable from token ids)."""
    generator = np.random.default_rng(0)
    ids = generator.integers(0, TINY["vocab_size"], (64, TINY["block_size"]))
    split = {"ids": ids, "lengths": np.full(64, TINY["block_size"]), "labels": ids[:, 0] % 2}
    task = {"train": split, "test": split}
    gpt = make_gpt()
    before = {name: p.detach().numpy().copy() for name, p in gpt.named_parameters()}
    probe = compare_with_scratch(gpt, task, steps=30, pooling="mean", train_trunk=False, lr=1e-2)
    assert all(np.array_equal(p.detach().numpy(), before[name]) for name, p in gpt.named_parameters())
    assert all(p.requires_grad for p in gpt.parameters()) and set(probe) == {"finetuned", "scratch"}
    compare_with_scratch(gpt, task, steps=30, pooling="mean", train_trunk=True, lr=1e-2)
    assert not all(np.array_equal(p.detach().numpy(), before[name]) for name, p in gpt.named_parameters())


def test_the_recipes_loops_set_the_allocator_as_the_trainer_does(monkeypatch):
    """Fine-tuning's and distillation's loops, like train(), call backend.reuse_freed_memory() before they start:
    each of their steps frees and makes again the same large arrays."""
    from tinygrad_llm.engine import backend
    from tinygrad_llm.recipes.distill import train_student
    calls = []
    monkeypatch.setattr(backend, "reuse_freed_memory", lambda: calls.append("set"))
    ids = np.random.default_rng(0).integers(0, TINY["vocab_size"], (8, TINY["block_size"]))
    split = {"ids": ids, "lengths": np.full(8, TINY["block_size"]), "labels": ids[:, 0] % 2}
    train_classifier(GPTClassifier(make_gpt(), 2), split, steps=1, batch_size=4)
    assert calls == ["set"]
    text = "the quick brown fox jumps over the lazy dog. " * 4
    tokenizer = CharTokenizer.from_text(text)
    train_student(make_gpt(vocab_size=tokenizer.vocab_size), TextDataset(text, tokenizer), steps=1, batch_size=2,
                  block_size=8, eval_interval=1, eval_iters=1)
    assert calls == ["set", "set"]


# ---- distillation runs ----

def test_distillation_run_returns_both_curves():
    text = "the quick brown fox jumps over the lazy dog. " * 40
    tokenizer = CharTokenizer.from_text(text)
    dataset = TextDataset(text, tokenizer)
    teacher = make_gpt(vocab_size=tokenizer.vocab_size, n_layer=2)
    student_config = GPTConfig(**{**TINY, "vocab_size": tokenizer.vocab_size, "n_embd": 8})
    curves = compare_with_alone(student_config, teacher, dataset, steps=6, batch_size=4, block_size=8,
                                eval_interval=3, eval_iters=2)
    for curve in curves.values():
        assert [step for step, _ in curve] == [0, 3, 6]
        assert all(np.isfinite(loss) for _, loss in curve)
    assert curves["distilled"][0] == curves["alone"][0]  # the same initial student
