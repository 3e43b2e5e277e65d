"""Recurrent networks: RNN, LSTM and GRU cells and layers, and a character-level LSTM language model.

Dimensions:  B batch, T time steps, I input size, H hidden size, L layers, V vocabulary size.

A recurrent layer reads a sequence one step at a time, carrying a state from each step to the next:

    state_0 ─▶ cell(x_0, ·) ─▶ state_1 ─▶ cell(x_1, ·) ─▶ state_2 ─▶ ... ─▶ state_T
                    │                          │
                   h_1                        h_2        ...     the outputs (B, T, H)

Every cell here is built from the engine's primitives (linear, sigmoid, tanh, split, mul, add), so autograd
unrolls the Python loop over time by itself: backward through the unrolled graph is backpropagation through time
(BPTT). Parameter names, shapes, gate order and initialisation are PyTorch's, so weights copy across:

    RNN:   h' = tanh(x W_ihᵀ + b_ih + h W_hhᵀ + b_hh)                       weight_ih (H, I)
    LSTM:  i, f, g, o = split(x W_ihᵀ + b_ih + h W_hhᵀ + b_hh)               weight_ih (4H, I)
           i, f, o = σ(i), σ(f), σ(o);  g = tanh(g)
           c' = f∘c + i∘g;   h' = o∘tanh(c')
    GRU:   r, z, n_x = split(x W_ihᵀ + b_ih);  r_h, z_h, n_h = split(h W_hhᵀ + b_hh)   weight_ih (3H, I)
           r = σ(r + r_h);  z = σ(z + z_h);  n = tanh(n_x + r∘n_h)
           h' = (1 - z)∘n + z∘h

Truncated BPTT: a long text is cut into chunks; the state is carried from chunk to chunk, but `detach_state`
cuts it from the graph, so each backward stops at the start of its chunk (memory and time stay bounded).
"""
import math

import numpy as np

from .. import nn
from ..engine import backend
from ..engine import functional as F
from ..engine.movement import stack
from ..engine.tensor import Tensor, no_grad
from .sampling import sample_next

# ---------------------------------------------------------------- one time step
# Each step function takes `xw`, the input's projection x W_ihᵀ + b_ih already computed, so that a layer can
# compute it for all time steps at once (see _Recurrent.forward).

def rnn_step(xw, h, weight_hh, bias_hh, nonlinearity="tanh"):
    """h' = act(xw + h W_hhᵀ + b_hh).   xw (B, H), h (B, H) -> h' (B, H)"""
    pre = xw + F.linear(h, weight_hh, bias_hh)                                # (B, H)
    return pre.tanh() if nonlinearity == "tanh" else pre.relu()


def lstm_step(xw, state, weight_hh, bias_hh):
    """(h, c) -> (h', c') with c' = f∘c + i∘g and h' = o∘tanh(c').   xw (B, 4H), h and c (B, H)
    The forget gate f decides how much of the old cell c survives; the input gate i how much of the candidate g
    is written; the output gate o how much of the cell is shown as h. Because c' depends on c through f∘c (no
    matrix, no squashing), gradients can flow back along c for many steps."""
    h, c = state
    gates = xw + F.linear(h, weight_hh, bias_hh)                              # (B, 4H)
    i, f, g, o = gates.split(h.shape[-1], axis=-1)                            # 4 × (B, H), PyTorch's order
    i, f, g, o = i.sigmoid(), f.sigmoid(), g.tanh(), o.sigmoid()
    c = f * c + i * g                                                         # (B, H)
    return o * c.tanh(), c


def gru_step(xw, h, weight_hh, bias_hh):
    """h' = (1 - z)∘n + z∘h (PyTorch's GRU).   xw (B, 3H), h (B, H) -> h' (B, H)
    The reset gate r multiplies h W_hnᵀ + b_hn *after* the matmul (PyTorch's and cuDNN's form), which is why the
    input and hidden projections are kept apart until then."""
    H = h.shape[-1]
    x_r, x_z, x_n = xw.split(H, axis=-1)                                      # 3 × (B, H)
    h_r, h_z, h_n = F.linear(h, weight_hh, bias_hh).split(H, axis=-1)        # 3 × (B, H)
    r = (x_r + h_r).sigmoid()
    z = (x_z + h_z).sigmoid()
    n = (x_n + r * h_n).tanh()
    return (1 - z) * n + z * h


def detach_state(state):
    """The state (a Tensor, or a tuple of them for an LSTM) cut from the graph: truncated BPTT. Carry it into
    the next chunk so the values flow on, while the next backward stops here instead of running back through
    every earlier chunk."""
    if isinstance(state, tuple):
        return tuple(s.detach() for s in state)
    return state.detach()


def _zeros(like, *shape):
    """A zero Tensor of `shape` with the dtype and device of the Tensor `like`."""
    return Tensor(backend.xp(like.data).zeros(shape, dtype=like.dtype))


# ---------------------------------------------------------------- cells: one step, x (B, I) -> state

class _Cell(nn.Module):
    """Parameters weight_ih (G·H, I), weight_hh (G·H, H), bias_ih, bias_hh (G·H,), G gates, drawn uniformly from
    ±1/sqrt(H) as in PyTorch."""
    gates = 1

    def __init__(self, input_size, hidden_size, bias=True):
        self.input_size, self.hidden_size = input_size, hidden_size
        bound = 1 / math.sqrt(hidden_size)
        G = self.gates * hidden_size
        self.weight_ih = nn.init.uniform_parameter((G, input_size), bound)
        self.weight_hh = nn.init.uniform_parameter((G, hidden_size), bound)
        self.bias_ih = nn.init.uniform_parameter((G,), bound) if bias else None
        self.bias_hh = nn.init.uniform_parameter((G,), bound) if bias else None

    def _check_input(self, x):
        if x.ndim != 2 or x.shape[1] != self.input_size:
            raise ValueError(f"{type(self).__name__}: input must be (B, {self.input_size}), got {x.shape}")


class RNNCell(_Cell):
    """h' = tanh(x W_ihᵀ + b_ih + h W_hhᵀ + b_hh) (or relu).   x (B, I), h (B, H) or None (zeros) -> h' (B, H)"""

    def __init__(self, input_size, hidden_size, bias=True, nonlinearity="tanh"):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"RNNCell: nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        super().__init__(input_size, hidden_size, bias)
        self.nonlinearity = nonlinearity

    def forward(self, x, h=None):
        self._check_input(x)
        h = _zeros(x, x.shape[0], self.hidden_size) if h is None else h
        xw = F.linear(x, self.weight_ih, self.bias_ih)                        # (B, H)
        return rnn_step(xw, h, self.weight_hh, self.bias_hh, self.nonlinearity)


class LSTMCell(_Cell):
    """x (B, I), state (h, c) each (B, H), or None (zeros) -> (h', c'); gates i, f, g, o in PyTorch's order."""
    gates = 4

    def forward(self, x, state=None):
        self._check_input(x)
        if state is None:
            state = (_zeros(x, x.shape[0], self.hidden_size), _zeros(x, x.shape[0], self.hidden_size))
        xw = F.linear(x, self.weight_ih, self.bias_ih)                        # (B, 4H)
        return lstm_step(xw, state, self.weight_hh, self.bias_hh)


class GRUCell(_Cell):
    """x (B, I), h (B, H) or None (zeros) -> h' (B, H); gates r, z, n in PyTorch's order."""
    gates = 3

    def forward(self, x, h=None):
        self._check_input(x)
        h = _zeros(x, x.shape[0], self.hidden_size) if h is None else h
        xw = F.linear(x, self.weight_ih, self.bias_ih)                        # (B, 3H)
        return gru_step(xw, h, self.weight_hh, self.bias_hh)


# ---------------------------------------------------------------- layers: a whole sequence, (B, T, I) -> (B, T, H)

class _Recurrent(nn.Module):
    """A stack of L recurrent layers over a batch-first sequence, with PyTorch's parameter names
    (weight_ih_l0, weight_hh_l0, bias_ih_l0, bias_hh_l0, then _l1, ...): layer 0 reads the input (I features),
    each later layer the hidden sequence of the one below (H features).

    forward(x, state=None) -> (output, state):  x (B, T, I); output (B, T, H), the top layer's h at every step;
    state: h (L, B, H) for RNN and GRU, (h, c) each (L, B, H) for LSTM, as PyTorch. None starts from zeros."""
    gates = 1
    state_parts = 1  # tensors in one layer's state: 1 (h), or 2 for the LSTM (h, c)

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=True):
        if not batch_first:
            raise ValueError(f"{type(self).__name__}: only batch_first=True, (B, T, I), is supported")
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        bound = 1 / math.sqrt(hidden_size)
        G = self.gates * hidden_size
        for layer in range(num_layers):
            fan_in = input_size if layer == 0 else hidden_size
            setattr(self, f"weight_ih_l{layer}", nn.init.uniform_parameter((G, fan_in), bound))
            setattr(self, f"weight_hh_l{layer}", nn.init.uniform_parameter((G, hidden_size), bound))
            setattr(self, f"bias_ih_l{layer}", nn.init.uniform_parameter((G,), bound) if bias else None)
            setattr(self, f"bias_hh_l{layer}", nn.init.uniform_parameter((G,), bound) if bias else None)

    def _weights(self, layer):
        """(weight_ih, weight_hh, bias_ih, bias_hh) of one layer."""
        return tuple(getattr(self, f"{name}_l{layer}") for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))

    def step(self, xw, state, weight_hh, bias_hh):
        """One time step of one layer: the cell's step function."""
        raise NotImplementedError

    def forward(self, x, state=None):
        if x.ndim != 3 or x.shape[2] != self.input_size:
            raise ValueError(f"{type(self).__name__}: input must be (B, T, {self.input_size}), got {x.shape}")
        B, T, _ = x.shape
        if state is None:
            zeros = _zeros(x, self.num_layers, B, self.hidden_size)            # (L, B, H)
            state = zeros if self.state_parts == 1 else (zeros, zeros)
        parts = (state,) if self.state_parts == 1 else tuple(state)           # each (L, B, H)
        finals = []
        for layer in range(self.num_layers):
            weight_ih, weight_hh, bias_ih, bias_hh = self._weights(layer)
            # The input projection does not depend on the state, so it is computed for all T steps in one large
            # matmul before the loop; only h W_hhᵀ, which needs the previous step's h, stays inside it.
            xw = F.linear(x, weight_ih, bias_ih)                              # (B, T, G·H)
            s = parts[0][layer] if self.state_parts == 1 else tuple(p[layer] for p in parts)  # (B, H) each
            outputs = []
            for t in range(T):  # the unrolled loop: autograd records every step, backward runs it in reverse
                s = self.step(xw[:, t], s, weight_hh, bias_hh)
                outputs.append(s if self.state_parts == 1 else s[0])         # h_t (B, H)
            x = stack(outputs, axis=1)                                        # (B, T, H): the next layer's input
            finals.append(s)
        if self.state_parts == 1:
            return x, stack(finals)                                           # (B, T, H), (L, B, H)
        return x, tuple(stack([f[i] for f in finals]) for i in range(self.state_parts))


class RNN(_Recurrent):
    """Elman RNN layers (tanh or relu); see _Recurrent for shapes and rnn_step for the equation."""

    def __init__(self, input_size, hidden_size, num_layers=1, nonlinearity="tanh", bias=True, batch_first=True):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"RNN: nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first)
        self.nonlinearity = nonlinearity

    def step(self, xw, h, weight_hh, bias_hh):
        return rnn_step(xw, h, weight_hh, bias_hh, self.nonlinearity)


class LSTM(_Recurrent):
    """LSTM layers; state (h, c), each (L, B, H). See _Recurrent for shapes and lstm_step for the equations."""
    gates, state_parts = 4, 2

    def step(self, xw, state, weight_hh, bias_hh):
        return lstm_step(xw, state, weight_hh, bias_hh)


class GRU(_Recurrent):
    """GRU layers (PyTorch's formulation); see _Recurrent for shapes and gru_step for the equations."""
    gates = 3

    def step(self, xw, h, weight_hh, bias_hh):
        return gru_step(xw, h, weight_hh, bias_hh)


# ---------------------------------------------------------------- a character-level language model

class CharLSTM(nn.Module):
    """idx (B, T) ─▶ wte (B, T, C) ─▶ LSTM (B, T, H) ─▶ lm_head ─▶ logits (B, T, V).

    Unlike a GPT it has no block_size: the state carries everything seen so far, so it can read (and generate)
    sequences of any length, one chunk after another."""

    def __init__(self, vocab_size, n_embd, hidden_size, num_layers=1):
        self.vocab_size = vocab_size
        self.wte = nn.Embedding(vocab_size, n_embd)
        self.lstm = LSTM(n_embd, hidden_size, num_layers)
        self.lm_head = nn.Linear(hidden_size, vocab_size)

    def forward(self, idx, targets=None, state=None):
        """idx (B, T) ids; targets (B, T) or None; state from the previous chunk or None.
        -> (logits (B, T, V), mean cross-entropy or None, final state (h, c) each (L, B, H))."""
        idx = np.asarray(idx.data if isinstance(idx, Tensor) else idx)
        if idx.ndim != 2:
            raise ValueError(f"CharLSTM: idx must be (B, T) token ids, got shape {idx.shape}")
        B, T = idx.shape
        h, state = self.lstm(self.wte(idx), state)                            # (B, T, H)
        logits = self.lm_head(h)                                              # (B, T, V)
        if targets is None:
            return logits, None, state
        targets = np.asarray(targets.data if isinstance(targets, Tensor) else targets)
        loss = F.cross_entropy(logits.reshape(B * T, self.vocab_size), targets.reshape(B * T))
        return logits, loss, state

    @no_grad()
    def generate(self, idx, max_new_tokens, temperature=1.0, generator=None):
        """idx (B, T) followed by max_new_tokens sampled ids -> (B, T + max_new_tokens). The prompt is read
        once; after that each step feeds only the newest id and the carried state."""
        generator = np.random.default_rng() if generator is None else generator
        idx = np.asarray(idx)
        logits, _, state = self(idx)
        for _ in range(max_new_tokens):
            next_id = sample_next(logits.numpy()[:, -1, :], temperature, None, None, generator)  # (B,)
            idx = np.concatenate([idx, next_id[:, None]], axis=1)
            logits, _, state = self(next_id[:, None], state=state)
        return idx
