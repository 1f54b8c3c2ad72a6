"""batch_norm and layer_norm: PyTorch's functional forms.

Both normalize x with a mean and a biased variance over some axes, then apply an optional
per-feature scale (weight) and shift (bias):

    x_hat = (x - mean) / sqrt(var + eps),   y = x_hat * weight + bias

    batch_norm: x (N, C, *), statistics per channel over (N, *): axes (0, 2, 3, ...)
    layer_norm: x (*, normalized_shape), statistics per example over the trailing axes

How the gradient is computed: when the statistics come from x itself (batch_norm in training,
layer_norm always) the normalization is one Function, `Normalize`, with the closed-form
gradient (below); it keeps x_hat and 1/sqrt(var + eps), where a graph of mean / sub / var /
sqrt / div ops would keep five temporaries and walk five backwards. With running statistics
(batch_norm in eval) x_hat is an affine function of x with constants, composed from
differentiable ops, exact as it stands. The affine weight and bias are ordinary mul and add
ops either way (their gradients, sum(g x_hat) and sum(g), are what those ops compute).
The statistics are NumPy / CuPy reductions (mean, then the mean of squared deviations): a
kernel would not pay here, the reductions are memory-bound and already one pass each.

Running statistics (batch_norm in training, when given) are updated in place, outside the
graph, as PyTorch does: running = (1 - momentum) * running + momentum * batch_statistic, with
the UNBIASED variance (n / (n - 1) times the one used to normalize, n = values per channel).
"""

import numbers

import numpy as np

from . import ops
from .backend import get_array_module
from .tensor import Function, Tensor


class Normalize(Function):
    """x_hat = (x - mean) * inv_std, with mean and var = biased variance of x over `axes`
    (the caller computes them, it needs them too) and inv_std = 1 / sqrt(var + eps).

    Backward, n = number of values reduced, g the gradient of x_hat:
        dx = inv_std / n * (n g - sum(g) - x_hat * sum(g x_hat))     (sums over axes)
    (the last two terms are the paths through the mean and through the variance)."""

    def forward(self, x, mean, inv_std, axes, eps):
        self.axes = axes
        self.eps = eps            # not used here: inv_std holds it; ONNX export recomputes
        self.count = int(np.prod([x.shape[axis] for axis in axes]))
        self.inv_std = inv_std
        x_hat = (x - mean) * inv_std
        self.save_for_backward(x_hat)
        return x_hat

    def backward(self, grad):
        (x_hat,) = self.saved
        grad_sum = grad.sum(axis=self.axes, keepdims=True)
        grad_dot_x_hat = (grad * x_hat).sum(axis=self.axes, keepdims=True)
        return (self.inv_std / self.count
                * (self.count * grad - grad_sum - x_hat * grad_dot_x_hat),)


def _statistics(data, axes, eps):
    """The mean, biased variance and 1 / sqrt(var + eps) of an array over axes (kept)."""
    xp = get_array_module(data)
    mean = data.mean(axis=axes, keepdims=True)
    var = ((data - mean) ** 2).mean(axis=axes, keepdims=True)
    return mean, var, 1 / xp.sqrt(var + data.dtype.type(eps))


def _affine(x_hat, weight, bias, shape):
    """x_hat * weight + bias, each (when given) viewed as `shape` to broadcast over x_hat."""
    if weight is not None:
        x_hat = x_hat * ops.reshape(weight, shape)
    if bias is not None:
        x_hat = x_hat + ops.reshape(bias, shape)
    return x_hat


def check_number(value, name, op_name, low=0.0, high=None):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{op_name}: {name} must be a real number, got {value!r}")
    if value < low or (high is not None and value > high):
        limits = f"in [{low}, {high}]" if high is not None else f">= {low}"
        raise ValueError(f"{op_name}: {name} must be {limits}, got {value!r}")
    return float(value)


def _check_vector(value, name, op_name, shape, x):
    """A per-feature Tensor of `shape` on x's device, or None."""
    if value is None:
        return None
    if not isinstance(value, Tensor):
        raise TypeError(f"{op_name}: {name} must be a Tensor or None, got {type(value).__name__}")
    if value.shape != tuple(shape):
        raise ValueError(f"{op_name}: {name} must have shape {tuple(shape)} for input of shape "
                         f"{x.shape}, got {value.shape}")
    if value.device != x.device:
        raise RuntimeError(f"{op_name}: {name} is on {value.device} but the input on "
                           f"{x.device}; move them with .to()")
    return value


# ---------------------------------------------------------------------------- batch_norm
def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False,
               momentum=0.1, eps=1e-5):
    """Batch normalization of input (N, C, *) per channel, PyTorch's F.batch_norm.

    training=True, or no running statistics: normalize with the batch's mean and biased
    variance over (N, *), and update running_mean / running_var in place when given.
    training=False: normalize with running_mean and running_var (both needed).
    momentum: the weight of the new batch in the running update (nn.BatchNorm turns its
    momentum=None into 1 / num_batches_tracked, the cumulative average).
    """
    op_name = "batch_norm"
    if not isinstance(input, Tensor):
        raise TypeError(f"{op_name}: input must be a Tensor, got {type(input).__name__}")
    if input.ndim < 2:
        raise ValueError(f"{op_name}: input must have shape (N, C, *) with at least 2 "
                         f"dimensions, got shape {input.shape}")
    channels = input.shape[1]
    running_mean = _check_vector(running_mean, "running_mean", op_name, (channels,), input)
    running_var = _check_vector(running_var, "running_var", op_name, (channels,), input)
    weight = _check_vector(weight, "weight", op_name, (channels,), input)
    bias = _check_vector(bias, "bias", op_name, (channels,), input)
    momentum = check_number(momentum, "momentum", op_name, 0.0, 1.0)
    eps = check_number(eps, "eps", op_name)
    if (running_mean is None) != (running_var is None):
        raise ValueError(f"{op_name}: give both running_mean and running_var, or neither")
    axes = (0,) + tuple(range(2, input.ndim))
    per_channel = (1, channels) + (1,) * (input.ndim - 2)       # broadcasts over (N, C, *)
    values_per_channel = input.numel() // channels

    if training or running_mean is None:
        if values_per_channel <= 1:
            raise ValueError(f"{op_name}: expected more than 1 value per channel when "
                             f"training, got input of shape {input.shape}")
        mean, var, inv_std = _statistics(input.data, axes, eps)
        if running_mean is not None:
            unbiased = var * (values_per_channel / (values_per_channel - 1))
            for running, batch in ((running_mean, mean), (running_var, unbiased)):
                running.data *= 1 - momentum
                running.data += (momentum * batch.reshape(channels)).astype(running.dtype)
        x_hat = Normalize.apply(input, mean=mean, inv_std=inv_std, axes=axes, eps=eps)
    else:
        xp = input.xp
        mean = running_mean.data.astype(input.dtype).reshape(per_channel)
        inv_std = 1 / xp.sqrt(running_var.data.astype(input.dtype).reshape(per_channel)
                              + input.dtype.type(eps))
        x_hat = (input - Tensor(mean, _copy=False)) * Tensor(inv_std, _copy=False)
    return _affine(x_hat, weight, bias, per_channel)


# ---------------------------------------------------------------------------- layer_norm
def normalized_shape_tuple(normalized_shape, op_name):
    """normalized_shape (an int or a sequence of positive ints) as a tuple."""
    if isinstance(normalized_shape, (int, np.integer)) and not isinstance(normalized_shape, bool):
        normalized_shape = (normalized_shape,)
    if not isinstance(normalized_shape, (tuple, list)) or not normalized_shape or any(
            isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 1
            for s in normalized_shape):
        raise ValueError(f"{op_name}: normalized_shape must be a positive int or a non-empty "
                         f"sequence of positive ints, got {normalized_shape!r}")
    return tuple(int(s) for s in normalized_shape)


def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5):
    """Layer normalization over the trailing dims `normalized_shape`, PyTorch's F.layer_norm.

    input (*, *normalized_shape): each example's mean and biased variance over those dims;
    weight and bias (when given) have shape normalized_shape.
    """
    op_name = "layer_norm"
    if not isinstance(input, Tensor):
        raise TypeError(f"{op_name}: input must be a Tensor, got {type(input).__name__}")
    shape = normalized_shape_tuple(normalized_shape, op_name)
    if input.shape[input.ndim - len(shape):] != shape or input.ndim < len(shape):
        raise ValueError(f"{op_name}: input of shape {input.shape} must end with "
                         f"normalized_shape {shape}")
    weight = _check_vector(weight, "weight", op_name, shape, input)
    bias = _check_vector(bias, "bias", op_name, shape, input)
    eps = check_number(eps, "eps", op_name)
    axes = tuple(range(input.ndim - len(shape), input.ndim))
    mean, _, inv_std = _statistics(input.data, axes, eps)
    x_hat = Normalize.apply(input, mean=mean, inv_std=inv_std, axes=axes, eps=eps)
    return _affine(x_hat, weight, bias, shape)


__all__ = ["batch_norm", "layer_norm", "Normalize"]
