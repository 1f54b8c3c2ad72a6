"""Layers: PyTorch's constructor arguments and default initialization, and the Keras layers
that PyTorch has no module for (ZeroPadding2D, Cropping2D, Reshape, Lambda), all NCHW.

Default init (PyTorch's): weights kaiming_uniform_(a=sqrt(5)), i.e. U(-1/sqrt(fan_in), 1/sqrt(fan_in)),
and biases U(-1/sqrt(fan_in), 1/sqrt(fan_in)). Linear, Conv2d (UpsampleConv2d) and
ConvTranspose2d take weight_init= / bias_init=: an initializer name ('glorot_uniform',
'he_normal', 'zeros', ...; nn.init.INITIALIZERS) or a callable filling the Parameter in place;
nn.init.keras_defaults_(model) gives a whole model Keras' defaults.
"""

import math
from collections import OrderedDict

import numpy as np

from .. import functional as F
from .. import ops
from ..kernels.geometry import INTERPOLATE_MODES, count, pair
from . import init
from .module import Module, Parameter


def _positive_int(value, name):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


def _initialize(weight, bias, weight_init=None, bias_init=None):
    """Fill weight, then bias (the draw order of a seeded run): PyTorch's default for an init
    that is None, else the named or given initializer (nn.init.get)."""
    fill_weight = None if weight_init is None else init.get(weight_init, "weight_init")
    fill_bias = None if bias_init is None else init.get(bias_init, "bias_init")
    if bias is None and fill_bias is not None:
        raise ValueError(f"bias_init is {bias_init!r} but the layer has no bias (bias=False)")
    if fill_weight is None:
        init.kaiming_uniform_(weight, a=math.sqrt(5))
    else:
        fill_weight(weight)
    if bias is None:
        return
    if fill_bias is None:
        fan_in, _ = init.fans(weight.shape)
        bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
        init.uniform_(bias, -bound, bound)
    else:
        fill_bias(bias)


class Linear(Module):
    """y = x W^T + b; W: (out_features, in_features)."""

    def __init__(self, in_features, out_features, bias=True, dtype=np.float32, *,
                 weight_init=None, bias_init=None):
        super().__init__()
        self.in_features = _positive_int(in_features, "in_features")
        self.out_features = _positive_int(out_features, "out_features")
        self.weight = Parameter(np.zeros((self.out_features, self.in_features), dtype))
        self.bias = Parameter(np.zeros(self.out_features, dtype)) if bias else None
        _initialize(self.weight, self.bias, weight_init, bias_init)

    def forward(self, x):
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


# ---------------------------------------------------------------------------- conv layers: dilation, groups
def _conv_groups(groups, in_channels, out_channels):
    """`groups` checked as PyTorch's conv layers check it: an int >= 1 dividing both channel
    counts; and the dilation/groups part of a conv layer's repr (empty for the defaults)."""
    groups = count(groups, "groups")
    for channels, name in ((in_channels, "in_channels"), (out_channels, "out_channels")):
        if channels % groups:
            raise ValueError(f"{name} must be divisible by groups={groups}, got {channels}")
    return groups


def _dilation_groups_repr(layer):
    return ((f", dilation={layer.dilation}" if layer.dilation != (1, 1) else "")
            + (f", groups={layer.groups}" if layer.groups != 1 else ""))


class Conv2d(Module):
    """2-D convolution; weight (out_channels, in_channels // groups, kH, kW). padding: int, pair,
    'same', 'valid'. PyTorch's arguments, in its order (dilation, groups before bias)."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 groups=1, bias=True, dtype=np.float32, *, weight_init=None, bias_init=None):
        super().__init__()
        self.in_channels = _positive_int(in_channels, "in_channels")
        self.out_channels = _positive_int(out_channels, "out_channels")
        self.kernel_size = pair(kernel_size, "kernel_size")
        self.stride = pair(stride, "stride")
        self.padding = padding if isinstance(padding, str) else pair(padding, "padding", minimum=0)
        self.dilation = pair(dilation, "dilation")
        self.groups = _conv_groups(groups, self.in_channels, self.out_channels)
        self.weight = Parameter(np.zeros((self.out_channels, self.in_channels // self.groups)
                                         + self.kernel_size, dtype))
        self.bias = Parameter(np.zeros(self.out_channels, dtype)) if bias else None
        _initialize(self.weight, self.bias, weight_init, bias_init)

    def forward(self, x):
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation,
                        self.groups)

    def extra_repr(self):
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding!r}" + _dilation_groups_repr(self)
                + ("" if self.bias is not None else ", bias=False"))


class UpsampleConv2d(Conv2d):
    """Resize to `size`, then a Conv2d: F.upsample_conv2d, which folds nearest upsampling by a
    whole factor into the conv (one transposed conv of the small input: for a 3x3 kernel after
    2x, 16 multiply-adds per small-image pixel and channel pair where the two ops do 4 x 9).
    Same parameters, values and gradients as Upsample(size, mode) followed by Conv2d.
    fold=False (also settable later, `layer.fold`) always runs the two ops, e.g. to compare."""

    def __init__(self, in_channels, out_channels, kernel_size, size, mode="nearest", stride=1,
                 padding=0, bias=True, fold=True, dtype=np.float32, *, weight_init=None,
                 bias_init=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, bias=bias,
                         dtype=dtype, weight_init=weight_init, bias_init=bias_init)
        self.size = pair(size, "size")
        if mode not in INTERPOLATE_MODES:
            raise ValueError(f"mode must be one of {', '.join(map(repr, INTERPOLATE_MODES))}, "
                             f"got {mode!r}")
        self.mode = mode
        self.fold = bool(fold)

    def forward(self, x):
        align_corners = False if self.mode == "bilinear" else None
        return F.upsample_conv2d(x, self.weight, self.bias, size=self.size, mode=self.mode,
                                 align_corners=align_corners, stride=self.stride,
                                 padding=self.padding, fold=self.fold)

    def extra_repr(self):
        return (super().extra_repr() + f", size={self.size}, mode={self.mode!r}"
                + ("" if self.fold else ", fold=False"))


class ConvTranspose2d(Module):
    """Transposed 2-D convolution; weight (in_channels, out_channels // groups, kH, kW).

    padding: PyTorch's ints, or Keras' 'same' / 'valid' (with Keras' output_padding rule; see
    aecore.kernels.geometry.conv_transpose2d_geometry). PyTorch's arguments, in its order
    (groups before bias, dilation after it)."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 output_padding=0, groups=1, bias=True, dilation=1, dtype=np.float32, *,
                 weight_init=None, bias_init=None):
        super().__init__()
        self.in_channels = _positive_int(in_channels, "in_channels")
        self.out_channels = _positive_int(out_channels, "out_channels")
        self.kernel_size = pair(kernel_size, "kernel_size")
        self.stride = pair(stride, "stride")
        self.padding = padding if isinstance(padding, str) else pair(padding, "padding", minimum=0)
        self.output_padding = pair(output_padding, "output_padding", minimum=0)
        self.dilation = pair(dilation, "dilation")
        self.groups = _conv_groups(groups, self.in_channels, self.out_channels)
        self.weight = Parameter(np.zeros((self.in_channels, self.out_channels // self.groups)
                                         + self.kernel_size, dtype))
        self.bias = Parameter(np.zeros(self.out_channels, dtype)) if bias else None
        _initialize(self.weight, self.bias, weight_init, bias_init)

    def forward(self, x):
        return F.conv_transpose2d(x, self.weight, self.bias, self.stride, self.padding,
                                  self.output_padding, self.groups, self.dilation)

    def extra_repr(self):
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding!r}, output_padding={self.output_padding}"
                + _dilation_groups_repr(self))


class MaxPool2d(Module):
    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False):
        super().__init__()
        self.kernel_size = pair(kernel_size, "kernel_size")
        self.stride = self.kernel_size if stride is None else pair(stride, "stride")
        self.padding = padding if isinstance(padding, str) else pair(padding, "padding", minimum=0)
        self.ceil_mode = bool(ceil_mode)

    def forward(self, x):
        return F.max_pool2d(x, self.kernel_size, self.stride, self.padding, self.ceil_mode)

    def extra_repr(self):
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding!r}, "
                f"ceil_mode={self.ceil_mode}")


# ---- avg_pool2d's modules (issue 17) ----
class AvgPool2d(Module):
    """F.avg_pool2d as a layer: MaxPool2d's arguments, and PyTorch's divisor options. Keras'
    AveragePooling2D(padding='same') is AvgPool2d(k, padding='same', count_include_pad=False).
    (Not a MaxPool2d subclass: an average pool is no max pool to isinstance.)"""

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False,
                 count_include_pad=True, divisor_override=None):
        super().__init__()
        self.kernel_size = pair(kernel_size, "kernel_size")
        self.stride = self.kernel_size if stride is None else pair(stride, "stride")
        self.padding = padding if isinstance(padding, str) else pair(padding, "padding", minimum=0)
        self.ceil_mode = bool(ceil_mode)
        self.count_include_pad = count_include_pad      # checked, with divisor_override, by F
        self.divisor_override = divisor_override

    def forward(self, x):
        return F.avg_pool2d(x, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                            self.count_include_pad, self.divisor_override)

    def extra_repr(self):
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding!r}, "
                f"ceil_mode={self.ceil_mode}, count_include_pad={self.count_include_pad}, "
                f"divisor_override={self.divisor_override}")


class AdaptiveAvgPool2d(Module):
    """F.adaptive_avg_pool2d as a layer: output_size an int or a pair (None keeps that input
    size); AdaptiveAvgPool2d(1) is global average pooling."""

    def __init__(self, output_size):
        super().__init__()
        self.output_size = output_size

    def forward(self, x):
        return F.adaptive_avg_pool2d(x, self.output_size)

    def extra_repr(self):
        return f"output_size={self.output_size}"
# ---- end of avg_pool2d's modules ----


class Upsample(Module):
    """Resize with F.interpolate: give size or scale_factor; mode 'nearest', 'nearest-exact'
    (pixel centres, as TensorFlow 2's nearest resize) or 'bilinear'."""

    def __init__(self, size=None, scale_factor=None, mode="nearest", align_corners=None):
        super().__init__()
        if (size is None) == (scale_factor is None):
            raise ValueError("Upsample: give exactly one of size or scale_factor, got "
                             f"size={size!r}, scale_factor={scale_factor!r}")
        if mode not in INTERPOLATE_MODES:
            raise ValueError(f"Upsample: mode must be one of "
                             f"{', '.join(map(repr, INTERPOLATE_MODES))}, got {mode!r}")
        self.size, self.scale_factor, self.mode, self.align_corners = size, scale_factor, mode, align_corners

    def forward(self, x):
        return F.interpolate(x, self.size, self.scale_factor, self.mode, self.align_corners)

    def extra_repr(self):
        what = f"size={self.size}" if self.size is not None else f"scale_factor={self.scale_factor}"
        return f"{what}, mode={self.mode!r}"


class _Activation(Module):
    function = None

    def forward(self, x):
        return type(self).function(x)


class ReLU(_Activation):
    function = staticmethod(ops.relu)


class Sigmoid(_Activation):
    function = staticmethod(ops.sigmoid)


class Tanh(_Activation):
    function = staticmethod(ops.tanh)


class Softplus(_Activation):
    function = staticmethod(ops.softplus)


class LeakyReLU(Module):
    def __init__(self, negative_slope=0.01):
        super().__init__()
        self.negative_slope = float(negative_slope)

    def forward(self, x):
        return ops.leaky_relu(x, self.negative_slope)

    def extra_repr(self):
        return f"negative_slope={self.negative_slope}"


class Identity(Module):
    def forward(self, x):
        return x


class Flatten(Module):
    """Flatten dims start_dim..end_dim (default: all but the batch axis)."""

    def __init__(self, start_dim=1, end_dim=-1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x):
        return ops.flatten(x, self.start_dim, self.end_dim)

    def extra_repr(self):
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Unflatten(Module):
    """Split dimension `dim` into `unflattened_size`, e.g. Unflatten(1, (1, 28, 28))."""

    def __init__(self, dim, unflattened_size):
        super().__init__()
        self.dim, self.unflattened_size = dim, tuple(unflattened_size)

    def forward(self, x):
        dim = self.dim % x.ndim
        if math.prod(self.unflattened_size) != x.shape[dim]:
            raise ValueError(f"Unflatten: dimension {self.dim} has size {x.shape[dim]}, which "
                             f"cannot be split into {self.unflattened_size}")
        return ops.reshape(x, x.shape[:dim] + self.unflattened_size + x.shape[dim + 1:])

    def extra_repr(self):
        return f"dim={self.dim}, unflattened_size={self.unflattened_size}"


class Reshape(Module):
    """Keras' Reshape: every example to `target_shape`, the shape without the batch axis (one
    -1 allowed, inferred). Reshape(32, 7, 7) and Reshape((32, 7, 7)) are the same.
    NCHW: an image target is (C, H, W), so a channels-last tutorial's Reshape((7, 7, 32))
    becomes Reshape(32, 7, 7) here (7, 7, 32 would make 7 channels of 7 x 32)."""

    def __init__(self, *target_shape):
        super().__init__()
        if len(target_shape) == 1 and isinstance(target_shape[0], (tuple, list)):
            target_shape = tuple(target_shape[0])
        if (not target_shape or not all(_is_int(s) and (s >= 1 or s == -1) for s in target_shape)
                or target_shape.count(-1) > 1):
            raise ValueError(f"Reshape: target_shape must be positive ints with at most one -1, "
                             f"got {target_shape!r}")
        self.target_shape = tuple(int(s) for s in target_shape)

    def forward(self, x):
        per_example = math.prod(x.shape[1:])
        known = math.prod(s for s in self.target_shape if s != -1)
        fits = per_example % known == 0 if -1 in self.target_shape else per_example == known
        if not fits:
            raise ValueError(f"Reshape: an input of shape {tuple(x.shape)} has {per_example} values "
                             f"per example, which do not fit target_shape {self.target_shape}")
        return ops.reshape(x, (x.shape[0],) + self.target_shape)

    def extra_repr(self):
        return ", ".join(map(str, self.target_shape))


class Lambda(Module):
    """Keras' Lambda: a module calling `function` on its inputs, e.g. Lambda(lambda x: x * 2)
    or Lambda(F.relu), so a plain function can sit in a Sequential. Tensors the function uses
    are not registered (neither trained nor saved); make a Module for that. repr shows `name`,
    else the function's name."""

    def __init__(self, function, name=None):
        super().__init__()
        if not callable(function):
            raise TypeError(f"Lambda: function must be callable, got {type(function).__name__} "
                            f"{function!r}")
        if name is not None and not isinstance(name, str):
            raise TypeError(f"Lambda: name must be a str or None, got {name!r}")
        self.function = function
        self.name = name if name is not None else getattr(function, "__name__",
                                                          type(function).__name__)

    def forward(self, *args, **kwargs):
        return self.function(*args, **kwargs)

    def extra_repr(self):
        return self.name


# ---------------------------------------------------------------------------- padding and cropping
def _is_int(value):
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _check_nchw(x, layer):
    if x.ndim != 4:
        raise ValueError(f"{layer}: expects (N, C, H, W) input, got shape {tuple(x.shape)}")


class ZeroPad2d(Module):
    """PyTorch's ZeroPad2d: zeros around the last two dimensions. padding: an int (all four
    sides) or (left, right, top, bottom); negative amounts crop, as in PyTorch."""

    def __init__(self, padding):
        super().__init__()
        if _is_int(padding):
            padding = (padding,) * 4
        if (not isinstance(padding, (tuple, list)) or len(padding) != 4
                or not all(map(_is_int, padding))):
            raise ValueError(f"ZeroPad2d: padding must be an int or (left, right, top, bottom) "
                             f"ints, got {padding!r}")
        self.padding = tuple(int(p) for p in padding)

    def forward(self, x):
        return F.pad(x, self.padding)

    def extra_repr(self):
        return f"{self.padding}"


def _keras_side_amounts(value, argument):
    """Keras' ZeroPadding2D / Cropping2D argument -> ((top, bottom), (left, right)), from an int
    (all four sides), (symmetric_height, symmetric_width) or ((top, bottom), (left, right));
    as in Keras, each of the two entries may be an int or a pair. Amounts are >= 0."""
    def side(entry):
        if _is_int(entry):
            return (int(entry), int(entry))
        if isinstance(entry, (tuple, list)) and len(entry) == 2 and all(map(_is_int, entry)):
            return (int(entry[0]), int(entry[1]))
        return None

    if _is_int(value):
        sides = (side(value), side(value))
    elif isinstance(value, (tuple, list)) and len(value) == 2:
        sides = (side(value[0]), side(value[1]))
    else:
        sides = (None,)
    if None in sides or min(sides[0] + sides[1]) < 0:
        raise ValueError(f"{argument} must be an int >= 0, (symmetric_height, symmetric_width) or "
                         f"((top, bottom), (left, right)), got {value!r}")
    return sides


class ZeroPadding2D(Module):
    """Keras' ZeroPadding2D on NCHW input (Keras' channels_first): zeros around H and W.
    padding: an int, (symmetric_height, symmetric_width) or ((top, bottom), (left, right))."""

    def __init__(self, padding=(1, 1)):
        super().__init__()
        self.padding = _keras_side_amounts(padding, "ZeroPadding2D: padding")

    def forward(self, x):
        _check_nchw(x, "ZeroPadding2D")
        (top, bottom), (left, right) = self.padding
        return F.pad(x, (left, right, top, bottom))

    def extra_repr(self):
        return f"padding={self.padding}"


class Cropping2D(Module):
    """Keras' Cropping2D on NCHW input: removes rows and columns at the image's edges.
    cropping: an int, (symmetric_height, symmetric_width) or ((top, bottom), (left, right)).
    (N, C, H, W) -> (N, C, H - top - bottom, W - left - right); at least one row and column
    must be left. F.pad with negative amounts does the work, backward included."""

    def __init__(self, cropping=((0, 0), (0, 0))):
        super().__init__()
        self.cropping = _keras_side_amounts(cropping, "Cropping2D: cropping")

    def forward(self, x):
        _check_nchw(x, "Cropping2D")
        (top, bottom), (left, right) = self.cropping
        height, width = x.shape[2:]
        if top + bottom >= height or left + right >= width:
            raise ValueError(f"Cropping2D: cropping {self.cropping} removes all of an input of "
                             f"height {height} and width {width} (shape {tuple(x.shape)})")
        return F.pad(x, (-left, -right, -top, -bottom))

    def extra_repr(self):
        return f"cropping={self.cropping}"


class Sequential(Module):
    """Modules applied in order; Sequential(a, b, c) or Sequential(OrderedDict(name=module))."""

    def __init__(self, *modules):
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], OrderedDict):
            for name, module in modules[0].items():
                self.add_module(name, module)
        else:
            for index, module in enumerate(modules):
                if not isinstance(module, Module):
                    raise TypeError(f"Sequential: argument {index} is a {type(module).__name__}, "
                                    "not a Module")
                self.add_module(str(index), module)

    def forward(self, x):
        for module in self._modules.values():
            x = module(x)
        return x

    def __getitem__(self, index):
        modules = list(self._modules.values())
        if isinstance(index, slice):
            return Sequential(*modules[index])
        return modules[index]

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def append(self, module):
        self.add_module(str(len(self._modules)), module)
        return self
