"""The parts every transformer here is built from: attention, the MLP, four kinds of block, GPT-2's
initialisation and the check of token ids.

Dimensions:  B batch, T (Tq, Tk) sequence lengths, C = n_embd, nh = n_head, hs = C / nh.

    Block (GPT, decoder-only):   x = x + attn(ln_1(x), causal);  x = x + mlp(ln_2(x))
    EncoderBlock (seq2seq, BERT): x = x + attn(ln_1(x), pad mask);  x = x + mlp(ln_2(x))
    DecoderBlock (seq2seq):      x = x + self_attn(ln_1(x), causal);  x = x + cross_attn(ln_2(x), memory, pad mask);
                                 x = x + mlp(ln_3(x))

    PostLNEncoderBlock (Hugging Face's BERT):  x = ln_1(x + attn(x, pad mask));  x = ln_2(x + mlp(x))

The first three are pre-LayerNorm, as GPT-2: each sub-layer reads a normalised copy of the residual stream and adds
its result back. The last is the original BERT's post-LayerNorm: the sum is normalised, so the stream itself is
normalised after every sub-layer. A config is any object with n_embd, n_head, dropout and bias (GPTConfig,
Seq2SeqConfig, BertConfig; HFBertConfig adds n_inner and layer_norm_eps).
"""
import numpy as np

from .. import nn
from ..engine import backend, rng
from ..engine import functional as F
from ..engine.movement import concat
from ..engine.tensor import Tensor


class CausalSelfAttention(nn.Module):
    """The GPT's attention: q, k and v from one matmul (c_attn), each position sees itself and the positions before
    it, the heads joined by c_proj; an optional KV cache for generation."""

    def __init__(self, config):
        self.n_head, self.dropout = config.n_head, config.dropout
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)  # q, k, v in one matmul
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.resid_dropout = nn.Dropout(config.dropout)

    def forward(self, x, cache=None):
        """x (B, T, C) -> (B, T, C). With `cache` (a dict), keys and values of earlier positions are read from
        it and this call's are appended, so generation computes each position once."""
        B, T, C = x.shape
        hs = C // self.n_head
        # c_attn's 3C outputs are q, k, v one after the other, each nh heads of hs: one view splits all three, so
        # backward gathers their gradients in one buffer and copies it back to (B, T, 3C) once
        qkv = self.c_attn(x).reshape(B, T, 3, self.n_head, hs).permute(2, 0, 3, 1, 4)  # (3, B, nh, T, hs)
        q, k, v = qkv[0], qkv[1], qkv[2]                                      # (B, nh, T, hs) each
        past = 0
        if cache is not None:
            if "k" in cache:
                past = cache["k"].shape[2]
                k, v = concat([cache["k"], k], axis=2), concat([cache["v"], v], axis=2)  # (B, nh, past+T, hs)
            cache["k"], cache["v"] = k, v
        # query t (at position past + t) may see keys 0 .. past + t
        mask = None if past == 0 else np.tri(T, past + T, k=past, dtype=bool)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=past == 0,
                                           dropout_p=self.dropout if self.training else 0.0)  # (B, nh, T, hs)
        y = y.transpose(1, 2).reshape(B, T, C)                                # (B, T, C)
        return self.resid_dropout(self.c_proj(y))


class MLP(nn.Module):
    """y = c_proj(gelu(c_fc(x))): n_hidden units (4·C by default), GPT-2's tanh GELU by default (BERT's is the
    exact one: approximate="none")."""

    def __init__(self, config, n_hidden=None, approximate="tanh"):
        n_hidden = 4 * config.n_embd if n_hidden is None else n_hidden
        self.approximate = approximate
        self.c_fc = nn.Linear(config.n_embd, n_hidden, bias=config.bias)
        self.c_proj = nn.Linear(n_hidden, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x):                                                     # (B, T, C) -> (B, T, C)
        return self.dropout(self.c_proj(F.gelu(self.c_fc(x), approximate=self.approximate)))


class Block(nn.Module):
    """The GPT's block: causal self-attention, then the MLP, each on a LayerNorm of the residual stream."""

    def __init__(self, config):
        self.ln_1 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.mlp = MLP(config)

    def forward(self, x, cache=None):                                         # (B, T, C) -> (B, T, C)
        x = x + self.attn(self.ln_1(x), cache)
        return x + self.mlp(self.ln_2(x))


class MultiHeadAttention(nn.Module):
    """Self-attention (keys and values from x itself) or cross-attention (from `memory`), with separate
    projections for the queries (q_proj) and for the keys and values (kv_proj, one matmul for both)."""

    def __init__(self, config):
        self.n_head, self.dropout = config.n_head, config.dropout
        self.q_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.kv_proj = nn.Linear(config.n_embd, 2 * config.n_embd, bias=config.bias)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.resid_dropout = nn.Dropout(config.dropout)

    def forward(self, x, memory=None, attn_mask=None, is_causal=False):
        """x (B, Tq, C), memory (B, Tk, C) or None (then memory = x) -> (B, Tq, C).
        attn_mask: bool, True where a query may attend to a key, broadcastable to (B, nh, Tq, Tk)."""
        memory = x if memory is None else memory
        B, Tq, C = x.shape
        Tk, hs = memory.shape[1], C // self.n_head
        q = self.q_proj(x).reshape(B, Tq, self.n_head, hs).transpose(1, 2)        # (B, nh, Tq, hs)
        k, v = self.kv_proj(memory).split(C, axis=2)                                # 2 × (B, Tk, C)
        k = k.reshape(B, Tk, self.n_head, hs).transpose(1, 2)                      # (B, nh, Tk, hs)
        v = v.reshape(B, Tk, self.n_head, hs).transpose(1, 2)                      # (B, nh, Tk, hs)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, is_causal=is_causal,
                                           dropout_p=self.dropout if self.training else 0.0)  # (B, nh, Tq, hs)
        y = y.transpose(1, 2).reshape(B, Tq, C)                                    # (B, Tq, C)
        return self.resid_dropout(self.c_proj(y))


class EncoderBlock(nn.Module):
    """An encoder block (seq2seq, BERT): attention over every real token in both directions, then the MLP."""

    def __init__(self, config):
        self.ln_1 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.attn = MultiHeadAttention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.mlp = MLP(config)

    def forward(self, x, src_mask):                              # (B, Ts, C), mask (B, 1, 1, Ts) -> (B, Ts, C)
        x = x + self.attn(self.ln_1(x), attn_mask=src_mask)      # bidirectional: every real source token
        return x + self.mlp(self.ln_2(x))


class PostLNEncoderBlock(nn.Module):
    """The original BERT's block (and Hugging Face's BertLayer): post-LayerNorm, each sub-layer's result added to
    the stream and the sum normalised. The config also gives n_inner (the MLP's width) and layer_norm_eps; the
    MLP's GELU is the exact one, as BERT's."""

    def __init__(self, config):
        self.attn = MultiHeadAttention(config)
        self.ln_1 = nn.LayerNorm(config.n_embd, bias=config.bias, eps=config.layer_norm_eps)
        self.mlp = MLP(config, n_hidden=config.n_inner, approximate="none")
        self.ln_2 = nn.LayerNorm(config.n_embd, bias=config.bias, eps=config.layer_norm_eps)

    def forward(self, x, src_mask):                              # (B, T, C), mask (B, 1, 1, T) -> (B, T, C)
        x = self.ln_1(x + self.attn(x, attn_mask=src_mask))      # normalised after the residual sum, not before
        return self.ln_2(x + self.mlp(x))


class DecoderBlock(nn.Module):
    """A decoder block (seq2seq): causal self-attention, cross-attention to the encoder's memory, then the MLP."""

    def __init__(self, config):
        self.ln_1 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.self_attn = MultiHeadAttention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.cross_attn = MultiHeadAttention(config)
        self.ln_3 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.mlp = MLP(config)

    def forward(self, x, memory, src_mask):                      # x (B, Tt, C), memory (B, Ts, C) -> (B, Tt, C)
        x = x + self.self_attn(self.ln_1(x), is_causal=True)     # position t sees targets 0..t
        x = x + self.cross_attn(self.ln_2(x), memory, attn_mask=src_mask)  # and every real source token
        return x + self.mlp(self.ln_3(x))


def token_ids(ids, device, vocab_size, max_len, who, max_len_name="max_len", start=0):
    """ids (a Tensor, an array or nested lists) as an integer array (B, T) on `device`; a ValueError that names
    `who` when ids is not 2-D, when start + T (start: the position of ids[:, 0]) exceeds max_len, or when an id
    lies outside 0 .. vocab_size - 1. The input check of every model here (GPT, Seq2Seq, Bert)."""
    ids = backend.to_device(ids.data if isinstance(ids, Tensor) else np.asarray(ids), device)
    if ids.ndim != 2:
        raise ValueError(f"{who} ids must be (B, T), got shape {ids.shape}")
    if start + ids.shape[1] > max_len:
        raise ValueError(f"{who} ids: a sequence of length {start + ids.shape[1]} is longer than {max_len_name} "
                         f"{max_len}")
    if ids.size and (ids.min() < 0 or ids.max() >= vocab_size):
        raise ValueError(f"{who} ids must be in 0..{vocab_size - 1} (vocab_size {vocab_size}), got min {ids.min()} "
                         f"max {ids.max()}")
    return ids


def init_gpt2_weights(model, residual_std):
    """GPT-2's initialisation, drawn from the engine's generator: N(0, 0.02) for matrices and embeddings, zero
    biases, unit LayerNorm gains, and N(0, residual_std) for the c_proj matrices that write into the residual
    stream. With residual_std = 0.02/sqrt(k·n_layer), k terms per block, the stream's variance does not grow
    with depth. LayerNorm gains are found by their module's type, whatever its attribute is called; the residual
    projections by nanoGPT's name, c_proj. Inside nn.skip_init it does nothing (the weights are about to be read in)."""
    if nn.init.skipping_init():
        return
    layer_norm_gains = {id(m.weight) for m in model.modules() if isinstance(m, nn.LayerNorm)}
    for name, p in model.named_parameters():
        if name.endswith("c_proj.weight"):
            p.data[...] = rng.normals(rng.default_generator, p.data.size, p.dtype, 0.0, residual_std).reshape(
                p.shape)
        elif p.ndim == 2:
            p.data[...] = rng.normals(rng.default_generator, p.data.size, p.dtype, 0.0, 0.02).reshape(p.shape)
        elif id(p) in layer_norm_gains:
            p.data[...] = 1.0
        else:
            p.data[...] = 0.0
