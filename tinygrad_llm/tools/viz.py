"""The graph, drawn: every tensor and every op that led to a result, as a graphviz picture or a text tree.

    with viz.trace() as t:                 # notes which module made each op, and each dL/d(tensor) in backward
        _, loss = model(x, y)
        loss.backward(retain_graph=True)   # keep the graph: it is what is drawn
    viz.draw(loss, t, depth=3).render("gpt", format="png")    # a graphviz.Digraph; or viz.save(...)
    print(viz.text(loss, t, depth=3))

A tensor node shows its shape and dtype (a parameter also its module path, `transformer.h.0.attn.c_attn.weight`),
and, once backward has run, the norm of its gradient: a leaf's .grad, or for another tensor the dL/d(tensor) the
trace saw. An op node shows its Function's name. Ops sit in boxes (clusters) of the module whose forward made them;
with `depth`, every module `depth` dots deep is drawn as a single box (`transformer.h.0`: a Block, its op count and
parameters), so a whole GPT reads as its blocks. Without a trace there are no module boxes and only the leaves'
gradients; `model=` still names the parameters.
"""
import shutil
from dataclasses import dataclass, field

from ..engine.tensor import Tensor
from .observer import ModulePaths, Observer, norm


class trace(Observer):
    """Records, while on, the module that made each op (by its dotted path) and, in backward, the norm of the
    gradient of each op's output."""

    def __enter__(self):
        self.paths, self.module_of, self.grad_norm_of = ModulePaths(), {}, {}   # op -> path; op -> |dL/d(out)|
        return super().__enter__()

    def forward(self, ctx, inputs, out, seconds):
        if out._ctx is ctx:
            self.module_of[ctx] = self.paths.current()

    def backward(self, ctx, out, grad, input_grads, seconds):
        if ctx is not None:   # a leaf's gradient is its .grad
            self.grad_norm_of[ctx] = norm(grad)


@dataclass
class Box:
    """One node of the picture: an op, a module collapsed to one box, or a tensor."""
    label: str
    home: str = None       # the module path of the cluster it is drawn in (None: outside every module)
    kind: str = "op"       # "op", "module" or "tensor"
    inputs: list = field(default_factory=list)   # the keys of the boxes with an arrow into this one


def _graph(root):
    """[(op, output tensor)] for every op that leads to root, each once (iterative: a deep graph needs no
    recursion), and every tensor met, keyed by id, root first."""
    ops, tensors, stack = [], {id(root): root}, [root]
    while stack:
        t = stack.pop()
        ctx = t._ctx
        if ctx is None:
            continue
        if ctx.freed:
            raise RuntimeError("viz: the graph was freed by backward; draw it before backward, or call "
                               "backward(retain_graph=True)")
        ops.append((ctx, t))
        for parent in ctx.parents:
            if parent is not None and id(parent) not in tensors:
                tensors[id(parent)] = parent
                stack.append(parent)
    return ops, tensors


def _tensor_label(t, name, grad_norm):
    lines = ([name] if name else []) + [f"{tuple(t.shape)} {t.dtype}"]
    if grad_norm is not None:
        lines.append(f"|grad| {grad_norm:.3g}")
    return "\n".join(lines)


def boxes(root, trace=None, model=None, depth=None):
    """The picture as {key: Box}: what draw and text show. Raises if backward has freed the graph."""
    if not isinstance(root, Tensor):
        raise TypeError(f"viz: draws the graph behind a Tensor, got {type(root).__name__}")
    ops, tensors = _graph(root)
    models = [model] if model is not None else (trace.paths.roots if trace is not None else [])
    names = {}
    for m in models:
        for name, p in m.named_parameters():
            names.setdefault(id(p), name)
    module_of = trace.module_of if trace is not None else {}

    def collapsed(path):
        """The module box an op made inside `path` goes into at this depth, or None."""
        parts = [] if path is None or path == "" else path.split(".")
        return ".".join(parts[:depth]) if depth is not None and len(parts) >= depth else None

    result, producer, group_ops = {}, {}, {}
    for number, (ctx, out) in enumerate(ops):   # keys by number, not id: the same DOT source every run
        path = module_of.get(ctx)
        group = collapsed(path)
        if group is None:
            key = f"op{number}"
            result[key] = Box(type(ctx).__name__, home=path or None)
        else:
            key = f"module {group}"
            group_ops[group] = group_ops.get(group, 0) + 1
        producer[id(out)] = key
    for group, count in group_ops.items():
        module = trace.paths.module(group)
        parameters = sum(p.numel() for p in module.parameters()) if module is not None else 0
        kind = f"{type(module).__name__}, " if module is not None else ""
        result[f"module {group}"] = Box(f"{group}\n{kind}{count} ops, {parameters:,} parameters",
                                        home=_parent(group), kind="module")
    consumers = {}
    for ctx, out in ops:
        for parent in ctx.parents:
            if parent is not None:
                consumers.setdefault(id(parent), []).append(producer[id(out)])
    for number, (key, t) in enumerate(tensors.items()):   # root first: "t0"
        made_by = producer.get(key)
        name = names.get(key)
        users = set(consumers.get(key, []))
        only_user = users.pop() if len(users) == 1 else ""
        if only_user.startswith("module "):
            group = only_user[len("module "):]
            if made_by == only_user or (name or "").startswith(group + "."):
                continue   # made inside, or a parameter of, the one collapsed module that uses it: part of its box
        if t.is_leaf:
            grad_norm = None if t.grad is None else norm(t.grad.data)
        else:
            grad_norm = None if trace is None else trace.grad_norm_of.get(t._ctx)
        # drawn beside the op that made it, or (when ops are in their modules' clusters) a parameter in its module's
        home = result[made_by].home if made_by is not None else (_parent(name) if name and trace else None)
        label = _tensor_label(t, name or ("output" if t is root else ""), grad_norm)
        result[f"t{number}"] = Box(label, home=home, kind="tensor", inputs=[made_by] if made_by else [])
        for user in dict.fromkeys(consumers.get(key, [])):
            result[user].inputs.append(f"t{number}")
    return result


def draw(root, trace=None, model=None, depth=None):
    """The graph behind `root` as a graphviz.Digraph (tensors as boxes, ops as ellipses, arrows in the direction
    of the forward pass). It renders where Graphviz's `dot` is installed (`.render()`, or inline in a notebook);
    its DOT source (`.source`) needs nothing more."""
    import graphviz

    pictured = boxes(root, trace, model, depth)
    graph = graphviz.Digraph("graph", graph_attr={"rankdir": "TB", "fontname": "Helvetica", "fontsize": "11"},
                             node_attr={"fontname": "Helvetica", "fontsize": "10"})
    clusters = {}   # module path -> the keys drawn in its cluster
    for key, box in pictured.items():
        clusters.setdefault(box.home, []).append(key)
    style = {"op": {"shape": "ellipse", "style": "filled", "fillcolor": "#dbe8f6"},
             "module": {"shape": "box3d", "style": "filled", "fillcolor": "#fde9c9"},
             "tensor": {"shape": "box", "style": "rounded"}}

    def fill(subgraph, path):
        for key in clusters.get(path, []):
            subgraph.node(key, pictured[key].label, **style[pictured[key].kind])
        for child in sorted(p for p in clusters if p is not None and _parent(p) == path):
            with subgraph.subgraph(name=f"cluster_{child}") as inner:
                inner.attr(label=child, style="rounded", color="#9a9a9a", fontsize="10")
                fill(inner, child)

    for path in list(clusters):   # every enclosing module gets a cluster, even one holding no node itself
        while path is not None:
            clusters.setdefault(path, [])
            path = _parent(path)
    fill(graph, None)
    for key, box in pictured.items():
        for source in box.inputs:
            graph.edge(source, key)
    return graph


def _parent(path):
    """transformer.h.0 -> transformer.h; transformer -> None (the top)."""
    return path.rsplit(".", 1)[0] if "." in path else None


def save(graph, path, format="png"):
    """Render a Digraph to `path` + "." + format with Graphviz's `dot`; its DOT source goes to `path` + ".dot"
    either way. Without `dot` the error says how to get it, and where the source is."""
    source = f"{path}.dot"
    with open(source, "w") as f:
        f.write(graph.source)
    if shutil.which("dot") is None:   # graphviz's own error would only say that an executable was not found
        raise RuntimeError(f"viz.save: Graphviz's `dot` program is not installed, so no {format} was made. The DOT "
                           f"source is in {source}: install Graphviz (apt-get install graphviz, brew install "
                           f"graphviz, conda install graphviz) and run `dot -T{format} {source} -o {path}.{format}`, "
                           f"or paste the source into an online Graphviz viewer")
    with open(f"{path}.{format}", "wb") as f:
        f.write(graph.pipe(format=format))
    return f"{path}.{format}"


def text(root, trace=None, model=None, depth=None):
    """The same graph as a tree for a terminal: the result at the top, each box's inputs indented below it. A box
    reached again is shown by its number only ("[3] (above)")."""
    pictured = boxes(root, trace, model, depth)
    lines, numbers = [], {}   # key of a box already shown -> its number
    stack = [("t0", "", "")]   # (key, the prefix of its own line, the prefix of its children's lines)
    while stack:
        key, first, rest = stack.pop()
        box = pictured[key]
        label = " ".join(box.label.split("\n"))
        # a tensor and what made it share one line: "[n] LinearOp (lm_head) -> (2, 8, 65) float32 |grad| 0.1"
        made_by = box.inputs[0] if box.inputs else None
        if made_by is None:
            lines.append(f"{first}{label}")
            continue
        if made_by in numbers:
            lines.append(f"{first}[{numbers[made_by]}] (above) -> {label}")
            continue
        numbers[made_by] = len(numbers) + 1
        maker = pictured[made_by]
        if maker.kind == "op":
            name = maker.label + (f" ({maker.home})" if maker.home else "")
        else:
            name = ", ".join(maker.label.split("\n"))
        lines.append(f"{first}[{numbers[made_by]}] {name} -> {label}")
        children = maker.inputs
        for i, child in reversed(list(enumerate(children))):
            last = i == len(children) - 1
            stack.append((child, rest + ("└─ " if last else "├─ "), rest + ("   " if last else "│  ")))
    return "\n".join(lines)
