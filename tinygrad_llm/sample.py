"""Sampling: text from a trained checkpoint.

    python -m tinygrad_llm sample --ckpt out-shakespeare-char/best.safetensors --prompt "ROMEO:" --seed 1
"""
import numpy as np

from .checkpoint import load_checkpoint, model_from_checkpoint
from .data import CharTokenizer


def sample(ckpt, prompt="\n", max_new_tokens=500, temperature=0.8, top_k=200, top_p=None, seed=1337,
           num_samples=1, use_cache=True, device="cpu"):
    """Generate `num_samples` continuations of `prompt`; returns them as strings (prompt included)."""
    checkpoint = load_checkpoint(ckpt)
    model = model_from_checkpoint(checkpoint).to(device).eval()
    tokenizer = CharTokenizer.from_dict(checkpoint.meta["tokenizer"])
    if not prompt:
        raise ValueError("sample: the prompt must hold at least one character")
    ids = tokenizer.encode(prompt)[None, :]                                  # (1, T)
    if ids.shape[1] > model.config.block_size:
        ids = ids[:, -model.config.block_size:]
    generator = np.random.default_rng(seed)
    texts = []
    for _ in range(num_samples):
        out = model.generate(ids, max_new_tokens, temperature=temperature, top_k=top_k, top_p=top_p,
                             generator=generator, use_cache=use_cache)      # (1, T + max_new_tokens)
        texts.append(tokenizer.decode(out[0]))
    return texts
