"""max_pool2d: the maximum over each window, with the argmax kept for the backward pass.

Shapes (NCHW):
    x:      (N, C, H, W)
    y:      (N, C, outH, outW)            same dtype as x
    argmax: (N, C, outH, outW) int64      flat index ih * W + iw into the input plane

Geometry (kernels/geometry.py, `max_pool2d_geometry`): window (oy, ox) covers input rows
    oy * stride_h - pad_top  ...  oy * stride_h - pad_top + k_h - 1
(and the same for columns), clipped to the input. Padded or out-of-range positions never win:
they act as -inf. outH = floor_or_ceil((H + 2 * pad - k_h) / stride_h) + 1 for int/pair padding
(in ceil mode the last window must start inside the input or the left padding), and ceil(H / s)
for TensorFlow's 'same' (extra padding at the bottom/right).

Semantics are PyTorch's CPU kernel, exactly:
    maxval = -inf; maxindex = first in-range element of the window
    for each in-range element in row-major window order:
        if val > maxval or isnan(val): maxval, maxindex = val, index
so ties go to the FIRST maximum, a NaN propagates (the last NaN of the window is the argmax),
and an all -inf window points at its first element.

Backward: grad_x[argmax] += grad_y. Overlapping windows (stride < kernel) can pick the same
input element, so this is a scatter-ADD on the CPU tiers; the CUDA tier instead GATHERS: one
thread per input element loops over the (few) windows that can contain it and sums grad_y where
argmax equals its own index, in a fixed order -> no atomics, bit-identical results run after run.

Tiers (same signature everywhere):
    "max_pool2d_forward"(x, geom) -> (y, argmax)
    "max_pool2d_backward"(grad_y, argmax, geom) -> grad_x

Why the numba loop structure: the unit of independent work is one (n, c) plane: its windows
read only that plane and the backward's scatter-add writes only that plane, so one parallel
task per plane needs no atomics and no private buffers, and each plane stays in L1. The 2x2 /
stride-2 windows inside the input run through `windows_2x2`: the four comparisons as selects,
which LLVM vectorizes across windows (the general scan is branchy, data-dependent); border
windows keep the general loop. Figures: kernels/NOTES.md, "max_pool2d".
"""

import numpy as np

from . import geometry, memory
from .compile import (array_module_of, cpu_kernel, cuda, cuda_kernel, launch_1d, needs_wide_index,
                      run_planes, split_index, window_span, windows_over)
from .op import Arg, Family, Op, describe
from .registry import register


# ------------------------------------------------------------------------------------------------
# the op's description (kernels/op.py): arguments, cost, inputs for tests and benchmarks, PyTorch
# ------------------------------------------------------------------------------------------------
ARGMAX_ITEMSIZE = 8     # argmax indices are int64


def _sizes(geom):
    """Elements of x and of y: N*C*H*W and N*C*outH*outW."""
    planes = geom.n * geom.c
    return planes * geom.h * geom.w, planes * geom.out_h * geom.out_w


def forward_cost(geom, shapes, s):
    x, y = _sizes(geom)        # a comparison per window element; read x, write y and argmax
    return y * geom.k_h * geom.k_w, s * (x + y) + ARGMAX_ITEMSIZE * y


def backward_cost(geom, shapes, s):
    x, y = _sizes(geom)        # one add per output element; read grad_y and argmax, write grad_x
    return y, s * (y + x) + ARGMAX_ITEMSIZE * y


def inputs(params, dtype, rng):
    """(geom, {op: args}) for x of shape params["x"] pooled by params' kernel_size, stride,
    padding and ceil_mode; the backward's argmax comes from the reference forward."""
    geom = geometry.max_pool2d_geometry(params["x"], params["kernel_size"], params.get("stride"),
                                        params.get("padding", 0), params.get("ceil_mode", False))
    x = rng.standard_normal(params["x"]).astype(dtype)
    grad_y = rng.standard_normal((geom.n, geom.c, geom.out_h, geom.out_w)).astype(dtype)
    argmax = max_pool2d_forward_ref(x, geom)[1]
    return geom, {"max_pool2d_forward": (x, geom),
                  "max_pool2d_backward": (grad_y, argmax, geom)}


def torch_counterpart(torch, op, args):
    """PyTorch's max_pool2d_with_indices, or its backward as autograd calls it, on the same
    windows (args: this op's arguments as torch tensors, then geom); None when no PyTorch
    padding gives these windows (asymmetric 'same' padding). PyTorch's indices are ours: the
    flat ih * W + iw of the first maximum."""
    aten = torch.ops.aten
    geom = args[-1]
    kernel, stride = [geom.k_h, geom.k_w], [geom.stride_h, geom.stride_w]
    padding = [geom.pad_top, geom.pad_left]
    if max(padding) * 2 > min(kernel):
        return None
    forward = op == "max_pool2d_forward"
    x = args[0] if forward else args[0].new_empty((geom.n, geom.c, geom.h, geom.w))
    shape = (geom.out_h, geom.out_w)
    ceil_modes = [c for c in (False, True)   # TF 'same' with the padding at the end: ceil mode
                  if tuple(aten.max_pool2d_with_indices(x[:1, :1], kernel, stride, padding,
                                                        [1, 1], c)[0].shape[-2:]) == shape]
    if not ceil_modes:
        return None
    ceil_mode = ceil_modes[0]
    if forward:
        return lambda: aten.max_pool2d_with_indices(x, kernel, stride, padding, [1, 1], ceil_mode)
    grad_y, argmax = args[0], args[1]
    return lambda: aten.max_pool2d_with_indices_backward(grad_y, x, kernel, stride, padding,
                                                         [1, 1], ceil_mode, argmax)


FAMILY = describe(Family(
    "max_pool2d",
    ops=(Op("max_pool2d_forward", (Arg("x", "input"),), forward_cost),
         Op("max_pool2d_backward", (Arg("grad_y", "output"), Arg("argmax", "output", indices=True)),
            backward_cost)),
    geometry=geometry.max_pool2d_arrays,
    inputs=inputs,
    sample={"x": (2, 3, 5, 5), "kernel_size": 2, "stride": 2, "padding": "same"},
    torch=torch_counterpart))


def _window_origin(geom):
    """Where window (0, 0) starts, and the padded extent the windows need (rows, cols)."""
    rows = (geom.out_h - 1) * geom.stride_h + geom.k_h
    cols = (geom.out_w - 1) * geom.stride_w + geom.k_w
    return geom.pad_top, geom.pad_left, rows, cols


# ------------------------------------------------------------------------------------------------
# reference
# ------------------------------------------------------------------------------------------------
# One vectorized step per kernel offset (i, j): the (outH, outW) grid of elements at offset (i, j)
# of every window is a strided slice of the -inf padded input. Scanning the offsets in row-major
# order and updating where `val > best or isnan(val)` reproduces PyTorch's per-window scan.

def _offset_tables(geom, i, j):
    """For kernel offset (i, j): flat input index of that element in each window, and whether it
    lies inside the input. Shapes (outH, outW)."""
    rows = np.arange(geom.out_h) * geom.stride_h - geom.pad_top + i
    cols = np.arange(geom.out_w) * geom.stride_w - geom.pad_left + j
    valid = ((rows >= 0) & (rows < geom.h))[:, None] & ((cols >= 0) & (cols < geom.w))[None, :]
    index = rows[:, None] * geom.w + cols[None, :]
    return index, valid


def _padded_slice(geom, i, j):
    """Index into the padded array that selects offset (i, j) of every window."""
    sh, sw = geom.stride_h, geom.stride_w
    return (Ellipsis, slice(i, i + (geom.out_h - 1) * sh + 1, sh),
            slice(j, j + (geom.out_w - 1) * sw + 1, sw))


@register("max_pool2d_forward", "ref")
def max_pool2d_forward_ref(x, geom):
    xp = array_module_of(x)
    n, c, h, w = x.shape
    top, left, rows, cols = _window_origin(geom)
    if top == 0 and left == 0 and rows <= h and cols <= w:
        padded = x  # every window lies inside the input (the common unpadded case)
    else:  # -inf padding; rows/cols past the last window are simply not copied
        padded = xp.full((n, c, rows, cols), -xp.inf, dtype=x.dtype)
        used_h, used_w = min(h, rows - top), min(w, cols - left)
        padded[:, :, top:top + used_h, left:left + used_w] = x[:, :, :used_h, :used_w]

    # PyTorch starts each window at maxval = -inf, maxindex = its first in-range element.
    first_row = np.maximum(np.arange(geom.out_h) * geom.stride_h - top, 0)
    first_col = np.maximum(np.arange(geom.out_w) * geom.stride_w - left, 0)
    shape = (n, c, geom.out_h, geom.out_w)
    best = xp.full(shape, -xp.inf, dtype=x.dtype)
    argmax = xp.empty(shape, dtype=xp.int64)
    argmax[...] = xp.asarray(first_row[:, None] * w + first_col[None, :])
    update = xp.empty(shape, dtype=bool)
    for i in range(geom.k_h):
        for j in range(geom.k_w):
            index, _ = _offset_tables(geom, i, j)
            # one contiguous copy of the strided slice makes the four passes below ~10x faster
            val = xp.ascontiguousarray(padded[_padded_slice(geom, i, j)])
            # update where val > best or val is NaN (padding is -inf: never > best, never NaN)
            xp.greater(val, best, out=update)
            update |= xp.isnan(val)
            xp.copyto(best, val, where=update)
            xp.copyto(argmax, xp.broadcast_to(xp.asarray(index), shape), where=update)
    return best, argmax


@register("max_pool2d_backward", "ref")
def max_pool2d_backward_ref(grad_y, argmax, geom):
    xp = array_module_of(grad_y)
    n, c = grad_y.shape[:2]
    h, w = geom.h, geom.w
    top, left, rows, cols = _window_origin(geom)
    grad_padded = xp.zeros((n, c, rows, cols), dtype=grad_y.dtype)
    zero = xp.zeros((), dtype=grad_y.dtype)
    for i in range(geom.k_h):
        for j in range(geom.k_w):
            index, valid = _offset_tables(geom, i, j)
            hit = (argmax == xp.asarray(index)) & xp.asarray(valid)
            grad_padded[_padded_slice(geom, i, j)] += xp.where(hit, grad_y, zero)
    grad_x = xp.zeros((n, c, h, w), dtype=grad_y.dtype)
    used_h, used_w = min(h, rows - top), min(w, cols - left)
    grad_x[:, :, :used_h, :used_w] = grad_padded[:, :, top:top + used_h, left:left + used_w]
    return grad_x


# ------------------------------------------------------------------------------------------------
# numba cpu
# ------------------------------------------------------------------------------------------------
# x: (P, H, W) with P = N*C planes; y, argmax: (P, outH, outW). Parallel over planes.

def windows_2x2(r0, r1, y_row, argmax_row, index0, index1, count):
    # The 2x2 / stride-2 windows 0 .. count-1 over rows r0, r1, all inside the input, by
    # selects instead of branches (LLVM vectorizes this across windows), with the general
    # loop's first-max / NaN rule; index0, index1: flat index of r0[0], r1[0] in the plane.
    for i in range(count):
        best = r0[2 * i]
        best_index = index0 + 2 * i
        val = r0[2 * i + 1]
        take = (val > best) | (val != val)
        best = val if take else best
        best_index = index0 + 2 * i + 1 if take else best_index
        val = r1[2 * i]
        take = (val > best) | (val != val)
        best = val if take else best
        best_index = index1 + 2 * i if take else best_index
        val = r1[2 * i + 1]
        take = (val > best) | (val != val)
        best = val if take else best
        best_index = index1 + 2 * i + 1 if take else best_index
        y_row[i] = best
        argmax_row[i] = best_index


_windows_2x2 = cpu_kernel(windows_2x2)


def windows_any(plane, y_row, argmax_row, h_start, h_end, ox_from, ox_to, k_w, stride_w, pad_left):
    # Windows ox_from .. ox_to-1 of one output row, any size, clipped to the input.
    w = plane.shape[1]
    for ox in range(ox_from, ox_to):
        w_start = ox * stride_w - pad_left
        w_end = min(w_start + k_w, w)
        w_start = max(w_start, 0)
        # Starting from the first element is the same as starting from -inf with the
        # first element's index (it either wins, is -inf, or is NaN and wins anyway).
        best = plane[h_start, w_start]
        best_index = h_start * w + w_start
        for ih in range(h_start, h_end):
            for iw in range(w_start, w_end):
                val = plane[ih, iw]
                if val > best or val != val:  # val != val: NaN propagates
                    best = val
                    best_index = ih * w + iw
        y_row[ox] = best
        argmax_row[ox] = best_index


_windows_any = cpu_kernel(windows_any)


def forward_planes(task, x, y_planes, argmax_planes, k_h, k_w, stride_h, stride_w, pad_top,
                   pad_left, planes):
    # x: (P, H, W); y_planes, argmax_planes: (P, outH, outW); task t pools planes t*planes ..
    # (t+1)*planes - 1
    for p in range(task * planes, min((task + 1) * planes, x.shape[0])):
        plane, y, argmax = x[p], y_planes[p], argmax_planes[p]
        h, w = plane.shape
        out_h, out_w = y.shape
        pairs = k_h == 2 and k_w == 2 and stride_h == 2 and stride_w == 2
        # output columns whose 2x2 window lies inside the input: 0 <= 2*ox - pad_left <= w - 2
        ox_from = min((pad_left + 1) // 2, out_w)
        ox_to = max(min((w - 2 + pad_left) // 2 + 1, out_w), ox_from)
        first = np.int64(0)    # not the constant 0: see compile.py, "one signature per kernel"
        for oy in range(out_h):
            h_start = oy * stride_h - pad_top
            h_end = min(h_start + k_h, h)
            h_start = max(h_start, 0)
            if pairs and h_end - h_start == 2 and ox_to > ox_from:
                # Both rows inside: the inner windows go to the vectorized loop. The rows are sliced
                # from the first inner window's column, so its indexes are visibly >= 0 (a possibly
                # negative index costs a wraparound check per load).
                col = 2 * ox_from - pad_left
                y_row, argmax_row = y[oy], argmax[oy]
                _windows_2x2(plane[h_start, col:], plane[h_start + 1, col:], y_row[ox_from:ox_to],
                             argmax_row[ox_from:ox_to], h_start * w + col, (h_start + 1) * w + col,
                             ox_to - ox_from)
                if ox_from > 0:
                    _windows_any(plane, y_row, argmax_row, h_start, h_end, first, ox_from, k_w,
                                 stride_w, pad_left)
                if ox_to < out_w:
                    _windows_any(plane, y_row, argmax_row, h_start, h_end, ox_to, out_w, k_w,
                                 stride_w, pad_left)
            else:
                _windows_any(plane, y[oy], argmax[oy], h_start, h_end, first, out_w, k_w, stride_w,
                             pad_left)


_forward_planes = cpu_kernel(forward_planes)


def backward_planes(task, grad_y, argmax, grad_x, out_of_plane, planes):
    # grad_y, argmax: (P, outH * outW); grad_x: (P, H * W), any values on entry;
    # out_of_plane: (P,), set to 1 for a plane whose argmax points outside it (never written).
    # Task t scatters planes t*planes .. (t+1)*planes - 1. Each plane is zeroed by the task
    # that fills it, while it is in cache (np.zeros on the whole array first was one core's
    # 20 MB memset before the loop).
    outs = grad_y.shape[1]
    size = grad_x.shape[1]
    for p in range(task * planes, min((task + 1) * planes, grad_x.shape[0])):
        grad_x[p, :] = 0
        for o in range(outs):
            i = argmax[p, o]
            if 0 <= i < size:
                grad_x[p, i] += grad_y[p, o]
            else:
                out_of_plane[p] = 1


_backward_planes = cpu_kernel(backward_planes)


@register("max_pool2d_forward", "numba")
def max_pool2d_forward_numba(x, geom):
    n, c, h, w = x.shape
    x3 = np.ascontiguousarray(x).reshape(n * c, h, w)
    y = memory.empty((n * c, geom.out_h, geom.out_w), x.dtype)
    argmax = memory.empty(y.shape, np.int64)
    run_planes(_forward_planes, n * c, h * w, x3, y, argmax, geom.k_h, geom.k_w, geom.stride_h,
               geom.stride_w, geom.pad_top, geom.pad_left)
    shape = (n, c, geom.out_h, geom.out_w)
    return y.reshape(shape), argmax.reshape(shape)


@register("max_pool2d_backward", "numba")
def max_pool2d_backward_numba(grad_y, argmax, geom):
    n, c, out_h, out_w = grad_y.shape
    grad_x = memory.empty((n * c, geom.h * geom.w), grad_y.dtype)     # zeroed in the loop
    out_of_plane = np.zeros(n * c, np.uint8)
    run_planes(_backward_planes, n * c, geom.h * geom.w,
               np.ascontiguousarray(grad_y).reshape(n * c, out_h * out_w),
               np.ascontiguousarray(argmax, dtype=np.int64).reshape(n * c, out_h * out_w),
               grad_x, out_of_plane)
    if out_of_plane.any():  # argmax did not come from max_pool2d_forward with this geometry
        raise ValueError(f"max_pool2d_backward: argmax holds indices outside the "
                         f"{geom.h}x{geom.w} input plane (in {int(out_of_plane.sum())} of "
                         f"{n * c} planes); pass the argmax max_pool2d_forward returned")
    return grad_x.reshape(n, c, geom.h, geom.w)


# ------------------------------------------------------------------------------------------------
# numba cuda
# ------------------------------------------------------------------------------------------------
# Flat 1-D launches (launch_1d): forward one thread per output element, backward one thread per
# INPUT element (a gather: no atomics, deterministic).

def max_pool2d_forward_kernel(x, y, argmax, total, h, w, out_h, out_w,
                               k_h, k_w, stride_h, stride_w, pad_top, pad_left, wide):
    # x: (P*H*W,) flat; y, argmax: (P*outH*outW,) flat.
    t = cuda.grid(1)
    if t >= total:
        return
    p, oy, ox = split_index(t, out_h, out_w, wide)
    h_start, h_end = window_span(oy, stride_h, pad_top, k_h, h)
    w_start, w_end = window_span(ox, stride_w, pad_left, k_w, w)
    base = p * h * w
    best = x[base + h_start * w + w_start]
    best_index = h_start * w + w_start
    for ih in range(h_start, h_end):
        for iw in range(w_start, w_end):
            val = x[base + ih * w + iw]
            if val > best or val != val:
                best = val
                best_index = ih * w + iw
    y[t] = best
    argmax[t] = best_index


_max_pool2d_forward_kernel = cuda_kernel(max_pool2d_forward_kernel)


def max_pool2d_backward_kernel(grad_y, argmax, grad_x, zero, total, h, w, out_h, out_w,
                                k_h, k_w, stride_h, stride_w, pad_top, pad_left, wide):
    # grad_x: (P*H*W,) flat, one thread per element; windows containing row ih are those with
    # oy * stride_h - pad_top <= ih <= oy * stride_h - pad_top + k_h - 1.
    t = cuda.grid(1)
    if t >= total:
        return
    p, ih, iw = split_index(t, h, w, wide)
    me = ih * w + iw
    oy_from, oy_to = windows_over(ih, stride_h, pad_top, k_h, out_h, wide)
    ox_from, ox_to = windows_over(iw, stride_w, pad_left, k_w, out_w, wide)
    acc = zero
    base = p * out_h * out_w
    for oy in range(oy_from, oy_to):
        for ox in range(ox_from, ox_to):
            o = base + oy * out_w + ox
            if argmax[o] == me:
                acc += grad_y[o]
    grad_x[t] = acc


_max_pool2d_backward_kernel = cuda_kernel(max_pool2d_backward_kernel)


@register("max_pool2d_forward", "cuda")
def max_pool2d_forward_cuda(x, geom):
    xp = array_module_of(x)
    n, c, h, w = x.shape
    out_h, out_w = geom.out_h, geom.out_w
    y = xp.empty((n, c, out_h, out_w), dtype=x.dtype)
    argmax = xp.empty(y.shape, dtype=xp.int64)
    total = y.size
    launch_1d(_max_pool2d_forward_kernel, total, xp.ascontiguousarray(x).reshape(-1), y.reshape(-1),
              argmax.reshape(-1), total, h, w, out_h, out_w, geom.k_h, geom.k_w,
              geom.stride_h, geom.stride_w, geom.pad_top, geom.pad_left,
              needs_wide_index(x.size, total))
    return y, argmax


@register("max_pool2d_backward", "cuda")
def max_pool2d_backward_cuda(grad_y, argmax, geom):
    xp = array_module_of(grad_y)
    n, c, out_h, out_w = grad_y.shape
    h, w = geom.h, geom.w
    grad_x = xp.empty((n, c, h, w), dtype=grad_y.dtype)
    total = grad_x.size
    launch_1d(_max_pool2d_backward_kernel, total, xp.ascontiguousarray(grad_y).reshape(-1),
              xp.ascontiguousarray(argmax, dtype=xp.int64).reshape(-1), grad_x.reshape(-1),
              grad_y.dtype.type(0), total, h, w, out_h, out_w, geom.k_h, geom.k_w,
              geom.stride_h, geom.stride_w, geom.pad_top, geom.pad_left,
              needs_wide_index(total, grad_y.size))
    return grad_x
