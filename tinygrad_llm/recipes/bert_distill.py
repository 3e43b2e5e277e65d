"""Distilling a sentence encoder: a small student BERT learns to give each sentence the teacher's embedding.

    teacher = load_sentence_encoder(path)                       # all-MiniLM-L6-v2: 6 layers, 384 wide
    targets = teacher.embed(lines)                              # (N, 384), computed once
    student = StudentEncoder(HFBertConfig(vocab_size=..., n_layer=2, n_embd=128, ...), teacher_dim=384)
    distill_embeddings(student, tokenizer, lines, targets, steps=600)

    loss (cosine) = mean over the batch of 1 − cos(proj(mean_pool(student(x))), teacher(x))
    loss (mse)    = mean of (proj(mean_pool(student(x))) − teacher(x))², over every component

No labels are needed: any text the teacher can embed teaches the student, which uses the teacher's tokenizer. The
student's own width may be smaller than the teacher's; a linear projection (proj) maps its pooled state to the
teacher's width for the loss, and is dropped after: a task then reads the student's pooled state itself.

The baseline a distilled student is measured against is the same student trained alone on the same lines, with
BERT's own self-supervised objective and no teacher (train_masked_lm): the same batches of the same lines, steps
and optimizer, so that only the objective differs.

    loss (masked LM) = mean over the chosen positions of −log p(original token | corrupted line)
"""
import numpy as np

from .. import nn
from ..engine import functional as F
from ..engine import backend, rng
from ..engine.tensor import Tensor
from ..models.bert import IGNORE_INDEX, mask_tokens
from ..models.hf_bert import HFBert, HFBertMLMHead, l2_normalize, mean_pool
from ..optim import AdamW, clip_grad_norm_

LOSSES = ("cosine", "mse")


class StudentEncoder(nn.Module):
    """An HFBert of `config` and the projection of its mean-pooled state to the teacher's width."""

    def __init__(self, config, teacher_dim):
        self.bert = HFBert(config)
        self.proj = nn.Linear(config.n_embd, teacher_dim)

    def forward(self, batch):  # ids (B, T) -> (B, teacher_dim)
        """A batch from tokenizer.encode_batch -> its sentences' vectors in the teacher's space (B, teacher_dim)."""
        h = self.bert(batch["input_ids"], batch["token_type_ids"], batch["attention_mask"])  # (B, T, C)
        return self.proj(mean_pool(h, batch["attention_mask"]))                          # (B, D)


def embedding_loss(student, teacher, kind="cosine"):  # (B, D), (B, D) -> loss ()
    """student (B, D) Tensor, teacher (B, D) array (a constant) -> the mean cosine distance (1 − cos per row) or
    the mean squared error."""
    if kind not in LOSSES:
        raise ValueError(f"embedding_loss: kind must be one of {LOSSES}, got {kind!r}")
    teacher = Tensor(np.asarray(teacher, dtype=student.dtype))                       # (B, D), no grad
    if kind == "mse":
        return ((student - teacher) ** 2).mean()
    return 1.0 - (l2_normalize(student) * l2_normalize(teacher)).sum(axis=-1).mean()


def train_on_lines(model, tokenizer, sentences, steps, loss_of, batch_size=64, lr=1e-3, max_length=64,
                   seed=0):  # sentences (N,) -> losses (steps,)
    """The loop distillation and masked-LM training share, so that the two see the same batches of the same lines
    and the same optimizer: `steps` AdamW steps (weight decay 0.01, gradients clipped at norm 1) on
    loss_of(batch, rows), batch a tokenizer.encode_batch of sentences[rows] (rows (B,) drawn from `seed`).
    Returns each step's loss."""
    backend.reuse_freed_memory()  # each step frees and makes again the same large arrays (backend.py says why)
    rng.manual_seed(seed)
    optimizer = AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    generator = np.random.default_rng(seed)
    model.train()
    losses = []
    for _ in range(steps):
        rows = generator.integers(0, len(sentences), size=batch_size)                 # (B,)
        batch = tokenizer.encode_batch([sentences[i] for i in rows], max_length=max_length)
        loss = loss_of(batch, rows)                                                   # ()
        optimizer.zero_grad()
        loss.backward()
        clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        losses.append(loss.item())
    return losses


def distill_embeddings(student, tokenizer, sentences, targets, steps, kind="cosine",
                       **options):  # sentences (N,), targets (N, D) -> losses (steps,)
    """Train `student` (a StudentEncoder) for `steps` steps to give sentences[i] the vector targets[i]
    (targets: (N, D), the teacher's embeddings). `options` go to train_on_lines (batch_size, lr, max_length,
    seed). Returns each step's loss."""
    if len(sentences) != len(targets):
        raise ValueError(f"distill_embeddings: {len(sentences)} sentences but {len(targets)} targets")
    return train_on_lines(student, tokenizer, sentences, steps,
                          lambda batch, rows: embedding_loss(student(batch), targets[rows], kind), **options)


class MaskedLMStudent(nn.Module):
    """An HFBert and BERT's masked-LM head on it (the head tied to its word embeddings)."""

    def __init__(self, bert):
        self.bert = bert
        self.head = HFBertMLMHead(bert)

    def forward(self, batch, corrupted, targets):  # corrupted, targets (B, T) -> loss ()
        """batch from tokenizer.encode_batch, corrupted ids (B, T), targets (B, T) (IGNORE_INDEX where not
        scored) -> the mean cross-entropy over the scored positions (). Only those go through the head: the
        V-wide logits of the other positions would cost most of the step and add nothing to the loss."""
        h = self.bert(corrupted, batch["token_type_ids"], batch["attention_mask"])        # (B, T, C)
        B, T, C = h.shape
        targets = np.asarray(targets).reshape(B * T)                                      # (B·T,)
        scored = np.flatnonzero(targets != IGNORE_INDEX)                                  # (N,)
        logits = self.head(h.reshape(B * T, C)[scored])                                   # (N, V)
        return F.cross_entropy(logits, targets[scored])


def train_masked_lm(bert, tokenizer, sentences, steps, seed=0, **options):  # sentences (N,) -> losses (steps,), model
    """Train `bert` (an HFBert, e.g. a StudentEncoder's .bert) alone with masked-LM (mask_tokens' 15%, 80/10/10,
    never a special token) for `steps` steps of train_on_lines: the same batches as distill_embeddings with the
    same seed (the masks come from a generator of their own). Returns (each step's loss, the MaskedLMStudent)."""
    rng.manual_seed(seed)                                   # the head's initial weights
    model = MaskedLMStudent(bert)
    masks = np.random.default_rng((seed, 1))

    def loss_of(batch, rows):  # batch of (B, T), rows (B,) -> loss ()
        corrupted, targets = mask_tokens(batch["input_ids"], tokenizer.vocab_size, masks,
                                         special_ids=tokenizer.special_ids, mask_id=tokenizer.mask_id)
        return model(batch, corrupted, targets)
    return train_on_lines(model, tokenizer, sentences, steps, loss_of, seed=seed, **options), model
