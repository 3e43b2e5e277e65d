"""Byte-level BPE, as GPT-2's: learn a vocabulary from a text, encode text into ids, decode ids back into text.

    tokenizer = BPETokenizer.train(text, vocab_size=4096)   # 256 bytes + 3839 merges + "<|endoftext|>"
    ids = tokenizer.encode("To be, or not to be")            # np.int64 array of shape (N,)
    tokenizer.decode(ids)                                    # "To be, or not to be"
    tokenizer.save("tok")                                    # tok/vocab.json, tok/merges.txt in GPT-2's format
    tokenizer = BPETokenizer.load("tok")                     # also loads GPT-2's own files

How a text becomes ids:
 1. Pre-split: GPT-2's regular expression (GPT2_SPLIT_PATTERN) cuts the text into chunks: a word with the space
    before it (" be"), a number, a run of punctuation, a run of whitespace. No token ever crosses a chunk boundary.
 2. Bytes: each chunk is written as UTF-8 and each byte is a token, so every text can be encoded: the 256 byte
    values are always in the vocabulary.
 3. Merges: an ordered list of pairs of tokens; its position is a merge's rank. Inside each chunk, the adjacent
    pair of lowest rank is replaced by the token it makes, everywhere in the chunk, again and again until no
    adjacent pair is in the list.
Training (BPETokenizer.train) learns the merges: it repeatedly replaces the most frequent adjacent pair of tokens
in the text by a new token, until the vocabulary has `vocab_size` tokens.

Files: vocab.json maps every token to its id; merges.txt lists the merges in rank order, one "left right" pair per
line after a "#version: 0.2" header. A token is written as GPT-2 writes it: each byte becomes one printable
character (bytes_to_unicode: a space is "Ġ", a newline "Ċ", printable ASCII stays itself), so transformers'
GPT2Tokenizer loads our files, and we load GPT-2's (its encoder.json is a vocab.json, its vocab.bpe a merges.txt).

Special tokens ("<|endoftext|>") are whole tokens that no merge makes; they separate documents. None may be two
tokens of the vocabulary joined: that is what a merge lost from a truncated merges.txt leaves, and it is refused.
By default `encode` treats their text as ordinary text (as GPT-2's own encoder and tiktoken's encode_ordinary do),
so a text cannot smuggle in a document boundary; `encode(text, allowed_special="all")`, or a set of their names,
turns them into their single ids, which is what transformers' GPT2Tokenizer does by default.
"""
import functools
import heapq
import json
import pathlib
import re
import time
from collections import Counter, defaultdict

import numpy as np
import regex  # the standard `re` has no \p{L} (any letter) or \p{N} (any digit)

from .tokenizer import check_type, checked_ids, string_list

GPT2_SPLIT_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
GPT2_SPLIT = regex.compile(GPT2_SPLIT_PATTERN)
VOCAB_FILENAME = "vocab.json"
MERGES_FILENAME = "merges.txt"
MERGES_HEADER = "#version: 0.2"
CHUNK_CACHE_SIZE = 2 ** 16  # chunks whose ids encode keeps: the most recently used (a few MB at most)


def bytes_to_unicode():
    """GPT-2's printable character for each byte value, a list of 256 one-character strings.

    Printable bytes ('!'..'~', '¡'..'¬', '®'..'ÿ') stand for themselves; the others (control characters, space,
    0x7F-0xA0, 0xAD) take the characters from chr(256) on, in byte order: byte 0 is 'Ā', space (32) is 'Ġ',
    newline (10) is 'Ċ'. Every token then reads as a string without spaces or control characters, which is how
    vocab.json and merges.txt can hold any bytes."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    chars = {b: chr(b) for b in printable}
    n_moved = 0
    for b in range(256):
        if b not in chars:
            chars[b] = chr(256 + n_moved)
            n_moved += 1
    return [chars[b] for b in range(256)]


BYTE_TO_CHAR = bytes_to_unicode()
CHAR_TO_BYTE = {c: b for b, c in enumerate(BYTE_TO_CHAR)}


def token_to_string(token):
    """A token's bytes written as GPT-2 writes them in vocab.json: b" the" -> "Ġthe"."""
    return "".join(BYTE_TO_CHAR[b] for b in token)


def string_to_token(string):
    """The bytes a GPT-2 token string stands for: "Ġthe" -> b" the" (each character must be one of BYTE_TO_CHAR)."""
    return bytes(CHAR_TO_BYTE[c] for c in string)


def merge_pair(ids, pair, new_id):
    """`ids` (a list) with each adjacent occurrence of `pair` replaced by `new_id`, scanning left to right as
    GPT-2 does: [a, a, a] with the pair (a, a) gives [aa, a]."""
    first, second = pair
    merged = []
    i = 0
    while i < len(ids):
        if ids[i] == first and i + 1 < len(ids) and ids[i + 1] == second:
            merged.append(new_id)
            i += 2
        else:
            merged.append(ids[i])
            i += 1
    return merged


class BPETokenizer:
    """A byte-level BPE tokenizer: a vocabulary (token string -> id) and merges (pairs of token strings, in rank
    order), both in GPT-2's form (see the module's docstring)."""

    def __init__(self, vocab, merges):
        """`vocab`: dict token string -> id, the ids being 0..N-1 (vocab.json's content); `merges`: a list of
        (left, right) token strings in rank order (merges.txt's lines). The vocabulary must hold the 256 byte
        tokens and the result of every merge; its other tokens (neither a byte nor made by a merge, like
        "<|endoftext|>") are the special tokens, none of them two tokens of the vocabulary joined (check_unmade)."""
        self.tokens = sorted(vocab, key=vocab.get)  # id -> token string
        if sorted(vocab.values()) != list(range(len(vocab))):
            missing = sorted(set(range(len(vocab))) - set(vocab.values()))
            raise ValueError(f"BPETokenizer: the vocabulary's ids must be 0..{len(vocab) - 1}, each once; "
                             f"id {missing[0]} is missing")
        for b, char in enumerate(BYTE_TO_CHAR):
            if char not in vocab:
                raise ValueError(f"BPETokenizer: the vocabulary lacks the token {char!r} of byte {b}: a byte-level "
                                 f"BPE needs all 256 bytes")
        ordinary = set(BYTE_TO_CHAR) | {left + right for left, right in merges}  # what BPE can make
        self.merges = [tuple(pair) for pair in merges]
        self._ranks, self._merged_ids = {}, {}  # (left id, right id) -> the merge's rank, the id it makes
        for rank, (left, right) in enumerate(self.merges):
            check_merge(left, right, vocab, ordinary, f"merge {rank} ({left!r}, {right!r})")
            self._ranks[vocab[left], vocab[right]] = rank
            self._merged_ids[vocab[left], vocab[right]] = vocab[left + right]
        self.special_tokens = {token: i for token, i in vocab.items() if token not in ordinary}  # name -> id
        for token in self.special_tokens:
            check_unmade(token, vocab)
        # id -> bytes: an ordinary token's GPT-2 string stands for bytes; a special token is its text in UTF-8
        self._bytes = [token.encode("utf-8") if token in self.special_tokens else string_to_token(token)
                       for token in self.tokens]
        self._byte_ids = [vocab[char] for char in BYTE_TO_CHAR]  # byte value -> id
        # chunk of text -> its ids: most chunks (words) recur, and the bound keeps memory flat on any text
        self._encode_chunk = functools.lru_cache(maxsize=CHUNK_CACHE_SIZE)(self._merge_chunk)

    @property
    def vocab_size(self):
        """How many ids there are, special tokens included: ids run from 0 to vocab_size - 1."""
        return len(self.tokens)

    @property
    def vocab(self):
        """The vocabulary as vocab.json holds it: dict token string -> id, in id order."""
        return {token: i for i, token in enumerate(self.tokens)}

    # ---- training ----

    @classmethod
    def train(cls, text, vocab_size, special_tokens=("<|endoftext|>",), verbose=False):
        """Learn `vocab_size - 256 - len(special_tokens)` merges from `text` (a str) and return the tokenizer.

        Ids: 0..255 are the bytes (id = byte value), then the merged tokens in the order they were learned, then
        the special tokens. Where special tokens occur in `text` it is cut there, and they are not learned from.
        Each step merges the most frequent adjacent pair (counted over all chunks, each weighted by how often it
        occurs); ties go to the pair whose tokens' bytes sort first, (left bytes, right bytes) compared as tuples,
        so the same text always gives the same merges. Raises ValueError if `vocab_size` is below 256 + the
        special tokens, or if the text runs out of pairs before the vocabulary is full.
        `verbose`: print progress (every tenth of the merges)."""
        special_tokens = list(special_tokens)
        if len(set(special_tokens)) != len(special_tokens) or not all(special_tokens):
            raise ValueError(f"BPETokenizer.train: special tokens must be distinct non-empty strings, got "
                             f"{special_tokens}")
        if vocab_size < 256 + len(special_tokens):
            raise ValueError(f"BPETokenizer.train: vocab_size={vocab_size} is too small: it must hold the 256 "
                             f"bytes and the {len(special_tokens)} special tokens ({256 + len(special_tokens)})")
        start = time.perf_counter()
        chunk_counts = count_chunks(text, special_tokens)
        if verbose:
            print(f"BPE: {sum(chunk_counts.values())} chunks, {len(chunk_counts)} distinct, counted in "
                  f"{time.perf_counter() - start:.2f} s", flush=True)
        tokens, merges = learn_merges(chunk_counts, vocab_size - len(special_tokens), verbose)
        vocab = {token_to_string(token): i for i, token in enumerate(tokens)}
        for name in special_tokens:
            if name in vocab:
                raise ValueError(f"BPETokenizer.train: the special token {name!r} is also an ordinary token that "
                                 f"was learned; choose special tokens that cannot occur in text, like '<|name|>'")
            vocab[name] = len(vocab)
        if verbose:
            print(f"BPE: {len(merges)} merges learned in {time.perf_counter() - start:.2f} s", flush=True)
        return cls(vocab, [(token_to_string(tokens[a]), token_to_string(tokens[b])) for a, b in merges])

    # ---- encoding and decoding ----

    def encode(self, text, allowed_special=()):
        """The ids of `text`, an np.int64 array of shape (N,).

        `allowed_special`: which special tokens, written in `text`, become their single id: "all", or a set of
        their names. The default, none, encodes their text like any other text."""
        if allowed_special == "all":
            allowed_special = set(self.special_tokens)
        elif isinstance(allowed_special, str):
            raise ValueError(f"BPETokenizer.encode: allowed_special must be 'all' or a set of special tokens, got "
                             f"the string {allowed_special!r}")
        unknown = set(allowed_special) - set(self.special_tokens)
        if unknown:
            raise ValueError(f"BPETokenizer.encode: {sorted(unknown)} are not special tokens of this tokenizer; "
                             f"its special tokens are {sorted(self.special_tokens)}")
        ids = []
        for piece, is_special in split_on_special_tokens(text, allowed_special):
            if is_special:
                ids.append(self.special_tokens[piece])
            else:
                for chunk in GPT2_SPLIT.findall(piece):
                    ids.extend(self._encode_chunk(chunk))
        return np.array(ids, dtype=np.int64)  # (N,)

    def _merge_chunk(self, chunk):
        """The ids of one pre-split chunk: its bytes, then merges by lowest rank (encode calls it through
        _encode_chunk, its cache)."""
        ids = [self._byte_ids[b] for b in chunk.encode("utf-8")]
        while len(ids) > 1:
            pair = min(zip(ids, ids[1:]), key=lambda p: self._ranks.get(p, float("inf")))
            if pair not in self._ranks:
                break  # no adjacent pair is a merge: done
            ids = merge_pair(ids, pair, self._merged_ids[pair])
        return ids

    def decode(self, ids):
        """The text spelled by `ids` (a 1-D list or array). Bytes that are not valid UTF-8 (a token sequence may
        end inside a character) become U+FFFD, "�", as GPT-2's decoder does (errors="replace")."""
        ids = checked_ids(ids, self.vocab_size, "BPETokenizer.decode")  # (N,)
        return b"".join(self._bytes[i] for i in ids.tolist()).decode("utf-8", errors="replace")

    # ---- saving and loading ----

    def save(self, directory):
        """Write `directory`/vocab.json and `directory`/merges.txt, byte for byte as GPT-2's files are written;
        returns their two paths."""
        directory = pathlib.Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        vocab_path, merges_path = directory / VOCAB_FILENAME, directory / MERGES_FILENAME
        vocab_path.write_text(json.dumps(self.vocab), encoding="utf-8")  # one line, non-ASCII as \u escapes
        lines = [MERGES_HEADER] + [f"{left} {right}" for left, right in self.merges]
        merges_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return vocab_path, merges_path

    @classmethod
    def load(cls, directory):
        """The tokenizer that `save(directory)` wrote (or GPT-2's files, renamed vocab.json and merges.txt)."""
        directory = pathlib.Path(directory)
        return cls.from_files(directory / VOCAB_FILENAME, directory / MERGES_FILENAME)

    @classmethod
    def from_files(cls, vocab_path, merges_path):
        """The tokenizer of a vocab.json and a merges.txt (GPT-2's encoder.json and vocab.bpe are the same files).
        Errors name the file, and the line of merges.txt or of vocab.json, that is at fault."""
        vocab = json_vocab(read_text(vocab_path), vocab_path)
        lines = read_text(merges_path).split("\n")
        if lines[-1] == "":
            lines.pop()  # the newline that ends the last line
        numbered = []  # (line number, (left, right))
        for number, line in enumerate(lines, start=1):
            if number == 1 and line.startswith("#version"):
                continue
            pair = line.split(" ")
            if len(pair) != 2 or not all(pair):
                raise ValueError(f"{merges_path} line {number}: expected two tokens separated by one space, got "
                                 f"{line!r}")
            numbered.append((number, tuple(pair)))
        ordinary = set(BYTE_TO_CHAR) | {left + right for _, (left, right) in numbered}  # what BPE can make
        for number, (left, right) in numbered:  # checked here, where the line can be named
            check_merge(left, right, vocab, ordinary, f"{merges_path} line {number}")
        merges = [pair for _, pair in numbered]
        try:
            return cls(vocab, merges)
        except ValueError as err:
            raise ValueError(f"{vocab_path} with {merges_path}: {err}") from None

    def to_dict(self):
        """A JSON-friendly description (saved in checkpoints' metadata): the tokens in id order and the merges as
        [left, right] pairs, both as GPT-2 strings."""
        return {"type": "bpe", "tokens": list(self.tokens), "merges": [list(pair) for pair in self.merges]}

    @classmethod
    def from_dict(cls, d):
        """The tokenizer that `to_dict` described."""
        check_type(d, "bpe", "BPETokenizer.from_dict")
        tokens, merges = string_list(d, "tokens", "BPETokenizer.from_dict"), d.get("merges")
        if not isinstance(merges, list) or not all(isinstance(pair, list) and len(pair) == 2 and
                                                   all(isinstance(token, str) for token in pair) for pair in merges):
            raise ValueError("BPETokenizer.from_dict: merges must be a list of [left, right] pairs of strings")
        vocab = {token: i for i, token in enumerate(tokens)}
        if len(vocab) != len(tokens):
            raise ValueError("BPETokenizer.from_dict: a token is listed twice")
        return cls(vocab, [tuple(pair) for pair in merges])


def check_merge(left, right, vocab, ordinary, where):
    """Raise ValueError (starting with `where`) unless the merge (left, right) joins two tokens that are in
    `vocab` and that BPE can make (`ordinary`: the bytes and the merges' results), into a token in `vocab`."""
    for token in (left, right):
        if token not in vocab:
            raise ValueError(f"{where}: the token {token!r} is not in the vocabulary")
        if token not in ordinary:
            raise ValueError(f"{where}: the token {token!r} is neither a byte nor made by a merge")
    if left + right not in vocab:
        raise ValueError(f"{where}: the merged token {left + right!r} is not in the vocabulary")


def check_unmade(token, vocab):
    """Raise ValueError unless `token`, which no merge makes, is not two tokens of `vocab` joined. Such a token is
    what a merge lost from merges.txt leaves behind (it made the token, which vocab.json still holds), and it would
    pass for a special token: encoded as its literal text, decoded wrong, silently."""
    for cut in range(1, len(token)):
        if token[:cut] in vocab and token[cut:] in vocab:
            raise ValueError(f"the token {token!r} is two tokens of the vocabulary joined ({token[:cut]!r}, "
                             f"{token[cut:]!r}) but no merge makes it: is merges.txt truncated? (A special token "
                             f"must not be two tokens joined.)")


def read_text(path):
    """The UTF-8 content of the file at `path`, with errors that name it."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"BPETokenizer: file not found: {path}")
    try:
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as err:
        raise ValueError(f"{path} is not UTF-8 text (byte {err.start}: {err.reason})") from None


def json_vocab(text, path):
    """vocab.json's content parsed: a dict token string -> int id; errors name `path` and the line."""
    try:
        vocab = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} line {err.lineno} column {err.colno}: not valid JSON ({err.msg})") from None
    if not isinstance(vocab, dict):
        raise ValueError(f"{path}: expected a JSON object mapping tokens to ids, got {type(vocab).__name__}")
    for token, i in vocab.items():
        if type(i) is not int:
            raise ValueError(f"{path}: the id of the token {token!r} is {i!r}, not an integer")
    return vocab


def split_on_special_tokens(text, special_tokens):
    """`text` cut around the special tokens in `special_tokens` (a collection of strings): a list of
    (piece, is_special) in order, the pieces joining back into `text`. Where two specials overlap, the longest
    that starts first wins."""
    if not special_tokens:
        return [(text, False)]
    pattern = "(" + "|".join(re.escape(s) for s in sorted(special_tokens, key=len, reverse=True)) + ")"
    pieces = re.split(pattern, text)  # the even ones ordinary text, the odd ones special tokens
    return [(piece, i % 2 == 1) for i, piece in enumerate(pieces) if piece]


def count_chunks(text, special_tokens):
    """How often each pre-split chunk occurs in `text`: a Counter of chunk bytes (UTF-8) -> count. The text is
    first cut around the special tokens, which are left out."""
    counts = Counter()
    for piece, is_special in split_on_special_tokens(text, special_tokens):
        if not is_special:
            counts.update(GPT2_SPLIT.findall(piece))
    return Counter({chunk.encode("utf-8"): n for chunk, n in counts.items()})


def learn_merges(chunk_counts, vocab_size, verbose=False):
    """BPE training on chunks (`chunk_counts`: bytes -> count) until there are `vocab_size` tokens.
    Returns (tokens, merges): tokens a list of bytes (id -> token; ids 0..255 the bytes), merges a list of
    (left id, right id) in the order learned.

    Fast because nothing is recounted. Each distinct chunk ("word") is a list of ids, counted once. We keep, for
    every adjacent pair, its count (summed over the words holding it, times their counts) and the set of words
    holding it. A merge rewrites only the words in its pair's set, and changes the counts only of the pairs those
    words lose or gain. The most frequent pair comes from a heap of (-count, left bytes, right bytes, left, right)
    whose entries may be stale: counts only fall without a push, so an entry whose count is no longer right is
    pushed again with its current count when it reaches the top (see pop_most_frequent).

    Each merge makes a new token: a run of whole tokens inside a word changes exactly as it would alone, so had
    another pair spelling the same bytes been merged before, those bytes would be one token by now."""
    words = [list(chunk) for chunk in chunk_counts]  # each chunk's ids: at first its bytes (id = byte value)
    word_counts = list(chunk_counts.values())
    tokens = [bytes([b]) for b in range(256)]
    pair_counts, pair_words = Counter(), defaultdict(set)
    for w, (word, n) in enumerate(zip(words, word_counts)):
        for pair in zip(word, word[1:]):
            pair_counts[pair] += n
            pair_words[pair].add(w)
    heap = [(-n, tokens[a], tokens[b], a, b) for (a, b), n in pair_counts.items()]
    heapq.heapify(heap)
    merges = []
    n_merges = vocab_size - len(tokens)
    while len(tokens) < vocab_size:
        pair, count = pop_most_frequent(heap, pair_counts)
        if pair is None:
            raise ValueError(f"BPETokenizer.train: the text has no pair left to merge after {len(merges)} merges "
                             f"({len(tokens)} tokens); give it more text or ask for a smaller vocab_size")
        token = tokens[pair[0]] + tokens[pair[1]]  # a new token (see above)
        tokens.append(token)
        merges.append(pair)
        for grown in apply_merge(pair, len(tokens) - 1, words, word_counts, pair_counts, pair_words):
            a, b = grown
            heapq.heappush(heap, (-pair_counts[grown], tokens[a], tokens[b], a, b))
        if verbose and len(merges) % max(1, n_merges // 10) == 0:
            print(f"BPE: merge {len(merges)}/{n_merges}: {token!r} (seen {count} times)", flush=True)
    return tokens, merges


def pop_most_frequent(heap, pair_counts):
    """The most frequent pair and its count, or (None, 0) when no pair is left.

    Every pair with a count holds a heap entry with at least that count (an entry is pushed whenever a count
    grows). So an entry whose count is current, once on top, beats every pair: all others' counts are at most
    their entries'. A stale entry on top is pushed again with its current count (or dropped at 0)."""
    while heap:
        neg_count, left_bytes, right_bytes, a, b = heapq.heappop(heap)
        count = pair_counts.get((a, b), 0)
        if count == -neg_count:
            return (a, b), count
        if count > 0:
            heapq.heappush(heap, (-count, left_bytes, right_bytes, a, b))
    return None, 0


def apply_merge(pair, new_id, words, word_counts, pair_counts, pair_words):
    """Replace `pair` by `new_id` in the words that hold it (`pair_words[pair]`), and update `pair_counts` and
    `pair_words` for the pairs those words lost and gained. Returns the pairs whose count grew."""
    delta = Counter()  # pair -> change of its count
    for w in list(pair_words[pair]):
        old = words[w]
        new = merge_pair(old, pair, new_id)
        words[w] = new
        old_pairs, new_pairs = list(zip(old, old[1:])), list(zip(new, new[1:]))
        for p in old_pairs:
            delta[p] -= word_counts[w]
        for p in new_pairs:
            delta[p] += word_counts[w]
        for p in set(old_pairs) - set(new_pairs):
            pair_words[p].discard(w)
        for p in set(new_pairs) - set(old_pairs):
            pair_words[p].add(w)
    grown = []
    for p, change in delta.items():
        if change == 0:
            continue  # a pair the words held before and after, as often
        pair_counts[p] += change
        if pair_counts[p] == 0:
            del pair_counts[p], pair_words[p]
        elif change > 0:
            grown.append(p)
    return grown
