"""`tinygrad-llm run SCRIPT.py` (tinygrad_llm/as_torch/): a PyTorch script runs unchanged and prints PyTorch's
numbers; what the engine lacks stops it with one line naming the PyTorch API and the script's line; what cannot
change our numbers is accepted, and half precision is refused. A few subprocesses show the command itself; the
rest is checked in this process, on the modules a script would get (put in sys.modules only for one test)."""
import importlib.util
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import tinygrad_llm as tl
from tinygrad_llm.as_torch import stand_ins
from tinygrad_llm.as_torch.modules import torch_modules
from tinygrad_llm.as_torch.run import NN_MODULE_NAMES, missing_api
from tinygrad_llm.as_torch.stand_ins import NotSupported
from tinygrad_llm.engine import backend

# a course-style script: a model, weights read from NumPy, three steps over a DataLoader's batches
TRAINING_SCRIPT = '''
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import optim
from torch.utils.data import DataLoader, TensorDataset


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(4, 8)
        self.fc2 = nn.Linear(8, 3)

    def forward(self, x):
        return self.fc2(F.relu(self.fc1(x)))


if __name__ == "__main__":
    print("argv", sys.argv[1:])
    print("cuda", torch.cuda.is_available())
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    rng = np.random.default_rng(0)
    model = MLP()
    model.load_state_dict({name: torch.tensor(rng.standard_normal(tuple(p.shape)).astype(np.float32))
                           for name, p in model.state_dict().items()})
    x = torch.tensor(rng.standard_normal((12, 4)).astype(np.float32))
    y = torch.tensor([0, 1, 2, 0, 1, 2, 2, 1, 0, 2, 1, 0])
    batches = DataLoader(TensorDataset(x, y), batch_size=4)
    optimizer = optim.AdamW(model.parameters(), lr=0.01)
    for x, y in batches:
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        print("loss", f"{loss.item():.7f}")
'''


def run_script(tmp_path, source, *command, name="script.py"):
    """Run `source` saved as tmp_path/name by `command` (from tmp_path, without the mock CUDA device)."""
    (tmp_path / name).write_text(textwrap.dedent(source))
    environment = {key: value for key, value in os.environ.items() if key != backend.MOCK_ENV}
    return subprocess.run([sys.executable, *command], cwd=tmp_path, env=environment, capture_output=True, text=True,
                          timeout=120)


def printed(stdout, word):
    return [line.split(" ", 1)[1] for line in stdout.splitlines() if line.startswith(word + " ")]


def test_a_training_script_runs_unchanged_and_prints_pytorchs_losses(tmp_path, torch):
    ours = run_script(tmp_path, TRAINING_SCRIPT, "-m", "tinygrad_llm", "run", "--profile", "--graph", "g.dot",
                      "script.py", "--lr", "-1e-3")
    assert ours.returncode == 0, ours.stderr
    theirs = run_script(tmp_path, TRAINING_SCRIPT, "script.py", "--lr", "-1e-3")
    assert theirs.returncode == 0, theirs.stderr
    assert printed(ours.stdout, "argv") == printed(theirs.stdout, "argv") == ["['--lr', '-1e-3']"]  # as given
    losses = [float(loss) for loss in printed(ours.stdout, "loss")]
    assert len(losses) == 3
    np.testing.assert_allclose(losses, [float(loss) for loss in printed(theirs.stdout, "loss")], rtol=1e-5)
    if importlib.util.find_spec("cupy") is None:
        assert printed(ours.stdout, "cuda") == ["False"]
    # --profile: the table of every op, after the script; --graph: the first backward's graph, its parameters' shapes
    assert "tinygrad-llm run: --profile: the ops of script.py" in ours.stderr and "backward ms" in ours.stderr
    graph = (tmp_path / "g.dot").read_text()
    assert graph.startswith("digraph") and "(8, 4) float32" in graph and "(3, 8) float32" in graph


def test_a_missing_api_stops_the_script_with_one_line_naming_it_and_the_line(tmp_path):
    result = run_script(tmp_path, """\
        import torch

        x = torch.ones(5)
        windows = x.unfold(0, 2, 1)
        """, "-m", "tinygrad_llm", "run", "script.py")
    assert result.returncode == 1
    assert result.stderr == ("tinygrad-llm run: script.py line 4: torch.Tensor.unfold is not implemented in "
                             "tinygrad_llm (see docs/torch_coverage.md)\n")


def test_detect_anomaly_names_the_op_and_the_scripts_line(tmp_path):
    result = run_script(tmp_path, """\
        import torch

        x = torch.zeros(3, requires_grad=True)
        torch.log(x).sum().backward()
        """, "-m", "tinygrad_llm", "run", "--detect-anomaly", "script.py")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "tinygrad-llm run: LogOp made (3,) float32" in result.stderr and "script.py:4" in result.stderr


@pytest.fixture
def modules(monkeypatch):
    """torch's modules as `tinygrad-llm run` gives them, in sys.modules for this test only."""
    modules = torch_modules()
    for name in [name for name in sys.modules if name == "torch" or name.startswith("torch.")]:
        monkeypatch.delitem(sys.modules, name)
    for name, module in modules.items():
        monkeypatch.setitem(sys.modules, name, module)
    return modules


def report(modules, code):
    """The runner's one line for the error that `code`, run as a script's file course.py, raises; or None."""
    with pytest.raises(Exception) as info:
        exec(compile(code, "course.py", "exec"), {})
    return missing_api(info.value, modules)


MISSING = "is not implemented in tinygrad_llm (see docs/torch_coverage.md)"


@pytest.mark.parametrize("code, line, api", [
    ("import torch; torch.no_such_function(3)", 1, "torch.no_such_function"),
    ("import torch.nn.functional as F\nF.no_such_function", 2, "torch.nn.functional.no_such_function"),
    ("from torch.nn import NoSuchLayer", 1, "torch.nn.NoSuchLayer"),
    ("import torch.distributions", 1, "torch.distributions"),
    ("import torch; torch.ones(2).no_such_method()", 1, "torch.Tensor.no_such_method"),
    ("import torch; torch.Tensor.no_such_method", 1, "torch.Tensor.no_such_method"),
    ("import torch; torch.nn.Linear(2, 3).no_such_method()", 1, "torch.nn.Linear.no_such_method"),
    ("import torch\nclass M(torch.nn.Module): pass\nM().ipu()", 3, "torch.nn.Module.ipu"),
    ("import torch; torch.backends.cuda.matmul.allow_fp16_reduced_precision_reduction = True", 1,
     "torch.backends.cuda.matmul.allow_fp16_reduced_precision_reduction"),
    ("import torch; print(torch.__version__)", 1, "torch.__version__"),
])
def test_the_runners_line_names_the_missing_api_and_where_the_script_reached_for_it(modules, code, line, api):
    assert report(modules, code) == f"course.py line {line}: {api} {MISSING}"


def test_arguments_the_engines_function_does_not_take_are_named_with_its_signature(modules):
    line = report(modules, "import torch; torch.nn.Linear(2, 3, no_such_keyword=True)")
    assert line.startswith("course.py line 1: torch.nn.Linear in tinygrad_llm: Linear.__init__() got an unexpected "
                           "keyword argument 'no_such_keyword' (its arguments: (self, in_features, out_features")


@pytest.mark.parametrize("code", [
    "class M: pass\nM().blocks",                               # the script's own attribute
    "import torch\nclass M(torch.nn.Module): pass\nM().blocks",  # ... of its own Module: no PyTorch name
    "def relu(x): pass\nrelu(1, 2)",                          # its own function, with one of the engine's names
    "import torch; torch.ones(2, 3) @ torch.ones(2, 3)",       # the engine's own error, naming the shapes
    "1 / 0",
])
def test_the_scripts_own_errors_keep_their_traceback(modules, code):
    assert report(modules, code) is None


def test_an_error_before_the_scripts_first_line_keeps_pythons_report(modules):
    assert missing_api(SyntaxError("'(' was never closed"), modules) is None   # raised with no frame of the script


def test_hasattr_sees_a_missing_name_as_missing(modules):
    import torch
    import torch.nn.functional as F
    assert torch.nn.functional is F and hasattr(F, "softmax") and not hasattr(F, "no_such_function")
    assert "softmax" in dir(F) and not hasattr(torch, "np")   # the engine's modules' imports are no torch names


def test_nn_module_names_are_pytorchs(torch):
    """torch.nn.Module's public names, read in a fresh process: transformers adds its own (smart_apply) to the class
    when a test before this one loads a model."""
    names = subprocess.run([sys.executable, "-c", "import torch; print(' '.join(dir(torch.nn.Module)))"],
                           capture_output=True, text=True, check=True).stdout.split()
    assert NN_MODULE_NAMES == {name for name in names if not name.startswith("_")}


def test_half_precision_and_autocast_are_refused_naming_them():
    torch = torch_modules()["torch"]
    for make in (lambda: torch.zeros(2, dtype=torch.float16), lambda: torch.ones(2).to(torch.bfloat16),
                 lambda: torch.nn.Linear(2, 3).to(torch.half), lambda: torch.autocast("cuda", dtype=torch.bfloat16),
                 lambda: torch.amp.GradScaler("cuda"), lambda: torch.cuda.amp.GradScaler()):
        with pytest.raises(NotSupported, match="not supported: tinygrad_llm computes in float32 and float64"):
            make()
    assert torch.ones(2).dtype != torch.float16   # comparing is fine


def test_what_cannot_change_the_numbers_is_accepted():
    torch = torch_modules()["torch"]
    model = tl.nn.Linear(2, 3)
    assert torch.compile(model) is model and torch.compile(mode="max-autotune")(len) is len
    with pytest.raises(TypeError):
        torch.compile(model, no_such_option=1)   # PyTorch's options, so a misspelt one is refused
    with torch.autocast("cpu", enabled=False):
        loss = model(tl.ones(1, 2)).sum()
    with pytest.warns(UserWarning, match="target dtype is not supported. Disabling autocast"):
        with torch.autocast(device_type="cuda", dtype=torch.float32):   # nanoGPT's dtype='float32' on a GPU
            assert model(tl.ones(1, 2)).dtype == np.float32
    scaler = torch.cuda.amp.GradScaler(enabled=False)   # nanoGPT's float32 run
    assert scaler.scale(loss) is loss and scaler.get_scale() == 1.0
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.benchmark = torch.backends.cudnn.deterministic = True
    assert torch.backends.cuda.matmul.allow_tf32 and not torch.backends.cudnn.is_available()
    torch.set_float32_matmul_precision("high")
    with pytest.raises(RuntimeError, match="expected 'highest', 'high' or 'medium'"):
        torch.set_float32_matmul_precision("low")


def test_process_groups_import_and_are_refused_when_used(modules):
    """nanoGPT-style scripts import torch.distributed's and torch.nn.parallel's names at the top and use them only
    under torchrun: the imports work, and a process group or DDP is refused naming it."""
    from torch.distributed import destroy_process_group, init_process_group
    from torch.nn.parallel import DistributedDataParallel as DDP
    import torch.distributed as dist
    assert not dist.is_available() and not dist.is_initialized()
    for use in (lambda: init_process_group(backend="nccl"), destroy_process_group,
                lambda: DDP(tl.nn.Linear(2, 3), device_ids=[0])):
        with pytest.raises(NotSupported, match="process groups are not supported in tinygrad_llm .* over MPI"):
            use()
    assert report(modules, "import torch.distributed as dist\ndist.all_reduce(None)") == \
        f"course.py line 2: torch.distributed.all_reduce {MISSING}"


def test_cuda_is_available_answers_for_the_engines_cuda_device(monkeypatch):
    monkeypatch.setattr(backend, "_CUDA", None)
    monkeypatch.setenv(backend.MOCK_ENV, "1")
    assert stand_ins.cuda_is_available() and stand_ins.cuda_device_count() == 1
    stand_ins.cuda_synchronize()
    tl.manual_seed(1)
    tl.randn(5)
    cpu_next = tl.randn(5).tolist()
    tl.manual_seed(1)
    tl.randn(5)
    stand_ins.cuda_manual_seed(7)   # the GPU's generator alone: the CPU's goes on where it was
    first = tl.randn(5, device="cuda").tolist()
    assert tl.randn(5).tolist() == cpu_next
    tl.manual_seed(7)   # every device: the GPU's stream as cuda.manual_seed(7) started it
    assert tl.randn(5, device="cuda").tolist() == first
    if importlib.util.find_spec("cupy") is None:
        monkeypatch.setattr(backend, "_CUDA", None)
        monkeypatch.delenv(backend.MOCK_ENV)
        assert not stand_ins.cuda_is_available() and stand_ins.cuda_device_count() == 0
        stand_ins.cuda_manual_seed(0)   # nothing to seed: ignored, as PyTorch ignores it
    monkeypatch.setattr(backend, "_CUDA", None)
