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
arrays contiguous and launch one thread per element through compile.launch_1d.
"""

import numpy as np

from ..compile import array_module_of, cuda, cuda_kernel, launch_1d
from .direct import phase_taps
from .reference import bias_or_zeros


def gather_kernel(x, w, b, y, sh, sw, top, left, dh, dw, groups):
    # y[n, co, oy, ox] = b[co] + sum_{ci, ky, kx} w[co, ci, ky, kx]
    #                            * x[n, ci0 + ci, oy*sH + ky*dH - top, ox*sW + kx*dW - left]
    # with ci0 the first input channel of co's group
    i = cuda.grid(1)
    n_, c_out, oh, ow = y.shape
    if i >= n_ * c_out * oh * ow:
        return
    ox = i % ow
    oy = (i // ow) % oh
    co = (i // (ow * oh)) % c_out
    n = i // (ow * oh * c_out)
    h, w_in = x.shape[2], x.shape[3]
    c_in, k_h, k_w = w.shape[1], w.shape[2], w.shape[3]      # c_in: channels per group
    ci0 = (co // (c_out // groups)) * c_in
    acc = b[co]
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


def scatter_kernel(x, w, b, y, sh, sw, top, left, dh, dw, first_h, first_w, every_h, every_w,
                   groups):
    # transposed conv as a gather: y[n, co, oy, ox] = b[co] + sum over the taps (ky, kx) with
    # oy + top = iy*sH + ky*dH (0 <= iy < H), likewise for ox, of x[n, ci, iy, ix] * w[ci, co', ky, kx]
    # over the input channels ci of co's group (co' = co within its group). The taps that reach
    # full row fy are first_h[fy % sH], then every `every_h`-th (without dilation: fy % sH, then
    # every sH-th); first_h[r] = kH when no tap does (see tap_table).
    i = cuda.grid(1)
    n_, c_out, oh, ow = y.shape
    if i >= n_ * c_out * oh * ow:
        return
    ox = i % ow
    oy = (i // ow) % oh
    co = (i // (ow * oh)) % c_out
    n = i // (ow * oh * c_out)
    c_in, h, w_in = x.shape[1], x.shape[2], x.shape[3]
    c_out_g, k_h, k_w = w.shape[1], w.shape[2], w.shape[3]
    group = co // c_out_g
    c_in_g = c_in // groups
    fy = oy + top
    fx = ox + left
    acc = b[co]
    for ky in range(first_h[fy % sh], k_h, every_h):
        iy = (fy - ky * dh) // sh
        if iy >= 0 and iy < h:
            for kx in range(first_w[fx % sw], k_w, every_w):
                ix = (fx - kx * dw) // sw
                if ix >= 0 and ix < w_in:
                    for ci in range(group * c_in_g, (group + 1) * c_in_g):
                        acc += x[n, ci, iy, ix] * w[ci, co - group * c_out_g, ky, kx]
    y[n, co, oy, ox] = acc


_scatter_kernel = cuda_kernel(scatter_kernel)


def weight_kernel(g, x, gw, sh, sw, top, left, dh, dw, groups):
    # one thread per weight element:
    # gw[a, c, ky, kx] = sum_{n, i, j} g[n, a, i, j] * x[n, c0 + c, i*sH+ky*dH-top, j*sW+kx*dW-left]
    # with c0 the first channel of x in a's group
    t = cuda.grid(1)
    c_a, c_b, k_h, k_w = gw.shape
    if t >= c_a * c_b * k_h * k_w:
        return
    kx = t % k_w
    ky = (t // k_w) % k_h
    c = (t // (k_w * k_h)) % c_b
    a = t // (k_w * k_h * c_b)
    c0 = (a // (c_a // groups)) * c_b
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


def gather_cuda(x, w, b, stride, pads, out_hw, dilation=(1, 1), groups=1):
    xp = array_module_of(x)
    x = xp.ascontiguousarray(x)
    w = xp.ascontiguousarray(w, dtype=x.dtype)
    y = xp.empty((x.shape[0], w.shape[0]) + tuple(out_hw), dtype=x.dtype)
    launch_1d(_gather_kernel, y.size, x, w, bias_or_zeros(xp, b, w.shape[0], x.dtype), y,
              stride[0], stride[1], pads[0], pads[1], dilation[0], dilation[1], groups)
    return y


def tap_table(xp, stride, dilation, kernel):
    """One axis of the transposed conv, for scatter_kernel: (first, every) where first[r] is the
    first tap that reaches the full-result rows fy with fy % stride == r (kernel when none does:
    rows the dilated taps skip) and the taps that do repeat every `every` (direct.phase_taps)."""
    taps = [phase_taps(r, stride, dilation, kernel) for r in range(stride)]
    every = next((t[1] for t in taps if t is not None), stride)
    first = [kernel if t is None else t[0] for t in taps]
    return xp.asarray(np.array(first, dtype=np.int64)), every


def scatter_cuda(x, w, b, stride, pads, out_hw, dilation=(1, 1), groups=1):
    xp = array_module_of(x)
    x = xp.ascontiguousarray(x)
    w = xp.ascontiguousarray(w, dtype=x.dtype)
    c_out = w.shape[1] * groups
    y = xp.empty((x.shape[0], c_out) + tuple(out_hw), dtype=x.dtype)
    first_h, every_h = tap_table(xp, stride[0], dilation[0], w.shape[2])
    first_w, every_w = tap_table(xp, stride[1], dilation[1], w.shape[3])
    launch_1d(_scatter_kernel, y.size, x, w, bias_or_zeros(xp, b, c_out, x.dtype), y,
              stride[0], stride[1], pads[0], pads[1], dilation[0], dilation[1],
              first_h, first_w, every_h, every_w, groups)
    return y


def weight_cuda(g, x, stride, pads, kernel_hw, dilation=(1, 1), groups=1):
    xp = array_module_of(x)
    g = xp.ascontiguousarray(g)
    x = xp.ascontiguousarray(x, dtype=g.dtype)
    gw = xp.zeros((g.shape[1], x.shape[1] // groups) + tuple(kernel_hw), dtype=g.dtype)
    launch_1d(_weight_kernel, gw.size, g, x, gw, stride[0], stride[1], pads[0], pads[1],
              dilation[0], dilation[1], groups)
    return gw
