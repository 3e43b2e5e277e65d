"""Tests of the BERT encoder (tinygrad_llm/models/bert.py): the corruption's statistics, packing pairs, padding that
really is ignored, the tied MLM decoder, gradcheck of the whole model, and a short pretraining run."""
import numpy as np
import pytest

from tinygrad_llm import no_grad
from tinygrad_llm.engine import rng
from tinygrad_llm.models.bert import (
    CLS_ID,
    IGNORE_INDEX,
    MASK_ID,
    N_SPECIAL,
    PAD_ID,
    SEP_ID,
    Bert,
    BertConfig,
    SpanPairs,
    evaluate,
    mask_tokens,
    pack_pairs,
)
from tinygrad_llm.optim import AdamW, clip_grad_norm_
from tinygrad_llm.text.char import CharTokenizer
from tinygrad_llm.text.datasets import load_text

from conftest import gradcheck_parameters

TINY = dict(vocab_size=10, max_len=12, n_layer=2, n_head=2, n_embd=16)


def make_model(seed=0, dtype=np.float32):
    """A tiny model with N(0, 0.3²) noise added to every parameter (the initialisation's zero biases and unit
    gains would hide mistakes)."""
    rng.manual_seed(seed)
    model = Bert(BertConfig(**TINY)).to(dtype)
    noise = np.random.default_rng(seed + 1)
    for p in model.parameters():
        p.data[...] += (0.3 * noise.standard_normal(p.shape)).astype(p.dtype)
    return model.eval()


def padded_batch(seed=0):
    """Three packed pairs of different lengths (10, 7, 5 real tokens), plus MLM targets and NSP labels."""
    g = np.random.default_rng(seed)
    pairs = [(g.integers(N_SPECIAL, 10, n_a), g.integers(N_SPECIAL, 10, n_b)) for n_a, n_b in [(4, 3), (2, 2), (1, 1)]]
    ids, segments, pad_mask = pack_pairs(pairs, TINY["max_len"])
    corrupted, targets = mask_tokens(ids, TINY["vocab_size"], g, mask_prob=0.5)
    return corrupted, segments, pad_mask, targets, np.array([1, 0, 1])


# ---- corruption and packing ----

def test_corruption_statistics_on_a_large_sample():
    g = np.random.default_rng(0)
    ids = g.integers(N_SPECIAL, 50, (400, 100))
    ids[:, 0], ids[:, 50], ids[:, -1] = CLS_ID, SEP_ID, SEP_ID
    ids[:, 80:99] = PAD_ID
    corrupted, targets = mask_tokens(ids, 50, g)
    special = ids < N_SPECIAL
    chosen = targets != IGNORE_INDEX
    assert not (chosen & special).any()                           # specials are never chosen ...
    np.testing.assert_array_equal(corrupted[special], ids[special])  # ... nor changed
    np.testing.assert_array_equal(targets[chosen], ids[chosen])   # the target is the original token
    np.testing.assert_array_equal(corrupted[~chosen], ids[~chosen])  # positions not chosen are untouched
    n = chosen.sum()
    assert chosen.sum() / (~special).sum() == pytest.approx(0.15, abs=0.01)  # ≈ 15% of the 30,400 candidates
    masked = (corrupted == MASK_ID) & chosen
    kept = (corrupted == ids) & chosen
    randomised = chosen & ~masked & ~kept
    assert masked.sum() / n == pytest.approx(0.8, abs=0.02)
    # a random token equals the original 1/46 of the time, so "kept" gets 10% + 10%/46
    assert kept.sum() / n == pytest.approx(0.1 + 0.1 / 46, abs=0.015)
    assert randomised.sum() / n == pytest.approx(0.1 - 0.1 / 46, abs=0.015)
    assert corrupted[randomised].min() >= N_SPECIAL and corrupted[randomised].max() < 50


def test_corruption_is_seeded_and_scores_every_row():
    ids = np.random.default_rng(0).integers(N_SPECIAL, 20, (64, 4))
    first = mask_tokens(ids, 20, np.random.default_rng(7))
    second = mask_tokens(ids, 20, np.random.default_rng(7))
    np.testing.assert_array_equal(first[0], second[0])
    np.testing.assert_array_equal(first[1], second[1])
    assert ((first[1] != IGNORE_INDEX).sum(axis=1) >= 1).all()   # short rows still get a scored position


def test_pack_pairs_layout():
    ids, segments, pad_mask = pack_pairs([([5, 6], [7]), ([8], [9])], max_len=8)
    np.testing.assert_array_equal(ids, [[CLS_ID, 5, 6, SEP_ID, 7, SEP_ID], [CLS_ID, 8, SEP_ID, 9, SEP_ID, PAD_ID]])
    np.testing.assert_array_equal(segments, [[0, 0, 0, 0, 1, 1], [0, 0, 0, 1, 1, 1]])
    np.testing.assert_array_equal(pad_mask, ids != PAD_ID)
    with pytest.raises(ValueError, match="max_len"):
        pack_pairs([([5] * 4, [6] * 4)], max_len=10)


# ---- the model ----

@no_grad()
def test_shapes_loss_and_tied_decoder():
    model = make_model()
    ids, segments, pad_mask, targets, labels = padded_batch()
    mlm_logits, nsp_logits, loss = model(ids, segments, pad_mask, targets, labels)
    assert mlm_logits.shape == (3, 10, TINY["vocab_size"]) and nsp_logits.shape == (3, 2) and loss.shape == ()
    mlm_only = model(ids, segments, pad_mask, mlm_targets=targets)[2].item()
    nsp_only = model(ids, segments, pad_mask, nsp_labels=labels)[2].item()
    assert loss.item() == pytest.approx(mlm_only + nsp_only, rel=1e-6)
    assert model(ids, segments, pad_mask)[2] is None
    assert model.mlm_decoder.weight is model.wte.weight              # tied ...
    assert model.mlm_decoder.bias is not None                        # ... with a bias of its own
    names = dict(model.named_parameters())
    assert "mlm_decoder.weight" not in names and "mlm_decoder.bias" in names   # listed once, as wte.weight
    model.wte.weight.data[5] += 1.0                                  # changing the embedding changes the scores
    assert not np.allclose(model(ids, segments, pad_mask)[0].numpy()[..., 5], mlm_logits.numpy()[..., 5])


@no_grad()
def test_padding_is_really_ignored():
    """Whatever sits at pad positions (other tokens, other segments, more pad columns), the outputs at real
    positions and the NSP logits stay the same; and each row gives what it gives alone without padding."""
    model = make_model()
    ids, segments, pad_mask, _, _ = padded_batch()
    mlm_logits, nsp_logits, _ = model(ids, segments, pad_mask)
    changed_ids, changed_segments = ids.copy(), segments.copy()
    changed_ids[~pad_mask] = np.random.default_rng(1).integers(N_SPECIAL, 10, (~pad_mask).sum())
    changed_segments[~pad_mask] = 0
    mlm_changed, nsp_changed, _ = model(changed_ids, changed_segments, pad_mask)
    np.testing.assert_allclose(mlm_changed.numpy()[pad_mask], mlm_logits.numpy()[pad_mask], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(nsp_changed.numpy(), nsp_logits.numpy(), rtol=1e-5, atol=1e-5)
    for b, n in enumerate(pad_mask.sum(axis=1)):
        alone_mlm, alone_nsp, _ = model(ids[b:b + 1, :n], segments[b:b + 1, :n])
        np.testing.assert_allclose(alone_mlm.numpy()[0], mlm_logits.numpy()[b, :n], rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(alone_nsp.numpy()[0], nsp_logits.numpy()[b], rtol=1e-5, atol=1e-5)
    real = ids.copy()
    real[0, 2] = 4 if real[0, 2] != 4 else 5                         # a real position: outputs must move
    assert not np.allclose(model(real, segments, pad_mask)[1].numpy()[0], nsp_logits.numpy()[0])


@no_grad()
def test_segments_matter():
    model = make_model()
    ids, segments, pad_mask, _, _ = padded_batch()
    assert not np.allclose(model(ids, 1 - segments, pad_mask)[1].numpy(), model(ids, segments, pad_mask)[1].numpy())


def test_the_whole_model_passes_gradcheck():
    """Every parameter's gradient against central differences of the loss (MLM + NSP) on a padded, corrupted
    batch, along random directions. fn puts gradcheck's copy of each parameter back where the parameter sits
    (under both names of the tied embedding) before computing the loss."""
    model = make_model(dtype=np.float64)
    batch = padded_batch()
    gradcheck_parameters(model, lambda: model(*batch)[2])
    assert {"wte.weight", "wse.weight", "mlm_decoder.bias", "nsp_head.weight", "h.1.attn.kv_proj.weight"} <= {row_name for row_name, _ in model.named_parameters()}


# ---- pretraining ----

def test_span_pairs_batches():
    text = "the quick brown fox jumps over the lazy dog. " * 40
    data = SpanPairs(text, CharTokenizer.from_text(text), min_len=3, max_len=6)
    ids, segments, pad_mask, targets, labels = data.get_batch("train", 200, np.random.default_rng(0))
    assert ids.shape == segments.shape == pad_mask.shape == targets.shape and ids.shape[1] <= data.seq_len
    assert (ids[:, 0] == CLS_ID).all() and set(labels) == {0, 1} and 0.35 < labels.mean() < 0.65
    assert ((ids == SEP_ID).sum(axis=1) == 2).all()
    pairs, labels = data.sample_pairs("val", 50, np.random.default_rng(1))
    val = data.splits["val"]
    for (a, b), label in zip(pairs, labels):
        assert 3 <= len(a) <= 6 and 3 <= len(b) <= 6
        if label:                                                    # B is the text right after A
            joined = np.concatenate([a, b])
            assert any(np.array_equal(val[i:i + len(joined)], joined) for i in range(len(val)))


def pretrain(model, data, steps, seed, batch_size=32, lr=3e-3):
    """MLM + NSP training on random batches of data's "train" split: AdamW, gradients clipped to norm 1."""
    optimizer = AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    generator = np.random.default_rng(seed)
    for _ in range(steps):
        _, _, loss = model(*data.get_batch("train", batch_size, generator))
        optimizer.zero_grad()
        loss.backward()
        clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()


def test_short_pretraining_lowers_the_mlm_loss(shakespeare):
    """A few seconds of training (loss = MLM + NSP) on Tiny Shakespeare: the MLM loss on a fixed held-out batch
    falls well below its start, and held-out masked-token accuracy is far above a uniform guess (1/65).
    (On Tiny Shakespeare NSP needs far longer than a test may take to beat chance: examples/07_bert_mlm.py
    measures it; the next test shows NSP learning where it can be learnt fast.)"""
    text = load_text(shakespeare / "tinyshakespeare.txt")
    data = SpanPairs(text, CharTokenizer.from_text(text), min_len=4, max_len=8)
    rng.manual_seed(0)
    model = Bert(data.config(n_layer=1, n_head=2, n_embd=32))
    held_out = data.get_batch("val", 256, np.random.default_rng(1))

    def held_out_mlm_loss():
        with no_grad():
            return model(*held_out[:3], mlm_targets=held_out[3])[2].item()

    before = held_out_mlm_loss()
    pretrain(model, data, steps=150, seed=0)
    assert held_out_mlm_loss() < before - 0.6
    result = evaluate(model, data, n_batches=2, batch_size=128)
    assert result["mlm_accuracy"] > 0.1
    assert 0 <= result["nsp_accuracy"] <= 1 and result["nsp_majority"] >= 0.5


def test_nsp_learns_the_seam_when_it_is_the_only_clue():
    """On the alphabet written over and over, a span B that follows A continues the letters across [SEP], and a
    random B does so only by chance (1 in 26): the seam is the whole NSP signal. A tiny model finds it after a
    plateau at chance (as on real text), and NSP is then right far above the 50% of a guess on held-out pairs.
    Spans of one length put the seam at the same place in every pair, which keeps the plateau short; with lengths
    that vary, how long it lasts depends on the seed and even on the CPU's BLAS kernels (benchmarks/RESULTS.md)."""
    text = "abcdefghijklmnopqrstuvwxyz" * 400
    data = SpanPairs(text, CharTokenizer.from_text(text), min_len=4, max_len=4)
    rng.manual_seed(2)
    model = Bert(data.config(n_layer=2, n_head=2, n_embd=32))
    pretrain(model, data, steps=2000, seed=2)
    result = evaluate(model, data, n_batches=2, batch_size=128)
    assert result["nsp_accuracy"] > 0.75, result  # steps to spare after the slowest escape from the plateau seen
