"""aecore.functional: PyTorch's functional API (names, arguments, semantics), NCHW.

The conv-family ops are graph Functions whose forward and backward call the kernel registry
(`aecore.kernels`), which picks the tier (ref / numba / cuda) for the arrays at hand and records
it on the Function (`function.tier`) for the graph view and the profiler.
"""

import numpy as np

from . import kernels
from .kernels import geometry
from .kernels.compile import array_module_of
from .kernels.conv2d.direct import sharing_packs
from .backend import device_constant
from .losses import binary_cross_entropy, binary_cross_entropy_with_logits, mse_loss, l1_loss  # noqa: F401
from .ops import (leaky_relu, relu, sigmoid, softplus, tanh)  # noqa: F401
from .ops import unbroadcast
from .kernels.registry import contiguous
from .tensor import Function, Tensor, check_dtype, dtype_of


def _call(function, op, *args):
    """Run kernel `op` on `args` through the registry, on the tier it picks for the first
    array, and remember that tier on the graph Function (forward and backward alike). The
    registry's kernels take C-contiguous arrays only: a strided view is copied here."""
    args = [contiguous(a) for a in args]
    function.tier, kernel = kernels.dispatch(op, args[0])
    return kernel(*args)


def _check_dtypes(op, *named):
    """Refuse, by name, an argument whose dtype aecore does not compute in (tensor.check_dtype)."""
    for name, value in named:
        if value is not None:
            check_dtype(dtype_of(value), f"{op}: {name}")


# ---------------------------------------------------------------------------- linear
class Linear(Function):
    """y = x @ w.T + b for a 2-D x, in one graph node: the general case (any leading axes) takes
    three, Transpose, MatMul and Add, and on a dense model's small layers each node's Python
    costs about as much as its arithmetic (kernels/NOTES.md, "linear"). The same NumPy calls as
    those three, so the same bits, forward and backward."""

    def forward(self, x, w, b=None):
        # x: (N, in), w: (out, in), b: (out,) -> y: (N, out)
        self.save_for_backward(x, w)
        y = x @ w.T
        if b is not None:
            y += b
        return y

    def backward(self, grad):
        # grad: (N, out) -> grad_x (N, in), grad_w (out, in), grad_b (out,)
        x, w = self.saved
        needs = self.needs_input_grad
        grad_x = grad @ w if needs[0] else None
        grad_w = (x.T @ grad).T if needs[1] else None       # MatMul's gradient, then Transpose's
        if len(needs) == 2:                                   # no bias
            return grad_x, grad_w
        return grad_x, grad_w, unbroadcast(grad, (w.shape[0],)) if needs[2] else None


def linear(x, weight, bias=None):
    """y = x @ weight.T + bias, weight: (out_features, in_features)."""
    _check_dtypes("linear", ("input x", x), ("weight", weight), ("bias", bias))
    if x.shape[-1] != weight.shape[1]:
        raise ValueError(f"linear: input has {x.shape[-1]} features (shape {x.shape}) but weight "
                         f"expects {weight.shape[1]} (shape {weight.shape})")
    if x.ndim == 2 and weight.ndim == 2 and (bias is None or bias.ndim == 1):
        return Linear.apply(x, weight) if bias is None else Linear.apply(x, weight, bias)
    y = x @ weight.T
    return y + bias if bias is not None else y


# ---------------------------------------------------------------------------- conv2d
class Conv2d(Function):
    # inputs x, w and, when there is one, b; the gradients come back in the same order
    def forward(self, x, w, b=None, *, geom):
        self.geom = geom
        self.save_for_backward(x, w)
        return _call(self, "conv2d_forward", x, w, b, geom)

    def backward(self, grad):
        x, w = self.saved
        needs = self.needs_input_grad
        grad_x = _call(self, "conv2d_backward_input", grad, w, self.geom) if needs[0] else None
        grad_w = _call(self, "conv2d_backward_weight", grad, x, self.geom) if needs[1] else None
        if len(needs) == 2:
            return grad_x, grad_w
        grad_b = _call(self, "conv2d_backward_bias", grad) if needs[2] else None
        return grad_x, grad_w, grad_b


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """2-D convolution (cross-correlation), PyTorch's arguments and semantics.

    x: (N, Cin, H, W), weight: (Cout, Cin / groups, kH, kW), bias: (Cout,) -> (N, Cout, outH, outW).
    padding: int, pair, 'valid' or 'same' (TensorFlow's rule: extra pixel at bottom/right).
    dilation: int or pair, the spacing of the kernel's taps; groups: Cin and Cout split into
    that many independent convs (groups=Cin: depthwise).
    """
    _check_dtypes("conv2d", ("input x", x), ("weight", weight), ("bias", bias))
    geom = geometry.conv2d_geometry(x.shape, weight.shape, stride, padding,
                                    b_shape=None if bias is None else bias.shape,
                                    dilation=dilation, groups=groups)
    return Conv2d.apply(*_with_bias(x, weight, bias), geom=geom)


def _with_bias(x, weight, bias):
    """The inputs of a conv Function: (x, weight), and bias when there is one."""
    return (x, weight) if bias is None else (x, weight, bias)


# ---------------------------------------------------------------------------- conv_transpose2d
class ConvTranspose2d(Function):
    # inputs x, w and, when there is one, b; the gradients come back in the same order
    def forward(self, x, w, b=None, *, geom):
        self.geom = geom
        self.save_for_backward(x, w)
        return _call(self, "conv_transpose2d_forward", x, w, b, geom)

    def backward(self, grad):
        x, w = self.saved
        needs = self.needs_input_grad
        # both gradients read grad packed the same way on the numba tier: packed once
        with sharing_packs():
            grad_x = (_call(self, "conv_transpose2d_backward_input", grad, w, self.geom)
                      if needs[0] else None)
            grad_w = (_call(self, "conv_transpose2d_backward_weight", grad, x, self.geom)
                      if needs[1] else None)
        if len(needs) == 2:
            return grad_x, grad_w
        grad_b = _call(self, "conv2d_backward_bias", grad) if needs[2] else None
        return grad_x, grad_w, grad_b


def conv_transpose2d(x, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1):
    """Transposed 2-D convolution (the adjoint of conv2d), PyTorch's arguments (and order).

    x: (N, Cin, H, W), weight: (Cin, Cout / groups, kH, kW) -> (N, Cout, outH, outW),
    outH = (H - 1) * stride - 2 * padding + dilation * (kH - 1) + 1 + output_padding.
    padding='same' / 'valid' follow Keras' Conv2DTranspose, output_padding included: 'same'
    gives H * stride without it and (H - 1) * stride + kH - 2 * (kH // 2) + output_padding with
    it, kH the dilated kernel's span (geometry's docstring).
    """
    _check_dtypes("conv_transpose2d", ("input x", x), ("weight", weight), ("bias", bias))
    geom = geometry.conv_transpose2d_geometry(x.shape, weight.shape, stride, padding,
                                              output_padding,
                                              b_shape=None if bias is None else bias.shape,
                                              dilation=dilation, groups=groups)
    return ConvTranspose2d.apply(*_with_bias(x, weight, bias), geom=geom)


# ---------------------------------------------------------------------------- max_pool2d
class MaxPool2d(Function):
    def forward(self, x, geom):
        self.geom = geom
        out, argmax = _call(self, "max_pool2d_forward", x, geom)
        self.save_for_backward(argmax)
        return out

    def backward(self, grad):
        (argmax,) = self.saved
        return (_call(self, "max_pool2d_backward", grad, argmax, self.geom),)


def max_pool2d(x, kernel_size, stride=None, padding=0, ceil_mode=False):
    """Max pooling. x: (N, C, H, W). stride defaults to kernel_size; padding also 'same' (TF).

    Ties send the gradient to the first maximum of the window, as PyTorch does.
    """
    _check_dtypes("max_pool2d", ("input x", x))
    geom = geometry.max_pool2d_geometry(x.shape, kernel_size, stride, padding, ceil_mode)
    return MaxPool2d.apply(x, geom=geom)


# ---------------------------------------------------------------------------- avg_pool2d (issue 17)
# the kernels, the divisor rules and the adaptive bins: kernels/avg_pool2d.py
class AvgPool2d(Function):
    def forward(self, x, geom):
        self.geom = geom
        return _call(self, "avg_pool2d_forward", x, geom)

    def backward(self, grad):
        return (_call(self, "avg_pool2d_backward", grad, self.geom),)


def avg_pool2d(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    """Average pooling, PyTorch's semantics. x: (N, C, H, W). stride defaults to kernel_size;
    padding <= kernel_size / 2, or TF's 'same' / 'valid'; ceil_mode as max_pool2d's.

    Each window's sum is divided by divisor_override when given, else by the positions it
    covers: with count_include_pad=True (PyTorch's default) the zero padding counts, with False
    only the input's pixels do. Keras' AveragePooling2D(padding='same') averages the real pixels
    only: write avg_pool2d(x, k, padding='same', count_include_pad=False).
    """
    _check_dtypes("avg_pool2d", ("input x", x))
    geom = geometry.avg_pool2d_geometry(x.shape, kernel_size, stride, padding, ceil_mode,
                                        count_include_pad, divisor_override)
    return AvgPool2d.apply(x, geom=geom)


class AdaptiveAvgPool2d(Function):
    """adaptive_avg_pool2d with uneven bins: NumPy / CuPy code, no kernel tier (equal bins run
    avg_pool2d's kernels instead; kernels/avg_pool2d.py says why)."""

    def forward(self, x, geom):
        self.geom = geom
        return kernels.avg_pool2d.adaptive_avg_pool2d_ref(x, geom)

    def backward(self, grad):
        return (kernels.avg_pool2d.adaptive_avg_pool2d_backward_ref(grad, self.geom),)


def adaptive_avg_pool2d(x, output_size):
    """Average pooling to a fixed output size, PyTorch's bins: output row o averages input rows
    floor(o * H / outH) <= i < ceil((o + 1) * H / outH), and the same for columns.

    output_size: an int or a pair (an entry None keeps that input size); 1 is global average
    pooling. When outH divides H and outW divides W the bins are avg_pool2d's windows with
    kernel = stride = (H / outH, W / outW), and that op runs.
    """
    _check_dtypes("adaptive_avg_pool2d", ("input x", x))
    geom = geometry.adaptive_avg_pool2d_geometry(x.shape, output_size)
    if geom.h % geom.out_h == 0 and geom.w % geom.out_w == 0:
        kernel = (geom.h // geom.out_h, geom.w // geom.out_w)
        return AvgPool2d.apply(x, geom=geometry.avg_pool2d_geometry(x.shape, kernel))
    return AdaptiveAvgPool2d.apply(x, geom=geom)
# ---------------------------------------------------------------------------- end of avg_pool2d


# ---------------------------------------------------------------------------- interpolate
# mode -> (forward kernel, backward kernel)
# (both nearest modes run the nearest kernels: only their source tables differ)
UPSAMPLE_KERNELS = {"nearest": ("upsample_nearest_forward", "upsample_nearest_backward"),
                    "nearest-exact": ("upsample_nearest_forward", "upsample_nearest_backward"),
                    "bilinear": ("upsample_bilinear_forward", "upsample_bilinear_backward")}


class Upsample(Function):
    def forward(self, x, geom):
        self.geom = geom
        self.kernels = UPSAMPLE_KERNELS[geom.mode]
        return _call(self, self.kernels[0], x, geom)

    def backward(self, grad):
        return (_call(self, self.kernels[1], grad, self.geom),)


def interpolate(x, size=None, scale_factor=None, mode="nearest", align_corners=None):
    """Resize (N, C, H, W) images to `size` or by `scale_factor`, PyTorch's rules.

    mode: 'nearest' (PyTorch's legacy nearest: src = floor(dst * scale)), 'nearest-exact'
    (pixel centres, src = floor((dst + 0.5) * scale): TensorFlow 2's and Pillow's nearest) or
    'bilinear' (align_corners False by default).
    """
    _check_dtypes("interpolate", ("input x", x))
    geom = geometry.interpolate_geometry(x.shape, size, scale_factor, mode, align_corners)
    return Upsample.apply(x, geom=geom)


# ---------------------------------------------------------------------------- upsample + conv2d
class FoldNearest(Function):
    """The conv weight (Cout, Cin, kH, kW) -> the transposed-conv weight (Cin, Cout, kH+sH-1,
    kW+sW-1) of `upsample_conv2d`'s fold: folded[i, o] = rows @ w[o, i] @ cols.T. Linear, so the
    backward is the same two matrices applied the other way: grad_w[o, i] = rows.T @ g[i, o] @ cols."""

    def forward(self, w, rows, cols):
        # on a GPU the two small 0/1 matrices are copied to it once, not on every forward
        xp = array_module_of(w)
        self.rows, self.cols = device_constant(xp, rows, w.dtype), device_constant(xp, cols, w.dtype)
        # (K, k) @ (Cout, Cin, k, k') @ (k', K') broadcast over the channel pairs; matmul, not a
        # three-operand einsum (NumPy runs that as one naive loop nest: 2.5x slower forward,
        # 12x backward, on the CAE's 32x32x3x3 weight)
        folded = self.rows @ w @ self.cols.T                    # (Cout, Cin, K, K')
        return xp.ascontiguousarray(folded.transpose(1, 0, 2, 3))

    def backward(self, grad):
        # grad: (Cin, Cout, K, K') -> (Cout, Cin, k, k')
        return (self.rows.T @ grad.transpose(1, 0, 2, 3) @ self.cols,)


def upsample_conv2d(x, weight, bias=None, size=None, scale_factor=None, mode="nearest",
                    align_corners=None, stride=1, padding=0, fold=True):
    """conv2d(interpolate(x, size, scale_factor, mode, align_corners), weight, bias, stride, padding).

    The same values and gradients as the two ops (to rounding), computed faster where it can:
    nearest upsampling by a whole factor followed by a stride-1 conv is ONE transposed conv of
    the small x with a folded weight (geometry.nearest_fold_geometry explains the fold; for a
    3x3 kernel after 2x upsampling it does 16 multiply-adds where the two ops do 36, and the
    upsampled image is never stored). fold=False, or any other case, runs the two ops.
    """
    _check_dtypes("upsample_conv2d", ("input x", x), ("weight", weight), ("bias", bias))
    upsample_geom = geometry.interpolate_geometry(x.shape, size, scale_factor, mode, align_corners)
    up_shape = (upsample_geom.n, upsample_geom.c, upsample_geom.out_h, upsample_geom.out_w)
    conv_geom = geometry.conv2d_geometry(up_shape, weight.shape, stride, padding,
                                         b_shape=None if bias is None else bias.shape)
    folded = geometry.nearest_fold_geometry(upsample_geom, conv_geom) if fold else None
    if folded is None:
        upsampled = Upsample.apply(x, geom=upsample_geom)
        return Conv2d.apply(*_with_bias(upsampled, weight, bias), geom=conv_geom)
    rows = geometry.nearest_fold_matrix(conv_geom.k_h, folded.stride_h)
    cols = geometry.nearest_fold_matrix(conv_geom.k_w, folded.stride_w)
    folded_weight = FoldNearest.apply(weight, rows=rows, cols=cols)
    return ConvTranspose2d.apply(*_with_bias(x, folded_weight, bias), geom=folded)


# ---------------------------------------------------------------------------- pad
PAD_MODES = ("constant",)


def _pad_array(array, widths, value):
    """`array` with (before, after) added to each axis: a positive width adds `value`s, a
    negative one crops that many (PyTorch's constant_pad_nd). Always a new array, never a view."""
    xp = array_module_of(array)
    crop = tuple(slice(max(-before, 0), size - max(-after, 0))
                 for (before, after), size in zip(widths, array.shape))
    grow = [(max(before, 0), max(after, 0)) for before, after in widths]
    return xp.pad(array[crop], grow, mode="constant", constant_values=value)


class Pad(Function):
    """Constant padding by `widths` (one (before, after) per axis, negative = crop). Its adjoint
    is padding by the opposite widths with zeros: the backward crops what the forward added
    and puts zeros back where it cropped."""

    def forward(self, x, widths, value):
        self.widths, self.value = widths, value
        return _pad_array(x, widths, value)

    def backward(self, grad):
        return (_pad_array(grad, [(-before, -after) for before, after in self.widths], 0),)


def _pad_widths(shape, pad):
    """PyTorch's `pad` (last dimension first: (left, right, top, bottom, ...)) -> one
    (before, after) per axis of `shape`, in axis order."""
    if not isinstance(pad, (tuple, list)) or any(
            isinstance(p, bool) or not isinstance(p, (int, np.integer)) for p in pad):
        raise TypeError(f"pad: pad must be a tuple of ints (left, right[, top, bottom, ...]), "
                        f"got {pad!r}")
    if len(pad) % 2 or len(pad) > 2 * len(shape):
        raise ValueError(f"pad: pad must hold an even number of ints, at most 2 per dimension of "
                         f"the input (shape {tuple(shape)}), got {len(pad)}: {tuple(pad)}")
    widths = [(0, 0)] * len(shape)
    for i in range(len(pad) // 2):
        widths[len(shape) - 1 - i] = (int(pad[2 * i]), int(pad[2 * i + 1]))
    for axis, ((before, after), size) in enumerate(zip(widths, shape)):
        if size - max(-before, 0) - max(-after, 0) < 0:
            raise ValueError(f"pad: negative pads {(before, after)} crop more than the {size} "
                             f"elements of dimension {axis} (input shape {tuple(shape)})")
    return widths


def pad(x, pad, mode="constant", value=0.0):
    """Pad (or, with negative amounts, crop) x as torch.nn.functional.pad does.

    pad: (left, right) pads the last dimension, (left, right, top, bottom) the last two, and so
    on, last dimension first; on NCHW input (left, right, top, bottom) pads W then H. A negative
    amount removes that many elements instead. mode: 'constant' only, filled with `value`.
    Example: x (N, C, 28, 28), pad=(1, 2, 0, -3) -> (N, C, 25, 31).
    """
    if mode not in PAD_MODES:
        raise ValueError(f"pad: mode must be one of {', '.join(map(repr, PAD_MODES))} (the modes "
                         f"aecore supports), got {mode!r}")
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"pad: value must be a real number, got {value!r}")
    _check_dtypes("pad", ("input x", x))
    widths = _pad_widths(x.shape, pad)
    return Pad.apply(x, widths=widths, value=float(value))


__all__ = ["linear", "conv2d", "conv_transpose2d", "max_pool2d", "interpolate", "upsample_conv2d",
           "pad", "avg_pool2d", "adaptive_avg_pool2d",
           "relu", "leaky_relu", "sigmoid", "tanh", "softplus", "mse_loss", "l1_loss",
           "binary_cross_entropy", "binary_cross_entropy_with_logits", "Tensor"]


# ---------------------------------------------------------------------------- nn layers' functions
# (issue 17) dropout, normalization and the activations beyond relu / sigmoid / tanh: each
# family is told in its own module (aecore.dropout, aecore.normalization, aecore.activations).
from .activations import elu, gelu, log_softmax, softmax  # noqa: E402
from .dropout import dropout, dropout2d  # noqa: E402
from .normalization import batch_norm, layer_norm  # noqa: E402

__all__ += ["dropout", "dropout2d", "batch_norm", "layer_norm", "gelu", "elu", "softmax",
            "log_softmax"]
