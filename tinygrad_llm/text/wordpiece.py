"""WordPiece, BERT's tokenizer: a text becomes words, each word the longest pieces of a fixed vocabulary.

    tokenizer = WordPieceTokenizer.load("path/to/model")     # its vocab.txt (one token per line, the id its line)
    ids = tokenizer.encode("Hello, world!")                  # [CLS] hello , world ! [SEP] as int64 (N,)
    batch = tokenizer.encode_batch(["A line.", "Another, longer line."], max_length=16)
    batch["input_ids"], batch["token_type_ids"], batch["attention_mask"]          # each int64 (B, T)
    tokenizer.decode(ids, skip_special_tokens=True)          # "hello , world !"

How a text becomes ids (what Hugging Face's BertTokenizer does, step by step):
 1. Special tokens written out in the text ("[SEP]", "[MASK]", ...) are cut out first and kept whole.
 2. Clean: NUL, U+FFFD and every other control or format character (Unicode category C*) is dropped; tab,
    newline, carriage return and any other Unicode whitespace become a space.
 3. CJK ideographs get a space on each side: Chinese is written without spaces, so each ideograph is a word.
 4. Uncased vocabularies only: accents are stripped (decompose with NFD, drop the combining marks: "é" -> "e"),
    then each character is lower-cased on its own (so a final "Σ" becomes "σ", not "ς").
 5. Words: split at whitespace, and every punctuation character (ASCII's, and Unicode's P* categories) is a word
    of its own: "don't!" -> "don", "'", "t", "!".
 6. WordPiece: each word is cut greedily, longest piece first: the longest prefix that is in the vocabulary,
    then the longest piece of the rest written with "##" (a continuation: "playing" -> "play", "##ing"). A word
    that cannot be cut all the way, or longer than MAX_WORD_CHARS characters, is one [UNK].
 7. A sequence is [CLS] A [SEP], a pair [CLS] A [SEP] B [SEP]; token type ids are 0 up to the first [SEP] and
    1 after it. Too long: tokens are dropped from the end of the longer of A and B until it fits, or until both
    are half the room (then the shorter, A on a tie, gets the smaller half). A batch is right-padded with
    [PAD]; the attention mask is 1 at real tokens, 0 at pads.
"""
import functools
import pathlib
import re
import unicodedata

import numpy as np

from .tokenizer import check_type, checked_ids, string_list

VOCAB_FILENAME = "vocab.txt"
SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
MAX_WORD_CHARS = 100   # BERT's limit: a longer word is [UNK] (greedy matching costs the square of its length)
CONTINUATION = "##"
# CJK Unified Ideographs and their extensions, and the compatibility ideographs (not Japanese kana or Hangul,
# which are written with spaces or in words of several characters)
CJK_RANGES = ((0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F), (0x2B740, 0x2B81F),
              (0x2B820, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F))
WORD_CACHE_SIZE = 2 ** 16  # words whose pieces encode keeps: the most recently used


@functools.cache
def char_kind(char):
    """What cleaning and splitting do with one character: "drop", "space", "cjk", "punct" or "keep"."""
    if char in "\t\n\r":
        return "space"
    if char == "\ufffd" or unicodedata.category(char).startswith("C"):  # NUL is category Cc
        return "drop"
    if char.isspace():
        return "space"
    if any(low <= ord(char) <= high for low, high in CJK_RANGES):
        return "cjk"
    code = ord(char)
    if 33 <= code <= 47 or 58 <= code <= 64 or 91 <= code <= 96 or 123 <= code <= 126 or \
            unicodedata.category(char).startswith("P"):  # ASCII counts "$", "+", "^", "`" ... as punctuation too
        return "punct"
    return "keep"


def strip_accents(text):
    """"Café" -> "Cafe": decompose each character (NFD), then drop the combining marks (category Mn)."""
    return "".join(c for c in unicodedata.normalize("NFD", text) if unicodedata.category(c) != "Mn")


class WordPieceTokenizer:
    """BERT's WordPiece over a vocabulary (a list of tokens, id = position), uncased (lower-casing, accents
    stripped) or cased."""

    def __init__(self, tokens, lowercase=True):
        self.tokens = list(tokens)                                   # id -> token
        self.ids = {token: i for i, token in enumerate(self.tokens)}  # token -> id
        if len(self.ids) != len(self.tokens):
            seen = set()
            for token in self.tokens:
                if token in seen:
                    raise ValueError(f"WordPieceTokenizer: the token {token!r:.40} is in the vocabulary twice")
                seen.add(token)
        missing = [t for t in SPECIAL_TOKENS if t not in self.ids]
        if missing:
            raise ValueError(f"WordPieceTokenizer: the vocabulary lacks the special tokens {missing}")
        self.lowercase = lowercase
        self.pad_id, self.unk_id, self.cls_id, self.sep_id, self.mask_id = (self.ids[t] for t in SPECIAL_TOKENS)
        self.special_ids = {self.ids[t] for t in SPECIAL_TOKENS}
        self._special_split = re.compile("(" + "|".join(map(re.escape, SPECIAL_TOKENS)) + ")")
        # lru_cache on a bound method: each tokenizer its own cache, dropped with it
        self._word_ids = functools.lru_cache(maxsize=WORD_CACHE_SIZE)(self._word_pieces)

    @property
    def vocab_size(self):
        """How many ids there are: ids run from 0 to vocab_size - 1."""
        return len(self.tokens)

    # ------------------------------------------------------------ text -> ids

    def words(self, text):
        """Steps 2-5 on a text without special tokens: its words, as strings."""
        kept = []
        for char in text:
            kind = char_kind(char)
            if kind == "space":
                kept.append(" ")
            elif kind == "cjk":
                kept.append(f" {char} ")
            elif kind != "drop":
                kept.append(char)
        text = "".join(kept)
        if self.lowercase:
            text = "".join(c.lower() for c in strip_accents(text))  # per character, as BERT's (no final sigma)
        words = []
        for chunk in text.split():
            word = ""
            for char in chunk:
                if char_kind(char) == "punct":
                    words += [word, char] if word else [char]
                    word = ""
                else:
                    word += char
            if word:
                words.append(word)
        return words

    def _word_pieces(self, word):
        """Step 6: a word's ids (a tuple), longest pieces first, or (unk_id,) when it cannot be cut."""
        if len(word) > MAX_WORD_CHARS:
            return (self.unk_id,)
        pieces, start = [], 0
        while start < len(word):
            for end in range(len(word), start, -1):
                piece = word[start:end] if start == 0 else CONTINUATION + word[start:end]
                if piece in self.ids:
                    pieces.append(self.ids[piece])
                    start = end
                    break
            else:  # no piece of the vocabulary starts here: the whole word is unknown
                return (self.unk_id,)
        return tuple(pieces)

    def tokenize(self, text):
        """The ids of `text` without [CLS] and [SEP] (a list of ints); special tokens written in it stay whole."""
        ids = []
        for i, part in enumerate(self._special_split.split(text)):
            if i % 2:                                      # the split's odd parts are the special tokens themselves
                ids.append(self.ids[part])
            else:
                for word in self.words(part):
                    ids += self._word_ids(word)
        return ids

    def encode(self, text, pair=None, max_length=None):
        """[CLS] text [SEP] (and pair [SEP]) as int64 ids (N,), truncated to max_length tokens when given."""
        return np.array(self.encode_pair(text, pair, max_length)[0], dtype=np.int64)

    def encode_pair(self, text, pair=None, max_length=None):
        """(ids, token type ids), two lists: [CLS] A [SEP] with types 0, then B [SEP] with types 1 when `pair` is
        given; A and B truncated (step 7) so that the whole is at most max_length tokens."""
        a = self.tokenize(text)
        b = None if pair is None else self.tokenize(pair)
        if max_length is not None:
            n_special = 2 if b is None else 3
            if max_length < n_special:
                raise ValueError(f"WordPieceTokenizer: max_length {max_length} leaves no room for the "
                                 f"{n_special} special tokens")
            a, b = truncate(a, b, max_length - n_special)
        ids = [self.cls_id, *a, self.sep_id]
        types = [0] * len(ids)
        if b is not None:
            ids += [*b, self.sep_id]
            types += [1] * (len(b) + 1)
        return ids, types

    def encode_batch(self, texts, pairs=None, max_length=None, padding="longest"):
        """A batch, as BertTokenizer(texts, pairs, truncation=True, max_length=..., padding=...) returns it:
        {"input_ids", "token_type_ids", "attention_mask"}, each int64 (B, T). padding "longest" pads to the
        longest row, "max_length" to max_length; pads are [PAD] with type 0 and mask 0."""
        if padding not in ("longest", "max_length") or (padding == "max_length" and max_length is None):
            raise ValueError(f"WordPieceTokenizer.encode_batch: padding must be 'longest', or 'max_length' with a "
                             f"max_length, got {padding!r}")
        if pairs is not None and len(pairs) != len(texts):
            raise ValueError(f"WordPieceTokenizer.encode_batch: {len(texts)} texts but {len(pairs)} pairs")
        rows = [self.encode_pair(text, None if pairs is None else pairs[i], max_length)
                for i, text in enumerate(texts)]
        T = max_length if padding == "max_length" else max((len(ids) for ids, _ in rows), default=0)
        batch = {name: np.zeros((len(rows), T), dtype=np.int64)
                 for name in ("input_ids", "token_type_ids", "attention_mask")}
        batch["input_ids"][:] = self.pad_id
        for row, (ids, types) in enumerate(rows):
            batch["input_ids"][row, :len(ids)] = ids
            batch["token_type_ids"][row, :len(ids)] = types
            batch["attention_mask"][row, :len(ids)] = 1
        return batch

    # ------------------------------------------------------------ ids -> text

    def decode(self, ids, skip_special_tokens=False):
        """The tokens of `ids` (N,) joined by spaces, each "##" continuation glued to the piece before it:
        "hello , world !" (the words that encode saw, lower-cased when uncased: BERT cannot restore spacing)."""
        ids = checked_ids(ids, self.vocab_size, "WordPieceTokenizer.decode")  # (N,)
        text = ""
        for i in ids.tolist():
            if skip_special_tokens and i in self.special_ids:
                continue
            token = self.tokens[i]
            text += token[len(CONTINUATION):] if token.startswith(CONTINUATION) and text else " " + token
        return text.lstrip(" ")

    # ------------------------------------------------------------ files and checkpoints

    def save(self, directory):
        """Write directory/vocab.txt, one token per line in id order (BERT's own format); returns its path."""
        path = pathlib.Path(directory) / VOCAB_FILENAME
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(token + "\n" for token in self.tokens), encoding="utf-8")
        return path

    @classmethod
    def load(cls, path, lowercase=True):
        """The tokenizer of a vocab.txt, or of the directory holding one. Whether the vocabulary is uncased is not
        in vocab.txt: say it with `lowercase` (a model's tokenizer_config.json has it as do_lower_case)."""
        path = pathlib.Path(path)
        path = path / VOCAB_FILENAME if path.is_dir() else path
        try:
            text = path.read_text(encoding="utf-8")
        except (FileNotFoundError, UnicodeDecodeError) as err:
            raise ValueError(f"{path}: cannot read a WordPiece vocabulary ({err})") from None
        tokens = text.split("\n")
        if tokens and tokens[-1] == "":  # the newline after the last token
            tokens.pop()
        try:
            return cls(tokens, lowercase=lowercase)
        except ValueError as err:
            raise ValueError(f"{path}: {err}") from None

    def to_dict(self):
        """A JSON-friendly description, saved with checkpoints so the same ids are read the same way."""
        return {"type": "wordpiece", "tokens": list(self.tokens), "lowercase": self.lowercase}

    @classmethod
    def from_dict(cls, d):
        """The tokenizer that `to_dict` described."""
        check_type(d, "wordpiece", "WordPieceTokenizer.from_dict")
        tokens, lowercase = string_list(d, "tokens", "WordPieceTokenizer.from_dict"), d.get("lowercase")
        if not isinstance(lowercase, bool):
            raise ValueError(f"WordPieceTokenizer.from_dict: lowercase must be true or false, got {lowercase!r:.40}")
        return cls(tokens, lowercase=lowercase)


def truncate(a, b, budget):
    """Step 7: (a, b) with at most `budget` tokens in all (b may be None: then a is cut to budget). Only the
    longer list loses tokens, down to the shorter one's length; past that, the shorter one (a on a tie) keeps
    budget // 2 and the longer one the rest, as BertTokenizer's "longest_first" leaves them."""
    if b is None:
        return a[:budget], None
    if len(a) + len(b) <= budget:
        return a, b
    a_is_shorter = len(a) <= len(b)
    n_short = min(len(a) if a_is_shorter else len(b), budget // 2)
    n_a, n_b = (n_short, budget - n_short) if a_is_shorter else (budget - n_short, n_short)
    return a[:n_a], b[:n_b]
