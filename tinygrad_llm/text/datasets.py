"""The data: finding Tiny Shakespeare, and random training batches of a tokenized text.

    text = load_text(resolve_dataset(args.data))    # args.data: None, or any UTF-8 text file
    tokenizer = CharTokenizer.from_text(text)       # text/char.py: 65 characters for Tiny Shakespeare
    dataset = TextDataset(text, tokenizer)          # first 90% of the ids train, last 10% validate
    x, y = dataset.get_batch("train", 32, 128, batch_generator(seed, TRAIN_STREAM, 0))  # (32, 128); y[t] = x[t + 1]
"""
import hashlib
import os
import pathlib
import tempfile
import urllib.request

import numpy as np

DATA_URL = "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt"
DATA_SIZE = 1_115_394  # bytes
DATA_SHA256 = "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"
DATA_FILENAME = "tinyshakespeare.txt"
DATA_ENV = "TINYGRAD_LLM_DATA"  # a directory holding DATA_FILENAME
TRAIN_STREAM, EVAL_STREAM = 0, 1  # the two families of batch generators: (seed, stream, iteration)


def batch_generator(seed, stream, iteration):
    """The random generator of one iteration's batches: seeded by (seed, stream, iteration), so the batches of any
    iteration can be drawn again (a resumed run continues bit for bit) without replaying the ones before it."""
    return np.random.default_rng([seed, stream, iteration])


def default_cache_dir():
    """Where a downloaded Tiny Shakespeare is kept: $XDG_CACHE_HOME/tinygrad_llm, else ~/.cache/tinygrad_llm."""
    base = os.environ.get("XDG_CACHE_HOME") or pathlib.Path.home() / ".cache"
    return pathlib.Path(base) / "tinygrad_llm"


def check_tinyshakespeare(path, what):
    """Raise ValueError unless the file at `path` has Tiny Shakespeare's size and sha256 (`what` names it)."""
    content = pathlib.Path(path).read_bytes()
    sha256 = hashlib.sha256(content).hexdigest()
    if len(content) != DATA_SIZE or sha256 != DATA_SHA256:
        raise ValueError(f"{what} is not Tiny Shakespeare: sha256 {sha256} ({len(content)} bytes), expected "
                         f"sha256 {DATA_SHA256} ({DATA_SIZE} bytes)")


def resolve_dataset(path=None, *, cache_dir=None, download=True):
    """The path of the training text: `path` if given (any UTF-8 text file), else Tiny Shakespeare from
    $TINYGRAD_LLM_DATA, else from the cache, else downloaded into the cache. Tiny Shakespeare is checksummed."""
    if path is not None:
        path = pathlib.Path(path).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"dataset file not found: {path}")
        return path
    if os.environ.get(DATA_ENV):
        in_env_dir = pathlib.Path(os.environ[DATA_ENV]).expanduser() / DATA_FILENAME
        if in_env_dir.is_file():
            check_tinyshakespeare(in_env_dir, f"{in_env_dir} (found via ${DATA_ENV})")
            return in_env_dir
    cached = pathlib.Path(cache_dir or default_cache_dir()).expanduser() / DATA_FILENAME
    if cached.is_file():
        check_tinyshakespeare(cached, f"the cached file {cached} (delete it to download again)")
        return cached
    how_to = (f"Supply the text in one of these ways: pass --data PATH (any UTF-8 text file); set {DATA_ENV} to "
              f"a directory holding {DATA_FILENAME}; or fetch {DATA_URL} by hand and save it as {cached}")
    if not download:
        raise RuntimeError(f"Tiny Shakespeare was not found and downloading is off. {how_to}")
    try:
        _download(cached)
    except OSError as err:  # urllib.error.URLError is an OSError: no network, DNS failure, HTTP error
        raise RuntimeError(f"Tiny Shakespeare could not be downloaded ({err}). {how_to}") from err
    return cached


def _download(dest):
    """Fetch DATA_URL into a temporary file beside `dest`, check it, then rename it to `dest` in one step
    (os.replace), so `dest` never holds a partial or corrupt download."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=DATA_FILENAME + ".", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(DATA_URL, timeout=60) as response:
            out.write(response.read())  # about 1 MB
        check_tinyshakespeare(tmp, f"the file downloaded from {DATA_URL}")
        os.replace(tmp, dest)
    except BaseException:
        os.unlink(tmp)
        raise


def load_text(path):
    """The content of the file at `path`, decoded as UTF-8 (exactly: line endings are kept as they are)."""
    try:
        return pathlib.Path(path).read_bytes().decode("utf-8")
    except UnicodeDecodeError as err:
        raise ValueError(f"{path} is not UTF-8 text (byte {err.start}: {err.reason})") from None


class TextDataset:
    """A text encoded once into ids (by any tokenizer: characters or BPE) and split in two: the first 90% trains
    ("train"), the rest validates ("val")."""

    def __init__(self, text, tokenizer, train_fraction=0.9):
        """Encode `text` with `tokenizer`; ids are stored as uint16 when they fit, to save memory."""
        ids = tokenizer.encode(text)  # (N,) int64
        if tokenizer.vocab_size <= 2**16:
            ids = ids.astype(np.uint16)
        n_train = int(train_fraction * len(ids))
        self.splits = {"train": ids[:n_train], "val": ids[n_train:]}

    def get_batch(self, split, batch_size, block_size, rng):
        """`batch_size` windows of `block_size` ids at random offsets drawn from `rng` (a np.random.Generator,
        whose state a checkpoint can save): x, y int64 of shape (B, T), y the next id after each of x."""
        if split not in self.splits:
            raise ValueError(f"TextDataset.get_batch: unknown split {split!r}; expected one of {list(self.splits)}")
        data = self.splits[split]  # (N,)
        if len(data) < block_size + 1:
            raise ValueError(f"TextDataset.get_batch: the {split!r} split has {len(data)} ids, too few for "
                             f"block_size={block_size} (it needs at least block_size + 1 = {block_size + 1})")
        starts = rng.integers(0, len(data) - block_size, size=batch_size)  # (B,)
        positions = starts[:, None] + np.arange(block_size)  # (B, T)
        x = data[positions].astype(np.int64)  # (B, T)
        y = data[positions + 1].astype(np.int64)  # (B, T)
        return x, y
