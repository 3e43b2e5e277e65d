"""Fine-tuning a pretrained BERT (an HFBert) for classification, with this engine's backprop.

    encoder, tokenizer = load_bert(path), load_bert_tokenizer(path)
    task = speaker_task(text, tokenizer, block_size=64)     # recipes/finetune.py's task: ids start with [CLS]
    model = BertClassifier(encoder, n_classes=2)
    train_classifier(model, task["train"], steps=150, lr=5e-5)    # recipes/finetune.py's loop, as for the GPT
    accuracy(model, task["test"])
    fine_tune(encoder, task, steps=150, train_trunk=False)        # the same in one call; here a linear probe

    idx (B, T), lengths (B,) ─▶ HFBert (pads masked) ─▶ h (B, T, C) ─▶ mean over the real tokens ─▶ (B, C) ─▶ Linear ─▶ (B, K)

The classifier takes what GPTClassifier takes (right-padded ids and the number of real tokens per row), so the
speaker task, the training loop and the accuracy are the GPT's own, and the two models are compared on the same
lines and batches. The pooling is the sentence embedding's (mean over the real tokens), which all-MiniLM-L6-v2
was trained to make meaningful.
"""
import numpy as np

from .. import nn
from ..engine import rng
from ..models.hf_bert import mean_pool
from .finetune import accuracy, train_head


class BertClassifier(nn.Module):
    """A classification head (one Linear) on the mean of an HFBert's final hidden states over each row's real
    tokens."""

    def __init__(self, bert, n_classes):
        self.bert = bert
        self.head = nn.Linear(bert.config.n_embd, n_classes)
        self.head.to(str(bert.wte.weight.dtype)).to(bert.wte.weight.device)

    def forward(self, idx, lengths):
        """idx (B, T) right-padded token ids, lengths (B,) real tokens per row -> logits (B, K)."""
        lengths = np.asarray(lengths)
        T = int(lengths.max())
        if lengths.min() < 1 or T > idx.shape[1]:
            raise ValueError(f"BertClassifier: lengths must be ints in 1..{idx.shape[1]}, got {lengths}")
        # the columns past the longest row are pads only, and no real token sees a pad: cutting them changes no
        # number, and saves their share of the work (most lines are far shorter than the task's block size)
        idx = np.asarray(idx)[:, :T]                                             # (B, T)
        mask = (np.arange(T)[None, :] < lengths[:, None]).astype(np.int64)       # (B, T): 1 real, 0 pad
        h = self.bert(idx, attention_mask=mask)                                  # (B, T, C)
        return self.head(mean_pool(h, mask))                                     # (B, K)


def fine_tune(bert, task, steps, train_trunk=True, seed=0, **options):
    """Train a BertClassifier on `bert` with task["train"] (recipes/finetune.py's task and loop), then return its
    accuracy on task["test"]. With train_trunk=False only the head learns (a linear probe: what the encoder's
    features already know) and `bert` stays as it is; else `bert` is fine-tuned in place. The head starts from
    `seed`; `options` go to train_classifier (batch_size, lr, ...)."""
    rng.manual_seed(seed)
    model = BertClassifier(bert, n_classes=len(task["speakers"]))
    train_head(model, bert.parameters(), train_trunk, task["train"], steps, seed, **options)
    return accuracy(model, task["test"])
