"""A profiler of the engine: `with profile() as prof:` times every op's forward and backward.

Each event is one Function's forward or backward: its class name, the module whose forward made it, its input and
output shapes, the wall time it took and the bytes of the new arrays it allocated (its output or gradients, and
what it saved for backward, leaving out views and the arrays it was given). `prof.table()` adds them up per op or
per module, sorted by total time, as torch.profiler's key_averages does; what the table does not account for is
the Python between the ops (the modules' own code, the backward walk's bookkeeping, this profiler's recording).
`prof.region(name)` times a stretch that is no op (an optimizer step) as one more row; `prof.export_chrome_trace(
path)` writes the events as a Chrome trace, which Perfetto (ui.perfetto.dev) and chrome://tracing open.
"""
import json
import time
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import dataclass

from ..engine import backend
from ..engine.tensor import Tensor
from .observer import ModulePaths, Observer


@dataclass
class Event:
    name: str          # the Function's class name (LinearOp), or a region's name
    phase: str         # "forward", "backward" or "region"
    module: str        # the dotted path of the module that made the op; "" for the model itself; "-" for none
    input_shapes: tuple
    output_shapes: tuple
    start: float       # seconds since the profile began
    seconds: float
    bytes: int         # of the new arrays


def _array(x):
    return x.data if isinstance(x, Tensor) else getattr(x, "values", x)   # movement.py's IndexedGrad: its values


def new_bytes(arrays, given):
    """The bytes of the memory that `arrays` live in, leaving out what `given` live in (a view of an input is
    nothing new), each buffer once."""
    seen = {id(backend.buffer_of(a)) for a in given if hasattr(a, "nbytes")}
    total = 0
    for a in arrays:
        if not hasattr(a, "nbytes"):
            continue   # None, or a number kept for backward
        owner = backend.buffer_of(a)
        if id(owner) not in seen:
            seen.add(id(owner))
            total += getattr(owner, "nbytes", a.nbytes)
    return total


def _shapes(values):
    return tuple(tuple(_array(v).shape) if hasattr(_array(v), "shape") else None for v in values)


class profile(Observer):
    """`with profile() as prof:` records every op's forward and backward until the block ends; `prof.events` holds
    them, `prof.seconds` the block's wall time."""

    def __enter__(self):
        self.events, self.paths, self.made_by = [], ModulePaths(), {}
        self.began = time.perf_counter()
        return super().__enter__()

    def __exit__(self, *exc):
        super().__exit__(*exc)
        self.seconds = time.perf_counter() - self.began

    def forward(self, ctx, inputs, out, seconds):
        end = time.perf_counter() - self.began
        path = self.paths.current()
        module = "-" if path is None else path
        if out._ctx is ctx:
            self.made_by[ctx] = module     # its backward is counted with the same module
        given = [x.data if isinstance(x, Tensor) else x for x in inputs]
        self.events.append(Event(type(ctx).__name__, "forward", module, _shapes(inputs), (tuple(out.shape),),
                                 end - seconds, seconds, new_bytes([out.data, *ctx.saved], given)))

    def backward(self, ctx, out, grad, input_grads, seconds):
        end = time.perf_counter() - self.began
        if ctx is None:   # a leaf: grad added into its .grad (PyTorch's profiler calls this AccumulateGrad too)
            module = self.paths.parameters.get(id(out), "-")
            self.events.append(Event("AccumulateGrad", "backward", module, (tuple(out.shape),), (tuple(out.shape),),
                                     end - seconds, seconds, new_bytes([out.grad.data], [grad])))
            return
        grads = [_array(g) for _, g in input_grads]
        self.events.append(Event(type(ctx).__name__, "backward", self.made_by.pop(ctx, "-"), (tuple(out.shape),),
                                 _shapes(grads), end - seconds, seconds, new_bytes(grads, [grad])))

    @contextmanager
    def region(self, name):
        """Time the block as one event named `name` (for work that is no op, such as `optimizer.step()`)."""
        began = time.perf_counter()
        yield
        end = time.perf_counter()
        self.events.append(Event(name, "region", "-", (), (), began - self.began, end - began, 0))

    def total(self):
        """The seconds of every event together (the ops' forward and backward, and the regions)."""
        return sum(e.seconds for e in self.events)

    def table(self, group_by="op", limit=None):
        """One row per op (group_by="op") or per module ("module"): calls (forwards, or backward steps where there
        is no forward: AccumulateGrad), forward, backward and total time in ms, share of the profile's wall time,
        new memory in MB; sorted by total time, longest first."""
        if group_by not in ("op", "module"):
            raise ValueError(f"table: group_by must be 'op' or 'module', got {group_by!r}")
        rows = defaultdict(lambda: {"forward": 0.0, "backward": 0.0, "region": 0.0, "bytes": 0,
                                    "count": {"forward": 0, "backward": 0, "region": 0}})
        for e in self.events:
            row = rows[e.name if group_by == "op" else e.module]
            row["count"][e.phase] += 1
            row[e.phase] += e.seconds
            row["bytes"] += e.bytes
        ranked = sorted(rows.items(), key=lambda kv: -(kv[1]["forward"] + kv[1]["backward"] + kv[1]["region"]))
        wall = getattr(self, "seconds", time.perf_counter() - self.began)
        width = max([len(group_by)] + [len(name) for name, _ in ranked])
        header = (f"{group_by:<{width}}  {'calls':>6} {'forward ms':>11} {'backward ms':>12} {'total ms':>9} "
                  f"{'% wall':>7} {'new MB':>8}")
        lines = [header]
        for name, row in ranked[:limit]:
            total = row["forward"] + row["backward"] + row["region"]
            calls = row["count"]["forward"] + row["count"]["region"] or row["count"]["backward"]
            lines.append(f"{name:<{width}}  {calls:>6} {1e3 * (row['forward'] + row['region']):>11.2f} "
                         f"{1e3 * row['backward']:>12.2f} {1e3 * total:>9.2f} {100 * total / wall:>6.1f}% "
                         f"{row['bytes'] / 2**20:>8.1f}")
        lines.append(f"{len(self.events)} events: {1e3 * self.total():.1f} ms of the profile's {1e3 * wall:.1f} ms "
                     f"wall time ({100 * self.total() / wall:.1f}%; the rest is Python between the ops)")
        return "\n".join(lines)

    def export_chrome_trace(self, path):
        """Write the events as Chrome's trace format (JSON): forward on one row, backward on the next."""
        rows = {"forward": 0, "backward": 1, "region": 2}
        events = [{"name": e.name, "cat": e.phase, "ph": "X", "pid": 0, "tid": rows[e.phase],
                   "ts": 1e6 * e.start, "dur": 1e6 * e.seconds,
                   "args": {"module": e.module, "inputs": str(e.input_shapes), "outputs": str(e.output_shapes),
                            "bytes": e.bytes}} for e in self.events]
        names = [{"name": "thread_name", "ph": "M", "pid": 0, "tid": tid, "args": {"name": phase}}
                 for phase, tid in rows.items()]
        with open(path, "w") as f:
            json.dump({"traceEvents": names + events, "displayTimeUnit": "ms"}, f)
