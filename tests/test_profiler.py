"""tools/profiler.py: every op's forward and backward recorded with its shapes, time and new bytes; the times of a
training step add up to the step; the table and the Chrome trace; nothing left on after the block."""
import json
import time

import numpy as np
import pytest

from tinygrad_llm.engine import rng, tensor
from tinygrad_llm.engine.tensor import Tensor
from tinygrad_llm.models.gpt import GPT, GPTConfig
from tinygrad_llm.optim import AdamW
from tinygrad_llm.tools.observer import plain_backward, plain_forward
from tinygrad_llm.tools.profiler import profile


@pytest.fixture(scope="module")
def profiled_step():
    """One training step of a GPT whose matmuls outweigh Python's per-op cost (as the CPU preset's do), profiled;
    and the step's time measured around it."""
    rng.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=65, block_size=64, n_layer=2, n_head=4, n_embd=128))
    optimizer = AdamW(model.parameters())
    x, y = np.random.default_rng(0).integers(0, 65, (2, 12, 64))

    def step(prof):
        _, loss = model(x, y)
        optimizer.zero_grad()
        loss.backward()
        with prof.region("AdamW.step"):
            optimizer.step()

    with profile() as warmup:
        step(warmup)
    best = None
    for _ in range(3):   # the closest of three: the test's machine is shared
        began = time.perf_counter()
        with profile() as prof:
            step(prof)
        seconds = time.perf_counter() - began
        if best is None or prof.total() / seconds > best[0].total() / best[1]:
            best = (prof, seconds, list(model.named_parameters()))
    return best


def test_the_op_times_add_up_to_the_step(profiled_step):
    prof, seconds, _ = profiled_step
    assert 0.9 * seconds < prof.total() <= seconds


def test_every_op_has_its_forward_and_backward(profiled_step):
    prof, _, _ = profiled_step
    forward = [e.name for e in prof.events if e.phase == "forward"]
    backward = [e.name for e in prof.events if e.phase == "backward" and e.name != "AccumulateGrad"]
    assert sorted(forward) == sorted(backward) and forward.count("LinearOp") == 2 * 4 + 1
    # one more backward step per parameter: its gradient added into .grad, named by the parameter's module
    accumulated = [e.module for e in prof.events if e.name == "AccumulateGrad"]
    assert sorted(accumulated) == sorted(name.rpartition(".")[0] for name, _ in profiled_step[2])
    fc = next(e for e in prof.events if e.phase == "forward" and e.module == "transformer.h.0.mlp.c_fc")
    assert (fc.name, fc.input_shapes[0], fc.output_shapes) == ("LinearOp", (12, 64, 128), ((12, 64, 512),))
    assert fc.bytes == 12 * 64 * 512 * 4                     # its output; x and the weight were given
    reshape = next(e for e in prof.events if e.name == "ReshapeOp" and e.phase == "forward")
    assert reshape.bytes == 0                                 # a view
    fc_back = next(e for e in prof.events if e.phase == "backward" and e.module == "transformer.h.0.mlp.c_fc")
    assert fc_back.output_shapes == ((12, 64, 128), (512, 128), (512,)) and fc_back.bytes > 0


def test_the_table_groups_and_sorts(profiled_step):
    prof, _, _ = profiled_step
    rows = prof.table().splitlines()
    assert rows[0].split() == ["op", "calls", "forward", "ms", "backward", "ms", "total", "ms", "%", "wall", "new",
                               "MB"]
    totals = [float(row.split()[4]) for row in rows[1:-1]]
    assert totals == sorted(totals, reverse=True) and rows[1].startswith("LinearOp")
    assert next(row for row in rows if row.startswith("AccumulateGrad")).split()[1] == str(len(profiled_step[2]))
    assert sum(totals) == pytest.approx(1e3 * prof.total(), abs=0.01 * len(totals))
    by_module = prof.table(group_by="module")
    assert "transformer.h.1.attn.c_attn" in by_module and "\nAdamW.step" not in by_module
    with pytest.raises(ValueError, match="group_by"):
        prof.table(group_by="shape")


def test_chrome_trace(profiled_step, tmp_path):
    prof, _, _ = profiled_step
    prof.export_chrome_trace(tmp_path / "trace.json")
    events = [e for e in json.loads((tmp_path / "trace.json").read_text())["traceEvents"] if e["ph"] == "X"]
    assert len(events) == len(prof.events)
    first = events[0]
    assert first["cat"] == "forward" and first["dur"] == pytest.approx(1e6 * prof.events[0].seconds)
    starts = [e["ts"] for e in events if e["cat"] == "forward"]
    assert starts == sorted(starts)


def test_off_after_the_block_even_after_an_error():
    with pytest.raises(ZeroDivisionError), profile():
        raise ZeroDivisionError
    assert tensor.observers == []
    assert (tensor.run_forward, tensor.run_backward) == (plain_forward, plain_backward)   # no tool code left on


def test_a_tool_inside_another_leaves_the_outer_one_watching():
    """The engine's steps stay observed until the last tool is off: the outer profile sees the ops run after the
    inner one ended, and then the plain steps come back."""
    x = Tensor(np.ones(3), requires_grad=True)
    with profile() as outer:
        with profile() as inner:
            (x * 2).sum().backward()
        (x * 3).sum().backward()
    events = [(e.name, e.phase) for e in inner.events]
    assert events == [("MulOp", "forward"), ("SumOp", "forward"), ("SumOp", "backward"), ("MulOp", "backward"),
                      ("AccumulateGrad", "backward")]
    assert [(e.name, e.phase) for e in outer.events] == events * 2
    assert tensor.observers == [] and (tensor.run_forward, tensor.run_backward) == (plain_forward, plain_backward)
