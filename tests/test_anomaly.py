"""tools/anomaly.py: the op that made the first NaN or infinity, and the line of code that called it, for a forward
(log(0), sqrt(-1), exp overflow, 0/0) and for a backward (sqrt at 0); no false alarm on a training step."""
import inspect

import numpy as np
import pytest

import tinygrad_llm as tl
from tinygrad_llm.engine import rng, tensor
from tinygrad_llm.models.gpt import GPT, GPTConfig
from tinygrad_llm.optim import AdamW
from tinygrad_llm.tools.anomaly import AnomalyError, detect_anomaly

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")   # NumPy's own note of each NaN and inf


def line_after():
    """The number of the line after the caller's (where a test makes its bad value)."""
    return inspect.currentframe().f_back.f_lineno + 1


@pytest.mark.parametrize("op, make", [
    ("LogOp", lambda x: tl.log(x - 1)),              # log(0) = -inf
    ("SqrtOp", lambda x: tl.sqrt(x - 2)),            # sqrt(-1) = NaN
    ("ExpOp", lambda x: tl.exp(x * 100)),            # e^100 overflows float32
    ("DivOp", lambda x: (x - 1) / (x - 1)),          # 0/0 = NaN
])
def test_a_forward_that_makes_a_non_finite_value_is_named_with_its_line(op, make):
    x = tl.tensor([1.0, 2.0], requires_grad=True)
    y = x * 1.0                                      # finite: no alarm
    with pytest.raises(AnomalyError) as error, detect_anomaly():
        make(y)
    message = str(error.value)
    assert message.startswith(f"{op} made (2,) float32") and "from finite inputs" in message
    assert f"{__file__}:{make.__code__.co_firstlineno} in <lambda>" in message   # the lambda called the op
    assert "input 0: (2,) float32 in [" in message


def test_the_line_inside_a_layer_and_the_users_line_are_both_named():
    x = tl.tensor([[0.0, 1.0]], requires_grad=True)
    layer = tl.nn.LayerNorm(2)
    layer.weight.data[...] = np.inf                  # a non-finite input: LayerNorm passes it on, is not blamed
    with detect_anomaly():
        layer(x)
    linear = tl.nn.Linear(2, 1)
    linear.weight.data[...] = 1e30
    with pytest.raises(AnomalyError) as error, detect_anomaly():
        line = line_after()
        linear(x * 1e10)                             # 1e40 overflows float32, inside Linear.forward
    message = str(error.value)
    assert message.startswith("LinearOp made (1, 1) float32, 0 NaN, 1 inf")
    assert "input 1: (1, 2) float32 in [1e+30, 1e+30]" in message
    assert "tinygrad_llm/nn/layers.py:" in message
    assert f"in forward, called from {__file__}:{line} in test_the_line" in message


def test_a_backward_that_makes_a_non_finite_gradient_names_its_op_and_forward_line():
    x = tl.tensor([0.0, 4.0], requires_grad=True)
    with pytest.raises(AnomalyError) as error, detect_anomaly():
        line = line_after()
        root = tl.sqrt(x)                            # finite: sqrt(0) = 0
        (root * 3).sum().backward()                  # d sqrt(x)/dx = 1/(2 sqrt(x)) = inf at 0
    message = str(error.value)
    assert message.startswith("SqrtOp.backward made a non-finite gradient, (2,) float32 in [0.75, 0.75], 0 NaN, "
                              "1 inf")
    assert "from a finite dL/d(out) ((2,) float32 in [3, 3])" in message
    assert message.endswith(f"its forward was called at {__file__}:{line} in "
                            f"test_a_backward_that_makes_a_non_finite_gradient_names_its_op_and_forward_line")
    assert x.grad is None


def test_no_false_alarm_on_a_training_step():
    rng.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=65, block_size=16, n_layer=2, n_head=2, n_embd=16))
    optimizer = AdamW(model.parameters())
    x, y = np.random.default_rng(0).integers(0, 65, (2, 4, 16))
    with detect_anomaly():
        for _ in range(2):
            _, loss = model(x, y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    assert np.isfinite(loss.item()) and tensor.observers == []
