"""GPT: a decoder-only transformer, written with the engine's modules and fused ops.

Dimensions:  B batch, T sequence length (≤ block_size), C = n_embd, nh = n_head, hs = C / nh, V = vocab_size.

    idx (B, T) ─▶ wte + wpe ─▶ n_layer × Block ─▶ ln_f ─▶ lm_head (tied to wte) ─▶ logits (B, T, V)
    Block:  x = x + attn(ln_1(x));  x = x + mlp(ln_2(x))          (pre-LayerNorm, as GPT-2)

Parameter names and shapes are nanoGPT's, so GPT-2 checkpoints map onto this model.
"""
import math
from dataclasses import asdict, dataclass

import numpy as np

from . import backend, functional as F, nn, rng
from .ops import concat
from .tensor import Tensor, no_grad


@dataclass
class GPTConfig:
    vocab_size: int = 65
    block_size: int = 64
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    dropout: float = 0.0
    bias: bool = True

    def __post_init__(self):
        if self.n_embd % self.n_head:
            raise ValueError(f"GPTConfig: n_embd {self.n_embd} is not divisible by n_head {self.n_head}")
        for name in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd"):
            if getattr(self, name) < 1:
                raise ValueError(f"GPTConfig: {name} must be at least 1, got {getattr(self, name)}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"GPTConfig: dropout must be in [0, 1), got {self.dropout}")

    def to_dict(self):
        return asdict(self)


class CausalSelfAttention(nn.Module):
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
        q, k, v = self.c_attn(x).split(C, axis=2)                              # 3 × (B, T, C)
        q = q.reshape(B, T, self.n_head, hs).transpose(1, 2)                  # (B, nh, T, hs)
        k = k.reshape(B, T, self.n_head, hs).transpose(1, 2)                  # (B, nh, T, hs)
        v = v.reshape(B, T, self.n_head, hs).transpose(1, 2)                  # (B, nh, T, hs)
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
    def __init__(self, config):
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x):                                                     # (B, T, C) -> (B, T, C)
        return self.dropout(self.c_proj(F.gelu(self.c_fc(x), approximate="tanh")))


class Block(nn.Module):
    def __init__(self, config):
        self.ln_1 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.mlp = MLP(config)

    def forward(self, x, cache=None):                                         # (B, T, C) -> (B, T, C)
        x = x + self.attn(self.ln_1(x), cache)
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    def __init__(self, config):
        self.config = config
        self.transformer = nn.ModuleDict(
            wte=nn.Embedding(config.vocab_size, config.n_embd),
            wpe=nn.Embedding(config.block_size, config.n_embd),
            drop=nn.Dropout(config.dropout),
            h=nn.ModuleList(*[Block(config) for _ in range(config.n_layer)]),
            ln_f=nn.LayerNorm(config.n_embd, bias=config.bias),
        )
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.lm_head.weight = self.transformer.wte.weight  # tied: one matrix embeds tokens and scores them
        self._init_weights()

    def _init_weights(self):
        # each block adds two terms to the residual stream: attention and MLP
        init_gpt2_weights(self, residual_std=0.02 / math.sqrt(2 * self.config.n_layer))

    def num_params(self, non_embedding=True):
        """Parameter count; by default without the position embeddings (nanoGPT's convention: the token
        embedding is counted, since it is also the output layer)."""
        n = super().num_params()
        return n - self.transformer.wpe.weight.size if non_embedding else n

    @classmethod
    def from_pretrained(cls, path, dtype=np.float32):
        """A GPT holding a Hugging Face GPT-2 checkpoint (a directory with config.json and model.safetensors);
        see pretrained.load_pretrained."""
        from .pretrained import load_pretrained  # imported here: pretrained.py imports this module
        return load_pretrained(path, dtype)

    def save_pretrained(self, path):
        """Write this GPT to the directory `path` as transformers' GPT2LMHeadModel reads it; see
        pretrained.save_pretrained."""
        from .pretrained import save_pretrained
        save_pretrained(self, path)

    def hidden_states(self, idx, caches=None, start=0):
        """idx (B, T) integer token ids -> the final hidden states (B, T, C): the trunk's output after ln_f, which
        lm_head turns into logits (and a task head, such as finetune.GPTClassifier's, can read instead).
        `caches` and `start` as in forward."""
        device = self.transformer.wte.weight.device
        idx = token_ids(idx, device, self.config.vocab_size, self.config.block_size, "GPT: token", "block_size",
                        start)
        B, T = idx.shape
        tr = self.transformer
        positions = backend.module_for(device).arange(start, start + T)        # (T,)
        x = tr.drop(tr.wte(idx) + tr.wpe(positions))                           # (B, T, C)
        for i, block in enumerate(tr.h):
            x = block(x, None if caches is None else caches[i])                 # (B, T, C)
        return tr.ln_f(x)                                                       # (B, T, C)

    def forward(self, idx, targets=None, caches=None, start=0):
        """idx (B, T) integer token ids -> (logits, loss).
        With targets (B, T): logits (B, T, V) and the mean cross-entropy. Without: logits of the last position
        only, (B, 1, V), which is all generation needs. `caches` (one dict per layer) and `start` (the position
        of idx[:, 0]) are for generation with a KV cache."""
        x = self.hidden_states(idx, caches, start)                              # (B, T, C)
        if targets is None:
            return self.lm_head(x[:, -1:, :]), None                             # (B, 1, V)
        logits = self.lm_head(x)                                                # (B, T, V)
        B, T = x.shape[:2]
        targets = backend.to_device(targets.data if isinstance(targets, Tensor) else np.asarray(targets), x.device)
        if targets.shape != (B, T):
            raise ValueError(f"GPT: targets have shape {targets.shape}, expected {(B, T)} like idx")
        loss = F.cross_entropy(logits.reshape(B * T, -1), targets.reshape(B * T))
        return logits, loss

    def generate_tokens(self, idx, max_new_tokens, temperature=1.0, top_k=None, top_p=None, generator=None,
                        use_cache=True):
        """Sample max_new_tokens tokens after idx (B, T), yielding each step's tokens, (B,) int64, as soon as it
        is drawn (for streaming).

        temperature divides the logits (→ 0: greedy); top_k keeps the k most likely tokens; top_p keeps the
        smallest set whose probability reaches p. With use_cache, each position's keys and values are computed
        once; when the context would exceed block_size it is cropped to the last block_size tokens and the
        cache rebuilt, which gives exactly the tokens of uncached generation."""
        generator = rng.generator("cpu") if generator is None else generator
        idx = np.asarray(idx.data if isinstance(idx, Tensor) else idx)
        block = self.config.block_size
        caches, cached = None, 0  # cached = how many positions the caches hold
        for _ in range(max_new_tokens):
            with no_grad():  # inside the loop: a generator's caller may use autograd between steps
                if use_cache and caches is not None and cached < block:
                    logits, _ = self(idx[:, -1:], caches=caches, start=cached)
                    cached += 1
                else:
                    context = idx[:, -block:]
                    caches = [{} for _ in self.transformer.h] if use_cache else None
                    logits, _ = self(context, caches=caches)
                    cached = context.shape[1]
            next_id = sample_next(logits.numpy()[:, -1, :], temperature, top_k, top_p, generator)  # (B,)
            idx = np.concatenate([idx, next_id[:, None]], axis=1)
            yield next_id

    def generate(self, idx, max_new_tokens, **options):
        """idx (B, T) followed by max_new_tokens sampled tokens -> (B, T + max_new_tokens); options as
        generate_tokens."""
        idx = np.asarray(idx.data if isinstance(idx, Tensor) else idx)
        steps = [next_id[:, None] for next_id in self.generate_tokens(idx, max_new_tokens, **options)]
        return np.concatenate([idx] + steps, axis=1)


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
    with depth. Inside nn.skip_init it does nothing (the weights are about to be read in)."""
    if nn.skipping_init():
        return
    generator = rng.generator("cpu")
    for name, p in model.named_parameters():
        owner = name.rpartition(".")[0].rpartition(".")[2]  # the module holding p: "ln_1", "ln_f", "c_fc", ...
        if name.endswith("c_proj.weight"):
            p.data[...] = generator.normal(0.0, residual_std, p.shape)
        elif p.ndim == 2:
            p.data[...] = generator.normal(0.0, 0.02, p.shape)
        elif owner.startswith("ln_") and name.endswith(".weight"):
            p.data[...] = 1.0
        else:
            p.data[...] = 0.0


def sample_next(logits, temperature, top_k, top_p, generator):
    """One token id per row of logits (B, V), as int64 (B,)."""
    if top_k is not None and top_k < 1:
        raise ValueError(f"sample: top_k must be at least 1, got {top_k}")
    if top_p is not None and not 0 < top_p <= 1:
        raise ValueError(f"sample: top_p must be in (0, 1], got {top_p}")
    if temperature <= 0:
        return logits.argmax(axis=-1)
    logits = logits.astype(np.float64) / temperature
    if top_k is not None:
        kth = np.sort(logits, axis=-1)[:, -min(top_k, logits.shape[-1])][:, None]
        logits = np.where(logits < kth, -np.inf, logits)
    probs = np.exp(logits - logits.max(axis=-1, keepdims=True))
    probs /= probs.sum(axis=-1, keepdims=True)
    if top_p is not None:
        order = np.argsort(-probs, axis=-1)
        sorted_probs = np.take_along_axis(probs, order, axis=-1)
        # keep a token if the probability of the tokens before it has not reached top_p yet
        keep_sorted = np.cumsum(sorted_probs, axis=-1) - sorted_probs < top_p
        keep = np.zeros_like(keep_sorted)
        np.put_along_axis(keep, order, keep_sorted, axis=-1)
        probs = np.where(keep, probs, 0.0)
        probs /= probs.sum(axis=-1, keepdims=True)
    return np.array([generator.choice(len(p), p=p) for p in probs], dtype=np.int64)
