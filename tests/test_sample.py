"""Sampling from a checkpoint: streaming pieces add up to the returned text, stop strings end a sample, and
nothing of a stop string is ever streamed."""
import pytest

from tinygrad_llm.engine import rng
from tinygrad_llm.models.gpt import GPT, GPTConfig
from tinygrad_llm.recipes.checkpoint import save_checkpoint
from tinygrad_llm.recipes.sample import _settled_length, sample
from tinygrad_llm.text.char import CharTokenizer

TEXT = "abc de\nfg\n\nhij.\n"


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    """A tiny untrained GPT over TEXT's characters: its samples are random but repeatable."""
    tokenizer = CharTokenizer.from_text(TEXT)
    rng.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=tokenizer.vocab_size, block_size=8, n_layer=1, n_head=1, n_embd=8))
    path = tmp_path_factory.mktemp("ckpt") / "tiny.safetensors"
    save_checkpoint(path, model, meta={"tokenizer": tokenizer.to_dict()})
    return path


def streamed(ckpt, **options):
    pieces = {}
    texts = sample(ckpt, on_text=lambda i, piece: pieces.setdefault(i, []).append(piece), **options)
    return texts, ["".join(pieces[i]) for i in sorted(pieces)]


def test_streamed_pieces_add_up_to_the_samples(ckpt):
    texts, streams = streamed(ckpt, prompt="ab", max_new_tokens=30, temperature=1.0, top_k=None, num_samples=3)
    assert streams == texts and all(t.startswith("ab") and len(t) == 32 for t in texts)
    again, _ = streamed(ckpt, prompt="ab", max_new_tokens=30, temperature=1.0, top_k=None, num_samples=3)
    assert again == texts  # the same seed gives the same samples


def test_a_stop_string_ends_the_sample_before_it(ckpt):
    full = sample(ckpt, prompt="a", max_new_tokens=200, temperature=1.0, top_k=None)[0][1:]
    stop = next(s for s in ("\n", "e", "d", ".") if s in full)
    texts, streams = streamed(ckpt, prompt="a", max_new_tokens=200, temperature=1.0, top_k=None, stop=[stop])
    assert texts == streams == ["a" + full[:full.index(stop)]]


def test_text_that_may_begin_a_stop_string_is_held_back():
    assert _settled_length("the end\n", ["\n\n"]) == len("the end")
    assert _settled_length("the end", ["\n\n"]) == len("the end")
    assert _settled_length("to be or no", ["not"]) == len("to be or ")
    assert _settled_length("caf\ufffd", []) == 3  # an incomplete UTF-8 character waits for its last byte


def test_bad_sampling_options_are_refused(ckpt):
    with pytest.raises(ValueError, match="stop"):
        sample(ckpt, prompt="a", stop=[""])
    with pytest.raises(ValueError, match="top_p"):
        sample(ckpt, prompt="a", top_p=0.0)
    with pytest.raises(ValueError, match="prompt"):
        sample(ckpt, prompt="")
    assert len(sample(ckpt, prompt="a", max_new_tokens=3)[0]) == 4


def test_sampling_a_hugging_face_gpt2_directory(tmp_path):
    """A GPT-2 directory (weights, config, vocab.json, merges.txt), as our save_pretrained and BPE save write it
    and as GPT-2's own files are laid out, samples like a checkpoint."""
    from tinygrad_llm.recipes.pretrained import save_pretrained
    from tinygrad_llm.text.bpe import BPETokenizer
    tokenizer = BPETokenizer.train(TEXT, 262)
    rng.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=tokenizer.vocab_size, block_size=8, n_layer=1, n_head=1, n_embd=8))
    save_pretrained(model, tmp_path)
    tokenizer.save(tmp_path)
    first = sample(tmp_path, prompt="abc", max_new_tokens=5, seed=4)
    assert first == sample(tmp_path, prompt="abc", max_new_tokens=5, seed=4) and first[0].startswith("abc")


def test_a_tokenizer_that_is_not_the_models_is_refused(tmp_path):
    """A character list one short, or a GPT-2 directory whose vocab.json is not its model's: before, both sampled
    text through the wrong ids, with exit status 0."""
    from tinygrad_llm.recipes.pretrained import save_pretrained
    from tinygrad_llm.text.bpe import BPETokenizer
    short = tmp_path / "short.safetensors"
    rng.manual_seed(0)
    save_checkpoint(short, GPT(GPTConfig(vocab_size=6, block_size=8, n_layer=1, n_head=1, n_embd=8)),
                    meta={"tokenizer": CharTokenizer("abcde").to_dict()})
    with pytest.raises(ValueError, match=r"short.safetensors: tokenizer: 5 tokens, but model_config.vocab_size is 6"):
        sample(short, prompt="a")
    tokenizer = BPETokenizer.train(TEXT, 262)
    save_pretrained(GPT(GPTConfig(vocab_size=263, block_size=8, n_layer=1, n_head=1, n_embd=8)), tmp_path / "gpt")
    tokenizer.save(tmp_path / "gpt")
    with pytest.raises(ValueError, match=r"gpt: vocab.json holds 262 tokens, config.json's vocab_size is 263"):
        sample(tmp_path / "gpt", prompt="a")
