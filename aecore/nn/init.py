"""Weight initializers (PyTorch's names and formulas), drawing from aecore's seeded generator.

fan_in = in_channels * kH * kW (or in_features); fan_out = out_channels * kH * kW.
- kaiming_uniform_: U(-b, b), b = gain * sqrt(3 / fan), gain = sqrt(2 / (1 + a^2)) for leaky_relu
- kaiming_normal_:  N(0, gain / sqrt(fan))
- xavier_uniform_:  U(-b, b), b = gain * sqrt(6 / (fan_in + fan_out))
- xavier_normal_:   N(0, gain * sqrt(2 / (fan_in + fan_out)))
Each fills a Parameter in place (keeping its dtype and device) and returns it.
"""

import math

from .. import random


def fans(shape):
    """(fan_in, fan_out) for a Linear weight (out, in) or a conv weight (out, in, kH, kW)."""
    if len(shape) < 2:
        raise ValueError(f"fan in and fan out need a weight with at least 2 dimensions, got {shape}")
    receptive = math.prod(shape[2:]) if len(shape) > 2 else 1
    return shape[1] * receptive, shape[0] * receptive


def calculate_gain(nonlinearity, param=None):
    if nonlinearity in ("linear", "conv2d", "sigmoid", "conv_transpose2d"):
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else param
        return math.sqrt(2.0 / (1 + slope ** 2))
    raise ValueError(f"nonlinearity must be one of linear, sigmoid, tanh, relu, leaky_relu, "
                     f"got {nonlinearity!r}")


def _fill(tensor, values):
    xp = tensor.xp
    tensor.data[...] = xp.asarray(values, dtype=tensor.dtype)
    return tensor


def _fan(tensor, mode):
    fan_in, fan_out = fans(tensor.shape)
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"mode must be 'fan_in' or 'fan_out', got {mode!r}")
    return fan_in if mode == "fan_in" else fan_out


def uniform_(tensor, low=0.0, high=1.0):
    return _fill(tensor, random.uniform(low, high, tensor.shape, tensor.dtype))


def normal_(tensor, mean=0.0, std=1.0):
    return _fill(tensor, random.normal(mean, std, tensor.shape, tensor.dtype))


def zeros_(tensor):
    tensor.data[...] = 0
    return tensor


def kaiming_uniform_(tensor, a=0.0, mode="fan_in", nonlinearity="leaky_relu"):
    bound = calculate_gain(nonlinearity, a) * math.sqrt(3.0 / _fan(tensor, mode))
    return uniform_(tensor, -bound, bound)


def kaiming_normal_(tensor, a=0.0, mode="fan_in", nonlinearity="leaky_relu"):
    std = calculate_gain(nonlinearity, a) / math.sqrt(_fan(tensor, mode))
    return normal_(tensor, 0.0, std)


def xavier_uniform_(tensor, gain=1.0):
    fan_in, fan_out = fans(tensor.shape)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(tensor, -bound, bound)


def xavier_normal_(tensor, gain=1.0):
    fan_in, fan_out = fans(tensor.shape)
    return normal_(tensor, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)))


# Keras-style aliases
he_uniform_ = kaiming_uniform_
he_normal_ = kaiming_normal_
glorot_uniform_ = xavier_uniform_
glorot_normal_ = xavier_normal_
