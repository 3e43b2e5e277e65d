"""Sampling: text from a trained checkpoint, streamed as it is generated.

    python -m tinygrad_llm sample --ckpt out-shakespeare-char/best.safetensors --prompt "ROMEO:" --seed 1
"""
import math
from pathlib import Path

import numpy as np

from ..text.bpe import BPETokenizer
from .checkpoint import load_lm
from .config import ConfigError
from .pretrained import load_pretrained


def load_for_sampling(path, allow_nonfinite=False):
    """(model, tokenizer) from one of our checkpoints (a .safetensors file; NaN or inf weights refused unless
    `allow_nonfinite`), or from a Hugging Face GPT-2 directory (config.json, model.safetensors, vocab.json,
    merges.txt), such as GPT-2's own weights."""
    if not Path(path).is_dir():
        return load_lm(path, allow_nonfinite)
    model, tokenizer = load_pretrained(path), BPETokenizer.load(path)
    if tokenizer.vocab_size != model.config.vocab_size:
        raise ValueError(f"{path}: vocab.json holds {tokenizer.vocab_size} tokens, config.json's vocab_size is "
                         f"{model.config.vocab_size}: the tokenizer is not this model's")
    return model, tokenizer


def sample(ckpt, prompt="\n", max_new_tokens=500, temperature=0.8, top_k=200, top_p=None, seed=1337,
           num_samples=1, use_cache=True, device="cpu", stop=(), on_text=None, allow_nonfinite=False):
    """Generate `num_samples` continuations of `prompt` from `ckpt` (see load_for_sampling); returns them as
    strings (prompt included).

    stop: strings that end a sample; the text stops just before the first one. on_text(i, piece): called with the
    prompt, then each new piece of sample i as soon as it is known (streaming); text that might still become a stop
    string, or that ends inside a multi-byte character, is held back until the next token decides."""
    _check_settings(prompt, max_new_tokens, temperature, top_k, top_p, num_samples, stop)
    model, tokenizer = load_for_sampling(ckpt, allow_nonfinite)
    model.to(device).eval()
    ids = tokenizer.encode(prompt)[None, -model.config.block_size:]          # (1, T): the model sees at most a block
    generator = np.random.default_rng(seed)
    texts = []
    emit = (lambda i, piece: None) if on_text is None else on_text
    for i in range(num_samples):
        emit(i, prompt)
        generated, emitted, text = [], 0, ""
        for next_id in model.generate_tokens(ids, max_new_tokens, temperature=temperature, top_k=top_k,
                                             top_p=top_p, generator=generator, use_cache=use_cache):
            generated.append(int(next_id[0]))
            text = tokenizer.decode(generated)
            cut = min((text.find(s) for s in stop if s in text), default=-1)
            if cut >= 0:
                text = text[:cut]
            ready = len(text) if cut >= 0 else _settled_length(text, stop)
            if ready > emitted:
                emit(i, text[emitted:ready])
                emitted = ready
            if cut >= 0:
                break
        if len(text) > emitted:
            emit(i, text[emitted:])
        texts.append(prompt + text)
    return texts


def _check_settings(prompt, max_new_tokens, temperature, top_k, top_p, num_samples, stop):
    """Refuse settings that mean nothing, before the checkpoint is read; the ConfigError names the setting."""
    def refuse(template):
        raise ConfigError("sample", template)
    if not prompt:
        refuse("{prompt} must hold at least one character")
    if any(not s for s in stop):
        refuse("{stop}: a stop string must not be empty")
    if not (math.isfinite(temperature) and temperature >= 0):  # NaN fails every comparison: refused too
        refuse(f"{{temperature}} must be a finite number at least 0 (0 always takes the likeliest token), got "
               f"{temperature}")
    if top_k is not None and top_k < 1:
        refuse(f"{{top_k}} must be at least 1, got {top_k}")
    if top_p is not None and not 0 < top_p <= 1:
        refuse(f"{{top_p}} must be in (0, 1], got {top_p}")
    if max_new_tokens < 0:
        refuse(f"{{max_new_tokens}} must not be negative, got {max_new_tokens}")
    if num_samples < 1:
        refuse(f"{{num_samples}} must be at least 1, got {num_samples}")


def _settled_length(text, stop):
    """How much of `text` can be shown for sure: all of it, less a tail that could be the start of a stop string
    or an incomplete UTF-8 character (decoded as U+FFFD until its last byte arrives)."""
    held = max((k for s in stop for k in range(1, len(s)) if text.endswith(s[:k])), default=0)
    if text.endswith("\ufffd"):
        held = max(held, 1)
    return len(text) - held
