"""Learning-rate schedules with PyTorch's names and exact semantics (torch.optim.lr_scheduler).

    optimizer = optim.Adam(model.parameters(), lr=1e-3)
    scheduler = lr_scheduler.StepLR(optimizer, step_size=10, gamma=0.5)
    for epoch in range(epochs):
        train_one_epoch()            # optimizer.step() once per batch
        scheduler.step()             # once per epoch, after the optimizer's steps

A scheduler writes the optimizer's learning rate, optimizer.param_groups[0]["lr"]. Made with
last_epoch=-1 (the default), it records the starting lr as group["initial_lr"] (kept when a
scheduler put one there already) and in `base_lrs`, then takes its first step: `last_epoch`
becomes 0 and the lr stays as it was. The rules, computed the way PyTorch computes them (from the
current lr, so a change made by hand between steps carries on), with t = last_epoch:
    StepLR             lr * gamma when t is a multiple of step_size, else lr
    ExponentialLR      lr * gamma
    CosineAnnealingLR  eta_min + (lr - eta_min) * (1 + cos(pi t/T_max)) / (1 + cos(pi (t-1)/T_max)),
                       which follows eta_min + (initial_lr - eta_min) * (1 + cos(pi t/T_max)) / 2;
                       past T_max it climbs back (the next period), as PyTorch's does
    LambdaLR           initial_lr * lr_lambda(t)
    ReduceLROnPlateau  step(metric): lr * factor (not below min_lr) once the metric has not
                       improved for more than `patience` steps; then `cooldown` steps of rest

`state_dict()` holds plain numbers, strings and lists under PyTorch's keys (JSON-ready: the
trainer's checkpoints store it as JSON); `load_state_dict()` restores them, the settings included
(as PyTorch does), so a resumed run continues exactly. Resume in PyTorch's order: make the
optimizer, make the scheduler, then load the optimizer's state, then the scheduler's.
"""

from __future__ import annotations

import math
import numbers

from . import Optimizer

__all__ = ["LRScheduler", "StepLR", "ExponentialLR", "CosineAnnealingLR", "LambdaLR",
           "ReduceLROnPlateau"]


# ---------------------------------------------------------------------------------- checks
def _integer(owner, name, value, minimum):
    """`value` as an int >= minimum, or TypeError / ValueError naming `name`."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{owner}: {name} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{owner}: {name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _number(owner, name, value, accept=lambda v: True, expected="a number", finite=True):
    """`value` as a float that `accept`s (and is finite unless finite=False), or TypeError /
    ValueError naming `name` and what was `expected`."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{owner}: {name} must be a number, got {value!r}")
    value = float(value)
    if (finite and not math.isfinite(value)) or not accept(value):
        raise ValueError(f"{owner}: {name} must be {expected}, got {value!r}")
    return value


def _lr_list(owner, name, value, groups):
    """`value` as a list of one learning rate (a number >= 0) per parameter group."""
    if not isinstance(value, (list, tuple)) or len(value) != groups:
        raise ValueError(f"{owner}: {name} must be a list of {groups} learning rate(s), "
                         f"got {value!r}")
    return [_number(owner, f"{name}[{i}]", v, lambda v: v >= 0, "a number >= 0")
            for i, v in enumerate(value)]


# ---------------------------------------------------------------------------------- base
class LRScheduler:
    """What every schedule shares: the first step on creation, step(), get_last_lr(),
    state_dict() / load_state_dict(). A subclass gives `_next_lr` (one group's next lr) and
    names its constructor's `settings`, which state_dict() saves with the counters."""

    settings = ()
    counters = ("base_lrs", "last_epoch", "_step_count", "_last_lr")

    def __init__(self, optimizer, last_epoch=-1):
        self.optimizer = _check_optimizer(optimizer, type(self).__name__)
        owner = type(self).__name__
        last_epoch = _integer(owner, "last_epoch", last_epoch, minimum=-1)
        for index, group in enumerate(optimizer.param_groups):
            if last_epoch == -1:
                group.setdefault("initial_lr", group["lr"])
            elif "initial_lr" not in group:
                raise ValueError(f"{owner}: last_epoch={last_epoch} continues a schedule, but "
                                 f"param_groups[{index}] has no 'initial_lr'; load the "
                                 "optimizer's state first, or pass last_epoch=-1")
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        self._step_count = 0
        self._last_lr = [group["lr"] for group in optimizer.param_groups]
        self._check()
        self._is_initial = True        # the first step keeps the lr (where PyTorch's does)
        try:
            self.step()
        finally:
            self._is_initial = False

    def step(self):
        """Advance one epoch: last_epoch += 1 and the optimizer's lr becomes the schedule's."""
        self._step_count += 1
        self.last_epoch += 1
        for group, base_lr in zip(self.optimizer.param_groups, self.base_lrs):
            group["lr"] = self._next_lr(group["lr"], base_lr)
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def _next_lr(self, lr, base_lr):  # pragma: no cover - abstract
        raise NotImplementedError

    def get_last_lr(self):
        """The learning rates (one per parameter group) the last step set."""
        return list(self._last_lr)

    def _check(self):
        """Check (and make plain) every value state_dict() saves: the constructor's arguments
        and, after load_state_dict(), whatever a saved state put there."""
        owner, groups = type(self).__name__, len(self.optimizer.param_groups)
        self.base_lrs = _lr_list(owner, "base_lrs", self.base_lrs, groups)
        self._last_lr = _lr_list(owner, "_last_lr", self._last_lr, groups)
        self.last_epoch = _integer(owner, "last_epoch", self.last_epoch, minimum=-1)
        self._step_count = _integer(owner, "_step_count", self._step_count, minimum=0)

    def state_dict(self):
        """The settings and counters, as plain numbers and lists (PyTorch's keys)."""
        return {name: _plain(getattr(self, name)) for name in self.settings + self.counters}

    def load_state_dict(self, state_dict):
        """Restore a state_dict() of this kind of scheduler (refused, leaving this one as it
        was, when its keys or values do not fit)."""
        owner = type(self).__name__
        if not isinstance(state_dict, dict):
            raise TypeError(f"{owner}.load_state_dict: expected a dict, got "
                            f"{type(state_dict).__name__}")
        expected = set(self.state_dict())
        missing, unknown = sorted(expected - set(state_dict)), sorted(set(state_dict) - expected)
        if missing or unknown:
            raise ValueError(f"{owner}.load_state_dict: not a {owner} state (missing keys "
                             f"{missing}, unknown keys {unknown})")
        previous = dict(self.__dict__)
        for name in self.settings + self.counters:
            setattr(self, name, _plain(state_dict[name]))
        try:
            self._check()
        except (TypeError, ValueError):
            self.__dict__.update(previous)
            raise


def _check_optimizer(optimizer, owner):
    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"{owner}: optimizer must be an aecore.optim optimizer, got "
                        f"{type(optimizer).__name__}")
    return optimizer


def _plain(value):
    """A copy of a saved value: lists copied (so a state_dict never aliases the scheduler)."""
    return list(value) if isinstance(value, (list, tuple)) else value


# ---------------------------------------------------------------------------------- schedules
class StepLR(LRScheduler):
    """Multiply the lr by gamma every step_size epochs."""

    settings = ("step_size", "gamma")

    def __init__(self, optimizer, step_size, gamma=0.1, last_epoch=-1):
        self.step_size, self.gamma = step_size, gamma
        super().__init__(optimizer, last_epoch)

    def _check(self):
        super()._check()
        self.step_size = _integer("StepLR", "step_size", self.step_size, minimum=1)
        self.gamma = _number("StepLR", "gamma", self.gamma, lambda v: v > 0, "a number > 0")

    def _next_lr(self, lr, base_lr):
        if self.last_epoch == 0 or self.last_epoch % self.step_size != 0:
            return lr
        return lr * self.gamma


class ExponentialLR(LRScheduler):
    """Multiply the lr by gamma every epoch."""

    settings = ("gamma",)

    def __init__(self, optimizer, gamma, last_epoch=-1):
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def _check(self):
        super()._check()
        self.gamma = _number("ExponentialLR", "gamma", self.gamma, lambda v: v > 0,
                             "a number > 0")

    def _next_lr(self, lr, base_lr):
        return lr if self._is_initial else lr * self.gamma


class CosineAnnealingLR(LRScheduler):
    """Anneal the lr from initial_lr to eta_min along half a cosine over T_max epochs, in
    PyTorch's recursive form (each lr from the previous one; see the module docstring)."""

    settings = ("T_max", "eta_min")

    def __init__(self, optimizer, T_max, eta_min=0.0, last_epoch=-1):
        self.T_max, self.eta_min = T_max, eta_min
        super().__init__(optimizer, last_epoch)

    def _check(self):
        super()._check()
        self.T_max = _integer("CosineAnnealingLR", "T_max", self.T_max, minimum=1)
        self.eta_min = _number("CosineAnnealingLR", "eta_min", self.eta_min, lambda v: v >= 0,
                               "a number >= 0")

    def _next_lr(self, lr, base_lr):
        t, period, eta_min = self.last_epoch, self.T_max, self.eta_min
        if self._is_initial:
            return lr
        if (t - 1 - period) % (2 * period) == 0:      # the bottom of a period: start climbing
            return lr + (base_lr - eta_min) * (1 - math.cos(math.pi / period)) / 2
        return ((1 + math.cos(math.pi * t / period)) / (1 + math.cos(math.pi * (t - 1) / period))
                * (lr - eta_min) + eta_min)


class LambdaLR(LRScheduler):
    """lr = initial_lr * lr_lambda(epoch), for a function of the epoch (0, 1, 2, ...).

    The function is not saved by state_dict() (PyTorch saves None for a function too): give
    the same one to the scheduler that loads the state.
    """

    def __init__(self, optimizer, lr_lambda, last_epoch=-1):
        _check_optimizer(optimizer, "LambdaLR")
        if isinstance(lr_lambda, (list, tuple)):   # PyTorch's form: one function per group
            if len(lr_lambda) != len(optimizer.param_groups):
                raise ValueError(f"LambdaLR: expected {len(optimizer.param_groups)} lr_lambda "
                                 f"function(s), one per parameter group, got {len(lr_lambda)}")
            (lr_lambda,) = lr_lambda                # aecore's optimizers have one group
        if not callable(lr_lambda):
            raise TypeError(f"LambdaLR: lr_lambda must be a function of the epoch, got "
                            f"{type(lr_lambda).__name__}")
        self.lr_lambda = lr_lambda
        super().__init__(optimizer, last_epoch)

    def _next_lr(self, lr, base_lr):
        factor = self.lr_lambda(self.last_epoch)
        if isinstance(factor, bool) or not isinstance(factor, numbers.Real):
            raise TypeError(f"LambdaLR: lr_lambda({self.last_epoch}) must return a number, "
                            f"got {factor!r}")
        return base_lr * float(factor)

    def state_dict(self):
        return dict(super().state_dict(), lr_lambdas=[None])


class ReduceLROnPlateau(LRScheduler):
    """Multiply the lr by `factor` when a metric has stopped improving: step(metric) once per
    epoch (e.g. with the validation loss).

    mode "min": better means lower (a loss); "max": higher. An epoch improves on the best by
    more than `threshold`, relative (threshold_mode "rel": below best * (1 - threshold)) or
    absolute ("abs": below best - threshold). After more than `patience` epochs without
    improvement the lr becomes max(lr * factor, min_lr) (skipped when that changes it by eps or
    less), and the next `cooldown` epochs count no bad epochs.
    """

    settings = ("factor", "min_lrs", "patience", "cooldown", "eps", "mode", "threshold",
                "threshold_mode")
    counters = ("last_epoch", "_last_lr", "best", "cooldown_counter", "num_bad_epochs")

    def __init__(self, optimizer, mode="min", factor=0.1, patience=10, threshold=1e-4,
                 threshold_mode="rel", cooldown=0, min_lr=0, eps=1e-8):
        self.optimizer = _check_optimizer(optimizer, "ReduceLROnPlateau")
        groups = len(optimizer.param_groups)
        self.min_lrs = list(min_lr) if isinstance(min_lr, (list, tuple)) else [min_lr] * groups
        self.factor, self.patience, self.cooldown, self.eps = factor, patience, cooldown, eps
        self.mode, self.threshold, self.threshold_mode = mode, threshold, threshold_mode
        self.last_epoch = 0
        self._last_lr = [group["lr"] for group in optimizer.param_groups]
        self.best = math.inf if mode == "min" else -math.inf      # the worst value of the mode
        self.cooldown_counter = 0
        self.num_bad_epochs = 0
        self._check()

    def _check(self):
        owner, groups = "ReduceLROnPlateau", len(self.optimizer.param_groups)
        if self.mode not in ("min", "max"):
            raise ValueError(f"{owner}: mode must be 'min' or 'max', got {self.mode!r}")
        if self.threshold_mode not in ("rel", "abs"):
            raise ValueError(f"{owner}: threshold_mode must be 'rel' or 'abs', got "
                             f"{self.threshold_mode!r}")
        self.factor = _number(owner, "factor", self.factor, lambda v: 0 <= v < 1,
                              "a number in [0, 1)")
        self.patience = _integer(owner, "patience", self.patience, minimum=0)
        self.cooldown = _integer(owner, "cooldown", self.cooldown, minimum=0)
        self.threshold = _number(owner, "threshold", self.threshold, lambda v: v >= 0,
                                 "a number >= 0")
        self.eps = _number(owner, "eps", self.eps, lambda v: v >= 0, "a number >= 0")
        self.min_lrs = _lr_list(owner, "min_lr", self.min_lrs, groups)
        self._last_lr = _lr_list(owner, "_last_lr", self._last_lr, groups)
        self.last_epoch = _integer(owner, "last_epoch", self.last_epoch, minimum=0)
        self.best = _number(owner, "best", self.best, lambda v: not math.isnan(v),
                            "a number (infinite before the first step)", finite=False)
        self.cooldown_counter = _integer(owner, "cooldown_counter", self.cooldown_counter, 0)
        self.num_bad_epochs = _integer(owner, "num_bad_epochs", self.num_bad_epochs, 0)

    def step(self, metrics):
        """One epoch's metric (a number, or a one-element Tensor / NumPy scalar)."""
        current = metrics.item() if hasattr(metrics, "item") else metrics
        if isinstance(current, bool) or not isinstance(current, numbers.Real):
            raise TypeError(f"ReduceLROnPlateau.step: metrics must be a number, got {metrics!r}")
        current = float(current)
        self.last_epoch += 1
        if self._is_better(current):
            self.best, self.num_bad_epochs = current, 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0            # bad epochs during the cooldown do not count
        if self.num_bad_epochs > self.patience:
            self._reduce_lr()
            self.cooldown_counter, self.num_bad_epochs = self.cooldown, 0
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def _is_better(self, value):
        if self.mode == "min":
            bar = self.best * (1 - self.threshold) if self.threshold_mode == "rel" else \
                self.best - self.threshold
            return value < bar
        bar = self.best * (1 + self.threshold) if self.threshold_mode == "rel" else \
            self.best + self.threshold
        return value > bar

    def _reduce_lr(self):
        for group, min_lr in zip(self.optimizer.param_groups, self.min_lrs):
            old_lr = float(group["lr"])
            new_lr = max(old_lr * self.factor, min_lr)
            if old_lr - new_lr > self.eps:
                group["lr"] = new_lr

    def load_state_dict(self, state_dict):
        """As LRScheduler's; a `best` of None (what JSON makes of an infinity: no metric seen
        yet) is read back as the worst value of the saved mode."""
        if isinstance(state_dict, dict) and "best" in state_dict and state_dict["best"] is None:
            worst = -math.inf if state_dict.get("mode") == "max" else math.inf
            state_dict = dict(state_dict, best=worst)
        super().load_state_dict(state_dict)
