"""Tests of tinygrad_llm/nn/'s PyTorch pieces: nn.Parameter, the activation and loss modules, named_modules and
apply, forward and backward hooks, and print(model). Each is compared with torch.nn where torch has the same thing
(values and gradients in float64, 1e-10 relative), and each has a test of its error on bad input."""
import math
import re

import numpy as np
import pytest

from tinygrad_llm import Tensor, nn
from tinygrad_llm.engine.gradcheck import gradcheck

from conftest import assert_raises_naming, tensor, tolerances, torch_tensor

T_2D = np.array([0, 3, -100, 1, 2])           # for logits (5, 4); row 2 ignored
T_3D = np.array([[0, 3, -100], [1, 2, 2]])     # for logits (2, 4, 3); one position ignored


def inputs(*shapes, seed=0):
    r = np.random.default_rng(seed)
    return [r.standard_normal(shape) for shape in shapes]


# ---------------------------------------------------------------- nn.Parameter

def test_parameter_is_a_tensor_that_requires_grad_and_shares_its_data():
    array = np.zeros((2, 3))
    p = nn.Parameter(array)
    assert isinstance(p, Tensor) and isinstance(p, nn.Parameter)
    assert p.requires_grad and p.is_leaf and p.dtype == np.float64
    array[0, 0] = 5.0
    assert p.data[0, 0] == 5.0                                  # the same array, as PyTorch shares storage
    assert nn.Parameter(Tensor(array)).data is p.data
    assert not nn.Parameter(array, requires_grad=False).requires_grad
    assert repr(p).startswith("Parameter containing:\n")
    (p * 2).sum().backward()
    np.testing.assert_array_equal(p.grad.numpy(), np.full((2, 3), 2.0))


def test_parameter_of_integers_that_requires_grad_is_an_error():
    with pytest.raises(TypeError, match=r"Parameter: .*int64 \(3,\)"):
        nn.Parameter(np.arange(3))
    assert nn.Parameter(np.arange(3), requires_grad=False).dtype == np.int64


def test_modules_register_parameters_even_when_frozen():
    class Scale(nn.Module):
        def __init__(self):
            self.gain = nn.Parameter(np.ones(3))
            self.frozen = nn.Parameter(np.zeros(3), requires_grad=False)
            self.data = Tensor(np.ones(3))                      # a plain tensor is not a parameter

        def forward(self, x):
            return x * self.gain + self.frozen

    model = Scale()
    assert [name for name, _ in model.named_parameters()] == ["gain", "frozen"]
    assert sorted(model.state_dict()) == ["frozen", "gain"]     # a frozen layer is still saved
    model.to(np.float32)
    assert model.frozen.dtype == np.float32 and isinstance(model.frozen, nn.Parameter)  # ... and moved
    assert isinstance(nn.Linear(2, 3).weight, nn.Parameter) and isinstance(nn.LayerNorm(3).bias, nn.Parameter)


# ---------------------------------------------------------------- activation and loss modules against torch

ACTIVATIONS = [
    ("ReLU", lambda m: m.ReLU()),
    ("GELU-none", lambda m: m.GELU()),
    ("GELU-tanh", lambda m: m.GELU(approximate="tanh")),
    ("Tanh", lambda m: m.Tanh()),
    ("Sigmoid", lambda m: m.Sigmoid()),
]


@pytest.mark.parametrize("make", [a[1] for a in ACTIVATIONS], ids=[a[0] for a in ACTIVATIONS])
def test_activation_modules_match_torch(make, torch):
    (x,) = inputs((4, 5))
    x = 2 * x
    ours, theirs = tensor(x), torch_tensor(torch, x)
    out, expected = make(nn)(ours), make(torch.nn)(theirs)
    upstream = inputs((4, 5), seed=1)[0]
    out.backward(upstream)
    expected.backward(torch.tensor(upstream))
    np.testing.assert_allclose(out.detach().numpy(), expected.detach().numpy(), **tolerances(np.float64))
    np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), **tolerances(np.float64))
    assert gradcheck(make(nn), [tensor(x)]).passed


LOSSES = [
    ("ce-2d", (5, 4), T_2D, lambda m: m.CrossEntropyLoss()),
    ("ce-2d-sum-smooth", (5, 4), T_2D, lambda m: m.CrossEntropyLoss(reduction="sum", label_smoothing=0.2)),
    ("ce-3d-none-smooth", (2, 4, 3), T_3D, lambda m: m.CrossEntropyLoss(reduction="none", label_smoothing=0.1)),
    ("ce-ignore-2-smooth", (5, 4), T_2D % 4, lambda m: m.CrossEntropyLoss(ignore_index=2, label_smoothing=0.3)),
    ("mse-mean", (3, 4), None, lambda m: m.MSELoss()),
    ("mse-sum", (3, 4), None, lambda m: m.MSELoss(reduction="sum")),
    ("mse-none", (2, 3, 4), None, lambda m: m.MSELoss(reduction="none")),
]


@pytest.mark.parametrize("shape, targets, make", [loss[1:] for loss in LOSSES], ids=[loss[0] for loss in LOSSES])
def test_loss_modules_match_torch(shape, targets, make, torch):
    x, y = inputs(shape, shape)
    target = targets if targets is not None else y             # class indices, or a float target for MSE
    ours = tensor(x)
    out = make(nn)(ours, target)
    theirs = torch_tensor(torch, x)
    expected = make(torch.nn)(theirs, torch.tensor(target))
    upstream = inputs(out.shape, seed=2)[0]
    out.backward(upstream)
    expected.backward(torch.tensor(upstream))
    np.testing.assert_allclose(out.detach().numpy(), expected.detach().numpy(), **tolerances(np.float64))
    np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), **tolerances(np.float64))
    assert gradcheck(lambda logits: make(nn)(logits, target), [tensor(x)]).passed


MODULE_ERRORS = [
    ("gelu-approximate", lambda: nn.GELU(approximate="fast")(tensor(np.ones(3))), ValueError, ["gelu", "'fast'"]),
    ("ce-label-smoothing", lambda: nn.CrossEntropyLoss(label_smoothing=2.0)(tensor(np.ones((3, 4))), [0, 1, 2]),
     ValueError, ["cross_entropy", "label_smoothing", "2.0"]),
    ("ce-reduction", lambda: nn.CrossEntropyLoss(reduction="avg")(tensor(np.ones((3, 4))), [0, 1, 2]),
     ValueError, ["CrossEntropyLoss", "'avg'"]),
    ("ce-class-weights", lambda: nn.CrossEntropyLoss(tensor(np.ones(3)))(tensor(np.ones((3, 4))), [0, 1, 2]),
     RuntimeError, ["cross_entropy", "not differentiable with respect to weight"]),
    ("ce-targets", lambda: nn.CrossEntropyLoss()(tensor(np.ones((3, 4))), [0, 1]), ValueError,
     ["cross_entropy", "(3, 4)", "(2,)"]),
    ("mse-shapes", lambda: nn.MSELoss()(tensor(np.ones((3, 1))), np.ones(3)), ValueError,
     ["mse_loss", "(3, 1)", "(3,)"]),
    ("mse-reduction", lambda: nn.MSELoss(reduction="avg")(tensor(np.ones(3)), np.ones(3)), ValueError,
     ["MSELoss", "'avg'"]),
    ("linear-negative", lambda: nn.Linear(-1, 3), ValueError, ["Linear", "in_features", "-1"]),
    ("linear-fraction", lambda: nn.Linear(4, 2.5), ValueError, ["Linear", "out_features", "2.5"]),
    ("embedding-negative", lambda: nn.Embedding(5, -2), ValueError, ["Embedding", "embedding_dim", "-2"]),
]


@pytest.mark.parametrize("call, error, words", [e[1:] for e in MODULE_ERRORS], ids=[e[0] for e in MODULE_ERRORS])
def test_module_errors_name_the_op_and_the_argument(call, error, words):
    assert_raises_naming(call, error, words)


# ---------------------------------------------------------------- a Linear with no inputs or no outputs

@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("in_features, out_features", [(0, 3), (3, 0)])
@pytest.mark.filterwarnings("ignore:Initializing zero-element tensors is a no-op")   # torch's, for Linear(0, n)
def test_a_linear_of_size_zero_gives_pytorchs_values_and_gradients(in_features, out_features, fused, torch):
    """nn.Linear(0, 3) is built as PyTorch builds it, an empty weight and a zero bias (its bound 1/sqrt(0) taken
    as 0), and maps (B, T, 0) to the bias; Linear(3, 0) maps to (B, T, 0). Values and gradients equal PyTorch's,
    through the fused op and its composed twin."""
    import tinygrad_llm.engine.functional as F
    ours, theirs = nn.Linear(in_features, out_features).to(np.float64), torch.nn.Linear(in_features, out_features)
    theirs = theirs.double()
    assert ours.weight.shape == tuple(theirs.weight.shape) and not ours.bias.detach().numpy().any()
    bias = inputs((out_features,), seed=3)[0]                  # a bias of its own: the output must show it
    ours.bias.data[...] = bias
    with torch.no_grad():
        theirs.bias.copy_(torch.tensor(bias))
    x = inputs((2, 4, in_features))[0]
    ours_x, theirs_x = tensor(x), torch_tensor(torch, x)
    with F.fused(fused):
        out = ours(ours_x)
    expected = theirs(theirs_x)
    upstream = inputs((2, 4, out_features), seed=1)[0]
    out.backward(upstream)
    expected.backward(torch.tensor(upstream))
    assert out.shape == (2, 4, out_features)
    np.testing.assert_allclose(out.detach().numpy(), expected.detach().numpy(), **tolerances(np.float64))
    for mine, their in ((ours.weight, theirs.weight), (ours.bias, theirs.bias), (ours_x, theirs_x)):
        assert mine.grad.shape == tuple(their.grad.shape)
        np.testing.assert_allclose(mine.grad.numpy(), their.grad.numpy(), **tolerances(np.float64))


# ---------------------------------------------------------------- load_state_dict

def test_load_state_dict_takes_another_models_parameters():
    """As in PyTorch, the values may be Tensors that require grad, such as another model's parameters."""
    source, target = nn.Linear(2, 3), nn.Linear(2, 3)
    target.load_state_dict(dict(source.named_parameters()))
    assert np.array_equal(target.weight.detach().numpy(), source.weight.detach().numpy())
    assert target.weight is not source.weight


# ---------------------------------------------------------------- the tree: named_modules, apply

def tree(m):
    """The same small model in our nn or torch.nn: nested, with one module shared by two parents."""
    shared = m.Linear(3, 3)
    return m.Sequential(m.Linear(2, 3), m.Sequential(m.ReLU(), shared), m.Sequential(shared, m.Tanh()))


def test_named_modules_names_and_order_match_torch(torch):
    for remove_duplicate in (True, False):
        ours = [(name, type(m).__name__) for name, m in tree(nn).named_modules(remove_duplicate=remove_duplicate)]
        theirs = [(name, type(m).__name__)
                  for name, m in tree(torch.nn).named_modules(remove_duplicate=remove_duplicate)]
        assert ours == theirs
    assert [name for name, _ in tree(nn).named_modules(prefix="net")][:3] == ["net", "net.0", "net.1"]
    model = tree(nn)
    assert list(model.modules()) == [m for _, m in model.named_modules()]
    assert next(model.modules()) is model and next(model.parameters()) is model[0].weight   # iterators, as torch's


def test_apply_visits_children_first_like_torch_and_returns_self(torch):
    ours, theirs = [], []
    model = tree(nn)
    assert model.apply(lambda m: ours.append(type(m).__name__)) is model
    tree(torch.nn).apply(lambda m: theirs.append(type(m).__name__))
    assert ours == theirs

    def zero_biases(m):
        if isinstance(m, nn.Linear):
            m.bias.data[...] = 0
    model.apply(zero_biases)
    assert all(not m.bias.detach().numpy().any() for m in model.modules() if isinstance(m, nn.Linear))


# ---------------------------------------------------------------- hooks

def test_forward_hook_sees_args_and_output_can_replace_it_and_is_removable():
    layer = nn.Linear(2, 3)
    seen = []
    handle = layer.register_forward_hook(lambda module, args, output: seen.append((module, args, output)))
    x = Tensor(np.ones((4, 2), np.float32))
    out = layer(x)
    [(module, args, output)] = seen
    assert module is layer and args == (x,) and output is out
    doubler = layer.register_forward_hook(lambda module, args, output: output * 2)
    np.testing.assert_allclose(layer(x).detach().numpy(), 2 * out.detach().numpy())
    handle.remove()
    doubler.remove()
    layer(x)
    assert len(seen) == 2                                       # removed: the third call was not seen
    np.testing.assert_array_equal(layer(x).detach().numpy(), out.detach().numpy())


def test_unhooked_modules_give_what_hooked_ones_give_and_hooks_registered_later_fire():
    """Module.__call__ runs forward alone for a module without hooks (no tool watching); once hooks are registered,
    and after they are removed, the outputs and gradients are the same bit for bit, and the hooks fire meanwhile."""
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)).to(np.float64)
    (x,) = inputs((5, 3))

    def outputs_and_grads():
        model.zero_grad()
        out = model(tensor(x, True))
        (out ** 2).sum().backward()
        return [out.detach().numpy()] + [p.grad.numpy() for p in model.parameters()]

    plain = outputs_and_grads()                                 # every module without hooks
    forward_calls, backward_calls = [], []
    handles = [m.register_forward_hook(lambda module, args, output: forward_calls.append(module))
               for m in model.modules()]
    handles.append(model[2].register_full_backward_hook(lambda *args: backward_calls.append(args[0])))
    hooked = outputs_and_grads()
    assert forward_calls == [model[0], model[1], model[2], model] and backward_calls == [model[2]]
    for handle in handles:
        handle.remove()
    removed = outputs_and_grads()
    assert len(forward_calls) == 4 and len(backward_calls) == 1    # removed hooks no longer fire
    for arrays in (hooked, removed):
        for a, b in zip(plain, arrays):
            np.testing.assert_array_equal(a, b)


def twin_mlps(torch):
    """An MLP in our nn and in torch.nn with the same float64 weights."""
    ours = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)).to(np.float64)
    theirs = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2)).double()
    with torch.no_grad():
        for p, q in zip(ours.parameters(), theirs.parameters()):
            q.copy_(torch.tensor(p.detach().numpy()))
    return ours, theirs


@pytest.mark.parametrize("input_requires_grad", [True, False])
@pytest.mark.filterwarnings("ignore:Full backward hook is firing")  # torch, when no input needs a gradient
def test_full_backward_hook_matches_torch_and_can_replace_grad_input(input_requires_grad, torch):
    ours, theirs = twin_mlps(torch)
    (x,) = inputs((5, 3))
    grads = {"ours": [], "theirs": []}

    def recorder(key):
        def hook(module, grad_input, grad_output):
            grads[key].append([None if g is None else np.array(g.detach().numpy()) for g in grad_input + grad_output])
            return tuple(None if g is None else 3 * g for g in grad_input)    # scale what flows on
        return hook

    for model, key in ((ours, "ours"), (theirs, "theirs")):
        model[2].register_full_backward_hook(recorder(key))     # an inner layer: its input needs a gradient
        model[0].register_full_backward_hook(recorder(key))     # the first: its input may need none
    x_ours, x_theirs = tensor(x, input_requires_grad), torch_tensor(torch, x, input_requires_grad)
    (ours(x_ours) ** 2).sum().backward()
    (theirs(x_theirs) ** 2).sum().backward()
    assert len(grads["ours"]) == len(grads["theirs"]) == 2      # each hook ran once, last layer first
    for mine, reference in zip(grads["ours"], grads["theirs"]):
        assert [g is None for g in mine] == [g is None for g in reference]
        for g, h in zip(mine, reference):
            if g is not None:
                np.testing.assert_allclose(g, h, **tolerances(np.float64))
    for p, q in zip(ours.parameters(), theirs.parameters()):   # the replaced (tripled) gradient flowed on
        np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), **tolerances(np.float64))
    if input_requires_grad:
        np.testing.assert_allclose(x_ours.grad.numpy(), x_theirs.grad.numpy(), **tolerances(np.float64))


def test_backward_hook_is_removable_and_skipped_under_no_grad():
    from tinygrad_llm import no_grad
    layer = nn.Linear(2, 2)
    calls = []
    handle = layer.register_full_backward_hook(lambda *a: calls.append(a))
    x = tensor(np.ones((1, 2), np.float32))
    layer(x).sum().backward()
    with no_grad():
        layer(x)                                                # no graph: nothing to tap
    handle.remove()
    layer(x).sum().backward()
    assert len(calls) == 1


class TwoInputs(nn.Module):
    def forward(self, a, b):
        return a * b


class TupleOutput(nn.Module):
    def forward(self, a):
        return a, a


def test_backward_hook_errors_name_the_module():
    a, b = tensor(np.ones(3)), tensor(np.ones(3))
    two = TwoInputs()
    two.register_full_backward_hook(lambda *args: None)
    with pytest.raises(NotImplementedError, match="TwoInputs got 2 inputs that require grad"):
        two(a, b)
    assert two(a, Tensor(np.ones(3))).shape == (3,)            # one input needing a gradient is fine
    pair = TupleOutput()
    pair.register_full_backward_hook(lambda *args: None)
    with pytest.raises(TypeError, match="TupleOutput.forward returned a tuple"):
        pair(a)
    layer = nn.Linear(3, 1).to(np.float64)
    layer.register_full_backward_hook(lambda module, grad_input, grad_output: grad_input[0])  # not a tuple
    with pytest.raises(TypeError, match="backward hook of Linear: .*a tuple of 1"):
        layer(a).sum().backward()


# ---------------------------------------------------------------- print(model)

def strip_counts(text):
    return re.sub(r"  # [\d,]+ parameters?", "", text)


def test_repr_is_torchs_tree_with_parameter_counts(torch):
    def model(m):
        return m.Sequential(m.Embedding(10, 4), m.Linear(4, 8), m.GELU(approximate="tanh"),
                            m.Sequential(m.ReLU(), m.Sigmoid(), m.Tanh()), m.Linear(8, 2, bias=False))
    ours = repr(model(nn))
    assert strip_counts(ours) == repr(model(torch.nn))
    assert ours.splitlines()[0] == "Sequential(  # 96 parameters"    # 40 + 40 + 16
    assert "(1): Linear(in_features=4, out_features=8, bias=True)  # 40 parameters" in ours
    assert "    (0): ReLU()\n" in ours                                # a nested child, indented twice
    assert repr(nn.LayerNorm(6)) == "LayerNorm((6,), eps=1e-05, elementwise_affine=True, bias=True)  # 12 parameters"
    assert repr(nn.Dropout(0.25)) == "Dropout(p=0.25, inplace=False)"


def test_repr_counts_a_shared_parameter_once():
    model = tree(nn)                                            # the shared Linear(3, 3) appears twice
    first_line = repr(model).splitlines()[0]
    assert first_line == f"Sequential(  # {9 + 12:,} parameters"
    assert model.num_params() == 9 + 12


# ---------------------------------------------------------------- a newcomer's PyTorch script, as typed

def test_a_pytorch_style_script_learns_two_spirals():
    """Written as one would for PyTorch: tl.tensor, nn.Sequential, nn.CrossEntropyLoss, accuracy as
    (argmax == y).float().mean(), a hand-written SGD step under no_grad, then AdamW with warmup and cosine."""
    import tinygrad_llm as tl
    from tinygrad_llm import optim

    tl.manual_seed(0)
    r = np.random.default_rng(0)
    t = np.sqrt(r.random(200)) * 3 * np.pi                                  # two interleaved spirals
    spiral = np.stack([t * np.cos(t), t * np.sin(t)], axis=1) / (3 * np.pi)
    X = tl.tensor(np.concatenate([spiral, -spiral]) + 0.02 * r.standard_normal((400, 2)), dtype=tl.float32)
    y = tl.tensor(np.repeat([0, 1], 200))

    model = nn.Sequential(nn.Linear(2, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 2))
    loss_fn = nn.CrossEntropyLoss()

    def accuracy():
        with tl.no_grad():
            return (model(X).argmax(dim=1) == y).float().mean().item()

    untrained, first_loss = accuracy(), loss_fn(model(X), y).item()
    for step in range(30):                                                  # SGD by hand
        loss = loss_fn(model(X), y)
        model.zero_grad()
        loss.backward()
        with tl.no_grad():
            for p in model.parameters():
                p -= 0.5 * p.grad
    after_sgd = loss.item()
    optimizer = optim.AdamW(model.parameters(), lr=0.03, weight_decay=1e-4)
    scheduler = optim.lr_scheduler.SequentialLR(
        optimizer, [optim.lr_scheduler.LinearLR(optimizer, start_factor=0.1, total_iters=20),
                    optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=280, eta_min=1e-3)], milestones=[20])
    for step in range(300):
        loss = loss_fn(model(X), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
    assert after_sgd < first_loss and loss.item() < after_sgd / 5
    assert untrained < 0.75 and accuracy() > 0.95
    assert scheduler.get_last_lr() == [pytest.approx(1e-3)]


# ---------------------------------------------------------------- containers: PyTorch's forms, and nothing else

class Block(nn.Module):
    """A small block in each library (`m` is nn or torch.nn), as course code writes one."""

    def __init__(self, m):
        super().__init__()
        self.attn = m.Linear(2, 2)
        self.mlp = m.Sequential(m.Linear(2, 3), m.ReLU())


def twin_block(torch):
    class TorchBlock(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.attn = torch.nn.Linear(2, 2)
            self.mlp = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.ReLU())
    return TorchBlock


def names_and_shapes(model):
    return [(name, tuple(p.shape)) for name, p in model.named_parameters()]


def test_modulelist_of_a_list_holds_its_modules_as_torchs(torch):
    """ModuleList([Block(), Block()]) built an empty list: 0 parameters, a model trained without its blocks."""
    ours = nn.ModuleList([Block(nn), Block(nn)])
    theirs = torch.nn.ModuleList([twin_block(torch)(), twin_block(torch)()])
    assert len(ours) == 2 and names_and_shapes(ours) == names_and_shapes(theirs)
    assert names_and_shapes(ours)[4] == ("1.attn.weight", (2, 2))
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert len(nn.ModuleList()) == 0 and len(nn.ModuleList(None)) == 0
    assert len(nn.ModuleList(Block(nn) for _ in range(3))) == 3           # any iterable, a generator too


def test_sequential_of_a_list_or_a_dict_is_refused_and_of_an_ordereddict_is_named_by_its_keys(torch):
    """Sequential([Linear]) and Sequential(OrderedDict(a=Linear)) were silently the identity."""
    from collections import OrderedDict
    for library in (nn, torch.nn):
        with pytest.raises(TypeError, match="list is not a Module subclass"):
            library.Sequential([library.Linear(2, 3)])
        with pytest.raises(TypeError, match="dict is not a Module subclass"):
            library.Sequential({"a": library.Linear(2, 3)})
    ours = nn.Sequential(OrderedDict(a=nn.Linear(2, 3), act=nn.Tanh(), b=nn.Linear(3, 1))).to(np.float64)
    theirs = torch.nn.Sequential(OrderedDict(a=torch.nn.Linear(2, 3), act=torch.nn.Tanh(),
                                             b=torch.nn.Linear(3, 1))).double()
    assert names_and_shapes(ours) == names_and_shapes(theirs) == [("a.weight", (3, 2)), ("a.bias", (3,)),
                                                                  ("b.weight", (1, 3)), ("b.bias", (1,))]
    theirs.load_state_dict({name: torch.tensor(t.numpy()) for name, t in ours.state_dict().items()})
    x = inputs((4, 2))[0]
    np.testing.assert_allclose(ours(tensor(x)).detach().numpy(), theirs(torch_tensor(torch, x)).detach().numpy(),
                               **tolerances(np.float64))
    assert ours.a is ours[0] and ours.b is ours[-1] and isinstance(ours[1], nn.Tanh)
    assert strip_counts(repr(ours[1:])) == repr(theirs[1:])             # a slice keeps the names: (act), (b)


@pytest.mark.parametrize("make", [
    lambda m: m.ModuleList([m.Linear(2, 3), 5]),
    lambda m: m.ModuleList([m.Linear(2, 3)]).append(5),
    lambda m: m.ModuleList([m.Linear(2, 3)]).extend([5]),
    lambda m: m.Sequential(m.Linear(2, 3), 5),
    lambda m: m.Sequential(m.Linear(2, 3)).append(5),
    lambda m: m.ModuleDict({"a": 5}),
    lambda m: m.ModuleDict([("a", m.ReLU()), ("b", 5)]),
], ids=["ModuleList", "ModuleList.append", "ModuleList.extend", "Sequential", "Sequential.append", "ModuleDict",
        "ModuleDict-pairs"])
def test_containers_refuse_what_is_not_a_module_naming_it(make, torch):
    for library in (nn, torch.nn):
        with pytest.raises(TypeError, match="int is not a Module subclass"):
            make(library)


@pytest.mark.parametrize("make, error, words", [
    (lambda m: m.ModuleList(m.Linear(2, 3)), TypeError, ["ModuleList", "iterable", "Linear"]),
    (lambda m: m.ModuleDict(m.ReLU()), TypeError, ["ModuleDict", "ReLU"]),
    (lambda m: m.ModuleDict([("a", m.ReLU()), ("b",)]), ValueError, ["#1", "length 1; 2 is required"]),
    (lambda m: m.ModuleDict({1: m.ReLU()}), TypeError, ["module name should be a string", "int"]),
    (lambda m: m.ModuleDict({"a.b": m.ReLU()}), KeyError, ['contain "."', "a.b"]),
    (lambda m: m.ModuleDict({"keys": m.ReLU()}), KeyError, ["attribute 'keys' already exists"]),
    (lambda m: m.ModuleDict({"": m.ReLU()}), KeyError, ["empty string"]),
    (lambda m: m.ModuleList([m.ReLU()])[1], IndexError, ["index 1 is out of range"]),
    (lambda m: m.Sequential(m.ReLU())[-2], IndexError, ["index -2 is out of range"]),
    (lambda m: m.ModuleDict()["x"], KeyError, ["x"]),
    (lambda m: m.Sequential(m.ReLU()) + [m.ReLU()], ValueError, ["Sequential", "list"]),
], ids=["list-of-one-module", "dict-of-a-module", "pair-of-one", "int-key", "dotted-key", "method-name",
        "empty-key", "list-index", "sequential-index", "dict-key", "sequential-plus-list"])
def test_container_errors_match_torchs(make, error, words, torch):
    for library in (nn, torch.nn):
        assert_raises_naming(lambda: make(library), error, words)


def test_modulelist_edits_renumber_as_torchs(torch):
    def edit(m):
        layers = m.ModuleList([m.Linear(1, 1), m.Linear(1, 2)])
        layers.append(m.Linear(2, 3)).extend([m.Linear(3, 4), m.Linear(4, 5)])
        layers.insert(1, m.Linear(9, 9))
        layers[-1] = m.Linear(5, 6)
        del layers[0]
        del layers[1:3]
        layers += [m.Tanh()]
        popped = layers.pop(0)
        joined = layers + m.ModuleList([m.ReLU()])
        return layers, popped, joined, layers[::-1]
    ours, theirs = edit(nn), edit(torch.nn)
    for mine, reference in zip(ours, theirs):
        assert strip_counts(repr(mine)) == repr(reference)
    assert type(ours[2]) is nn.ModuleList and type(ours[3]) is nn.ModuleList
    assert [name for name, _ in ours[0].named_parameters()] == ["0.weight", "0.bias", "1.weight", "1.bias"]
    assert list(ours[0].state_dict()) == list(theirs[0].state_dict())
    with pytest.raises(NotImplementedError, match="ModuleList"):
        ours[0](tensor(np.ones(3)))                                     # a list has no forward


def test_modulelist_prints_repeated_blocks_once_as_torch(torch):
    ours = nn.ModuleList([nn.Linear(2, 2), nn.Linear(2, 2), nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 2)])
    theirs = torch.nn.ModuleList([torch.nn.Linear(2, 2), torch.nn.Linear(2, 2), torch.nn.Linear(2, 2),
                                  torch.nn.ReLU(), torch.nn.Linear(2, 2)])
    assert strip_counts(repr(ours)) == repr(theirs)
    assert "(0-2): 3 x Linear(in_features=2, out_features=2, bias=True)" in repr(ours)
    assert repr(nn.ModuleList()) == repr(torch.nn.ModuleList()) == "ModuleList()"


def test_sequential_edits_match_torchs(torch):
    def edit(m):
        net = m.Sequential(m.Linear(2, 3))
        net.append(m.ReLU()).extend(m.Sequential(m.Linear(3, 4)))
        net.insert(0, m.Tanh())
        net[1] = m.Linear(2, 3, bias=False)
        del net[2]
        both = net + m.Sequential(m.Sigmoid())
        net += m.Sequential(m.GELU())
        return net, both, net.pop(-1), len(net), [type(layer).__name__ for layer in net]
    ours, theirs = edit(nn), edit(torch.nn)
    assert [strip_counts(repr(x)) if isinstance(x, nn.Module) else x for x in ours] == \
        [repr(x) if isinstance(x, torch.nn.Module) else x for x in theirs]
    assert names_and_shapes(ours[0]) == names_and_shapes(theirs[0])


def test_moduledict_is_a_dict_of_modules_as_torchs(torch):
    def build(m):
        blocks = m.ModuleDict({"wte": m.Embedding(5, 2), "h": m.ModuleList([m.Linear(2, 2), m.Linear(2, 2)])})
        blocks["ln_f"] = m.Linear(2, 2)
        blocks.update([("head", m.Linear(2, 5)), ("drop", m.Dropout(0.1))])
        blocks.update(m.ModuleDict({"act": m.ReLU()}))
        dropped = blocks.pop("drop")
        del blocks["act"]
        return blocks, dropped
    (ours, dropped), (theirs, _) = build(nn), build(torch.nn)
    assert list(ours.keys()) == list(theirs.keys()) == ["wte", "h", "ln_f", "head"] == list(ours)
    assert [type(v).__name__ for v in ours.values()] == [type(v).__name__ for v in theirs.values()]
    assert [k for k, _ in ours.items()] == list(ours.keys()) and len(ours) == 4
    assert "h" in ours and "drop" not in ours and isinstance(dropped, nn.Dropout)
    assert ours["wte"] is ours.wte                                      # by key and as an attribute
    assert names_and_shapes(ours) == names_and_shapes(theirs)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert "h.1.weight" in ours.state_dict()
    assert strip_counts(repr(ours)) == repr(theirs)
    ours.clear()
    assert len(ours) == 0 and list(ours.parameters()) == []
    with pytest.raises(TypeError, match="unexpected keyword argument 'a'"):
        nn.ModuleDict(a=nn.ReLU())                                      # as torch.nn.ModuleDict


def test_nanogpt_style_model_trains_every_block(torch):
    """nanoGPT's layout (ModuleDict of wte, ModuleList h, ln_f): every block's parameters are found, moved,
    saved and given gradients."""
    class Tiny(nn.Module):
        def __init__(self):
            super().__init__()
            self.transformer = nn.ModuleDict(dict(
                wte=nn.Embedding(7, 4),
                h=nn.ModuleList([nn.Linear(4, 4) for _ in range(3)]),
                ln_f=nn.LayerNorm(4)))

        def forward(self, idx):
            x = self.transformer.wte(idx)
            for block in self.transformer.h:
                x = x + block(x)
            return self.transformer.ln_f(x).sum()

    model = Tiny()
    assert sum(p.numel() for p in model.parameters()) == 7 * 4 + 3 * 20 + 8
    model(Tensor(np.array([1, 2, 3]))).backward()
    assert all(p.grad is not None for p in model.parameters())
    assert "transformer.h.2.weight" in model.state_dict()


# ---------------------------------------------------------------- buffers and the rest of Module's API, as torch's

def with_buffers(m, lib_tensor):
    """A module with a Linear, its own parameter and three buffers (float, int, non-persistent), in nn or torch.nn;
    lib_tensor(array) makes that library's tensor."""
    class WithBuffers(m.Module):
        def __init__(self):
            super().__init__()
            self.lin = m.Linear(2, 2)
            self.w = m.Parameter(lib_tensor(np.ones(2, np.float32)))
            self.register_buffer("mask", lib_tensor(np.tril(np.ones((3, 3), np.float32)).reshape(1, 1, 3, 3)))
            self.register_buffer("count", lib_tensor(np.zeros(2, np.int64)))
            self.register_buffer("scratch", lib_tensor(np.ones(2, np.float32)), persistent=False)
    return WithBuffers()


def pair_with_buffers(torch):
    return with_buffers(nn, Tensor), with_buffers(torch.nn, torch.tensor)


def test_buffers_are_saved_moved_and_never_parameters_as_torchs(torch):
    ours, theirs = pair_with_buffers(torch)
    assert list(ours.state_dict()) == list(theirs.state_dict()) == ["w", "mask", "count", "lin.weight", "lin.bias"]
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()] == \
        ["w", "lin.weight", "lin.bias"]
    assert [n for n, _ in ours.named_buffers()] == [n for n, _ in theirs.named_buffers()] == \
        ["mask", "count", "scratch"]                                  # the non-persistent one too
    assert [b.shape for b in ours.buffers()] == [tuple(b.shape) for b in theirs.buffers()]
    assert ours.mask.shape == (1, 1, 3, 3) and not ours.mask.requires_grad    # nanoGPT's causal mask
    ours.to(np.float64)
    theirs.to(torch.float64)
    assert [(b.dtype.name) for b in ours.buffers()] == [str(b.dtype)[6:] for b in theirs.buffers()] == \
        ["float64", "int64", "float64"]                               # integer buffers keep their dtype
    ours.type(np.float32)
    theirs.type(torch.float32)
    assert [(b.dtype.name) for b in ours.buffers()] == [str(b.dtype)[6:] for b in theirs.buffers()] == \
        ["float32", "float32", "float32"]                             # type() converts every tensor


def test_assigning_a_buffer_replaces_it_and_load_state_dict_fills_it(torch):
    ours, theirs = pair_with_buffers(torch)
    ours.mask = Tensor(np.zeros((1, 1, 3, 3), np.float32))            # still the buffer: saved under its name
    theirs.mask = torch.zeros(1, 1, 3, 3)
    assert list(ours.state_dict()) == list(theirs.state_dict()) and not ours.state_dict()["mask"].any()
    state = ours.state_dict()
    state["count"][:] = 7
    fresh, _ = pair_with_buffers(torch)
    fresh.load_state_dict(state)
    assert fresh.count.tolist() == [7, 7] and not fresh.mask.detach().numpy().any()
    ours.mask, theirs.mask = None, None                               # a buffer set to None is not saved
    assert list(ours.state_dict()) == list(theirs.state_dict()) == ["w", "count", "lin.weight", "lin.bias"]
    del ours.count
    del theirs.count
    assert [n for n, _ in ours.named_buffers()] == [n for n, _ in theirs.named_buffers()] == ["scratch"]
    ours.scratch = nn.Parameter(np.zeros(2, np.float32))             # a Parameter makes it a parameter
    theirs.scratch = torch.nn.Parameter(torch.zeros(2))
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]


@pytest.mark.parametrize("act, error, words", [
    (lambda m, t: setattr(m, "mask", 3), TypeError, ["cannot assign 'int' as buffer 'mask'"]),
    (lambda m, t: setattr(m.lin, "weight", t(np.ones((2, 2), np.float32))), TypeError,
     ["as parameter 'weight'", "Parameter or None expected"]),
    (lambda m, t: setattr(m, "lin", 3), TypeError, ["cannot assign 'int' as child module 'lin'"]),
    (lambda m, t: m.register_buffer("w", t(np.ones(1))), KeyError, ["attribute 'w' already exists"]),
    (lambda m, t: m.register_buffer("a.b", t(np.ones(1))), KeyError, ["buffer name can", '"."']),
    (lambda m, t: m.register_buffer("x", [1.0]), TypeError, ["'list' object to buffer 'x'"]),
    (lambda m, t: m.register_parameter("p", t(np.ones(2))), TypeError, ["object to parameter 'p'"]),
    (lambda m, t: m.add_module("x", 3), TypeError, ["int is not a Module subclass"]),
    (lambda m, t: m.foo, AttributeError, ["'WithBuffers' object has no attribute 'foo'"]),
    (lambda m, t: m.train("yes"), ValueError, ["training mode is expected to be boolean"]),
    (lambda m, t: m.get_parameter("lin.foo"), AttributeError, ["Linear has no attribute `foo`"]),
    (lambda m, t: m.get_parameter("mask"), AttributeError, ["`mask` is not an nn.Parameter"]),
    (lambda m, t: m.get_buffer("w"), AttributeError, ["`w` is not a buffer"]),
    (lambda m, t: m.get_submodule("lin.weight"), AttributeError, ["`weight` is not an nn.Module"]),
], ids=["buffer-int", "parameter-tensor", "module-int", "buffer-clash", "buffer-dot", "buffer-list",
        "register-tensor", "add-int", "getattr", "train-str", "get-parameter", "get-parameter-buffer",
        "get-buffer", "get-submodule"])
def test_module_errors_match_torchs(act, error, words, torch):
    ours, theirs = pair_with_buffers(torch)
    assert_raises_naming(lambda: act(ours, Tensor), error, words)
    with pytest.raises(error):
        act(theirs, torch.tensor)


def test_module_api_that_course_code_calls_matches_torch(torch):
    ours, theirs = pair_with_buffers(torch)
    assert [n for n, _ in ours.named_parameters(recurse=False)] == ["w"] == \
        [n for n, _ in theirs.named_parameters(recurse=False)]
    assert len(list(ours.parameters(recurse=False))) == 1 and next(ours.children()) is ours.lin
    assert ours.get_parameter("lin.bias") is ours.lin.bias and ours.get_buffer("mask") is ours.mask
    assert ours.get_submodule("lin") is ours.lin and ours.get_submodule("") is ours
    assert ours.eval() is ours and not ours.training and not ours.lin.training
    assert ours.train() is ours and ours.lin.training
    assert ours.requires_grad_(False) is ours and not any(p.requires_grad for p in ours.parameters())
    assert len(list(ours.parameters())) == 3                          # frozen, still parameters
    ours.requires_grad_()
    ours.register_parameter("extra", None)                            # as Linear(bias=False) registers its bias
    ours.register_module("head", nn.Linear(2, 1))
    ours.add_module("tail", nn.Tanh())
    theirs.register_parameter("extra", None)
    theirs.register_module("head", torch.nn.Linear(2, 1))
    theirs.add_module("tail", torch.nn.Tanh())
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert ours.extra is None and strip_counts(repr(ours)) == repr(theirs)


def test_parameter_set_to_none_or_deleted_leaves_the_model_as_torchs(torch):
    ours, theirs = nn.Linear(2, 3), torch.nn.Linear(2, 3)
    ours.bias, theirs.bias = None, None
    assert list(ours.state_dict()) == list(theirs.state_dict()) == ["weight"]
    assert ours(tensor(np.ones((1, 2), np.float32))).shape == (1, 3)
    del ours.weight
    with pytest.raises(AttributeError, match="'Linear' object has no attribute 'weight'"):
        ours.weight


def test_zero_grad_sets_none_by_default_or_zeroes_in_place():
    layer = nn.Linear(2, 3)
    layer(tensor(np.ones((1, 2), np.float32))).sum().backward()
    grad = layer.weight.grad
    layer.zero_grad(set_to_none=False)
    assert layer.weight.grad is grad and not grad.numpy().any()       # the same tensor, zeroed
    layer.zero_grad()
    assert layer.weight.grad is None and layer.bias.grad is None      # PyTorch 2's default


def test_load_state_dict_returns_the_missing_and_unexpected_keys_as_torch(torch):
    ours, theirs = pair_with_buffers(torch)
    mine = ours.load_state_dict({"w": np.ones(2, np.float32), "extra": np.ones(1)}, strict=False)
    reference = theirs.load_state_dict({"w": torch.ones(2), "extra": torch.ones(1)}, strict=False)
    assert mine.missing_keys == reference.missing_keys == ["mask", "count", "lin.weight", "lin.bias"]
    assert mine.unexpected_keys == reference.unexpected_keys == ["extra"]
    assert repr(ours.load_state_dict(ours.state_dict())) == "<All keys matched successfully>"
    assert_raises_naming(lambda: ours.load_state_dict({"w": np.ones(2, np.float32)}), KeyError,
                         ["WithBuffers", "missing keys", "'mask'"])


def test_to_takes_torchs_forms_and_moves_gradients_with_their_parameters(torch):
    ours, _ = pair_with_buffers(torch)
    ours.lin(tensor(np.ones((1, 2), np.float32))).sum().backward()
    weight = ours.lin.weight
    assert ours.to("cpu", np.float64) is ours and ours.lin.weight is weight and weight.dtype == np.float64
    assert weight.grad.dtype == np.float64                            # as torch's, the gradient follows
    assert ours.to(dtype=np.float32).mask.dtype == np.float32 and ours.count.dtype == np.int64
    assert ours.double().w.dtype == np.float64 and ours.float().w.dtype == np.float32
    assert ours.to(Tensor(np.ones(1, np.float64))).w.dtype == np.float64
    assert ours.to(device="cpu", non_blocking=True).cpu().w.dtype == np.float64
    assert_raises_naming(lambda: ours.to(np.int64), TypeError, ["Module.to", "int64"])
    assert_raises_naming(lambda: ours.half(), TypeError, ["Module.half", "float16"])
    assert_raises_naming(lambda: ours.to("tpu"), TypeError, ["Module.to", "'tpu'"])


# ---------------------------------------------------------------- nn.init, drawing PyTorch's numbers

INITS = [
    ("uniform_", lambda init, t: init.uniform_(t, -0.3, 0.7)),
    ("normal_", lambda init, t: init.normal_(t, 0.5, 2.0)),
    ("xavier_uniform_", lambda init, t: init.xavier_uniform_(t, gain=init.calculate_gain("tanh"))),
    ("xavier_normal_", lambda init, t: init.xavier_normal_(t)),
    ("kaiming_uniform_", lambda init, t: init.kaiming_uniform_(t, a=math.sqrt(5))),
    ("kaiming_uniform_-fan_out-relu", lambda init, t: init.kaiming_uniform_(t, mode="fan_out", nonlinearity="relu")),
    ("kaiming_normal_", lambda init, t: init.kaiming_normal_(t, a=0.1)),
    ("constant_", lambda init, t: init.constant_(t, 0.25)),
    ("ones_", lambda init, t: init.ones_(t)),
    ("zeros_", lambda init, t: init.zeros_(t)),
]


@pytest.mark.parametrize("fill", [f for _, f in INITS], ids=[name for name, _ in INITS])
@pytest.mark.parametrize("shape", [(4, 5), (8, 3, 5)], ids=["matrix", "conv-kernel"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_init_functions_draw_torchs_numbers_in_place(fill, shape, dtype, torch):
    """The same seed, the same numbers (bit for bit), written in place into the Parameter, which is returned."""
    import tinygrad_llm as tl
    ours = nn.Parameter(np.full(shape, 9.0, dtype))
    theirs = torch.nn.Parameter(torch.full(shape, 9.0, dtype=getattr(torch, np.dtype(dtype).name)))
    tl.manual_seed(11)
    torch.manual_seed(11)
    assert fill(nn.init, ours) is ours and ours.requires_grad and ours.is_leaf
    fill(torch.nn.init, theirs)
    np.testing.assert_array_equal(ours.detach().numpy(), theirs.detach().numpy())
    np.testing.assert_array_equal(tl.rand(3).numpy(), torch.rand(3).numpy())    # the generators moved alike


@pytest.mark.parametrize("bounds", [dict(mean=0.1, std=0.5, a=-0.4, b=0.8), dict(std=0.02),
                                    dict(mean=0.0, std=1.0, a=1.5, b=3.0), dict(mean=0.2, std=0.3, a=-0.2, b=-0.1)],
                         ids=["normal-redrawn", "timm-vit", "uniform-tail", "uniform-below-mean"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_trunc_normal_draws_torchs_numbers_within_the_bounds(bounds, dtype, torch):
    """Both of PyTorch's methods: normals drawn again outside [a, b] (most of the mass inside), and uniform
    proposals accepted by the density (little of it inside)."""
    import tinygrad_llm as tl
    ours = nn.Parameter(np.zeros((30, 20), dtype))
    theirs = torch.nn.Parameter(torch.zeros(30, 20, dtype=getattr(torch, np.dtype(dtype).name)))
    tl.manual_seed(2)
    torch.manual_seed(2)
    assert nn.init.trunc_normal_(ours, **bounds) is ours
    torch.nn.init.trunc_normal_(theirs, **bounds)
    np.testing.assert_array_equal(ours.detach().numpy(), theirs.detach().numpy())
    assert tl.rand(2).tolist() == torch.rand(2).tolist()                # the generators moved alike
    low, high = bounds.get("a", -2.0), bounds.get("b", 2.0)
    assert low <= ours.detach().numpy().min() and ours.detach().numpy().max() <= high


def test_init_takes_a_generator_and_eye_and_fans_as_torch(torch):
    from tinygrad_llm.engine.rng import Generator
    ours, theirs = Tensor(np.zeros((3, 6), np.float32)), torch.zeros(3, 6)
    nn.init.normal_(ours, generator=Generator().manual_seed(5))
    torch.nn.init.normal_(theirs, generator=torch.Generator().manual_seed(5))
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    np.testing.assert_array_equal(nn.init.eye_(ours).numpy(), torch.nn.init.eye_(theirs).numpy())
    for shape in [(3, 4), (3, 4, 5), (2, 3, 4, 5)]:
        assert nn.init._calculate_fan_in_and_fan_out(Tensor(np.zeros(shape))) == \
            torch.nn.init._calculate_fan_in_and_fan_out(torch.zeros(shape))
    for name, param in [("linear", None), ("conv1d", None), ("sigmoid", None), ("tanh", None), ("relu", None),
                        ("leaky_relu", None), ("leaky_relu", 0.2), ("leaky_relu", 3), ("selu", None)]:
        assert nn.init.calculate_gain(name, param) == torch.nn.init.calculate_gain(name, param)


@pytest.mark.parametrize("call, words", [
    (lambda init, m: init.calculate_gain("swish"), ["nsupported nonlinearity swish"]),
    (lambda init, m: init.calculate_gain("leaky_relu", True), ["negative_slope True not a valid number"]),
    (lambda init, m: init.kaiming_uniform_(m.zeros(3, 4), mode="fan_avg"), ["Mode fan_avg not supported"]),
    (lambda init, m: init.xavier_uniform_(m.zeros(3)), ["fewer than 2 dimensions"]),
    (lambda init, m: init.eye_(m.zeros(3, 4, 5)), ["with 2 dimensions are supported"]),
], ids=["gain", "slope", "mode", "fan", "eye"])
def test_init_errors_match_torchs(call, words, torch):
    import tinygrad_llm as tl
    assert_raises_naming(lambda: call(nn.init, tl), ValueError, words)
    with pytest.raises(ValueError):
        call(torch.nn.init, torch)


def test_a_zero_element_tensor_is_left_with_torchs_warning():
    with pytest.warns(UserWarning, match="Initializing zero-element tensors is a no-op"):
        assert nn.init.kaiming_normal_(Tensor(np.zeros((0, 3), np.float32))).shape == (0, 3)


def test_layers_are_initialised_as_torchs_with_the_same_seed(torch):
    """torch.manual_seed(s); nn.Linear(3, 4) gives the same weight and bias here; an Embedding after it too."""
    import tinygrad_llm as tl
    tl.manual_seed(7)
    torch.manual_seed(7)
    ours = [nn.Linear(3, 4), nn.Linear(40, 20, bias=False), nn.Embedding(10, 8)]
    theirs = [torch.nn.Linear(3, 4), torch.nn.Linear(40, 20, bias=False), torch.nn.Embedding(10, 8)]
    for mine, reference in zip(ours, theirs):
        for (name, p), (_, q) in zip(mine.named_parameters(), reference.named_parameters()):
            np.testing.assert_array_equal(p.detach().numpy(), q.detach().numpy(), err_msg=name)


def test_skip_init_leaves_zeros_and_draws_nothing():
    import tinygrad_llm as tl
    tl.manual_seed(3)
    expected = tl.rand(4).numpy()
    tl.manual_seed(3)
    with nn.skip_init():
        layer = nn.Linear(3, 4)
        assert nn.init.normal_(layer.weight) is layer.weight
    assert not layer.weight.detach().numpy().any() and not layer.bias.detach().numpy().any()
    np.testing.assert_array_equal(tl.rand(4).numpy(), expected)        # the generator did not move


def test_nanogpts_causal_mask_buffer_works_as_in_torch(torch):
    """nanoGPT's CausalSelfAttention registers tril(ones(T, T)).view(1, 1, T, T) as the buffer "bias" and masks with
    a slice of it: the same outputs, and the buffer saved first, as torch's."""
    import tinygrad_llm as tl
    from tinygrad_llm.nn import functional as F
    T = 5

    def attention(m, lib, functional):
        class CausalSelfAttention(m.Module):
            def __init__(self):
                super().__init__()
                self.c_attn = m.Linear(8, 24)
                self.register_buffer("bias", lib.tril(lib.ones(T, T)).view(1, 1, T, T))

            def forward(self, x):
                B, t, C = x.size()
                q, k, v = self.c_attn(x).split(8, dim=2)
                att = ((q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(8))).unsqueeze(1)
                att = functional.softmax(att.masked_fill(self.bias[:, :, :t, :t] == 0, float("-inf")), dim=-1)
                return att.squeeze(1) @ v
        return CausalSelfAttention()
    tl.manual_seed(0)
    torch.manual_seed(0)
    ours, theirs = attention(nn, tl, F), attention(torch.nn, torch, torch.nn.functional)
    x = inputs((2, 4, 8))[0].astype(np.float32)
    np.testing.assert_allclose(ours(tensor(x)).detach().numpy(), theirs(torch.tensor(x)).detach().numpy(),
                               **tolerances(np.float32))
    assert list(ours.state_dict()) == list(theirs.state_dict()) == ["bias", "c_attn.weight", "c_attn.bias"]
    assert [n for n, _ in ours.named_parameters()] == ["c_attn.weight", "c_attn.bias"]
