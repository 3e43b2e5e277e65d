"""A character-level LSTM on Tiny Shakespeare, trained with truncated backpropagation through time
(600 steps: about a minute on 2 CPU cores, more when they are shared).

    python examples/05_char_lstm.py

The LSTM cell (tinygrad_llm/models/rnn.py, lstm_step), per time step, with x (B, I), h and c (B, H):

    i, f, g, o = split(x W_ihᵀ + b_ih + h W_hhᵀ + b_hh)      four (B, H) blocks, PyTorch's order
    i, f, o = σ(i), σ(f), σ(o)                               gates in (0, 1): input, forget, output
    g = tanh(g)                                              the candidate to write, in (-1, 1)
    c' = f∘c + i∘g                                           keep part of the old cell, write part of g
    h' = o∘tanh(c')                                          show part of the cell as the output

Truncated BPTT: the text is read as B parallel streams, cut into chunks of T characters. The state (h, c) is
carried from one chunk to the next, so the model sees an unbroken text; but it is detached between chunks, so
each backward runs through T steps only.
"""
import math
import sys
import time

import numpy as np

from tinygrad_llm import manual_seed
from tinygrad_llm.models.rnn import CharLSTM, detach_state
from tinygrad_llm.optim import AdamW, clip_grad_norm_, set_lr, warmup_cosine_lr
from tinygrad_llm.text.char import CharTokenizer
from tinygrad_llm.text.datasets import load_text, resolve_dataset

STEPS = 600                     # training steps
B, T = 32, 32                   # parallel streams, characters per chunk (how far back each backward reaches)

# ---- data: find Tiny Shakespeare (or explain how to supply it)
try:
    text = load_text(resolve_dataset())
except (RuntimeError, ValueError) as err:
    sys.exit(f"Tiny Shakespeare is needed for this example.\n{err}")
tokenizer = CharTokenizer.from_text(text)
ids = tokenizer.encode(text)
streams = ids[:len(ids) // B * B].reshape(B, -1)                 # (B, N/B): row b is one contiguous stretch of text

# ---- model: embedding -> LSTM -> linear head
manual_seed(0)
model = CharLSTM(tokenizer.vocab_size, n_embd=32, hidden_size=128)
optimizer = AdamW(model.parameters(), lr=1e-2, weight_decay=0.0)
print(f"{model.num_params():,} parameters; a uniform guess has loss ln({tokenizer.vocab_size}) = "
      f"{math.log(tokenizer.vocab_size):.2f}")

# ---- training: chunk after chunk, carrying the detached state
state, position, began = None, 0, time.perf_counter()
for step in range(STEPS):
    if position + T + 1 > streams.shape[1]:
        state, position = None, 0                                # back to the start of the streams
    x = streams[:, position:position + T]                        # (B, T)
    y = streams[:, position + 1:position + T + 1]                # (B, T): the next character of each
    set_lr(optimizer, warmup_cosine_lr(step, max_lr=1e-2, min_lr=1e-3, warmup_steps=20, decay_steps=STEPS))
    _, loss, state = model(x, y, state)
    state = detach_state(state)                                  # the values go on; the gradients stop here
    optimizer.zero_grad()
    loss.backward()
    clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    if step % 50 == 0 or step == STEPS - 1:
        elapsed, left = time.perf_counter() - began, STEPS - step - 1
        to_go = f", about {elapsed / (step + 1) * left:.0f} s to go" if 0 < step and left else ""   # a guess only
        print(f"step {step:4d}  loss {loss.item():.3f}  ({elapsed:.0f} s{to_go})")
    position += T

# ---- sample: read a prompt, then generate one character at a time from the carried state
prompt = tokenizer.encode("ROMEO:\n")[None, :]                   # (1, 7)
out = model.generate(prompt, 300, temperature=0.8, generator=np.random.default_rng(0))
print("-" * 40)
print(tokenizer.decode(out[0]))
