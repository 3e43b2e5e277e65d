"""Where a training step's time goes: one step of the CPU preset's GPT (shakespeare-char-cpu) profiled op by op,
forward and backward, then the same events summed by module, and a Chrome trace to open in Perfetto.

    python examples/11_profile_a_step.py            # writes examples/out/11_profile_a_step/trace.json

Open the trace at ui.perfetto.dev. It goes next to this file (ignored by git), wherever the example is run from.
"""
import time
from pathlib import Path

import numpy as np

import tinygrad_llm as tl
from tinygrad_llm.engine import rng
from tinygrad_llm.models.gpt import GPT, GPTConfig
from tinygrad_llm.optim import AdamW
from tinygrad_llm.recipes.config import PRESETS

OUT = Path(__file__).resolve().parent / "out" / Path(__file__).stem   # examples/out/<this example>/
preset = PRESETS["shakespeare-char-cpu"]
rng.manual_seed(0)
model = GPT(GPTConfig(vocab_size=65, block_size=preset.block_size, n_layer=preset.n_layer, n_head=preset.n_head,
                      n_embd=preset.n_embd, bias=preset.bias))
optimizer = AdamW(model.parameters(), lr=preset.learning_rate)
x, y = np.random.default_rng(0).integers(0, 65, (2, preset.batch_size, preset.block_size))   # (B, T) each


def step(prof):
    _, loss = model(x, y)
    optimizer.zero_grad()
    loss.backward()
    with prof.region("AdamW.step"):                            # no op of the graph: timed as a region
        optimizer.step()


with tl.profile() as warmup:                                   # the first step pays for the allocator's first pages
    step(warmup)
began = time.perf_counter()
with tl.profile() as prof:
    step(prof)
seconds = time.perf_counter() - began
print(f"one step: {1e3 * seconds:.1f} ms measured around it; the ops and the region add up to "
      f"{1e3 * prof.total():.1f} ms ({100 * prof.total() / seconds:.0f}%)\n")
print(prof.table())                                            # per op, longest first
print()
print(prof.table(group_by="module", limit=12))                 # per module: which layer costs what
OUT.mkdir(parents=True, exist_ok=True)
prof.export_chrome_trace(OUT / "trace.json")
print(f"\nwrote {OUT / 'trace.json'}: forward on one row, backward on the next; open it at ui.perfetto.dev")
