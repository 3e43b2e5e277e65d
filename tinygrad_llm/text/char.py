"""The character tokenizer: one id per distinct character of a text (65 for Tiny Shakespeare).

    tokenizer = CharTokenizer.from_text(text)
    ids = tokenizer.encode("To be")      # int64 (5,)
    tokenizer.decode(ids)                # "To be"
"""
import numpy as np

from .tokenizer import check_type, checked_ids, string_list


class CharTokenizer:
    """Maps each character of a fixed vocabulary to an id (its index in the sorted vocabulary) and back."""

    def __init__(self, chars):
        """`chars`: the vocabulary, one distinct character per id, in id order."""
        self.chars = list(chars)  # id -> character
        self.ids = {c: i for i, c in enumerate(self.chars)}  # character -> id
        if len(self.ids) != len(self.chars) or any(len(c) != 1 for c in self.chars):
            raise ValueError("CharTokenizer: the vocabulary must be distinct single characters")

    @classmethod
    def from_text(cls, text):
        """The tokenizer whose vocabulary is every character that occurs in `text`, sorted."""
        return cls(sorted(set(text)))

    @property
    def vocab_size(self):
        """How many ids there are: ids run from 0 to vocab_size - 1."""
        return len(self.chars)

    def encode(self, text):
        """The ids of the characters of `text`, an int64 array of shape (len(text),)."""
        try:
            return np.array([self.ids[c] for c in text], dtype=np.int64)  # (N,)
        except KeyError as err:
            char = err.args[0]
            raise ValueError(f"CharTokenizer.encode: character {char!r} at position {text.index(char)} is not "
                             f"in the vocabulary of {self.vocab_size} characters") from None

    def decode(self, ids):
        """The text spelled by `ids`, a 1-D sequence of ints (a list or an array of shape (N,))."""
        ids = checked_ids(ids, self.vocab_size, "CharTokenizer.decode")  # (N,)
        return "".join(self.chars[i] for i in ids.tolist())

    def to_dict(self):
        """A JSON-friendly description, saved with every checkpoint so sampling uses the same ids."""
        return {"type": "char", "chars": list(self.chars)}

    @classmethod
    def from_dict(cls, d):
        """The tokenizer that `to_dict` described."""
        check_type(d, "char", "CharTokenizer.from_dict")
        return cls(string_list(d, "chars", "CharTokenizer.from_dict"))
