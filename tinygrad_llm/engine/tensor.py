"""Tensor and reverse-mode autograd.

A `Tensor` is an n-d array (NumPy or CuPy, see backend.py) plus what autograd needs: `requires_grad`, the
accumulated `grad`, and `_ctx`, the `Function` node that produced it. A `Function` is one op: `forward` maps
input arrays to an output array and saves what `backward` needs; `backward` maps the gradient of the loss with
respect to the output (dL/dout) to the gradients with respect to each input (dL/din), the chain rule for that op.

`loss.backward()` sorts the graph topologically (iteratively: a 10,000-op chain needs no recursion) and walks
it in reverse, handing each Function the sum of the gradients flowing into its output. After a node's backward
has run its saved arrays are freed, so memory falls during the walk and a second backward through the same
graph raises, unless `retain_graph=True`.

This file knows no particular op: ops.py, reductions.py, movement.py and functional.py define them and attach the
operators (`+`, `@`, ...) and methods to Tensor, each beside its op; inplace.py adds the in-place ones. Importing
the package imports all five (tests/test_layout.py checks it), so every method is there.
"""
import copy
import functools
import weakref

import numpy as np

from . import backend

_grad_mode, _inference_mode = True, False   # PyTorch's two switches (GradMode)
_recording = True                           # whether ops record the graph: the first on, the second off

# The tools watching the engine now (tools/observer.py's Observers: the profiler, anomaly detection, the graph's
# trace, telemetry), empty unless one is on; nn/module.py reads it, this file does not. The tools' one hook point:
# while one is on, tools/observer.py puts timed versions of run_forward and run_backward (below) in their places.
observers = []


class GradMode:
    """A context manager, and decorator, that sets PyTorch's two switches for its block or function and puts back
    what was there before at the end: grad mode (no_grad, enable_grad, set_grad_enabled) and inference mode
    (inference_mode). Ops record the graph while grad mode is on and inference mode off. Decorated as @no_grad() or,
    as PyTorch allows, @no_grad."""

    def __new__(cls, *args, **kwargs):
        if len(args) == 1 and not kwargs and callable(args[0]):   # @no_grad, @inference_mode: without the call
            return cls()(args[0])
        return super().__new__(cls)

    def __init__(self):
        pass

    def modes(self):
        """(grad mode, inference mode) inside the block."""
        raise NotImplementedError

    def __enter__(self):
        self._previous = (_grad_mode, _inference_mode)
        _set_modes(*self.modes())

    def __exit__(self, *exc):
        _set_modes(*self._previous)

    def __call__(self, function):
        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            with self.clone():   # a context of its own per call, so that recursive calls each restore their own
                return function(*args, **kwargs)
        return wrapper

    def clone(self):
        return copy.copy(self)


def _set_modes(grad_mode, inference):
    global _grad_mode, _inference_mode, _recording
    _grad_mode, _inference_mode, _recording = grad_mode, inference, grad_mode and not inference


def _check_mode(name, mode):
    if not isinstance(mode, bool):
        raise TypeError(f"{name}: mode must be a bool, got {type(mode).__name__} {mode!r}")
    return mode


class no_grad(GradMode):
    """No graph is recorded: results have requires_grad=False (parameters may be changed in place)."""

    def modes(self):
        return False, _inference_mode


class enable_grad(GradMode):
    """Grad mode on again (inside no_grad; inside inference_mode still nothing is recorded, as in PyTorch)."""

    def modes(self):
        return True, _inference_mode


class inference_mode(GradMode):
    """inference_mode() (mode=True): no graph is recorded, even where grad mode is turned on inside it;
    inference_mode(False) turns grad mode on, as PyTorch's. PyTorch also marks the tensors made inside as inference
    tensors and refuses them in a recorded op later; here they are ordinary tensors made without a graph, so such a
    program runs on where PyTorch's stops."""

    def __init__(self, mode=True):
        self.mode = _check_mode("inference_mode", mode)

    def modes(self):
        return not self.mode, self.mode


class set_grad_enabled(GradMode):
    """set_grad_enabled(mode): called alone, it sets grad mode at once (torch.set_grad_enabled(False)); as a context
    manager, for its block; as a decorator, for each call of the function (the decorating itself then changes
    nothing)."""

    def __init__(self, mode):
        self.mode = _check_mode("set_grad_enabled", mode)
        self._before_call = (_grad_mode, _inference_mode)
        _set_modes(*self.modes())

    def modes(self):
        return self.mode, _inference_mode

    def __enter__(self):
        self._previous = self._before_call   # what was there before the call, which __exit__ puts back
        _set_modes(*self.modes())

    def __call__(self, function):
        _set_modes(*self._before_call)
        return super().__call__(function)

    def clone(self):
        return set_grad_enabled(self.mode)

    def __repr__(self):
        return f"set_grad_enabled(mode={self.mode})"


def is_grad_enabled():
    """Whether grad mode is on (PyTorch's answer; inside inference_mode nothing is recorded even when it is)."""
    return _grad_mode


def is_inference_mode_enabled():
    return _inference_mode


def is_recording():
    """Whether ops record the graph now: grad mode on and inference mode off."""
    return _recording


_versions = {}  # id(buffer) -> how many in-place changes it has had (absent: none)


def version_of(array):
    """How many times the buffer holding `array` has been changed in place (by inplace.py's ops)."""
    return _versions.get(id(backend.buffer_of(array)), 0)


def count_in_place_change(array):
    """One more in-place change of the buffer holding `array`. The count is forgotten with the buffer."""
    buffer = backend.buffer_of(array)
    key = id(buffer)
    if key not in _versions:
        _versions[key] = 0
        try:
            weakref.finalize(buffer, _versions.pop, key, None)
        except TypeError:   # an owner that takes no weak reference: its count stays (a few bytes)
            pass
    _versions[key] += 1


def _as_array(data, dtype, device):
    """Tensor's `data` as an array of `dtype` on `device` (None: as it is)."""
    if isinstance(data, Tensor):
        data = data.data
    if type(data) is np.ndarray and dtype is None and device is None:
        return data
    # exact types: a NumPy float64 scalar is a subclass of float, and must stay float64. Python numbers and lists are
    # host data: NumPy reads them (with or without a dtype), then they go to `device`
    if isinstance(data, (list, tuple)) or type(data) in (int, float, bool):
        data = np.asarray(data, dtype=dtype)
        if dtype is None and data.dtype.kind == "f":
            data = data.astype(backend.DEFAULT_FLOAT)
    array_module = backend.module_for(device) if device is not None else backend.xp(data)
    return array_module.asarray(data, dtype=dtype)


class Tensor:
    """An array that remembers how it was made, so that gradients can flow back through it.

    Tensor(data, dtype=None, device=None, requires_grad=False). `data` is an array, a Python number or a
    nested list. Python floats become float32 (the default); NumPy arrays keep their dtype, so float64 data
    stays float64 (gradient checks rely on that).
    """

    # NumPy must not treat a Tensor as an opaque object: `np.float32(2) * t` or `array + t` would otherwise build
    # an object array of Tensors. None makes NumPy step aside, so Python calls our reflected operator instead.
    __array_ufunc__ = None

    def __init__(self, data, dtype=None, device=None, requires_grad=False):
        if type(data) is not np.ndarray or dtype is not None or device is not None:   # every op's output skips this
            data = _as_array(data, dtype, device)
        if data.dtype.kind not in "biuf":
            raise TypeError(f"Tensor: holds numbers and booleans only, got dtype {data.dtype}")
        if requires_grad and data.dtype.kind != "f":
            raise TypeError(f"Tensor: only floating tensors can require grad, got dtype {data.dtype}")
        self.data = data
        self.requires_grad = bool(requires_grad)
        self.grad = None
        self._ctx = None  # the Function that produced this tensor; None for a leaf
        self._retains_grad = False
        self._used = False  # whether a recorded op has taken it as an input (inplace.py refuses to change it then)

    # ----- what it is -----
    @property
    def shape(self):
        return self.data.shape

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def device(self):
        """Where the numbers live, as PyTorch's torch.device: device(type='cpu') or device(type='cuda', index=0);
        never equal to a string (compare x.device.type, or use x.is_cuda)."""
        return backend.tensor_device(self.data)

    @property
    def is_cuda(self):
        return self.device.type == "cuda"

    @property
    def is_cpu(self):
        return self.device.type == "cpu"

    def get_device(self):
        """The GPU's index for a tensor on one, -1 on the CPU (PyTorch's)."""
        return -1 if self.device.index is None else self.device.index

    @property
    def ndim(self):
        return self.data.ndim

    def size(self, dim=None):
        """The shape, as PyTorch's x.size(); with `dim`, the length of that axis."""
        if dim is None:
            return self.shape
        if not -self.ndim <= dim < max(self.ndim, 1):
            raise IndexError(f"size: dim {dim} is out of range for a tensor with {self.ndim} axes")
        return self.shape[dim]

    def numel(self):
        """The number of elements."""
        return self.data.size

    def dim(self):
        """The number of axes (also .ndim)."""
        return self.ndim

    @property
    def is_leaf(self):
        return self._ctx is None

    @property
    def grad_fn(self):
        """The Function that made this tensor (PyTorch's name for it; the engine keeps it in _ctx), None for a leaf.
        Walk the graph as in PyTorch: grad_fn.name(), grad_fn.next_functions."""
        return self._ctx

    @property
    def _version(self):
        """How many in-place changes its data's buffer has had (shared by every view of it; see inplace.py)."""
        return version_of(self.data)

    def __len__(self):
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    def __repr__(self):
        """PyTorch's layout: tensor([...], dtype=..., device=..., requires_grad=True or grad_fn=<MulBackward0>, the
        node's name()); the dtype is shown when it is not the default of its kind (float32, int64, bool)."""
        body = np.array2string(backend.to_device(self.data, "cpu"), separator=", ", prefix="tensor(")
        extras = []
        if self.dtype not in (backend.DEFAULT_FLOAT, np.dtype(np.int64), np.dtype(bool)):
            extras.append(f"dtype={self.dtype}")
        if self.is_cuda:
            extras.append(f"device='{self.device}'")
        if self._ctx is not None:
            extras.append(f"grad_fn=<{self._ctx.name()}>")
        elif self.requires_grad:
            extras.append("requires_grad=True")
        return f"tensor({', '.join([body] + extras)})"

    # ----- one element as a Python number: float(t), int(t), bool(t), and `if t:` -----
    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())

    def __bool__(self):
        if self.numel() != 1:
            raise RuntimeError(f"bool: the truth value of a tensor of shape {self.shape} is ambiguous; use "
                               f"(t).any() or (t).all()")
        return bool(self.item())

    def __format__(self, format_spec):
        """f"{loss:.4f}": a 0-d tensor formats as its number, as in PyTorch; any other takes no format spec."""
        if self.ndim == 0:
            return self.item().__format__(format_spec)
        return object.__format__(self, format_spec)

    def __index__(self):
        if self.dtype.kind not in "iu" or self.numel() != 1:
            raise TypeError(f"only one-element integer tensors can be used as an index, got {self.dtype} {self.shape}")
        return int(self.item())

    # Comparisons give bool tensors (ops.py), so a tensor is hashed by identity, as in PyTorch
    __hash__ = object.__hash__

    # ----- leaving the graph -----
    def numpy(self):
        """The data as a NumPy array (copied from the GPU when needed). Shares memory on the CPU, so it is refused
        for a tensor that requires grad, as in PyTorch: writing into it would change what backward uses, unseen."""
        if self.requires_grad:
            raise RuntimeError("numpy: can't call numpy() on a tensor that requires grad; "
                               "use tensor.detach().numpy() instead")
        return backend.to_device(self.data, "cpu")

    def __array__(self, dtype=None, copy=None):
        """np.asarray(t), np.array(t): .numpy() (refused where it is), as in PyTorch; without it NumPy would build
        an object array of 0-d Tensors."""
        array = self.numpy()
        if dtype is not None and array.dtype != dtype:
            return array.astype(dtype)
        return array.copy() if copy else array

    def item(self):
        if self.numel() != 1:
            raise ValueError(f"item: only a one-element tensor converts to a Python number, got shape {self.shape}")
        return self.data.item()

    def tolist(self):
        """The data as (nested) Python lists of numbers: a copy, so allowed on a tensor that requires grad."""
        return backend.to_device(self.data, "cpu").tolist()

    def detach(self):
        """The same data, cut from the graph (shares memory)."""
        return Tensor(self.data)

    def requires_grad_(self, requires_grad=True):
        """Mark a leaf as a parameter (or no longer one), in place; returns self, as in PyTorch."""
        if not self.is_leaf and not requires_grad:
            raise RuntimeError("requires_grad_: only a leaf's flag can be turned off; use .detach() here")
        if requires_grad and self.dtype.kind != "f":
            raise TypeError(f"requires_grad_: only floating tensors can require grad, got dtype {self.dtype}")
        self.requires_grad = bool(requires_grad)
        return self

    def retain_grad(self):
        """Keep `.grad` on this intermediate tensor after backward (leaves always keep theirs)."""
        if not self.requires_grad:
            raise RuntimeError("retain_grad: this tensor does not require grad")
        self._retains_grad = True
        return self

    # ----- the backward walk -----
    def backward(self, grad=None, retain_graph=False):
        """Accumulate d(self)/d(leaf) * grad into `.grad` of every leaf that requires grad.

        `grad` is dL/d(self); it may be omitted only when self holds one element (then it is 1).
        Gradients add onto what `.grad` already holds, as in PyTorch: call `zero_grad` between steps.
        """
        sums = GradientSums(self, self._output_gradient(grad))
        for tensor in reversed(self._topological_order()):    # each tensor after every op that used it
            g = sums.pop(tensor)                              # dL/d(tensor), summed over all its uses
            if g is None:
                continue                                      # self does not depend on it
            for parent, parent_grad in run_backward(tensor, g):   # its op's backward: dL/d(input) from dL/d(tensor)
                sums.add(parent, parent_grad)                 # the chain rule: summed over the input's uses
            if tensor._ctx is not None and not retain_graph:
                tensor._ctx.free()                            # its saved arrays are needed no more

    def _output_gradient(self, grad):
        """dL/d(self) as an array of self's shape and dtype: 1 for a one-element output, else `grad`, checked."""
        if not self.requires_grad:
            raise RuntimeError("backward: this tensor does not require grad and has no graph "
                               "(were its inputs created with requires_grad=True, outside no_grad?)")
        xp = backend.xp(self.data)
        if grad is None:
            if self.numel() != 1:
                raise RuntimeError(f"backward: a gradient can be implied only for a one-element output, "
                                   f"this one has shape {self.shape}; pass grad= of that shape")
            return xp.ones_like(self.data)
        grad = xp.asarray(grad.data if isinstance(grad, Tensor) else grad, dtype=self.dtype)
        if grad.shape != self.shape:
            raise ValueError(f"backward: grad has shape {grad.shape}, the output has shape {self.shape}")
        return grad

    def _topological_order(self):
        """Tensors that lead to self, each after all of its inputs (iterative depth-first post-order). Found in full
        before the walk starts, so a graph an earlier backward freed raises before any gradient changes."""
        order, visited = [], set()
        stack = [(self, False)]
        while stack:
            tensor, inputs_done = stack.pop()
            if inputs_done:
                order.append(tensor)
                continue
            if id(tensor) in visited:
                continue
            visited.add(id(tensor))
            stack.append((tensor, True))
            ctx = tensor._ctx
            if ctx is None:
                continue
            if ctx.freed:
                raise RuntimeError(f"backward: the graph through {ctx.op_name} was already freed by an earlier "
                                   f"backward; pass retain_graph=True to the first backward to go through it twice")
            for parent in ctx.parents:
                if parent is not None and parent.requires_grad and id(parent) not in visited:
                    stack.append((parent, False))
        return order

    def _accumulate_grad(self, g):
        # The first gradient is copied: `g` may be the very array another tensor received (add hands the same
        # gradient to both inputs), and an in-place update of one .grad (clip_grad_norm_) must not change another.
        self.grad = Tensor(g.copy()) if self.grad is None else Tensor(self.grad.data + g)


def run_backward(tensor, grad):
    """One step of the backward walk, given grad = dL/d(tensor): grad added into tensor.grad where a user reads it (a
    leaf, or a tensor that retains its grad), and the backward of the op that made tensor run, returning [(input,
    dL/d(input))] for each input that requires grad, each checked against its input's shape (a wrong backward
    fails here, naming the op)."""
    op = tensor._ctx                                          # None for a leaf
    if op is None or tensor._retains_grad:
        tensor._accumulate_grad(grad)
    if op is None:
        return []
    op._check_saved_arrays_unchanged()
    grads = op.backward(grad)
    input_grads = []
    for parent, parent_grad in zip(op.parents, grads if isinstance(grads, tuple) else (grads,)):
        if parent is None or parent_grad is None or not parent.requires_grad:
            continue
        if parent_grad.shape != parent.shape:
            raise RuntimeError(f"{op.op_name}.backward returned a gradient of shape {parent_grad.shape} "
                               f"for an input of shape {parent.shape}")
        input_grads.append((parent, parent_grad))
    return input_grads


class SparseGradient:
    """A gradient an op may hand back instead of an array when it is zero but in a few places: what x[index] hands
    x (movement.py's IndexedGrad). Why: a model that reads many slices of one array (an RNN reads x[:, t] for every
    t; attention splits q, k and v out of one projection) would otherwise get one full-size array per slice, and T
    slices of a (B, T, C) array would cost T full arrays, O(T²). The walk adds each into one buffer instead."""

    def add_to(self, array):
        """array += this gradient, in place."""
        raise NotImplementedError

    def dense(self):
        """This gradient as a new array of its tensor's shape."""
        raise NotImplementedError


class GradientSums:
    """The gradients the backward walk has collected for tensors it has not reached yet: dL/d(tensor) is the sum of
    what every use of the tensor hands back (x * x uses x twice). The bookkeeping that keeps summing cheap:
    - an op may hand one array to several inputs (add gives g to both), so an array an op returned is never
      written into; the first sum goes to a new buffer that the walk owns, and later terms are added into it;
    - a SparseGradient (a slice's) is written into that buffer, never made full-size alone."""

    def __init__(self, output, grad):
        self.sums = {id(output): grad}
        self.owned = set()  # ids whose buffer this walk allocated: later terms may be added into it in place

    def add(self, tensor, grad):
        """One more term of dL/d(tensor)."""
        key = id(tensor)
        if key not in self.sums:
            self.sums[key] = grad
            return
        self.sums[key] = _add_gradients(self.sums[key], grad, in_place=key in self.owned)
        self.owned.add(key)

    def pop(self, tensor):
        """The finished dL/d(tensor) as an array (None when nothing flowed to it); every use of it has been seen."""
        self.owned.discard(id(tensor))
        g = self.sums.pop(id(tensor), None)
        return g.dense() if isinstance(g, SparseGradient) else g


def _add_gradients(total, new, in_place):
    """total + new, two gradients of one tensor, either of them possibly a SparseGradient. `in_place` says total is a
    buffer the walk allocated, free to take the sum; any other array may be shared (Add hands its one gradient to
    both inputs), so the sum then goes to a new buffer, which later gradients of the same tensor are added into."""
    if isinstance(total, SparseGradient):
        total, in_place = total.dense(), True
    if not in_place:
        if not isinstance(new, SparseGradient):
            return total + new
        total = total.copy()
    if isinstance(new, SparseGradient):
        new.add_to(total)
    else:
        total += new
    return total


class Function:
    """One op in the graph. Subclasses write `forward(ctx, *arrays, **options) -> array` and
    `backward(ctx, grad) -> one gradient per input` (None where an input needs none); `ctx` is the node itself,
    so `forward` keeps what `backward` needs on it (`ctx.save_for_backward`, or plain attributes).

    `apply` runs forward on the inputs' arrays and, when any input requires grad, records the node.
    """

    def __init__(self, inputs):
        parents, needs_input_grad = [], []
        for x in inputs:   # one plain loop for both: every op builds its node here
            is_tensor = isinstance(x, Tensor)
            parents.append(x if is_tensor else None)
            needs_input_grad.append(is_tensor and x.requires_grad)
        self.parents = tuple(parents)  # the inputs: a Tensor, or None where the input was not a tensor
        self.needs_input_grad = tuple(needs_input_grad)
        self.saved = ()
        self.saved_versions = ()  # the version of each saved array's buffer when this op ran (run_forward)
        self.freed = False

    @property
    def op_name(self):
        """The op's name in messages: the class name without its "Op", in lower case (LayerNormOp: "layernorm")."""
        return type(self).__name__.removesuffix("Op").lower()

    def name(self):
        """PyTorch's name for this node of the graph, spelled from ours: MulOp is "MulBackward0" (PyTorch's own
        names differ where its ops do: our LinearOp, its AddmmBackward0)."""
        return type(self).__name__.removesuffix("Op") + "Backward0"

    @property
    def next_functions(self):
        """One (node, 0) per input, as PyTorch gives them: the Function that made the input, an AccumulateGrad for a
        leaf that requires grad (its .variable is the leaf), None for an input that needs no gradient. (0: which
        output of that node; every op here has one.)"""
        if self.freed:
            raise RuntimeError(f"next_functions: the graph through {self.op_name} was freed by backward; pass "
                               f"retain_graph=True to backward to walk it afterwards")
        return tuple((_node_of(p), 0) for p in self.parents)

    def save_for_backward(self, *arrays):
        self.saved = arrays

    def free(self):
        """Drop what backward needed: saved arrays, options kept on ctx, and the links to the inputs."""
        self.__dict__.clear()
        self.freed = True

    def forward(self, *args, **kwargs):
        raise NotImplementedError

    def backward(self, grad):
        raise NotImplementedError

    def _check_saved_arrays_unchanged(self):
        """PyTorch's "modified by an inplace operation" check: if an array this op saved (an input, the output, or a
        view of either) has been changed in place since the forward, its gradient would be computed from the new
        numbers; refuse, naming the op."""
        if not _versions:
            return   # nothing has changed in place since this process began
        for array, version in zip(self.saved, self.saved_versions or (0,) * len(self.saved)):
            if array is not None and version_of(array) != version:
                raise RuntimeError(f"{self.op_name}.backward: an array this op saved for backward (shape "
                                   f"{array.shape}) was changed in place after the forward (version {version} is "
                                   f"now {version_of(array)}), so its gradient would come out wrong. Change a "
                                   f"clone() of it instead, or compute out of place")

    @classmethod
    def apply(cls, *inputs, **options):
        """The op on `inputs` (Tensors, arrays, numbers) -> its output Tensor, the node recorded where needed."""
        return run_forward(cls(inputs), inputs, options)


def run_forward(ctx, inputs, options):
    """ctx's forward on the inputs' arrays -> the output Tensor. When an input requires grad and ops record, ctx
    becomes the output's _ctx, with the versions of the arrays it saved (for the in-place check)."""
    out = Tensor(ctx.forward(*_input_arrays(ctx, inputs), **options))
    if _recording and any(ctx.needs_input_grad):
        out.requires_grad = True
        out._ctx = ctx
        for t in ctx.parents:
            if t is not None:
                t._used = True
        if _versions:   # while nothing has ever changed in place, every version is 0: nothing to record
            ctx.saved_versions = tuple(None if a is None else version_of(a) for a in ctx.saved)
    return out


class AccumulateGrad:
    """The node PyTorch shows in next_functions for a leaf that requires grad: where the backward walk ends, adding
    the gradient into the leaf's .grad. `variable` is the leaf."""

    next_functions = ()

    def __init__(self, variable):
        self.variable = variable

    def name(self):
        return "torch::autograd::AccumulateGrad"


def _node_of(tensor):
    """The node a gradient flows into from `tensor`, as in next_functions. A leaf keeps its AccumulateGrad, so that
    every walk meets the same node, as in PyTorch."""
    if tensor is None or not tensor.requires_grad:
        return None
    if tensor._ctx is not None:
        return tensor._ctx
    if "_grad_accumulator" not in tensor.__dict__:
        tensor._grad_accumulator = AccumulateGrad(tensor)
    return tensor._grad_accumulator


def _input_arrays(ctx, inputs):
    """What ctx's forward takes: each input's array (a Tensor's data; anything else as it is), checked for one device
    per op and one float dtype per op (see backend.py for why we raise instead of upcasting). Written as one pass, as
    it runs for every op."""
    arrays, array_type, module, first_float = [], None, None, None
    for x in inputs:
        if not isinstance(x, Tensor):
            arrays.append(x)
            continue
        data = x.data
        arrays.append(data)
        if type(data) is not array_type:   # the module is asked only when the array's type is not the first's
            if module is None:
                array_type, module = type(data), backend.xp(data)
            elif backend.xp(data) is not module:
                given = ", ".join(f"{t.shape} on {t.device}" for t in ctx.parents if t is not None)
                raise RuntimeError(f"{ctx.op_name}: inputs are on different devices ({given}); move them with "
                                   f".to(device)")
        if data.dtype.kind == "f":
            if first_float is None:
                first_float = data.dtype
            elif data.dtype != first_float:
                given = ", ".join(f"{t.dtype}{t.shape}" for t in ctx.parents if t is not None)
                raise TypeError(f"{ctx.op_name}: inputs mix float dtypes ({given}); convert one with .to(dtype) first")
    return arrays
