"""torch.save and torch.load (tinygrad_llm/serialization.py): PyTorch's file format both ways. A file saved here loads
in PyTorch with the same tensors (views sharing their storage, as PyTorch's do) and an optimizer's state that steps
on as ours would; a file PyTorch saved loads here; weights_only refuses any other class, naming it; half precision,
the format before PyTorch 1.6 and a map_location of another kind are refused; tensors go back to their device."""
import fractions
import io
import zipfile

import numpy as np
import pytest

import tinygrad_llm as tl
from tinygrad_llm.engine import backend
from tinygrad_llm.models.gpt import GPT, GPTConfig

from conftest import assert_raises_naming

TINY = GPTConfig(vocab_size=11, block_size=8, n_layer=1, n_head=2, n_embd=8)


def loss_of(params):
    return (params[0] * params[0]).sum() * 3 + params[1].sum()


def trained_params_and_adamw(steps=2):
    params = [tl.nn.Parameter(tl.tensor(np.arange(6, dtype=np.float32).reshape(2, 3) / 7)), tl.nn.Parameter(tl.ones(3))]
    optimizer = tl.optim.AdamW(params, lr=0.1)
    for _ in range(steps):
        loss_of(params).backward()
        optimizer.step()
        optimizer.zero_grad()
    return params, optimizer


def test_a_file_saved_here_loads_in_pytorch_with_the_same_tensors(torch, tmp_path):
    tl.manual_seed(0)
    model = GPT(TINY)
    x = tl.tensor(np.arange(12.0).reshape(3, 4))
    params, optimizer = trained_params_and_adamw()
    tl.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "iter_num": 3,
             "best_val_loss": tl.tensor(2.5), "config": {"lr": 1e-3, "name": "char", "bias": False, "drop": None},
             "views": [x, x.transpose(0, 1), x[1:, ::2]], "ids": tl.tensor([3, 1]), "mask": tl.tensor([True, False]),
             "param": params[0], "devices": [x.device, tl.device("cuda", 1)]}, tmp_path / "ckpt.pt")
    theirs = torch.load(tmp_path / "ckpt.pt")   # weights_only=True: nothing but tensors, containers and numbers
    assert type(theirs["model"]).__name__ == "OrderedDict" and list(theirs["model"]) == list(model.state_dict())
    for name, t in model.state_dict().items():
        assert theirs["model"][name].dtype == torch.float32 and np.array_equal(theirs["model"][name].numpy(), t)
    tied = theirs["model"]["lm_head.weight"], theirs["model"]["transformer.wte.weight"]
    assert tied[0].data_ptr() == tied[1].data_ptr()   # one matrix under two names, as PyTorch saves it
    assert theirs["iter_num"] == 3 and theirs["best_val_loss"].item() == 2.5 and theirs["config"]["name"] == "char"
    for ours, loaded in zip([x, x.transpose(0, 1), x[1:, ::2]], theirs["views"]):
        assert loaded.dtype == torch.float64 and np.array_equal(loaded.numpy(), ours.numpy())
        assert loaded.untyped_storage().data_ptr() == theirs["views"][0].untyped_storage().data_ptr()
    assert theirs["ids"].tolist() == [3, 1] and theirs["mask"].tolist() == [True, False]
    assert isinstance(theirs["param"], torch.nn.Parameter) and theirs["param"].requires_grad
    assert theirs["devices"] == [torch.device("cpu"), torch.device("cuda", 1)]
    assert tl.load(tmp_path / "ckpt.pt")["devices"] == [tl.device("cpu"), tl.device("cuda", 1)]
    # the optimizer's state steps on in PyTorch as it does here
    twins = [torch.nn.Parameter(torch.tensor(p.detach().numpy())) for p in params]
    their_optimizer = torch.optim.AdamW(twins, lr=0.1)
    their_optimizer.load_state_dict(theirs["optimizer"])
    loss_of(twins).backward()
    their_optimizer.step()
    loss_of(params).backward()
    optimizer.step()
    for p, twin in zip(params, twins):
        np.testing.assert_allclose(p.detach().numpy(), twin.detach().numpy(), rtol=1e-6)


def test_a_file_pytorch_saved_loads_here(torch, tmp_path):
    theirs = torch.nn.Linear(3, 2)
    their_optimizer = torch.optim.AdamW(theirs.parameters(), lr=0.1)
    theirs(torch.ones(1, 3)).sum().backward()
    their_optimizer.step()
    base = torch.arange(12.0).reshape(3, 4)
    torch.save({"model": theirs.state_dict(), "optimizer": their_optimizer.state_dict(), "shape": base.shape,
                "device": torch.device("cpu"), "dtype": torch.int64, "bytes": b"\x00\x01", "views": [base, base.t()],
                "param": torch.nn.Parameter(torch.ones(2))}, tmp_path / "theirs.pt")
    loaded = tl.load(tmp_path / "theirs.pt")
    ours = tl.nn.Linear(3, 2)
    ours.load_state_dict(loaded["model"])
    assert np.array_equal(ours.weight.detach().numpy(), theirs.weight.detach().numpy())
    optimizer = tl.optim.AdamW(ours.parameters(), lr=0.5)
    optimizer.load_state_dict(loaded["optimizer"])   # PyTorch's AdamW state, step as a tensor
    assert optimizer.param_groups[0]["lr"] == 0.1
    ours(tl.ones(1, 3)).sum().backward()
    optimizer.step()
    their_optimizer.zero_grad()
    theirs(torch.ones(1, 3)).sum().backward()
    their_optimizer.step()
    np.testing.assert_allclose(ours.weight.detach().numpy(), theirs.weight.detach().numpy(), rtol=1e-6)
    assert loaded["shape"] == (3, 4) and loaded["device"] == tl.device("cpu") and loaded["dtype"] is tl.int64
    assert loaded["bytes"] == b"\x00\x01" and isinstance(loaded["param"], tl.nn.Parameter)
    view, transposed = loaded["views"]
    assert np.array_equal(transposed.numpy(), base.t().numpy())
    view[0, 1] = 100.0   # one storage, as in PyTorch: the transpose sees it
    assert transposed[1, 0].item() == 100.0


def test_weights_only_refuses_any_other_class_naming_it(torch, tmp_path):
    tl.save({"fraction": fractions.Fraction(1, 3)}, tmp_path / "f.pt")
    assert_raises_naming(lambda: tl.load(tmp_path / "f.pt"), Exception,
                         ["f.pt holds fractions.Fraction", "weights_only=False"])
    assert tl.load(tmp_path / "f.pt", weights_only=False) == {"fraction": fractions.Fraction(1, 3)}
    assert torch.load(tmp_path / "f.pt", weights_only=False) == {"fraction": fractions.Fraction(1, 3)}
    torch.save(torch.nn.Linear(2, 3), tmp_path / "module.pt")   # a whole PyTorch module: its classes are PyTorch's
    assert_raises_naming(lambda: tl.load(tmp_path / "module.pt", weights_only=False), NotImplementedError,
                         ["torch.nn.modules.linear.Linear", "state_dict()"])


def test_a_whole_module_of_ours_round_trips_with_weights_only_false(tmp_path):
    model = tl.nn.Sequential(tl.nn.Linear(2, 3), tl.nn.Tanh())
    tl.save(model, tmp_path / "model.pt")
    again = tl.load(tmp_path / "model.pt", weights_only=False)
    x = tl.randn(4, 2)
    assert np.array_equal(again(x).detach().numpy(), model(x).detach().numpy())
    assert isinstance(again[0].weight, tl.nn.Parameter) and again[0].weight.requires_grad


def test_what_is_not_read_is_refused_naming_the_file(torch, tmp_path):
    torch.save(torch.ones(2, dtype=torch.bfloat16), tmp_path / "half.pt")
    assert_raises_naming(lambda: tl.load(tmp_path / "half.pt"), NotImplementedError,
                         ["half.pt holds bfloat16 tensors", "half precision is not supported"])
    torch.save(torch.ones(2), tmp_path / "old.pt", _use_new_zipfile_serialization=False)
    assert_raises_naming(lambda: tl.load(tmp_path / "old.pt"), RuntimeError, ["old.pt is not a zip archive"])
    tl.save(tl.ones(3), tmp_path / "ok.pt")
    with zipfile.ZipFile(tmp_path / "ok.pt") as full, zipfile.ZipFile(tmp_path / "cut.pt", "w") as cut:
        for record in full.namelist():
            if "/data/" not in record:
                cut.writestr(record, full.read(record))
    assert_raises_naming(lambda: tl.load(tmp_path / "cut.pt"), ValueError, ["cut.pt lacks the record archive/data/0"])
    assert_raises_naming(lambda: tl.load(tmp_path / "ok.pt", map_location=lambda storage, location: storage),
                         NotImplementedError, ["load: map_location=", "a device's name"])
    assert_raises_naming(lambda: tl.save(tl.ones(2), io.BytesIO(), _use_new_zipfile_serialization=False),
                         NotImplementedError, ["_use_new_zipfile_serialization=False"])


def test_tensors_go_back_to_their_device_or_where_map_location_says(tmp_path, monkeypatch):
    monkeypatch.setattr(backend, "_CUDA", None)
    monkeypatch.setenv(backend.MOCK_ENV, "1")   # the mock CUDA device: tensors saved from 'cuda'
    gpu, cpu = tl.device("cuda:0"), tl.device("cpu")
    # a reversed view is saved as a copy, from its own device ('cpu', not 'cuda:0')
    tl.save({"gpu": tl.ones(2, device="cuda"), "loss": tl.tensor(2.5, device="cuda"), "cpu": tl.zeros(2),
             "reversed": tl.arange(3.0).flip(0)}, tmp_path / "gpu.pt")
    loaded = tl.load(tmp_path / "gpu.pt")
    assert loaded["gpu"].device == loaded["loss"].device == gpu and loaded["cpu"].device == cpu
    assert loaded["reversed"].device == cpu and loaded["reversed"].tolist() == [2.0, 1.0, 0.0]
    assert loaded["loss"].shape == () and f"{loaded['loss']:.2f}" == "2.50"   # 0-d stays 0-d
    assert tl.load(tmp_path / "gpu.pt", map_location=loaded["gpu"].device)["cpu"].device == gpu
    for where in ("cpu", tl.device("cpu"), {"cuda:0": "cpu"}):
        loaded = tl.load(tmp_path / "gpu.pt", map_location=where)
        assert loaded["gpu"].device == cpu and loaded["gpu"].tolist() == [1.0, 1.0]
        assert loaded["loss"].shape == () and loaded["loss"].item() == 2.5
    monkeypatch.setattr(backend, "_CUDA", None)
    monkeypatch.delenv(backend.MOCK_ENV)
    if not backend.mock_cuda_enabled():
        try:
            backend.module_for("cuda")
        except RuntimeError:   # no GPU here: PyTorch's advice, in one line naming the file
            assert_raises_naming(lambda: tl.load(tmp_path / "gpu.pt"), RuntimeError,
                                 ["gpu.pt holds tensors for the device 'cuda:0'", "map_location='cpu'"])
    monkeypatch.setattr(backend, "_CUDA", None)


def test_a_buffer_in_memory_and_a_state_dict_round_trip_here():
    tl.manual_seed(1)
    model = GPT(TINY)
    buffer = io.BytesIO()
    tl.save(model.state_dict(), buffer)
    buffer.seek(0)
    state = tl.load(buffer, map_location="cpu")
    tl.manual_seed(2)
    again = GPT(TINY)
    again.load_state_dict(state)
    for name, t in model.state_dict().items():
        assert np.array_equal(again.state_dict()[name], t), name
    assert np.shares_memory(state["lm_head.weight"].data, state["transformer.wte.weight"].data)   # one storage
