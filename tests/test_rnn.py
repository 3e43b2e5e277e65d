"""Tests of tinygrad_llm/models/rnn.py: gradcheck of every cell and layer (through time, w.r.t. input, initial state
and weights), exact agreement with torch.nn's recurrent modules, truncated BPTT, and a CharLSTM that learns."""
import math

import numpy as np
import pytest

from tinygrad_llm import Tensor
from tinygrad_llm.engine import rng
from tinygrad_llm.engine.gradcheck import gradcheck
from tinygrad_llm.models.rnn import GRU, LSTM, RNN, CharLSTM, GRUCell, LSTMCell, RNNCell, detach_state

from conftest import tolerances

B, T, I, H = 2, 3, 3, 4
CELLS = {"rnn": RNNCell, "rnn_relu": RNNCell, "lstm": LSTMCell, "gru": GRUCell}
LAYERS = {"rnn": RNN, "rnn_relu": RNN, "lstm": LSTM, "gru": GRU}
TORCH_NAMES = {"rnn": "RNN", "rnn_relu": "RNN", "lstm": "LSTM", "gru": "GRU"}


def options(kind):
    return {"nonlinearity": "relu"} if kind == "rnn_relu" else {}


def make(cls, kind, dtype, *args, **kwargs):
    rng.manual_seed(0)
    return cls(*args, **options(kind), **kwargs).to(dtype)


def leaf(array):
    return Tensor(np.array(array), requires_grad=True)


def state_arrays(kind, shape, seed, dtype):
    """Random initial state arrays: [h] or, for an LSTM, [h, c]."""
    draws = np.random.default_rng(seed)
    return [(0.5 * draws.standard_normal(shape)).astype(dtype) for _ in range(2 if kind == "lstm" else 1)]


def as_state(kind, tensors):
    return tuple(tensors) if kind == "lstm" else tensors[0]


def flat(kind, state):
    """The state's tensors as a list: [h] or [h, c]."""
    return list(state) if kind == "lstm" else [state]


# ---- gradcheck in float64: through every weight, the input and the initial state ----

@pytest.mark.parametrize("kind", CELLS)
def test_cell_gradcheck(kind):
    cell = make(CELLS[kind], kind, np.float64, I, H)
    params = list(cell.parameters())
    x = np.random.default_rng(1).standard_normal((B, I))
    state = state_arrays(kind, (B, H), 2, np.float64)

    def fn(x, *rest):
        new = _with(cell, params, rest[len(state):])(x, as_state(kind, rest[:len(state)]))
        return sum((s * s).sum() for s in flat(kind, new))  # every state tensor reaches the output

    gradcheck(fn, [leaf(x)] + [leaf(s) for s in state] + [leaf(p.detach().numpy()) for p in params])


@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("kind", LAYERS)
def test_layer_gradcheck(kind, num_layers):
    layer = make(LAYERS[kind], kind, np.float64, I, H, num_layers=num_layers)
    params = list(layer.parameters())
    x = np.random.default_rng(1).standard_normal((B, T, I))
    state = state_arrays(kind, (num_layers, B, H), 2, np.float64)
    weights = np.random.default_rng(3).standard_normal((B, T, H))  # a weighted sum sees every output alone

    def fn(x, *rest):
        out, final = _with(layer, params, rest[len(state):])(x, as_state(kind, rest[:len(state)]))
        return (out * weights).sum() + sum((s * s).sum() for s in flat(kind, final))

    gradcheck(fn, [leaf(x)] + [leaf(s) for s in state] + [leaf(p.detach().numpy()) for p in params])


def _with(module, params, tensors):
    """`module` with its parameters replaced by `tensors` (gradcheck passes its own copies of the inputs)."""
    names = [name for name, _ in module.named_parameters()]
    for name, p, t in zip(names, params, tensors):
        assert p.shape == t.shape
        setattr(module, name, t)
    return module


# ---- agreement with PyTorch, in value and gradient ----

def _copy_weights_to_torch(torch, ours, theirs):
    with torch.no_grad():
        for name, p in ours.named_parameters():
            getattr(theirs, name).copy_(torch.from_numpy(p.detach().numpy().copy()))


def _assert_close(ours, theirs, dtype, what):
    np.testing.assert_allclose(ours, theirs.detach().numpy(), **tolerances(dtype), err_msg=what)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("kind", CELLS)
def test_cell_matches_torch(torch, kind, dtype):
    cell = make(CELLS[kind], kind, dtype, I, H)
    reference = getattr(torch.nn, TORCH_NAMES[kind] + "Cell")(I, H, **options(kind))
    reference = reference.to(getattr(torch, np.dtype(dtype).name))
    _copy_weights_to_torch(torch, cell, reference)
    x = np.random.default_rng(1).standard_normal((B, I)).astype(dtype)
    state = state_arrays(kind, (B, H), 2, dtype)
    weights = [np.random.default_rng(4 + i).standard_normal((B, H)).astype(dtype) for i in range(len(state))]

    ours_in = [leaf(x)] + [leaf(s) for s in state]
    ours = flat(kind, cell(ours_in[0], as_state(kind, ours_in[1:])))
    sum((o * w).sum() for o, w in zip(ours, weights)).backward()
    theirs_in = [torch.tensor(a, requires_grad=True) for a in [x] + state]
    theirs = flat(kind, reference(theirs_in[0], as_state(kind, theirs_in[1:])))
    sum((o * torch.from_numpy(w)).sum() for o, w in zip(theirs, weights)).backward()

    for i, (o, t) in enumerate(zip(ours, theirs)):
        _assert_close(o.detach().numpy(), t, dtype, f"state part {i}")
    for i, (o, t) in enumerate(zip(ours_in, theirs_in)):
        _assert_close(o.grad.numpy(), t.grad, dtype, f"grad of input {i}")
    for name, p in cell.named_parameters():
        _assert_close(p.grad.numpy(), getattr(reference, name).grad, dtype, f"grad of {name}")


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("kind", LAYERS)
def test_layer_matches_torch(torch, kind, dtype):
    L = 2
    layer = make(LAYERS[kind], kind, dtype, I, H, num_layers=L)
    reference = getattr(torch.nn, TORCH_NAMES[kind])(I, H, num_layers=L, batch_first=True, **options(kind))
    reference = reference.to(getattr(torch, np.dtype(dtype).name))
    _copy_weights_to_torch(torch, layer, reference)
    x = np.random.default_rng(1).standard_normal((B, T, I)).astype(dtype)
    state = state_arrays(kind, (L, B, H), 2, dtype)
    weights = np.random.default_rng(3).standard_normal((B, T, H)).astype(dtype)

    ours_in = [leaf(x)] + [leaf(s) for s in state]
    out, final = layer(ours_in[0], as_state(kind, ours_in[1:]))
    ((out * weights).sum() + sum((s * s).sum() for s in flat(kind, final))).backward()
    theirs_in = [torch.tensor(a, requires_grad=True) for a in [x] + state]
    t_out, t_final = reference(theirs_in[0], as_state(kind, theirs_in[1:]))
    ((t_out * torch.from_numpy(weights)).sum() + sum((s * s).sum() for s in flat(kind, t_final))).backward()

    _assert_close(out.detach().numpy(), t_out, dtype, "output")
    for i, (o, t) in enumerate(zip(flat(kind, final), flat(kind, t_final))):
        _assert_close(o.detach().numpy(), t, dtype, f"final state part {i}")
    for i, (o, t) in enumerate(zip(ours_in, theirs_in)):
        _assert_close(o.grad.numpy(), t.grad, dtype, f"grad of input {i}")
    for name, p in layer.named_parameters():
        _assert_close(p.grad.numpy(), getattr(reference, name).grad, dtype, f"grad of {name}")


def test_parameter_names_and_init():
    layer = make(LSTM, "lstm", np.float32, I, H, num_layers=2)
    shapes = {name: p.shape for name, p in layer.named_parameters()}
    assert shapes == {"weight_ih_l0": (4 * H, I), "weight_hh_l0": (4 * H, H), "bias_ih_l0": (4 * H,),
                      "bias_hh_l0": (4 * H,), "weight_ih_l1": (4 * H, H), "weight_hh_l1": (4 * H, H),
                      "bias_ih_l1": (4 * H,), "bias_hh_l1": (4 * H,)}
    assert all(np.abs(p.detach().numpy()).max() <= 1 / math.sqrt(H) for p in layer.parameters())


def test_zero_initial_state_is_the_default():
    layer = make(GRU, "gru", np.float64, I, H)
    x = Tensor(np.random.default_rng(1).standard_normal((B, T, I)))
    out_default, _ = layer(x)
    out_zeros, _ = layer(x, Tensor(np.zeros((1, B, H))))
    np.testing.assert_array_equal(out_default.detach().numpy(), out_zeros.detach().numpy())


def test_wrong_input_shape_names_the_module():
    with pytest.raises(ValueError, match=r"LSTM: input must be \(B, T, 3\)"):
        LSTM(I, H)(Tensor(np.zeros((B, T, I + 1), np.float32)))


# ---- truncated BPTT ----

def test_detached_state_stops_gradients():
    """The second chunk's loss reaches the weights and the second chunk's input, but not the first chunk's input:
    the state between them was detached. Without detaching, it does reach it."""
    layer = make(LSTM, "lstm", np.float64, I, H)
    draws = np.random.default_rng(1)
    for detach in (True, False):
        first, second = leaf(draws.standard_normal((B, T, I))), leaf(draws.standard_normal((B, T, I)))
        _, state = layer(first)
        state = detach_state(state) if detach else state
        assert all(s.requires_grad != detach for s in state)
        out, _ = layer(second, state)
        layer.zero_grad()
        out.sum().backward()
        assert second.grad is not None and layer.weight_hh_l0.grad is not None
        if detach:
            assert first.grad is None
        else:
            assert np.abs(first.grad.numpy()).max() > 0


def test_chunks_with_carried_state_equal_one_long_sequence():
    """Detaching cuts gradients only: the values of chunk after chunk equal those of the whole sequence."""
    layer = make(LSTM, "lstm", np.float64, I, H)
    x = np.random.default_rng(1).standard_normal((B, 2 * T, I))
    whole, _ = layer(Tensor(x))
    head, state = layer(Tensor(x[:, :T]))
    tail, _ = layer(Tensor(x[:, T:]), detach_state(state))
    chunked = np.concatenate([head.detach().numpy(), tail.detach().numpy()], axis=1)
    np.testing.assert_allclose(chunked, whole.detach().numpy(), rtol=1e-12)


# ---- the language model ----

def test_char_lstm_shapes_and_generate():
    rng.manual_seed(0)
    model = CharLSTM(vocab_size=7, n_embd=5, hidden_size=6)
    idx = np.random.default_rng(0).integers(0, 7, (2, 4))
    logits, loss, (h, c) = model(idx, idx)
    assert logits.shape == (2, 4, 7) and loss.shape == () and h.shape == c.shape == (1, 2, 6)
    assert model(idx)[1] is None
    out = model.generate(idx[:, :2], 5, generator=np.random.default_rng(0))
    assert out.shape == (2, 7) and (out[:, :2] == idx[:, :2]).all() and out.max() < 7


def test_char_lstm_learns_shakespeare(shakespeare):
    """A tiny CharLSTM trained with truncated BPTT on a slice of Tiny Shakespeare gets well below the loss of a
    uniform guess, ln(vocab)."""
    from tinygrad_llm.optim import AdamW
    from tinygrad_llm.text.char import CharTokenizer
    from tinygrad_llm.text.datasets import load_text, resolve_dataset

    text = load_text(resolve_dataset())[:20000]
    tokenizer = CharTokenizer.from_text(text)
    ids = tokenizer.encode(text)
    rng.manual_seed(0)
    model = CharLSTM(tokenizer.vocab_size, n_embd=16, hidden_size=64)
    optimizer = AdamW(model.parameters(), lr=1e-2, weight_decay=0.0)
    batch, chunk = 16, 16
    lanes = ids[:len(ids) // batch * batch].reshape(batch, -1)  # (B, N/B): each row a contiguous stream
    state, losses = None, []
    for step in range(200):
        start = (step * chunk) % (lanes.shape[1] - chunk - 1)
        if start < chunk:
            state = None  # wrapped around to the start of the streams: begin afresh
        x, y = lanes[:, start:start + chunk], lanes[:, start + 1:start + chunk + 1]
        _, loss, state = model(x, y, state)
        state = detach_state(state)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert np.mean(losses[:5]) > 0.9 * math.log(tokenizer.vocab_size)
    assert np.mean(losses[-20:]) < 0.65 * math.log(tokenizer.vocab_size)
