"""conv2d numba.cuda tier: one thread per output element, gathers only (no atomics).

    gather_cuda(x, w, b, stride, pads, out_hw, dilation, groups)
        conv2d forward                                      w: (Cout, Cin/groups, kH, kW)
    scatter_cuda(x, w, b, stride, pads, out_hw, dilation, groups)
        conv_transpose2d forward, as a gather over the taps that reach each output
                                                            w: (Cin, Cout/groups, kH, kW)
    weight_cuda(g, x, stride, pads, kernel_hw, dilation, groups)
        one thread per weight element                       -> (A, B/groups, kH, kW)
Dilation (dh, dw) moves tap (ky, kx) to window offset (ky*dh, kx*dw); with groups, a thread
works on its own group's channels only (the group of its output channel, or weight row). Each
thread sums in a fixed order, so results are the same run after run. The launchers make the
arrays contiguous and launch one thread per element through compile.launch_1d. This is
version 1, simple and slow (no data reuse between threads); cuda_tiled.py is version 2.
A missing bias is a flag (has_bias = 0) with w passed in its place, never read: no allocation.
"""

import math

from ..compile import (array_module_of, cuda, cuda_device, cuda_kernel, launch_1d,
                       needs_wide_index, quotient, split_index, split_pair)


def gather_kernel(x, w, b, y, sh, sw, top, left, dh, dw, groups, has_bias, zero, wide):
    # y[n, co, oy, ox] = b[co] + sum_{ci, ky, kx} w[co, ci, ky, kx]
    #                            * x[n, ci0 + ci, oy*sH + ky*dH - top, ox*sW + kx*dW - left]
    # with ci0 the first input channel of co's group
    i = cuda.grid(1)
    n_, c_out, oh, ow = y.shape
    if i >= n_ * c_out * oh * ow:
        return
    plane, oy, ox = split_index(i, oh, ow, wide)
    n, co = split_pair(plane, c_out, wide)
    h, w_in = x.shape[2], x.shape[3]
    c_in, k_h, k_w = w.shape[1], w.shape[2], w.shape[3]      # c_in: channels per group
    ci0 = quotient(co, quotient(c_out, groups)) * c_in
    acc = zero
    if has_bias:
        acc += b[co]
    for ci in range(c_in):
        for ky in range(k_h):
            iy = oy * sh + ky * dh - top
            if iy >= 0 and iy < h:
                for kx in range(k_w):
                    ix = ox * sw + kx * dw - left
                    if ix >= 0 and ix < w_in:
                        acc += w[co, ci, ky, kx] * x[n, ci0 + ci, iy, ix]
    y[n, co, oy, ox] = acc


_gather_kernel = cuda_kernel(gather_kernel)


@cuda_device
def first_tap(phase, stride, dilation, kernel):
    """The first tap ky whose offset ky*dilation has remainder `phase` mod stride: the first
    that reaches the transposed conv's full rows fy with fy % stride == phase (kernel: none)."""
    for ky in range(kernel):
        if split_pair(ky * dilation, stride, False)[1] == phase:
            return ky
    return kernel


def scatter_kernel(x, w, b, y, sh, sw, top, left, dh, dw, every_h, every_w, groups, has_bias,
                   zero, wide):
    # transposed conv as a gather: y[n, co, oy, ox] = b[co] + sum over the taps (ky, kx) with
    # oy + top = iy*sH + ky*dH (0 <= iy < H), likewise for ox, of x[n, ci, iy, ix] * w[ci, co', ky, kx]
    # over the input channels ci of co's group (co' = co within its group). The taps that reach
    # full row fy are first_tap(fy % sH), then every `every_h`-th (sH / gcd(sH, dH)).
    i = cuda.grid(1)
    n_, c_out, oh, ow = y.shape
    if i >= n_ * c_out * oh * ow:
        return
    plane, oy, ox = split_index(i, oh, ow, wide)
    n, co = split_pair(plane, c_out, wide)
    c_in, h, w_in = x.shape[1], x.shape[2], x.shape[3]
    c_out_g, k_h, k_w = w.shape[1], w.shape[2], w.shape[3]
    group = quotient(co, c_out_g)
    c_in_g = quotient(c_in, groups)
    fy = oy + top
    fx = ox + left
    acc = zero
    if has_bias:
        acc += b[co]
    first_h = first_tap(split_pair(fy, sh, wide)[1], sh, dh, k_h)
    first_w = first_tap(split_pair(fx, sw, wide)[1], sw, dw, k_w)
    # range(first_h, k_h, every_h), as a count of taps (a stepped range divides, signed)
    for tap_y in range(quotient(k_h - first_h + every_h - 1, every_h)):
        ky = first_h + tap_y * every_h
        if fy - ky * dh >= 0:
            iy = split_pair(fy - ky * dh, sh, wide)[0]
            if iy < h:
                for tap_x in range(quotient(k_w - first_w + every_w - 1, every_w)):
                    kx = first_w + tap_x * every_w
                    if fx - kx * dw >= 0:
                        ix = split_pair(fx - kx * dw, sw, wide)[0]
                        if ix < w_in:
                            for ci in range(group * c_in_g, (group + 1) * c_in_g):
                                acc += x[n, ci, iy, ix] * w[ci, co - group * c_out_g, ky, kx]
    y[n, co, oy, ox] = acc


_scatter_kernel = cuda_kernel(scatter_kernel)


def weight_kernel(g, x, gw, sh, sw, top, left, dh, dw, groups, wide):
    # one thread per weight element:
    # gw[a, c, ky, kx] = sum_{n, i, j} g[n, a, i, j] * x[n, c0 + c, i*sH+ky*dH-top, j*sW+kx*dW-left]
    # with c0 the first channel of x in a's group
    t = cuda.grid(1)
    c_a, c_b, k_h, k_w = gw.shape
    if t >= c_a * c_b * k_h * k_w:
        return
    plane, ky, kx = split_index(t, k_h, k_w, wide)
    a, c = split_pair(plane, c_b, wide)
    c0 = quotient(a, quotient(c_a, groups)) * c_b
    n_, oh, ow = g.shape[0], g.shape[2], g.shape[3]
    h, w_in = x.shape[2], x.shape[3]
    acc = gw[a, c, ky, kx]  # zero-initialised by the launcher; gives acc the array's dtype
    for n in range(n_):
        for i in range(oh):
            iy = i * sh + ky * dh - top
            if iy >= 0 and iy < h:
                for j in range(ow):
                    ix = j * sw + kx * dw - left
                    if ix >= 0 and ix < w_in:
                        acc += g[n, a, i, j] * x[n, c0 + c, iy, ix]
    gw[a, c, ky, kx] = acc


_weight_kernel = cuda_kernel(weight_kernel)


def bias_argument(xp, b, w, dtype):
    """(bias, has_bias) for a kernel: b made contiguous, or w as a flat (never read) stand-in and 0."""
    if b is None:
        return w.reshape(-1), 0
    return xp.ascontiguousarray(b, dtype=dtype), 1


def gather_cuda(x, w, b, stride, pads, out_hw, dilation=(1, 1), groups=1):
    xp = array_module_of(x)
    x = xp.ascontiguousarray(x)
    w = xp.ascontiguousarray(w, dtype=x.dtype)
    y = xp.empty((x.shape[0], w.shape[0]) + tuple(out_hw), dtype=x.dtype)
    bias, has_bias = bias_argument(xp, b, w, x.dtype)
    launch_1d(_gather_kernel, y.size, x, w, bias, y, stride[0], stride[1], pads[0], pads[1],
              dilation[0], dilation[1], groups, has_bias, x.dtype.type(0),
              needs_wide_index(x.size, y.size, w.size))
    return y


def scatter_cuda(x, w, b, stride, pads, out_hw, dilation=(1, 1), groups=1):
    xp = array_module_of(x)
    x = xp.ascontiguousarray(x)
    w = xp.ascontiguousarray(w, dtype=x.dtype)
    c_out = w.shape[1] * groups
    y = xp.empty((x.shape[0], c_out) + tuple(out_hw), dtype=x.dtype)
    bias, has_bias = bias_argument(xp, b, w, x.dtype)
    every_h, every_w = (s // math.gcd(s, d) for s, d in zip(stride, dilation))
    launch_1d(_scatter_kernel, y.size, x, w, bias, y,
              stride[0], stride[1], pads[0], pads[1], dilation[0], dilation[1],
              every_h, every_w, groups, has_bias, x.dtype.type(0),
              needs_wide_index(x.size, y.size, w.size))
    return y


def weight_cuda(g, x, stride, pads, kernel_hw, dilation=(1, 1), groups=1):
    xp = array_module_of(x)
    g = xp.ascontiguousarray(g)
    x = xp.ascontiguousarray(x, dtype=g.dtype)
    gw = xp.zeros((g.shape[1], x.shape[1] // groups) + tuple(kernel_hw), dtype=g.dtype)
    launch_1d(_weight_kernel, gw.size, g, x, gw, stride[0], stride[1], pads[0], pads[1],
              dilation[0], dilation[1], groups, needs_wide_index(x.size, g.size, gw.size))
    return gw
