"""Every fused op's registry entry (dispatch.FusedOp), each implementation it declares: reached through the public
function, and equal in value and gradient to the op's NumPy Function.

The entries are found, not listed: every FusedOp in the package's engine, nn and optim modules. Each implementation
an entry declares is one test; an entry without a case below, or a kernel without a kernel case, fails. A test makes
the public call with the switches (or arguments) that should select the implementation, checks that the entry's
slot was called (a spy in its place) and that the expected Function built the output (out._ctx), then compares with
the NumPy Function: the composed twin in float64 on the CPU, the CUDA kernel in float32 on the GPU (the mock device
where there is none) against the Function's array code on the same CuPy arrays, inside cuda_kernels(False).
"""
import importlib
import pkgutil

import numpy as np
import pytest

import tinygrad_llm.engine.functional as F
from tinygrad_llm import Tensor
from tinygrad_llm.engine import backend, dispatch
from tinygrad_llm.engine import rng as engine_rng
from tinygrad_llm.engine.cuda import attention
from tinygrad_llm.engine.cuda.fused import CudaAttentionOp, CudaCrossEntropyOp, CudaGeluTanhOp, CudaLayerNormOp
from tinygrad_llm.optim import Adam, AdamW
from tinygrad_llm.optim import optimizers

from conftest import assert_raises_naming
from test_cuda_kernels import cp  # noqa: F401 (the fixture: CuPy, on a GPU or the mock device, or a skip)

COMPOSED_TOL = dict(rtol=1e-12, atol=1e-13)   # float64, the same math in another order
KERNEL_TOL = dict(rtol=1e-5, atol=1e-4)       # float32 kernels against float32 array code, as test_cuda_kernels.py
T_2D = np.array([0, 3, -100, 1, 2])           # targets for (5, 4) logits; row 2 ignored


def registry_entries():
    """Every FusedOp defined at module level in tinygrad_llm's engine, nn and optim packages, by name."""
    entries = {}
    for package in ("engine", "nn", "optim"):
        root = importlib.import_module(f"tinygrad_llm.{package}")
        for info in pkgutil.walk_packages(root.__path__, root.__name__ + "."):
            if ".mock" in info.name:                  # the mock device's CuPy stand-in declares no ops
                continue
            for value in vars(importlib.import_module(info.name)).values():
                if isinstance(value, dispatch.FusedOp):
                    entries[value.name] = value
    return entries


ENTRIES = registry_entries()


def on(x, array):
    """A constant on x's device (targets, weights): float arrays in x's dtype."""
    array = np.asarray(array)
    array = array.astype(x.dtype) if array.dtype.kind == "f" else array
    return backend.xp(x.data).asarray(array)


class Case:
    """The public call `call(*tensors)` of one entry, on inputs of `shapes`; `function` and `kernel` the Function
    classes expected to build its output. One call serves every implementation: it is one the kernel supports."""

    def __init__(self, shapes, call, function, kernel=None):
        self.shapes, self.call, self.function, self.kernel = shapes, call, function, kernel

    def inputs(self, dtype, device):
        r = np.random.default_rng(0)
        return [Tensor(r.standard_normal(s).astype(dtype), device=device, requires_grad=True) for s in self.shapes]

    def run(self, xs):
        """(output, [input gradients]) as NumPy arrays, backward from a fixed random upstream; the same seed before
        each call, so dropout draws the same mask every time."""
        for x in xs:
            x.grad = None
        engine_rng.manual_seed(0)
        out = self.call(*xs)
        upstream = np.random.default_rng(1).standard_normal(out.shape).astype(out.dtype)
        out.backward(on(out, upstream))
        return out, [x.grad.numpy() for x in xs]


CASES = {
    "linear": Case([(3, 4), (5, 4), (5,)], F.linear, F.LinearOp),
    "softmax": Case([(2, 3, 4)], lambda x: F.softmax(x, -1), F.SoftmaxOp),
    "log_softmax": Case([(2, 3, 4)], lambda x: F.log_softmax(x, 1), F.LogSoftmaxOp),
    "cross_entropy": Case([(5, 4)], lambda x: F.cross_entropy(x, on(x, T_2D)), F.CrossEntropyOp, CudaCrossEntropyOp),
    "cross_entropy (class probabilities)": Case(
        [(5, 4), (5, 4)], lambda x, p: F.cross_entropy(x, p.softmax(1), label_smoothing=0.1),
        F.SoftTargetCrossEntropyOp),
    "layer_norm": Case([(2, 3, 8), (8,), (8,)], lambda x, w, b: F.layer_norm(x, (8,), w, b), F.LayerNormOp,
                       CudaLayerNormOp),
    "scaled_dot_product_attention": Case(
        [(1, 2, 8, 32)] * 3, lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True), F.AttentionOp,
        CudaAttentionOp),
    "dropout": Case([(4, 5)], lambda x: F.dropout(x, 0.3), F.DropoutOp),
    "gelu": Case([(3, 4)], lambda x: F.gelu(x, approximate="tanh"), F.GeluOp, CudaGeluTanhOp),
    "silu": Case([(3, 4)], F.silu, F.SiluOp),
    "softplus": Case([(3, 4)], lambda x: F.softplus(x, beta=2.0, threshold=1.5), F.SoftplusOp),
    "logsigmoid": Case([(3, 4)], F.logsigmoid, F.LogSigmoidOp),
    "mse_loss": Case([(3, 4), (3, 4)], F.mse_loss, F.MSELossOp),
    "binary_cross_entropy": Case([(3, 4), (3, 4)], lambda x, y: F.binary_cross_entropy(x.sigmoid(), y.sigmoid()),
                                 F.BinaryCrossEntropyOp),
    "binary_cross_entropy_with_logits": Case(
        [(3, 4), (3, 4)],
        lambda x, y: F.binary_cross_entropy_with_logits(x, y.sigmoid(), pos_weight=on(x, [0.5, 2.0, 1.0, 0.25])),
        F.BinaryCrossEntropyWithLogitsOp),
    "batch_norm": Case([(4, 3, 5), (3,), (3,)], lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True),
                       F.BatchNormOp),
    "pad": Case([(2, 3, 4)], lambda x: F.pad(x, (1, 2), mode="reflect"), F.PadOp),
    "conv1d": Case([(2, 3, 7), (4, 3, 3), (4,)], lambda x, w, b: F.conv1d(x, w, b, stride=2, padding=1),
                   F.Conv1dOp),
}


def implementations():
    """(entry name, slot) for every implementation every entry declares."""
    return [pytest.param(name, slot, id=f"{name}-{slot}") for name, entry in sorted(ENTRIES.items())
            for slot in ("function", "composed", "kernel") if getattr(entry, slot) is not None]


@pytest.fixture
def spy(monkeypatch):
    """spy(entry, slot): the entry's implementation in that slot replaced by one that records its calls."""
    def install(entry, slot):
        calls, original = [], getattr(entry, slot)

        def recording(*args):
            calls.append(args)
            return original(*args)
        monkeypatch.setattr(entry, slot, recording)
        return calls
    return install


def test_the_registry_holds_the_fused_ops_and_each_has_a_case():
    """A new entry without a case here fails; so does a case whose entry went away."""
    assert len(ENTRIES) >= 19
    assert set(ENTRIES) == set(CASES) | {"adam_step"}
    for name, case in CASES.items():
        assert (ENTRIES[name].kernel is None) == (case.kernel is None), f"{name}: kernel case and entry disagree"


@pytest.mark.parametrize("name, slot", implementations())
def test_each_implementation_is_reached_and_equals_the_numpy_function(name, slot, spy, request):
    entry = ENTRIES[name]
    if name == "adam_step":
        return adam_step(slot, spy, request)
    case = CASES[name]
    if slot == "kernel":
        cp = request.getfixturevalue("cp")
        xs = case.inputs(np.float32, "cuda")
        with dispatch.cuda_kernels(False):
            reference, reference_grads = case.run(xs)                 # the Function's array code on CuPy
        calls = spy(entry, "kernel")
        out, grads = case.run(xs)
        assert type(out._ctx) is case.kernel and len(calls) == 1
        assert cp is backend.xp(out.data)
        tol = KERNEL_TOL
    else:
        xs = case.inputs(np.float64, "cpu")
        reference, reference_grads = case.run(xs)
        assert type(reference._ctx) is case.function                  # the default on the CPU: the Function
        calls = spy(entry, slot)
        with dispatch.fused(slot != "composed"):
            out, grads = case.run(xs)
        built_by = type(out._ctx)
        if slot == "function":
            assert built_by is case.function
        else:                                                         # a primitive built the twin's output
            assert built_by.__module__.split(".")[-1] in ("ops", "movement", "reductions"), built_by
        assert len(calls) == 1
        tol = COMPOSED_TOL
    np.testing.assert_allclose(out.detach().numpy(), reference.detach().numpy(), **tol)
    for i, (a, b) in enumerate(zip(grads, reference_grads)):
        np.testing.assert_allclose(a, b, err_msg=f"{name}: gradient of input {i}", **tol)


def adam_step(slot, spy, request):
    """Adam's step has no twin: its kernel against the array code, on the GPU, for Adam and AdamW; the array code
    on the CPU is the optimizer that tests/test_optim.py checks against torch.optim."""
    device = "cuda" if slot == "kernel" else "cpu"
    if device == "cuda":
        request.getfixturevalue("cp")

    def three_steps(optimizer_class, kernels):
        r = np.random.default_rng(2)
        p = Tensor(r.standard_normal((6, 5)).astype(np.float32), device=device, requires_grad=True)
        optimizer = optimizer_class([p], lr=0.1, weight_decay=0.1)
        with dispatch.cuda_kernels(kernels):
            for _ in range(3):
                p.grad = Tensor(r.standard_normal((6, 5)).astype(np.float32), device=device)
                optimizer.step()
        return p.detach().numpy()

    for optimizer_class in (Adam, AdamW):
        reference = three_steps(optimizer_class, kernels=False)
        calls = spy(optimizers.ADAM_STEP, slot)
        np.testing.assert_allclose(three_steps(optimizer_class, kernels=True), reference, rtol=1e-6, atol=1e-6)
        assert len(calls) == 3


def test_the_switches_nest_and_restore(cp):
    """The composed switch wins over the kernel; each switch restores what was before, also after an error."""
    case = CASES["gelu"]
    (x,) = case.inputs(np.float32, "cuda")
    with dispatch.cuda_kernels(False):
        with dispatch.fused(False), pytest.raises(ZeroDivisionError):
            1 / 0
        assert type(F.gelu(x, approximate="tanh")._ctx) is F.GeluOp
    with dispatch.fused(False):
        assert type(F.gelu(x, approximate="tanh")._ctx) is not CudaGeluTanhOp
    assert type(F.gelu(x, approximate="tanh")._ctx) is CudaGeluTanhOp
    assert type(F.gelu(x)._ctx) is F.GeluOp                        # the exact GELU: the kernel does not support it


# ---------------------------------------------------------------- attention in bf16, from the public function

def test_bf16_attention_runs_the_bf16_kernel(cp):
    q, k, v = CASES["scaled_dot_product_attention"].inputs(np.float32, "cuda")
    out = F.scaled_dot_product_attention(q, k, v, is_causal=True, precision="bf16")
    assert type(out._ctx) is CudaAttentionOp and out._ctx.precision == "bf16" and out.dtype == np.float32
    d_out = cp.asarray(np.random.default_rng(1).standard_normal(out.shape).astype(np.float32))
    out.backward(d_out)
    o, lse = attention.forward(q.data, k.data, v.data, True, precision="bf16")   # the launcher itself, bit for bit
    dq, dk, dv = attention.backward(q.data, k.data, v.data, o, d_out, lse, True, precision="bf16")
    np.testing.assert_array_equal(out.detach().numpy(), o.get())
    for grad, expected in ((q.grad, dq), (k.grad, dk), (v.grad, dv)):
        np.testing.assert_array_equal(grad.numpy(), expected.get())
    fp32 = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    assert 0 < np.abs(out.detach().numpy() - fp32.detach().numpy()).max() < 2e-2   # bf16's rounding, and no more


@pytest.mark.parametrize("where", ["cpu", "mask", "dropout", "cuda_kernels(False)", "fused(False)", "float64",
                                   "head dim 16"])
def test_bf16_attention_is_refused_where_no_kernel_can_run(cp, where):
    device = "cpu" if where == "cpu" else "cuda"
    dtype = np.float64 if where == "float64" else np.float32
    shape = (1, 2, 8, 16) if where == "head dim 16" else (1, 2, 8, 32)
    q = Tensor(np.ones(shape, dtype), device=device)
    kwargs = dict(precision="bf16", attn_mask=on(q, np.tril(np.ones((8, 8), bool))) if where == "mask" else None,
                  dropout_p=0.1 if where == "dropout" else 0.0)
    switch = (dispatch.cuda_kernels(False) if where == "cuda_kernels(False)" else
              dispatch.fused(False) if where == "fused(False)" else dispatch.fused(True))
    with switch:
        assert_raises_naming(lambda: F.scaled_dot_product_attention(q, q, q, **kwargs), ValueError,
                             ["scaled_dot_product_attention", "precision='bf16'", "runs only in the CUDA kernel"])


def test_an_unknown_precision_is_refused():
    q = Tensor(np.ones((1, 8, 32), np.float32))
    assert_raises_naming(lambda: F.scaled_dot_product_attention(q, q, q, precision="fp16"), ValueError,
                         ["scaled_dot_product_attention", "precision", "'fp16'"])

