"""Tests of nn/layers.py against torch.nn: each layer built the same way in both libraries, torch's parameters copied
into ours, then forward and backward (input and parameter gradients) compared in float64 (1e-10 relative); the
default initialisation equal to torch's for one seed; print(layer) as torch prints it; bad settings refused naming
the layer. Each layer is one row of LAYERS: make(m) builds it from module m (tinygrad_llm.nn or torch.nn)."""
import re

import numpy as np
import pytest

import tinygrad_llm as tl
from tinygrad_llm import nn

from conftest import assert_raises_naming, tolerances


def inputs(*shapes, seed=0):
    r = np.random.default_rng(seed)
    return [r.standard_normal(shape) for shape in shapes]


class Row:
    """A layer: make(m) in torch.nn's terms and the shape of its input; or call(layer, m, x) -> a scalar loss, for a
    layer whose call takes more than one input (m: tinygrad_llm or torch; x: the input of `shape`, or None)."""

    def __init__(self, name, make, shape, call=None, train=True):
        self.name, self.make, self.shape, self.call, self.train = name, make, shape, call, train

    def __str__(self):
        return self.name


def _mha(layer, m, x):
    """Self-attention with a causal bool mask, and the weights: both outputs summed into one loss."""
    length = x.shape[1] if layer.batch_first else x.shape[0]
    out, weights = layer(x, x, x, attn_mask=m.tensor(np.triu(np.ones((length, length), dtype=bool), 1)))
    return out.sum() + (weights * weights).sum()


def _lookup(layer, m, x):
    return layer(m.tensor(np.array([[0, 5, 5], [2, 1, 0]]))).pow(2).sum()


LAYERS = [
    Row("Linear", lambda m: m.Linear(4, 3), (2, 5, 4)),
    Row("Linear-nobias", lambda m: m.Linear(4, 3, bias=False), (5, 4)),
    Row("Identity", lambda m: m.Identity(7, unused=True), (2, 3)),
    Row("Flatten", lambda m: m.Flatten(), (2, 3, 4, 5)),
    Row("Flatten-1-2", lambda m: m.Flatten(1, 2), (2, 3, 4, 5)),
    Row("Unflatten", lambda m: m.Unflatten(1, (2, -1)), (3, 6, 2)),
    Row("Softmax", lambda m: m.Softmax(dim=1), (2, 3, 4)),
    Row("LogSoftmax", lambda m: m.LogSoftmax(-1), (2, 3, 4)),
    Row("ReLU", lambda m: m.ReLU(), (3, 4)),
    Row("SiLU", lambda m: m.SiLU(), (3, 4)),
    Row("LeakyReLU", lambda m: m.LeakyReLU(0.3), (3, 4)),
    Row("Softplus", lambda m: m.Softplus(beta=2.0, threshold=3.0), (3, 4)),
    Row("GELU-tanh", lambda m: m.GELU(approximate="tanh"), (3, 4)),
    Row("Embedding", lambda m: m.Embedding(6, 3), None, _lookup),
    Row("Embedding-padding_idx", lambda m: m.Embedding(6, 3, padding_idx=-1), None, _lookup),
    Row("LayerNorm", lambda m: m.LayerNorm(4), (2, 3, 4)),
    Row("LayerNorm-2d-nobias", lambda m: m.LayerNorm((3, 4), eps=1e-3, bias=False), (2, 3, 4)),
    Row("LayerNorm-noaffine", lambda m: m.LayerNorm([4], elementwise_affine=False), (2, 3, 4)),
    Row("BatchNorm1d-train", lambda m: m.BatchNorm1d(3), (4, 3, 5)),
    Row("BatchNorm1d-train-2d", lambda m: m.BatchNorm1d(3, momentum=None, affine=False), (6, 3)),
    Row("BatchNorm1d-eval", lambda m: m.BatchNorm1d(3), (4, 3, 5), train=False),
    Row("BatchNorm1d-eval-untracked", lambda m: m.BatchNorm1d(3, track_running_stats=False), (4, 3), train=False),
    Row("Conv1d", lambda m: m.Conv1d(3, 4, 3), (2, 3, 8)),
    Row("Conv1d-settings", lambda m: m.Conv1d(4, 6, 3, stride=2, padding=2, dilation=2, groups=2), (2, 4, 11)),
    Row("Conv1d-same-unbatched", lambda m: m.Conv1d(3, 2, 5, padding="same", bias=False), (3, 7)),
    *[Row(f"Conv1d-{mode}", lambda m, mode=mode: m.Conv1d(2, 3, 3, padding=2, padding_mode=mode), (2, 2, 6))
      for mode in ("reflect", "replicate", "circular")],
    Row("Dropout-eval", lambda m: m.Dropout(0.3), (3, 4), train=False),
    Row("MultiheadAttention", lambda m: m.MultiheadAttention(8, 2), (5, 3, 8), _mha),
    Row("MultiheadAttention-batch_first-nobias", lambda m: m.MultiheadAttention(8, 4, bias=False, batch_first=True),
        (3, 5, 8), _mha),
]


def _pair(row, torch):
    """(ours, torch's) for `row`, torch's parameters and buffers copied into ours as float64."""
    theirs = row.make(torch.nn).double()
    ours = row.make(nn).to(np.float64)
    state = {name: value.detach().numpy() for name, value in theirs.state_dict().items()}
    ours.load_state_dict(state)
    ours.train(row.train)
    theirs.train(row.train)
    return ours, theirs


@pytest.mark.parametrize("row", LAYERS, ids=str)
def test_forward_and_backward_match_torch(row, torch):
    ours, theirs = _pair(row, torch)
    if row.call is None:
        (x,) = inputs(row.shape)
        x_ours, x_theirs = tl.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
        out, expected = ours(x_ours), theirs(x_theirs)
        upstream = inputs(tuple(expected.shape), seed=1)[0]
        out.backward(upstream)
        expected.backward(torch.tensor(upstream))
        np.testing.assert_allclose(x_ours.grad.numpy(), x_theirs.grad.numpy(), **tolerances(np.float64))
    else:
        x = inputs(row.shape)[0] if row.shape else None
        out = row.call(ours, tl, None if x is None else tl.tensor(x))
        expected = row.call(theirs, torch, None if x is None else torch.tensor(x))
        out.backward()
        expected.backward()
    np.testing.assert_allclose(out.detach().numpy(), expected.detach().numpy(), **tolerances(np.float64))
    theirs_named = dict(theirs.named_parameters())
    assert [name for name, _ in ours.named_parameters()] == list(theirs_named)
    for name, p in ours.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), theirs_named[name].grad.numpy(), **tolerances(np.float64),
                                   err_msg=name)
    for name, b in theirs.named_buffers():        # running statistics updated alike
        np.testing.assert_allclose(ours.get_buffer(name).numpy(), b.numpy(), **tolerances(np.float64), err_msg=name)


@pytest.mark.parametrize("row", LAYERS, ids=str)
def test_print_is_torchs(row, torch):
    """print(layer) as PyTorch's, but for our note of each module's parameter count."""
    ours = re.sub(r"  # [\d,]+ parameters?", "", repr(row.make(nn)))
    assert ours == repr(row.make(torch.nn))


@pytest.mark.parametrize("row", [row for row in LAYERS if "nobias" not in row.name or "Linear" in row.name], ids=str)
def test_default_initialisation_is_torchs_for_one_seed(row, torch):
    """The same seed, the same parameters, drawn in PyTorch's order; and the generator left in the same state."""
    for seed in (0, 5):
        tl.manual_seed(seed)
        torch.manual_seed(seed)
        ours, theirs = row.make(nn), row.make(torch.nn)
        theirs_named = dict(theirs.named_parameters())
        for name, p in ours.named_parameters():
            assert p.dtype == np.float32
            np.testing.assert_array_equal(p.detach().numpy(), theirs_named[name].detach().numpy(), err_msg=name)
        assert tl.rand(3).tolist() == torch.rand(3).tolist()


def test_embedding_padding_row_stays_as_it_is_in_training():
    embedding = nn.Embedding(4, 2, padding_idx=0)
    assert not embedding.weight.detach().numpy()[0].any()
    embedding(tl.tensor(np.array([0, 1, 0]))).sum().backward()
    assert not embedding.weight.grad.numpy()[0].any() and embedding.weight.grad.numpy()[1].tolist() == [1.0, 1.0]


def test_embedding_from_pretrained_shares_and_freezes(torch):
    weights = tl.tensor(np.arange(6.0).reshape(3, 2))
    frozen = nn.Embedding.from_pretrained(weights)
    assert frozen.weight.data is weights.data and not frozen.weight.requires_grad
    assert nn.Embedding.from_pretrained(weights, freeze=False).weight.requires_grad
    assert frozen(tl.tensor(np.array([2]))).tolist() == [[4.0, 5.0]]
    assert repr(frozen) == repr(torch.nn.Embedding.from_pretrained(torch.arange(6.0).reshape(3, 2))) \
        + "  # 6 parameters"


def test_batch_norm_running_statistics_over_steps_and_in_the_state_dict(torch):
    """Five training steps (momentum, and the cumulative average of momentum=None), then eval: running_mean,
    running_var and num_batches_tracked equal torch's, and they are buffers: in state_dict, not parameters."""
    for momentum in (0.3, None):
        ours, theirs = nn.BatchNorm1d(3, momentum=momentum).to(np.float64), \
            torch.nn.BatchNorm1d(3, momentum=momentum).double()
        for step in range(5):
            x = inputs((4, 3, 2), seed=step)[0] * (step + 1)
            ours(tl.tensor(x))
            theirs(torch.tensor(x))
        for name in ("running_mean", "running_var", "num_batches_tracked"):
            np.testing.assert_allclose(getattr(ours, name).numpy(), getattr(theirs, name).numpy(),
                                       **tolerances(np.float64))
        assert ours.num_batches_tracked.dtype == np.int64
        assert list(ours.state_dict()) == list(theirs.state_dict())
        assert [name for name, _ in ours.named_parameters()] == ["weight", "bias"]
        ours.eval()
        theirs.eval()
        x = inputs((4, 3, 2), seed=9)[0]
        np.testing.assert_allclose(ours(tl.tensor(x)).detach().numpy(), theirs(torch.tensor(x)).detach().numpy(),
                                   **tolerances(np.float64))


PADDING = np.array([[False] * 4 + [True], [False] * 5, [True] + [False] * 4])   # (N=3, S=5): True = a padded key
MHA_CALLS = [
    ("self-kpm-weights-per-head", dict(key_padding_mask=PADDING, average_attn_weights=False)),
    ("float-mask-3d", dict(attn_mask=inputs((3 * 2, 5, 5), seed=4)[0])),
    ("no-weights", dict(need_weights=False)),
    ("no-weights-masks", dict(need_weights=False, key_padding_mask=np.array([[False] * 4 + [True]] * 3),
                              attn_mask=np.triu(np.ones((5, 5), dtype=bool), 1))),
    ("causal-hint", dict(need_weights=False, is_causal=True, attn_mask=np.triu(np.ones((5, 5), dtype=bool), 1))),
]


@pytest.mark.parametrize("call", [c[1] for c in MHA_CALLS], ids=[c[0] for c in MHA_CALLS])
def test_multihead_attention_masks_and_modes_match_torch(call, torch):
    """PyTorch's masks (bool True = not allowed; float added; key_padding_mask per key), weights per head or
    averaged or none, the is_causal hint; self-attention (one packed projection) and cross-attention."""
    ours, theirs = _pair(Row("mha", lambda m: m.MultiheadAttention(4, 2), None), torch)
    x, memory = inputs((5, 3, 4), (5, 3, 4), seed=2)
    for key in (x, memory):
        ins_ours = [tl.tensor(a, requires_grad=True) for a in (x, key)]
        ins_theirs = [torch.tensor(a, requires_grad=True) for a in (x, key)]
        kwargs_ours = {k: (tl.tensor(v) if isinstance(v, np.ndarray) else v) for k, v in call.items()}
        kwargs_theirs = {k: (torch.tensor(v) if isinstance(v, np.ndarray) else v) for k, v in call.items()}
        key_ours = ins_ours[0] if key is x else ins_ours[1]
        key_theirs = ins_theirs[0] if key is x else ins_theirs[1]
        out, weights = ours(ins_ours[0], key_ours, key_ours, **kwargs_ours)
        expected, expected_weights = theirs(ins_theirs[0], key_theirs, key_theirs, **kwargs_theirs)
        assert (weights is None) == (expected_weights is None)
        np.testing.assert_allclose(out.detach().numpy(), expected.detach().numpy(), **tolerances(np.float64))
        loss, expected_loss = out.sum(), expected.sum()
        if weights is not None:
            np.testing.assert_allclose(weights.detach().numpy(), expected_weights.detach().numpy(),
                                       **tolerances(np.float64))
            loss, expected_loss = loss + (weights * weights).sum(), expected_loss + (expected_weights ** 2).sum()
        loss.backward()
        expected_loss.backward()
        for mine, their in zip(ins_ours, ins_theirs):
            if their.grad is not None:
                np.testing.assert_allclose(mine.grad.numpy(), their.grad.numpy(), **tolerances(np.float64))
        ours.zero_grad()


def test_multihead_attention_unbatched_matches_torch(torch):
    ours, theirs = _pair(Row("mha", lambda m: m.MultiheadAttention(4, 2, batch_first=True), None), torch)
    (x,) = inputs((5, 4))
    out, weights = ours(tl.tensor(x), tl.tensor(x), tl.tensor(x))
    expected, expected_weights = theirs(torch.tensor(x), torch.tensor(x), torch.tensor(x))
    assert out.shape == tuple(expected.shape) == (5, 4) and weights.shape == tuple(expected_weights.shape) == (5, 5)
    np.testing.assert_allclose(out.detach().numpy(), expected.detach().numpy(), **tolerances(np.float64))
    np.testing.assert_allclose(weights.detach().numpy(), expected_weights.detach().numpy(), **tolerances(np.float64))


def test_in_place_activations_change_their_input_under_autograds_rules(torch):
    """ReLU(inplace=True) writes into its input and returns it, and the gradient is PyTorch's; a leaf that requires
    grad is refused, as PyTorch refuses it."""
    (x,) = inputs((3, 4))
    for make in (lambda m: m.ReLU(inplace=True), lambda m: m.LeakyReLU(0.1, inplace=True),
                 lambda m: m.SiLU(inplace=True)):
        ours, theirs = tl.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
        h_ours, h_theirs = ours * 2, theirs * 2
        out = make(nn)(h_ours)
        assert out is h_ours
        make(torch.nn)(h_theirs)
        np.testing.assert_allclose(h_ours.detach().numpy(), h_theirs.detach().numpy(), **tolerances(np.float64))
        (h_ours * h_ours).sum().backward()
        (h_theirs * h_theirs).sum().backward()
        np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), **tolerances(np.float64))
        with pytest.raises(RuntimeError, match="leaf tensor that requires grad"):
            make(nn)(tl.tensor(x, requires_grad=True))


def test_the_models_layer_norm_calls_keep_their_meaning():
    """The models call LayerNorm(n, bias=...) and LayerNorm(n, eps=...) by keyword: PyTorch's order holds them."""
    no_bias, eps = nn.LayerNorm(5, bias=False), nn.LayerNorm(5, eps=1e-12)
    assert no_bias.bias is None and no_bias.weight.shape == (5,) and no_bias.eps == 1e-5
    assert eps.eps == 1e-12 and eps.bias.shape == (5,)


ERRORS = [
    ("Embedding-padding_idx", lambda: nn.Embedding(5, 2, padding_idx=5), ValueError,
     ["Embedding", "padding_idx 5", "num_embeddings 5"]),
    ("Embedding-max_norm", lambda: nn.Embedding(5, 2, max_norm=1.0), NotImplementedError, ["Embedding", "max_norm"]),
    ("LayerNorm-negative", lambda: nn.LayerNorm(-2), ValueError, ["LayerNorm", "normalized_shape[0]", "-2"]),
    ("BatchNorm1d-4d", lambda: nn.BatchNorm1d(3)(tl.ones(2, 3, 4, 5)), ValueError, ["BatchNorm1d", "(2, 3, 4, 5)"]),
    ("BatchNorm1d-one-value", lambda: nn.BatchNorm1d(3)(tl.ones(1, 3)), ValueError,
     ["batch_norm", "more than 1 value per channel", "(1, 3)"]),
    ("Conv1d-groups", lambda: nn.Conv1d(4, 6, 3, groups=4), ValueError, ["Conv1d", "groups=4", "6"]),
    ("Conv1d-padding_mode", lambda: nn.Conv1d(2, 2, 3, padding_mode="mirror"), ValueError,
     ["Conv1d", "padding_mode", "'mirror'"]),
    ("Conv1d-same-strided", lambda: nn.Conv1d(2, 2, 3, stride=2, padding="same"), ValueError,
     ["Conv1d", "padding='same'", "strided"]),
    ("Conv1d-kernel", lambda: nn.Conv1d(2, 2, (3, 3)), ValueError, ["Conv1d", "kernel_size", "(3, 3)"]),
    ("Conv1d-channels", lambda: nn.Conv1d(2, 2, 3)(tl.ones(1, 3, 5)), ValueError, ["conv1d", "(1, 3, 5)"]),
    ("MHA-divisible", lambda: nn.MultiheadAttention(6, 4), ValueError, ["MultiheadAttention", "6", "4"]),
    ("MHA-kdim", lambda: nn.MultiheadAttention(4, 2, kdim=3), NotImplementedError, ["MultiheadAttention", "kdim"]),
    ("MHA-shapes", lambda: nn.MultiheadAttention(4, 2)(tl.ones(5, 3, 4), tl.ones(5, 2, 4), tl.ones(5, 2, 4)),
     ValueError, ["MultiheadAttention", "(5, 3, 4)", "(5, 2, 4)"]),
    ("MHA-mask", lambda: nn.MultiheadAttention(4, 2)(tl.ones(5, 3, 4), tl.ones(5, 3, 4), tl.ones(5, 3, 4),
                                                     attn_mask=np.ones((4, 5), bool)),
     ValueError, ["MultiheadAttention", "attn_mask", "(4, 5)", "(5, 5)"]),
    ("MHA-causal-without-mask", lambda: nn.MultiheadAttention(4, 2)(tl.ones(5, 3, 4), tl.ones(5, 3, 4),
                                                                    tl.ones(5, 3, 4), is_causal=True),
     RuntimeError, ["MultiheadAttention", "is_causal needs attn_mask"]),
    ("Dropout-p", lambda: nn.Dropout(1.5), ValueError, ["Dropout", "1.5"]),
    ("Unflatten-size", lambda: nn.Unflatten(1, 6), TypeError, ["Unflatten", "unflattened_size", "6"]),
    ("NLLLoss-weight", lambda: nn.NLLLoss(tl.ones(3))(tl.ones(2, 4), np.array([0, 1])), ValueError,
     ["nll_loss", "weight should hold one weight for each of the 4 classes", "(3,)"]),
    ("BCELoss-range", lambda: nn.BCELoss()(tl.ones(3) * 2, tl.ones(3)), ValueError,
     ["binary_cross_entropy", "between 0 and 1"]),
    ("L1Loss-reduction", lambda: nn.L1Loss(reduction="avg"), ValueError, ["L1Loss", "'avg'"]),
]


@pytest.mark.parametrize("call, error, words", [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS])
def test_bad_settings_are_refused_naming_the_layer(call, error, words):
    assert_raises_naming(call, error, words)


LOSSES = [
    ("NLLLoss", lambda m: m.nn.NLLLoss(ignore_index=1), lambda m, x: x.log_softmax(1),
     lambda m, x: m.tensor(np.array([0, 1, 2, 2]))),
    ("L1Loss-sum", lambda m: m.nn.L1Loss(reduction="sum"), lambda m, x: x, lambda m, x: x.detach() * 0.5),
    ("BCELoss", lambda m: m.nn.BCELoss(m.tensor(np.array([1.0, 2.0, 0.5]))), lambda m, x: x.sigmoid(),
     lambda m, x: m.tensor(np.linspace(0, 1, 12).reshape(4, 3))),
    ("BCEWithLogitsLoss", lambda m: m.nn.BCEWithLogitsLoss(pos_weight=m.tensor(np.array([1.0, 3.0, 0.5]))),
     lambda m, x: x, lambda m, x: m.tensor(np.linspace(0, 1, 12).reshape(4, 3))),
    ("CrossEntropyLoss-probabilities", lambda m: m.nn.CrossEntropyLoss(label_smoothing=0.1), lambda m, x: x,
     lambda m, x: m.tensor(np.full((4, 3), 1 / 3))),
    ("CrossEntropyLoss-weight", lambda m: m.nn.CrossEntropyLoss(m.tensor(np.array([0.2, 1.0, 3.0])), ignore_index=0,
                                                                label_smoothing=0.2),
     lambda m, x: x, lambda m, x: m.tensor(np.array([2, 0, 1, 2]))),
    ("NLLLoss-weight", lambda m: m.nn.NLLLoss(m.tensor(np.array([0.2, 1.0, 3.0])), reduction="sum"),
     lambda m, x: x.log_softmax(1), lambda m, x: m.tensor(np.array([2, 0, 1, 2]))),
]


@pytest.mark.parametrize("make, prepare, target", [loss[1:] for loss in LOSSES], ids=[loss[0] for loss in LOSSES])
def test_loss_modules_match_torch(make, prepare, target, torch):
    """make(m), prepare(m, logits) and target(m, logits), with m = tinygrad_llm or torch."""
    (x,) = inputs((4, 3))
    x_ours, x_theirs = tl.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    out = make(tl)(prepare(tl, x_ours), target(tl, x_ours))
    expected = make(torch)(prepare(torch, x_theirs), target(torch, x_theirs))
    out.backward()
    expected.backward()
    np.testing.assert_allclose(out.detach().numpy(), expected.detach().numpy(), **tolerances(np.float64))
    np.testing.assert_allclose(x_ours.grad.numpy(), x_theirs.grad.numpy(), **tolerances(np.float64))


def test_layers_and_functions_on_the_cuda_device_equal_the_cpu():
    """The new functions and MultiheadAttention with its masks run on the CUDA device (the mock device in CI) with
    the CPU's numbers: their arrays, masks and indices are made on the input's device."""
    from tinygrad_llm.engine import backend
    try:
        backend.module_for("cuda")
    except RuntimeError as e:
        pytest.skip(f"no usable GPU: {e}")
    F = nn.functional
    mha = nn.MultiheadAttention(6, 2).to(np.float64)

    def attention(q):
        mha.to(q.device)
        return mha(q, q, q, key_padding_mask=np.array([[False, True]] * 3),
                   attn_mask=np.triu(np.ones((2, 2), bool), 1))[0]

    x, p = inputs((2, 3, 6), (2, 3, 6))
    calls = [(lambda x, p: F.pad(x, (1, 2), mode="reflect") * F.pad(p, (1, 2), value=3.0)),
             (lambda x, p: F.conv1d(x, p[:, :, :3].reshape(2, 3, 3), stride=2, padding=1, groups=1)[:, :1]),
             (lambda x, p: F.batch_norm(x, None, None, p[0, :, 0], p[1, :, 1], training=True)),
             (lambda x, p: F.silu(x) + F.softplus(p) + F.leaky_relu(x) + F.normalize(p, dim=2)),
             (lambda x, p: F.interpolate(x, size=9, mode="linear") + F.interpolate(p, scale_factor=1.5)),
             (lambda x, p: F.binary_cross_entropy_with_logits(x, p.sigmoid(), pos_weight=np.full(6, 2.0))
              + F.cross_entropy(x, p.softmax(1))),
             (lambda x, p: attention(x[:, :, :6] + p[:2]))]
    for call in calls:
        results = []
        for device in ("cpu", "cuda"):
            xs = [tl.Tensor(a, device=device, requires_grad=True) for a in (x, p)]
            out = call(*xs)
            out.backward(tl.Tensor(np.ones(out.shape), device=device))
            results.append([out.detach().numpy()] + [t.grad.numpy() for t in xs])
        for on_cpu, on_gpu in zip(*results):
            np.testing.assert_allclose(on_gpu, on_cpu, **tolerances(np.float64))
