"""upsample (torch.nn.functional.interpolate): modes 'nearest' and 'bilinear', NCHW.

Shapes:
    x: (N, C, H, W)  ->  y: (N, C, outH, outW), same dtype as x
Geometry (kernels/geometry.py, `interpolate_geometry`): with `size`, (outH, outW) = size and
scale = in / out; with `scale_factor` s, out = floor(in * s) and scale = 1 / s (PyTorch keeps the
factor, it does not recompute it from the sizes); bilinear with align_corners=True uses
scale = (in - 1) / (out - 1) (0 when out == 1).

Every output pixel reads input pixels chosen by a per-AXIS rule, so everything is driven by small
per-axis tables built on the host (NumPy) in exactly PyTorch's CPU arithmetic, then passed into the
kernels. All tiers therefore use the same source indices and weights by construction.

nearest (PyTorch's `nearest_idx`, float32 arithmetic):
    src = dst                                     if out == in
    src = dst >> 1                                if out == 2 * in
    src = min(floorf(float(dst) * float(scale)), in - 1)   otherwise (float32 product)
    y[oy, ox] = x[src_h[oy], src_w[ox]]
  (the special cases matter: with scale_factor=1.05 on 9 pixels, out == in and PyTorch copies,
  while the formula would give row 7 for dst 8.)

bilinear (PyTorch's `compute_source_index_and_lambda`; opmath is float for float32 inputs and
double for float64 inputs):
    if out == in: h0 = h1 = dst, lambda0 = 1, lambda1 = 0 (a copy)
    else:
        src = scale * dst                                   align_corners=True
        src = max(fma(scale, dst + 0.5, -0.5), 0)           align_corners=False
              (one rounding: PyTorch's compiled kernel fuses it; emulated exactly on the host)
        h0 = min(floorf(src), in - 1)   (floorf: PyTorch rounds src to float first, also for double)
        lambda1 = clamp(src - h0, 0, 1); lambda0 = 1 - lambda1
        h1 = h0 + (1 if h0 < in - 1 else 0)
    y = l0h * (l0w * x[h0, w0] + l1w * x[h0, w1]) + l1h * (l0w * x[h1, w0] + l1w * x[h1, w1])

Backward (adjoint of the forward: grad_x[src] += weight * grad_y):
- CPU tiers scatter-add. The reference writes the per-axis operator as an (out, in) matrix A and
  computes grad_x = A_h^T @ grad_y @ A_w (two matmuls: exact, and far faster than np.add.at);
  since 0 * inf = NaN would smear a non-finite gradient along whole rows, a non-finite grad_y takes
  a per-output-row scatter path instead, which keeps NaN/inf local like the numba tier.
- The CUDA tier is a deterministic GATHER: one thread per input element. The host builds the
  inverse tables (for each input row, the output rows that read it, with their weights) as CSR
  offset + index + weight arrays, so each thread loops only over its contributors, in a fixed order.

Tiers (same signatures everywhere):
    "upsample_nearest_forward"(x, geom) -> y        "upsample_nearest_backward"(grad_y, geom) -> grad_x
    "upsample_bilinear_forward"(x, geom) -> y       "upsample_bilinear_backward"(grad_y, geom) -> grad_x

Why the numba loop structure: one parallel task per N*C plane, the natural independent unit:
the scatter-add backward writes only its own plane (no atomics, no private buffers), one plane is
a few KiB (stays in L1 while it is scattered into), and N*C = 6400 at the classic-CAE shapes keeps
every core busy. Inside a plane, plain row-major loops over the output with the per-axis tables;
per-row values (source row, row weights) are hoisted out of the inner loop.

Figures: kernels/NOTES.md, "upsample".
"""

import functools
from fractions import Fraction

import numpy as np

from . import geometry, memory
from .compile import (array_module_of, cpu_kernel, cuda, cuda_kernel, launch_1d,
                      needs_wide_index, run_planes, split_index, table_argument)
from .op import Arg, Family, Op, describe
from .registry import register


# ------------------------------------------------------------------------------------------------
# the ops' description (kernels/op.py): two families, one per mode, sharing everything but costs
# ------------------------------------------------------------------------------------------------

def _sizes(geom):
    """Elements of x and of y: N*C*H*W and N*C*outH*outW."""
    planes = geom.n * geom.c
    return planes * geom.h * geom.w, planes * geom.out_h * geom.out_w


def _cost(forward_flops, backward_flops):
    """Costs with `*_flops` per output element; every pass reads one of x / grad_y, writes the
    other."""
    def forward(geom, shapes, s):
        x, y = _sizes(geom)
        return forward_flops * y, s * (x + y)

    def backward(geom, shapes, s):
        x, y = _sizes(geom)
        return backward_flops * y, s * (x + y)
    return forward, backward


def _inputs(mode):
    def inputs(params, dtype, rng):
        """(geom, {op: args}) for x of shape params["x"] resized to params' size or
        scale_factor (align_corners for bilinear)."""
        geom = geometry.interpolate_geometry(params["x"], size=params.get("size"),
                                             scale_factor=params.get("scale_factor"), mode=mode,
                                             align_corners=params.get("align_corners"))
        x = rng.standard_normal(params["x"]).astype(dtype)
        grad_y = rng.standard_normal((geom.n, geom.c, geom.out_h,
                                      geom.out_w)).astype(dtype)
        return geom, {f"upsample_{mode}_forward": (x, geom),
                      f"upsample_{mode}_backward": (grad_y, geom)}
    return inputs


def torch_counterpart(torch, op, args):
    """F.interpolate (forward) and the aten backward its autograd calls, at the same sizes."""
    aten, F = torch.ops.aten, torch.nn.functional
    geom = args[-1]
    size, in_size = [geom.out_h, geom.out_w], [geom.n, geom.c, geom.h, geom.w]
    t = args[0]
    if geom.mode in ("nearest", "nearest-exact"):
        mode = geom.mode
        if op.endswith("_forward"):
            return lambda: F.interpolate(t, size=size, mode=mode)
        backward = (aten.upsample_nearest2d_backward if mode == "nearest" else
                    aten._upsample_nearest_exact2d_backward)
        return lambda: backward(t, size, in_size, None, None)
    align = bool(geom.align_corners)
    if op.endswith("_forward"):
        return lambda: F.interpolate(t, size=size, mode="bilinear", align_corners=align)
    return lambda: aten.upsample_bilinear2d_backward(t, size, in_size, align, None, None)


def _family(mode, forward_flops, backward_flops, sample):
    forward, backward = _cost(forward_flops, backward_flops)
    return describe(Family(
        f"upsample_{mode}",
        ops=(Op(f"upsample_{mode}_forward", (Arg("x", "input"),), forward),
             Op(f"upsample_{mode}_backward", (Arg("grad_y", "output"),), backward)),
        geometry=geometry.interpolate_arrays, inputs=_inputs(mode), sample=sample,
        torch=torch_counterpart))


# nearest: a copy forward, one add per output element backward; bilinear: 4 products and 3 sums
# per output element forward, 8 backward
NEAREST = _family("nearest", 0, 1, {"x": (2, 3, 5, 5), "size": (7, 9)})
BILINEAR = _family("bilinear", 7, 8, {"x": (2, 3, 5, 5), "scale_factor": 1.5,
                                      "align_corners": False})


# ------------------------------------------------------------------------------------------------
# host tables (shared by every tier)
# ------------------------------------------------------------------------------------------------

def _frozen(*arrays):
    """Tables are cached and shared between calls: make them read-only."""
    for array in arrays:
        array.setflags(write=False)
    return arrays if len(arrays) > 1 else arrays[0]


@functools.lru_cache(maxsize=128)
def nearest_table(in_size, out_size, scale):
    """Source index for each output position of one axis, PyTorch's legacy 'nearest':
    int64 (out,)."""
    dst = np.arange(out_size, dtype=np.int64)
    if out_size == in_size:
        return _frozen(dst)
    if out_size == 2 * in_size:
        return _frozen(dst >> 1)
    # float32, like PyTorch: float scale = (float)(1.0 / scale_factor) or (float)in / out.
    product = dst.astype(np.float32) * np.float32(scale)
    return _frozen(np.minimum(np.floor(product).astype(np.int64), in_size - 1))


@functools.lru_cache(maxsize=128)
def nearest_exact_table(in_size, out_size, scale):
    """Source index for each output position of one axis, 'nearest-exact' (pixel centres: TF2's
    nearest resize, Pillow's): src = min(floor((dst + 0.5) * scale), in - 1), with PyTorch's
    arithmetic: a float32 scale, the product in double, rounded to float32 before the floor."""
    product = ((np.arange(out_size) + 0.5) * np.float64(np.float32(scale))).astype(np.float32)
    return _frozen(np.minimum(np.floor(product).astype(np.int64), in_size - 1))


NEAREST_TABLES = {"nearest": nearest_table, "nearest-exact": nearest_exact_table}


@functools.lru_cache(maxsize=128)
def linear_table(in_size, out_size, scale, align_corners, dtype):
    """(i0, i1, lambda0, lambda1) for one axis: int64 (out,) x 2 and dtype (out,) x 2."""
    dtype = np.dtype(dtype)
    dst = np.arange(out_size, dtype=np.int64)
    if out_size == in_size:  # PyTorch copies (whatever the scale)
        return _frozen(dst, dst.copy(), np.ones(out_size, dtype), np.zeros(out_size, dtype))
    one = dtype.type(1)
    if align_corners:
        s = dtype.type(in_size - 1) / dtype.type(out_size - 1) if out_size > 1 else dtype.type(0)
        src = s * dst.astype(dtype)
    else:
        s = dtype.type(scale)
        src = _fused_multiply_add(s, dst.astype(dtype) + dtype.type(0.5), -0.5, dtype)
        src = np.maximum(src, dtype.type(0))
    # floorf(src): PyTorch rounds to float first (it matters only for float64 within 1 float-ulp).
    i0 = np.minimum(np.floor(src.astype(np.float32)).astype(np.int64), in_size - 1)
    lambda1 = np.clip(src - i0.astype(dtype), 0, 1).astype(dtype)
    lambda0 = (one - lambda1).astype(dtype)
    i1 = i0 + (i0 < in_size - 1)
    return _frozen(i0, i1, lambda0, lambda1)


def _fused_multiply_add(a, b, c, dtype):
    """a * b + c rounded ONCE to dtype, as PyTorch's CPU build computes `scale * (dst + 0.5) - 0.5`
    (its compiler contracts it into an FMA; rounding the product first moves float32 weights by
    up to ~50 ulp of the output). Exact emulation on the host: for float32 the float64 product of
    two floats is exact and, whenever the result is >= 0 (negative sources are clamped to 0
    anyway), so is the sum; for float64 we use exact rationals (tables are short and cached)."""
    if dtype == np.float32:
        return (np.float64(a) * b.astype(np.float64) + c).astype(np.float32)
    return np.array([float(Fraction(float(a)) * Fraction(float(v)) + Fraction(c)) for v in b],
                    dtype=dtype)


def _axis(geom, axis):
    """(in size, out size, scale) of one axis ('h' or 'w') of the geometry."""
    return getattr(geom, axis), getattr(geom, "out_" + axis), getattr(geom, "scale_" + axis)


def _axis_taps(in_size, out_size, scale, mode, align_corners, dtype):
    """[(index, weight), ...] for one axis: one tap (both nearest modes) or two (bilinear)."""
    if mode in NEAREST_TABLES:
        return [(NEAREST_TABLES[mode](in_size, out_size, scale), _frozen(np.ones(out_size, dtype)))]
    i0, i1, l0, l1 = linear_table(in_size, out_size, scale, align_corners, np.dtype(dtype).str)
    return [(i0, l0), (i1, l1)]


def _taps(geom, axis, dtype):
    """[(index, weight), ...] for one axis ('h' or 'w') of the geometry."""
    return _axis_taps(*_axis(geom, axis), geom.mode, geom.align_corners, dtype)


def interpolation_matrix(geom, axis, dtype):
    """The (out, in) matrix of one axis' operator: y_axis = A @ x_axis."""
    in_size, out_size, _ = _axis(geom, axis)
    matrix = np.zeros((out_size, in_size), dtype=dtype)
    rows = np.arange(out_size)
    for index, weight in _taps(geom, axis, dtype):
        np.add.at(matrix, (rows, index), weight)
    return matrix


@functools.lru_cache(maxsize=128)
def _inverse_table_cached(in_size, out_size, scale, mode, align_corners, dtype):
    taps = _axis_taps(in_size, out_size, scale, mode, align_corners, dtype)
    # entries in (output position, tap) order; a stable sort by source keeps that order per row
    sources = np.stack([index for index, _ in taps], axis=1).ravel()
    targets = np.repeat(np.arange(out_size, dtype=np.int64), len(taps))
    weights = np.stack([weight for _, weight in taps], axis=1).ravel()
    order = np.argsort(sources, kind="stable")
    offsets = np.zeros(in_size + 1, dtype=np.int64)
    offsets[1:] = np.cumsum(np.bincount(sources, minlength=in_size))
    return _frozen(offsets, targets[order], np.ascontiguousarray(weights[order]))


def inverse_table(geom, axis, dtype):
    """CSR form of one axis' adjoint: input position i is read by output positions
    targets[offsets[i]:offsets[i + 1]] with weights weights[offsets[i]:offsets[i + 1]]."""
    return _inverse_table_cached(*_axis(geom, axis), geom.mode, geom.align_corners,
                                 np.dtype(dtype).str)


def _check_mode(geom, mode):
    """The nearest kernels run both nearest modes (only their tables differ)."""
    modes = tuple(NEAREST_TABLES) if mode == "nearest" else (mode,)
    if geom.mode not in modes:
        raise ValueError(f"upsample_{mode} kernel called with geometry for mode={geom.mode!r}")


# ------------------------------------------------------------------------------------------------
# reference
# ------------------------------------------------------------------------------------------------

@register("upsample_nearest_forward", "ref")
def upsample_nearest_forward_ref(x, geom):
    _check_mode(geom, "nearest")
    xp = array_module_of(x)
    (src_h, _), = _taps(geom, "h", x.dtype)
    (src_w, _), = _taps(geom, "w", x.dtype)
    rows = xp.take(x, xp.asarray(src_h), axis=2)        # (N, C, outH, W); take beats x[:, :, idx]
    return xp.take(rows, xp.asarray(src_w), axis=3)     # (N, C, outH, outW)


@register("upsample_bilinear_forward", "ref")
def upsample_bilinear_forward_ref(x, geom):
    _check_mode(geom, "bilinear")
    xp = array_module_of(x)
    (h0, l0h), (h1, l1h) = [(xp.asarray(i), xp.asarray(l)[:, None]) for i, l in _taps(geom, "h", x.dtype)]
    (w0, l0w), (w1, l1w) = [(xp.asarray(i), xp.asarray(l)) for i, l in _taps(geom, "w", x.dtype)]
    row0, row1 = xp.take(x, h0, axis=2), xp.take(x, h1, axis=2)      # (N, C, outH, W)
    top = l0w * xp.take(row0, w0, axis=3) + l1w * xp.take(row0, w1, axis=3)   # (N, C, outH, outW)
    bottom = l0w * xp.take(row1, w0, axis=3) + l1w * xp.take(row1, w1, axis=3)
    return l0h * top + l1h * bottom


def _scatter_axis(xp, grad, taps, in_size, axis):
    """grad_in[..., i, ...] += w[o] * grad[..., o, ...] along `axis` (-1 or -2), one output
    position at a time: slow but keeps non-finite values local."""
    grad = xp.moveaxis(grad, axis, -1)
    out = xp.zeros(grad.shape[:-1] + (in_size,), dtype=grad.dtype)
    for index, weight in taps:
        for o in range(grad.shape[-1]):
            out[..., int(index[o])] += weight[o] * grad[..., o]
    return xp.moveaxis(out, -1, axis)


def _upsample_backward_ref(grad_y, geom):
    xp = array_module_of(grad_y)
    if bool(xp.isfinite(grad_y).all()):
        a_h = xp.asarray(interpolation_matrix(geom, "h", grad_y.dtype))   # (outH, H)
        a_w = xp.asarray(interpolation_matrix(geom, "w", grad_y.dtype))   # (outW, W)
        return xp.ascontiguousarray(a_h.T @ (grad_y @ a_w))               # (N, C, H, W)
    grad = _scatter_axis(xp, grad_y, _taps(geom, "w", grad_y.dtype), geom.w, -1)
    return xp.ascontiguousarray(_scatter_axis(xp, grad, _taps(geom, "h", grad_y.dtype), geom.h, -2))


@register("upsample_nearest_backward", "ref")
def upsample_nearest_backward_ref(grad_y, geom):
    _check_mode(geom, "nearest")
    return _upsample_backward_ref(grad_y, geom)


@register("upsample_bilinear_backward", "ref")
def upsample_bilinear_backward_ref(grad_y, geom):
    _check_mode(geom, "bilinear")
    return _upsample_backward_ref(grad_y, geom)


# ------------------------------------------------------------------------------------------------
# numba cpu
# ------------------------------------------------------------------------------------------------
# x: (P, H, W) with P = N*C planes, y: (P, outH, outW); task t computes planes t*planes ..
# (t+1)*planes - 1, and compile.run_planes runs the tasks over all planes.

def nearest_forward_planes(task, x, src_h, src_w, y, planes):
    _, out_h, out_w = y.shape
    for p in range(task * planes, min((task + 1) * planes, y.shape[0])):
        for oy in range(out_h):
            ih = src_h[oy]
            for ox in range(out_w):
                y[p, oy, ox] = x[p, ih, src_w[ox]]


_nearest_forward_planes = cpu_kernel(nearest_forward_planes)


def nearest_backward_planes(task, grad_y, src_h, src_w, grad_x, planes):
    # grad_x zero on entry
    _, out_h, out_w = grad_y.shape
    for p in range(task * planes, min((task + 1) * planes, grad_x.shape[0])):
        for oy in range(out_h):
            ih = src_h[oy]
            for ox in range(out_w):
                grad_x[p, ih, src_w[ox]] += grad_y[p, oy, ox]


_nearest_backward_planes = cpu_kernel(nearest_backward_planes)


def bilinear_forward_planes(task, x, h0, h1, l0h, l1h, w0, w1, l0w, l1w, y, planes):
    _, out_h, out_w = y.shape
    for p in range(task * planes, min((task + 1) * planes, y.shape[0])):
        for oy in range(out_h):
            a, b = h0[oy], h1[oy]
            wa, wb = l0h[oy], l1h[oy]
            for ox in range(out_w):
                c, d = w0[ox], w1[ox]
                wc, wd = l0w[ox], l1w[ox]
                y[p, oy, ox] = (wa * (wc * x[p, a, c] + wd * x[p, a, d])
                                + wb * (wc * x[p, b, c] + wd * x[p, b, d]))


_bilinear_forward_planes = cpu_kernel(bilinear_forward_planes)


def bilinear_backward_planes(task, grad_y, h0, h1, l0h, l1h, w0, w1, l0w, l1w, grad_x, planes):
    # grad_x zero on entry
    _, out_h, out_w = grad_y.shape
    for p in range(task * planes, min((task + 1) * planes, grad_x.shape[0])):
        for oy in range(out_h):
            a, b = h0[oy], h1[oy]
            wa, wb = l0h[oy], l1h[oy]
            for ox in range(out_w):
                c, d = w0[ox], w1[ox]
                wc, wd = l0w[ox], l1w[ox]
                g = grad_y[p, oy, ox]
                ga, gb = wa * g, wb * g
                grad_x[p, a, c] += wc * ga
                grad_x[p, a, d] += wd * ga
                grad_x[p, b, c] += wc * gb
                grad_x[p, b, d] += wd * gb


_bilinear_backward_planes = cpu_kernel(bilinear_backward_planes)


def _planes(a):
    n, c, h, w = a.shape
    return np.ascontiguousarray(a).reshape(n * c, h, w)


def _bilinear_tables(geom, dtype):
    (h0, l0h), (h1, l1h) = _taps(geom, "h", dtype)
    (w0, l0w), (w1, l1w) = _taps(geom, "w", dtype)
    return h0, h1, l0h, l1h, w0, w1, l0w, l1w


@register("upsample_nearest_forward", "numba")
def upsample_nearest_forward_numba(x, geom):
    _check_mode(geom, "nearest")
    n, c = x.shape[:2]
    y = memory.empty((n * c, geom.out_h, geom.out_w), x.dtype)
    (src_h, _), = _taps(geom, "h", x.dtype)
    (src_w, _), = _taps(geom, "w", x.dtype)
    run_planes(_nearest_forward_planes, n * c, geom.out_h * geom.out_w, _planes(x), src_h, src_w, y)
    return y.reshape(n, c, geom.out_h, geom.out_w)


@register("upsample_nearest_backward", "numba")
def upsample_nearest_backward_numba(grad_y, geom):
    _check_mode(geom, "nearest")
    n, c = grad_y.shape[:2]
    grad_x = memory.zeros((n * c, geom.h, geom.w), grad_y.dtype)
    (src_h, _), = _taps(geom, "h", grad_y.dtype)
    (src_w, _), = _taps(geom, "w", grad_y.dtype)
    run_planes(_nearest_backward_planes, n * c, geom.out_h * geom.out_w, _planes(grad_y), src_h,
               src_w, grad_x)
    return grad_x.reshape(n, c, geom.h, geom.w)


@register("upsample_bilinear_forward", "numba")
def upsample_bilinear_forward_numba(x, geom):
    _check_mode(geom, "bilinear")
    n, c = x.shape[:2]
    y = memory.empty((n * c, geom.out_h, geom.out_w), x.dtype)
    run_planes(_bilinear_forward_planes, n * c, geom.out_h * geom.out_w, _planes(x),
               *_bilinear_tables(geom, x.dtype), y)
    return y.reshape(n, c, geom.out_h, geom.out_w)


@register("upsample_bilinear_backward", "numba")
def upsample_bilinear_backward_numba(grad_y, geom):
    _check_mode(geom, "bilinear")
    n, c = grad_y.shape[:2]
    grad_x = memory.zeros((n * c, geom.h, geom.w), grad_y.dtype)
    run_planes(_bilinear_backward_planes, n * c, geom.out_h * geom.out_w, _planes(grad_y),
               *_bilinear_tables(geom, grad_y.dtype), grad_x)
    return grad_x.reshape(n, c, geom.h, geom.w)


# ------------------------------------------------------------------------------------------------
# numba cuda
# ------------------------------------------------------------------------------------------------
# Flat 1-D launches (launch_1d). Forward: one thread per output element, reading the per-axis
# tables. Backward (both modes): one thread per INPUT element gathering over its contributors
# from the CSR inverse tables -- grad_x[ih, iw] = sum_(oy, a) a * sum_(ox, b) b * grad_y[oy, ox] --
# in a fixed order, so no atomics and bit-identical results. For nearest the weights are 1.

def nearest_forward_kernel(x, src_h, src_w, y, total, h, w, out_h, out_w, wide):
    t = cuda.grid(1)
    if t >= total:
        return
    p, oy, ox = split_index(t, out_h, out_w, wide)
    y[t] = x[(p * h + src_h[oy]) * w + src_w[ox]]


_nearest_forward_kernel = cuda_kernel(nearest_forward_kernel)


def bilinear_forward_kernel(x, h0, h1, l0h, l1h, w0, w1, l0w, l1w, y, total, h, w, out_h, out_w,
                            wide):
    t = cuda.grid(1)
    if t >= total:
        return
    p, oy, ox = split_index(t, out_h, out_w, wide)
    row_a = (p * h + h0[oy]) * w
    row_b = (p * h + h1[oy]) * w
    c, d = w0[ox], w1[ox]
    wc, wd = l0w[ox], l1w[ox]
    y[t] = (l0h[oy] * (wc * x[row_a + c] + wd * x[row_a + d])
            + l1h[oy] * (wc * x[row_b + c] + wd * x[row_b + d]))


_bilinear_forward_kernel = cuda_kernel(bilinear_forward_kernel)


def gather_backward_kernel(grad_y, off_h, tgt_h, wt_h, off_w, tgt_w, wt_w, grad_x, zero,
                            total, h, w, out_h, out_w, wide):
    t = cuda.grid(1)
    if t >= total:
        return
    p, ih, iw = split_index(t, h, w, wide)
    acc = zero
    for e in range(off_h[ih], off_h[ih + 1]):
        row = (p * out_h + tgt_h[e]) * out_w
        inner = zero
        for f in range(off_w[iw], off_w[iw + 1]):
            inner += wt_w[f] * grad_y[row + tgt_w[f]]
        acc += wt_h[e] * inner
    grad_x[t] = acc


_gather_backward_kernel = cuda_kernel(gather_backward_kernel)


@register("upsample_nearest_forward", "cuda")
def upsample_nearest_forward_cuda(x, geom):
    _check_mode(geom, "nearest")
    xp = array_module_of(x)
    n, c, h, w = x.shape
    out_h, out_w = geom.out_h, geom.out_w
    (src_h, _), = _taps(geom, "h", x.dtype)
    (src_w, _), = _taps(geom, "w", x.dtype)
    y = xp.empty((n, c, out_h, out_w), dtype=x.dtype)
    launch_1d(_nearest_forward_kernel, y.size, xp.ascontiguousarray(x).reshape(-1),
              table_argument(xp, src_h), table_argument(xp, src_w), y.reshape(-1), y.size, h, w, out_h, out_w,
              needs_wide_index(x.size, y.size))
    return y


@register("upsample_bilinear_forward", "cuda")
def upsample_bilinear_forward_cuda(x, geom):
    _check_mode(geom, "bilinear")
    xp = array_module_of(x)
    n, c, h, w = x.shape
    out_h, out_w = geom.out_h, geom.out_w
    tables = [table_argument(xp, t) for t in _bilinear_tables(geom, x.dtype)]
    y = xp.empty((n, c, out_h, out_w), dtype=x.dtype)
    launch_1d(_bilinear_forward_kernel, y.size, xp.ascontiguousarray(x).reshape(-1), *tables,
              y.reshape(-1), y.size, h, w, out_h, out_w, needs_wide_index(x.size, y.size))
    return y


def _upsample_backward_cuda(grad_y, geom):
    xp = array_module_of(grad_y)
    n, c, out_h, out_w = grad_y.shape
    h, w = geom.h, geom.w
    tables = [table_argument(xp, t) for axis in ("h", "w") for t in inverse_table(geom, axis, grad_y.dtype)]
    grad_x = xp.empty((n, c, h, w), dtype=grad_y.dtype)
    launch_1d(_gather_backward_kernel, grad_x.size, xp.ascontiguousarray(grad_y).reshape(-1), *tables,
              grad_x.reshape(-1), grad_y.dtype.type(0), grad_x.size, h, w, out_h, out_w,
              needs_wide_index(grad_x.size, grad_y.size))
    return grad_x


@register("upsample_nearest_backward", "cuda")
def upsample_nearest_backward_cuda(grad_y, geom):
    _check_mode(geom, "nearest")
    return _upsample_backward_cuda(grad_y, geom)


@register("upsample_bilinear_backward", "cuda")
def upsample_bilinear_backward_cuda(grad_y, geom):
    _check_mode(geom, "bilinear")
    return _upsample_backward_cuda(grad_y, geom)
