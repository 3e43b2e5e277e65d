"""GPT: a decoder-only transformer, written with the engine's modules and fused ops.

Dimensions:  B batch, T sequence length (≤ block_size), C = n_embd, nh = n_head, hs = C / nh, V = vocab_size.

    idx (B, T) ─▶ wte + wpe ─▶ n_layer × Block ─▶ ln_f ─▶ lm_head (tied to wte) ─▶ logits (B, T, V)
    Block:  x = x + attn(ln_1(x));  x = x + mlp(ln_2(x))          (pre-LayerNorm, as GPT-2; models/transformer.py)

Parameter names and shapes are nanoGPT's, so GPT-2 checkpoints map onto this model (recipes/pretrained.py reads and
writes Hugging Face GPT-2 directories).
"""
import math
from dataclasses import asdict, dataclass

import numpy as np

from .. import nn
from ..engine import backend, rng
from ..engine import functional as F
from ..engine.tensor import Tensor, no_grad
from .sampling import sample_next
from .transformer import Block, init_gpt2_weights, token_ids


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


class GPT(nn.Module):
    def __init__(self, config):
        self.config = config
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(config.vocab_size, config.n_embd),
            wpe=nn.Embedding(config.block_size, config.n_embd),
            drop=nn.Dropout(config.dropout),
            h=nn.ModuleList([Block(config) for _ in range(config.n_layer)]),
            ln_f=nn.LayerNorm(config.n_embd, bias=config.bias),
        ))
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
        return n - self.transformer.wpe.weight.numel() if non_embedding else n

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
        generator = rng.default_generator if generator is None else generator
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
