"""Pretrain a small BERT on Tiny Shakespeare: masked-language modelling (guess the hidden characters from both
sides) and next-sentence prediction (does span B follow span A?), then measure both on held-out text.
4,000 steps: about 3 minutes on 2 idle CPU cores, several times that when they are shared (each report line says
how long is left).

Watch the NSP accuracy: it sits at chance for the first ~2,000 steps, then climbs. Whether B continues A shows
only at the seam, in the characters on either side of the first [SEP] (spans are cut anywhere, even mid-word),
so the model must first learn to look at its neighbours (masked-LM teaches that), and then learn that [CLS]
should read the seam. Trained on NSP alone (we tried 1,500 steps), the same model never leaves chance: the MLM
objective is what gets it off that plateau.

    python examples/07_bert_mlm.py [--data PATH] [--steps N]
"""
import argparse
import time

import numpy as np

from tinygrad_llm.engine import rng
from tinygrad_llm.models.bert import IGNORE_INDEX, Bert, SpanPairs, evaluate
from tinygrad_llm.optim import AdamW, clip_grad_norm_, set_lr, warmup_cosine_lr
from tinygrad_llm.text.char import CharTokenizer
from tinygrad_llm.text.datasets import load_text, resolve_dataset

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--data", default=None, help="a UTF-8 text file (default: Tiny Shakespeare)")
parser.add_argument("--steps", type=int, default=4000, help="training steps (NSP needs well over 2,000)")
args = parser.parse_args()
if args.steps < 1:
    parser.error(f"--steps must be at least 1, not {args.steps}")
STEPS, BATCH, MAX_LR = args.steps, 64, 2e-3

# ---- data: pairs of spans of 6..16 characters; B follows A half the time
text = load_text(resolve_dataset(args.data))
tokenizer = CharTokenizer.from_text(text)
data = SpanPairs(text, tokenizer, min_len=6, max_len=16)
ids, segments, pad_mask, targets, labels = data.get_batch("train", 2, np.random.default_rng(1))


def show(row):
    """A row of ids as text: special ids by name, characters as they are (newlines as ⏎)."""
    names = {0: "", 1: "[CLS]", 2: "[SEP]", 3: "[MASK]"}
    return "".join(names[i] if i < 4 else tokenizer.decode([i - 4]).replace("\n", "⏎") for i in row)


print(f"vocabulary: 4 special ids + {tokenizer.vocab_size} characters; inputs up to {data.seq_len} ids")
for r in range(2):
    answers = show(targets[r][targets[r] != IGNORE_INDEX])
    print(f"  {show(ids[r])!r}  is_next={labels[r]}  (scored: {answers!r})")

# ---- model: 2 encoder blocks, 64 channels
rng.manual_seed(0)
model = Bert(data.config(n_layer=2, n_head=4, n_embd=64))
print(f"{model.num_params():,} parameters\n")

# ---- training: loss = MLM + NSP, AdamW, warmup then cosine decay over all the steps
optimizer = AdamW(model.parameters(), lr=MAX_LR, weight_decay=0.01)
generator = np.random.default_rng(0)
start = time.time()
for step in range(STEPS):
    set_lr(optimizer, warmup_cosine_lr(step, max_lr=MAX_LR, min_lr=MAX_LR / 10, warmup_steps=100,
                                       decay_steps=STEPS))
    _, _, loss = model(*data.get_batch("train", BATCH, generator))
    optimizer.zero_grad()
    loss.backward()
    clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    if step % 500 == 0 or step == STEPS - 1:
        held_out = evaluate(model, data, n_batches=2)
        elapsed, left = time.time() - start, STEPS - step - 1
        to_go = f", about {elapsed / (step + 1) * left:.0f} s to go" if 0 < step and left else ""   # a guess only
        print(f"step {step:4d}  loss {loss.item():.3f}  held-out: masked-token acc {held_out['mlm_accuracy']:.1%}"
              f"  NSP acc {held_out['nsp_accuracy']:.1%}  ({elapsed:.0f} s{to_go})")

# ---- held-out evaluation
result = evaluate(model, data, n_batches=8)
print(f"\nheld-out (last 10% of the text, {8 * 128} pairs):")
print(f"  masked-token accuracy {result['mlm_accuracy']:.1%}")
print(f"  NSP accuracy {result['nsp_accuracy']:.1%}  (always answering the commoner label: "
      f"{result['nsp_majority']:.1%})")
print(f"total time {time.time() - start:.0f} s")
