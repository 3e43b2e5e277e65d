"""What every tokenizer here shares.

A tokenizer (char.CharTokenizer, bpe.BPETokenizer, wordpiece.WordPieceTokenizer) turns text into ids and back:
    encode(text) -> int64 ids (N,)      decode(ids) -> text      vocab_size: ids run over 0 .. vocab_size - 1
    to_dict() / from_dict(d): a JSON-friendly description, saved in checkpoints so sampling uses the same ids.
Every decode starts with the same check of its ids, and every from_dict with the same checks of its description,
below.
"""
import numpy as np


def checked_ids(ids, vocab_size, where):
    """`ids` (a list or array) as a 1-D int64 array (N,), or a ValueError naming `where`, the position and the id
    when an id is outside 0 .. vocab_size - 1 (every tokenizer's decode starts with this)."""
    ids = np.asarray(ids, dtype=np.int64)
    if ids.ndim != 1:
        raise ValueError(f"{where}: expected a 1-D sequence of ids, got shape {ids.shape}")
    bad = np.flatnonzero((ids < 0) | (ids >= vocab_size))
    if bad.size:
        raise ValueError(f"{where}: id {ids[bad[0]]} at position {bad[0]} is out of range [0, {vocab_size})")
    return ids


def check_type(d, kind, where):
    """Refuse a to_dict() description of another kind of tokenizer, naming `where` (every from_dict starts here)."""
    if d.get("type") != kind:
        raise ValueError(f"{where}: expected type {kind!r}, got {d.get('type')!r:.40}")


def string_list(d, key, where):
    """d[key], when it is a list of strings (tokens, characters); else a ValueError naming `where` and the key."""
    value = d.get(key)
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValueError(f"{where}: {key} must be a list of strings, got {value!r:.40}")
    return value
