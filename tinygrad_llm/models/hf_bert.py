"""BERT as Hugging Face builds it (BertModel), so that real pretrained checkpoints (all-MiniLM-L6-v2, bert-base, ...)
run on this engine. models/bert.py is the from-scratch pretraining example; this one follows the published
architecture exactly, down to where the LayerNorms sit.

Dimensions:  B batch, T sequence length (≤ max_len), C = n_embd, V = vocab_size.

    ids, token types (B, T) ─▶ word + position + token-type embeddings ─▶ ln_emb ─▶ x (B, T, C)
    ─▶ n_layer × PostLNEncoderBlock (pad mask):  x = ln_1(x + attn(x));  x = ln_2(x + mlp(x))  ─▶ h (B, T, C)
    pooler (when the checkpoint has one): tanh(dense(h[:, 0])), the [CLS] summary (B, C)

What differs from models/bert.py: the LayerNorm comes after each residual sum (post-LN), the embeddings are
normalised too, the MLP's GELU is exact (erf) and n_inner wide, LayerNorm's eps comes from the checkpoint (1e-12
for BERT), and there is no final LayerNorm (the last block's ln_2 is it).

The attention mask is 1 at real tokens and 0 at pads (BertTokenizer's attention_mask): no query attends to a pad,
so a real token's state is the same however much the row is padded. Pads still get states (they attend to the real
tokens); mean_pool leaves them out.
"""
from dataclasses import dataclass

import numpy as np

from .. import nn
from ..engine import backend
from ..engine import functional as F
from ..engine.tensor import Tensor
from .transformer import PostLNEncoderBlock, init_gpt2_weights, token_ids


@dataclass
class HFBertConfig:
    vocab_size: int = 30522
    max_len: int = 512            # max_position_embeddings: the size of the position table
    n_layer: int = 12             # num_hidden_layers
    n_head: int = 12              # num_attention_heads
    n_embd: int = 768             # hidden_size
    n_inner: int = 3072           # intermediate_size: the MLP's width
    type_vocab_size: int = 2      # token types (segments A and B)
    layer_norm_eps: float = 1e-12
    dropout: float = 0.0          # hidden_dropout_prob and attention_probs_dropout_prob, as one
    pooler: bool = True           # whether the model has BERT's [CLS] pooler (a checkpoint may leave it out)
    bias: bool = True             # read by the shared blocks: BERT has biases everywhere

    def __post_init__(self):
        for name in ("vocab_size", "max_len", "n_layer", "n_head", "n_embd", "n_inner", "type_vocab_size"):
            value = getattr(self, name)
            if type(value) is not int or value < 1:
                raise ValueError(f"HFBertConfig: {name} must be an integer of at least 1, got {value!r:.40}")
        if self.n_embd % self.n_head:
            raise ValueError(f"HFBertConfig: n_embd {self.n_embd} is not divisible by n_head {self.n_head}")
        if not (isinstance(self.layer_norm_eps, float) and 0 < self.layer_norm_eps < 1):
            raise ValueError(f"HFBertConfig: layer_norm_eps must be a float in (0, 1), got {self.layer_norm_eps!r:.40}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"HFBertConfig: dropout must be in [0, 1), got {self.dropout}")


class HFBert(nn.Module):
    """Hugging Face's BertModel on this engine: forward gives the last hidden states (B, T, C)."""

    def __init__(self, config):
        self.config = config
        C = config.n_embd
        self.wte = nn.Embedding(config.vocab_size, C)        # word_embeddings
        self.wpe = nn.Embedding(config.max_len, C)           # position_embeddings
        self.wtt = nn.Embedding(config.type_vocab_size, C)   # token_type_embeddings
        self.ln_emb = nn.LayerNorm(C, eps=config.layer_norm_eps)
        self.drop = nn.Dropout(config.dropout)
        self.h = nn.ModuleList([PostLNEncoderBlock(config) for _ in range(config.n_layer)])
        self.pooler = nn.Linear(C, C) if config.pooler else None
        # BERT's initialisation: N(0, 0.02) for every matrix and embedding, the residual projections included
        init_gpt2_weights(self, residual_std=0.02)

    def _array(self, a, what, shape):
        """An integer array on the model's device, checked against `shape`."""
        a = backend.to_device(a.data if isinstance(a, Tensor) else np.asarray(a), self.wte.weight.device)
        if a.shape != shape:
            raise ValueError(f"HFBert: {what} has shape {a.shape}, expected {shape} (that of the ids)")
        return a

    def forward(self, ids, token_type_ids=None, attention_mask=None):
        """ids (B, T), token_type_ids (B, T) (default all 0), attention_mask (B, T), 1 at real tokens and 0 at pads
        (default all 1) -> last hidden states (B, T, C)."""
        config = self.config
        ids = token_ids(ids, self.wte.weight.device, config.vocab_size, config.max_len, "HFBert: token",
                        max_len_name="max_position_embeddings")
        xp = backend.module_for(self.wte.weight.device)
        types = xp.zeros_like(ids) if token_type_ids is None else self._array(token_type_ids, "token_type_ids",
                                                                               ids.shape)
        if types.size and (types.min() < 0 or types.max() >= config.type_vocab_size):
            raise ValueError(f"HFBert: token_type_ids must be in 0..{config.type_vocab_size - 1}, got min "
                             f"{types.min()} max {types.max()}")
        real = xp.ones(ids.shape, dtype=bool) if attention_mask is None else \
            self._array(attention_mask, "attention_mask", ids.shape) != 0          # (B, T): True at real tokens
        positions = xp.arange(ids.shape[1])                                         # (T,)
        x = self.drop(self.ln_emb(self.wte(ids) + self.wpe(positions) + self.wtt(types)))  # (B, T, C)
        attn_mask = real[:, None, None, :]                     # (B, 1, 1, T): broadcasts over heads and queries
        for block in self.h:
            x = block(x, attn_mask)                            # (B, T, C)
        return x

    def pooled(self, h):
        """BERT's pooler on hidden states h (B, T, C): tanh(dense(h[:, 0])) (B, C), the [CLS] position's summary."""
        if self.pooler is None:
            raise ValueError("HFBert.pooled: this model has no pooler (its checkpoint held none)")
        return self.pooler(h[:, 0, :]).tanh()


class HFBertMLMHead(nn.Module):
    """BERT's masked-LM head (Hugging Face's BertLMPredictionHead): dense, exact GELU, LayerNorm, then a score per
    vocabulary entry from the word embeddings themselves (tied, as BERT's pretraining ties them) and a bias of its
    own. Tied, a token's embedding is what both reads it in and predicts it, and the head adds only C² + 3C + V
    parameters."""

    def __init__(self, bert):
        C, V = bert.config.n_embd, bert.config.vocab_size
        self.dense = nn.Linear(C, C)
        self.ln = nn.LayerNorm(C, eps=bert.config.layer_norm_eps)
        self.decoder = nn.Linear(C, V)
        init_gpt2_weights(self, residual_std=0.02)               # before the tie: bert's embeddings stay as they are
        self.to(str(bert.wte.weight.dtype)).to(bert.wte.weight.device)
        self.decoder.weight = bert.wte.weight                    # (V, C)

    def forward(self, h):  # h (..., C) -> logits (..., V)
        """Hidden states h (..., C) -> logits over the vocabulary (..., V)."""
        return self.decoder(self.ln(F.gelu(self.dense(h))))


def mean_pool(h, attention_mask):
    """The mean of each row's real tokens: h (B, T, C), attention_mask (B, T) 1 at real tokens -> (B, C).
    sentence-transformers' mean pooling (its divisor is clamped at 1e-9, so an all-pad row gives zeros)."""
    xp = backend.module_for(h.device)
    mask = backend.to_device(np.asarray(attention_mask), h.device).astype(h.dtype)   # (B, T)
    counts = xp.maximum(mask.sum(axis=1, keepdims=True), 1e-9).astype(h.dtype)      # (B, 1)
    return (h * mask[:, :, None]).sum(axis=1) / counts                               # (B, C)


def l2_normalize(x, eps=1e-12):
    """x (B, C) scaled to unit length per row (as torch.nn.functional.normalize: the norm clamped at eps)."""
    norm = (x * x).sum(axis=-1, keepdims=True).sqrt()                                 # (B, 1)
    return x / norm.maximum(eps)
