"""Tests of tinygrad_llm/nn/'s PyTorch pieces: nn.Parameter, the activation and loss modules, named_modules and
apply, forward and backward hooks, and print(model). Each is compared with torch.nn where torch has the same thing
(values and gradients in float64, 1e-10 relative), and each has a test of its error on bad input."""
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
     ValueError, ["cross_entropy", "'avg'"]),
    ("ce-class-weights", lambda: nn.CrossEntropyLoss(np.ones(4)), TypeError, ["positional"]),
    ("ce-targets", lambda: nn.CrossEntropyLoss()(tensor(np.ones((3, 4))), [0, 1]), ValueError,
     ["cross_entropy", "(3, 4)", "(2,)"]),
    ("mse-shapes", lambda: nn.MSELoss()(tensor(np.ones((3, 1))), np.ones(3)), ValueError,
     ["mse_loss", "(3, 1)", "(3,)"]),
    ("mse-reduction", lambda: nn.MSELoss(reduction="avg")(tensor(np.ones(3)), np.ones(3)), ValueError,
     ["mse_loss", "'avg'"]),
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
    assert model.modules() == [m for _, m in model.named_modules()]


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
    assert repr(nn.LayerNorm(6)) == "LayerNorm((6,), eps=1e-05, bias=True)  # 12 parameters"
    assert repr(nn.Dropout(0.25)) == "Dropout(p=0.25)"


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
