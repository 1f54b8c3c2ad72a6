"""Losses and penalties, with PyTorch's names and `reduction` semantics.

- mse_loss(input, target)
- binary_cross_entropy(probabilities, target): logs clamped at -100 as PyTorch does, so p = 0 or 1
  gives a large finite loss rather than inf.
- binary_cross_entropy_with_logits(logits, target): the stable form
      max(z, 0) - z * y + log(1 + exp(-|z|))
  which is finite for any logit (sigmoid followed by log is not: it gives log(0) for z = -1e4).
- keras_binary_crossentropy(y_true, y_pred): Keras' binary_crossentropy, in Keras' argument order,
  on probabilities clipped to [epsilon, 1 - epsilon] (zero gradient where the clip acts), for
  ports of Keras code that must train the same loss.
- gaussian_kl(mu, logvar): KL(N(mu, exp(0.5*logvar)^2) || N(0, 1)) summed over the latent axis,
      -0.5 * sum(1 + logvar - mu^2 - exp(logvar)),
  where logvar is the log of the VARIANCE; the sampler uses std = exp(0.5 * logvar) to match.
- l1_penalty / l2_penalty over tensors (sparse codes, weight decay by hand).
"""

import numbers

import numpy as np

from .backend import get_array_module
from .kernels import bce, memory
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


def _scratch(like):
    """An uninitialized array like `like`: on the CPU from the host buffer cache (fresh memory
    for arrays this large costs page faults every step; kernels/memory.py), else the module's."""
    if isinstance(like, np.ndarray):
        return memory.empty(like.shape, like.dtype)
    return get_array_module(like).empty_like(like)


def _exp_minus_abs(xp, z):
    """e = exp(-|z|) in one scratch buffer (in place: no temporaries of z's size)."""
    e = _scratch(z)
    xp.abs(z, out=e)
    xp.negative(e, out=e)
    xp.exp(e, out=e)
    return e


class BinaryCrossEntropyWithLogits(Function):
    """Elementwise max(z, 0) - z y + log(1 + e) with e = exp(-|z|); gradient sigmoid(z) - y,
    where sigmoid(z) = 1 / (1 + e) for z >= 0 and e / (1 + e) below (ops.stable_sigmoid).

    The same arithmetic as those two formulas written plainly, in the same order (the same
    bits), but in place, in two buffers: the plain form makes eight temporaries of the batch's
    size, and their fresh memory cost more than the arithmetic (kernels/NOTES.md, "bce"). e is
    kept from the forward, so the backward takes no exp."""

    def forward(self, z, y):
        xp = get_array_module(z)
        self.save_for_backward(z, y)
        self.e = e = _exp_minus_abs(xp, z)       # kept for the backward
        out, term = _scratch(z), _scratch(z)
        xp.maximum(z, 0, out=out)
        xp.multiply(z, y, out=term)
        out -= term
        xp.log1p(e, out=term)
        out += term
        return out

    def backward(self, grad):
        z, y = self.saved
        grad_z = grad_y = None
        if self.needs_input_grad[0]:
            xp = get_array_module(z)
            e = self.e
            grad_z, denominator = _scratch(z), _scratch(z)
            xp.add(e, 1, out=denominator)
            xp.copyto(grad_z, e)
            grad_z[z >= 0] = 1                  # the numerator: 1 for z >= 0, else e
            grad_z /= denominator               # sigmoid(z)
            grad_z -= y
            grad_z *= grad
        if self.needs_input_grad[1]:
            grad_y = -grad * z
        return grad_z, grad_y


class BinaryCrossEntropyWithLogitsSummed(Function):
    """BCE on logits and its reduction in one op, on NumPy arrays: each example's values
    (N, ...) summed or averaged, (N,), or everything, 0-d. NumPy computes e = exp(-|z|) and
    log1p(e); kernels/bce.py's loops sum the loss and write the gradient in one pass each,
    where the elementwise op and a Mean make a dozen passes. The gradient has the same bits as
    that pair's; the loss is summed in float64, so it may differ in its last bits."""

    def forward(self, z, y, per_example, mean):
        self.save_for_backward(z, y)
        self.per_example, self.mean = per_example, mean
        self.e = e = _exp_minus_abs(np, z)       # kept for the backward
        log1p_e = _scratch(z)
        np.log1p(e, out=log1p_e)
        sums = bce.bce_logits_sums(z, y, log1p_e)                   # (N,) float64
        if per_example:
            return (sums / (z.size // z.shape[0]) if mean else sums).astype(z.dtype)
        total = sums.sum()
        return np.asarray(total / z.size if mean else total, z.dtype)

    def backward(self, grad):
        z, y = self.saved
        n = z.shape[0]
        # Mean's gradient (grad / count, spread) or Sum's (grad, spread), one factor per example
        if self.per_example:
            scale = grad / (z.size // n) if self.mean else grad
        else:
            scale = np.full(n, grad / z.size if self.mean else grad, z.dtype)
        return bce.bce_logits_gradient(z, y, self.e, scale, _scratch(z)), None


def _summed_bce_fits(input, target):
    """The fused op takes these tensors: NumPy arrays kernels/bce.py can take, and no gradient
    wanted for the target (its gradient, -z, the fused op does not compute)."""
    return not target.requires_grad and bce.fusable(input.data, target.data)


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
    if reduction != "none" and _summed_bce_fits(input, target):
        return BinaryCrossEntropyWithLogitsSummed.apply(input, target, per_example=False,
                                                        mean=reduction == "mean")
    return _reduce(BinaryCrossEntropyWithLogits.apply(input, target), reduction)


def binary_cross_entropy_with_logits_per_example(input, target, reduction="mean"):
    """(N,): BCE on logits of each example (the first axis), its values averaged ("mean") or
    summed ("sum"): the autoencoders' reconstruction loss."""
    target = _check("binary_cross_entropy_with_logits_per_example", input, target, reduction)
    if reduction == "none":
        raise ValueError("binary_cross_entropy_with_logits_per_example: reduction must be "
                         "'mean' or 'sum', got 'none'")
    if input.ndim >= 1 and _summed_bce_fits(input, target):
        return BinaryCrossEntropyWithLogitsSummed.apply(input, target, per_example=True,
                                                        mean=reduction == "mean")
    elementwise = BinaryCrossEntropyWithLogits.apply(input, target)
    axes = tuple(range(1, elementwise.ndim))
    return elementwise.mean(axis=axes) if reduction == "mean" else elementwise.sum(axis=axes)


class KerasBinaryCrossentropy(Function):
    """Elementwise -(y log p + (1 - y) log(1 - p)), p = clip(y_pred, epsilon, 1 - epsilon).

    Where the clip acts (y_pred < epsilon or > 1 - epsilon) p is a constant, so the gradient
    with respect to y_pred is zero there, as in Keras (TensorFlow's clip_by_value passes the
    gradient on the bounds themselves, and so does this)."""

    def forward(self, y_true, y_pred, epsilon):
        xp = get_array_module(y_pred)
        p = xp.clip(y_pred, epsilon, 1 - epsilon)
        self.save_for_backward(y_true, y_pred, p)
        self.epsilon = epsilon
        return -(y_true * xp.log(p) + (1 - y_true) * xp.log1p(-p))

    def backward(self, grad):
        y_true, y_pred, p = self.saved
        xp = get_array_module(p)
        grad_true = grad_pred = None
        if self.needs_input_grad[0]:
            grad_true = grad * (xp.log1p(-p) - xp.log(p))
        if self.needs_input_grad[1]:
            inside = (y_pred >= self.epsilon) & (y_pred <= 1 - self.epsilon)
            grad_pred = xp.where(inside, grad * (p - y_true) / (p * (1 - p)), 0)
        return grad_true, grad_pred


def keras_binary_crossentropy(y_true, y_pred, from_logits=False, epsilon=1e-7, reduction="mean"):
    """Keras' binary_crossentropy, with Keras' argument order and names (targets first).

    from_logits=False: y_pred holds probabilities, clipped to [epsilon, 1 - epsilon] (Keras'
    backend epsilon, 1e-7) before the logs, so the loss is at most -log(epsilon) ~ 16.1 per
    element and its gradient is zero where the clip acts. from_logits=True: y_pred holds
    logits and the stable form (binary_cross_entropy_with_logits) is used; nothing is clipped.

    Which one a Keras model trains with: on the TensorFlow backend, Keras computes
    binary_crossentropy of a sigmoid layer's output from that layer's logits (the stable form:
    a logit of 30 against 0 costs 30, not 16.1), so a ported model that ends in
    activation='sigmoid' should keep its logits and use binary_cross_entropy_with_logits; the
    clipped form is what Keras computes on probabilities from anywhere else, and on its JAX and
    PyTorch backends (tests/fixtures/keras_cases.npz holds both cases).
    reduction: PyTorch's "mean" | "sum" | "none" over all elements. Keras' loss averages over
    the last axis and then over the batch, which for equal-length rows is the same "mean".
    """
    if not isinstance(y_pred, Tensor):
        raise TypeError(f"keras_binary_crossentropy: y_pred must be a Tensor, got "
                        f"{type(y_pred).__name__}")
    if not isinstance(from_logits, bool):
        raise TypeError(f"keras_binary_crossentropy: from_logits must be True or False, got "
                        f"{from_logits!r}")
    if isinstance(epsilon, bool) or not isinstance(epsilon, numbers.Real) or not 0 < epsilon < 0.5:
        raise ValueError(f"keras_binary_crossentropy: epsilon must be a number in (0, 0.5), got "
                         f"{epsilon!r}")
    if reduction not in REDUCTIONS:
        raise ValueError(f"keras_binary_crossentropy: reduction must be one of {REDUCTIONS}, got "
                         f"{reduction!r}")
    y_true = as_tensor_like(y_true, (y_pred,), "keras_binary_crossentropy: y_true")
    if y_true.shape != y_pred.shape:
        raise ValueError(f"keras_binary_crossentropy: y_true shape {y_true.shape} must equal "
                         f"y_pred shape {y_pred.shape}")
    if from_logits:
        return _reduce(BinaryCrossEntropyWithLogits.apply(y_pred, y_true), reduction)
    return _reduce(KerasBinaryCrossentropy.apply(y_true, y_pred, epsilon=float(epsilon)),
                   reduction)


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
