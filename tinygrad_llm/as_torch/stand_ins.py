"""What a PyTorch script touches that the engine has no use for: torch.cuda, torch.backends, torch.compile, autocast
and GradScaler, the half-precision dtypes, torch.distributed's process groups. Each stands in for PyTorch's with
what it can honestly mean here, or refuses: a setting accepted is one that cannot change the numbers of a script
run on the engine, and everything that would (mixed or half precision, several processes) raises NotSupported
instead of computing something else unannounced.

STAND_INS lists them by the torch module a script finds them in (modules.py puts them in front of the engine's).
"""
import warnings

from ..engine import backend, rng

PRECISION = "tinygrad_llm computes in float32 and float64"


class NotSupported(NotImplementedError):
    """A PyTorch feature the engine refuses rather than compute differently; the message names the API."""


class HalfPrecisionDtype:
    """torch.float16 (torch.half) and torch.bfloat16: names a script may mention (nanoGPT's table of dtypes holds all
    three) but not compute with. NumPy turns any object with a `dtype` attribute into that dtype (its documented
    protocol for dtype arguments), so wherever the engine makes one of these a dtype (torch.zeros(..., dtype=...),
    x.to(...), model.to(...)) the error below is raised. Comparing is fine: x.dtype == torch.float16 is False."""

    def __init__(self, name):
        self.name = name

    def __repr__(self):
        return f"torch.{self.name}"

    @property
    def dtype(self):
        raise NotSupported(f"torch.{self.name}: half precision is not supported: {PRECISION}")


FLOAT16, BFLOAT16 = HalfPrecisionDtype("float16"), HalfPrecisionDtype("bfloat16")


def compile(model=None, *, fullgraph=False, dynamic=None, backend="inductor", mode=None, options=None,
            disable=False):
    """torch.compile: returns `model` itself (used as a decorator, the function). Compiling changes how PyTorch
    runs a model, never what it computes: its reference is eager mode, which is how the engine runs every op (and
    why a learner can step through, profile and draw it). The options say how to compile, so there is nothing here
    for them to change; they are PyTorch's own, so a misspelt one is still a TypeError."""
    if model is None:
        return lambda function: function
    return model


def set_float32_matmul_precision(precision):
    """torch.set_float32_matmul_precision: "high" and "medium" allow PyTorch to multiply float32 matrices in TF32 or
    bfloat16 (a permission, for speed); the engine always computes "highest", exact float32, as PyTorch does by
    default, so none of the three changes its numbers."""
    if precision not in ("highest", "high", "medium"):
        raise RuntimeError(f"torch.set_float32_matmul_precision: expected 'highest', 'high' or 'medium', "
                           f"got {precision!r}")


class autocast:
    """torch.autocast and torch.amp.autocast: mixed precision (float16, bfloat16, the default) is not supported.
    Switched off (enabled=False: a flag's value) it is accepted: the block then runs as without it, in PyTorch too;
    and so is a dtype autocast does not compute in (nanoGPT's dtype='float32' on a GPU asks for torch.float32),
    which PyTorch switches off with this warning."""

    def __init__(self, device_type, dtype=None, enabled=True, cache_enabled=None):
        if enabled and (dtype is None or isinstance(dtype, HalfPrecisionDtype)):
            raise NotSupported(f"torch.autocast: mixed precision is not supported: {PRECISION} (autocast with "
                               f"enabled=False is accepted)")
        if enabled:
            warnings.warn(f"In {device_type} autocast, but the target dtype is not supported. Disabling autocast.")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def cuda_autocast(enabled=True, dtype=None, cache_enabled=True):
    """torch.cuda.amp.autocast, PyTorch's older spelling of torch.autocast("cuda", ...)."""
    return autocast("cuda", dtype, enabled, cache_enabled)


class GradScaler:
    """torch.amp.GradScaler: the loss scaling float16 training needs, so refused when enabled. Switched off
    (nanoGPT's GradScaler(enabled=dtype == "float16") in float32) it passes everything through, as PyTorch's does."""

    def __init__(self, device="cuda", init_scale=2.0**16, growth_factor=2.0, backoff_factor=0.5,
                 growth_interval=2000, enabled=True):
        if enabled:
            raise NotSupported(f"torch.amp.GradScaler: loss scaling is for float16 training, which is not supported: "
                               f"{PRECISION} (GradScaler with enabled=False is accepted)")

    def scale(self, outputs):
        return outputs

    def unscale_(self, optimizer):
        pass

    def step(self, optimizer, *args, **kwargs):
        return optimizer.step(*args, **kwargs)

    def update(self, new_scale=None):
        pass

    def is_enabled(self):
        return False

    def get_scale(self):
        return 1.0

    def state_dict(self):
        return {}

    def load_state_dict(self, state_dict):
        pass


def cuda_grad_scaler(init_scale=2.0**16, growth_factor=2.0, backoff_factor=0.5, growth_interval=2000, enabled=True):
    """torch.cuda.amp.GradScaler, PyTorch's older spelling of torch.amp.GradScaler("cuda", ...)."""
    return GradScaler("cuda", init_scale, growth_factor, backoff_factor, growth_interval, enabled)


def cuda_is_available():
    """torch.cuda.is_available: whether the engine's device 'cuda' works here (CuPy and a GPU, or the mock device
    that $TINYGRAD_LLM_MOCK_CUDA switches on)."""
    try:
        backend.module_for("cuda")
    except RuntimeError:
        return False
    return True


def cuda_device_count():
    return backend.module_for("cuda").cuda.runtime.getDeviceCount() if cuda_is_available() else 0


def cuda_manual_seed(seed):
    """torch.cuda.manual_seed and manual_seed_all: the GPU's generator alone restarts from `seed` (its numbers are
    CuPy's, as after torch.manual_seed(seed)). Without a CUDA device there is nothing to seed, and PyTorch ignores
    the call too."""
    if cuda_is_available():
        rng.manual_seed_device("cuda", seed)


def cuda_synchronize(device=None):
    """torch.cuda.synchronize: wait for the GPU's work to finish; without one, the engine's error saying why."""
    backend.module_for("cuda").cuda.runtime.deviceSynchronize()


class MatmulSettings:
    """torch.backends.cuda.matmul. allow_tf32 = True lets PyTorch multiply float32 matrices in TF32 on the GPU (a
    permission, for speed); the engine never does (CuPy computes float32 products in float32), so the setting cannot
    change its numbers. Another setting is refused, naming it."""

    def __init__(self):
        self.__dict__["allow_tf32"] = False

    def __setattr__(self, name, value):
        if name != "allow_tf32":
            raise AttributeError(f"torch.backends.cuda.matmul.{name} is not implemented in tinygrad_llm",
                                 name=name, obj=self)
        self.__dict__[name] = value


def never():
    """is_available() of a backend the engine never uses (cuDNN, Apple's MPS, torch.distributed's process groups)."""
    return False


PROCESS_GROUPS = ("process groups are not supported in tinygrad_llm (its data parallelism runs over MPI: "
                  "mpiexec -n N python -m tinygrad_llm train)")


def init_process_group(backend=None, *args, **kwargs):
    """torch.distributed.init_process_group, refused. nanoGPT-style scripts import it at the top and call it only
    when launched by torchrun (RANK set), so the import works and a single-process run goes on."""
    raise NotSupported(f"torch.distributed.init_process_group: {PROCESS_GROUPS}")


def destroy_process_group(group=None):
    """torch.distributed.destroy_process_group: there is never a group to destroy (PyTorch refuses too then)."""
    raise NotSupported(f"torch.distributed.destroy_process_group: {PROCESS_GROUPS}")


class DistributedDataParallel:
    """torch.nn.parallel.DistributedDataParallel, refused when a model is wrapped (imported, as courses do at the
    top, it is harmless): it needs a process group."""

    def __init__(self, module, *args, **kwargs):
        raise NotSupported(f"torch.nn.parallel.DistributedDataParallel: {PROCESS_GROUPS}")


STAND_INS = {
    "torch": {"compile": compile, "autocast": autocast, "set_float32_matmul_precision": set_float32_matmul_precision},
    # torch.float16, torch.half and torch.bfloat16 come from the front door, which gives FLOAT16 and BFLOAT16
    "torch.amp": {"autocast": autocast, "GradScaler": GradScaler},
    "torch.cuda": {"is_available": cuda_is_available, "device_count": cuda_device_count,
                   "manual_seed": cuda_manual_seed, "manual_seed_all": cuda_manual_seed,
                   "synchronize": cuda_synchronize, "is_bf16_supported": never},
    "torch.cuda.amp": {"autocast": cuda_autocast, "GradScaler": cuda_grad_scaler},
    "torch.backends": {},
    "torch.backends.cuda": {"matmul": MatmulSettings()},
    # cuDNN is never used (the engine's convolutions and normalizations are its own), so its settings choose nothing
    # here; a script sets them (benchmark, deterministic, allow_tf32), and they read back as set
    "torch.backends.cudnn": {"enabled": True, "benchmark": False, "deterministic": False, "allow_tf32": True,
                             "is_available": never},
    "torch.backends.mps": {"is_available": never, "is_built": never},
    # is_available() False: code that checks takes its single-process path; a process group is refused
    "torch.distributed": {"is_available": never, "is_initialized": never, "init_process_group": init_process_group,
                          "destroy_process_group": destroy_process_group},
    "torch.nn.parallel": {"DistributedDataParallel": DistributedDataParallel},
}
