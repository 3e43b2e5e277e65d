"""The data: finding Tiny Shakespeare, and random training batches of a tokenized text.

    text = load_text(resolve_dataset(args.data))    # args.data: None, or any UTF-8 text file
    tokenizer = CharTokenizer.from_text(text)       # text/char.py: 65 characters for Tiny Shakespeare
    dataset = TextDataset(text, tokenizer)          # first 90% of the ids train, last 10% validate
    x, y = dataset.get_batch("train", 32, 128, batch_generator(seed, TRAIN_STREAM, 0))  # (32, 128); y[t] = x[t + 1]

Tiny Shakespeare ships inside the package (tinyshakespeare.txt.gz beside this file, the one data file the
package carries), so the default run needs no network. Other texts known by their sha256 (a `KnownText`) are
found or downloaded by the same function, in the order resolve_dataset's docstring gives.
"""
import dataclasses
import errno
import gzip
import hashlib
import os
import pathlib
import stat
import tempfile
import typing
import urllib.request
import zlib

import numpy as np

DATA_URL = "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt"
DATA_SIZE = 1_115_394  # bytes
DATA_SHA256 = "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"
DATA_FILENAME = "tinyshakespeare.txt"
DATA_ENV = "TINYGRAD_LLM_DATA"  # a directory holding datasets under their file names (DATA_FILENAME, ...)
# gzip: its zlib is in every Python build (lzma and bz2 are optional there, and would save little: the sizes are
# in benchmarks/RESULTS.md)
PACKAGED_SHAKESPEARE = pathlib.Path(__file__).with_name(DATA_FILENAME + ".gz")
TRAIN_STREAM, EVAL_STREAM = 0, 1  # the two families of batch generators: (seed, stream, iteration)
NOT_TEXT_FILES = {stat.S_IFDIR: "a directory", stat.S_IFIFO: "a named pipe (FIFO)", stat.S_IFCHR: "a device",
                  stat.S_IFBLK: "a device", stat.S_IFSOCK: "a socket"}  # what --data may name instead of a file


@dataclasses.dataclass(frozen=True)
class KnownText:
    """A text file known by its size and sha256, where it can be downloaded from, and the compressed copy inside
    the package if it ships one. Every copy found is checked against the hash before it is used."""
    name: str                                       # for messages: "Tiny Shakespeare"
    filename: str                                   # its name in $TINYGRAD_LLM_DATA and in the cache
    url: str
    size: int                                       # bytes, uncompressed
    sha256: str                                     # of the uncompressed bytes
    packaged: typing.Optional[pathlib.Path] = None  # a .gz copy shipped with the package


TINY_SHAKESPEARE = KnownText("Tiny Shakespeare", DATA_FILENAME, DATA_URL, DATA_SIZE, DATA_SHA256,
                             packaged=PACKAGED_SHAKESPEARE)


def batch_generator(seed, stream, iteration):
    """The random generator of one iteration's batches: seeded by (seed, stream, iteration), so the batches of any
    iteration can be drawn again (a resumed run continues bit for bit) without replaying the ones before it."""
    return np.random.default_rng([seed, stream, iteration])


def default_cache_dir():
    """Where downloaded texts are kept: $XDG_CACHE_HOME/tinygrad_llm, else ~/.cache/tinygrad_llm."""
    base = os.environ.get("XDG_CACHE_HOME") or pathlib.Path.home() / ".cache"
    return pathlib.Path(base) / "tinygrad_llm"


def read_bytes(path):
    """The bytes of the file at `path`, decompressed when its name ends in .gz."""
    path = pathlib.Path(path)
    content = path.read_bytes()
    if path.suffix != ".gz":
        return content
    try:
        return gzip.decompress(content)
    except (OSError, EOFError, zlib.error) as err:  # not gzip at all, or cut short, or damaged
        raise ValueError(f"{path} is not a readable gzip file ({err})") from None


def check_known_text(path, known, what):
    """Raise ValueError unless the file at `path` holds `known` (a KnownText): its size and sha256. `what` names
    the file in the message."""
    content = read_bytes(path)
    sha256 = hashlib.sha256(content).hexdigest()
    if len(content) != known.size or sha256 != known.sha256:
        raise ValueError(f"{what} is not {known.name}: sha256 {sha256} ({len(content)} bytes), expected "
                         f"sha256 {known.sha256} ({known.size} bytes)")


def resolve_dataset(path=None, *, dataset=TINY_SHAKESPEARE, cache_dir=None, download=True):
    """The path of the training text, the first of:
      1. `path`, if given (--data): any UTF-8 text file, used as it is (a directory, a device or a file that
         cannot be read is an error naming it);
      2. $TINYGRAD_LLM_DATA/<dataset.filename>, if that file exists (a copy put there by hand, say offline);
      3. the copy shipped inside the package (Tiny Shakespeare has one);
      4. <cache>/<dataset.filename>, downloaded there by an earlier call;
      5. a download from dataset.url into the cache (unless download=False).
    Every copy of a known text (2 to 5) is checked against its size and sha256 first; a wrong one is an error
    naming the file, never skipped silently. load_text reads the path returned (.gz included)."""
    if path is not None:
        path = pathlib.Path(path).expanduser()
        _check_readable_file(path)
        return path
    if os.environ.get(DATA_ENV):
        in_env_dir = pathlib.Path(os.environ[DATA_ENV]).expanduser() / dataset.filename
        if in_env_dir.is_file():
            check_known_text(in_env_dir, dataset, f"{in_env_dir} (found via ${DATA_ENV})")
            return in_env_dir
    if dataset.packaged is not None and dataset.packaged.is_file():
        check_known_text(dataset.packaged, dataset, f"the copy shipped with the package, {dataset.packaged} "
                                                    f"(reinstall tinygrad_llm)")
        return dataset.packaged
    cached = pathlib.Path(cache_dir or default_cache_dir()).expanduser() / dataset.filename
    if cached.is_file():
        check_known_text(cached, dataset, f"the cached file {cached} (delete it to download again)")
        return cached
    how_to = (f"Supply the text in one of these ways: pass --data PATH (any UTF-8 text file); set {DATA_ENV} to "
              f"a directory holding {dataset.filename}; or fetch {dataset.url} by hand and save it as {cached}")
    if not download:
        raise RuntimeError(f"{dataset.name} was not found and downloading is off. {how_to}")
    try:
        _download(dataset, cached)
    except OSError as err:  # urllib.error.URLError is an OSError: no network, DNS failure, HTTP error
        raise RuntimeError(f"{dataset.name} could not be downloaded ({err}). {how_to}") from err
    return cached


def _check_readable_file(path):
    """Refuse a --data `path` that is not a regular file this process may read, naming what it is, from its stat
    alone (opening a named pipe would wait for a writer)."""
    try:
        kind = stat.S_IFMT(path.stat().st_mode)
    except FileNotFoundError:
        raise FileNotFoundError(f"--data {path} does not exist") from None
    except OSError as err:  # a directory on the way that may not be searched, a file where a directory should be
        raise OSError(err.errno, f"cannot read --data {path}: {err.strerror}") from None
    if kind != stat.S_IFREG:
        raise ValueError(f"--data {path} is {NOT_TEXT_FILES.get(kind, 'a special file')}, not a text file")
    if not os.access(path, os.R_OK):
        raise OSError(errno.EACCES, f"cannot read --data {path}: {os.strerror(errno.EACCES)}")


def _download(dataset, dest):
    """Fetch dataset.url into a temporary file beside `dest`, check it, then rename it to `dest` in one step
    (os.replace), so `dest` never holds a partial or corrupt download."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=dataset.filename + ".", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(dataset.url, timeout=60) as response:
            out.write(response.read())
        check_known_text(tmp, dataset, f"the file downloaded from {dataset.url}")
        os.replace(tmp, dest)
    except BaseException:
        os.unlink(tmp)
        raise


def load_text(path):
    """The content of the file at `path` (decompressed if it ends in .gz), decoded as UTF-8 (exactly: line endings
    are kept as they are)."""
    try:
        return read_bytes(path).decode("utf-8")
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
