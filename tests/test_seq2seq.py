"""Tests of the encoder–decoder transformer (tinygrad_llm/models/seq2seq.py): shapes, padding that really is ignored,
the causal decoder, gradcheck of the whole model, greedy and beam search against brute force, the reversal
task's batches, and learning to reverse strings."""
import itertools

import numpy as np
import pytest

from tinygrad_llm import no_grad
from tinygrad_llm.engine import rng
from tinygrad_llm.models.seq2seq import ReverseTask, Seq2Seq, Seq2SeqConfig, exact_match
from tinygrad_llm.optim import AdamW, clip_grad_norm_
from tinygrad_llm.optim.lr_scheduler import CosineAnnealingLR

from conftest import gradcheck_parameters

TINY = dict(src_vocab_size=7, tgt_vocab_size=9, max_len=8, n_layer=2, n_head=2, n_embd=16)
PAD, BOS, EOS = 0, 1, 2


def make_model(seed=0, dtype=np.float32, **changes):
    """A tiny model with N(0, 0.3²) noise added to every parameter: the GPT-2 initialisation leaves biases at 0,
    gains at 1 and logits almost uniform, which would hide mistakes."""
    rng.manual_seed(seed)
    model = Seq2Seq(Seq2SeqConfig(**{**TINY, **changes})).to(dtype)
    noise = np.random.default_rng(seed + 1)
    for p in model.parameters():
        p.data[...] += (0.3 * noise.standard_normal(p.shape)).astype(p.dtype)
    return model.eval()


def random_ids(shape, vocab_size, seed):
    """Token ids that are never PAD, BOS or EOS."""
    return np.random.default_rng(seed).integers(3, vocab_size, shape)


def padded_batch(seed=0):
    """src (3, 6) with real lengths 6, 3, 1 and tgt_in/tgt_out (3, 5) with real lengths 5, 2, 4."""
    src = random_ids((3, 6), TINY["src_vocab_size"], seed)
    tgt_in = random_ids((3, 5), TINY["tgt_vocab_size"], seed + 1)
    tgt_in[:, 0] = BOS
    tgt_out = np.concatenate([tgt_in[:, 1:], np.full((3, 1), EOS)], axis=1)
    src[1, 3:] = src[2, 1:] = PAD
    tgt_in[1, 2:] = tgt_out[1, 2:] = PAD
    tgt_out[1, 1] = EOS
    tgt_in[2, 4:] = tgt_out[2, 4:] = PAD
    tgt_out[2, 3] = EOS
    return src, tgt_in, tgt_out


# ---- shapes, masks, causality ----

def test_shapes_and_loss():
    model = make_model()
    src, tgt_in, tgt_out = padded_batch()
    memory, src_mask = model.encode(src)
    assert memory.shape == (3, 6, TINY["n_embd"]) and src_mask.shape == (3, 1, 1, 6)
    logits, loss = model(src, tgt_in, tgt_out)
    assert logits.shape == (3, 5, TINY["tgt_vocab_size"]) and loss.shape == ()
    assert np.isfinite(loss.item()) and loss.item() > 0
    assert model(src, tgt_in)[1] is None
    assert model.lm_head.weight is model.decoder.wte.weight


def test_cross_attention_reads_a_source_of_another_length():
    model = make_model()
    memory = model.encode(random_ids((2, 7), TINY["src_vocab_size"], 0))[0]  # (2, 7, C)
    x = memory[:, :3, :] * 2.0                                                # (2, 3, C)
    y = model.decoder.h[0].cross_attn(x, memory)
    assert y.shape == (2, 3, TINY["n_embd"])


@no_grad()
def test_source_pads_are_never_read():
    """Each padded row gives, at its real positions, exactly what it gives alone without padding; and changing
    the source at pad positions (to other pads or to real tokens that are then masked) changes nothing."""
    model = make_model()
    src, tgt_in, tgt_out = padded_batch()
    memory, _ = model.encode(src)
    logits, _ = model(src, tgt_in)
    for b, n in enumerate([6, 3, 1]):
        alone_memory, _ = model.encode(src[b:b + 1, :n])
        np.testing.assert_allclose(memory.numpy()[b, :n], alone_memory.numpy()[0], rtol=1e-5, atol=1e-5)
        alone_logits, _ = model(src[b:b + 1, :n], tgt_in[b:b + 1])
        np.testing.assert_allclose(logits.numpy()[b], alone_logits.numpy()[0], rtol=1e-5, atol=1e-5)
    longer = np.concatenate([src, np.full((3, 2), PAD)], axis=1)             # two more pad columns
    np.testing.assert_allclose(model(longer, tgt_in)[0].numpy(), logits.numpy(), rtol=1e-5, atol=1e-5)


def test_target_pads_do_not_change_the_loss():
    model = make_model()
    src, tgt_in, tgt_out = padded_batch()
    _, loss = model(src, tgt_in, tgt_out)
    changed = tgt_in.copy()
    changed[tgt_out == PAD] = 5                                 # tokens after each row's end: never scored
    assert model(src, changed, tgt_out)[1].item() == pytest.approx(loss.item(), rel=1e-6)
    wider_in = np.concatenate([tgt_in, np.full((3, 2), PAD)], axis=1)
    wider_out = np.concatenate([tgt_out, np.full((3, 2), PAD)], axis=1)
    assert model(src, wider_in, wider_out)[1].item() == pytest.approx(loss.item(), rel=1e-6)
    real = tgt_in.copy()
    real[0, 3] = 4 if real[0, 3] != 4 else 5                    # a scored position: the loss must move
    assert model(src, real, tgt_out)[1].item() != pytest.approx(loss.item(), rel=1e-6)


@pytest.mark.parametrize("t", [0, 2, 4])
def test_decoder_output_at_t_does_not_depend_on_later_targets(t):
    model = make_model()
    src = random_ids((2, 5), TINY["src_vocab_size"], 0)
    tgt_in = random_ids((2, 6), TINY["tgt_vocab_size"], 1)
    changed = tgt_in.copy()
    changed[:, t + 1:] = random_ids((2, 5 - t), TINY["tgt_vocab_size"], 2)
    changed[:, t + 1] = 3 + (tgt_in[:, t + 1] - 2) % 6          # the next letter: surely different at t + 1
    before, after = model(src, tgt_in)[0].detach().numpy(), model(src, changed)[0].detach().numpy()
    np.testing.assert_array_equal(before[:, :t + 1], after[:, :t + 1])
    assert not np.allclose(before[:, t + 1:], after[:, t + 1:])


# ---- gradients ----

def test_the_whole_model_passes_gradcheck():
    """Every parameter's analytic gradient against central differences of the real model's loss, on a padded
    batch. gradcheck runs fn on copies of its inputs, so fn puts each copy where the parameter sits in the model
    (under both names of the tied weight) before computing the loss."""
    model = make_model(dtype=np.float64)
    src, tgt_in, tgt_out = padded_batch()
    gradcheck_parameters(model, lambda: model(src, tgt_in, tgt_out)[1])
    assert {"decoder.h.0.cross_attn.q_proj.weight", "decoder.h.0.cross_attn.kv_proj.weight",
            "encoder.wte.weight", "decoder.wte.weight"} <= {row_name for row_name, _ in model.named_parameters()}
    assert model.lm_head.weight is model.decoder.wte.weight


# ---- decoding ----

def log_probs(model, src, tokens):
    """log p(tokens | src) by teacher forcing, never generating PAD or BOS (as the decoders do)."""
    logits = model(np.array([src]), np.array([[BOS] + tokens[:-1]]))[0].detach().numpy()[0].astype(np.float64)
    logits[:, [PAD, BOS]] = -np.inf
    logits -= logits.max(axis=-1, keepdims=True)
    logp = logits - np.log(np.exp(logits).sum(axis=-1, keepdims=True))
    return sum(logp[i, tok] for i, tok in enumerate(tokens))


def test_greedy_decode_takes_the_argmax_at_every_step():
    model = make_model()
    src, _, _ = padded_batch()
    outputs = model.greedy_decode(src, max_len=6)
    for b, n in enumerate([6, 3, 1]):
        expected = [BOS]
        for _ in range(6):                                       # the reference: one full forward per step
            logits = model(src[b:b + 1, :n], np.array([expected]))[0].detach().numpy()[0, -1]
            logits[[PAD, BOS]] = -np.inf
            expected.append(int(logits.argmax()))
            if expected[-1] == EOS:
                break
        expected = expected[1:-1] if expected[-1] == EOS else expected[1:]
        assert outputs[b] == expected


@pytest.mark.parametrize("length_penalty", [0.0, 1.0])
def test_a_wide_beam_finds_the_brute_force_best(length_penalty):
    """With a beam wider than every candidate set nothing is pruned, so beam search must return the best-scoring
    output among all of them: up to max_len tokens, ending in EOS unless max_len long."""
    model = make_model(tgt_vocab_size=5)                         # two letters: ids 3, 4
    src, max_len = [3, 5, 6, 4], 3
    candidates = [list(body) + [EOS] for n in range(max_len) for body in itertools.product([3, 4], repeat=n)]
    candidates += [list(c) for c in itertools.product([3, 4], repeat=max_len)]
    scores = [log_probs(model, src, c) / len(c) ** length_penalty for c in candidates]
    best = candidates[int(np.argmax(scores))]
    expected = best[:-1] if best[-1] == EOS else best
    assert model.beam_search(src, beam_size=64, max_len=max_len, length_penalty=length_penalty) == expected


def test_beam_size_one_is_greedy():
    model = make_model()
    for seed in range(4):
        src = random_ids((1, 5), TINY["src_vocab_size"], seed)
        assert model.beam_search(src, beam_size=1, max_len=7) == model.greedy_decode(src, max_len=7)[0]


# ---- the reversal task and learning it ----

def test_reverse_task_batches():
    task = ReverseTask(alphabet="abc", min_len=1, max_len=4, n_train=50, n_test=20, seed=0)
    assert not set(task.train) & set(task.test) and len(set(task.train)) == len(task.train) == 50
    src, tgt_in, tgt_out = task.batch(["ab", "cab"])
    a, b, c = task.encode("abc")
    np.testing.assert_array_equal(src, [[a, b, PAD], [c, a, b]])
    np.testing.assert_array_equal(tgt_in, [[BOS, b, a, PAD], [BOS, b, a, c]])
    np.testing.assert_array_equal(tgt_out, [[b, a, EOS, PAD], [b, a, c, EOS]])
    assert task.decode([b, a, c, EOS]) == "bac"


def test_learns_to_reverse_short_strings():
    task = ReverseTask(alphabet="abcdef", min_len=1, max_len=5, n_train=5000, n_test=200, seed=0)
    rng.manual_seed(0)
    model = Seq2Seq(task.config(n_layer=2, n_head=4, n_embd=32))
    optimizer = AdamW(model.parameters(), lr=3e-3, weight_decay=0.0)
    scheduler = CosineAnnealingLR(optimizer, T_max=250)
    generator = np.random.default_rng(0)
    for _ in range(250):
        _, loss = model(*task.get_batch(32, generator))
        optimizer.zero_grad()
        loss.backward()
        clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
    model.eval()
    assert exact_match(model, task, task.test) >= 0.9  # the rate decayed to zero: no late spike undoes the learning
    assert exact_match(model, task, task.test[:50], beam_size=3) >= 0.9


# ---- errors ----

def test_errors_name_the_problem():
    with pytest.raises(ValueError, match="n_embd"):
        Seq2SeqConfig(**{**TINY, "n_head": 3})
    with pytest.raises(ValueError, match="eos_id"):
        Seq2SeqConfig(**{**TINY, "eos_id": 99})
    model = make_model()
    with pytest.raises(ValueError, match="max_len"):
        model.encode(np.full((1, 9), 3))
    with pytest.raises(ValueError, match="tgt_in ids"):
        model(np.full((1, 3), 3), np.full((1, 2), 9))
    with pytest.raises(ValueError, match="beam_size"):
        model.beam_search([3, 4], beam_size=0, max_len=3)
