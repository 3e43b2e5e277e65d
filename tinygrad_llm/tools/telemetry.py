"""Training health: every `every` iterations, the numbers that tell whether a network trains well, one JSON line
each in telemetry.jsonl (telemetry_plots.py draws them).

    telemetry = Telemetry(model, every=10, path="out/telemetry.jsonl")
    for iteration in range(max_iters):
        with telemetry.watch(iteration):         # on a telemetry iteration, looks at this forward's activations
            _, loss = model(x, y)
        optimizer.zero_grad()
        loss.backward()
        total_norm = float(clip_grad_norm_(model.parameters(), 1.0))
        with telemetry.watch_step(iteration, total_norm, max_norm=1.0):   # the norms before, the update after
            optimizer.step()

Per parameter: the norm of its gradient (as the optimizer uses it, after clipping), of its weight before the step,
and log10(|Δw| / |w|), Δw being the update the optimizer actually made (AdamW's, weight decay included): around
-3 is the classic sign of a healthy rate (Karpathy's rule of thumb); far below, the layer barely learns; far above,
it thrashes. Per block (Block, EncoderBlock, DecoderBlock): the mean and standard deviation of its output and
their histogram (over mean ± 4 std, which follows the scale as it grows from the initial 0.02), the fraction of
its GELU inputs in saturation (|x| > 3, where GELU is flat at 0 or straight as x: its derivative within 0.4% of 0
or 1), and the entropy of each attention head's probabilities, in nats, averaged over batch and queries (log T
is uniform attention; 0 is one key only). And the global gradient norm before clipping, and whether clipping
fired. `callback(record)` receives each record as it is written. Telemetry only looks: the loop makes every step
itself, and the weights are those of the same loop without it.
"""
import json
import math
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from ..engine import backend
from ..engine.cuda.fused import CudaAttentionOp, CudaGeluTanhOp
from ..engine.functional import AttentionOp, GeluOp, attention_bias
from ..models.transformer import Block, DecoderBlock, EncoderBlock
from .observer import ModulePaths, Observer, norm

SATURATED = 3.0                        # |x| beyond which GELU is flat or straight
BINS, SPREAD = 50, 4.0                 # activation histograms: 50 bins over mean ± 4 std (outliers in the end bins)


def _host(array):
    return backend.to_device(array, "cpu").astype(np.float64)


def attention_entropy(q, k, bias, scale):
    """Per head, the mean over batch and queries of -Σ P log P, P = softmax(scale q kᵀ + bias) over the keys.
    q (B, nh, Tq, hs), k (B, nh, Tk, hs), bias broadcastable to (B, nh, Tq, Tk) -> (nh,)."""
    scores = scale * _host(q) @ _host(k).swapaxes(-1, -2) + _host(bias)           # (B, nh, Tq, Tk)
    scores -= scores.max(axis=-1, keepdims=True)
    p = np.exp(scores)
    p /= p.sum(axis=-1, keepdims=True)
    plogp = np.where(p > 0, p * np.log(np.where(p > 0, p, 1)), 0.0)               # 0 log 0 = 0
    return (-plogp.sum(axis=-1)).mean(axis=(0, 2))                                 # (nh,)


class _Activations(Observer):
    """During one forward: each block's GELU inputs and attention heads, found by the module that ran the op."""

    def __init__(self, blocks):
        self.blocks, self.paths = blocks, ModulePaths()
        self.saturated = {name: [0, 0] for name in blocks}   # block -> [inputs in saturation, inputs]
        self.entropy = {name: [] for name in blocks}         # block -> one (nh,) array per attention call

    def block_of(self):
        path = self.paths.current() or ""
        return next((name for name in self.blocks if path == name or path.startswith(name + ".")), None)

    def forward(self, ctx, inputs, out, seconds):
        if not isinstance(ctx, (GeluOp, CudaGeluTanhOp, AttentionOp, CudaAttentionOp)):
            return
        block = self.block_of()
        if block is None:
            return
        if isinstance(ctx, (GeluOp, CudaGeluTanhOp)):
            x = _host(inputs[0].data)
            self.saturated[block][0] += int((np.abs(x) > SATURATED).sum())
            self.saturated[block][1] += x.size
            return
        q, k = inputs[0].data, inputs[1].data
        if isinstance(ctx, AttentionOp):
            bias = inputs[3]
        else:   # the kernel takes no mask, only is_causal, and its scale may be left to the default
            bias = attention_bias(q.shape[-2], k.shape[-2], None, ctx.is_causal, like=q)
        scale = ctx.scale if ctx.scale is not None else 1 / math.sqrt(q.shape[-1])
        self.entropy[block].append(attention_entropy(q, k, bias, scale))


class Telemetry:
    """Records the health of `model` every `every` iterations to `path` (JSON lines); see the module's docstring.
    `every=0` records nothing and leaves `path` alone (as `--telemetry 0`; the trainer's ranks other than 0).
    `start`: the iteration a resumed run starts at (the file's lines from there on are dropped)."""

    def __init__(self, model, every, path, start=0, callback=None):
        if every < 0:
            raise ValueError(f"Telemetry: every must be at least 0 (0: off), got {every}")
        self.model, self.every, self.path, self.callback = model, every, Path(path), callback
        self.blocks = {name: m for name, m in model.named_modules()
                       if isinstance(m, (Block, EncoderBlock, DecoderBlock))}
        self.pending = None   # the activations of the iteration being recorded
        if every and self.path.exists():
            kept = [line for line in self.path.read_text().splitlines() if _complete(line, start)]
            self.path.write_text("".join(line + "\n" for line in kept))

    def due(self, iteration):
        return self.every > 0 and iteration % self.every == 0

    @contextmanager
    def watch(self, iteration):
        """Around the forward pass: on a telemetry iteration, every block's output, GELU inputs and attention."""
        if not self.due(iteration):
            yield
            return
        outputs = {}

        def keep(name):
            def hook(module, args, out):   # returns None: the block's output stays as it is
                outputs.setdefault(name, _host(out.data))
            return hook

        handles = [block.register_forward_hook(keep(name)) for name, block in self.blocks.items()]
        try:
            with _Activations(list(self.blocks)) as seen:
                yield
        finally:
            for handle in handles:
                handle.remove()
        self.pending = (iteration, outputs, seen)

    @contextmanager
    def watch_step(self, iteration, total_norm=None, max_norm=None):
        """Around `optimizer.step()`, which the caller makes: on a telemetry iteration, each parameter's gradient and
        weight norms before it and the update it made after it, written with the activations `watch` saw.
        total_norm: float(clip_grad_norm_(...)) (the norm before clipping; None: not clipped, computed here from
        the gradients), max_norm: its threshold."""
        if not self.due(iteration):
            yield
            return
        params = list(self.model.named_parameters())
        before = {name: _host(p.data) for name, p in params}
        grads = {name: None if p.grad is None else norm(p.grad.data) for name, p in params}
        yield
        if total_norm is None:   # not clipped: the global norm from the parameters' own
            total_norm = math.sqrt(sum(g ** 2 for g in grads.values() if g is not None))
        record = {"iter": iteration, "grad_norm": total_norm,
                  "clipped": None if total_norm is None or max_norm is None else bool(total_norm > max_norm),
                  "params": {}, "blocks": {}}
        for name, p in params:
            weight = float(np.sqrt((before[name] ** 2).sum()))
            update = float(np.sqrt(((_host(p.data) - before[name]) ** 2).sum()))
            ratio = math.log10(update / weight) if update > 0 and weight > 0 else None
            record["params"][name] = {"shape": list(p.shape), "grad": grads[name], "weight": weight,
                                      "update_log10": ratio}
        if self.pending is not None and self.pending[0] == iteration:
            record["blocks"] = self._blocks(*self.pending[1:])
        self.pending = None
        with open(self.path, "a") as f:
            f.write(json.dumps(record) + "\n")
        if self.callback is not None:
            self.callback(record)

    def _blocks(self, outputs, seen):
        result = {}
        for name in self.blocks:
            out = outputs.get(name)
            if out is None:
                continue   # not run in this forward
            saturated, total = seen.saturated[name]
            mean, std = float(out.mean()), float(out.std())
            low, high = mean - SPREAD * std, mean + SPREAD * std
            counts, _ = np.histogram(np.clip(out, low, high), bins=BINS, range=(low, high))
            result[name] = {"mean": mean, "std": std,
                            "histogram": {"from": low, "to": high, "counts": counts.tolist()},
                            "gelu_saturation": saturated / total if total else None,
                            "attention_entropy": np.mean(seen.entropy[name], axis=0).tolist()
                            if seen.entropy[name] else None}
        return result


def _complete(line, start):
    """A whole line of an iteration before `start` (what a resumed run keeps; a torn last line is dropped)."""
    try:
        return json.loads(line)["iter"] < start
    except (ValueError, KeyError, TypeError):
        return False


def read(path):
    """The records of a telemetry.jsonl, in order."""
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
