"""avg_pool2d: the mean over each window (PyTorch's divisor rules), and adaptive average pooling.

Shapes (NCHW):
    x: (N, C, H, W)  ->  y: (N, C, outH, outW), same dtype as x

Geometry (kernels/geometry.py, `avg_pool2d_geometry`): the windows and output size are
max_pool2d's: window (oy, ox) covers input rows oy * stride_h - pad_top ... + k_h - 1, clipped to
the input; outH = floor_or_ceil((H + 2 * pad - k_h) / stride_h) + 1 (in ceil mode the last window
must start inside the input or the left padding), padding <= kernel / 2; TensorFlow's 'same'
(outH = ceil(H / s), the odd padding pixel at the bottom/right) and 'valid'.

    y[oy, ox] = (sum of x over the window's positions inside the input) / divisor[oy, ox]

The divisor is PyTorch's (its CPU and CUDA kernels agree), separable into rows x columns:
    divisor_override, when given;
    else count_include_pad=True:  rows from the window's start (in the padding or not) up to
        min(start + k_h, H + pad_bottom): padded positions count, but a window that ceil mode
        pushes past the padding after the input stops at the padding's edge;
    else (count_include_pad=False): the window's rows inside the input.
Padding adds nothing to the sum either way (zeros). TF / Keras' AveragePooling2D(padding='same')
averages the real pixels only: that is count_include_pad=False; with True, 'same' divides by
every position of TF's zero padding (as F.pad followed by a 'valid' pooling would). max_pool2d
needs no such choice: its padding is -inf and never wins.

Backward: grad_x[ih, iw] = sum over the windows holding (ih, iw) of grad_y[oy, ox] / divisor[oy,
ox]. Every tier GATHERS: each input element sums its (few) windows in a fixed order, so no two
writes meet, there are no atomics, and the result is bit-identical run after run.

Tiers (same signature everywhere):
    "avg_pool2d_forward"(x, geom) -> y
    "avg_pool2d_backward"(grad_y, geom) -> grad_x

Why these choices: the divisor, the one subtle rule of the op, is computed once on the host in
NumPy (`divisor_table`, cached per geometry) and read by every tier, so no tier restates it;
the windows' bounds are each tier's own arithmetic (slices in the reference, loops in the
compiled tiers), so comparing the tiers checks them. The numba tier runs one parallel task per
(n, c) plane (each reads and writes only its own plane, which stays in cache), as max_pool2d does.

adaptive_avg_pool2d (at the end of the file) has no kernel tier: F.adaptive_avg_pool2d sends
equal bins (out divides in: global pooling, 28 -> 7) to avg_pool2d's kernels, and the uneven
bins left are out_h + out_w vectorized slice means in NumPy / CuPy.
"""

import functools

import numpy as np

from . import geometry, memory
from .compile import (array_module_of, cpu_kernel, cuda, cuda_kernel, launch_1d,
                      needs_wide_index, run_planes, split_index, table_argument, window_span,
                      windows_over)
from .max_pool2d import _padded_slice, _window_origin   # the same windows: the same slices
from .op import Arg, Family, Op, describe
from .registry import register


# ------------------------------------------------------------------------------------------------
# the op's description (kernels/op.py): arguments, cost, inputs for tests and benchmarks, PyTorch
# ------------------------------------------------------------------------------------------------

def _sizes(geom):
    """Elements of x, of y, and of the divisor table: N*C*H*W, N*C*outH*outW, outH*outW."""
    planes, table = geom.n * geom.c, geom.out_h * geom.out_w
    return planes * geom.h * geom.w, planes * table, table


def forward_cost(geom, shapes, s):
    x, y, table = _sizes(geom)     # k_h*k_w - 1 adds and a divide per window; read x, write y
    return y * geom.k_h * geom.k_w, s * (x + y + table)


def backward_cost(geom, shapes, s):
    x, y, table = _sizes(geom)     # a divide and an add per window element; read grad_y, write grad_x
    return 2 * y * geom.k_h * geom.k_w, s * (y + x + table)


def pooling_geometry(params):
    """The AvgPool2dGeometry of a family's parameters: x's shape and avg_pool2d's arguments."""
    return geometry.avg_pool2d_geometry(
        params["x"], params["kernel_size"], params.get("stride"), params.get("padding", 0),
        params.get("ceil_mode", False), params.get("count_include_pad", True),
        params.get("divisor_override"))


def inputs(params, dtype, rng):
    """(geom, {op: args}) for x of shape params["x"] pooled by params' kernel_size, stride,
    padding, ceil_mode, count_include_pad and divisor_override."""
    geom = pooling_geometry(params)
    x = rng.standard_normal(params["x"]).astype(dtype)
    grad_y = rng.standard_normal((geom.n, geom.c, geom.out_h, geom.out_w)).astype(dtype)
    return geom, {"avg_pool2d_forward": (x, geom), "avg_pool2d_backward": (grad_y, geom)}


def torch_equivalent(geom):
    """The (padding, ceil_mode) of PyTorch's avg_pool2d that gives the same windows and
    divisors as `geom`, or None (TF's asymmetric 'same' padding where it changes a divisor).
    'same' with its padding only after the input is PyTorch's ceil mode without padding."""
    for ceil_mode in (False, True):
        try:
            candidate = geometry.avg_pool2d_geometry(
                (geom.n, geom.c, geom.h, geom.w), (geom.k_h, geom.k_w),
                (geom.stride_h, geom.stride_w), (geom.pad_top, geom.pad_left), ceil_mode,
                geom.count_include_pad, geom.divisor_override)
        except ValueError:       # padding PyTorch refuses (more than half the kernel)
            return None
        if (candidate.out_h, candidate.out_w) == (geom.out_h, geom.out_w) and np.array_equal(
                divisor_table(candidate, np.float64), divisor_table(geom, np.float64)):
            return [geom.pad_top, geom.pad_left], ceil_mode
    return None


def torch_counterpart(torch, op, args):
    """PyTorch's avg_pool2d, or the avg_pool2d_backward its autograd calls, on the same windows
    and divisors (args: this op's arguments as torch tensors, then geom); None when no PyTorch
    call gives them (torch_equivalent)."""
    aten = torch.ops.aten
    geom = args[-1]
    equivalent = torch_equivalent(geom)
    if equivalent is None:
        return None
    padding, ceil_mode = equivalent
    kernel, stride = [geom.k_h, geom.k_w], [geom.stride_h, geom.stride_w]
    options = (ceil_mode, geom.count_include_pad, geom.divisor_override)
    if op == "avg_pool2d_forward":
        return lambda: aten.avg_pool2d(args[0], kernel, stride, padding, *options)
    grad_y = args[0]
    x = grad_y.new_empty((geom.n, geom.c, geom.h, geom.w))   # only its shape is read
    return lambda: aten.avg_pool2d_backward(grad_y, x, kernel, stride, padding, *options)


FAMILY = describe(Family(
    "avg_pool2d",
    ops=(Op("avg_pool2d_forward", (Arg("x", "input"),), forward_cost),
         Op("avg_pool2d_backward", (Arg("grad_y", "output"),), backward_cost)),
    geometry=geometry.avg_pool2d_arrays,
    inputs=inputs,
    sample={"x": (2, 3, 5, 5), "kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True,
            "count_include_pad": False},
    torch=torch_counterpart))


# ------------------------------------------------------------------------------------------------
# the divisor table (host, shared by every tier)
# ------------------------------------------------------------------------------------------------

def axis_counts(size, out_size, kernel, stride, pad_before, pad_after, count_include_pad):
    """What each window of one axis counts, int64 (out,): PyTorch's pool_size along that axis.
    A window starts at o * stride - pad_before and ends at the padding's far edge at most."""
    start = np.arange(out_size, dtype=np.int64) * stride - pad_before
    end = np.minimum(start + kernel, size + pad_after)
    if count_include_pad:
        return end - start
    return np.minimum(end, size) - np.maximum(start, 0)


@functools.lru_cache(maxsize=128)
def divisor_table(geom, dtype):
    """(outH, outW) array of `dtype`, read-only: what window (oy, ox)'s sum is divided by."""
    if geom.divisor_override is not None:
        table = np.full((geom.out_h, geom.out_w), geom.divisor_override, dtype=dtype)
    else:
        rows = axis_counts(geom.h, geom.out_h, geom.k_h, geom.stride_h, geom.pad_top,
                           geom.pad_bottom, geom.count_include_pad)
        cols = axis_counts(geom.w, geom.out_w, geom.k_w, geom.stride_w, geom.pad_left,
                           geom.pad_right, geom.count_include_pad)
        table = np.outer(rows, cols).astype(dtype)
    table.setflags(write=False)
    return table


# ------------------------------------------------------------------------------------------------
# reference
# ------------------------------------------------------------------------------------------------
# One vectorized step per kernel offset (i, j), as in max_pool2d's reference: the (outH, outW)
# grid of elements at offset (i, j) of every window is a strided slice of the zero-padded input.
# The backward adds grad_y / divisor back through the same slices: each input element receives,
# offset by offset, the term of the one window that holds it at that offset -- the gather the
# compiled tiers do, written as k_h * k_w slice additions.

def _zero_padded(x, geom):
    """x inside zeros, cut to the extent the windows cover (rows, cols); x itself when every
    window lies inside it."""
    xp = array_module_of(x)
    n, c, h, w = x.shape
    top, left, rows, cols = _window_origin(geom)
    if top == 0 and left == 0 and rows <= h and cols <= w:
        return x
    padded = xp.zeros((n, c, rows, cols), dtype=x.dtype)
    used_h, used_w = min(h, rows - top), min(w, cols - left)
    padded[:, :, top:top + used_h, left:left + used_w] = x[:, :, :used_h, :used_w]
    return padded


@register("avg_pool2d_forward", "ref")
def avg_pool2d_forward_ref(x, geom):
    xp = array_module_of(x)
    padded = _zero_padded(x, geom)
    total = xp.zeros((geom.n, geom.c, geom.out_h, geom.out_w), dtype=x.dtype)
    for i in range(geom.k_h):
        for j in range(geom.k_w):
            total += padded[_padded_slice(geom, i, j)]
    return total / xp.asarray(divisor_table(geom, x.dtype))


@register("avg_pool2d_backward", "ref")
def avg_pool2d_backward_ref(grad_y, geom):
    xp = array_module_of(grad_y)
    n, c, h, w = geom.n, geom.c, geom.h, geom.w
    top, left, rows, cols = _window_origin(geom)
    scaled = grad_y / xp.asarray(divisor_table(geom, grad_y.dtype))      # (N, C, outH, outW)
    grad_padded = xp.zeros((n, c, rows, cols), dtype=grad_y.dtype)
    for i in range(geom.k_h):
        for j in range(geom.k_w):
            grad_padded[_padded_slice(geom, i, j)] += scaled
    grad_x = xp.zeros((n, c, h, w), dtype=grad_y.dtype)   # rows the windows never reach stay 0
    used_h, used_w = min(h, rows - top), min(w, cols - left)
    grad_x[:, :, :used_h, :used_w] = grad_padded[:, :, top:top + used_h, left:left + used_w]
    return grad_x


# ------------------------------------------------------------------------------------------------
# numba cpu
# ------------------------------------------------------------------------------------------------
# x, grad_x: (P, H, W) with P = N*C planes; y, grad_y: (P, outH, outW); divisor: (outH, outW).
# Task t computes planes t*planes .. (t+1)*planes - 1; compile.run_planes runs the tasks over
# all planes. The window containing
# input row ih at offset i starts at row ih - i, so the windows holding row ih are those with
# oy * stride_h - pad_top in (ih - k_h, ih].

def avg_pool2d_forward_planes(task, x, divisor, y, zero, k_h, k_w, stride_h, stride_w, pad_top,
                              pad_left, planes):
    _, h, w = x.shape
    out_h, out_w = divisor.shape
    for p in range(task * planes, min((task + 1) * planes, x.shape[0])):
        for oy in range(out_h):
            h_start = oy * stride_h - pad_top
            h_end = min(h_start + k_h, h)
            h_start = max(h_start, 0)
            for ox in range(out_w):
                w_start = ox * stride_w - pad_left
                w_end = min(w_start + k_w, w)
                w_start = max(w_start, 0)
                total = zero
                for ih in range(h_start, h_end):
                    for iw in range(w_start, w_end):
                        total += x[p, ih, iw]
                y[p, oy, ox] = total / divisor[oy, ox]


_avg_pool2d_forward_planes = cpu_kernel(avg_pool2d_forward_planes)


def window_ranges(in_size, kernel, stride, pad, out_size):
    """For each input index i along one axis, the outputs whose windows hold it: o in
    [first[i], last[i]), the windows starting at o * stride - pad in (i - kernel, i]. Computed
    once per call on the host, so the backward's inner loops do no integer division."""
    i = np.arange(in_size)
    first = np.maximum(-((kernel - 1 - i - pad) // stride), 0)     # ceil((i + pad - k + 1) / s)
    last = np.minimum((i + pad) // stride + 1, out_size)
    return first.astype(np.int64), np.maximum(last, first).astype(np.int64)


def avg_pool2d_backward_planes(task, scaled_grad, rows_first, rows_last, cols_first, cols_last,
                               grad_x, zero, planes):
    # scaled_grad = grad_y / divisor: (P, outH, outW); rows_*: (H,), cols_*: (W,) window_ranges
    # per element the sum runs over oy, then ox, as the reference's scatter-add does
    _, h, w = grad_x.shape
    for p in range(task * planes, min((task + 1) * planes, grad_x.shape[0])):
        for ih in range(h):
            row = grad_x[p, ih]
            row[:] = zero
            for oy in range(rows_first[ih], rows_last[ih]):
                source = scaled_grad[p, oy]
                for iw in range(w):
                    for ox in range(cols_first[iw], cols_last[iw]):
                        row[iw] += source[ox]


_avg_pool2d_backward_planes = cpu_kernel(avg_pool2d_backward_planes)


def _geometry_scalars(geom):
    """The window arguments every compiled kernel takes, in order."""
    return geom.k_h, geom.k_w, geom.stride_h, geom.stride_w, geom.pad_top, geom.pad_left


@register("avg_pool2d_forward", "numba")
def avg_pool2d_forward_numba(x, geom):
    n, c, h, w = x.shape
    y = memory.empty((n * c, geom.out_h, geom.out_w), x.dtype)
    run_planes(_avg_pool2d_forward_planes, n * c, h * w,
               np.ascontiguousarray(x).reshape(n * c, h, w),
               divisor_table(geom, x.dtype), y, x.dtype.type(0), *_geometry_scalars(geom))
    return y.reshape(n, c, geom.out_h, geom.out_w)


@register("avg_pool2d_backward", "numba")
def avg_pool2d_backward_numba(grad_y, geom):
    n, c, out_h, out_w = grad_y.shape
    grad_x = memory.empty((n * c, geom.h, geom.w), grad_y.dtype)     # every element written
    scaled = (grad_y / divisor_table(geom, grad_y.dtype)).reshape(n * c, out_h, out_w)
    run_planes(_avg_pool2d_backward_planes, n * c, geom.h * geom.w, scaled,
               *window_ranges(geom.h, geom.k_h, geom.stride_h, geom.pad_top, out_h),
               *window_ranges(geom.w, geom.k_w, geom.stride_w, geom.pad_left, out_w),
               grad_x, grad_y.dtype.type(0))
    return grad_x.reshape(n, c, geom.h, geom.w)


# ------------------------------------------------------------------------------------------------
# numba cuda
# ------------------------------------------------------------------------------------------------
# Flat 1-D launches (launch_1d): forward one thread per output element, backward one thread per
# INPUT element (a gather: no atomics, deterministic); the loops are the numba tier's.

def avg_pool2d_forward_kernel(x, divisor, y, zero, total, h, w, out_h, out_w,
                              k_h, k_w, stride_h, stride_w, pad_top, pad_left, wide):
    # x: (P*H*W,) flat; divisor: (outH*outW,); y: (P*outH*outW,)
    t = cuda.grid(1)
    if t >= total:
        return
    p, oy, ox = split_index(t, out_h, out_w, wide)
    h_start, h_end = window_span(oy, stride_h, pad_top, k_h, h)
    w_start, w_end = window_span(ox, stride_w, pad_left, k_w, w)
    base = p * h * w
    acc = zero
    for ih in range(h_start, h_end):
        for iw in range(w_start, w_end):
            acc += x[base + ih * w + iw]
    y[t] = acc / divisor[oy * out_w + ox]


_avg_pool2d_forward_kernel = cuda_kernel(avg_pool2d_forward_kernel)


def avg_pool2d_backward_kernel(grad_y, divisor, grad_x, zero, total, h, w, out_h, out_w,
                               k_h, k_w, stride_h, stride_w, pad_top, pad_left, wide):
    # grad_x: (P*H*W,) flat, one thread per element; grad_y: (P*outH*outW,); divisor: (outH*outW,)
    t = cuda.grid(1)
    if t >= total:
        return
    p, ih, iw = split_index(t, h, w, wide)
    oy_from, oy_to = windows_over(ih, stride_h, pad_top, k_h, out_h, wide)
    ox_from, ox_to = windows_over(iw, stride_w, pad_left, k_w, out_w, wide)
    base = p * out_h * out_w
    acc = zero
    for oy in range(oy_from, oy_to):
        for ox in range(ox_from, ox_to):
            acc += grad_y[base + oy * out_w + ox] / divisor[oy * out_w + ox]
    grad_x[t] = acc


_avg_pool2d_backward_kernel = cuda_kernel(avg_pool2d_backward_kernel)


@register("avg_pool2d_forward", "cuda")
def avg_pool2d_forward_cuda(x, geom):
    xp = array_module_of(x)
    n, c, h, w = x.shape
    y = xp.empty((n, c, geom.out_h, geom.out_w), dtype=x.dtype)
    launch_1d(_avg_pool2d_forward_kernel, y.size, xp.ascontiguousarray(x).reshape(-1),
              table_argument(xp, divisor_table(geom, x.dtype)).reshape(-1), y.reshape(-1), x.dtype.type(0), y.size,
              h, w, geom.out_h, geom.out_w, *_geometry_scalars(geom),
              needs_wide_index(x.size, y.size))
    return y


@register("avg_pool2d_backward", "cuda")
def avg_pool2d_backward_cuda(grad_y, geom):
    xp = array_module_of(grad_y)
    grad_x = xp.empty((geom.n, geom.c, geom.h, geom.w), dtype=grad_y.dtype)
    launch_1d(_avg_pool2d_backward_kernel, grad_x.size, xp.ascontiguousarray(grad_y).reshape(-1),
              table_argument(xp, divisor_table(geom, grad_y.dtype)).reshape(-1), grad_x.reshape(-1),
              grad_y.dtype.type(0), grad_x.size, geom.h, geom.w, geom.out_h, geom.out_w,
              *_geometry_scalars(geom), needs_wide_index(grad_x.size, grad_y.size))
    return grad_x


# ------------------------------------------------------------------------------------------------
# adaptive average pooling: NumPy / CuPy only (no kernel tier; see the module docstring)
# ------------------------------------------------------------------------------------------------
# geom: geometry.AdaptiveAvgPool2dGeometry. Bins are separable: the mean over a bin's rows, then
# over its columns, is the bin's mean (PyTorch's sum / kh / kw). Only each bin's own elements
# enter its mean, so a NaN or inf stays in the bins that hold it.

def adaptive_avg_pool2d_ref(x, geom):
    xp = array_module_of(x)
    rows = xp.stack([x[:, :, start:end].mean(axis=2) for start, end in geom.bins_h],
                    axis=2)                                                # (N, C, outH, W)
    return xp.stack([rows[..., start:end].mean(axis=3) for start, end in geom.bins_w],
                    axis=3)                                                # (N, C, outH, outW)


def adaptive_avg_pool2d_backward_ref(grad_y, geom):
    """The adjoint of the two means: each bin's gradient, divided by its size along an axis, is
    added back over the bin; bins may overlap, and are added in a fixed order."""
    xp = array_module_of(grad_y)
    cols = xp.zeros((geom.n, geom.c, geom.out_h, geom.w), dtype=grad_y.dtype)
    for ox, (start, end) in enumerate(geom.bins_w):
        cols[..., start:end] += grad_y[..., ox:ox + 1] / (end - start)
    grad_x = xp.zeros((geom.n, geom.c, geom.h, geom.w), dtype=grad_y.dtype)
    for oy, (start, end) in enumerate(geom.bins_h):
        grad_x[:, :, start:end] += cols[:, :, oy:oy + 1] / (end - start)
    return grad_x
