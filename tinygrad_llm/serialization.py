"""torch.save and torch.load in PyTorch's own file format, so that a file goes both ways: a checkpoint a script saves
under `tinygrad-llm run` loads in PyTorch, and one PyTorch saved loads here.

The format (PyTorch's since 1.6): an uncompressed zip archive whose records sit in one folder (`archive/`):
`data.pkl`, the object pickled with protocol 2, in which a tensor is a call of torch._utils._rebuild_tensor_v2(storage,
offset, size, stride, requires_grad, hooks) and a storage a persistent id ('storage', its type such as
torch.FloatStorage, its key, its device, its length); `data/{key}`, each storage's bytes in the byte order that the
`byteorder` record names; and `version`, `.format_version` and `.storage_alignment` beside them. A Parameter is
torch._utils._rebuild_parameter(its tensor, requires_grad, hooks). Everything else pickles as Python pickles it.

save writes PyTorch's names into the pickle without importing PyTorch (the engine never does). Tensors that view
one array (a tied weight under two names of a state dict) share one storage in the file, as PyTorch's do, and share
their memory again once loaded on the CPU; on the GPU each tensor gets its own copy.

load(weights_only=True), PyTorch's default, rebuilds tensors, Parameters, containers, numbers, strings, dtypes,
sizes and devices only: any other class a file names is refused, naming it, since unpickling runs what the file
says; weights_only=False rebuilds any class, for a file one trusts. Tensors go back to the device they were saved
from, or where map_location says. Half precision (float16, bfloat16) is refused, as everywhere in the engine.
"""
import codecs
import io
import os
import pickle
import sys
import zipfile
from collections import Counter, OrderedDict

import numpy as np

from .engine import backend
from .engine.tensor import Tensor
from .nn.module import Parameter

STORAGE_TYPES = {   # PyTorch's storage type for each dtype the engine holds
    np.dtype(np.float64): "DoubleStorage", np.dtype(np.float32): "FloatStorage", np.dtype(np.int64): "LongStorage",
    np.dtype(np.int32): "IntStorage", np.dtype(np.int16): "ShortStorage", np.dtype(np.int8): "CharStorage",
    np.dtype(np.uint8): "ByteStorage", np.dtype(np.bool_): "BoolStorage",
}
DTYPES = {np.dtype(dtype).name: dtype for dtype in   # torch.float32 in a file is the front door's float32, ...
          (np.float64, np.float32, np.int64, np.int32, np.int16, np.int8, np.uint8, np.bool_)}
HALF_PRECISION = {"HalfStorage": "float16", "BFloat16Storage": "bfloat16", "float16": "float16",
                  "bfloat16": "bfloat16", "half": "float16"}
ARCHIVE = "archive"   # the folder of the records (PyTorch names it after the file; any name loads)


# ---------------------------------------------------------------------------- save

class TorchName:
    """One of PyTorch's functions or classes, written into the pickle by its name (torch._utils._rebuild_tensor_v2)
    for PyTorch to find when it loads the file. Callable only so that pickle takes it as a reduce function."""

    def __init__(self, module, name):
        self.module, self.name = module, name

    def __call__(self, *args):
        raise TypeError(f"{self.module}.{self.name} is PyTorch's, named in a file, never called here")


REBUILD_TENSOR = TorchName("torch._utils", "_rebuild_tensor_v2")
REBUILD_PARAMETER = TorchName("torch._utils", "_rebuild_parameter")
TORCH_DEVICE = TorchName("torch", "device")
STORAGE_NAMES = {dtype: TorchName("torch", name) for dtype, name in STORAGE_TYPES.items()}


class SavedStorage:
    """A storage in the file: `array`, 1-d on the host, saved under `key`, from `location` ('cpu', 'cuda:0')."""

    def __init__(self, key, array, location):
        self.key, self.array, self.location = key, array, location


class TorchPickler(pickle._Pickler):
    """Python's pickler (its Python version, whose save() a subclass may extend), pickling tensors as PyTorch does
    and writing TorchNames as globals. `storages` collects {key: SavedStorage}, for save to write after the pickle."""

    def __init__(self, file, protocol):
        super().__init__(file, protocol)
        self.storages = {}
        self.storage_of_array = {}   # id(the array a storage was made from) -> SavedStorage
        self.arrays_kept = []        # those arrays, alive until the end, so that no id is used twice

    def save(self, obj, save_persistent_id=True):
        if not isinstance(obj, TorchName):
            return super().save(obj, save_persistent_id)
        memo = self.memo.get(id(obj))
        if memo is not None:
            self.write(self.get(memo[0]))
            return
        self.write(pickle.GLOBAL + f"{obj.module}\n{obj.name}\n".encode("utf-8"))
        self.memoize(obj)

    def persistent_id(self, obj):
        if isinstance(obj, SavedStorage):
            return "storage", STORAGE_NAMES[obj.array.dtype], obj.key, obj.location, obj.array.size
        return None

    def reducer_override(self, obj):
        if isinstance(obj, Parameter):
            return REBUILD_PARAMETER, (obj.detach(), obj.requires_grad, OrderedDict())
        if isinstance(obj, Tensor):
            if obj.dtype not in STORAGE_TYPES:
                raise TypeError(f"save: a {obj.dtype} tensor {obj.shape} has no PyTorch storage type")
            storage, offset, stride = self.storage(obj)
            return REBUILD_TENSOR, (storage, offset, obj.shape, stride, obj.requires_grad, OrderedDict())
        if isinstance(obj, backend.Device):   # as torch.device pickles itself: a file's x.device loads in PyTorch
            return TORCH_DEVICE, (obj.type,) if obj.index is None else (obj.type, obj.index)
        return NotImplemented

    def storage(self, t):
        """(the SavedStorage holding t's numbers, t's offset into it, t's strides), in elements. A NumPy view
        (a transpose, a slice, a tied weight's second name) points into the storage of the array it views, as PyTorch
        saves a view; any other tensor (on the GPU, or with negative strides) is saved as a contiguous copy."""
        array, itemsize = t.data, t.data.itemsize
        if isinstance(array, np.ndarray):
            root = array
            while isinstance(root.base, np.ndarray):
                root = root.base
            start = array.__array_interface__["data"][0] - root.__array_interface__["data"][0]
            if root.flags.c_contiguous and root.dtype == array.dtype and start % itemsize == 0 and \
                    all(s >= 0 and s % itemsize == 0 for s in array.strides):
                return self.stored(root, root.reshape(-1), "cpu"), start // itemsize, \
                    tuple(s // itemsize for s in array.strides)
        host = backend.to_device(array, "cpu").copy()   # C order (np.ascontiguousarray makes a 0-d array 1-d)
        location = str(t.device)   # PyTorch's location tag: 'cpu', 'cuda:0'...
        return self.stored(array, host.reshape(-1), location), 0, tuple(s // itemsize for s in host.strides)

    def stored(self, source, flat, location):
        if id(source) not in self.storage_of_array:
            storage = SavedStorage(str(len(self.storages)), flat, location)
            self.storages[storage.key] = storage
            self.storage_of_array[id(source)] = storage
            self.arrays_kept.append(source)
        return self.storage_of_array[id(source)]


def save(obj, f, pickle_module=pickle, pickle_protocol=2, _use_new_zipfile_serialization=True,
         _disable_byteorder_record=False):
    """torch.save: write `obj` (tensors, a state_dict, a checkpoint dict, ...) to `f`, a path or a binary file
    object, in PyTorch's zip format."""
    if pickle_module is not pickle:
        raise NotImplementedError(f"save: pickle_module={pickle_module!r}: tinygrad_llm pickles with Python's pickle")
    if not _use_new_zipfile_serialization:
        raise NotImplementedError("save: _use_new_zipfile_serialization=False (PyTorch's format before 1.6) is not "
                                  "written by tinygrad_llm")
    data = io.BytesIO()
    pickler = TorchPickler(data, pickle_protocol)
    pickler.dump(obj)
    with zipfile.ZipFile(f, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr(f"{ARCHIVE}/data.pkl", data.getvalue())
        archive.writestr(f"{ARCHIVE}/.format_version", "1")
        archive.writestr(f"{ARCHIVE}/.storage_alignment", "64")
        if not _disable_byteorder_record:
            archive.writestr(f"{ARCHIVE}/byteorder", sys.byteorder)
        for key, storage in pickler.storages.items():
            archive.writestr(f"{ARCHIVE}/data/{key}", storage.array.tobytes())
        archive.writestr(f"{ARCHIVE}/version", "3\n")


# ---------------------------------------------------------------------------- load

class LoadedStorage:
    """A storage read from the file: `array`, 1-d on the host; `device`, where its tensors go."""

    def __init__(self, array, device):
        self.array, self.device = array, device


def rebuild_tensor(storage, storage_offset, size, stride, requires_grad, backward_hooks, metadata=None):
    """torch._utils._rebuild_tensor_v2: the tensor of `size` whose numbers lie in `storage` from `storage_offset`,
    `stride` elements apart per dimension; on the CPU a view of the storage, shared with its other tensors."""
    if backward_hooks or metadata:
        raise NotImplementedError("load: a tensor saved with backward hooks or metadata is not loaded by "
                                  "tinygrad_llm")
    array, size, stride = storage.array, tuple(size), tuple(stride)
    last = storage_offset + sum((n - 1) * s for n, s in zip(size, stride))
    if len(size) != len(stride) or storage_offset < 0 or min(stride, default=0) < 0 or \
            (0 not in size and last >= array.size):
        raise ValueError(f"load: a tensor of size {size}, stride {stride} and offset {storage_offset} lies outside "
                         f"its storage of {array.size} elements")
    view = np.lib.stride_tricks.as_strided(array[storage_offset:], size, [s * array.itemsize for s in stride])
    if storage.device != "cpu":
        view = backend.to_device(view.copy(), storage.device)
    return Tensor(view, requires_grad=requires_grad)


def rebuild_parameter(data, requires_grad, backward_hooks, state=None):
    """torch._utils._rebuild_parameter (and _rebuild_parameter_with_state, without extra state)."""
    if backward_hooks or state:
        raise NotImplementedError("load: a Parameter saved with backward hooks or attributes of its own is not "
                                  "loaded by tinygrad_llm")
    return Parameter(data, requires_grad)


REBUILT = {   # PyTorch's names a file may hold -> what rebuilds them here
    "torch._utils._rebuild_tensor_v2": rebuild_tensor,
    "torch._utils._rebuild_parameter": rebuild_parameter,
    "torch._utils._rebuild_parameter_with_state": rebuild_parameter,
    "torch.Size": tuple,
    "torch.device": backend.Device,
    **{f"torch.{name}": np.dtype(dtype) for dtype, name in STORAGE_TYPES.items()},
    **{f"torch.{name}": dtype for name, dtype in DTYPES.items()},
}
WEIGHTS_ONLY = {   # what else weights_only=True unpickles: Python's containers and numbers, as PyTorch's list
    "collections.OrderedDict": OrderedDict, "collections.Counter": Counter, "builtins.set": set,
    "builtins.frozenset": frozenset, "builtins.complex": complex, "builtins.bytearray": bytearray,
    "builtins.slice": slice, "_codecs.encode": codecs.encode,   # bytes, under protocol 2
}


class TorchUnpickler(pickle.Unpickler):
    """Unpickles data.pkl: PyTorch's names as REBUILT says, storages read from `archive` on demand (each once),
    other classes only when weights_only is False."""

    def __init__(self, file, archive, prefix, byteorder, place, weights_only, name, **pickle_load_args):
        super().__init__(file, **pickle_load_args)
        self.archive, self.prefix, self.byteorder = archive, prefix, byteorder
        self.place, self.weights_only, self.name = place, weights_only, name
        self.storages = {}

    def find_class(self, module, name):
        full = f"{module}.{name}"
        if full in REBUILT:
            return REBUILT[full]
        if module == "torch" and name in HALF_PRECISION:
            raise NotImplementedError(f"load: {self.name} holds {HALF_PRECISION[name]} tensors: half precision is "
                                      f"not supported (tinygrad_llm computes in float32 and float64)")
        if full in WEIGHTS_ONLY:
            return WEIGHTS_ONLY[full]
        if self.weights_only:
            raise pickle.UnpicklingError(
                f"load: {self.name} holds {full}, which weights_only=True does not load (tensors, containers and "
                f"numbers only); if you trust the file, load it with weights_only=False")
        if module == "torch" or module.startswith("torch."):
            raise NotImplementedError(f"load: {self.name} holds PyTorch's {full}, which tinygrad_llm cannot rebuild "
                                      f"(a whole model saved by PyTorch: save and load its state_dict() instead)")
        return super().find_class(module, name)

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
            raise pickle.UnpicklingError(f"load: {self.name}: unknown persistent id {pid!r}")
        _, dtype, key, location, numel = pid
        if key not in self.storages:
            record = f"{self.prefix}data/{key}"
            try:
                raw = self.archive.read(record)
            except KeyError:
                raise ValueError(f"load: {self.name} lacks the record {record} of a tensor's numbers") from None
            array = np.frombuffer(bytearray(raw), dtype.newbyteorder("<" if self.byteorder == "little" else ">"))
            if array.size != numel:
                raise ValueError(f"load: {self.name}: {record} holds {array.size} numbers, its tensors need {numel}")
            self.storages[key] = LoadedStorage(array.astype(dtype, copy=False), self.place(location))
        return self.storages[key]


def load(f, map_location=None, pickle_module=None, *, weights_only=None, mmap=None, **pickle_load_args):
    """torch.load: the object saved in `f` (a path or a binary file object) by torch.save, PyTorch's or ours.
    map_location: where the tensors go ('cpu', 'cuda', a torch.device, or a dict from the saved device's name to
    another); by default, back where they were saved from. weights_only (default True, as PyTorch 2.6 on): see
    the module's docstring. mmap=True is taken: the numbers are read into memory, the same tensors either way."""
    name = os.fspath(f) if isinstance(f, (str, os.PathLike)) else "the file object"
    if pickle_module not in (None, pickle):
        raise NotImplementedError(f"load: pickle_module={pickle_module!r}: tinygrad_llm unpickles with Python's "
                                  f"pickle")
    weights_only = True if weights_only is None else weights_only
    place = _placement(map_location, name)
    if not zipfile.is_zipfile(f):
        raise RuntimeError(f"load: {name} is not a zip archive: tinygrad_llm reads PyTorch's format since 1.6 "
                           f"(not files saved with _use_new_zipfile_serialization=False, or not by torch.save)")
    with zipfile.ZipFile(f) as archive:
        pickles = [record for record in archive.namelist() if record.endswith("/data.pkl")]
        if len(pickles) != 1:
            raise RuntimeError(f"load: {name} holds {len(pickles)} data.pkl records, torch.save writes one")
        prefix = pickles[0][:-len("data.pkl")]
        byteorder = archive.read(prefix + "byteorder").decode() if prefix + "byteorder" in archive.namelist() \
            else "little"
        unpickler = TorchUnpickler(io.BytesIO(archive.read(pickles[0])), archive, prefix, byteorder, place,
                                   weights_only, name, **pickle_load_args)
        return unpickler.load()


def _placement(map_location, name):
    """A function from a storage's saved device ('cpu', 'cuda:0') to the engine's device its tensors load on."""
    if not (map_location is None or isinstance(map_location, (str, backend.Device, dict))):
        raise NotImplementedError(f"load: map_location={map_location!r}: tinygrad_llm takes a device, a device's "
                                  f"name or a dict from saved devices' names to devices")

    def place(location):
        if map_location is None or (isinstance(map_location, dict) and location not in map_location):
            device = backend.Device(location).type   # 'cuda:1' saved: the engine's one GPU
        else:
            device = map_location[location] if isinstance(map_location, dict) else map_location
        device = backend.device_name(device)
        if device != "cpu":
            try:
                backend.module_for(device)
            except RuntimeError as e:
                raise RuntimeError(f"load: {name} holds tensors for the device {location!r}, which is not usable "
                                   f"here ({e}); load them with map_location='cpu'") from None
        return device

    return place
