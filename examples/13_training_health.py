"""A network's health while it trains: a small GPT on Tiny Shakespeare, its loop written out, with Telemetry
recording every 10 iterations the gradient, weight and update norms of each parameter, each block's activations,
its GELU saturation and attention entropy; then the three plots.

    python examples/13_training_health.py           # writes telemetry.jsonl and three PNGs

They go into examples/out/13_training_health/ (next to this file, ignored by git), wherever it is run from.
"""
from pathlib import Path

import numpy as np

from tinygrad_llm.engine import rng
from tinygrad_llm.models.gpt import GPT, GPTConfig
from tinygrad_llm.optim import AdamW, clip_grad_norm_
from tinygrad_llm.text.char import CharTokenizer
from tinygrad_llm.text.datasets import TextDataset, load_text, resolve_dataset
from tinygrad_llm.tools.telemetry import Telemetry
from tinygrad_llm.tools.telemetry_plots import plot_telemetry

text = load_text(resolve_dataset())
tokenizer = CharTokenizer.from_text(text)
dataset = TextDataset(text, tokenizer)
rng.manual_seed(0)
model = GPT(GPTConfig(vocab_size=tokenizer.vocab_size, block_size=32, n_layer=2, n_head=2, n_embd=32))
optimizer = AdamW(model.parameters(), lr=3e-3, weight_decay=0.1)
OUT = Path(__file__).resolve().parent / "out" / Path(__file__).stem   # examples/out/<this example>/
OUT.mkdir(parents=True, exist_ok=True)


def report(record):
    """The callback: called with each record as it is written."""
    ratios = [p["update_log10"] for p in record["params"].values() if len(p["shape"]) == 2]
    block = record["blocks"]["transformer.h.1"]
    print(f"iter {record['iter']:3d}: grad norm {record['grad_norm']:.3f}{' (clipped)' if record['clipped'] else ''}"
          f", update/weight 10^{min(ratios):.1f}..10^{max(ratios):.1f}, h.1 output std {block['std']:.2f}, "
          f"GELU saturated {100 * block['gelu_saturation']:.1f}%, attention entropy "
          + " ".join(f"{h:.2f}" for h in block["attention_entropy"]))


telemetry = Telemetry(model, every=10, path=OUT / "telemetry.jsonl", callback=report)
batches = np.random.default_rng(0)
for iteration in range(201):
    x, y = dataset.get_batch("train", 16, 32, batches)          # (B, T) each
    with telemetry.watch(iteration):                             # on iterations 0, 10, 20, ...: the activations
        _, loss = model(x, y)
    optimizer.zero_grad()
    loss.backward()
    total_norm = float(clip_grad_norm_(model.parameters(), 1.0))
    with telemetry.watch_step(iteration, total_norm, max_norm=1.0):  # the norms before the step, the update after
        optimizer.step()
print(f"loss after 200 steps {loss.item():.3f}; wrote", ", ".join(plot_telemetry(OUT / "telemetry.jsonl", OUT, 1.0)))
