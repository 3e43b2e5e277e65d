"""BERT: a bidirectional transformer encoder pretrained by masked-language modelling (MLM) and next-sentence
prediction (NSP), over characters.

Dimensions:  B batch, T sequence length (≤ max_len), C = n_embd, V = vocab_size (4 special ids + the characters).

    ids, segments (B, T) ─▶ tok + pos + seg ─▶ n_layer × EncoderBlock (pad mask) ─▶ ln_f ─▶ x (B, T, C)
    MLM:  x ─▶ dense, gelu, ln_mlm ─▶ decoder (weight tied to tok, its own bias) ─▶ mlm_logits (B, T, V)
    NSP:  x[:, 0] ([CLS]) ─▶ pooler (dense, tanh) ─▶ nsp_head ─▶ nsp_logits (B, 2)

The blocks are the encoder's EncoderBlock (models/transformer.py, shared with seq2seq) (pre-LayerNorm,
self-attention over every real token, in both directions). An input is a pair of segments

    [CLS] A [SEP] B [SEP] [PAD] ...       segment ids 0 for [CLS] A [SEP], 1 for B [SEP] (and the pads)

Pretraining corrupts the ids (mask_tokens): 15% of the non-special positions are chosen; of those 80% become
[MASK], 10% a random character, 10% stay as they are. The MLM loss is scored only at the chosen positions.
NSP: label 1 when B is the text that follows A, 0 when B is a random span.
"""
import math
from dataclasses import dataclass

import numpy as np

from .. import nn
from ..engine import backend
from ..engine import functional as F
from ..engine.tensor import Tensor, no_grad
from .transformer import EncoderBlock, init_gpt2_weights, token_ids

PAD_ID, CLS_ID, SEP_ID, MASK_ID = 0, 1, 2, 3
N_SPECIAL = 4            # character id c is token id c + N_SPECIAL
IGNORE_INDEX = -100      # MLM target of the positions that are not scored


@dataclass
class BertConfig:
    vocab_size: int          # N_SPECIAL + the characters
    max_len: int = 64        # the longest input (the size of the position table)
    n_layer: int = 2
    n_head: int = 4
    n_embd: int = 64
    dropout: float = 0.0
    bias: bool = True        # read by EncoderBlock and the GPT's MLP

    def __post_init__(self):
        if self.n_embd % self.n_head:
            raise ValueError(f"BertConfig: n_embd {self.n_embd} is not divisible by n_head {self.n_head}")
        for name in ("max_len", "n_layer", "n_head", "n_embd"):
            if getattr(self, name) < 1:
                raise ValueError(f"BertConfig: {name} must be at least 1, got {getattr(self, name)}")
        if self.vocab_size <= N_SPECIAL:
            raise ValueError(f"BertConfig: vocab_size {self.vocab_size} leaves no room for tokens after the "
                             f"{N_SPECIAL} special ids")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"BertConfig: dropout must be in [0, 1), got {self.dropout}")


class Bert(nn.Module):
    def __init__(self, config):
        self.config = config
        C, V = config.n_embd, config.vocab_size
        self.wte = nn.Embedding(V, C)                 # tokens
        self.wpe = nn.Embedding(config.max_len, C)    # positions
        self.wse = nn.Embedding(2, C)                 # segments A and B
        self.drop = nn.Dropout(config.dropout)
        self.h = nn.ModuleList([EncoderBlock(config) for _ in range(config.n_layer)])
        self.ln_f = nn.LayerNorm(C, bias=config.bias)
        self.mlm_dense = nn.Linear(C, C)              # the MLM head's transform: dense, gelu, LayerNorm
        self.ln_mlm = nn.LayerNorm(C, bias=config.bias)
        self.mlm_decoder = nn.Linear(C, V)
        self.mlm_decoder.weight = self.wte.weight     # tied: scores tokens with their embeddings; own bias
        self.pooler = nn.Linear(C, C)                 # the NSP head: [CLS] -> dense, tanh -> 2 classes
        self.nsp_head = nn.Linear(C, 2)
        self._init_weights()

    def _init_weights(self):
        # each encoder block adds two terms to the residual stream: attention and MLP
        init_gpt2_weights(self, residual_std=0.02 / math.sqrt(2 * self.config.n_layer))

    def _array(self, a, what, shape=None):
        """An integer or bool array on the model's device, checked against `shape` when given."""
        a = backend.to_device(a.data if isinstance(a, Tensor) else np.asarray(a), self.wte.weight.device)
        if shape is not None and a.shape != shape:
            raise ValueError(f"Bert: {what} has shape {a.shape}, expected {shape}")
        return a

    def encode(self, ids, segments, pad_mask=None):
        """ids, segments (B, T), pad_mask (B, T) bool, True at real tokens (default: ids != PAD_ID)
        -> hidden states (B, T, C). No position reads a padded one."""
        ids = token_ids(ids, self.wte.weight.device, self.config.vocab_size, self.config.max_len, "Bert: token")
        segments = self._array(segments, "segments", ids.shape)
        pad_mask = ids != PAD_ID if pad_mask is None else self._array(pad_mask, "pad_mask", ids.shape).astype(bool)
        positions = backend.module_for(self.wte.weight.device).arange(ids.shape[1])      # (T,)
        x = self.drop(self.wte(ids) + self.wpe(positions) + self.wse(segments))           # (B, T, C)
        attn_mask = pad_mask[:, None, None, :]                  # (B, 1, 1, T): broadcasts over heads and queries
        for block in self.h:
            x = block(x, attn_mask)                             # (B, T, C)
        return self.ln_f(x)

    def forward(self, ids, segments, pad_mask=None, mlm_targets=None, nsp_labels=None):
        """ids, segments (B, T), pad_mask (B, T) or None -> (mlm_logits (B, T, V), nsp_logits (B, 2), loss).
        loss = the mean MLM cross-entropy over the positions whose mlm_targets (B, T) are not IGNORE_INDEX
        + the mean NSP cross-entropy against nsp_labels (B,); a term is left out when its targets are None,
        and loss is None when both are."""
        x = self.encode(ids, segments, pad_mask)                                 # (B, T, C)
        h = self.ln_mlm(F.gelu(self.mlm_dense(x), approximate="tanh"))           # (B, T, C)
        mlm_logits = self.mlm_decoder(h)                                         # (B, T, V)
        nsp_logits = self.nsp_head(self.pooler(x[:, 0, :]).tanh())               # (B, 2)
        B, T, V = mlm_logits.shape
        losses = []
        if mlm_targets is not None:
            targets = self._array(mlm_targets, "mlm_targets", (B, T)).reshape(B * T)
            losses.append(F.cross_entropy(mlm_logits.reshape(B * T, V), targets, ignore_index=IGNORE_INDEX))
        if nsp_labels is not None:
            losses.append(F.cross_entropy(nsp_logits, self._array(nsp_labels, "nsp_labels", (B,))))
        loss = None if not losses else losses[0] if len(losses) == 1 else losses[0] + losses[1]
        return mlm_logits, nsp_logits, loss


# ---------------------------------------------------------------- pretraining data

def mask_tokens(ids, vocab_size, generator, mask_prob=0.15, special_ids=range(N_SPECIAL),
                mask_id=MASK_ID):  # ids (B, T) -> corrupted (B, T), mlm_targets (B, T)
    """BERT's corruption. ids (B, T) -> (corrupted ids (B, T), mlm_targets (B, T)).

    Each position whose id is not in special_ids is chosen with probability mask_prob (a row that has tokens but
    drew none gets one, so every row is scored); a chosen position becomes mask_id with probability 0.8, a random
    token that is not special with 0.1, and keeps its token with 0.1. mlm_targets holds the original token at
    chosen positions and IGNORE_INDEX elsewhere. `generator` is a np.random.Generator. The defaults are this
    file's character vocabulary; a WordPiece vocabulary passes its tokenizer's special_ids and mask_id, so
    [CLS], [SEP], [PAD] (and [UNK], [MASK]) are never chosen."""
    ids = np.asarray(ids)
    special = np.array(sorted(special_ids), dtype=ids.dtype)
    candidates = ~np.isin(ids, special)                                 # (B, T)
    chosen = candidates & (generator.random(ids.shape) < mask_prob)    # (B, T)
    for b in np.flatnonzero(candidates.any(axis=1) & ~chosen.any(axis=1)):
        chosen[b, generator.choice(np.flatnonzero(candidates[b]))] = True
    roll = generator.random(ids.shape)                                  # (B, T): which of the three fates
    to_mask, to_random = chosen & (roll < 0.8), chosen & (roll >= 0.8) & (roll < 0.9)
    corrupted = ids.copy()
    corrupted[to_mask] = mask_id
    ordinary = np.setdiff1d(np.arange(vocab_size), special)             # the ids a random token is drawn from
    corrupted[to_random] = ordinary[generator.integers(0, len(ordinary), int(to_random.sum()))]
    return corrupted, np.where(chosen, ids, IGNORE_INDEX)


def pack_pairs(pairs, max_len):
    """[(A ids, B ids), ...] -> (ids, segments, pad_mask), each (B, T) with T the longest
    len(A) + len(B) + 3 (≤ max_len): [CLS] A [SEP] B [SEP] then [PAD]s; segment 0 up to the first [SEP],
    1 after it; pad_mask True at real tokens."""
    T = max(len(a) + len(b) + 3 for a, b in pairs)
    if T > max_len:
        raise ValueError(f"pack_pairs: a pair needs {T} positions, more than max_len {max_len}")
    ids = np.full((len(pairs), T), PAD_ID, dtype=np.int64)
    segments = np.zeros((len(pairs), T), dtype=np.int64)
    for row, (a, b) in enumerate(pairs):
        n_a = len(a) + 2
        ids[row, :n_a + len(b) + 1] = np.concatenate([[CLS_ID], a, [SEP_ID], b, [SEP_ID]])
        segments[row, n_a:] = 1
    return ids, segments, ids != PAD_ID


class SpanPairs:
    """Sentence pairs for BERT from a text: A is a span of characters, B the span that follows it (label 1) or,
    half the time, a span from a random place in the same split (label 0). Spans are min_len..max_len characters,
    so rows differ in length and are padded. The first 90% of the text trains ("train"), the rest is held out
    ("val"). Span boundaries fall anywhere, even inside a word: whether the text runs on across the [SEP] is
    the main clue NSP can learn from."""

    def __init__(self, text, tokenizer, min_len=8, max_len=24, train_fraction=0.9):
        ids = tokenizer.encode(text) + N_SPECIAL                  # (N,): character ids shifted past the specials
        n_train = int(train_fraction * len(ids))
        self.splits = {"train": ids[:n_train], "val": ids[n_train:]}
        self.min_len, self.max_len = min_len, max_len
        self.vocab_size = tokenizer.vocab_size + N_SPECIAL
        self.seq_len = 2 * max_len + 3                            # [CLS] A [SEP] B [SEP]

    def config(self, **options):
        """A BertConfig for this vocabulary and length; options set the model's size."""
        return BertConfig(vocab_size=self.vocab_size, max_len=self.seq_len, **options)

    def sample_pairs(self, split, n, generator):
        """n pairs [(A ids, B ids), ...] and their NSP labels (n,) int64 (1: B follows A)."""
        data = self.splits[split]
        lengths = generator.integers(self.min_len, self.max_len + 1, (n, 2))   # (n, 2)
        starts = generator.integers(0, len(data) - 2 * self.max_len, n)        # (n,)
        labels = (generator.random(n) < 0.5).astype(np.int64)                  # (n,)
        random_starts = generator.integers(0, len(data) - self.max_len, n)     # (n,)
        pairs = []
        for (n_a, n_b), start, label, other in zip(lengths, starts, labels, random_starts):
            b_start = start + n_a if label else other
            pairs.append((data[start:start + n_a], data[b_start:b_start + n_b]))
        return pairs, labels

    def get_batch(self, split, batch_size, generator):
        """A random corrupted batch: (ids, segments, pad_mask, mlm_targets, nsp_labels), the first four
        (B, T), nsp_labels (B,)."""
        pairs, labels = self.sample_pairs(split, batch_size, generator)
        ids, segments, pad_mask = pack_pairs(pairs, self.seq_len)
        corrupted, targets = mask_tokens(ids, self.vocab_size, generator)
        return corrupted, segments, pad_mask, targets, labels


def evaluate(model, data, split="val", n_batches=4, batch_size=128, seed=0):
    """Accuracy on fixed random batches of `split` (the same for every call with this seed), without gradients:
    {"mlm_accuracy": argmax correct at the scored positions, "nsp_accuracy",
     "nsp_majority": the accuracy of always answering the more common NSP label (the baseline to beat)}."""
    generator = np.random.default_rng(seed)
    mlm_correct = mlm_total = nsp_correct = n_next = n_pairs = 0
    was_training = model.training
    model.eval()
    with no_grad():
        for _ in range(n_batches):
            ids, segments, pad_mask, targets, labels = data.get_batch(split, batch_size, generator)
            mlm_logits, nsp_logits, _ = model(ids, segments, pad_mask)
            scored = targets != IGNORE_INDEX
            mlm_correct += int((mlm_logits.numpy().argmax(-1)[scored] == targets[scored]).sum())
            mlm_total += int(scored.sum())
            nsp_correct += int((nsp_logits.numpy().argmax(-1) == labels).sum())
            n_next, n_pairs = n_next + int(labels.sum()), n_pairs + len(labels)
    model.train(was_training)
    return {"mlm_accuracy": mlm_correct / mlm_total, "nsp_accuracy": nsp_correct / n_pairs,
            "nsp_majority": max(n_next, n_pairs - n_next) / n_pairs}
