"""Optimizers (SGD, Adam, AdamW) and nanoGPT's learning-rate schedule (warmup_cosine_lr, set_lr); PyTorch's
schedulers are in optim/lr_scheduler.py, gradient clipping in nn/utils.py (torch.nn.utils.clip_grad_norm_).

An optimizer holds the parameters (leaf Tensors with requires_grad=True, or nn.Parameters, which may be frozen)
and, after `loss.backward()` has filled their `.grad`, `step()` moves each parameter a little against its gradient.
Parameters are updated IN PLACE (`p.data -= ...`), so every reference a model keeps to a parameter's array stays
valid.

The update rules follow torch.optim exactly, down to the order of the floating-point operations, so that in
float64 our parameters agree with PyTorch's to about 1e-10 relative after many steps (tests/test_optim.py).

Parameter groups work as in PyTorch: pass a list of dicts, each with "params" and any options that differ from
the defaults, e.g. no weight decay for biases and LayerNorm gains:

    AdamW([{"params": matrices, "weight_decay": 0.1}, {"params": vectors, "weight_decay": 0.0}], lr=3e-4)
"""
import functools
import math
import numbers

import numpy as np

from ..engine import backend, threads
from ..engine.cuda import adamw
from ..engine.dispatch import FusedOp, run
from ..engine.tensor import Tensor, count_in_place_change
from ..nn.module import Parameter, clear_grad, typename

# a key that parameter groups may hold besides the optimizer's options: schedulers write it (PyTorch's name)
SCHEDULER_KEYS = {"initial_lr"}
# options that PyTorch's optimizers gained over its versions and our first checkpoints lack, with the value a saved
# parameter group without one is given (PyTorch's __setstate__ fills them in the same way), so older state dicts load
ADDED_OPTIONS = {"amsgrad": False, "maximize": False, "foreach": None, "capturable": False, "differentiable": False,
                 "fused": None, "decoupled_weight_decay": False}
# the options that are flags: True or False, or also None for the two that choose PyTorch's implementation
FLAGS = {"nesterov", "amsgrad", "maximize", "capturable", "differentiable", "decoupled_weight_decay"}
IMPLEMENTATION_FLAGS = {"foreach", "fused"}


class Optimizer:
    """Base class: parameter groups, the step loop, zero_grad and saving/restoring the state.

    `params` is an iterable of Tensors, or a list of dicts (parameter groups) with key "params" plus options.
    `defaults` maps every option this optimizer knows to its default value; a group gets the defaults for the
    options it does not set. `self.param_groups` is the list of groups; change `group["lr"]` between steps to
    schedule the learning rate (see `set_lr`). `self.state` maps id(parameter) to that parameter's state
    (moment arrays, step count), created on its first update.

    PyTorch's keywords that choose only its implementation are accepted and kept in each group, as PyTorch keeps
    them: foreach and fused (one kernel per op over all parameters, or one fused kernel) change no number; here the
    step is one NumPy pass per parameter on the CPU, and Adam's one fused kernel (engine/cuda/adamw.py) for float32
    on the GPU, whatever they say (both True is refused, as in PyTorch). The keywords that would change what a step
    means are implemented (maximize, amsgrad) or refused (differentiable=True, capturable=True).

    A subclass implements `_update(p, g, state, group)` (one parameter's update) and may extend
    `_check_options(group, where)`.
    """

    def __init__(self, params, defaults):
        name = type(self).__name__
        if isinstance(params, Tensor):
            raise TypeError(f"{name}: params must be an iterable of Tensors or of dicts, got a single Tensor; "
                            f"wrap it in a list")
        params = list(params)
        if not params:
            raise ValueError(f"{name}: got an empty parameter list")
        if all(isinstance(p, dict) for p in params):
            groups = params
        elif any(isinstance(p, dict) for p in params):
            raise TypeError(f"{name}: params mixes Tensors and dicts; pass either Tensors or parameter groups")
        else:
            groups = [{"params": params}]
        self.defaults = dict(defaults)
        self.param_groups = []
        self.state = {}
        for given in groups:
            self._add_group(given, len(groups))

    def add_param_group(self, param_group):
        """Add a parameter group (a dict with "params" and any options; the rest from the defaults), as PyTorch's:
        to train more parameters from some step on, such as layers unfrozen while fine-tuning."""
        if not isinstance(param_group, dict):
            raise TypeError(f"{type(self).__name__}.add_param_group: param_group must be a dict, got "
                            f"{typename(param_group)}")
        self._add_group(param_group, len(self.param_groups) + 1)

    def _add_group(self, given, n_groups):
        """Check parameter group `given` and append it; errors name it as group i of n_groups."""
        name, i = type(self).__name__, len(self.param_groups)
        if "params" not in given:
            raise ValueError(f"{name}: parameter group {i} has no 'params' key")
        unknown = sorted(set(given) - set(self.defaults) - {"params"} - SCHEDULER_KEYS)
        if unknown:
            raise ValueError(f"{name}: parameter group {i} has unknown option(s) {unknown}; "
                             f"known options are {sorted(self.defaults)}")
        group_params = given["params"]
        if isinstance(group_params, set):
            raise TypeError(f"{name}: parameter group {i}: optimizer parameters need to be organized in ordered "
                            f"collections, but the ordering of tensors in sets will change between runs; use a list")
        group_params = [group_params] if isinstance(group_params, Tensor) else list(group_params)
        if not group_params:
            raise ValueError(f"{name}: parameter group {i} has an empty parameter list")
        seen = {id(p) for group in self.param_groups for p in group["params"]}
        for j, p in enumerate(group_params):
            where = f"{name}: parameter {j} of group {i}"
            if not isinstance(p, Tensor):
                raise TypeError(f"{where} is a {type(p).__name__}, not a Tensor")
            if not p.requires_grad and not isinstance(p, Parameter):  # a frozen Parameter waits, unchanged
                raise ValueError(f"{where} (shape {p.shape}) does not require grad, so it can never be "
                                 f"updated; create it with requires_grad=True (or as an nn.Parameter) or "
                                 f"leave it out")
            if not p.is_leaf:
                raise ValueError(f"{where} (shape {p.shape}) is not a leaf: it was computed from other "
                                 f"tensors; optimize the leaves it came from")
            if id(p) in seen:
                raise ValueError(f"{where} (shape {p.shape}) appears more than once in the parameters")
            seen.add(id(p))
        # PyTorch's order: the group's own keys as given, then the defaults it lacks (a state_dict shows it)
        group = {**given, "params": group_params, **{k: v for k, v in self.defaults.items() if k not in given}}
        self._check_options(group, self._group_name(i, n_groups))
        self.param_groups.append(group)

    def _group_name(self, i, n_groups):
        """How errors name parameter group i of n_groups: by the optimizer alone when it has one group."""
        name = type(self).__name__
        return name if n_groups == 1 else f"{name}: parameter group {i}"

    def _check_options(self, group, where):
        """Raise a ValueError naming `where` (the optimizer, the group) and the option when a value is invalid."""
        check_hyperparameter(where, "learning rate lr", group["lr"])
        check_hyperparameter(where, "weight_decay", group["weight_decay"])
        for flag in (FLAGS | IMPLEMENTATION_FLAGS) & set(group):
            allowed = (True, False, None) if flag in IMPLEMENTATION_FLAGS else (True, False)
            if not any(group[flag] is value for value in allowed):
                raise ValueError(f"{where}: {flag} must be one of {', '.join(map(str, allowed))}, got "
                                 f"{group[flag]!r}")
        for flag, what in (("differentiable", "a step that autograd can differentiate"),
                           ("capturable", "CUDA graph capture")):
            if group.get(flag):
                raise NotImplementedError(f"{where}: {flag}=True ({what}) is not supported")
        if group.get("foreach") and group.get("fused"):
            raise RuntimeError(f"{where}: `fused` and `foreach` cannot be `True` together.")

    def _params(self):
        """All parameters, flattened over the groups in order (their position is their index in state_dict)."""
        return [p for group in self.param_groups for p in group["params"]]

    def zero_grad(self, set_to_none=True):
        """Forget the gradients (backward adds onto `.grad`, so clear it before each new backward): `.grad = None`
        (PyTorch 2's default), or with set_to_none=False each existing gradient filled with zeros in place."""
        for p in self._params():
            clear_grad(p, set_to_none)

    def step(self):
        """Update every parameter that has a gradient; parameters whose .grad is None are left untouched. Each
        update is counted as an in-place change of the parameter, as `p -= ...` is: a graph built before the
        step and walked after it (a backward that uses the old weights) is refused, naming its op, instead of
        giving gradients of numbers that are no longer there. The options are checked again first, for every
        group, so that a learning rate set to NaN between steps (a scheduler, group["lr"] = ...) moves nothing."""
        for i, group in enumerate(self.param_groups):
            self._check_options(group, self._group_name(i, len(self.param_groups)))
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                self._update(p, p.grad.data, self.state.setdefault(id(p), {}), group)
                count_in_place_change(p.data)

    def _update(self, p, g, state, group):
        raise NotImplementedError(f"{type(self).__name__} must implement _update")

    def state_dict(self):
        """A snapshot to save with a checkpoint: {"state": {index: {...}}, "param_groups": [{...}]}.

        Per-parameter state is keyed by the parameter's position (flattened over groups, in order); its arrays
        are tensors, as PyTorch's (so torch.save writes them and torch.load's weights_only reads them back), on the
        parameter's device, but copies (so later steps do not change the snapshot; PyTorch's are the live ones);
        "step" a float32 0-d tensor on the CPU, as PyTorch's Adam keeps it. Each group stores its options and, under
        "params", the positions of its parameters.
        """
        params = self._params()
        state = {}
        for index, p in enumerate(params):
            if id(p) not in self.state:
                continue
            state[index] = {key: Tensor(np.array(value, np.float32)) if key == "step" else Tensor(value.copy())
                            for key, value in self.state[id(p)].items()}
        groups, start = [], 0
        for group in self.param_groups:
            options = {key: value for key, value in group.items() if key != "params"}
            groups.append({**options, "params": list(range(start, start + len(group["params"])))})
            start += len(group["params"])
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict):
        """Restore a `state_dict()` (from an optimizer built over parameters of the same shapes, in the same
        order and groups). Arrays are copied to each parameter's device and dtype. Everything is checked before
        anything changes, so a mismatch leaves this optimizer as it was."""
        name = type(self).__name__
        params = self._params()
        saved_groups = state_dict["param_groups"]
        n_saved = sum(len(group["params"]) for group in saved_groups)
        if n_saved != len(params) or len(saved_groups) != len(self.param_groups):
            raise ValueError(f"{name}.load_state_dict: the state_dict holds {n_saved} parameters in "
                             f"{len(saved_groups)} group(s), this optimizer has {len(params)} parameters in "
                             f"{len(self.param_groups)} group(s)")
        new_groups = []
        for i, (saved, group) in enumerate(zip(saved_groups, self.param_groups)):
            if len(saved["params"]) != len(group["params"]):
                raise ValueError(f"{name}.load_state_dict: group {i} has {len(group['params'])} parameters, "
                                 f"the state_dict's group {i} has {len(saved['params'])}")
            unknown = sorted(set(saved) - set(self.defaults) - {"params"} - SCHEDULER_KEYS)
            if unknown:
                raise ValueError(f"{name}.load_state_dict: group {i} of the state_dict has option(s) {unknown} "
                                 f"that {name} does not know (was it saved from another optimizer?)")
            missing = sorted(set(self.defaults) - set(saved) - set(ADDED_OPTIONS))
            if missing:
                raise ValueError(f"{name}.load_state_dict: group {i} of the state_dict lacks option(s) {missing}")
            added = {key: value for key, value in ADDED_OPTIONS.items() if key in self.defaults}
            new_group = {**group, **added, **saved, "params": group["params"]}
            self._check_options(new_group, f"{name}.load_state_dict: group {i} of the state_dict")
            new_groups.append(new_group)

        new_state = {}
        for index, saved in state_dict["state"].items():
            index = int(index)
            if not 0 <= index < len(params):
                raise ValueError(f"{name}.load_state_dict: state for parameter {index}, "
                                 f"but there are only {len(params)} parameters")
            p = params[index]
            entry = {}
            for key, value in saved.items():
                if key == "step":
                    entry[key] = int(value)
                    continue
                if tuple(value.shape) != p.shape:
                    raise ValueError(f"{name}.load_state_dict: state {key!r} of parameter {index} has shape "
                                     f"{tuple(value.shape)}, the parameter has shape {p.shape}")
                entry[key] = backend.to_device(np.asarray(value), backend.device_of(p.data)).astype(p.dtype)
            new_state[id(p)] = entry
        self.param_groups = new_groups
        self.state = new_state


class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum, as torch.optim.SGD.

    With g the gradient, for each step:
        g = g + weight_decay * p                      (L2 penalty weight_decay/2 * |p|^2 added to the loss)
        b = g on the first step, else b = momentum * b + (1 - dampening) * g
        g = g + momentum * b  if nesterov  else  b    (nesterov: look one momentum step ahead)
        p = p - lr * g
    Momentum b is a running sum of past gradients: it speeds up along directions the gradient keeps pointing to
    and damps directions where it oscillates. maximize=True steps up the gradient (g = -g first), as PyTorch's.
    """

    def __init__(self, params, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False, *,
                 maximize=False, foreach=None, differentiable=False, fused=None):
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay, nesterov=nesterov,
                        maximize=maximize, foreach=foreach, differentiable=differentiable, fused=fused)
        super().__init__(params, defaults)

    def _check_options(self, group, where):
        super()._check_options(group, where)
        check_hyperparameter(where, "momentum", group["momentum"])
        check_hyperparameter(where, "dampening", group["dampening"], low=None)  # any finite value, as in PyTorch
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError(f"{where}: nesterov momentum needs momentum > 0 and dampening = 0")

    def _update(self, p, g, state, group):
        lr, momentum, wd = group["lr"], group["momentum"], group["weight_decay"]
        if group["maximize"]:
            g = -g
        if wd != 0:
            g = g + wd * p.data  # a new array: p.grad itself is left as backward made it
        if momentum != 0:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = g.copy()
            else:
                buf *= momentum
                buf += (1 - group["dampening"]) * g
            g = g + momentum * buf if group["nesterov"] else buf
        p.data -= lr * g


def _adam_step_arrays(p, g, state, group):
    """Adam's update of p (in place) and of its moments in `state`, in array code (NumPy, or CuPy on the GPU); a
    large parameter's rows split over threads (engine/threads.py), each element updated by the same passes."""
    max_v = state["max_exp_avg_sq"] if group["amsgrad"] else None
    # every pass writes into m, v, p or one scratch array: a temporary per product would cost as much as the
    # arithmetic (docs/adamw.md)
    scratch = backend.xp(p.data).empty_like(p.data)
    threads.for_row_blocks(functools.partial(_adam_update, t=state["step"], group=group),
                           p.data, g, state["exp_avg"], state["exp_avg_sq"], max_v, scratch)


def _adam_update(p, g, m, v, max_v, scratch, t, group):
    """_adam_step_arrays' passes at step t over (a block of rows of) p, g, the moments m and v, the largest v so far
    (amsgrad; else None) and a scratch array, in torch.optim's order of operations (docs/adamw.md)."""
    xp = backend.xp(p)
    lr, (b1, b2), eps, wd = group["lr"], group["betas"], group["eps"], group["weight_decay"]
    if wd != 0:
        if group["decoupled_weight_decay"]:
            p *= 1 - lr * wd
        else:
            g = g + wd * p  # a new array: p.grad itself is left as backward made it
    # m = b1 m + (1 - b1) g,  v = b2 v + (1 - b2) g²: the moments, updated in place
    m *= b1
    m += xp.multiply(g, 1 - b1, out=scratch)
    v *= b2
    xp.multiply(g, 1 - b2, out=scratch)
    v += xp.multiply(scratch, g, out=scratch)
    bias_correction1 = 1 - b1 ** t
    bias_correction2 = 1 - b2 ** t
    if max_v is not None:  # amsgrad: the largest v so far stands for v below
        v = xp.maximum(max_v, v, out=max_v)
    # p -= lr/(1 - b1^t) · (m / (sqrt(v)/sqrt(1 - b2^t) + eps)), torch.optim's order of operations
    step_size = lr / bias_correction1
    denom = xp.sqrt(v, out=scratch)
    denom /= math.sqrt(bias_correction2)
    denom += eps
    update = xp.divide(m, denom, out=scratch)
    update *= step_size
    p -= update


def _adam_step_kernel(p, g, state, group):
    """The same update in one launch of kernels/adamw.cu (cuda/adamw.py)."""
    b1, b2 = group["betas"]
    adamw.step(p.data, g, state["exp_avg"], state["exp_avg_sq"], lr=group["lr"], beta1=b1, beta2=b2, eps=group["eps"],
               weight_decay=group["weight_decay"], step=state["step"], decoupled=group["decoupled_weight_decay"])


# one parameter's Adam or AdamW step (dispatch.py); no composed twin: the array code is the reference
ADAM_STEP = FusedOp("adam_step", function=_adam_step_arrays, composed=None, kernel=_adam_step_kernel,
                    supports=adamw.supports)


class Adam(Optimizer):
    """Adam (Kingma & Ba, 2015), as torch.optim.Adam.

    Adam keeps, per parameter, running averages of the gradient (m, first moment) and of its square
    (v, second moment), and steps by m / sqrt(v): each coordinate moves about lr, whatever its gradient scale.
    For step t = 1, 2, ...:
        g = g + weight_decay * p                      (L2 penalty, as in torch.optim.Adam)
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        p = p - lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
    Bias correction: m and v start at 0, so early on they are too small by the factors (1 - b1^t) and
    (1 - b2^t); dividing by those factors makes them unbiased estimates. eps keeps the division finite.
    amsgrad=True divides by the largest v so far instead (its state "max_exp_avg_sq"), so that no coordinate's step
    grows when its gradients shrink; maximize=True steps up the gradient; decoupled_weight_decay=True is AdamW.
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False, *,
                 foreach=None, maximize=False, capturable=False, differentiable=False, fused=None,
                 decoupled_weight_decay=False):
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                                      maximize=maximize, foreach=foreach, capturable=capturable,
                                      differentiable=differentiable, fused=fused,
                                      decoupled_weight_decay=decoupled_weight_decay))

    def _check_options(self, group, where):
        super()._check_options(group, where)
        betas = group["betas"]
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ValueError(f"{where}: betas must be a pair (beta1, beta2), got {betas!r}")
        for index, beta in enumerate(betas):
            check_hyperparameter(where, f"betas[{index}]", beta, high=1)
        check_hyperparameter(where, "eps", group["eps"])

    def _update(self, p, g, state, group):
        xp = backend.xp(p.data)
        if not state:
            state["step"] = 0
            state["exp_avg"] = xp.zeros_like(p.data)     # m
            state["exp_avg_sq"] = xp.zeros_like(p.data)  # v
            if group["amsgrad"]:
                state["max_exp_avg_sq"] = xp.zeros_like(p.data)
        state["step"] += 1
        if group["maximize"]:
            g = -g
        run(ADAM_STEP, p, g, state, group)


class AdamW(Adam):
    """AdamW (Loshchilov & Hutter, 2019), as torch.optim.AdamW: Adam with decoupled weight decay.

    Before the Adam update (with weight_decay NOT added to the gradient):
        p = p * (1 - lr * weight_decay)
    In Adam the L2 term weight_decay * p passes through the division by sqrt(v), so weights with large gradients
    are barely decayed. Decoupling shrinks every weight by the same fraction per step, which regularizes better
    and is the standard choice for training transformers.
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01, amsgrad=False, *,
                 maximize=False, foreach=None, capturable=False, differentiable=False, fused=None):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, foreach=foreach, maximize=maximize,
                         capturable=capturable, differentiable=differentiable, fused=fused,
                         decoupled_weight_decay=True)

    def load_state_dict(self, state_dict):
        """As Optimizer's; every group stays decoupled whatever was saved, as in PyTorch's AdamW."""
        super().load_state_dict(state_dict)
        for group in self.param_groups:
            group["decoupled_weight_decay"] = True


def default_options(optimizer_class):
    """{option: default value} for a parameter group of `optimizer_class`: the options every group of it holds."""
    return optimizer_class([Parameter(np.zeros(1, np.float32))]).defaults


def check_hyperparameter(where, option, value, low=0, high=None):
    """Refuse what torch.optim refuses (a negative learning rate, a beta >= 1, ...) and NaN and infinity too, which
    torch lets through for some options and which would turn every weight into NaN without a word. The value must
    be a finite real number >= low (None: no lower bound) and < high (None: no upper bound; only with a low)."""
    if (isinstance(value, numbers.Real) and math.isfinite(value) and (low is None or value >= low)
            and (high is None or value < high)):
        return
    wanted = "a finite number"
    if low is not None:
        wanted += f" >= {low}"
    if high is not None:
        wanted += f" and < {high}"
    raise ValueError(f"{where}: {option} must be {wanted}, got {value!r}")


def warmup_cosine_lr(step, *, max_lr, min_lr, warmup_steps, decay_steps):
    """The learning rate at `step` (0-based) for linear warmup then cosine decay, as in nanoGPT.

    step < warmup_steps:   max_lr * (step + 1) / (warmup_steps + 1)   (small steps while Adam's v is unsettled)
    step > decay_steps:    min_lr
    otherwise:             ratio = (step - warmup_steps) / (decay_steps - warmup_steps), from 0 to 1
                           min_lr + 0.5 * (1 + cos(pi * ratio)) * (max_lr - min_lr)   (max_lr down to min_lr)
    """
    if step < 0:
        raise ValueError(f"warmup_cosine_lr: step must be >= 0, got {step}")
    if not 0 <= min_lr <= max_lr:
        raise ValueError(f"warmup_cosine_lr: need 0 <= min_lr <= max_lr, got min_lr={min_lr}, max_lr={max_lr}")
    if warmup_steps < 0:
        raise ValueError(f"warmup_cosine_lr: warmup_steps must be >= 0, got {warmup_steps}")
    if decay_steps <= warmup_steps:
        raise ValueError(f"warmup_cosine_lr: decay_steps ({decay_steps}) must be greater than "
                         f"warmup_steps ({warmup_steps})")
    if step < warmup_steps:
        return max_lr * (step + 1) / (warmup_steps + 1)
    if step > decay_steps:
        return min_lr
    ratio = (step - warmup_steps) / (decay_steps - warmup_steps)
    coeff = 0.5 * (1.0 + math.cos(math.pi * ratio))
    return min_lr + coeff * (max_lr - min_lr)


def set_lr(optimizer, lr):
    """Set the learning rate of every parameter group (call before `step()`, e.g. with warmup_cosine_lr)."""
    check_hyperparameter("set_lr", "learning rate lr", lr)
    for group in optimizer.param_groups:
        group["lr"] = lr
