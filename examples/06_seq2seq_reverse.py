"""Train an encoder–decoder transformer to reverse strings, then decode held-out strings greedily and with beam
search. The source is read by the encoder in both directions; the decoder writes the reversed string one letter
at a time, looking back at the source through cross-attention. About 25 s on 2 idle CPU cores
(about a minute when they are shared).

    python examples/06_seq2seq_reverse.py
"""
import time

import numpy as np

from tinygrad_llm.engine import rng
from tinygrad_llm.models.seq2seq import ReverseTask, Seq2Seq, exact_match
from tinygrad_llm.optim import AdamW, clip_grad_norm_, set_lr, warmup_cosine_lr

STEPS, BATCH, MAX_LR = 600, 64, 2e-3
start = time.time()

# ---- data: 1..8 letters from a..h; the test strings never appear in training
task = ReverseTask(alphabet="abcdefgh", min_len=1, max_len=8, n_train=20000, n_test=500, seed=0)
src, tgt_in, tgt_out = task.batch(task.train[:2])
print(f"{len(task.train)} training strings, {len(task.test)} held-out; vocabulary of {task.vocab_size} "
      f"(PAD BOS EOS + {len(task.alphabet)} letters)")
print(f"e.g. {task.train[0]!r} -> {task.target(task.train[0])!r}:  src {src[0]}, tgt_in {tgt_in[0]}, "
      f"tgt_out {tgt_out[0]}\n")

# ---- model: 2 encoder and 2 decoder blocks, 64 channels
rng.manual_seed(0)
model = Seq2Seq(task.config(n_layer=2, n_head=4, n_embd=64))
print(f"{model.num_params():,} parameters\n")

# ---- training: teacher forcing, AdamW, warmup then cosine decay of the learning rate
optimizer = AdamW(model.parameters(), lr=MAX_LR, weight_decay=0.0)
generator = np.random.default_rng(0)
for step in range(STEPS):
    set_lr(optimizer, warmup_cosine_lr(step, max_lr=MAX_LR, min_lr=MAX_LR / 10, warmup_steps=20,
                                       decay_steps=STEPS))
    _, loss = model(*task.get_batch(BATCH, generator))
    optimizer.zero_grad()
    loss.backward()
    clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    if step % 100 == 0 or step == STEPS - 1:
        print(f"step {step:4d}  loss {loss.item():.4f}  ({time.time() - start:.0f} s)")

# ---- decoding held-out strings
model.eval()
print("\nheld-out examples (greedy | beam of 4):")
for s in task.test[:6]:
    greedy = task.decode(model.greedy_decode(task.batch([s])[0], max_len=task.max_len + 1)[0])
    beam = task.decode(model.beam_search(task.encode(s), beam_size=4, max_len=task.max_len + 1))
    print(f"  {s:<8} -> {greedy:<8} | {beam:<8}  {'ok' if greedy == beam == task.target(s) else 'WRONG'}")
greedy_match = exact_match(model, task, task.test)
beam_match = exact_match(model, task, task.test, beam_size=4)
print(f"\nexact match on {len(task.test)} held-out strings: greedy {greedy_match:.1%}, beam (4) {beam_match:.1%}")
print(f"total time {time.time() - start:.0f} s")
