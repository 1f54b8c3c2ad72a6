"""Losses and penalties, with PyTorch's names and `reduction` semantics.

- mse_loss(input, target)
- binary_cross_entropy(probabilities, target): logs clamped at -100 as PyTorch does, so p = 0 or 1
  gives a large finite loss rather than inf.
- binary_cross_entropy_with_logits(logits, target): the stable form
      max(z, 0) - z * y + log(1 + exp(-|z|))
  which is finite for any logit (sigmoid followed by log is not: it gives log(0) for z = -1e4).
- gaussian_kl(mu, logvar): KL(N(mu, exp(0.5*logvar)^2) || N(0, 1)) summed over the latent axis,
      -0.5 * sum(1 + logvar - mu^2 - exp(logvar)),
  where logvar is the log of the VARIANCE; the sampler uses std = exp(0.5 * logvar) to match.
- l1_penalty / l2_penalty over tensors (sparse codes, weight decay by hand).
"""

import numpy as np

from .backend import get_array_module
from .ops import stable_sigmoid
from .tensor import Function, Tensor, as_tensor_like

REDUCTIONS = ("mean", "sum", "none")


def _check(name, input, target, reduction):
    if reduction not in REDUCTIONS:
        raise ValueError(f"{name}: reduction must be one of {REDUCTIONS}, got {reduction!r}")
    if not isinstance(input, Tensor):
        raise TypeError(f"{name}: input must be a Tensor, got {type(input).__name__}")
    target = as_tensor_like(target, (input,))
    if target.shape != input.shape:
        raise ValueError(f"{name}: target shape {target.shape} must equal input shape {input.shape}")
    return target


def _reduce(loss, reduction):
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


def mse_loss(input, target, reduction="mean"):
    target = _check("mse_loss", input, target, reduction)
    diff = input - target
    return _reduce(diff * diff, reduction)


def l1_loss(input, target, reduction="mean"):
    target = _check("l1_loss", input, target, reduction)
    return _reduce((input - target).abs(), reduction)


class BinaryCrossEntropy(Function):
    """Elementwise -(y log p + (1 - y) log(1 - p)) with each log clamped at -100."""

    def forward(self, p, y):
        xp = get_array_module(p)
        self.save_for_backward(p, y)
        with np.errstate(divide="ignore"):  # log(0) = -inf is expected here, then clamped
            log_p = xp.maximum(xp.log(p), -100)
            log_1mp = xp.maximum(xp.log1p(-p), -100)
        return -(y * log_p + (1 - y) * log_1mp)

    def backward(self, grad):
        p, y = self.saved
        xp = get_array_module(p)
        grad_p = grad_y = None
        if self.needs_input_grad[0]:
            # PyTorch's form: (p - y) / max(p (1 - p), 1e-12) keeps p = 0 or 1 finite.
            grad_p = grad * (p - y) / xp.maximum(p * (1 - p), 1e-12)
        if self.needs_input_grad[1]:
            with np.errstate(divide="ignore"):
                grad_y = grad * (xp.maximum(xp.log1p(-p), -100) - xp.maximum(xp.log(p), -100))
        return grad_p, grad_y


class BinaryCrossEntropyWithLogits(Function):
    """Elementwise max(z, 0) - z y + log(1 + exp(-|z|)); gradient sigmoid(z) - y."""

    def forward(self, z, y):
        xp = get_array_module(z)
        self.save_for_backward(z, y)
        return xp.maximum(z, 0) - z * y + xp.log1p(xp.exp(-xp.abs(z)))

    def backward(self, grad):
        z, y = self.saved
        grad_z = grad * (stable_sigmoid(z) - y) if self.needs_input_grad[0] else None
        grad_y = -grad * z if self.needs_input_grad[1] else None
        return grad_z, grad_y


def binary_cross_entropy(input, target, reduction="mean"):
    """BCE on probabilities in [0, 1] (use the logits form when you have logits)."""
    target = _check("binary_cross_entropy", input, target, reduction)
    data = input.data
    # Checked on the CPU only: on a GPU the check would cost a device-to-host sync every step.
    if input.device == "cpu" and data.size and (np.nanmin(data) < 0 or np.nanmax(data) > 1):
        raise ValueError("binary_cross_entropy: input must hold probabilities in [0, 1], got values "
                         f"in [{float(np.nanmin(data)):.4g}, {float(np.nanmax(data)):.4g}]; "
                         "for logits use binary_cross_entropy_with_logits")
    return _reduce(BinaryCrossEntropy.apply(input, target), reduction)


def binary_cross_entropy_with_logits(input, target, reduction="mean"):
    """BCE on logits, the numerically stable form (finite for logits of +-1e4)."""
    target = _check("binary_cross_entropy_with_logits", input, target, reduction)
    return _reduce(BinaryCrossEntropyWithLogits.apply(input, target), reduction)


def gaussian_kl(mu, logvar, reduction="mean"):
    """KL(q(z|x) || N(0, I)) per example, summed over the latent axis (axis 1), then reduced.

    logvar is log(sigma^2); the matching sampler draws z = mu + exp(0.5 * logvar) * eps.
    """
    if reduction not in REDUCTIONS:
        raise ValueError(f"gaussian_kl: reduction must be one of {REDUCTIONS}, got {reduction!r}")
    if mu.shape != logvar.shape:
        raise ValueError(f"gaussian_kl: mu shape {mu.shape} must equal logvar shape {logvar.shape}")
    per_dim = (mu * mu + logvar.exp() - logvar - 1) * 0.5
    per_example = per_dim.sum(axis=tuple(range(1, mu.ndim))) if mu.ndim > 1 else per_dim
    return _reduce(per_example, reduction)


def l1_penalty(tensors):
    """sum |t| over one tensor or an iterable of tensors (e.g. a sparse code's activity)."""
    tensors = [tensors] if isinstance(tensors, Tensor) else list(tensors)
    total = tensors[0].abs().sum()
    for t in tensors[1:]:
        total = total + t.abs().sum()
    return total


def l2_penalty(tensors):
    """sum t^2 over one tensor or an iterable of tensors."""
    tensors = [tensors] if isinstance(tensors, Tensor) else list(tensors)
    total = (tensors[0] * tensors[0]).sum()
    for t in tensors[1:]:
        total = total + (t * t).sum()
    return total
