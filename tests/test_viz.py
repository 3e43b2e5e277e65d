"""tools/viz.py: the drawn graph has one op node per Function of the graph, labels with shapes, dtypes, module paths
and gradient norms, module boxes at a depth, a text tree; without Graphviz's `dot` the DOT source still works."""
import shutil

import numpy as np
import pytest

from tinygrad_llm.engine import rng
from tinygrad_llm.models.gpt import GPT, GPTConfig
from tinygrad_llm.tools import viz
from tinygrad_llm.tools.observer import Observer


class CountOps(Observer):
    """The number of Functions recorded in a graph while on (a count independent of viz's own walk)."""

    def __enter__(self):
        self.count = 0
        return super().__enter__()

    def forward(self, ctx, inputs, out, seconds):
        self.count += out._ctx is ctx


@pytest.fixture(scope="module")
def traced():
    """A 2-layer GPT's loss, traced through forward and backward, its graph kept."""
    rng.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=65, block_size=16, n_layer=2, n_head=2, n_embd=16))
    x = np.random.default_rng(0).integers(0, 65, (2, 8))
    with viz.trace() as trace, CountOps() as counted:
        logits, loss = model(x, x)
        logits.retain_grad()
        loss.backward(retain_graph=True)
    return model, loss, logits, trace, counted.count


def test_one_op_node_per_function(traced):
    _, loss, _, trace, count = traced
    pictured = viz.boxes(loss, trace)
    assert sum(box.kind == "op" for box in pictured.values()) == count > 40
    assert viz.draw(loss, trace).source.count("shape=ellipse") == count


def test_labels_carry_shapes_dtypes_module_paths_and_gradient_norms(traced):
    model, loss, logits, trace, _ = traced
    source = viz.draw(loss, trace).source
    weight = model.transformer.h[0].attn.c_attn.weight
    assert f"transformer.h.0.attn.c_attn.weight\n(48, 16) float32\n|grad| {np.linalg.norm(weight.grad.data):.3g}" \
        in source
    assert f"(2, 8, 65) float32\n|grad| {np.linalg.norm(logits.grad.data):.3g}" in source   # an intermediate
    assert "cluster_transformer.h.0.attn" in source and "label=\"transformer.h.1.mlp\"" in source


def test_depth_collapses_each_block_to_one_box(traced):
    _, loss, _, trace, count = traced
    pictured = viz.boxes(loss, trace, depth=3)
    modules = {key: box for key, box in pictured.items() if box.kind == "module"}
    assert sorted(box.label.split("\n")[0] for box in modules.values()) == ["transformer.h.0", "transformer.h.1"]
    in_blocks = [int(box.label.split("\n")[1].split(", ")[1].split()[0]) for box in modules.values()]
    assert sum(in_blocks) + sum(box.kind == "op" for box in pictured.values()) == count
    assert "Block, 17 ops, 3,280 parameters" in modules["module transformer.h.0"].label
    # a block's own parameters are inside its box; the tied embedding (used by wte and lm_head) stays visible
    labels = " ".join(box.label for box in pictured.values())
    assert "transformer.h.0.ln_1.weight" not in labels and "transformer.wte.weight" in labels


def test_text_tree(traced):
    _, loss, _, trace, _ = traced
    tree = viz.text(loss, trace, depth=3).splitlines()
    assert tree[0] == "[1] CrossEntropyOp -> output () float32 |grad| 1"
    assert any("LinearOp (lm_head) -> (2, 8, 65) float32" in line for line in tree)
    assert any(line.lstrip("│ ├└─").startswith("[5] transformer.h.1, Block, 17 ops") for line in tree)
    assert sum("transformer.wte.weight (65, 16) float32" in line for line in tree) == 2   # used twice
    full = viz.text(loss, trace)
    assert "(above)" in full and "AttentionOp (transformer.h.1.attn)" in full


def test_without_a_trace_parameters_are_named_by_the_model(traced):
    model, loss, _, _, count = traced
    source = viz.draw(loss, model=model).source
    assert "transformer.wpe.weight" in source and "cluster_" not in source
    assert source.count("shape=ellipse") == count


def test_a_freed_graph_is_refused():
    rng.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=65, block_size=8, n_layer=1, n_head=1, n_embd=8))
    _, loss = model(np.zeros((1, 4), np.int64), np.zeros((1, 4), np.int64))
    loss.backward()
    with pytest.raises(RuntimeError, match="retain_graph=True"):
        viz.draw(loss)


def test_without_dot_the_message_says_so_and_the_source_is_written(traced, tmp_path, monkeypatch):
    _, loss, _, trace, _ = traced
    graph = viz.draw(loss, trace, depth=3)
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(RuntimeError, match="Graphviz's `dot` program is not installed"):
        viz.save(graph, str(tmp_path / "gpt"))
    assert (tmp_path / "gpt.dot").read_text() == graph.source


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed")
def test_with_dot_a_png_is_rendered(traced, tmp_path):
    _, loss, _, trace, _ = traced
    path = viz.save(viz.draw(loss, trace, depth=3), str(tmp_path / "gpt"))
    with open(path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
