"""Hypothesis strategies shared by every test file: shapes, broadcastable pairs, float64 arrays."""

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp


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
def _padding_forms(draw, kernel_hw):
    """int, pair, 'same' or 'valid' (ints at most what keeps the geometry valid)."""
    form = draw(st.sampled_from(["int", "pair", "same", "valid"]))
    if form == "int":
        return draw(st.integers(0, min(kernel_hw) // 2 + 1))
    if form == "pair":
        return (draw(st.integers(0, kernel_hw[0] // 2 + 1)), draw(st.integers(0, kernel_hw[1] // 2 + 1)))
    return form


@st.composite
def conv2d_case(draw, max_batch=2, max_channels=3, max_size=7, max_kernel=4):
    """dict(x_shape, w_shape, stride, padding) for a valid conv2d, including 1x1 images,
    odd sizes, and kernels as large as the padded input."""
    n, c_in, c_out = (draw(st.integers(1, max_batch)), draw(st.integers(1, max_channels)),
                      draw(st.integers(1, max_channels)))
    h, w = draw(st.integers(1, max_size)), draw(st.integers(1, max_size))
    k = (draw(st.integers(1, max_kernel)), draw(st.integers(1, max_kernel)))
    stride = draw(st.one_of(st.integers(1, 3), st.tuples(st.integers(1, 3), st.integers(1, 3))))
    padding = _padding_forms(draw, k)
    from aecore.kernels.geometry import conv2d_geometry
    try:
        conv2d_geometry((n, c_in, h, w), (c_out, c_in) + k, stride, padding)
    except ValueError:
        # kernel larger than the padded input: shrink the kernel to exactly fit (the edge case)
        pad = (0, 0) if isinstance(padding, str) else ((padding, padding) if isinstance(padding, int) else padding)
        k = (min(k[0], h + 2 * pad[0]), min(k[1], w + 2 * pad[1]))
    return dict(x_shape=(n, c_in, h, w), w_shape=(c_out, c_in) + k, stride=stride, padding=padding)


@st.composite
def conv_transpose2d_case(draw, max_batch=2, max_channels=3, max_size=6, max_kernel=4):
    n, c_in, c_out = (draw(st.integers(1, max_batch)), draw(st.integers(1, max_channels)),
                      draw(st.integers(1, max_channels)))
    h, w = draw(st.integers(1, max_size)), draw(st.integers(1, max_size))
    k = (draw(st.integers(1, max_kernel)), draw(st.integers(1, max_kernel)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    form = draw(st.sampled_from(["int", "same", "valid"]))
    if form == "int":
        pad = (draw(st.integers(0, (k[0] - 1) // 2)), draw(st.integers(0, (k[1] - 1) // 2)))
        output_padding = (draw(st.integers(0, stride[0] - 1)), draw(st.integers(0, stride[1] - 1)))
        padding = pad
    else:
        padding, output_padding = form, 0
    return dict(x_shape=(n, c_in, h, w), w_shape=(c_in, c_out) + k, stride=stride,
                padding=padding, output_padding=output_padding)


@st.composite
def max_pool2d_case(draw, max_batch=2, max_channels=3, max_size=7):
    n, c = draw(st.integers(1, max_batch)), draw(st.integers(1, max_channels))
    h, w = draw(st.integers(1, max_size)), draw(st.integers(1, max_size))
    k = (draw(st.integers(1, min(3, h))), draw(st.integers(1, min(3, w))))
    stride = draw(st.one_of(st.none(), st.tuples(st.integers(1, 3), st.integers(1, 3))))
    form = draw(st.sampled_from(["int", "same", "valid"]))
    ceil_mode = False
    if form == "int":
        padding = (draw(st.integers(0, k[0] // 2)), draw(st.integers(0, k[1] // 2)))
        ceil_mode = draw(st.booleans())
    else:
        padding = form
    return dict(x_shape=(n, c, h, w), kernel_size=k, stride=stride, padding=padding, ceil_mode=ceil_mode)


@st.composite
def interpolate_case(draw, max_batch=2, max_channels=2, max_size=6, max_out=10):
    n, c = draw(st.integers(1, max_batch)), draw(st.integers(1, max_channels))
    h, w = draw(st.integers(1, max_size)), draw(st.integers(1, max_size))
    mode = draw(st.sampled_from(["nearest", "bilinear"]))
    align_corners = draw(st.booleans()) if mode == "bilinear" else None
    if draw(st.booleans()):
        size, scale_factor = (draw(st.integers(1, max_out)), draw(st.integers(1, max_out))), None
    else:
        size = None
        scale_factor = draw(st.sampled_from([0.5, 1.0, 1.5, 1.7, 2.0, 2.5, 3.0]))
        if int(h * scale_factor) < 1 or int(w * scale_factor) < 1:
            scale_factor = 2.0
    return dict(x_shape=(n, c, h, w), size=size, scale_factor=scale_factor, mode=mode,
                align_corners=align_corners)


def no_ties(shape, rng):
    """Values with distinct entries spaced far apart relative to eps (max-pool gradchecks)."""
    count = int(np.prod(shape))
    return (rng.permutation(count).reshape(shape) / max(count, 1) * 4 - 2).astype(np.float64)
