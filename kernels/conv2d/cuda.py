"""conv2d numba.cuda tier: one thread per output element, gathers only (no atomics).

    gather_cuda(x, w, b, stride, pads, out_hw)    conv2d forward                 w: (Cout, Cin, kH, kW)
    scatter_cuda(x, w, b, stride, pads, out_hw)   conv_transpose2d forward, as a gather over the
                                                  taps that reach each output   w: (Cin, Cout, kH, kW)
    weight_cuda(g, x, stride, pads, kernel_hw)    one thread per weight element
Each thread sums in a fixed order, so results are the same run after run. The launchers make the
arrays contiguous and launch one thread per element through compile.launch_1d.
"""

from ..compile import array_module_of, cuda, cuda_kernel, launch_1d
from .reference import bias_or_zeros


def gather_kernel(x, w, b, y, sh, sw, top, left):
    # y[n, co, oy, ox] = b[co] + sum_{ci, ky, kx} w[co, ci, ky, kx] * x[n, ci, oy*sH+ky-top, ox*sW+kx-left]
    i = cuda.grid(1)
    n_, c_out, oh, ow = y.shape
    if i >= n_ * c_out * oh * ow:
        return
    ox = i % ow
    oy = (i // ow) % oh
    co = (i // (ow * oh)) % c_out
    n = i // (ow * oh * c_out)
    c_in, h, w_in = x.shape[1], x.shape[2], x.shape[3]
    k_h, k_w = w.shape[2], w.shape[3]
    acc = b[co]
    for ci in range(c_in):
        for ky in range(k_h):
            iy = oy * sh + ky - top
            if iy >= 0 and iy < h:
                for kx in range(k_w):
                    ix = ox * sw + kx - left
                    if ix >= 0 and ix < w_in:
                        acc += w[co, ci, ky, kx] * x[n, ci, iy, ix]
    y[n, co, oy, ox] = acc


_gather_kernel = cuda_kernel(gather_kernel)


def scatter_kernel(x, w, b, y, sh, sw, top, left):
    # transposed conv as a gather: y[n, co, oy, ox] = b[co] + sum over the taps (ky, kx) with
    # oy + top = iy*sH + ky (0 <= iy < H), likewise for ox, of x[n, ci, iy, ix] * w[ci, co, ky, kx]
    i = cuda.grid(1)
    n_, c_out, oh, ow = y.shape
    if i >= n_ * c_out * oh * ow:
        return
    ox = i % ow
    oy = (i // ow) % oh
    co = (i // (ow * oh)) % c_out
    n = i // (ow * oh * c_out)
    c_in, h, w_in = x.shape[1], x.shape[2], x.shape[3]
    k_h, k_w = w.shape[2], w.shape[3]
    fy = oy + top
    fx = ox + left
    acc = b[co]
    for ky in range(fy % sh, k_h, sh):
        iy = (fy - ky) // sh
        if iy >= 0 and iy < h:
            for kx in range(fx % sw, k_w, sw):
                ix = (fx - kx) // sw
                if ix >= 0 and ix < w_in:
                    for ci in range(c_in):
                        acc += x[n, ci, iy, ix] * w[ci, co, ky, kx]
    y[n, co, oy, ox] = acc


_scatter_kernel = cuda_kernel(scatter_kernel)


def weight_kernel(g, x, gw, sh, sw, top, left):
    # one thread per weight element:
    # gw[a, c, ky, kx] = sum_{n, i, j} g[n, a, i, j] * x[n, c, i*sH+ky-top, j*sW+kx-left]
    t = cuda.grid(1)
    c_a, c_b, k_h, k_w = gw.shape
    if t >= c_a * c_b * k_h * k_w:
        return
    kx = t % k_w
    ky = (t // k_w) % k_h
    c = (t // (k_w * k_h)) % c_b
    a = t // (k_w * k_h * c_b)
    n_, oh, ow = g.shape[0], g.shape[2], g.shape[3]
    h, w_in = x.shape[2], x.shape[3]
    acc = gw[a, c, ky, kx]  # zero-initialised by the launcher; gives acc the array's dtype
    for n in range(n_):
        for i in range(oh):
            iy = i * sh + ky - top
            if iy >= 0 and iy < h:
                for j in range(ow):
                    ix = j * sw + kx - left
                    if ix >= 0 and ix < w_in:
                        acc += g[n, a, i, j] * x[n, c, iy, ix]
    gw[a, c, ky, kx] = acc


_weight_kernel = cuda_kernel(weight_kernel)


def gather_cuda(x, w, b, stride, pads, out_hw):
    xp = array_module_of(x)
    x = xp.ascontiguousarray(x)
    w = xp.ascontiguousarray(w, dtype=x.dtype)
    y = xp.empty((x.shape[0], w.shape[0]) + tuple(out_hw), dtype=x.dtype)
    launch_1d(_gather_kernel, y.size, x, w, bias_or_zeros(xp, b, w.shape[0], x.dtype), y,
              stride[0], stride[1], pads[0], pads[1])
    return y


def scatter_cuda(x, w, b, stride, pads, out_hw):
    xp = array_module_of(x)
    x = xp.ascontiguousarray(x)
    w = xp.ascontiguousarray(w, dtype=x.dtype)
    y = xp.empty((x.shape[0], w.shape[1]) + tuple(out_hw), dtype=x.dtype)
    launch_1d(_scatter_kernel, y.size, x, w, bias_or_zeros(xp, b, w.shape[1], x.dtype), y,
              stride[0], stride[1], pads[0], pads[1])
    return y


def weight_cuda(g, x, stride, pads, kernel_hw):
    xp = array_module_of(x)
    g = xp.ascontiguousarray(g)
    x = xp.ascontiguousarray(x, dtype=g.dtype)
    gw = xp.zeros((g.shape[1], x.shape[1]) + tuple(kernel_hw), dtype=g.dtype)
    launch_1d(_weight_kernel, gw.size, g, x, gw, stride[0], stride[1], pads[0], pads[1])
    return gw
