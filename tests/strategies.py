"""Hypothesis strategies shared by every test file: shapes, broadcastable pairs, float64 arrays."""

import math

import numpy as np
from hypothesis import assume
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from aecore.kernels import geometry
from tiers import tiny_shapes


def shapes(min_dims=1, max_dims=3, min_side=1, max_side=4):
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=min_side, max_side=max_side)


def arrays(shape, low=-2.0, high=2.0, dtype=np.float64):
    """Finite float arrays in [low, high] (bounded so finite differences stay accurate)."""
    return hnp.arrays(dtype, shape, elements=st.floats(low, high, allow_nan=False, width=64))


@st.composite
def broadcastable_pair(draw, max_dims=3, max_side=4):
    """Two shapes that broadcast together, covering size-1 and missing leading axes."""
    shape_a, shape_b = draw(hnp.mutually_broadcastable_shapes(
        num_shapes=2, min_dims=0, max_dims=max_dims, max_side=max_side)).input_shapes
    return shape_a, shape_b


@st.composite
def array_pair(draw, low=-2.0, high=2.0, max_dims=3, max_side=4):
    shape_a, shape_b = draw(broadcastable_pair(max_dims=max_dims, max_side=max_side))
    return draw(arrays(shape_a, low, high)), draw(arrays(shape_b, low, high))


@st.composite
def away_from(draw, shape, points=(0.0,), margin=0.05, low=-2.0, high=2.0):
    """An array whose entries stay `margin` away from kinks (relu at 0, clip bounds)."""
    values = draw(arrays(shape, low, high))
    for point in points:
        close = np.abs(values - point) < margin
        values = np.where(close, point + margin * np.where(values >= point, 2, -2), values)
    return values


# ---------------------------------------------------------------------------- conv-family geometry
# Drawn directly valid (kernels up to the padded input, 1x1 images, odd sizes, every padding
# form); the size limits shrink in the CUDA-simulator process, which is slow.
TINY = tiny_shapes()
MAX_N = 2 if TINY else 3
MAX_C = 2 if TINY else 3
MAX_HW = 5 if TINY else 9
MAX_OUT = 7 if TINY else 12


def conv_channels(draw, max_c, grouped):
    """(c_in, c_out, groups): groups 1 unless `grouped`; then 1, 2 or c_in (depthwise, c_out a
    multiple of c_in), the channel counts multiples of groups."""
    kind = draw(st.sampled_from(["plain", "two", "depthwise"])) if grouped else "plain"
    if kind == "plain":
        return draw(st.integers(1, max_c)), draw(st.integers(1, max_c)), 1
    if kind == "two":
        return 2 * draw(st.integers(1, max(1, max_c - 1))), 2 * draw(st.integers(1, max(1, max_c - 1))), 2
    c_in = draw(st.integers(1, max_c + 1))
    return c_in, c_in * draw(st.integers(1, 2)), c_in


@st.composite
def conv2d_cases(draw, max_n=None, max_c=None, max_hw=None, dilation_groups=False):
    """(x shape, w shape, stride, padding) for a valid conv2d; with dilation_groups, also
    (dilation, groups) at the end: dilation 1-3 per axis, groups 1, 2 or Cin (depthwise)."""
    max_n, max_c, max_hw = max_n or MAX_N, max_c or MAX_C, max_hw or MAX_HW
    n = draw(st.integers(1, max_n))
    c_in, c_out, groups = conv_channels(draw, max_c, dilation_groups)
    h, w = draw(st.integers(1, max_hw)), draw(st.integers(1, max_hw))
    stride = draw(st.one_of(st.integers(1, 3), st.tuples(st.integers(1, 3), st.integers(1, 3))))
    form = draw(st.sampled_from(["int", "pair", "same", "valid"]))
    if form == "int":
        padding = draw(st.integers(0, 2))
        pad_h = pad_w = padding
    elif form == "pair":
        padding = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
        pad_h, pad_w = padding
    else:
        padding, pad_h, pad_w = form, 0, 0
    dilation = (draw(st.integers(1, 3)), draw(st.integers(1, 3))) if dilation_groups else (1, 1)
    # 'same' pads whatever the kernel needs; otherwise the dilated kernel, dilation * (k - 1) + 1,
    # fits in the padded input
    limit_h = h + 2 if form == "same" else h + 2 * pad_h
    limit_w = w + 2 if form == "same" else w + 2 * pad_w
    kernel = (draw(st.integers(1, (limit_h - 1) // dilation[0] + 1)),
              draw(st.integers(1, (limit_w - 1) // dilation[1] + 1)))
    case = (n, c_in, h, w), (c_out, c_in // groups) + kernel, stride, padding
    return case + (dilation, groups) if dilation_groups else case


@st.composite
def conv_transpose2d_cases(draw, max_n=None, max_c=None, max_hw=None, dilation_groups=False):
    """(x shape, w shape, stride, padding, output_padding) for a valid conv_transpose2d; with
    dilation_groups, also (dilation, groups) at the end, drawn as conv2d_cases draws them."""
    max_n, max_c, max_hw = max_n or MAX_N, max_c or MAX_C, max_hw or MAX_HW
    n = draw(st.integers(1, max_n))
    c_in, c_out, groups = conv_channels(draw, max_c, dilation_groups)
    h, w = draw(st.integers(1, max_hw)), draw(st.integers(1, max_hw))
    kernel = (draw(st.integers(1, 5)), draw(st.integers(1, 5)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dilation = (draw(st.integers(1, 3)), draw(st.integers(1, 3))) if dilation_groups else (1, 1)
    form = draw(st.sampled_from(["int", "pair", "same", "valid"]))
    output_padding = 0
    if form in ("same", "valid"):
        padding = form
    else:
        padding = draw(st.integers(0, 3)) if form == "int" else \
            (draw(st.integers(0, 3)), draw(st.integers(0, 3)))
        output_padding = (draw(st.integers(0, stride[0] - 1)), draw(st.integers(0, stride[1] - 1)))
    w_shape = (c_in, c_out // groups) + kernel
    try:  # padding larger than the full result crops everything: not a valid case
        geometry.conv_transpose2d_geometry((n, c_in, h, w), w_shape, stride, padding,
                                           output_padding, dilation=dilation, groups=groups)
    except ValueError:
        assume(False)
    case = (n, c_in, h, w), w_shape, stride, padding, output_padding
    return case + (dilation, groups) if dilation_groups else case


@st.composite
def pool_cases(draw, max_nc=None, max_hw=None):
    """(x shape, max_pool2d keyword arguments) covering every padding form and ceil mode."""
    max_nc, max_hw = max_nc or MAX_C, max_hw or MAX_HW
    n, c = draw(st.integers(1, max_nc)), draw(st.integers(1, max_nc))
    h, w = draw(st.integers(1, max_hw)), draw(st.integers(1, max_hw))
    form = draw(st.sampled_from(["int", "pair", "same", "valid"]))
    if form == "valid":
        k_h, k_w = draw(st.integers(1, min(h, 5))), draw(st.integers(1, min(w, 5)))
    else:
        k_h, k_w = draw(st.integers(1, min(h + 2, 5))), draw(st.integers(1, min(w + 2, 5)))
    kernel = k_h if k_h == k_w and draw(st.booleans()) else (k_h, k_w)
    stride = draw(st.one_of(st.none(), st.integers(1, 3), st.tuples(st.integers(1, 3), st.integers(1, 3))))
    kwargs = dict(kernel_size=kernel, stride=stride)
    if form in ("same", "valid"):
        kwargs["padding"] = form
        return (n, c, h, w), kwargs

    def pad_range(size, k):  # pad <= k // 2 and size + 2 * pad >= k
        return max(0, -(-(k - size) // 2)), k // 2

    lo_h, hi_h = pad_range(h, k_h)
    lo_w, hi_w = pad_range(w, k_w)
    if form == "int" and max(lo_h, lo_w) <= min(hi_h, hi_w):
        kwargs["padding"] = draw(st.integers(max(lo_h, lo_w), min(hi_h, hi_w)))
    else:
        kwargs["padding"] = (draw(st.integers(lo_h, hi_h)), draw(st.integers(lo_w, hi_w)))
    kwargs["ceil_mode"] = draw(st.booleans())
    return (n, c, h, w), kwargs


SCALE_FACTORS = [0.5, 0.75, 1.0, 1.05, 1.7, 2, 2.5, 3, (1.5, 2.0), (0.7, 3.0)]


@st.composite
def upsample_cases(draw, mode=None, max_nc=None, max_hw=None, max_out=None):
    """(x shape, interpolate keyword arguments): size or scale_factor (integer and not), up- and
    down-sampling, align_corners for bilinear."""
    max_nc, max_hw, max_out = max_nc or MAX_C, max_hw or MAX_HW, max_out or MAX_OUT
    n, c = draw(st.integers(1, max_nc)), draw(st.integers(1, max_nc))
    h, w = draw(st.integers(1, max_hw)), draw(st.integers(1, max_hw))
    mode = mode or draw(st.sampled_from(["nearest", "nearest-exact", "bilinear"]))
    kwargs = dict(mode=mode)
    if draw(st.booleans()):
        size = (draw(st.integers(1, max_out)), draw(st.integers(1, max_out)))
        kwargs["size"] = size[0] if size[0] == size[1] and draw(st.booleans()) else size
    else:
        factor = draw(st.sampled_from(SCALE_FACTORS))
        pair = factor if isinstance(factor, tuple) else (factor, factor)
        if math.floor(h * pair[0]) < 1 or math.floor(w * pair[1]) < 1:
            factor = 2
        kwargs["scale_factor"] = factor
    if mode == "bilinear":
        kwargs["align_corners"] = draw(st.booleans())
    return (n, c, h, w), kwargs


def no_ties(shape, rng):
    """Values with distinct entries spaced far apart relative to eps (max-pool gradchecks)."""
    count = int(np.prod(shape))
    return (rng.permutation(count).reshape(shape) / max(count, 1) * 4 - 2).astype(np.float64)


@st.composite
def upsample_conv2d_cases(draw, max_n=None, max_c=None, max_hw=None):
    """(x shape, w shape, upsample_conv2d keyword arguments, folds): a resize then a conv,
    mostly nearest by whole factors (1-3 per axis, as size or scale_factor) that fold into one
    transposed conv, and the cases that must not fold (a factor that is not whole, bilinear, a
    conv stride > 1, padding wider than kernel - 1). `folds` is the rule, stated independently."""
    max_n, max_c, max_hw = max_n or MAX_N, max_c or MAX_C, max_hw or 4
    n, c_in, c_out = (draw(st.integers(1, max_n)), draw(st.integers(1, max_c)),
                      draw(st.integers(1, max_c)))
    h, w = draw(st.integers(1, max_hw)), draw(st.integers(1, max_hw))
    factors = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    kwargs = dict(mode=draw(st.sampled_from(["nearest", "nearest-exact"])))
    whole = draw(st.integers(0, 4)) > 0            # mostly whole factors
    if whole and draw(st.booleans()):
        kwargs["scale_factor"] = factors[0] if factors[0] == factors[1] else factors
        out_h, out_w = h * factors[0], w * factors[1]
    else:
        out_h, out_w = h * factors[0] + (0 if whole else 1), w * factors[1]
        kwargs["size"] = (out_h, out_w)
    if draw(st.integers(0, 5)) == 0:
        kwargs.update(mode="bilinear", align_corners=draw(st.booleans()))
    kernel = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    form = draw(st.sampled_from(["int", "pair", "same", "valid"]))
    if form in ("same", "valid"):
        kwargs["padding"] = form
    elif form == "int":
        kwargs["padding"] = draw(st.integers(0, 3))
    else:
        kwargs["padding"] = (draw(st.integers(0, 3)), draw(st.integers(0, 3)))
    kwargs["stride"] = 2 if draw(st.integers(0, 5)) == 0 else 1
    try:  # the kernel must fit in the padded, upsampled image
        conv = geometry.conv2d_geometry((n, c_in, out_h, out_w), (c_out, c_in) + kernel,
                                        kwargs["stride"], kwargs["padding"])
    except ValueError:
        assume(False)
    pads_fit = (max(conv.pad_top, conv.pad_bottom) <= kernel[0] - 1
                and max(conv.pad_left, conv.pad_right) <= kernel[1] - 1)
    whole = out_h % h == 0 and out_w % w == 0      # (h * f + 1 can still be a multiple of h)
    # both nearest rules pick dst // s for a whole factor s
    folds = (whole and kwargs["mode"] != "bilinear" and kwargs["stride"] == 1 and pads_fit
             and (out_h, out_w) != (h, w))
    return (n, c_in, h, w), (c_out, c_in) + kernel, kwargs, folds
