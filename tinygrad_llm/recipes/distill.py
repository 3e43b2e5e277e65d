"""Knowledge distillation: a small student GPT learns from a larger teacher's softened next-token distributions.

    loss = alpha · T² · KL(softmax(teacher / T) ‖ softmax(student / T)) + (1 − alpha) · CE(student, targets)

The temperature T > 1 flattens both distributions, so the student also learns how the teacher ranks the unlikely
tokens (its "dark knowledge"), not only which token it expects. The gradient of the KL term with respect to the
student's logits is (softmax(student / T) − softmax(teacher / T)) / T, so it shrinks as 1/T; the T² factor keeps
its size comparable to the cross-entropy's whatever T is (Hinton et al., 2015).

    curves = compare_with_alone(student_config, teacher, dataset, steps=300)
    curves["distilled"], curves["alone"]          # [(step, val loss), ...] at the same steps, on the same batches
"""
import numpy as np

from ..engine import functional as F
from ..engine import backend, rng
from ..engine.tensor import Tensor, no_grad
from ..models.gpt import GPT
from ..optim import AdamW, clip_grad_norm_
from ..text.datasets import EVAL_STREAM, TRAIN_STREAM, batch_generator


def kl_divergence(student_logits, teacher_logits, temperature=1.0):
    """KL(softmax(teacher / T) ‖ softmax(student / T)), averaged over the rows. Logits (N, V), or (..., V),
    flattened to rows; the teacher is a constant (no gradient flows to it)."""
    V = student_logits.shape[-1]
    student = student_logits.reshape(-1, V) / temperature                        # (N, V)
    teacher = Tensor(np.asarray(teacher_logits.data if isinstance(teacher_logits, Tensor) else teacher_logits))
    teacher = teacher.reshape(-1, V) / temperature                               # (N, V), no grad
    log_p_teacher = F.log_softmax(teacher, dim=-1)                               # (N, V)
    log_p_student = F.log_softmax(student, dim=-1)                               # (N, V)
    kl_rows = (log_p_teacher.exp() * (log_p_teacher - log_p_student)).sum(axis=-1)  # (N,)
    return kl_rows.mean()


def distillation_loss(student_logits, teacher_logits, targets, temperature=2.0, alpha=0.5):
    """alpha · T² · KL(softmax(teacher / T) ‖ softmax(student / T)) + (1 − alpha) · CE(student, targets).

    student_logits (N, V) or (B, T, V) Tensor; teacher_logits the same shape (Tensor or array, held constant);
    targets (N,) or (B, T) integer ids. alpha = 0 is plain training; alpha = 1 learns from the teacher alone."""
    if not 0 <= alpha <= 1 or temperature <= 0:
        raise ValueError(f"distillation_loss: need 0 <= alpha <= 1 and temperature > 0, got alpha {alpha}, "
                         f"temperature {temperature}")
    if tuple(teacher_logits.shape) != student_logits.shape:
        raise ValueError(f"distillation_loss: teacher logits {tuple(teacher_logits.shape)} and student logits "
                         f"{student_logits.shape} differ in shape")
    V = student_logits.shape[-1]
    targets = np.asarray(targets.data if isinstance(targets, Tensor) else targets).reshape(-1)  # (N,)
    ce = F.cross_entropy(student_logits.reshape(-1, V), targets)
    kl = kl_divergence(student_logits, teacher_logits, temperature)
    return alpha * temperature ** 2 * kl + (1 - alpha) * ce


@no_grad()
def val_loss(model, dataset, batch_size, block_size, eval_iters, seed=0):
    """Mean cross-entropy of `model` on eval_iters validation batches (the same batches on every call)."""
    model.eval()
    generator = batch_generator(seed, EVAL_STREAM, 0)
    total = 0.0
    for _ in range(eval_iters):
        x, y = dataset.get_batch("val", batch_size, block_size, generator)      # (B, T), (B, T)
        total += model(x, y)[1].item()
    model.train()
    return total / eval_iters


def train_student(student, dataset, steps, teacher=None, temperature=2.0, alpha=0.5, batch_size=12,
                  block_size=64, lr=1e-3, eval_interval=50, eval_iters=10, seed=0):
    """Train `student` on `dataset` (a TextDataset) for `steps` AdamW steps; with a `teacher` GPT, on
    distillation_loss, else on plain cross-entropy. Step i's batch depends only on (seed, i), so two runs with the
    same seed see the same batches. Returns the val-loss curve [(step, val loss), ...], taken every eval_interval
    steps and after the last."""
    backend.reuse_freed_memory()  # each step frees and makes again the same large arrays (backend.py says why)
    optimizer = AdamW(student.parameters(), lr=lr, weight_decay=0.1)
    if teacher is not None:
        teacher.eval()
    curve = []
    for step in range(steps + 1):
        if step % eval_interval == 0 or step == steps:
            curve.append((step, val_loss(student, dataset, batch_size, block_size, eval_iters, seed)))
        if step == steps:
            break
        x, y = dataset.get_batch("train", batch_size, block_size, batch_generator(seed, TRAIN_STREAM, step))
        if teacher is None:
            _, loss = student(x, y)
        else:
            with no_grad():
                teacher_logits, _ = teacher(x, y)                                # (B, T, V)
            student_logits, _ = student(x, y)                                    # (B, T, V)
            loss = distillation_loss(student_logits, teacher_logits, y, temperature, alpha)
        optimizer.zero_grad()
        loss.backward()
        clip_grad_norm_(student.parameters(), 1.0)
        optimizer.step()
    return curve


def compare_with_alone(student_config, teacher, dataset, steps, seed=0, **options):
    """Two students of `student_config`, from the same initial weights: one distilled from `teacher`, one trained
    alone, for the same steps on the same batches. Returns {"distilled": curve, "alone": curve}; `options` go to
    train_student (temperature, alpha, batch_size, ...)."""
    curves = {}
    for name, guide in (("distilled", teacher), ("alone", None)):
        rng.manual_seed(seed)
        student = GPT(student_config)
        curves[name] = train_student(student, dataset, steps, teacher=guide, seed=seed, **options)
    return curves
