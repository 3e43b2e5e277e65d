"""Checkpoint files for the tests (test_checkpoint.py, test_checkpoint_fuzz.py): a tiny checkpoint as training
writes one, and rewriting a checkpoint as a consistent but wrong writer would, every checksum recomputed, so what
a test changes gets past the checksums to the checks of what the fields mean."""
import json
import zlib

import numpy as np
from safetensors import safe_open
from safetensors.numpy import save_file

from tinygrad_llm.engine import rng
from tinygrad_llm.models.gpt import GPT, GPTConfig
from tinygrad_llm.optim import AdamW
from tinygrad_llm.recipes.checkpoint import save_checkpoint
from tinygrad_llm.recipes.checkpoint_schema import CHECKSUM_KEY, METADATA_KEY, checksum
from tinygrad_llm.text.char import CharTokenizer

CHARS = "abcdefghijk"
TINY = dict(vocab_size=len(CHARS), block_size=8, n_layer=2, n_head=2, n_embd=8)


def tiny_optimizer(model):
    """AdamW in two groups, decay on the 2-D weights only, as training builds it."""
    params = list(model.parameters())
    return AdamW([{"params": [p for p in params if p.ndim >= 2], "weight_decay": 0.1},
                  {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0}], lr=1e-2, betas=(0.9, 0.95))


def write_tiny_checkpoint(path, steps=2):
    """A GPT of TINY's sizes and its AdamW after `steps` steps, saved with the trainer's meta; returns
    (model, optimizer)."""
    rng.manual_seed(0)
    model = GPT(GPTConfig(**TINY))
    optimizer = tiny_optimizer(model)
    batches = np.random.default_rng(1)
    for _ in range(steps):
        x, y = (batches.integers(0, TINY["vocab_size"], (2, TINY["block_size"])) for _ in "xy")
        optimizer.zero_grad()
        model(x, y)[1].backward()
        optimizer.step()
    meta = {"train_config": {"seed": 0}, "tokenizer": CharTokenizer(CHARS).to_dict(), "iter": steps,
            "best_val_loss": 2.25, "rng": rng.get_state()}
    save_checkpoint(path, model, optimizer, meta)
    return model, optimizer


def read_checkpoint(path):
    """(the header's JSON as a dict, {name: array}) of a checkpoint file."""
    with safe_open(path, framework="np") as f:
        return json.loads(f.metadata()[METADATA_KEY]), {name: f.get_tensor(name) for name in f.keys()}


def write_consistently(path, header, tensors, text=None):
    """Write `header` (or the JSON `text`, verbatim) and `tensors` to `path` with every checksum made to fit."""
    header = {**header, "checksums": {name: checksum(array) for name, array in tensors.items()}}
    text = json.dumps(header) if text is None else text
    save_file(tensors, path, metadata={METADATA_KEY: text, CHECKSUM_KEY: str(zlib.crc32(text.encode("utf-8")))})


def rewrite(path, edit, target=None):
    """Apply edit(header, tensors) to the checkpoint at `path` and write the result, consistently, to `target`
    (default: in place)."""
    header, tensors = read_checkpoint(path)
    edit(header, tensors)
    write_consistently(target or path, header, tensors)
