"""A stand-in for CuPy on the mock CUDA device: arrays "on the device" (NumPy numbers inside) that keep CuPy's rules
where bugs hide, and a RawModule that runs our kernels, compiled for the host (host_kernels.py).

The rules kept, each one a kind of bug that would otherwise wait for the first real GPU run:
- No implicit mixing. A NumPy array among the operands of an operation or function on device arrays is a TypeError,
  as in CuPy, and so is np.asarray(device array). Transfers are explicit: cupy.asarray(host array) to the device,
  .get() or cupy.asnumpy(...) back. A NumPy array may index a device array (CuPy copies the index over).
- Reductions and scalar indexing give 0-d device arrays, not NumPy scalars; float(), int(), bool(), .item() work.
- cupy.empty is not zero: it is filled with 0xFF bytes (NaN as a float), so output a kernel forgot to write shows.
- The random numbers are the device's own (cupy.random.default_rng draws from another generator than NumPy's).
Everything else is NumPy's behaviour, computed by NumPy: the mock checks the code that CuPy arrays pass through, and
the kernels; it says nothing about speed.
"""
import math
import sys
import types

import numpy as np

from . import host_kernels

__version__ = "mock (host-executed kernels)"
HOST_ONLY = {"ctypes", "tofile", "dump", "dumps"}   # NumPy ndarray attributes that reach host memory


class ndarray:
    """An array on the mock device: a NumPy array inside, CuPy's rules outside (see the module docstring)."""

    __slots__ = ("_array", "__weakref__")

    def __init__(self, shape, dtype=float):
        """cupy.ndarray(shape, dtype): allocated, not initialised (0xFF bytes)."""
        self._array = _uninitialised(shape, dtype)

    # ----- what it is
    shape = property(lambda self: self._array.shape)
    dtype = property(lambda self: self._array.dtype)
    ndim = property(lambda self: self._array.ndim)
    size = property(lambda self: self._array.size)
    itemsize = property(lambda self: self._array.itemsize)
    nbytes = property(lambda self: self._array.nbytes)
    strides = property(lambda self: self._array.strides)
    flags = property(lambda self: self._array.flags)
    T = property(lambda self: _wrap(self._array.T))
    device = property(lambda self: cuda.Device())   # CuPy's: the cupy.cuda.Device it lives on (the one device)

    def __repr__(self):
        return f"{np.array_repr(self._array)} (on the mock CUDA device)"

    def __len__(self):
        return len(self._array)

    def __iter__(self):
        return (_wrap(row) for row in self._array)

    # ----- leaving the device: explicit only
    def get(self):
        """A NumPy copy on the host (CuPy's device-to-host transfer)."""
        return self._array.copy()

    def __array__(self, *args, **kwargs):
        raise TypeError("Implicit conversion to a NumPy array is not allowed. Please use `.get()` to construct a "
                        "NumPy array explicitly (mock CUDA device, as CuPy)")

    def item(self):
        return self._array.item()

    def tolist(self):
        return self._array.tolist()

    def __float__(self):
        return float(self._array)

    def __int__(self):
        return int(self._array)

    def __bool__(self):
        return bool(self._array)

    def __index__(self):
        return self._array.__index__()

    # ----- indexing
    def __getitem__(self, index):
        return _wrap(self._array[_index(index)])

    def __setitem__(self, index, value):
        self._array[_index(index)] = _unwrap(value, "__setitem__")

    # ----- NumPy's protocols: np.exp(device array) and np.concatenate([...]) work on the device, as with CuPy
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        return _call(getattr(ufunc, method), *inputs, name=f"numpy.{ufunc.__name__}", **kwargs)

    def __array_function__(self, function, types, args, kwargs):
        return _call(function, *args, name=f"numpy.{function.__name__}", **kwargs)

    # ----- every other method (reshape, sum, astype, ...) is NumPy's, on the device
    def __getattr__(self, name):
        if name.startswith("__") or name in HOST_ONLY:
            # __array_interface__ and friends would let NumPy read device memory as if it were the host's
            raise AttributeError(f"a CuPy array has no attribute {name!r} (mock CUDA device)")
        attribute = getattr(self._array, name)
        if not callable(attribute):
            return _wrap(attribute)
        return lambda *args, **kwargs: _call(attribute, *args, name=f"ndarray.{name}", **kwargs)

    def __copy__(self):
        return _wrap(self._array.copy())

    def __deepcopy__(self, memo):
        return _wrap(self._array.copy())

    __hash__ = None


def _operator(ufunc, reflected=False, in_place=False):
    if in_place:
        def method(self, other):
            _call(ufunc, self, other, out=self, name=ufunc.__name__)
            return self
    elif reflected:
        def method(self, other):
            return _call(ufunc, other, self, name=ufunc.__name__)
    else:
        def method(self, other):
            return _call(ufunc, self, other, name=ufunc.__name__)
    return method


for _name, _ufunc in [("add", np.add), ("sub", np.subtract), ("mul", np.multiply), ("truediv", np.true_divide),
                      ("floordiv", np.floor_divide), ("mod", np.remainder), ("pow", np.power),
                      ("matmul", np.matmul), ("and", np.bitwise_and), ("or", np.bitwise_or),
                      ("xor", np.bitwise_xor), ("lshift", np.left_shift), ("rshift", np.right_shift)]:
    setattr(ndarray, f"__{_name}__", _operator(_ufunc))
    setattr(ndarray, f"__r{_name}__", _operator(_ufunc, reflected=True))
    setattr(ndarray, f"__i{_name}__", _operator(_ufunc, in_place=True))
for _name, _ufunc in [("eq", np.equal), ("ne", np.not_equal), ("lt", np.less), ("le", np.less_equal),
                      ("gt", np.greater), ("ge", np.greater_equal)]:
    setattr(ndarray, f"__{_name}__", _operator(_ufunc))
ndarray.__neg__ = lambda self: _call(np.negative, self, name="negative")
ndarray.__pos__ = lambda self: _call(np.positive, self, name="positive")
ndarray.__abs__ = lambda self: _call(np.absolute, self, name="absolute")
ndarray.__invert__ = lambda self: _call(np.invert, self, name="invert")


# ---------------------------------------------------------------- crossing between device arrays and NumPy

def _wrap(value):
    """NumPy results as device values: arrays and NumPy scalars become device arrays (0-d for a scalar)."""
    if isinstance(value, np.ndarray):
        wrapped = object.__new__(ndarray)
        wrapped._array = value
        return wrapped
    if isinstance(value, np.generic):
        return _wrap(np.asarray(value))
    if isinstance(value, (tuple, list)):
        return type(value)(_wrap(v) for v in value)
    return value


def _unwrap(value, name, operands=True):
    """Device arrays as their NumPy arrays, for NumPy to compute on. A host NumPy array is refused as an operand
    (operands=True: a ufunc's inputs, a value stored into an array), as by CuPy; as the parameter of any other
    function or method it may be a 1-d integer array (axes, split points, sizes: CuPy reads such parameters as
    sequences), but nothing else."""
    if isinstance(value, ndarray):
        return value._array
    if isinstance(value, np.ndarray):
        if not operands and value.ndim <= 1 and value.dtype.kind in "iu":
            return value
        raise TypeError(f"{name}: got a NumPy array (host memory, {value.dtype}{value.shape}) where a CuPy array is "
                        f"expected; CuPy does not mix host and device arrays: move it with cupy.asarray first "
                        f"(mock CUDA device)")
    if isinstance(value, (tuple, list)):
        return type(value)(_unwrap(v, name, operands) for v in value)
    return value


def _index(index):
    """An index: device arrays in it unwrapped; NumPy index arrays are allowed (CuPy copies them to the device)."""
    if isinstance(index, tuple):
        return tuple(i._array if isinstance(i, ndarray) else i for i in index)
    return index._array if isinstance(index, ndarray) else index


def _call(function, *args, name, **kwargs):
    """function(*args, **kwargs) computed by NumPy on the device arrays' numbers; the result on the device."""
    operands = isinstance(getattr(function, "__self__", function), np.ufunc)   # a ufunc or one of its methods
    out = kwargs.get("out")
    result = function(*_unwrap(args, name, operands), **{k: _unwrap(v, name, operands) for k, v in kwargs.items()})
    if out is not None and isinstance(out, ndarray) and result is out._array:
        return out
    return _wrap(result)


def _uninitialised(shape, dtype):
    array = np.empty(shape, dtype)
    array.reshape(-1).view(np.uint8)[...] = 0xFF
    return array


# ---------------------------------------------------------------- the module's functions

def asarray(a, dtype=None, order=None):
    """On the device: a device array as it is (or converted to dtype); anything else copied over (an explicit
    host-to-device transfer)."""
    if isinstance(a, ndarray):
        return a if dtype is None or a.dtype == np.dtype(dtype) else _wrap(a._array.astype(dtype))
    return _wrap(np.array(a, dtype=dtype, order=order or "K", copy=True))


def array(a, dtype=None, copy=True, order="K"):
    if isinstance(a, ndarray):
        return _wrap(np.array(a._array, dtype=dtype, copy=copy, order=order))
    return _wrap(np.array(a, dtype=dtype, copy=True, order=order))


def asnumpy(a):
    """Back on the host: a NumPy copy of a device array (a NumPy array is returned as it is)."""
    return a.get() if isinstance(a, ndarray) else np.asarray(a)


def empty(shape, dtype=float, order="C"):
    return _wrap(_uninitialised(shape, dtype))


def empty_like(prototype, dtype=None, shape=None):
    source = _unwrap(prototype, "empty_like")
    return _wrap(_uninitialised(source.shape if shape is None else shape, source.dtype if dtype is None else dtype))


def get_array_module(*arrays):
    return sys.modules[__name__] if any(isinstance(a, ndarray) for a in arrays) else np


class _Function:
    """A NumPy function or ufunc, run on device arrays (ufunc methods such as add.at included)."""

    def __init__(self, function):
        self._function = function
        self.__name__ = getattr(function, "__name__", "function")

    def __call__(self, *args, **kwargs):
        return _call(self._function, *args, name=self.__name__, **kwargs)

    def __getattr__(self, name):   # add.at, add.reduce, ...
        return _Function(getattr(self._function, name))


def __getattr__(name):
    """Every other NumPy name: functions run on device arrays, types and constants as NumPy's."""
    try:
        value = getattr(np, name)
    except AttributeError:
        raise AttributeError(f"the mock CuPy module has no attribute {name!r} (nor has NumPy)") from None
    if isinstance(value, (type, float, int)) or isinstance(value, np.dtype):
        return value
    if callable(value):
        return _Function(value)
    raise AttributeError(f"the mock CuPy module does not model numpy.{name}")


# ---------------------------------------------------------------- random numbers

class _Generator:
    """cupy.random.Generator: NumPy's Generator methods over a Philox bit generator, so the device's numbers are
    not the host's (as on a GPU), results on the device."""

    def __init__(self, seed):
        self._generator = np.random.Generator(np.random.Philox(seed))

    def __getattr__(self, name):
        method = getattr(self._generator, name)
        return lambda *args, **kwargs: _wrap(method(*args, **kwargs))


random = types.SimpleNamespace(default_rng=lambda seed=None: _Generator(seed))


# ---------------------------------------------------------------- the device, kernels, errors

class _Device:
    """cupy.cuda.Device: one device, reported as compute capability 9.0 (an H100/H200) with 132 SMs."""

    def __init__(self, device=0):
        if device != 0:
            raise ValueError(f"the mock CUDA device has one device (0), got {device}")
        self.id = 0
        self.compute_capability = "90"
        self.attributes = {"MultiProcessorCount": 132, "MaxSharedMemoryPerBlock": host_kernels.MAX_SHARED_BYTES,
                           "MaxThreadsPerBlock": host_kernels.MAX_THREADS_PER_BLOCK}

    def synchronize(self):
        pass   # every launch runs to completion before it returns

    def use(self):
        pass   # the one device is always the current one


def _properties(device=0):
    return {"name": b"mock CUDA device (kernels executed on the host)", "major": 9, "minor": 0,
            "multiProcessorCount": 132, "totalGlobalMem": 0}


class CUDADriverError(RuntimeError):
    """cupy.cuda.driver.CUDADriverError: a launch CUDA refuses, or one the mock found wrong."""


class CompileException(RuntimeError):
    """cupy.cuda.compiler.CompileException."""


class OutOfMemoryError(MemoryError):
    """cupy.cuda.memory.OutOfMemoryError (the mock device never raises it)."""


cuda = types.SimpleNamespace(
    Device=_Device,
    runtime=types.SimpleNamespace(getDeviceCount=lambda: 1, getLastError=lambda: 0,
                                  getErrorString=lambda error: b"no error", getDeviceProperties=_properties,
                                  deviceSynchronize=lambda: None),
    driver=types.SimpleNamespace(CUDADriverError=CUDADriverError),
    compiler=types.SimpleNamespace(CompileException=CompileException),
    memory=types.SimpleNamespace(OutOfMemoryError=OutOfMemoryError),
)


class RawModule:
    """cupy.RawModule(code=..., options=...): the source compiled for the host; get_function(name) gives a kernel
    that runs, when called as kernel(grid, block, args, shared_mem=0), on the mock device."""

    def __init__(self, code, options=(), backend="nvrtc"):
        try:
            self._module = host_kernels.HostModule(code, options)
        except host_kernels.CompileError as e:
            raise CompileException(str(e)) from None

    def get_function(self, name):
        return _Kernel(self._module.get_function(name))


class _Kernel:
    def __init__(self, kernel):
        self.kernel = kernel   # as cupy.RawKernel's .kernel: what loader.launch names in its messages
        self.name = kernel.name

    def __call__(self, grid, block, args, shared_mem=0):
        if isinstance(args, tuple):
            args = tuple(host_kernels.DeviceArray(a._array) if isinstance(a, ndarray) else a for a in args)
        try:
            self.kernel(grid, block, args, shared_mem=shared_mem)
        except host_kernels.LaunchError as e:
            raise CUDADriverError(str(e)) from None


pi, e, inf, nan, newaxis = math.pi, math.e, np.inf, np.nan, None
