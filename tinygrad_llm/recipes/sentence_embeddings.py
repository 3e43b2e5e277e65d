"""Sentence embeddings as sentence-transformers computes them: a BERT's hidden states, pooled, normalised.

    encoder = load_sentence_encoder("path/to/all-MiniLM-L6-v2")
    vectors = encoder.embed(["A line.", "Another one."])          # float (N, C), unit rows for this model
    float(vectors[0] @ vectors[1])                                 # their cosine similarity

A sentence-transformers directory is a Hugging Face BERT (config.json, model.safetensors, vocab.txt) and a list of
modules (modules.json): the Transformer, then Pooling (1_Pooling/config.json says how: the mean over the real
tokens, or the [CLS] token's state), then optionally Normalize (each vector scaled to length 1, so a dot product is
a cosine). sentence_bert_config.json gives max_seq_length: longer sentences are truncated to it.
"""
import json
import pathlib

import numpy as np

from ..engine.tensor import no_grad
from ..models.hf_bert import l2_normalize, mean_pool
from .bert_pretrained import load_bert, load_bert_tokenizer
from .pretrained import read_json

MODULES = "modules.json"
ST_CONFIG = "sentence_bert_config.json"
TRANSFORMER = "sentence_transformers.models.Transformer"
POOLING = "sentence_transformers.models.Pooling"
NORMALIZE = "sentence_transformers.models.Normalize"
POOLING_MODES = {"pooling_mode_mean_tokens": "mean", "pooling_mode_cls_token": "cls"}  # the ones this file computes
PROGRESS_MIN_BATCHES = 8  # a progress bar by default only when there are at least this many batches


class SentenceEncoder:
    """An HFBert, its tokenizer, and how its states become one vector per sentence."""

    def __init__(self, model, tokenizer, pooling="mean", normalize=True, max_seq_length=None):
        if pooling not in POOLING_MODES.values():
            raise ValueError(f"SentenceEncoder: pooling must be one of {sorted(POOLING_MODES.values())}, "
                             f"got {pooling!r}")
        self.model, self.tokenizer = model, tokenizer
        self.pooling, self.normalize = pooling, normalize
        self.max_seq_length = model.config.max_len if max_seq_length is None else min(max_seq_length,
                                                                                       model.config.max_len)

    def pool(self, h, attention_mask):
        """h (B, T, C) and the mask (B, T) -> one Tensor vector per row (B, C), normalised when asked."""
        pooled = mean_pool(h, attention_mask) if self.pooling == "mean" else h[:, 0, :]      # (B, C)
        return l2_normalize(pooled) if self.normalize else pooled

    def forward(self, batch):
        """A batch from tokenizer.encode_batch -> the sentences' vectors, a Tensor (B, C) (with gradients, for
        training)."""
        h = self.model(batch["input_ids"], batch["token_type_ids"], batch["attention_mask"])  # (B, T, C)
        return self.pool(h, batch["attention_mask"])

    @no_grad()
    def embed(self, sentences, batch_size=32, progress=None):
        """The vectors of `sentences` (a list of strings), a NumPy array (N, C) in their order. Sentences are
        batched by length (fewer pads to compute; a sentence's vector does not depend on its batch). progress:
        a tqdm bar; None shows one when there are at least PROGRESS_MIN_BATCHES batches."""
        self.model.eval()
        order = sorted(range(len(sentences)), key=lambda i: len(sentences[i]))
        starts = range(0, len(sentences), batch_size)
        if progress is None:
            progress = len(starts) >= PROGRESS_MIN_BATCHES
        if progress:
            from tqdm import tqdm  # imported here: only a long list needs it
            starts = tqdm(starts, desc="embedding", unit="batch")
        vectors = np.zeros((len(sentences), self.model.config.n_embd), dtype=self.model.wte.weight.dtype)  # (N, C)
        for start in starts:
            rows = order[start:start + batch_size]
            batch = self.tokenizer.encode_batch([sentences[i] for i in rows], max_length=self.max_seq_length)
            vectors[rows] = self.forward(batch).numpy()                                              # (B, C)
        return vectors


def load_sentence_encoder(path, dtype=np.float32):
    """The SentenceEncoder of a sentence-transformers directory (its modules.json and pooling config checked:
    a Transformer at the top of the directory, then mean or [CLS] pooling, then optionally Normalize)."""
    directory = pathlib.Path(path)
    modules = read_json_list(directory / MODULES)
    types = [m.get("type") if isinstance(m, dict) else None for m in modules]
    if types not in ([TRANSFORMER, POOLING], [TRANSFORMER, POOLING, NORMALIZE]) or modules[0].get("path") != "":
        raise ValueError(f"{directory / MODULES}: expected a Transformer (path \"\"), Pooling and optionally "
                         f"Normalize, got {types}")
    pooling_file = directory / modules[1].get("path", "") / "config.json"
    settings = read_json(pooling_file)
    chosen = [mode for key, mode in POOLING_MODES.items() if settings.get(key)]
    others = [key for key, value in settings.items() if key.startswith("pooling_mode_") and value
              and key not in POOLING_MODES]
    if len(chosen) != 1 or others:
        raise ValueError(f"{pooling_file}: exactly one of {sorted(POOLING_MODES)} must be true, and no other "
                         f"pooling_mode_ (got {chosen + others})")
    max_seq_length = read_json(directory / ST_CONFIG).get("max_seq_length") if (directory / ST_CONFIG).is_file() \
        else None
    if max_seq_length is not None and (type(max_seq_length) is not int or max_seq_length < 2):
        raise ValueError(f"{directory / ST_CONFIG}: max_seq_length must be an integer of at least 2, got "
                         f"{max_seq_length!r:.40}")
    return SentenceEncoder(load_bert(directory, dtype), load_bert_tokenizer(directory), pooling=chosen[0],
                           normalize=len(modules) == 3, max_seq_length=max_seq_length)


def read_json_list(path):
    """The JSON list in the file at `path` (modules.json is a list, not an object), or a ValueError naming it."""
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, UnicodeDecodeError, ValueError) as err:
        raise ValueError(f"{path}: cannot read a JSON list ({err})") from None
    if not isinstance(value, list):
        raise ValueError(f"{path}: expected a JSON list, got {type(value).__name__}")
    return value
