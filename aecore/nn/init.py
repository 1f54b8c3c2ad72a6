"""Weight initializers, drawing from aecore's seeded generator (aecore.random).

PyTorch's names and formulas (fan_in = in_channels * kH * kW or in_features, fan_out =
out_channels * kH * kW or out_features; see `fans`):
- kaiming_uniform_: U(-b, b), b = gain * sqrt(3 / fan), gain = sqrt(2 / (1 + a^2)) for leaky_relu
- kaiming_normal_:  N(0, gain / sqrt(fan))
- xavier_uniform_:  U(-b, b), b = gain * sqrt(6 / (fan_in + fan_out))
- xavier_normal_:   N(0, gain * sqrt(2 / (fan_in + fan_out)))
- trunc_normal_:    N(mean, std) restricted to [a, b] (a, b are values, not multiples of std)
Keras 3's, all through `variance_scaling_` (scale / fan; truncated normals cut at 2 stddev):
- glorot_uniform_ / glorot_normal_: scale 1, fan_avg, uniform / truncated normal
- he_uniform_ / he_normal_:         scale 2, fan_in,  uniform / truncated normal
- lecun_uniform_ / lecun_normal_:   scale 1, fan_in,  uniform / truncated normal
Keras' normals are truncated, so glorot_normal_ is not xavier_normal_ (same std, no tails).

The fans agree with Keras' for the same layer, although the weight layouts differ: Keras reads
fan_in, fan_out from a kernel's last two axes, times the receptive field,
    Dense           (in, out)            -> fan_in = in,          fan_out = out
    Conv2D          (kH, kW, in, out)    -> fan_in = in * kH * kW, fan_out = out * kH * kW
    Conv2DTranspose (kH, kW, out, in)    -> fan_in = out * kH * kW, fan_out = in * kH * kW
and `fans` reads axes 1 and 0 of aecore's Linear (out, in), Conv2d (Cout, Cin, kH, kW) and
ConvTranspose2d (Cin, Cout, kH, kW) weights: the same numbers, the transposed conv's fan_in
included (its output channels, in both libraries). A 1-D tensor (a bias) has fan_in = fan_out
= its length in Keras' initializers, which is what variance_scaling_ uses for it.
Each initializer fills a tensor in place (keeping its dtype and device) and returns it; `get`
turns a name or a callable into one (the layers' weight_init / bias_init arguments).
"""

import math
import numbers

from .. import random


def fans(shape):
    """(fan_in, fan_out) from axes 1 and 0 times the receptive field: a Linear weight (out, in),
    a Conv2d weight (out, in, kH, kW), or a ConvTranspose2d weight (in, out, kH, kW), whose
    fan_in is then out * kH * kW (PyTorch's and Keras' choice alike; see the module docstring)."""
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


def ones_(tensor):
    tensor.data[...] = 1
    return tensor


def constant_(tensor, value):
    tensor.data[...] = value
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


# ---------------------------------------------------------------------------- truncated normals
# Below this share of N(mean, std) inside [low, high], redrawing would loop (nearly) forever.
_SMALLEST_KEPT_MASS = 1e-4


def _normal_mass(low, high, mean, std):
    """P(low <= X <= high) for X ~ N(mean, std)."""
    def cdf(value):
        return 0.5 * (1 + math.erf((value - mean) / (std * math.sqrt(2))))
    return cdf(high) - cdf(low)


def _truncated_normal(shape, mean, std, low, high, dtype):
    """N(mean, std) draws with every value outside [low, high] drawn again until none is left
    (TensorFlow's and Keras' rule); float64 draws, cast at the end."""
    generator = random.generator()
    values = generator.normal(mean, std, shape)
    outside = (values < low) | (values > high)
    while outside.any():
        values[outside] = generator.normal(mean, std, int(outside.sum()))
        outside = (values < low) | (values > high)
    return values.astype(dtype, copy=False)


def trunc_normal_(tensor, mean=0.0, std=1.0, a=-2.0, b=2.0):
    """PyTorch's trunc_normal_: N(mean, std) conditioned on [a, b] (a, b are values, not
    multiples of std), here by redrawing what falls outside."""
    if not std > 0:
        raise ValueError(f"trunc_normal_: std must be > 0, got {std!r}")
    if not a < b:
        raise ValueError(f"trunc_normal_: need a < b, got a={a!r}, b={b!r}")
    if _normal_mass(a, b, mean, std) < _SMALLEST_KEPT_MASS:
        raise ValueError(f"trunc_normal_: [a, b] = [{a}, {b}] holds less than "
                         f"{_SMALLEST_KEPT_MASS} of N({mean}, {std}); move it nearer the mean")
    return _fill(tensor, _truncated_normal(tensor.shape, mean, std, a, b, tensor.dtype))


# ---------------------------------------------------------------------------- Keras' initializers
VARIANCE_SCALING_MODES = ("fan_in", "fan_out", "fan_avg")
VARIANCE_SCALING_DISTRIBUTIONS = ("truncated_normal", "untruncated_normal", "uniform")
# The std of a standard normal truncated to [-2, 2]; dividing by it gives the truncated draws
# the std that was asked for.
_TRUNCATED_STD = 0.87962566103423978


def _keras_fans(shape):
    """Keras' compute_fans: `fans` for weights, its length for a 1-D tensor, 1 for a scalar."""
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    return fans(shape)


def variance_scaling_(tensor, scale=1.0, mode="fan_in", distribution="truncated_normal"):
    """Keras 3's VarianceScaling: variance scale / fan, fan chosen by mode (fan_avg is
    (fan_in + fan_out) / 2, at least 1 in all modes). distribution:
      truncated_normal   N(0, sqrt(scale) / 0.8796...) redrawn beyond 2 of its stddevs
                         (so the draws' std is sqrt(scale))
      untruncated_normal N(0, sqrt(scale))
      uniform            U(-sqrt(3 * scale), sqrt(3 * scale))"""
    if isinstance(scale, bool) or not isinstance(scale, numbers.Real) or not scale > 0:
        raise ValueError(f"variance_scaling_: scale must be a positive number, got {scale!r}")
    if mode not in VARIANCE_SCALING_MODES:
        raise ValueError(f"variance_scaling_: mode must be one of "
                         f"{', '.join(map(repr, VARIANCE_SCALING_MODES))}, got {mode!r}")
    if distribution not in VARIANCE_SCALING_DISTRIBUTIONS:
        raise ValueError(f"variance_scaling_: distribution must be one of "
                         f"{', '.join(map(repr, VARIANCE_SCALING_DISTRIBUTIONS))}, "
                         f"got {distribution!r}")
    fan_in, fan_out = _keras_fans(tensor.shape)
    fan = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2.0}[mode]
    scale = scale / max(1.0, fan)
    if distribution == "uniform":
        limit = math.sqrt(3.0 * scale)
        return uniform_(tensor, -limit, limit)
    if distribution == "untruncated_normal":
        return normal_(tensor, 0.0, math.sqrt(scale))
    stddev = math.sqrt(scale) / _TRUNCATED_STD
    return _fill(tensor, _truncated_normal(tensor.shape, 0.0, stddev, -2 * stddev, 2 * stddev,
                                           tensor.dtype))


def glorot_uniform_(tensor):
    return variance_scaling_(tensor, 1.0, "fan_avg", "uniform")


def glorot_normal_(tensor):
    return variance_scaling_(tensor, 1.0, "fan_avg", "truncated_normal")


def he_uniform_(tensor):
    return variance_scaling_(tensor, 2.0, "fan_in", "uniform")


def he_normal_(tensor):
    return variance_scaling_(tensor, 2.0, "fan_in", "truncated_normal")


def lecun_uniform_(tensor):
    return variance_scaling_(tensor, 1.0, "fan_in", "uniform")


def lecun_normal_(tensor):
    return variance_scaling_(tensor, 1.0, "fan_in", "truncated_normal")


# Keras' RandomNormal, RandomUniform and TruncatedNormal with their default arguments.
def _keras_random_normal_(tensor):
    return normal_(tensor, 0.0, 0.05)


def _keras_random_uniform_(tensor):
    return uniform_(tensor, -0.05, 0.05)


def _keras_truncated_normal_(tensor):
    return trunc_normal_(tensor, 0.0, 0.05, -0.1, 0.1)


# ---------------------------------------------------------------------------- by name
# Keras' string identifiers, then PyTorch's initializers under their names without the '_'.
INITIALIZERS = {
    "zeros": zeros_, "ones": ones_,
    "glorot_uniform": glorot_uniform_, "glorot_normal": glorot_normal_,
    "he_uniform": he_uniform_, "he_normal": he_normal_,
    "lecun_uniform": lecun_uniform_, "lecun_normal": lecun_normal_,
    "random_normal": _keras_random_normal_, "random_uniform": _keras_random_uniform_,
    "truncated_normal": _keras_truncated_normal_,
    "xavier_uniform": xavier_uniform_, "xavier_normal": xavier_normal_,
    "kaiming_uniform": kaiming_uniform_, "kaiming_normal": kaiming_normal_,
}


def get(identifier, argument="initializer"):
    """The initializer for a name in INITIALIZERS, or `identifier` itself when it is a callable
    (called with the tensor, filling it in place). `argument` names the value in errors."""
    if callable(identifier):
        return identifier
    if not isinstance(identifier, str):
        raise TypeError(f"{argument} must be an initializer name or a callable, "
                        f"got {type(identifier).__name__} {identifier!r}")
    if identifier not in INITIALIZERS:
        raise ValueError(f"{argument} must be one of {', '.join(INITIALIZERS)} or a callable, "
                         f"got {identifier!r}")
    return INITIALIZERS[identifier]


def keras_defaults_(module):
    """Keras' default initialization on every Linear, Conv2d and ConvTranspose2d in `module`
    (UpsampleConv2d included): Glorot-uniform weights, zero biases. Returns the module.
    The same values, drawn in the same order, as aecore.models' init='glorot' (base.apply_init)
    wherever every parameter sits in such a layer, as in all of aecore.models."""
    from .layers import Conv2d, ConvTranspose2d, Linear  # layers imports this module
    seen = set()  # a layer registered twice (shared) is initialized once
    for layer in module.modules():
        if isinstance(layer, (Linear, Conv2d, ConvTranspose2d)) and id(layer) not in seen:
            seen.add(id(layer))
            glorot_uniform_(layer.weight)
            if layer.bias is not None:
                zeros_(layer.bias)
    return module
