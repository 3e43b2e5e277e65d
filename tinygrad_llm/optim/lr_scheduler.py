"""Learning-rate schedulers, as torch.optim.lr_scheduler (reached as `optim.lr_scheduler`, the way PyTorch spells it).

A scheduler sets `group["lr"]` of every parameter group of an optimizer, once per step, from the group's initial
learning rate (`base_lr`) and the number of steps taken (`last_epoch`). Call it after the optimizer, as in PyTorch:

    optimizer = optim.AdamW(model.parameters(), lr=1e-3)
    warmup = lr_scheduler.LinearLR(optimizer, start_factor=0.01, total_iters=100)
    cosine = lr_scheduler.CosineAnnealingLR(optimizer, T_max=1900, eta_min=1e-4)
    scheduler = lr_scheduler.SequentialLR(optimizer, [warmup, cosine], milestones=[100])
    for step in range(2000):
        loss = ...; loss.backward(); optimizer.step(); optimizer.zero_grad()
        scheduler.step()                          # the learning rate of the next step

Creating a scheduler already sets the learning rate of step 0. PyTorch computes most schedules recursively (each
learning rate from the previous one); here each is a closed formula of the step, which gives the same numbers
(within 1e-12 relative: tests/test_optim.py follows torch for 3,000 steps) and reads as the formula it
is. One scheduler drives an optimizer at a time; SequentialLR hands it from one to the next.
"""
import bisect
import math


class LRScheduler:
    """Base class. A subclass defines `lr(base_lr, epoch, group_index)`: the learning rate at step `epoch`.

    base_lrs are the groups' "initial_lr" (written into each group when it has none, as PyTorch does, so that a
    second scheduler, or one rebuilt on resume, starts from the same base). last_epoch=-1 starts a new schedule;
    a value >= 0 resumes after that step (the groups must then hold "initial_lr", e.g. from the optimizer's
    state_dict)."""

    def __init__(self, optimizer, last_epoch=-1):
        name = type(self).__name__
        if not hasattr(optimizer, "param_groups"):
            raise TypeError(f"{name}: expected an optimizer (with param_groups), got {type(optimizer).__name__}")
        if not isinstance(last_epoch, int) or last_epoch < -1:
            raise ValueError(f"{name}: last_epoch must be an integer >= -1, got {last_epoch!r}")
        for i, group in enumerate(optimizer.param_groups):
            if last_epoch == -1:
                group.setdefault("initial_lr", group["lr"])
            elif "initial_lr" not in group:
                raise KeyError(f"{name}: resuming with last_epoch={last_epoch}, but parameter group {i} has no "
                               f"'initial_lr'; load the optimizer's state_dict before creating the scheduler")
        self.optimizer = optimizer
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self._set_epoch(last_epoch + 1)

    def lr(self, base_lr, epoch, group_index):
        raise NotImplementedError(f"{type(self).__name__} must define lr(base_lr, epoch, group_index)")

    def _set_epoch(self, epoch):
        """Write the learning rates of step `epoch` into the optimizer."""
        self.last_epoch = epoch
        self._last_lr = [self.lr(base_lr, epoch, i) for i, base_lr in enumerate(self.base_lrs)]
        for group, lr in zip(self.optimizer.param_groups, self._last_lr):
            group["lr"] = lr

    def step(self):
        """Move to the next step's learning rate (call after optimizer.step(), or the schedule's first learning
        rate is skipped)."""
        self._set_epoch(self.last_epoch + 1)

    def get_last_lr(self):
        """The learning rate of each group, as the scheduler last set it."""
        return list(self._last_lr)

    # what state_dict leaves out: objects, not numbers (the scheduler is rebuilt with them before loading)
    _not_saved = ("optimizer",)

    def state_dict(self):
        """The step reached, the base learning rates and the settings: plain numbers and lists. Save it with the
        optimizer's state_dict (which holds the learning rates themselves)."""
        return {key: value for key, value in vars(self).items() if key not in self._not_saved}

    def load_state_dict(self, state_dict):
        """Restore a state_dict() of a scheduler of the same kind."""
        expected = set(vars(self)) - set(self._not_saved)
        if set(state_dict) != expected:
            raise KeyError(f"{type(self).__name__}.load_state_dict: keys {sorted(state_dict)} do not match "
                           f"{sorted(expected)} (was it saved from another kind of scheduler?)")
        vars(self).update(state_dict)


class LambdaLR(LRScheduler):
    """lr = base_lr * lr_lambda(epoch); one function for every group, or a list of one per group."""

    _not_saved = ("optimizer", "lr_lambdas")

    def __init__(self, optimizer, lr_lambda, last_epoch=-1):
        n_groups = len(optimizer.param_groups)
        self.lr_lambdas = list(lr_lambda) if isinstance(lr_lambda, (list, tuple)) else [lr_lambda] * n_groups
        if len(self.lr_lambdas) != n_groups:
            raise ValueError(f"LambdaLR: got {len(self.lr_lambdas)} lr_lambdas for {n_groups} parameter groups")
        if not all(callable(f) for f in self.lr_lambdas):
            raise TypeError(f"LambdaLR: lr_lambda must be a function of the step (or a list of them), got "
                            f"{lr_lambda!r}")
        super().__init__(optimizer, last_epoch)

    def lr(self, base_lr, epoch, group_index):
        return base_lr * self.lr_lambdas[group_index](epoch)


class LinearLR(LRScheduler):
    """lr = base_lr * factor, the factor going linearly from start_factor (step 0) to end_factor (step total_iters),
    then staying there: the usual warmup, LinearLR(optimizer, start_factor=0.01, total_iters=warmup_steps)."""

    def __init__(self, optimizer, start_factor=1.0 / 3, end_factor=1.0, total_iters=5, last_epoch=-1):
        if not 0 < start_factor <= 1:
            raise ValueError(f"LinearLR: start_factor must be in (0, 1], got {start_factor}")
        if not 0 <= end_factor <= 1:
            raise ValueError(f"LinearLR: end_factor must be in [0, 1], got {end_factor}")
        if not isinstance(total_iters, int) or total_iters < 1:
            raise ValueError(f"LinearLR: total_iters must be an integer >= 1, got {total_iters!r}")
        self.start_factor, self.end_factor, self.total_iters = start_factor, end_factor, total_iters
        super().__init__(optimizer, last_epoch)

    def lr(self, base_lr, epoch, group_index):
        fraction = min(epoch, self.total_iters) / self.total_iters
        return base_lr * (self.start_factor + (self.end_factor - self.start_factor) * fraction)


class CosineAnnealingLR(LRScheduler):
    """lr = eta_min + (base_lr - eta_min) * (1 + cos(pi * epoch / T_max)) / 2: half a cosine from base_lr down to
    eta_min over T_max steps. Past T_max the cosine goes on, back up towards base_lr, as PyTorch's does: make
    T_max the length of the run (or hand over to another scheduler with SequentialLR)."""

    def __init__(self, optimizer, T_max, eta_min=0.0, last_epoch=-1):
        if not isinstance(T_max, int) or T_max < 1:
            raise ValueError(f"CosineAnnealingLR: T_max must be an integer >= 1, got {T_max!r}")
        if eta_min < 0:
            raise ValueError(f"CosineAnnealingLR: eta_min must be >= 0, got {eta_min}")
        self.T_max, self.eta_min = T_max, eta_min
        super().__init__(optimizer, last_epoch)

    def lr(self, base_lr, epoch, group_index):
        return self.eta_min + (base_lr - self.eta_min) * (1 + math.cos(math.pi * epoch / self.T_max)) / 2


class SequentialLR(LRScheduler):
    """The schedulers one after another: schedulers[0] until step milestones[0], then schedulers[1] from its own
    step 0, and so on. Warmup then cosine: SequentialLR(optimizer, [LinearLR(...), CosineAnnealingLR(...)],
    milestones=[warmup_steps]). Each scheduler is a closed formula of its step, so only SequentialLR's own step is
    state; the schedulers it holds are rebuilt, with their settings, before load_state_dict."""

    _not_saved = ("optimizer", "_schedulers")

    def __init__(self, optimizer, schedulers, milestones, last_epoch=-1):
        schedulers, milestones = list(schedulers), list(milestones)
        if not schedulers:
            raise ValueError("SequentialLR: got no schedulers")
        for i, scheduler in enumerate(schedulers):
            if getattr(scheduler, "optimizer", None) is not optimizer:
                raise ValueError(f"SequentialLR: scheduler {i} ({type(scheduler).__name__}) belongs to another "
                                 f"optimizer")
        if len(milestones) != len(schedulers) - 1:
            raise ValueError(f"SequentialLR: {len(schedulers)} schedulers need {len(schedulers) - 1} milestone(s), "
                             f"got {milestones}")
        if any(not a < b for a, b in zip([0] + milestones, milestones)):
            raise ValueError(f"SequentialLR: milestones must be increasing positive steps, got {milestones}")
        self._schedulers, self._milestones = schedulers, milestones
        super().__init__(optimizer, last_epoch)

    def lr(self, base_lr, epoch, group_index):
        """The learning rate of the scheduler in charge at `epoch`, at its own step: `epoch` less its start."""
        i = bisect.bisect_right(self._milestones, epoch)
        start = self._milestones[i - 1] if i > 0 else 0
        return self._schedulers[i].lr(base_lr, epoch - start, group_index)
