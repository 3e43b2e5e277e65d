"""Our kernels/*.cu compiled for the host by g++ and launched on the mock device: the mock's RawModule.

What `RawModule(code=..., options=...)` does here, step by step:
 1. The source is prepared for a host compiler: the one CUDA construct a header cannot express,
    `extern __shared__ T name[];` (dynamic shared memory), becomes a pointer into the launch's buffer.
 2. Every `extern "C" __global__` kernel is found with its parameters and its __launch_bounds__; for each, a small
    launcher is generated that unpacks an array of argument pointers into a call of the kernel, run on every thread
    of every block by kernels/host/cuda_host.h (fibers, barriers, shuffles; read it for the execution model).
 3. g++ compiles source, header and launchers into a shared library (cached on disk by the hash of everything that
    goes into it), ctypes loads it, and `nm` reports each kernel's static shared memory.
A launch checks what CUDA checks (block and grid sizes, the launch bound, 48 KiB of shared memory) and more than
CUDA does where a silent bug would otherwise pass: each argument's exact type (np.int32 for an `int`, a float32
array for a `float*`, C-contiguous), and guard bytes around every array, so a write past its ends fails the launch
(reads past the ends read 0xFF bytes, which are NaN as floats).
"""
import ctypes
import functools
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from ..sources import kernels_dir

MAX_THREADS_PER_BLOCK = 1024
MAX_BLOCK_DIMS = (1024, 1024, 64)
MAX_GRID_DIMS = (2**31 - 1, 65535, 65535)
MAX_SHARED_BYTES = 48 * 1024        # per block, static + dynamic, without opting in (cudaFuncSetAttribute)
GUARD_BYTES = 4096                  # around every array argument
COMPILER = os.environ.get("CXX", "g++")

# C type of a parameter (or of what a pointer parameter points to) -> the NumPy dtype an argument must have
C_TYPES = {
    "float": np.float32, "double": np.float64, "int": np.int32, "unsigned int": np.uint32, "unsigned": np.uint32,
    "long long": np.int64, "unsigned long long": np.uint64, "short": np.int16, "unsigned short": np.uint16,
    "char": np.int8, "unsigned char": np.uint8, "bool": np.bool_,
    "bf16": np.uint16, "__nv_bfloat16": np.uint16,   # bfloat16 travels as its uint16 bit patterns, as with CuPy
}
CTYPES = {np.float32: ctypes.c_float, np.float64: ctypes.c_double, np.int32: ctypes.c_int32,
          np.uint32: ctypes.c_uint32, np.int64: ctypes.c_int64, np.uint64: ctypes.c_uint64, np.int16: ctypes.c_int16,
          np.uint16: ctypes.c_uint16, np.int8: ctypes.c_int8, np.uint8: ctypes.c_uint8, np.bool_: ctypes.c_bool}

KERNEL = re.compile(r'extern\s+"C"\s+__global__\s+void\s+(?:__launch_bounds__\s*\(([^)]*)\)\s*)?(\w+)\s*\(([^)]*)\)')
DYNAMIC_SHARED = re.compile(r"extern\s+__shared__\s+(?:__align__\(\d+\)\s+)?([\w:]+)\s+(\w+)\s*\[\s*\]\s*;")


class CompileError(RuntimeError):
    """The host compiler rejected a kernel file, or it asks for more than CUDA allows (CuPy: CompileException)."""


class LaunchError(RuntimeError):
    """A launch CUDA would refuse (CuPy: CUDADriverError), or one the mock found wrong while running it."""


class DeviceArray:
    """An array argument that lives on the mock device (cupy.py hands its arrays over in this form, so that a NumPy
    array, host memory, can still be told apart and refused)."""

    def __init__(self, array):
        self.array = array


class Launch(ctypes.Structure):
    """kernels/host/cuda_host.h, struct tl_mock::Launch."""
    _fields_ = [("grid", ctypes.c_uint * 3), ("block", ctypes.c_uint * 3),
                ("dynamic_shared_bytes", ctypes.c_ulonglong), ("reverse_order", ctypes.c_int),
                ("timeout_seconds", ctypes.c_double), ("kernel_name", ctypes.c_char_p)]


class Parameter:
    """One kernel parameter as declared: its name, its C type, whether it is a pointer, and the dtype it takes."""

    def __init__(self, declaration, kernel):
        text = " ".join(declaration.replace("__restrict__", " ").replace("*", " * ").split())
        words = text.split(" ")
        self.name = words[-1]
        self.c_type = " ".join(words[:-1])                          # e.g. "const float *", "int"
        self.pointer = "*" in words
        base = " ".join(w for w in words[:-1] if w not in ("const", "volatile", "*"))
        if base not in C_TYPES:
            raise CompileError(f"{kernel}: parameter {self.name!r} has type {self.c_type!r}, which the mock device "
                               f"does not know how to pass")
        self.dtype = np.dtype(C_TYPES[base])


class Kernel:
    """A kernel found in the source: its name, parameters, and the expression of its launch bound (or None)."""

    def __init__(self, match):
        bound, self.name, parameters = match.groups()
        self.bound = bound.split(",")[0].strip() if bound else None
        self.parameters = [Parameter(p, self.name) for p in parameters.split(",") if p.strip()]

    def launcher(self):
        """C++ that calls the kernel with arguments unpacked from `void** args` on every thread of the launch."""
        unpacked = ", ".join(f"*reinterpret_cast<{p.c_type}*>(args[{i}])" for i, p in enumerate(self.parameters))
        bound = f'extern "C" const int tl_mock_bound_{self.name} = ({self.bound});\n' if self.bound else ""
        return (f'{bound}extern "C" int tl_mock_launch_{self.name}(const tl_mock::Launch* launch, void** args) {{\n'
                f"    return tl_mock::run(*launch, [args] {{ {self.name}({unpacked}); }});\n}}\n")


def host_source(code):
    """The kernel source as g++ compiles it (dynamic shared memory made a pointer), and the kernels found in it."""
    code = DYNAMIC_SHARED.sub(lambda m: f"{m.group(1)}* {m.group(2)} = tl_mock::dynamic_shared<{m.group(1)}>();",
                              code)
    kernels = [Kernel(m) for m in KERNEL.finditer(code)]
    if not kernels:
        raise CompileError('no extern "C" __global__ kernel found in the source')
    launchers = "".join(k.launcher() for k in kernels)
    return f"{code}\n\n// ---- launchers generated by the mock device\n{launchers}", kernels


def compiler_flags(options):
    """NVRTC options -> g++ flags: -D and -std carry over, -I is unsupported (the kernels include nothing of ours);
    anything else is an error rather than silently ignored."""
    flags = []
    for option in options:
        if option.startswith("-D") or option.startswith("-std="):
            flags.append(option)
        else:
            raise CompileError(f"the mock device does not model the compile option {option!r}")
    return flags


def cache_dir():
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "tinygrad_llm" / "mock_kernels"


@functools.lru_cache(maxsize=None)
def compiler_version():
    if shutil.which(COMPILER) is None:
        raise CompileError(f"the mock CUDA device compiles kernels with a host C++ compiler, and {COMPILER!r} is not "
                           f"on PATH (set $CXX to another one)")
    return subprocess.run([COMPILER, "--version"], capture_output=True, text=True).stdout


def build(code, options):
    """The path of the shared library holding `code` compiled with `options` (compiled unless cached)."""
    source, kernels = host_source(code)
    headers_dir = kernels_dir() / "host"
    flags = ["-O2", "-fPIC", "-shared", "-w", "-fno-strict-aliasing", f"-I{headers_dir}", "-include", "cuda_host.h",
             *compiler_flags(options)]
    headers = "".join(p.read_text() for p in sorted(headers_dir.glob("*.h")))
    key = hashlib.sha256("\0".join([source, headers, *flags, compiler_version()]).encode()).hexdigest()[:24]
    library = cache_dir() / f"{key}.so"
    if not library.is_file():
        library.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=library.parent) as scratch:
            cpp = Path(scratch) / "kernels.cpp"
            cpp.write_text(source)
            built = Path(scratch) / "kernels.so"
            done = subprocess.run([COMPILER, "-x", "c++", *flags, str(cpp), "-o", str(built)],
                                  capture_output=True, text=True)
            if done.returncode != 0:
                raise CompileError(f"g++ could not compile the kernels for the mock device:\n{done.stderr[-4000:]}")
            os.replace(built, library)   # atomic: a parallel build of the same key loses nothing
    return library, kernels


def static_shared_bytes(library, kernels):
    """{kernel: bytes of __shared__ variables declared in it}, from the symbol table (cuda_host.h makes each one a
    function-local static, named after its function)."""
    listing = subprocess.run(["nm", "-S", "-C", str(library)], capture_output=True, text=True).stdout
    sizes = {k.name: 0 for k in kernels}
    for line in listing.splitlines():
        parts = line.split(maxsplit=3)
        if len(parts) == 4 and "::" in parts[3]:
            owner = parts[3].split("::")[0]
            if owner in sizes and parts[2] in "bBdD":
                sizes[owner] += int(parts[1], 16)
    return sizes


class HostModule:
    """cupy.RawModule for the mock device: `code` compiled for the host, its kernels by name."""

    def __init__(self, code, options=()):
        path, kernels = build(code, tuple(options))
        self.library = ctypes.CDLL(str(path))
        self.library.tl_mock_error.restype = ctypes.c_char_p
        shared = static_shared_bytes(path, kernels)
        self.kernels = {}
        for kernel in kernels:
            if shared[kernel.name] > MAX_SHARED_BYTES:
                raise CompileError(f"{kernel.name} uses too much shared data ({shared[kernel.name]} bytes, "
                                   f"{MAX_SHARED_BYTES} max), as ptxas would report")
            bound = ctypes.c_int.in_dll(self.library, f"tl_mock_bound_{kernel.name}").value if kernel.bound else None
            self.kernels[kernel.name] = HostKernel(self, kernel, bound, shared[kernel.name])

    def get_function(self, name):
        if name not in self.kernels:
            raise KeyError(f"no kernel {name!r} in this module (it has {sorted(self.kernels)})")
        return self.kernels[name]


def _dims(value, limits, what, kernel):
    dims = tuple(value) if isinstance(value, (tuple, list)) else (value,)
    if not 1 <= len(dims) <= 3 or any(not isinstance(d, (int, np.integer)) for d in dims):
        raise LaunchError(f"{kernel}: {what} must be an int or a tuple of 1 to 3 ints, got {value!r}")
    dims = tuple(int(d) for d in dims) + (1,) * (3 - len(dims))
    for d, limit, axis in zip(dims, limits, "xyz"):
        if not 1 <= d <= limit:
            raise LaunchError(f"{kernel}: CUDA_ERROR_INVALID_VALUE: {what}.{axis} = {d} (must be 1 .. {limit})")
    return dims


class HostKernel:
    """cupy.RawKernel for the mock device: `kernel(grid, block, args, shared_mem=0)` runs it to completion."""

    reverse_order = False   # run each block's threads last to first (tests flip it to vary the interleaving)
    timeout_seconds = float(os.environ.get("TINYGRAD_LLM_MOCK_CUDA_TIMEOUT", 600))   # then a launch fails

    def __init__(self, module, kernel, bound, static_shared):
        self.module, self.kernel, self.bound, self.static_shared = module, kernel, bound, static_shared
        self.name = kernel.name
        self.entry = getattr(module.library, f"tl_mock_launch_{kernel.name}")
        self.entry.restype = ctypes.c_int

    def __call__(self, grid, block, args, shared_mem=0):
        grid = _dims(grid, MAX_GRID_DIMS, "grid", self.name)
        block = _dims(block, MAX_BLOCK_DIMS, "block", self.name)
        threads = block[0] * block[1] * block[2]
        if threads > MAX_THREADS_PER_BLOCK:
            raise LaunchError(f"{self.name}: CUDA_ERROR_INVALID_VALUE: a block of {threads} threads "
                              f"(at most {MAX_THREADS_PER_BLOCK})")
        if self.bound is not None and threads > self.bound:
            raise LaunchError(f"{self.name}: CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES: a block of {threads} threads, "
                              f"more than its __launch_bounds__({self.bound})")
        if self.static_shared + shared_mem > MAX_SHARED_BYTES:
            raise LaunchError(f"{self.name}: CUDA_ERROR_INVALID_VALUE: {self.static_shared} bytes of static and "
                              f"{shared_mem} of dynamic shared memory exceed {MAX_SHARED_BYTES}")
        if not isinstance(args, tuple):
            raise LaunchError(f"{self.name}: args must be a tuple, got {type(args).__name__}")
        if len(args) != len(self.kernel.parameters):
            raise LaunchError(f"{self.name}: {len(args)} arguments for {len(self.kernel.parameters)} parameters "
                              f"({', '.join(p.name for p in self.kernel.parameters)})")
        with GuardedArguments(self.name, self.kernel.parameters, args) as values:
            pointers = (ctypes.c_void_p * len(values))(*[ctypes.cast(ctypes.pointer(v), ctypes.c_void_p)
                                                          for v in values])
            launch = Launch((ctypes.c_uint * 3)(*grid), (ctypes.c_uint * 3)(*block), shared_mem,
                            int(self.reverse_order), self.timeout_seconds, self.name.encode())
            if self.entry(ctypes.byref(launch), pointers) != 0:
                raise LaunchError(f"mock CUDA device: {self.module.library.tl_mock_error().decode()}")


class GuardedArguments:
    """The kernel's arguments as C values. Each array argument's buffer is copied into a larger one whose extra
    bytes on both sides are 0xFF; after the launch those bytes must be untouched (else the kernel wrote outside the
    array: an error naming the argument), and the buffer is copied back. Arguments that share a buffer share one
    guarded copy, so a kernel sees their aliasing as on the GPU."""

    def __init__(self, kernel, parameters, args):
        self.kernel, self.parameters, self.args = kernel, parameters, args
        self.copies = {}    # id(root buffer) -> (root, guarded copy, [parameter names])

    def __enter__(self):
        return [self._pointer(p, arg) if p.pointer else self._scalar(p, arg)
                for p, arg in zip(self.parameters, self.args)]

    def _pointer(self, parameter, arg):
        if arg is None:
            return ctypes.c_void_p(None)   # CuPy passes an invalid pointer; the kernel must not read it
        if not isinstance(arg, DeviceArray):
            host = " (a host array: move it with cupy.asarray first)" if isinstance(arg, np.ndarray) else ""
            raise LaunchError(f"{self.kernel}: argument {parameter.name} ({parameter.c_type}) must be a CuPy array, "
                              f"got {type(arg).__name__}{host}")
        array = arg.array
        if array.dtype != parameter.dtype:
            raise LaunchError(f"{self.kernel}: argument {parameter.name} is {parameter.c_type} but the array is "
                              f"{array.dtype} (the kernel would read its bytes as {parameter.dtype})")
        if not array.flags.c_contiguous:
            raise LaunchError(f"{self.kernel}: argument {parameter.name} is not C-contiguous (shape {array.shape}, "
                              f"strides {array.strides}); the kernel would read the wrong elements")
        root = array
        while isinstance(root.base, np.ndarray):
            root = root.base
        key = id(root)
        if key not in self.copies:
            guarded = np.full(root.nbytes + 2 * GUARD_BYTES, 0xFF, dtype=np.uint8)
            guarded[GUARD_BYTES:GUARD_BYTES + root.nbytes] = root.reshape(-1).view(np.uint8)
            self.copies[key] = (root, guarded, [])
        root, guarded, names = self.copies[key]
        names.append(parameter.name)
        offset = array.__array_interface__["data"][0] - root.__array_interface__["data"][0]
        return ctypes.c_void_p(guarded.ctypes.data + GUARD_BYTES + offset)

    def _scalar(self, parameter, arg):
        if not isinstance(arg, np.generic) or arg.dtype != parameter.dtype:
            hint = (f"; pass np.{parameter.dtype.name}(...) explicitly (CuPy passes a Python {type(arg).__name__} as "
                    f"64 bits)" if isinstance(arg, (int, float, bool)) else "")
            raise LaunchError(f"{self.kernel}: argument {parameter.name} is a C {parameter.c_type}, got "
                              f"{type(arg).__name__}{'' if not isinstance(arg, np.generic) else ' ' + str(arg.dtype)}"
                              f"{hint}")
        return CTYPES[parameter.dtype.type](arg.item())

    def __exit__(self, failure, *_):
        for root, guarded, names in self.copies.values():
            before = guarded[:GUARD_BYTES]
            after = guarded[GUARD_BYTES + root.nbytes:]
            if failure is None and not (np.all(before == 0xFF) and np.all(after == 0xFF)):
                where = "before the start" if not np.all(before == 0xFF) else "past the end"
                raise LaunchError(f"{self.kernel}: wrote {where} of the array passed as {' / '.join(names)} "
                                  f"(shape {root.shape}, {root.dtype})")
            root.reshape(-1).view(np.uint8)[...] = guarded[GUARD_BYTES:GUARD_BYTES + root.nbytes]
        return False
