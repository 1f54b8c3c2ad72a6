"""A learning-rate schedule named in one line of text, as `aecore train --lr-schedule SPEC` and
config["lr_schedule"] take it. Each form makes one aecore.optim.lr_scheduler class; its numbers
are the arguments in order, and those left out take PyTorch's defaults:

    step:STEP_SIZE[:GAMMA]        StepLR(step_size, gamma=0.1)                 step:10:0.5
    exp:GAMMA                     ExponentialLR(gamma)                         exp:0.95
    cosine[:T_MAX[:ETA_MIN]]      CosineAnnealingLR(T_max, eta_min=0)          cosine:20:1e-5
                                  (T_MAX left out: the `epochs` given)         cosine
    plateau[:PATIENCE[:FACTOR]]   ReduceLROnPlateau(patience=10, factor=0.1)   plateau:3:0.5
                                  (step(metric) with a loss to minimize)
"""

from __future__ import annotations

from typing import NamedTuple

from . import lr_scheduler

__all__ = ["SCHEDULE_FORMS", "parse_schedule", "make_scheduler", "check_schedule"]


class _Form(NamedTuple):
    scheduler: type
    fields: tuple      # (NAME in the text, the scheduler's argument, int or float) in order
    required: int      # how many of the fields must be given

    def usage(self, kind):
        """'step:STEP_SIZE[:GAMMA]' from the fields."""
        names = [name for name, _, _ in self.fields]
        optional = "".join(f"[:{name}" for name in names[self.required:])
        return ":".join([kind] + names[:self.required]) + optional + "]" * (
            len(names) - self.required)


_FORMS = {
    "step": _Form(lr_scheduler.StepLR, (("STEP_SIZE", "step_size", int),
                                        ("GAMMA", "gamma", float)), 1),
    "exp": _Form(lr_scheduler.ExponentialLR, (("GAMMA", "gamma", float),), 1),
    "cosine": _Form(lr_scheduler.CosineAnnealingLR, (("T_MAX", "T_max", int),
                                                     ("ETA_MIN", "eta_min", float)), 0),
    "plateau": _Form(lr_scheduler.ReduceLROnPlateau, (("PATIENCE", "patience", int),
                                                      ("FACTOR", "factor", float)), 0),
}

# The accepted forms, for help texts and error messages.
SCHEDULE_FORMS = tuple(form.usage(kind) for kind, form in _FORMS.items())
_ACCEPTED = f"one of {', '.join(SCHEDULE_FORMS)} (e.g. step:10:0.5, cosine)"


def parse_schedule(text):
    """'step:10:0.5' -> (StepLR, {"step_size": 10, "gamma": 0.5}); ValueError (TypeError for a
    text that is not a str) naming the accepted forms otherwise. Ranges are the scheduler's to
    check (make_scheduler)."""
    if not isinstance(text, str):
        raise TypeError(f"lr_schedule must be a text, {_ACCEPTED}; got {text!r}")
    kind, *values = [part.strip() for part in text.strip().lower().split(":")]
    form = _FORMS.get(kind)
    if form is None or not form.required <= len(values) <= len(form.fields):
        raise ValueError(f"lr_schedule must be {_ACCEPTED}; got {text!r}")
    kwargs = {}
    for (name, argument, convert), value in zip(form.fields, values):
        try:
            kwargs[argument] = convert(value)
        except ValueError:
            expected = "an integer" if convert is int else "a number"
            raise ValueError(f"lr_schedule {text!r}: {name} must be {expected}, got "
                             f"{value!r}") from None
    return form.scheduler, kwargs


def make_scheduler(text, optimizer, epochs):
    """The scheduler `text` names, over `optimizer`; `epochs` is cosine's T_max when the text
    leaves it out. A value out of range is a ValueError naming the text."""
    scheduler, kwargs = parse_schedule(text)
    if scheduler is lr_scheduler.CosineAnnealingLR:
        kwargs.setdefault("T_max", epochs)
    try:
        return scheduler(optimizer, **kwargs)
    except (TypeError, ValueError) as e:
        raise ValueError(f"lr_schedule {text!r}: {e}") from None


def check_schedule(text, epochs):
    """Raise what make_scheduler would for `text`, without a model: the schedule is made over
    a one-number probe optimizer and thrown away."""
    from ..tensor import Tensor
    from . import SGD
    probe = SGD([Tensor([0.0], requires_grad=True)], lr=1.0)
    make_scheduler(text, probe, epochs)
