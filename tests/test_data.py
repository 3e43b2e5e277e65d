"""Tests of tinygrad_llm/text/datasets.py: the tokenizer, finding Tiny Shakespeare (shipped in the package) and
other known texts (downloaded), and batches.

No test touches the network or the real home directory: `isolated` points HOME and XDG_CACHE_HOME into tmp_path,
unsets TINYGRAD_LLM_DATA, and makes `urllib.request.urlopen` fail unless a test serves its own bytes.
"""
import dataclasses
import gzip
import hashlib
import io
import json
import os
import pathlib
import urllib.error
import urllib.request

import numpy as np
import pytest

from tinygrad_llm.text import datasets
from tinygrad_llm.text.char import CharTokenizer
from tinygrad_llm.text.datasets import TextDataset, load_text, resolve_dataset

SHAKESPEARE = datasets.read_bytes(datasets.PACKAGED_SHAKESPEARE)  # the shipped copy, uncompressed
# Tiny Shakespeare as a text the package does not ship: how every other known text is found (cache, download)
UNPACKAGED = dataclasses.replace(datasets.TINY_SHAKESPEARE, packaged=None)


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """A fresh HOME and cache, no TINYGRAD_LLM_DATA, and no network."""
    monkeypatch.delenv(datasets.DATA_ENV, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))

    def no_network(*args, **kwargs):
        raise AssertionError("a test tried to use the network")
    monkeypatch.setattr(urllib.request, "urlopen", no_network)


def serve(monkeypatch, content):
    """Make urlopen answer with `content` (bytes); returns the list of URLs it was asked for."""
    requested = []

    def fake_urlopen(url, timeout=None):
        requested.append(url)
        return io.BytesIO(content)
    monkeypatch.setattr(urllib.request, "urlopen", fake_urlopen)
    return requested


# ---- the tokenizer ----

def test_tokenizer_round_trip_with_unicode():
    text = "Héllo, wörld — 你好 🙂\nTo be, or not to be.\t"
    tokenizer = CharTokenizer.from_text(text)
    ids = tokenizer.encode(text)
    assert ids.dtype == np.int64 and ids.shape == (len(text),)
    assert tokenizer.vocab_size == len(set(text))
    assert tokenizer.chars == sorted(set(text))
    assert tokenizer.decode(ids) == text
    assert tokenizer.decode(ids.tolist()) == text


def test_tokenizer_dict_round_trip_through_json():
    tokenizer = CharTokenizer.from_text("héllo 🙂 world\n")
    restored = CharTokenizer.from_dict(json.loads(json.dumps(tokenizer.to_dict())))
    assert restored.chars == tokenizer.chars
    np.testing.assert_array_equal(restored.encode("world 🙂"), tokenizer.encode("world 🙂"))


def test_from_dict_rejects_another_kind_of_tokenizer():
    with pytest.raises(ValueError, match="'bpe'"):
        CharTokenizer.from_dict({"type": "bpe", "chars": ["a"]})


def test_encode_unknown_character_names_it_and_its_position():
    tokenizer = CharTokenizer.from_text("abc")
    with pytest.raises(ValueError, match=r"'é' at position 2"):
        tokenizer.encode("abéc")


def test_decode_out_of_range_id_names_it():
    tokenizer = CharTokenizer.from_text("abc")
    with pytest.raises(ValueError, match=r"id 3 at position 1"):
        tokenizer.decode([0, 3, 1])
    with pytest.raises(ValueError, match=r"id -1 at position 0"):
        tokenizer.decode(np.array([-1]))


def test_tinyshakespeare_has_65_characters_and_splits_like_nanogpt():
    text = load_text(resolve_dataset())
    tokenizer = CharTokenizer.from_text(text)
    assert tokenizer.vocab_size == 65
    dataset = TextDataset(text, tokenizer)
    assert len(dataset.splits["train"]) == 1_003_854 and len(dataset.splits["val"]) == 111_540


# ---- finding the dataset ----

def test_explicit_path_is_used_as_is_without_checksum(tmp_path):
    path = tmp_path / "poems.txt"
    path.write_text("any text at all\n", encoding="utf-8")
    assert resolve_dataset(path) == path
    assert resolve_dataset(str(path)) == path


def test_missing_explicit_path_names_it(tmp_path):
    missing = tmp_path / "nowhere.txt"
    with pytest.raises(FileNotFoundError, match="nowhere.txt"):
        resolve_dataset(missing)


def test_the_shipped_copy_is_tiny_shakespeare_compressed():
    assert datasets.PACKAGED_SHAKESPEARE.name == "tinyshakespeare.txt.gz"
    assert len(SHAKESPEARE) == datasets.DATA_SIZE and hashlib.sha256(SHAKESPEARE).hexdigest() == datasets.DATA_SHA256
    assert datasets.PACKAGED_SHAKESPEARE.stat().st_size < datasets.DATA_SIZE / 2


def test_default_is_the_shipped_copy_with_no_variable_no_cache_and_no_network(tmp_path):
    path = resolve_dataset()   # `isolated`: no TINYGRAD_LLM_DATA, an empty HOME, no network
    assert path == datasets.PACKAGED_SHAKESPEARE
    assert load_text(path) == SHAKESPEARE.decode("utf-8")
    assert not (tmp_path / "xdg").exists() and not (tmp_path / "home").exists()   # nothing written anywhere


def test_environment_variable_directory_is_used_before_the_shipped_copy(tmp_path, monkeypatch):
    (tmp_path / datasets.DATA_FILENAME).write_bytes(SHAKESPEARE)
    monkeypatch.setenv(datasets.DATA_ENV, str(tmp_path))
    assert resolve_dataset(download=False) == tmp_path / datasets.DATA_FILENAME


def test_corrupt_file_in_environment_directory_is_an_error(tmp_path, monkeypatch):
    (tmp_path / datasets.DATA_FILENAME).write_text("not Shakespeare", encoding="utf-8")
    monkeypatch.setenv(datasets.DATA_ENV, str(tmp_path))
    with pytest.raises(ValueError, match=datasets.DATA_ENV) as error:
        resolve_dataset(download=False)
    assert str(tmp_path / datasets.DATA_FILENAME) in str(error.value)


@pytest.mark.parametrize("content, words", [
    (gzip.compress(b"First Citizen:\nA damaged copy.\n"), ["is not Tiny Shakespeare", datasets.DATA_SHA256]),
    (b"not gzip at all", ["not a readable gzip file"]),
    (gzip.compress(SHAKESPEARE)[:-100], ["not a readable gzip file"]),                     # cut short
])
def test_a_damaged_shipped_copy_is_an_error_naming_it(tmp_path, content, words):
    damaged = tmp_path / "tinyshakespeare.txt.gz"
    damaged.write_bytes(content)
    with pytest.raises(ValueError) as error:
        resolve_dataset(dataset=dataclasses.replace(datasets.TINY_SHAKESPEARE, packaged=damaged))
    for word in words + [str(damaged)]:
        assert word in str(error.value)


def test_a_missing_shipped_copy_falls_back_to_the_cache(tmp_path):
    cache = tmp_path / "my-cache"
    cache.mkdir()
    (cache / datasets.DATA_FILENAME).write_bytes(SHAKESPEARE)
    gone = dataclasses.replace(datasets.TINY_SHAKESPEARE, packaged=tmp_path / "deleted.txt.gz")
    assert resolve_dataset(dataset=gone, cache_dir=cache, download=False) == cache / datasets.DATA_FILENAME


def test_cache_with_correct_checksum_is_used(tmp_path):
    cache = tmp_path / "my-cache"
    cache.mkdir()
    (cache / datasets.DATA_FILENAME).write_bytes(SHAKESPEARE)
    assert resolve_dataset(dataset=UNPACKAGED, cache_dir=cache, download=False) == cache / datasets.DATA_FILENAME


def test_default_cache_honours_xdg_cache_home_then_home(tmp_path, monkeypatch):
    in_xdg = tmp_path / "xdg" / "tinygrad_llm" / datasets.DATA_FILENAME
    in_xdg.parent.mkdir(parents=True)
    in_xdg.write_bytes(SHAKESPEARE)
    assert resolve_dataset(dataset=UNPACKAGED, download=False) == in_xdg
    monkeypatch.delenv("XDG_CACHE_HOME")
    in_home = tmp_path / "home" / ".cache" / "tinygrad_llm" / datasets.DATA_FILENAME
    in_home.parent.mkdir(parents=True)
    in_home.write_bytes(SHAKESPEARE)
    assert resolve_dataset(dataset=UNPACKAGED, download=False) == in_home


def test_corrupt_cache_file_is_an_error_naming_it_and_both_hashes(tmp_path):
    cached = tmp_path / datasets.DATA_FILENAME
    cached.write_bytes(b"First Citizen:\nCorrupted.\n")
    with pytest.raises(ValueError, match="delete it to download again") as error:
        resolve_dataset(dataset=UNPACKAGED, cache_dir=tmp_path)
    assert str(cached) in str(error.value)
    assert datasets.DATA_SHA256 in str(error.value)
    assert hashlib.sha256(cached.read_bytes()).hexdigest() in str(error.value)


def test_download_is_checked_then_renamed_into_place(tmp_path, monkeypatch):
    requested = serve(monkeypatch, SHAKESPEARE)
    renames = []
    real_replace = os.replace

    def spy_replace(source, destination):
        renames.append((pathlib.Path(source), pathlib.Path(destination)))
        real_replace(source, destination)
    monkeypatch.setattr(os, "replace", spy_replace)

    cache = tmp_path / "cache"
    path = resolve_dataset(dataset=UNPACKAGED, cache_dir=cache)
    assert requested == [datasets.DATA_URL]
    assert path == cache / datasets.DATA_FILENAME
    assert path.read_bytes() == SHAKESPEARE
    [(source, destination)] = renames  # written under a temporary name in the same directory, then renamed
    assert destination == path and source.parent == cache and source != path
    assert sorted(cache.iterdir()) == [path]


def test_another_known_text_downloads_from_its_own_url(tmp_path, monkeypatch):
    poems = "Shall I compare thee to a summer's day?\n".encode("utf-8")
    known = datasets.KnownText("Sonnets", "sonnets.txt", "https://example.org/sonnets.txt", len(poems),
                               hashlib.sha256(poems).hexdigest())
    requested = serve(monkeypatch, poems)
    path = resolve_dataset(dataset=known, cache_dir=tmp_path)
    assert requested == [known.url] and path == tmp_path / "sonnets.txt" and path.read_bytes() == poems
    assert resolve_dataset(dataset=known, cache_dir=tmp_path) == path and len(requested) == 1   # cached now


def test_download_with_wrong_bytes_is_a_checksum_error_and_leaves_nothing(tmp_path, monkeypatch):
    wrong = b"To be, or not to be, that is a corrupt download.\n"
    serve(monkeypatch, wrong)
    cache = tmp_path / "cache"
    with pytest.raises(ValueError, match="sha256") as error:
        resolve_dataset(dataset=UNPACKAGED, cache_dir=cache)
    assert datasets.DATA_SHA256 in str(error.value)
    assert hashlib.sha256(wrong).hexdigest() in str(error.value)
    assert list(cache.iterdir()) == []


def test_offline_gives_a_clear_message_and_leaves_nothing(tmp_path, monkeypatch):
    def offline(url, timeout=None):
        raise urllib.error.URLError("Name or service not known")
    monkeypatch.setattr(urllib.request, "urlopen", offline)
    cache = tmp_path / "cache"
    with pytest.raises(RuntimeError) as error:
        resolve_dataset(dataset=UNPACKAGED, cache_dir=cache)
    message = str(error.value)
    assert "--data" in message and datasets.DATA_ENV in message and datasets.DATA_URL in message
    assert "Name or service not known" in message
    assert list(cache.iterdir()) == []


def test_download_false_does_not_touch_the_network(tmp_path):
    with pytest.raises(RuntimeError, match="--data"):  # `isolated` would fail the test on a network call
        resolve_dataset(dataset=UNPACKAGED, cache_dir=tmp_path, download=False)


# ---- reading the text ----

def test_load_text_reads_utf8_exactly(tmp_path):
    path = tmp_path / "text.txt"
    path.write_bytes("Ünïcode 🙂\r\nlines\n".encode("utf-8"))
    assert load_text(path) == "Ünïcode 🙂\r\nlines\n"


def test_load_text_reads_gzip_files(tmp_path):
    path = tmp_path / "text.txt.gz"
    path.write_bytes(gzip.compress("Ünïcode 🙂\n".encode("utf-8")))
    assert load_text(path) == "Ünïcode 🙂\n"


def test_load_text_names_a_file_that_is_not_utf8(tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes("café".encode("latin-1"))
    with pytest.raises(ValueError, match="latin1.txt"):
        load_text(path)


# ---- batches ----

@pytest.fixture
def text():
    """1000 random characters from a small alphabet: every window of 16 is (almost surely) unique."""
    return "".join(np.random.default_rng(0).choice(list("abcdefgh \n"), size=1000))


def test_split_is_first_90_percent_train_last_10_val(text):
    tokenizer = CharTokenizer.from_text(text)
    dataset = TextDataset(text, tokenizer)
    assert dataset.splits["train"].dtype == np.uint16
    assert tokenizer.decode(dataset.splits["train"]) == text[:900]
    assert tokenizer.decode(dataset.splits["val"]) == text[900:]


@pytest.mark.parametrize("split, start, stop", [("train", 0, 900), ("val", 900, 1000)])
def test_batch_shapes_dtype_and_windows(text, split, start, stop):
    tokenizer = CharTokenizer.from_text(text)
    x, y = TextDataset(text, tokenizer).get_batch(split, 8, 16, np.random.default_rng(1))
    assert x.shape == y.shape == (8, 16)
    assert x.dtype == y.dtype == np.int64
    np.testing.assert_array_equal(y[:, :-1], x[:, 1:])
    for row_x, row_y in zip(x, y):  # each row and its next character is a real window of that split
        assert tokenizer.decode(np.append(row_x, row_y[-1])) in text[start:stop]


def test_a_split_of_exactly_block_size_plus_one_gives_its_only_window():
    text = "abcdefghij" * 10  # val: the last 10 characters
    tokenizer = CharTokenizer.from_text(text)
    x, y = TextDataset(text, tokenizer).get_batch("val", 3, 9, np.random.default_rng(0))
    np.testing.assert_array_equal(x, np.tile(tokenizer.encode("abcdefghi"), (3, 1)))
    np.testing.assert_array_equal(y, np.tile(tokenizer.encode("bcdefghij"), (3, 1)))


def test_same_generator_state_gives_the_same_batches(text):
    dataset = TextDataset(text, CharTokenizer.from_text(text))
    x1, y1 = dataset.get_batch("train", 4, 16, np.random.default_rng(7))
    x2, y2 = dataset.get_batch("train", 4, 16, np.random.default_rng(7))
    np.testing.assert_array_equal(x1, x2)
    np.testing.assert_array_equal(y1, y2)
    x3, _ = dataset.get_batch("train", 4, 16, np.random.default_rng(8))
    assert not np.array_equal(x1, x3)

    rng = np.random.default_rng(7)  # resuming: a saved generator state replays the same batches
    state = json.loads(json.dumps(rng.bit_generator.state))
    first, _ = dataset.get_batch("train", 4, 16, rng)
    rng.bit_generator.state = state
    again, _ = dataset.get_batch("train", 4, 16, rng)
    np.testing.assert_array_equal(first, again)


def test_too_short_split_names_split_length_and_block_size(text):
    dataset = TextDataset(text, CharTokenizer.from_text(text))
    with pytest.raises(ValueError, match=r"'val' split has 100 ids.*block_size=100"):
        dataset.get_batch("val", 2, 100, np.random.default_rng(0))
    dataset.get_batch("val", 2, 99, np.random.default_rng(0))  # 100 ids are enough for block_size 99


def test_unknown_split_name_is_an_error(text):
    dataset = TextDataset(text, CharTokenizer.from_text(text))
    with pytest.raises(ValueError, match="'test'"):
        dataset.get_batch("test", 2, 8, np.random.default_rng(0))
