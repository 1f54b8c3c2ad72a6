"""Output-size and padding arithmetic shared by every op and every tier.

Every kernel receives *resolved* geometry, a small frozen dataclass with named fields
(Conv2dGeometry, ConvTranspose2dGeometry, MaxPool2dGeometry, InterpolateGeometry): explicit
integers for the padding on each side and explicit output sizes. All validation happens here, before any kernel runs, so a user sees an
error that names the argument instead of an index error from deep inside a loop.

Conventions (PyTorch's, NCHW):
- conv2d:            out = (in + pad_before + pad_after - span) // stride + 1, where
                     span = dilation * (kernel - 1) + 1 is the dilated kernel's extent
- max_pool2d:        out = floor_or_ceil((in + 2*pad - kernel) / stride) + 1, and in ceil mode the
                     last window must start inside the input or the left padding
- conv_transpose2d:  out = (in - 1) * stride - pad_before - pad_after + span + output_padding
- TensorFlow 'same': out = ceil(in / stride); the total padding max((out-1)*stride + span - in, 0)
                     is split with the extra pixel at the bottom/right.
- groups (both convs): the channels split into `groups` independent convs, so in_channels and
                     out_channels must be multiples of it (PyTorch's rule).

An output of more than MAX_OUTPUT_ELEMENTS elements is refused here, naming the arguments that
make it, rather than by the allocator after the work that came before it.

The end of the file describes the arrays a resolved geometry stands for (`conv2d_arrays`, ...):
the registry checks every kernel call against them.
"""

import dataclasses
import math
from dataclasses import dataclass

# interpolate's modes: PyTorch's legacy 'nearest', 'nearest-exact' (pixel centres, TF2's
# nearest resize) and 'bilinear'
INTERPOLATE_MODES = ("nearest", "nearest-exact", "bilinear")

# The most elements one output tensor may have (8 GiB in float32); raise it to go further.
MAX_OUTPUT_ELEMENTS = 2**31 - 1


# ---------------------------------------------------------------------------- the geometries
# Small frozen records with named fields: what a kernel needs to know of one call, resolved.

@dataclass(frozen=True)
class Geometry:
    """Base of the resolved geometries: `replace(**fields)` makes an edited copy (tests make
    broken ones on purpose), `as_dict()` the JSON-ready fields."""

    def replace(self, **fields):
        return dataclasses.replace(self, **fields)

    def as_dict(self):
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Conv2dGeometry(Geometry):
    """conv2d: x (n, c_in, h, w), weight (c_out, c_in // groups, k_h, k_w) -> y (n, c_out, out_h,
    out_w); pads on each side, explicit (TF's 'same' may differ before and after). Tap (ky, kx)
    reads input offset (ky * dilation_h, kx * dilation_w); dilation and groups default to 1, so
    a geometry written without them is the plain conv."""
    n: int
    c_in: int
    h: int
    w: int
    c_out: int
    k_h: int
    k_w: int
    stride_h: int
    stride_w: int
    pad_top: int
    pad_bottom: int
    pad_left: int
    pad_right: int
    out_h: int
    out_w: int
    dilation_h: int = 1
    dilation_w: int = 1
    groups: int = 1

    @property
    def stride(self):
        return (self.stride_h, self.stride_w)

    @property
    def dilation(self):
        return (self.dilation_h, self.dilation_w)

    @property
    def span_h(self):
        """Rows the dilated kernel covers: dilation_h * (k_h - 1) + 1."""
        return span(self.k_h, self.dilation_h)

    @property
    def span_w(self):
        return span(self.k_w, self.dilation_w)

    @property
    def pads(self):
        """(pad_top, pad_left): where the kernel's window (0, 0) starts."""
        return (self.pad_top, self.pad_left)

    @property
    def out_hw(self):
        return (self.out_h, self.out_w)


@dataclass(frozen=True)
class ConvTranspose2dGeometry(Conv2dGeometry):
    """conv_transpose2d: x (n, c_in, h, w), weight (c_in, c_out // groups, k_h, k_w) -> y (n, c_out,
    out_h, out_w). Output pixel (oy, ox) sits at (oy + pad_top, ox + pad_left) of the uncropped
    result of size (h - 1) * stride_h + span_h; pad_bottom / pad_right may be negative
    (output_padding)."""


@dataclass(frozen=True)
class MaxPool2dGeometry(Geometry):
    """max_pool2d: x (n, c, h, w) -> y, argmax (n, c, out_h, out_w); window (0, 0) starts at
    (-pad_top, -pad_left)."""
    n: int
    c: int
    h: int
    w: int
    k_h: int
    k_w: int
    stride_h: int
    stride_w: int
    pad_top: int
    pad_left: int
    out_h: int
    out_w: int


# ---- avg_pool2d and adaptive_avg_pool2d (issue 17) ----
@dataclass(frozen=True)
class AvgPool2dGeometry(Geometry):
    """avg_pool2d: x (n, c, h, w) -> y (n, c, out_h, out_w); the windows are max_pool2d's
    (`windows`), and what each window's sum is divided by comes from the rest: the padding
    after the input (pad_bottom, pad_right; TF's 'same' may differ from pad_top, pad_left),
    whether padded positions count, and a divisor that replaces the count (None: no override)."""
    n: int
    c: int
    h: int
    w: int
    k_h: int
    k_w: int
    stride_h: int
    stride_w: int
    pad_top: int
    pad_bottom: int
    pad_left: int
    pad_right: int
    out_h: int
    out_w: int
    count_include_pad: bool
    divisor_override: "int | None"     # a nonzero int replaces every window's count

    @property
    def windows(self):
        """The same windows as a MaxPool2dGeometry (one place checks and sizes them)."""
        return MaxPool2dGeometry(n=self.n, c=self.c, h=self.h, w=self.w, k_h=self.k_h,
                                 k_w=self.k_w, stride_h=self.stride_h, stride_w=self.stride_w,
                                 pad_top=self.pad_top, pad_left=self.pad_left, out_h=self.out_h,
                                 out_w=self.out_w)


@dataclass(frozen=True)
class AdaptiveAvgPool2dGeometry(Geometry):
    """adaptive_avg_pool2d: x (n, c, h, w) -> y (n, c, out_h, out_w); output row o averages the
    input rows adaptive_bins(h, out_h)[o] (and the same for columns)."""
    n: int
    c: int
    h: int
    w: int
    out_h: int
    out_w: int

    @property
    def bins_h(self):
        return adaptive_bins(self.h, self.out_h)

    @property
    def bins_w(self):
        return adaptive_bins(self.w, self.out_w)
# ---- end of avg_pool2d and adaptive_avg_pool2d ----


@dataclass(frozen=True)
class InterpolateGeometry(Geometry):
    """interpolate: x (n, c, h, w) -> y (n, c, out_h, out_w); scale_h / scale_w: the factor from
    an output index to its source coordinate (PyTorch's rules, see interpolate_geometry)."""
    n: int
    c: int
    h: int
    w: int
    out_h: int
    out_w: int
    mode: str
    align_corners: bool
    scale_h: float
    scale_w: float


def span(kernel, dilation):
    """The extent of a dilated kernel along one axis: its taps sit `dilation` apart."""
    return dilation * (kernel - 1) + 1


def count(value, name):
    """`value` as an int >= 1 (groups), or TypeError / ValueError naming `name`."""
    if not _is_int(value):
        raise TypeError(f"{name} must be an int, got {shown(value)}")
    if int(value) < 1:
        raise ValueError(f"{name} must be >= 1, got {shown(value)}")
    return int(value)


def _check_weight(w_shape, x_shape, c_in, layout, groups=1):
    """The conv's output channels and kernel size, the weight checked against the input's
    channels and `groups`; layout: "Cout, Cin" (conv2d: w (Cout, Cin // groups, kH, kW)) or
    "Cin, Cout" (conv_transpose2d: w (Cin, Cout // groups, kH, kW))."""
    if len(w_shape) != 4:
        raise ValueError(f"weight must be 4-D ({layout}, kH, kW), got shape {tuple(w_shape)}")
    first, second, k_h, k_w = (int(s) for s in w_shape)
    if min(first, second, k_h, k_w) < 1:
        raise ValueError(f"weight must have every dimension >= 1, got shape {tuple(w_shape)}")
    if c_in % groups:
        raise ValueError(f"groups={groups} must divide the input channels, but input has {c_in} "
                         f"channels (shape {tuple(x_shape)})")
    if layout == "Cout, Cin":
        c_out, w_c_in, per_group = first, second, c_in // groups
        if c_out % groups:
            raise ValueError(f"groups={groups} must divide the output channels, but weight has "
                             f"{c_out} (shape {tuple(w_shape)})")
    else:
        c_out, w_c_in, per_group = second * groups, first, c_in
    if w_c_in != per_group:
        each = "" if groups == 1 else f" per group (groups={groups})"
        raise ValueError(
            f"weight expects {w_c_in} input channels{each} (shape {tuple(w_shape)}) but input "
            f"has {c_in} channels (shape {tuple(x_shape)})")
    return c_out, k_h, k_w


def _is_int(value):
    # bool is an int subclass in Python, but `padding=True` is always a mistake.
    return isinstance(value, int) and not isinstance(value, bool) or (
        hasattr(value, "dtype") and getattr(value, "ndim", 1) == 0 and value.dtype.kind in "iu"
    )


def _is_real(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) or (
        hasattr(value, "dtype") and getattr(value, "ndim", 1) == 0 and value.dtype.kind in "iuf")


def shown(value):
    """repr(value) on one line (an array's repr can span several)."""
    return " ".join(repr(value).split())


def pair(value, name, minimum=1):
    """Turn an int or a 2-sequence into an (h, w) pair of ints >= minimum, or raise naming `name`."""
    if _is_int(value):
        values = (int(value), int(value))
    elif isinstance(value, (tuple, list)) and len(value) == 2 and all(_is_int(v) for v in value):
        values = (int(value[0]), int(value[1]))
    else:
        raise TypeError(f"{name} must be an int or a pair of ints (a tuple or list), "
                        f"got {shown(value)}")
    if min(values) < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {shown(value)}")
    return values


def check_output_size(op, shape, cause):
    """Refuse an output of more than MAX_OUTPUT_ELEMENTS elements, naming the `cause`."""
    elements = math.prod(shape)
    if elements > MAX_OUTPUT_ELEMENTS:
        raise ValueError(f"{op}: {cause} gives an output of {tuple(shape)} = {elements:.1e} "
                         f"elements, above the limit of {MAX_OUTPUT_ELEMENTS:,}")


def check_input_4d(x_shape, name="input"):
    """Validate an NCHW shape; return (N, C, H, W)."""
    if len(x_shape) != 4:
        raise ValueError(f"{name} must be 4-D (N, C, H, W), got shape {tuple(x_shape)}")
    if min(x_shape) < 1:
        raise ValueError(f"{name} must have every dimension >= 1, got shape {tuple(x_shape)}")
    return tuple(int(s) for s in x_shape)


def same_padding(in_size, kernel, stride):
    """TensorFlow's 'same' rule for one axis: (pad_before, pad_after), extra pixel after."""
    out = -(-in_size // stride)  # ceil(in / stride)
    total = max((out - 1) * stride + kernel - in_size, 0)
    return total // 2, total - total // 2


def resolve_padding(padding, in_hw, kernel_hw, stride_hw, name="padding"):
    """Resolve int / pair / 'same' / 'valid' into (top, bottom, left, right)."""
    if isinstance(padding, str):
        mode = padding.lower()
        if mode == "valid":
            return (0, 0, 0, 0)
        if mode == "same":
            top, bottom = same_padding(in_hw[0], kernel_hw[0], stride_hw[0])
            left, right = same_padding(in_hw[1], kernel_hw[1], stride_hw[1])
            return (top, bottom, left, right)
        raise ValueError(f"{name} must be an int, a pair of ints, 'same' or 'valid', got {padding!r}")
    pad_h, pad_w = pair(padding, name, minimum=0)
    return (pad_h, pad_h, pad_w, pad_w)


def conv2d_geometry(x_shape, w_shape, stride=1, padding=0, b_shape=None, dilation=1, groups=1):
    """Validate conv2d arguments; return the Conv2dGeometry every kernel reads.

    x: (N, Cin, H, W), w: (Cout, Cin // groups, kH, kW) -> out: (N, Cout, outH, outW), with
    outH = (H + pads - dilation * (kH - 1) - 1) // stride + 1; 'same' pads for the dilated kernel.
    """
    n, c_in, h, w = check_input_4d(x_shape, "input")
    groups = count(groups, "groups")
    c_out, k_h, k_w = _check_weight(w_shape, x_shape, c_in, "Cout, Cin", groups)
    if b_shape is not None and tuple(b_shape) != (c_out,):
        raise ValueError(f"bias must have shape ({c_out},), got {tuple(b_shape)}")
    stride_h, stride_w = pair(stride, "stride")
    dilation_h, dilation_w = pair(dilation, "dilation")
    span_h, span_w = span(k_h, dilation_h), span(k_w, dilation_w)
    top, bottom, left, right = resolve_padding(padding, (h, w), (span_h, span_w),
                                               (stride_h, stride_w))
    if h + top + bottom < span_h or w + left + right < span_w:
        dilated = "" if (dilation_h, dilation_w) == (1, 1) else \
            f" dilated by {(dilation_h, dilation_w)} to ({span_h}, {span_w})"
        raise ValueError(
            f"kernel size ({k_h}, {k_w}){dilated} is larger than the padded input "
            f"({h + top + bottom}, {w + left + right}) (input {h}x{w}, padding {padding!r})")
    out_h = (h + top + bottom - span_h) // stride_h + 1
    out_w = (w + left + right - span_w) // stride_w + 1
    check_output_size("conv2d", (n, c_out, out_h, out_w),
                      f"padding={shown(padding)} with weight {tuple(w_shape)}")
    return Conv2dGeometry(n=n, c_in=c_in, h=h, w=w, c_out=c_out, k_h=k_h, k_w=k_w,
                          stride_h=stride_h, stride_w=stride_w, pad_top=top, pad_bottom=bottom,
                          pad_left=left, pad_right=right, out_h=out_h, out_w=out_w,
                          dilation_h=dilation_h, dilation_w=dilation_w, groups=groups)


def _pool_axis(in_size, kernel, stride, pad, ceil_mode):
    numerator = in_size + 2 * pad - kernel
    out = (-(-numerator // stride) if ceil_mode else numerator // stride) + 1
    # PyTorch: in ceil mode the last window must start inside the input or the left padding.
    if ceil_mode and (out - 1) * stride >= in_size + pad:
        out -= 1
    return out


def max_pool2d_geometry(x_shape, kernel_size, stride=None, padding=0, ceil_mode=False):
    """Validate max_pool2d arguments.

    x: (N, C, H, W) -> out: (N, C, outH, outW). Padded positions act as -inf.
    Returns pad_top/pad_left (where window (0, 0) starts) and the output size; 'same' is TF's rule.
    """
    n, c, h, w = check_input_4d(x_shape, "input")
    k_h, k_w = pair(kernel_size, "kernel_size")
    stride_h, stride_w = pair(kernel_size if stride is None else stride, "stride")
    if isinstance(padding, str):
        if padding.lower() not in ("same", "valid"):
            raise ValueError(f"padding must be an int, a pair of ints, 'same' or 'valid', got {padding!r}")
        if ceil_mode:
            raise ValueError("ceil_mode=True cannot be combined with padding='same' or 'valid'")
        top, bottom, left, right = resolve_padding(padding, (h, w), (k_h, k_w), (stride_h, stride_w))
        if h + top + bottom < k_h or w + left + right < k_w:
            raise ValueError(f"kernel_size ({k_h}, {k_w}) is larger than the input ({h}, {w}) "
                             f"with padding {padding!r}")
        out_h = (h + top + bottom - k_h) // stride_h + 1
        out_w = (w + left + right - k_w) // stride_w + 1
    else:
        pad_h, pad_w = pair(padding, "padding", minimum=0)
        if pad_h > k_h // 2 or pad_w > k_w // 2:
            raise ValueError(f"padding must be at most half of kernel_size ({k_h}, {k_w}), "
                             f"got {padding!r}")
        if h + 2 * pad_h < k_h or w + 2 * pad_w < k_w:
            raise ValueError(f"kernel_size ({k_h}, {k_w}) is larger than the padded input "
                             f"({h + 2 * pad_h}, {w + 2 * pad_w})")
        top, left = pad_h, pad_w
        out_h = _pool_axis(h, k_h, stride_h, pad_h, ceil_mode)
        out_w = _pool_axis(w, k_w, stride_w, pad_w, ceil_mode)
    return MaxPool2dGeometry(n=n, c=c, h=h, w=w, k_h=k_h, k_w=k_w, stride_h=stride_h,
                             stride_w=stride_w, pad_top=top, pad_left=left, out_h=out_h,
                             out_w=out_w)


# ---- avg_pool2d and adaptive_avg_pool2d (issue 17) ----
def _divisor_override(value):
    """None, or a nonzero int (PyTorch's rule), else TypeError / ValueError naming it."""
    if value is None:
        return None
    if not _is_int(value):
        raise TypeError(f"divisor_override must be None or an int, got {shown(value)}")
    if int(value) == 0:
        raise ValueError("divisor_override must not be zero, got 0")
    return int(value)


def avg_pool2d_geometry(x_shape, kernel_size, stride=None, padding=0, ceil_mode=False,
                        count_include_pad=True, divisor_override=None):
    """Validate avg_pool2d arguments.

    x: (N, C, H, W) -> out: (N, C, outH, outW). The windows and the output size are max_pool2d's
    (max_pool2d_geometry: PyTorch's ceil mode, padding <= kernel / 2, TF's 'same' / 'valid').
    Each window's sum is divided by divisor_override when given, else by its count of positions:
    inside the input only (count_include_pad=False), or inside the input and its padding
    (count_include_pad=True; PyTorch's rule: a window that ceil mode extends past the padding
    after the input counts only up to that padding's edge). For 'same' the padding after the
    input is TF's (pad_bottom, pad_right, which take the odd pixel).
    """
    windows = max_pool2d_geometry(x_shape, kernel_size, stride, padding, ceil_mode)
    if not isinstance(count_include_pad, bool):
        raise TypeError(f"count_include_pad must be a bool, got {shown(count_include_pad)}")
    divisor = _divisor_override(divisor_override)
    if isinstance(padding, str):
        _, bottom, _, right = resolve_padding(padding, (windows.h, windows.w),
                                              (windows.k_h, windows.k_w),
                                              (windows.stride_h, windows.stride_w))
    else:
        bottom, right = windows.pad_top, windows.pad_left
    return AvgPool2dGeometry(**{**windows.as_dict(), "pad_bottom": bottom, "pad_right": right},
                             count_include_pad=bool(count_include_pad), divisor_override=divisor)


def adaptive_bins(in_size, out_size):
    """PyTorch's adaptive-pooling bins along one axis: output o covers the input positions
    floor(o * in / out) <= i < ceil((o + 1) * in / out). Bins overlap where out does not divide
    in, and repeat positions when out > in."""
    return tuple((o * in_size // out_size, -(-(o + 1) * in_size // out_size))
                 for o in range(out_size))


def adaptive_avg_pool2d_geometry(x_shape, output_size):
    """Validate adaptive_avg_pool2d arguments. x: (N, C, H, W) -> out: (N, C, outH, outW);
    output_size: an int, or a pair whose entries are ints or None (None keeps that input size,
    as PyTorch does)."""
    n, c, h, w = check_input_4d(x_shape, "input")
    sizes = output_size if isinstance(output_size, (tuple, list)) else (output_size, output_size)
    if len(sizes) != 2 or not all(s is None or _is_int(s) for s in sizes):
        raise TypeError(f"output_size must be an int or a pair of ints (or None), got "
                        f"{shown(output_size)}")
    out_h, out_w = (size if s is None else int(s) for s, size in zip(sizes, (h, w)))
    if min(out_h, out_w) < 1:
        raise ValueError(f"output_size must be >= 1, got {shown(output_size)}")
    check_output_size("adaptive_avg_pool2d", (n, c, out_h, out_w),
                      f"output_size={shown(output_size)}")
    return AdaptiveAvgPool2dGeometry(n=n, c=c, h=h, w=w, out_h=out_h, out_w=out_w)
# ---- end of avg_pool2d and adaptive_avg_pool2d ----


def _keras_transpose_crop(in_size, kernel, stride, output_padding, mode, keras_padding):
    """(crop_before, crop_after) of the full transposed result, (in - 1) * stride + kernel, for
    Keras' 'same' / 'valid' on one axis; crop_after < 0 extends the output past the full result."""
    full = (in_size - 1) * stride + kernel
    if not keras_padding:
        out = in_size * stride if mode == "same" else in_size * stride + max(kernel - stride, 0)
    else:
        pad = kernel // 2 if mode == "same" else 0
        out = full - 2 * pad + output_padding
    before = max(full - out, 0) // 2 if mode == "same" else 0
    return before, full - out - before


def conv_transpose2d_geometry(x_shape, w_shape, stride=1, padding=0, output_padding=0,
                              b_shape=None, dilation=1, groups=1):
    """Validate conv_transpose2d arguments.

    x: (N, Cin, H, W), w: (Cin, Cout // groups, kH, kW) -> out: (N, Cout, outH, outW) with
    outH = (H - 1) * stride - pad_top - pad_bottom + span (output_padding is folded into
    pad_bottom as a negative crop; span = dilation * (kH - 1) + 1, kH itself when undilated).
    Output pixel (oy, ox) sits at (oy + pad_top, ox + pad_left) of the uncropped "full" result
    of size (H - 1) * stride + span. Below, kH stands for the span.

    Integer padding is PyTorch's: pad_top = padding, pad_bottom = padding - output_padding.
    'same' / 'valid' are Keras' Conv2DTranspose:
      without output_padding   'same':  outH = H * stride
                               'valid': outH = H * stride + max(kH - stride, 0)
      with output_padding      outH = (H - 1) * stride + kH - 2 * (kH // 2 if 'same' else 0)
                                      + output_padding
    and TensorFlow places the crop as conv2d's 'same' padding would for an input of size outH:
    pad_top = max((H - 1) * stride + kH - outH, 0) // 2 ('same'; 0 for 'valid'), the odd pixel
    at the bottom; an outH beyond the full result ends in rows only the bias reaches.
    """
    n, c_in, h, w = check_input_4d(x_shape, "input")
    groups = count(groups, "groups")
    c_out, k_h, k_w = _check_weight(w_shape, x_shape, c_in, "Cin, Cout", groups)
    if b_shape is not None and tuple(b_shape) != (c_out,):
        raise ValueError(f"bias must have shape ({c_out},), got {tuple(b_shape)}")
    stride_h, stride_w = pair(stride, "stride")
    dilation_h, dilation_w = pair(dilation, "dilation")
    span_h, span_w = span(k_h, dilation_h), span(k_w, dilation_w)
    out_pad_h, out_pad_w = pair(output_padding, "output_padding", minimum=0)
    if out_pad_h >= stride_h or out_pad_w >= stride_w:
        raise ValueError(f"output_padding must be smaller than stride {(stride_h, stride_w)}, "
                         f"got {shown(output_padding)}")
    if isinstance(padding, str):
        mode = padding.lower()
        if mode not in ("same", "valid"):
            raise ValueError(f"padding must be an int, a pair of ints, 'same' or 'valid', got {padding!r}")
        # output_padding=0 means "not given" here, as Keras' output_padding=None (PyTorch has no
        # string padding for transposed convs, so no other meaning is taken).
        keras_padding = (out_pad_h, out_pad_w) != (0, 0)
        top, bottom = _keras_transpose_crop(h, span_h, stride_h, out_pad_h, mode, keras_padding)
        left, right = _keras_transpose_crop(w, span_w, stride_w, out_pad_w, mode, keras_padding)
    else:
        pad_h, pad_w = pair(padding, "padding", minimum=0)
        top, left = pad_h, pad_w
        bottom, right = pad_h - out_pad_h, pad_w - out_pad_w
    out_h = (h - 1) * stride_h + span_h - top - bottom
    out_w = (w - 1) * stride_w + span_w - left - right
    if out_h < 1 or out_w < 1:
        raise ValueError(f"padding {padding!r} crops the whole output: the output size would be "
                         f"({out_h}, {out_w}) for input {h}x{w}, kernel ({k_h}, {k_w}), stride "
                         f"{(stride_h, stride_w)}, dilation {(dilation_h, dilation_w)}")
    check_output_size("conv_transpose2d", (n, c_out, out_h, out_w),
                      f"stride={shown(stride)} with weight {tuple(w_shape)}")
    return ConvTranspose2dGeometry(n=n, c_in=c_in, h=h, w=w, c_out=c_out, k_h=k_h, k_w=k_w,
                                   stride_h=stride_h, stride_w=stride_w, pad_top=top,
                                   pad_bottom=bottom, pad_left=left, pad_right=right,
                                   out_h=out_h, out_w=out_w, dilation_h=dilation_h,
                                   dilation_w=dilation_w, groups=groups)


def _scale_pair(scale_factor):
    """scale_factor (a number or a pair of numbers) as two floats, or TypeError naming it."""
    if _is_real(scale_factor):
        return float(scale_factor), float(scale_factor)
    if isinstance(scale_factor, (tuple, list)) and len(scale_factor) == 2 and all(
            _is_real(s) for s in scale_factor):
        return float(scale_factor[0]), float(scale_factor[1])
    raise TypeError("scale_factor must be a positive number or a pair of numbers, "
                    f"got {shown(scale_factor)}")


def interpolate_geometry(x_shape, size=None, scale_factor=None, mode="nearest", align_corners=None):
    """Validate interpolate arguments; return output size and the source-index scales.

    PyTorch's rules: with `size`, scale = in / out; with `scale_factor` s, out = floor(in * s) and
    scale = 1 / s (the factor itself, not recomputed from the sizes). For bilinear with
    align_corners=True, scale = (in - 1) / (out - 1) (0 when out == 1).
    """
    n, c, h, w = check_input_4d(x_shape, "input")
    if mode not in INTERPOLATE_MODES:
        raise ValueError(f"mode must be one of {', '.join(map(repr, INTERPOLATE_MODES))}, "
                         f"got {mode!r}")
    if mode != "bilinear" and align_corners is not None:
        raise ValueError("align_corners can only be set with mode='bilinear', got "
                         f"align_corners={align_corners!r} with mode={mode!r}")
    align = bool(align_corners) if mode == "bilinear" else False
    if (size is None) == (scale_factor is None):
        raise ValueError("give exactly one of size or scale_factor, got "
                         f"size={size!r}, scale_factor={scale_factor!r}")
    if size is not None:
        out_h, out_w = pair(size, "size")
        scales = (None, None)
        cause = f"size={shown(size)}"
    else:
        factors = _scale_pair(scale_factor)
        if min(factors) <= 0 or not all(math.isfinite(f) for f in factors):
            raise ValueError(f"scale_factor must be positive and finite, got {shown(scale_factor)}")
        out_h, out_w = int(math.floor(h * factors[0])), int(math.floor(w * factors[1]))
        if out_h < 1 or out_w < 1:
            raise ValueError(f"scale_factor {shown(scale_factor)} gives an empty output "
                             f"({out_h}, {out_w}) for input {h}x{w}")
        scales = factors
        cause = f"scale_factor={shown(scale_factor)}"
    check_output_size("interpolate", (n, c, out_h, out_w), cause)

    def axis_scale(in_size, out_size, factor):
        if align:
            return (in_size - 1) / (out_size - 1) if out_size > 1 else 0.0
        return 1.0 / factor if factor is not None else in_size / out_size

    return InterpolateGeometry(n=n, c=c, h=h, w=w, out_h=out_h, out_w=out_w, mode=mode,
                               align_corners=align, scale_h=axis_scale(h, out_h, scales[0]),
                               scale_w=axis_scale(w, out_w, scales[1]))


# ---------------------------------------------------------------------------- nearest + conv fold
def nearest_fold_matrix(kernel, factor):
    """(kernel + factor - 1, kernel) 0/1 matrix A of one axis of the nearest-upsample fold:
    folded[k] = sum_a A[k, a] * w[a], with A[k, a] = 1 when kernel-1-k <= a <= kernel-1-k + factor-1.
    For kernel 3, factor 2: folded = (w2, w1 + w2, w0 + w1, w0)."""
    return [[1 if kernel - 1 - k <= a <= kernel - 2 - k + factor else 0 for a in range(kernel)]
            for k in range(kernel + factor - 1)]


def nearest_fold_geometry(upsample_geom, conv_geom):
    """The transposed-conv geometry that computes conv2d(nearest_upsample(x)) as ONE op, or None.

    Upsampling by a whole factor s (out = in * s, output row r copies input row r // s) and then
    a stride-1 conv with kernel k and padding (P_before, P_after) is, along each axis, a
    transposed conv of the SMALL input with stride s, kernel K = k + s - 1 and padding
    (k - 1 - P_before, k - 1 - P_after). Its weight is the conv weight, flipped, summed over
    each run of s taps (`nearest_fold_matrix`): an output pixel meets each input pixel through
    the s copies the upsampling made of it, so those s taps share one input value.
    The fold does (k + s - 1)^2 / (k^2 s^2) of the multiply-adds: 16/36 for a 3x3 kernel after
    2x upsampling -- the same saving as Winograd F(2x2, 3x3), but exact, with no transforms, and
    without materializing the upsampled image.

    upsample_geom: from interpolate_geometry; conv_geom: from conv2d_geometry on the upsampled
    shape. None when the pair does not fold: another mode, a factor that is not a whole number,
    a source table that is not r // s (PyTorch's float32 rule can differ for odd factors), a
    conv stride > 1, dilation or groups, or padding wider than kernel - 1 (whole rows of
    padding).
    """
    from .upsample import NEAREST_TABLES  # lazy: upsample.py is a kernel module

    g, c = upsample_geom, conv_geom
    if g.mode not in NEAREST_TABLES or (c.stride_h, c.stride_w) != (1, 1):
        return None
    if c.dilation != (1, 1) or c.groups != 1:       # the fold is derived for the plain conv
        return None
    factors = []
    for axis in ("h", "w"):
        in_size, out_size = getattr(g, axis), getattr(g, "out_" + axis)
        if out_size % in_size:
            return None
        factor = out_size // in_size
        table = NEAREST_TABLES[g.mode](in_size, out_size, getattr(g, "scale_" + axis))
        if any(int(src) != dst // factor for dst, src in enumerate(table)):
            return None
        factors.append(factor)
    if factors == [1, 1]:
        return None
    pads = (c.pad_top, c.pad_bottom, c.pad_left, c.pad_right)
    if max(pads[:2]) > c.k_h - 1 or max(pads[2:]) > c.k_w - 1:
        return None
    (s_h, s_w), (k_h, k_w) = factors, (c.k_h, c.k_w)
    folded = ConvTranspose2dGeometry(
        n=g.n, c_in=g.c, h=g.h, w=g.w, c_out=c.c_out, k_h=k_h + s_h - 1, k_w=k_w + s_w - 1,
        stride_h=s_h, stride_w=s_w, pad_top=k_h - 1 - pads[0], pad_bottom=k_h - 1 - pads[1],
        pad_left=k_w - 1 - pads[2], pad_right=k_w - 1 - pads[3], out_h=c.out_h, out_w=c.out_w)
    # the transposed conv's own size rule gives the conv's output size
    assert (g.h - 1) * s_h + folded.k_h - folded.pad_top - folded.pad_bottom == c.out_h
    assert (g.w - 1) * s_w + folded.k_w - folded.pad_left - folded.pad_right == c.out_w
    return folded


# ---------------------------------------------------------------------------- arrays of a geometry
# The arrays a resolved geometry stands for, by role, for the registry's check of every kernel
# call (kernels/registry.py). Each function first checks that the geometry holds together (every
# size an int, the output size the one its formula gives), so that a geometry made or edited by
# hand cannot send a kernel outside its arrays either. A problem raises ValueError naming the field.

def _fields(geom, minimum, *names):
    """geom.<name> for each name, each an int >= minimum (any int when minimum is None)."""
    values = []
    for name in names:
        value = getattr(geom, name)
        if not _is_int(value) or minimum is not None and value < minimum:
            at_least = "" if minimum is None else f" >= {minimum}"
            raise ValueError(f"geom.{name} must be an int{at_least}, got {shown(value)}")
        values.append(int(value))
    return values


def _formula(geom, name, expected, formula):
    if getattr(geom, name) != expected:
        raise ValueError(f"geom.{name} is {getattr(geom, name)}, but {formula} gives {expected}")


def _of_kind(geom, kind):
    """Refuse anything but a geometry of `kind` (a conv geometry is no max-pool geometry)."""
    if type(geom) is not kind:     # exact: a transposed conv's geometry is no conv2d geometry
        maker = {Conv2dGeometry: "conv2d_geometry", ConvTranspose2dGeometry: "conv_transpose2d_geometry",
                 MaxPool2dGeometry: "max_pool2d_geometry", InterpolateGeometry: "interpolate_geometry",
                 AvgPool2dGeometry: "avg_pool2d_geometry"}[kind]
        raise TypeError(f"geom must be a {kind.__name__} (from geometry.{maker}), got "
                        f"{type(geom).__name__}")


def _conv_fields(geom):
    """The sizes every conv geometry must hold: n, c_in, h, w, c_out, k_h, k_w, stride, spans
    and groups, each an int >= 1, groups dividing both channel counts."""
    n, c_in, h, w, c_out, k_h, k_w, s_h, s_w, d_h, d_w, groups = _fields(
        geom, 1, "n", "c_in", "h", "w", "c_out", "k_h", "k_w", "stride_h", "stride_w",
        "dilation_h", "dilation_w", "groups")
    if c_in % groups or c_out % groups:
        raise ValueError(f"geom.groups is {groups}, which does not divide c_in={c_in} and "
                         f"c_out={c_out}")
    return n, c_in, h, w, c_out, k_h, k_w, s_h, s_w, span(k_h, d_h), span(k_w, d_w), groups


def conv2d_arrays(geom):
    """{role: shape} of a conv2d geometry: input, weight (Cout, Cin // groups, kH, kW), bias,
    output."""
    _of_kind(geom, Conv2dGeometry)
    n, c_in, h, w, c_out, k_h, k_w, s_h, s_w, span_h, span_w, groups = _conv_fields(geom)
    top, bottom, left, right = _fields(geom, 0, "pad_top", "pad_bottom", "pad_left", "pad_right")
    _fields(geom, 1, "out_h", "out_w")
    _formula(geom, "out_h", (h + top + bottom - span_h) // s_h + 1,
             "(h + pads - span_h) // stride_h + 1")
    _formula(geom, "out_w", (w + left + right - span_w) // s_w + 1,
             "(w + pads - span_w) // stride_w + 1")
    return {"input": (n, c_in, h, w), "weight": (c_out, c_in // groups, k_h, k_w),
            "bias": (c_out,), "output": (n, c_out, geom.out_h, geom.out_w)}


def conv_transpose2d_arrays(geom):
    """{role: shape} of a conv_transpose2d geometry: input, weight (Cin, Cout // groups, kH, kW),
    bias, output. pad_bottom / pad_right may be negative (output_padding)."""
    _of_kind(geom, ConvTranspose2dGeometry)
    n, c_in, h, w, c_out, k_h, k_w, s_h, s_w, span_h, span_w, groups = _conv_fields(geom)
    top, left = _fields(geom, 0, "pad_top", "pad_left")
    bottom, right = _fields(geom, None, "pad_bottom", "pad_right")
    _fields(geom, 1, "out_h", "out_w")
    _formula(geom, "out_h", (h - 1) * s_h + span_h - top - bottom,
             "(h - 1) * stride_h + span_h - pads")
    _formula(geom, "out_w", (w - 1) * s_w + span_w - left - right,
             "(w - 1) * stride_w + span_w - pads")
    return {"input": (n, c_in, h, w), "weight": (c_in, c_out // groups, k_h, k_w),
            "bias": (c_out,), "output": (n, c_out, geom.out_h, geom.out_w)}


def max_pool2d_arrays(geom):
    """{role: shape} of a max_pool2d geometry: input, output. Every window must overlap the
    input: the first one ends inside it (pad < kernel), the last one starts inside it."""
    _of_kind(geom, MaxPool2dGeometry)
    n, c, h, w, k_h, k_w, s_h, s_w, out_h, out_w = _fields(
        geom, 1, "n", "c", "h", "w", "k_h", "k_w", "stride_h", "stride_w", "out_h", "out_w")
    top, left = _fields(geom, 0, "pad_top", "pad_left")
    for pad, kernel, name in ((top, k_h, "pad_top"), (left, k_w, "pad_left")):
        if pad >= kernel:
            raise ValueError(f"geom.{name} is {pad}: the first window would lie in the padding "
                             f"(kernel {kernel})")
    for out, stride, pad, size, name in ((out_h, s_h, top, h, "out_h"), (out_w, s_w, left, w, "out_w")):
        if (out - 1) * stride - pad >= size:
            raise ValueError(f"geom.{name} is {out}: the last window would start past the "
                             f"input ({size})")
    return {"input": (n, c, h, w), "output": (n, c, out_h, out_w)}


# ---- avg_pool2d (issue 17) ----
def avg_pool2d_arrays(geom):
    """{role: shape} of an avg_pool2d geometry: input, output. Its windows must pass
    max_pool2d_arrays' checks; the padding after the input is >= 0, count_include_pad a bool and
    divisor_override None or a nonzero int, so every window divides by a nonzero number."""
    _of_kind(geom, AvgPool2dGeometry)
    roles = max_pool2d_arrays(geom.windows)
    _fields(geom, 0, "pad_bottom", "pad_right")
    if not isinstance(geom.count_include_pad, bool):
        raise ValueError(f"geom.count_include_pad must be a bool, got {shown(geom.count_include_pad)}")
    if geom.divisor_override is not None and (not _is_int(geom.divisor_override)
                                              or geom.divisor_override == 0):
        raise ValueError(f"geom.divisor_override must be None or a nonzero int, got "
                         f"{shown(geom.divisor_override)}")
    return roles
# ---- end of avg_pool2d ----


def interpolate_arrays(geom):
    """{role: shape} of an interpolate geometry: input, output. The source-index scales must be
    finite and >= 0; every geometry interpolate_geometry makes has scale <= in (in / out,
    1 / factor with in * factor >= 1, or (in - 1) / (out - 1)), so in + 1 leaves room for rounding."""
    _of_kind(geom, InterpolateGeometry)
    n, c, h, w, out_h, out_w = _fields(geom, 1, "n", "c", "h", "w", "out_h", "out_w")
    if geom.mode not in INTERPOLATE_MODES:
        raise ValueError(f"geom.mode must be one of {', '.join(map(repr, INTERPOLATE_MODES))}, "
                         f"got {shown(geom.mode)}")
    for name, size in (("scale_h", h), ("scale_w", w)):
        scale = getattr(geom, name)
        if not (_is_real(scale) and 0 <= scale <= size + 1):
            raise ValueError(f"geom.{name} must be a number from 0 to {size + 1}, "
                             f"got {shown(scale)}")
    return {"input": (n, c, h, w), "output": (n, c, out_h, out_w)}
