"""The graph of a 2-layer GPT's loss, drawn: every tensor with its shape and dtype, every op, the parameters by their
module path, and after backward each tensor's gradient norm. First a small graph you can follow op by op, then the
GPT with each block collapsed to one box (depth=3: `transformer.h.0` is three names deep), then the same as a tree.

    python examples/10_draw_the_graph.py [PATH]     # writes PATH.png and PATH.dot (only the .dot without Graphviz)

PATH defaults to examples/out/10_draw_the_graph/gpt_graph (next to this file, ignored by git), wherever it is run
from. README's picture is redrawn by naming it, from the repository root:

    python examples/10_draw_the_graph.py docs/gpt_graph
"""
import argparse
from pathlib import Path

import numpy as np

import tinygrad_llm as tl
from tinygrad_llm.engine import rng
from tinygrad_llm.models.gpt import GPT, GPTConfig

OUT = Path(__file__).resolve().parent / "out" / Path(__file__).stem   # examples/out/<this example>/
parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("path", nargs="?", default=OUT / "gpt_graph", type=Path,
                    help="where the picture goes, without its extension (default: %(default)s)")
args = parser.parse_args()

# ---- a neuron: y = tanh(w·x + b), the loss its square; small enough to read every node
x = tl.tensor([[1.0, -2.0]])                                   # (1, 2)
w = tl.tensor([[0.5, 0.25]], requires_grad=True)               # (1, 2)
b = tl.tensor([0.1], requires_grad=True)                       # (1,)
loss = (tl.tanh(x @ w.t() + b) ** 2).sum()
loss.backward(retain_graph=True)                               # keep the graph: it is what is drawn
print(tl.viz.text(loss), "\n")

# ---- a 2-layer GPT, traced: which module made each op, and every dL/d(tensor) in backward
rng.manual_seed(0)
model = GPT(GPTConfig(vocab_size=65, block_size=16, n_layer=2, n_head=2, n_embd=16))
ids = np.random.default_rng(0).integers(0, 65, (2, 8))       # (B, T)
with tl.viz.trace() as trace:
    _, loss = model(ids, ids)
    loss.backward(retain_graph=True)
print(tl.viz.text(loss, trace, depth=3), "\n")

graph = tl.viz.draw(loss, trace, depth=3)                      # a graphviz.Digraph; in a notebook it shows inline
print(f"{len(graph.source.splitlines())} lines of DOT source; the whole graph, depth=None, has "
      f"{tl.viz.draw(loss, trace).source.count('shape=ellipse')} op nodes")
args.path.parent.mkdir(parents=True, exist_ok=True)
try:
    print("wrote", tl.viz.save(graph, str(args.path)))         # PATH.png, and its source PATH.dot
except RuntimeError as e:                                      # no Graphviz `dot`: the message says what to do
    print(e)
