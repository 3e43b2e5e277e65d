"""Which array module holds a tensor's numbers: NumPy on "cpu", CuPy on "cuda".

Op code never branches on the device. It asks an array for its module (`xp = backend.xp(x)`) and calls
`xp.exp`, `xp.matmul`, ... which NumPy and CuPy both provide with the same meaning. This file is the only
place that picks CuPy (or, with $TINYGRAD_LLM_MOCK_CUDA set, the mock device's stand-in for it, cuda/mock/), so the
GPU path slots in without touching any op.

Dtype rule (one rule, everywhere): floating tensors meeting in one op must share a dtype. float32 mixed with
float64 raises a `TypeError` naming the op, instead of silently upcasting like NumPy: a silent upcast would
double memory and time, or quietly make a float64 gradient check run in float32. Convert explicitly with
`tensor.to(np.float64)`. Everything else follows PyTorch's type promotion (`promote` below): bool < integer <
floating, the highest kind present wins, a Python number only decides the kind (an integer tensor times 0.5 is
float32, a float32 tensor times 2 stays float32).
"""
import ctypes
import os

import numpy as np

DEVICES = ("cpu", "cuda")
DEFAULT_FLOAT = np.dtype(np.float32)
FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def xp(array):
    """The array module (numpy or cupy) that `array` belongs to."""
    if isinstance(array, np.ndarray) or np.isscalar(array):
        return np
    return _cupy()


def device_of(array):
    """'cpu' for a NumPy array, 'cuda' for a CuPy array."""
    return "cpu" if xp(array) is np else "cuda"


# the device types torch.device knows (PyTorch 2.13); a Device may name any, the engine computes on DEVICES
TORCH_DEVICE_TYPES = ("cpu", "cuda", "ipu", "xpu", "mkldnn", "opengl", "opencl", "ideep", "hip", "ve", "fpga", "maia",
                      "xla", "lazy", "vulkan", "mps", "meta", "hpu", "mtia", "privateuseone")


class Device:
    """torch.device: a device type and an optional index, from Device("cuda:1"), Device("cuda", 1), another Device
    or a GPU's index alone (Device(0), as PyTorch on a machine with CUDA), printed and compared as PyTorch's (equal
    to another Device of the same type and index, never to a string). The engine's functions take one wherever
    they take a device's name; it computes on 'cpu' and 'cuda', the process's one GPU, so an index is taken only
    where it names that GPU (device_name)."""

    def __init__(self, type, index=None):
        if isinstance(type, Device):
            type, index = type.type, type.index if index is None else index
        elif isinstance(type, int) and not isinstance(type, bool):   # torch.device(0): GPU 0
            type, index = "cuda", type
        elif isinstance(type, str) and ":" in type:
            if index is not None:
                raise RuntimeError(f"device: type (string) must not include an index because index was passed "
                                   f"explicitly: {type}")
            type, number = type.split(":", 1)
            if not number.isdigit():
                raise RuntimeError(f"device: invalid device string: '{type}:{number}'")
            index = int(number)
        if type not in TORCH_DEVICE_TYPES:
            raise RuntimeError(f"device: expected one of {', '.join(TORCH_DEVICE_TYPES)} device type at start of "
                               f"device string: {type}")
        if index is not None and (isinstance(index, bool) or not isinstance(index, int) or index < 0):
            raise RuntimeError(f"device: the index must be a non-negative integer, got {index!r}")
        self._type, self._index = type, index

    # read-only, as torch.device's: every tensor on the CPU shares one Device (see tensor_device)
    type = property(lambda self: self._type)
    index = property(lambda self: self._index)

    def __str__(self):
        return self.type if self.index is None else f"{self.type}:{self.index}"

    def __repr__(self):
        return f"device(type='{self.type}')" if self.index is None else \
            f"device(type='{self.type}', index={self.index})"

    def __eq__(self, other):
        if not isinstance(other, Device):
            return NotImplemented
        return (self.type, self.index) == (other.type, other.index)

    def __hash__(self):
        return hash((self.type, self.index))


def device_name(device):
    """The engine's name ('cpu', 'cuda') of a device given by name ('cpu', 'cuda', 'cuda:0') or as a Device; a clear
    error for anything else. An index may only name the GPU the engine computes on (the current one, which use_gpu
    chooses), so that x.to(y.device) and zeros(..., device=y.device) work for a y on the GPU."""
    if isinstance(device, str) and ":" in device:
        device = Device(device)
    if isinstance(device, Device):
        if device.index is not None and (device.type != "cuda" or device.index != current_gpu_index()):
            raise ValueError(f"device {str(device)!r}: the engine computes on 'cpu' and on the process's one GPU "
                             f"('cuda', or with the index of the current GPU, chosen by use_gpu)")
        device = device.type
    if device not in DEVICES:
        raise ValueError(f"unknown device {device!r}; expected one of {DEVICES}")
    return device


CPU = Device("cpu")
_GPUS = {}   # index -> Device("cuda", index), made once


def tensor_device(array):
    """The torch.device `array` lives on, as Tensor.device gives it: device(type='cpu'), or device(type='cuda',
    index=i) for an array on GPU i; the same object each time, so that reading Tensor.device builds nothing."""
    if xp(array) is np:
        return CPU
    index = array.device.id
    if index not in _GPUS:
        _GPUS[index] = Device("cuda", index)
    return _GPUS[index]


def current_gpu_index():
    """The index of the GPU the engine computes on (CuPy's current device; use_gpu changes it)."""
    return _cupy().cuda.Device().id


def module_for(device):
    """The array module that lives on `device` ('cpu' or 'cuda', or a Device); a clear error for anything else."""
    return np if device_name(device) == "cpu" else _cupy()


def to_device(array, device):
    """Copy `array` to `device` (a name or a Device; no copy when it is already there)."""
    device = device_name(device)
    if device_of(array) == device:
        return array
    if device == "cpu":
        return array.get()
    return module_for(device).asarray(array)


def _kind(value):
    """0 bool, 1 integer, 2 floating: the order of PyTorch's type categories."""
    if isinstance(value, (bool, np.bool_)):
        return 0
    if isinstance(value, (int, np.integer)):
        return 1
    if isinstance(value, (float, np.floating)):
        return 2
    return {"b": 0, "i": 1, "u": 1, "f": 2}[value.dtype.kind]


def promote(*values):
    """The dtype an op on `values` (arrays, and Python or NumPy numbers) computes in, as PyTorch decides it: the
    highest kind among all values (bool < integer < floating); within that kind, the arrays' dtypes decide
    (integers promote: int32 with int64 is int64; floats are left to the float rule, so the first float array's
    dtype is returned and apply() raises if another differs); with no array of that kind, its default: bool, int64,
    or DEFAULT_FLOAT. A number never widens an array of its own kind: float32 * 2.5 stays float32."""
    kind = max(_kind(v) for v in values)
    arrays = [v for v in values if hasattr(v, "dtype") and not np.isscalar(v) and _kind(v) == kind]
    if not arrays:
        return np.dtype((np.bool_, np.int64, DEFAULT_FLOAT)[kind])
    if kind == 2:
        return arrays[0].dtype
    return np.result_type(*[a.dtype for a in arrays])


def buffer_of(array):
    """The object that owns `array`'s memory: the array itself, or the one it is a view of (NumPy and CuPy keep the
    owner as `.base`, one hop away). In-place changes are counted per buffer, so every view of it sees them."""
    inner = getattr(array, "_array", array)   # an array of the mock device holds a NumPy array
    return inner if inner.base is None else inner.base


def check_float_dtype(dtype, where):
    dtype = np.dtype(dtype)
    if dtype not in FLOAT_DTYPES:
        raise TypeError(f"{where}: dtype {dtype} is not supported; use float32 or float64")
    return dtype


MOCK_ENV = "TINYGRAD_LLM_MOCK_CUDA"  # "1": device 'cuda' is the mock device (engine/cuda/mock/), for tests
_CUDA = None  # (cupy, cupyx) once found


def mock_cuda_enabled():
    return os.environ.get(MOCK_ENV, "") not in ("", "0")


def _cuda_modules():
    """(cupy, cupyx), imported once, saying exactly what is missing when they cannot be used; the mock device's
    stand-ins when $TINYGRAD_LLM_MOCK_CUDA is set."""
    global _CUDA
    if _CUDA is None:
        if mock_cuda_enabled():
            from .cuda.mock import cupy, cupyx
            _CUDA = cupy, cupyx
            return _CUDA
        instead = f"; without a GPU, {MOCK_ENV}=1 runs device 'cuda' on the mock device (kernels run on the host)"
        try:
            import cupy
            import cupyx
        except ImportError as e:
            raise RuntimeError("device 'cuda' needs CuPy, which is not installed: pip install 'tinygrad_llm[cuda]' "
                               "(cupy-cuda12x or cupy-cuda13x)" + instead) from e
        try:
            count = cupy.cuda.runtime.getDeviceCount()
        except Exception as e:  # CuPy raises CUDARuntimeError when there is no driver
            raise RuntimeError(f"device 'cuda': CuPy is installed but no CUDA GPU is usable ({e})" + instead) from e
        if count == 0:
            raise RuntimeError("device 'cuda': CuPy is installed but this machine has no CUDA GPU" + instead)
        _CUDA = cupy, cupyx
    return _CUDA


def _cupy():
    return _cuda_modules()[0]


def use_gpu(index):
    """Make GPU `index` the current device of this process (of several: index modulo their number)."""
    cuda = _cupy().cuda
    cuda.Device(index % cuda.runtime.getDeviceCount()).use()


def nccl_communicator(size, rank):
    """CuPy's NCCL communicator among `size` processes, one GPU each, as `rank` (cupyx.distributed.NCCLBackend;
    NCCL's unique id is broadcast over MPI): all_reduce(in, out, op) and broadcast(array, root) on device arrays,
    on the current stream."""
    cupyx = _cuda_modules()[1]
    if not mock_cuda_enabled():
        import cupyx.distributed  # a submodule that `import cupyx` leaves out
    return cupyx.distributed.NCCLBackend(size, rank, use_mpi=True)


def scatter_add_rows(target, idx, rows):
    """target[idx[i]] += rows[i] for every i, where idx may repeat (the backward of a row lookup).
    target (V, C), idx (N,) integers, rows (N, C). NumPy's `np.add.at` does this one element at a time; sorting
    idx once and summing each run of equal ids with `np.add.reduceat` is several times faster."""
    if xp(target) is not np:
        _cuda_modules()[1].scatter_add(target, idx, rows)
        return target
    order = np.argsort(idx, kind="stable")
    ids, starts = np.unique(idx[order], return_index=True)
    target[ids] += np.add.reduceat(rows[order], starts, axis=0)
    return target


def erf(x):
    """Elementwise error function. NumPy has none, so use SciPy's where installed, else the exact `math.erf`
    elementwise (slow, but only exact GELU needs it; the GPT uses the tanh approximation)."""
    if xp(x) is not np:
        return _cuda_modules()[1].scipy.special.erf(x)
    try:
        from scipy.special import erf as scipy_erf
    except ImportError:
        import math
        return np.vectorize(math.erf, otypes=[x.dtype])(x)
    return scipy_erf(x).astype(x.dtype, copy=False)


def reuse_freed_memory():
    """Ask glibc's malloc to keep freed large blocks for reuse instead of returning them to the OS; returns whether
    it took the setting (False where libc is not glibc).

    By default every block over 128 KiB is a fresh mmap, and the pages of each one fault in on first touch. A
    training step allocates and frees the same large temporaries every iteration, so that is paid again and again;
    with the thresholds raised, freed blocks are handed out again, already mapped. (PyTorch's CPU allocator does its
    own caching for the same reason.) The setting is the whole process's, so importing the engine does not make it:
    the trainer (recipes/train.py), the recipes' own training loops (fine-tuning, distillation), the runner of
    PyTorch scripts (as_torch/run.py) and the benchmarks call this, and a training loop of one's own calls it once
    before it starts. The price: memory freed by the process goes back to the OS only once over 1 GiB of it is
    free."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3
    return bool(libc.mallopt(m_mmap_threshold, 32 << 20) and libc.mallopt(m_trim_threshold, 1 << 30))
