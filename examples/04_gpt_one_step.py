"""One training step of a GPT, every stage printed: its parameters, a batch of Tiny Shakespeare, the loss,
the gradients, one AdamW step, and the loss again on the same batch.

    python examples/04_gpt_one_step.py
"""
import math

import numpy as np

from tinygrad_llm import no_grad
from tinygrad_llm.engine import rng
from tinygrad_llm.models.gpt import GPT, GPTConfig
from tinygrad_llm.optim import AdamW
from tinygrad_llm.text.char import CharTokenizer
from tinygrad_llm.text.datasets import TextDataset, load_text, resolve_dataset


# ---- data: characters -> ids, and one batch of 8 windows of 32 characters
text = load_text(resolve_dataset())  # the copy of Tiny Shakespeare shipped in the package
tokenizer = CharTokenizer.from_text(text)
x, y = TextDataset(text, tokenizer).get_batch("train", 8, 32, np.random.default_rng(0))  # (8, 32) each
print(f"{len(text):,} characters, vocabulary of {tokenizer.vocab_size}; batch x {x.shape}, y {y.shape}")
print(f"x[0]: {tokenizer.decode(x[0])!r}\ny[0]: {tokenizer.decode(y[0])!r}   (x shifted by one)\n")

# ---- model: a tiny GPT; names and shapes are nanoGPT's
rng.manual_seed(0)
model = GPT(GPTConfig(vocab_size=tokenizer.vocab_size, block_size=32, n_layer=2, n_head=2, n_embd=32))
for name, p in model.named_parameters():
    print(f"  {name:<36} {p.shape}")
print(f"lm_head.weight is transformer.wte.weight: {model.lm_head.weight is model.transformer.wte.weight}; "
      f"{model.num_params():,} parameters (without wpe)\n")

# ---- forward: logits for every position, and the mean cross-entropy against y
logits, loss = model(x, y)                                               # (8, 32, V), ()
print(f"logits {logits.shape}; loss {loss.item():.4f}, and ln(vocab) = {math.log(tokenizer.vocab_size):.4f}: "
      f"at initialisation every character is about equally likely\n")

# ---- backward: every parameter gets .grad, the same shape as itself
loss.backward()
print("gradient norms of the weight matrices:")  # wte's is the largest: it is the embedding and, tied, lm_head
for name, p in model.named_parameters():
    if p.ndim == 2:
        print(f"  {name:<36} {np.linalg.norm(p.grad.numpy()):.4f}")

# ---- one AdamW step, then the same batch again
optimizer = AdamW(model.parameters(), lr=1e-2, weight_decay=0.0)
optimizer.step()
with no_grad():
    _, after = model(x, y)
print(f"\nloss on the same batch: {loss.item():.4f} before the step, {after.item():.4f} after")
