"""Drawing the next token from a model's logits: temperature, top-k and top-p (nucleus) sampling.
Shared by every language model here (GPT, CharLSTM)."""
import numpy as np

from ..engine import rng


def sample_next(logits, temperature, top_k, top_p, generator):
    """One token id per row of logits (B, V), as int64 (B,). generator: a np.random.Generator (its choice), or the
    engine's Generator (torch.multinomial's draw, so a seeded run samples as PyTorch would from these
    probabilities)."""
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
    if isinstance(generator, np.random.Generator):
        return np.array([generator.choice(len(p), p=p) for p in probs], dtype=np.int64)
    return rng.multinomial(rng.resolve(generator, "sample"), probs, 1, replacement=False)[:, 0]
