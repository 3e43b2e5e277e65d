"""Fine-tuning: a GPT's final hidden states, pooled, feed a linear classification head.

    gpt, tokenizer = pretrain(TrainConfig(max_iters=500, out_dir="out-pretrain"))   # or load_lm(path)
    task = speaker_task(text, tokenizer, block_size=64)          # Tiny Shakespeare lines labelled by speaker
    model = GPTClassifier(gpt, n_classes=2, pooling="last")
    train_classifier(model, task["train"], steps=300)
    accuracy(model, task["test"])

    idx (B, T) ─▶ gpt.hidden_states ─▶ h (B, T, C) ─▶ pool over the real positions ─▶ (B, C) ─▶ Linear ─▶ (B, K)

Inputs are right-padded: row b holds lengths[b] real tokens, then padding of any id. The GPT is causal, so a real
position never attends to a pad: the hidden states of the real positions are those of the unpadded sequence.
"last" pooling reads position lengths[b] - 1 (the only one that has seen the whole line); "mean" pooling averages
positions 0 .. lengths[b] - 1 and ignores the pads.
"""
import collections

import numpy as np

from .. import nn
from ..engine import backend, rng
from ..engine.functional import cross_entropy
from ..engine.tensor import no_grad
from ..models.gpt import GPT
from ..optim import AdamW
from .checkpoint import load_lm

POOLINGS = ("last", "mean")


class GPTClassifier(nn.Module):
    """A classification head (one Linear) on a GPT's final hidden states, pooled over each row's real tokens."""

    def __init__(self, gpt, n_classes, pooling="last"):
        if pooling not in POOLINGS:
            raise ValueError(f"GPTClassifier: pooling must be one of {POOLINGS}, got {pooling!r}")
        self.gpt = gpt
        self.pooling = pooling
        self.head = nn.Linear(gpt.config.n_embd, n_classes)
        self.head.to(str(gpt.transformer.wte.weight.dtype)).to(gpt.transformer.wte.weight.device)

    def pool(self, h, lengths):
        """h (B, T, C), lengths (B,) ints in 1..T -> (B, C): the last real position's state, or the real ones' mean."""
        B, T, _ = h.shape
        xp = backend.module_for(h.device)
        lengths = backend.to_device(np.asarray(lengths), h.device)                # (B,)
        if lengths.shape != (B,) or lengths.min() < 1 or lengths.max() > T:
            raise ValueError(f"GPTClassifier: lengths must be (B,) = ({B},) ints in 1..{T}, got {lengths}")
        if self.pooling == "last":
            return h[xp.arange(B), lengths - 1]                                  # (B, C)
        real = (xp.arange(T)[None, :] < lengths[:, None]).astype(h.dtype)        # (B, T): 1 real, 0 pad
        return (h * real[:, :, None]).sum(axis=1) / lengths[:, None].astype(h.dtype)  # (B, C)

    def forward(self, idx, lengths=None):
        """idx (B, T) right-padded token ids, lengths (B,) real tokens per row (default: all T) -> logits (B, K)."""
        h = self.gpt.hidden_states(idx)                                          # (B, T, C)
        if lengths is None:
            lengths = np.full(h.shape[0], h.shape[1])
        return self.head(self.pool(h, lengths))                                  # (B, K)


# ---------------------------------------------------------------- the speaker task

def speeches(text):
    """[(speaker, [line, ...]), ...]: Tiny Shakespeare's speeches, each a "NAME:" line and the lines after it up to
    a blank line."""
    found = []
    for block in text.split("\n\n"):
        lines = block.strip("\n").split("\n")
        if len(lines) > 1 and lines[0].endswith(":"):
            found.append((lines[0][:-1], lines[1:]))
    return found


def encode_lines(lines, tokenizer, block_size):
    """Lines -> (ids (N, block_size) right-padded with id 0, lengths (N,)); longer lines keep their first
    block_size tokens."""
    ids = np.zeros((len(lines), block_size), dtype=np.int64)                     # (N, T)
    lengths = np.zeros(len(lines), dtype=np.int64)                               # (N,)
    for i, line in enumerate(lines):
        row = tokenizer.encode(line)[:block_size]
        ids[i, :len(row)], lengths[i] = row, len(row)
    return ids, lengths


def speaker_task(text, tokenizer, block_size, speakers=None, test_fraction=0.2, seed=0):
    """Which of two speakers says this line? Default speakers: the two with the most lines.

    Returns {"speakers": (a, b), "train": split, "test": split}, each split a dict of "ids" (N, T), "lengths" (N,)
    and "labels" (N,) (0 for a, 1 for b). Whole speeches go to one split, so no line and no speech is in both."""
    found = [(who, lines) for who, lines in speeches(text) if lines]
    if speakers is None:
        counts = collections.Counter()
        for who, lines in found:
            counts[who] += len(lines)
        speakers = tuple(who for who, _ in counts.most_common(2))
    chosen = [(speakers.index(who), lines) for who, lines in found if who in speakers]
    in_test = np.random.default_rng(seed).random(len(chosen)) < test_fraction   # one draw per speech
    task = {"speakers": tuple(speakers)}
    for split, wanted in (("train", False), ("test", True)):
        pairs = [(label, line) for (label, lines), test in zip(chosen, in_test) if test == wanted
                 for line in lines if line.strip()]
        ids, lengths = encode_lines([line for _, line in pairs], tokenizer, block_size)
        task[split] = {"ids": ids, "lengths": lengths, "labels": np.array([label for label, _ in pairs])}
    return task


# ---------------------------------------------------------------- training and evaluation

def train_classifier(model, split, steps, batch_size=32, lr=3e-4, weight_decay=0.01, seed=0):
    """AdamW on the cross-entropy of random batches of `split`; returns the loss of each step."""
    backend.reuse_freed_memory()  # each step frees and makes again the same large arrays (backend.py says why)
    optimizer = AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    generator = np.random.default_rng(seed)
    model.train()
    losses = []
    for _ in range(steps):
        rows = generator.integers(0, len(split["labels"]), size=batch_size)     # (B,)
        logits = model(split["ids"][rows], split["lengths"][rows])               # (B, K)
        loss = cross_entropy(logits, split["labels"][rows])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


def train_head(model, trunk, train_trunk, examples, steps, seed, **options):
    """train_classifier on `model`, its pretrained `trunk` parameters learning too, or frozen (train_trunk=False:
    a linear probe; no gradient reaches the trunk, so AdamW leaves it alone). The trunk can learn again after."""
    trunk = list(trunk)  # walked twice: model.parameters() is an iterator, as in PyTorch
    for p in trunk:
        p.requires_grad = train_trunk
    try:
        train_classifier(model, examples, steps, seed=seed, **options)
    finally:
        for p in trunk:
            p.requires_grad = True


@no_grad()
def accuracy(model, split, batch_size=256):
    """The fraction of `split`'s rows whose most likely class is the label."""
    model.eval()
    correct = 0
    for start in range(0, len(split["labels"]), batch_size):
        rows = slice(start, start + batch_size)
        logits = model(split["ids"][rows], split["lengths"][rows]).numpy()      # (B, K)
        correct += int((logits.argmax(axis=-1) == split["labels"][rows]).sum())
    model.train()
    return correct / len(split["labels"])


# ---------------------------------------------------------------- pretrained vs from scratch

def pretrain(cfg):
    """Train a language model as the TrainConfig `cfg` says (recipes.train.train, quietly, replacing a run that
    cfg.out_dir holds: an example run again trains again); returns (GPT, tokenizer) from its last checkpoint."""
    from .train import train  # imported here: training pulls in tqdm and matplotlib
    train(cfg, overwrite=True, progress=False, log=lambda line: None)
    return load_lm(f"{cfg.out_dir}/last.safetensors")


def compare_with_scratch(pretrained, task, steps, pooling="last", train_trunk=True, seed=0, **options):
    """Fine-tune `pretrained` (a GPT) on `task`, and train a freshly initialised GPT of the same config for the
    same steps on the same batches; returns {"finetuned": test accuracy, "scratch": test accuracy}.
    With train_trunk=False only the heads learn and both GPTs stay as they are (a linear probe): that measures
    what the pretrained features alone know about the task, against random features. `pretrained` is changed
    by fine-tuning, never by a probe. `options` go to train_classifier (batch_size, lr, ...)."""
    rng.manual_seed(seed)
    scratch = GPT(pretrained.config).to(str(pretrained.transformer.wte.weight.dtype))
    accuracies = {}
    for name, gpt in (("finetuned", pretrained), ("scratch", scratch)):
        rng.manual_seed(seed)  # both heads start from the same weights
        model = GPTClassifier(gpt, n_classes=2, pooling=pooling)
        train_head(model, gpt.parameters(), train_trunk, task["train"], steps, seed, **options)
        accuracies[name] = accuracy(model, task["test"])
    return accuracies
