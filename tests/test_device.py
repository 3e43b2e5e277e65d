"""torch.device (tl.device, engine/backend.Device): made, printed and compared as PyTorch's, and taken wherever the
engine takes a device's name; one with an index is refused where it would be used."""
import numpy as np
import pytest

import tinygrad_llm as tl
from conftest import assert_raises_naming
from tinygrad_llm.engine import backend

FORMS = [("cpu",), ("cuda",), ("cuda:1",), ("cuda", 1), ("cpu", 0), ("mps",)]


@pytest.mark.parametrize("args", FORMS, ids=str)
def test_a_device_is_made_printed_and_compared_as_pytorchs(args, torch):
    ours, theirs = tl.device(*args), torch.device(*args)
    assert (repr(ours), str(ours), f"{ours}", ours.type, ours.index) == \
        (repr(theirs), str(theirs), f"{theirs}", theirs.type, theirs.index)
    assert tl.device(ours) == ours and hash(tl.device(ours)) == hash(ours)
    others = [tl.device(*other) for other in FORMS]
    assert [ours == other for other in others] == [theirs == torch.device(*other) for other in FORMS]
    assert (ours == str(ours)) == (theirs == str(theirs)) is False   # never equal to a string, as PyTorch's


def test_a_number_alone_is_a_gpu_index():
    """As PyTorch on a machine with CUDA (without an accelerator, PyTorch refuses the form)."""
    assert tl.device(0) == tl.device("cuda:0") and repr(tl.device(3)) == "device(type='cuda', index=3)"


@pytest.mark.parametrize("args", [("gpu",), ("cuda:x",), (-1,), ("cuda:1", 1)], ids=str)
def test_a_bad_device_is_refused_as_pytorch_refuses_it(args, torch):
    with pytest.raises(RuntimeError):
        torch.device(*args)
    assert_raises_naming(lambda: tl.device(*args), RuntimeError, ["device"])


def test_the_engine_takes_a_device_wherever_it_takes_a_name():
    cpu = tl.device("cpu")
    x = tl.tensor([1.0, 2.0], device=cpu)
    assert x.to(cpu) is x and x.to(device=cpu) is x and x.to(cpu, tl.float64).dtype == np.float64
    for make in (lambda d: tl.zeros(2, 3, device=d), lambda d: tl.arange(4, device=d),
                 lambda d: tl.zeros_like(x, device=d), lambda d: tl.Tensor([3, 4], device=d)):
        np.testing.assert_array_equal(make(cpu).numpy(), make("cpu").numpy())
    tl.manual_seed(5)
    drawn = tl.randn(6, device=cpu)
    tl.manual_seed(5)
    np.testing.assert_array_equal(drawn.numpy(), tl.randn(6, device="cpu").numpy())
    model = tl.nn.Linear(2, 3)
    assert model.to(cpu) is model and model.weight.device == cpu


def test_a_tensors_device_is_a_device_never_equal_to_a_string(torch):
    """x.device is a torch.device: `x.device == 'cpu'` is False in PyTorch (it was True here, so code that compares
    took the other branch, silently). Its type, index, printing, hashing, is_cuda, is_cpu and get_device() are
    PyTorch's."""
    ours, theirs = tl.zeros(2), torch.zeros(2)
    assert (ours.device == "cpu", ours.device != "cpu") == (theirs.device == "cpu", theirs.device != "cpu")
    assert ours.device != "cpu"
    mine, its = ours.device, theirs.device
    assert (mine.type, mine.index, str(mine), repr(mine), f"{mine}") == \
        (its.type, its.index, str(its), repr(its), f"{its}")
    assert [mine == tl.device(*form) for form in FORMS] == [its == torch.device(*form) for form in FORMS]
    assert hash(mine) == hash(tl.device("cpu")) and tl.device(mine) == mine and {mine: 1}[tl.device("cpu")] == 1
    assert (ours.is_cuda, ours.is_cpu, ours.get_device()) == (theirs.is_cuda, theirs.is_cpu, theirs.get_device())
    assert mine is tl.ones(3, dtype=tl.int64).device   # one Device for every CPU tensor, read-only as PyTorch's
    with pytest.raises(AttributeError):
        mine.type = "cuda"
    assert repr(tl.Generator(device=mine).device) == repr(torch.Generator(device=its).device)


def test_a_gpu_tensors_device_is_cuda_with_the_gpus_index():
    """On the GPU (the mock device in CI): device(type='cuda', index=<the GPU>), as PyTorch's; the device goes
    back wherever a device is taken, and a device naming another GPU is refused."""
    try:
        index = backend.current_gpu_index()
    except RuntimeError as e:
        pytest.skip(f"no usable GPU: {e}")
    x = tl.tensor([1.0, 2.0], device="cuda")
    gpu = x.device
    assert (gpu.type, gpu.index, repr(gpu)) == ("cuda", index, f"device(type='cuda', index={index})")
    assert gpu == tl.device(f"cuda:{index}") and gpu != tl.device("cuda") and gpu != "cuda" and gpu != "cpu"
    assert (x.is_cuda, x.is_cpu, x.get_device(), x.type()) == (True, False, index, "torch.cuda.FloatTensor")
    assert repr(x) == f"tensor([1., 2.], device='cuda:{index}')"
    assert x.to(gpu) is x and x.to(str(gpu)) is x and x.to(x) is x
    for made in (x.cpu().to(gpu), tl.zeros_like(x), tl.zeros(2, device=gpu), tl.tensor([1.0], device=gpu),
                 tl.randn(2, device=gpu), tl.ones(2, device=str(gpu)), x.new_tensor([3.0])):
        assert made.device is gpu
    assert_raises_naming(lambda: tl.ones(2, device=tl.device("cuda", index + 1)), ValueError,
                         [f"'cuda:{index + 1}'", "the process's one GPU"])
    assert_raises_naming(lambda: tl.ones(2, device=f"cuda:{index + 1}"), ValueError, [f"'cuda:{index + 1}'"])


def test_a_device_with_an_index_other_than_the_engines_gpu_is_refused():
    x = tl.ones(2)
    for use in (lambda: x.to(tl.device("cpu", 0)), lambda: tl.randn(2, device=tl.device("cpu:1")),
                lambda: x.to("cpu:0")):
        assert_raises_naming(use, ValueError, ["device", "cpu:", "the process's one GPU"])


def test_tensor_cpu_cuda_and_pin_memory_move_it_as_to_does(monkeypatch):
    """x.cpu(), x.cuda() and nanoGPT's x.pin_memory().to(device, non_blocking=True), on the mock CUDA device; each
    stays in the graph. pin_memory is refused, as by PyTorch, for a tensor on the GPU and where there is none."""
    monkeypatch.setattr(backend, "_CUDA", None)
    monkeypatch.setenv(backend.MOCK_ENV, "1")
    x = tl.tensor([1.0, 2.0], requires_grad=True)
    on_gpu = x.cuda()
    assert x.cpu() is x and on_gpu.is_cuda and on_gpu.cuda() is on_gpu
    assert x.cuda(0).device == x.cuda(tl.device("cuda")).device == x.cuda("cuda").device == tl.device("cuda:0")
    pinned = x.pin_memory()
    assert pinned is not x and pinned.device == tl.device("cpu") and pinned.tolist() == [1.0, 2.0]
    (pinned.to("cuda", non_blocking=True).cpu() * 3 + on_gpu.cpu()).sum().backward()
    assert x.grad.tolist() == [4.0, 4.0]
    assert_raises_naming(lambda: x.cuda("cuda:1"), ValueError, ["cuda: the engine uses one GPU", "cuda:1"])
    assert_raises_naming(on_gpu.pin_memory, RuntimeError, ["pin_memory: only CPU tensors", "(2,)", "cuda"])
    monkeypatch.setattr(backend, "_CUDA", None)
    monkeypatch.delenv(backend.MOCK_ENV)
    try:
        backend.module_for("cuda")
    except RuntimeError:   # no GPU here
        assert_raises_naming(x.pin_memory, RuntimeError, ["pin_memory: there is no GPU to pin memory for"])
    monkeypatch.setattr(backend, "_CUDA", None)
