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
"""
import numpy as np

from .. import nn
from ..engine import rng
from ..engine.tensor import Tensor
from ..models.hf_bert import HFBert, l2_normalize, mean_pool
from ..optim import AdamW, clip_grad_norm_

LOSSES = ("cosine", "mse")


class StudentEncoder(nn.Module):
    """An HFBert of `config` and the projection of its mean-pooled state to the teacher's width."""

    def __init__(self, config, teacher_dim):
        self.bert = HFBert(config)
        self.proj = nn.Linear(config.n_embd, teacher_dim)

    def forward(self, batch):
        """A batch from tokenizer.encode_batch -> its sentences' vectors in the teacher's space (B, teacher_dim)."""
        h = self.bert(batch["input_ids"], batch["token_type_ids"], batch["attention_mask"])  # (B, T, C)
        return self.proj(mean_pool(h, batch["attention_mask"]))                          # (B, D)


def embedding_loss(student, teacher, kind="cosine"):
    """student (B, D) Tensor, teacher (B, D) array (a constant) -> the mean cosine distance (1 − cos per row) or
    the mean squared error."""
    if kind not in LOSSES:
        raise ValueError(f"embedding_loss: kind must be one of {LOSSES}, got {kind!r}")
    teacher = Tensor(np.asarray(teacher, dtype=student.dtype))                       # (B, D), no grad
    if kind == "mse":
        return ((student - teacher) ** 2).mean()
    return 1.0 - (l2_normalize(student) * l2_normalize(teacher)).sum(axis=-1).mean()


def distill_embeddings(student, tokenizer, sentences, targets, steps, batch_size=64, lr=1e-3, kind="cosine",
                       max_length=64, seed=0):
    """Train `student` (a StudentEncoder) for `steps` AdamW steps to give sentences[i] the vector targets[i]
    (targets: (N, D), the teacher's embeddings); random batches drawn from `seed`. Returns each step's loss."""
    if len(sentences) != len(targets):
        raise ValueError(f"distill_embeddings: {len(sentences)} sentences but {len(targets)} targets")
    rng.manual_seed(seed)
    optimizer = AdamW(student.parameters(), lr=lr, weight_decay=0.01)
    generator = np.random.default_rng(seed)
    student.train()
    losses = []
    for _ in range(steps):
        rows = generator.integers(0, len(sentences), size=batch_size)                 # (B,)
        batch = tokenizer.encode_batch([sentences[i] for i in rows], max_length=max_length)
        loss = embedding_loss(student(batch), targets[rows], kind)
        optimizer.zero_grad()
        loss.backward()
        clip_grad_norm_(student.parameters(), 1.0)
        optimizer.step()
        losses.append(loss.item())
    return losses
