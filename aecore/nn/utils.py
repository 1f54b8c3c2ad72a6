"""Gradient clipping with PyTorch's names and semantics (torch.nn.utils): call between
loss.backward() and optimizer.step().

    total = nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)
    nn.utils.clip_grad_value_(model.parameters(), clip_value=0.5)

clip_grad_norm_ treats every gradient as one long vector: its norm is the norm of the
per-parameter norms, and each gradient is multiplied by min(1, max_norm / (norm + 1e-6)), so the
direction is kept and only the length shrinks. The scale is applied even when it is 1 (no
branch on the norm, which on a GPU would wait for the device). clip_grad_value_ clamps each
element into [-clip_value, clip_value]. Both work in place on the gradients' arrays (NumPy or
CuPy) and skip parameters without a gradient.
"""

from __future__ import annotations

import math
import numbers

from ..tensor import Tensor, tensor

__all__ = ["clip_grad_norm_", "clip_grad_value_"]


def _with_gradients(parameters, caller):
    """The Tensors of `parameters` (one Tensor or an iterable of them) that have a gradient."""
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    try:
        parameters = list(parameters)
    except TypeError:
        raise TypeError(f"{caller}: parameters must be a Tensor or an iterable of Tensors, got "
                        f"{type(parameters).__name__}") from None
    for index, p in enumerate(parameters):
        if not isinstance(p, Tensor):
            raise TypeError(f"{caller}: parameters must be Tensors, got "
                            f"{type(p).__name__} at position {index}")
    return [p for p in parameters if p.grad is not None]


def _non_negative(caller, name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{caller}: {name} must be a number, got {value!r}")
    if not value >= 0:
        raise ValueError(f"{caller}: {name} must be a number >= 0, got {value!r}")
    return float(value)


def clip_grad_norm_(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False):
    """Scale the gradients so that their total norm is at most max_norm; returns the total norm
    before clipping (a 0-d Tensor on the gradients' device; 0.0 when no parameter has one).

    norm_type: the p of the p-norm, a number or inf ('inf' too); error_if_nonfinite: raise
    RuntimeError (PyTorch's) when the total norm is NaN or infinite instead of scaling by it.
    """
    caller = "clip_grad_norm_"
    max_norm = _non_negative(caller, "max_norm", max_norm)
    try:
        norm_type = float(norm_type)
    except (TypeError, ValueError):
        raise TypeError(f"{caller}: norm_type must be a number or 'inf', got "
                        f"{norm_type!r}") from None
    with_grads = _with_gradients(parameters, caller)
    if not with_grads:
        return tensor(0.0)
    xp = with_grads[0].xp
    grads = [p.grad for p in with_grads]
    norms = xp.stack([xp.linalg.norm(g.ravel(), ord=norm_type) for g in grads])   # (P,)
    total = xp.linalg.norm(norms, ord=norm_type)                                  # ()
    if error_if_nonfinite and not math.isfinite(float(total)):
        raise RuntimeError(f"The total norm of order {norm_type} for gradients from "
                           "`parameters` is non-finite, so it cannot be clipped. To disable this "
                           "error and scale the gradients by the non-finite norm anyway, set "
                           "`error_if_nonfinite=False`")
    # The constants in the norm's dtype, so float32 gradients are scaled in float32 as PyTorch's.
    as_dtype = total.dtype.type
    scale = xp.minimum(as_dtype(max_norm) / (total + as_dtype(1e-6)), as_dtype(1.0))
    for g in grads:
        g *= scale
    return Tensor(total)


def clip_grad_value_(parameters, clip_value):
    """Clamp every gradient element into [-clip_value, clip_value], in place."""
    clip_value = _non_negative("clip_grad_value_", "clip_value", clip_value)
    for p in _with_gradients(parameters, "clip_grad_value_"):
        p.xp.clip(p.grad, -clip_value, clip_value, out=p.grad)
