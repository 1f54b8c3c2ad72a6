"""conv2d reference tier: NumPy (CuPy arrays work too), written to be read; the source of truth.

Three cores, each an im2col slice stack or a per-tap scatter plus one tensordot (a GEMM):
    gather_ref(x, w, b, stride, pads, out_hw)      conv2d forward          x: (N, Cin, H, W), w: (Cout, Cin, kH, kW)
    scatter_ref(x, w, b, stride, pads, out_hw)     conv_transpose2d fwd    x: (N, Cin, H, W), w: (Cin, Cout, kH, kW)
    weight_ref(g, x, stride, pads, kernel_hw)      grad_w[a, b, ky, kx] = sum_{n,i,j} g[n, a, i, j] xpad[n, b, i*sH+ky, j*sW+kx]
    bias_backward_ref(grad_y)                      grad_b = grad_y summed over (N, H, W)
`pads` is (top, left); bottom/right follow from out_hw.
"""

from ..compile import array_module_of


def bias_or_zeros(xp, b, channels, dtype):
    """The bias as a contiguous (channels,) array of `dtype`; zeros when there is none.
    (Shared by the compiled tiers, which always add a bias row.)"""
    return xp.zeros(channels, dtype=dtype) if b is None else xp.ascontiguousarray(b, dtype=dtype)


def bias_backward_ref(grad_y):
    """grad_b[co] = sum over (n, oy, ox) of grad_y[n, co, oy, ox]  ->  (Cout,)."""
    return grad_y.sum(axis=(0, 2, 3))


def window(a, top, left, height, width):
    """out[..., r, c] = a[..., r - top, c - left], zero where that is outside `a`.

    `top`/`left` may be negative (crop) and the window may extend past the end (zero rows/cols).
    """
    xp = array_module_of(a)
    out = xp.zeros(a.shape[:-2] + (height, width), dtype=a.dtype)
    r0, r1 = max(top, 0), min(top + a.shape[-2], height)
    c0, c1 = max(left, 0), min(left + a.shape[-1], width)
    if r0 < r1 and c0 < c1:
        out[..., r0:r1, c0:c1] = a[..., r0 - top:r1 - top, c0 - left:c1 - left]
    return out


def _columns(x, pads, kernel_hw, stride, out_hw):
    """(N, C, kH*kW, outH, outW): for every kernel tap, the strided slice of the padded input it
    meets (im2col, kept 5-D), so one tensordot does the whole sum."""
    (sh, sw), (k_h, k_w), (oh, ow) = stride, kernel_hw, out_hw
    x_pad = window(x, pads[0], pads[1], (oh - 1) * sh + k_h, (ow - 1) * sw + k_w)
    xp = array_module_of(x)
    return xp.stack([x_pad[:, :, ky:ky + (oh - 1) * sh + 1:sh, kx:kx + (ow - 1) * sw + 1:sw]
                     for ky in range(k_h) for kx in range(k_w)], axis=2)


def gather_ref(x, w, b, stride, pads, out_hw):
    """conv2d: y[n, co] = b[co] + sum_{ci, tap} w[co, ci, tap] * columns[n, ci, tap]."""
    xp = array_module_of(x)
    c_out, c_in, k_h, k_w = w.shape
    cols = _columns(x, pads, (k_h, k_w), stride, out_hw)               # (N, Cin, K, oh, ow)
    y = xp.tensordot(w.reshape(c_out, c_in, k_h * k_w).astype(x.dtype, copy=False), cols,
                     axes=([1, 2], [1, 2]))                              # (Cout, N, oh, ow)
    y = y.transpose(1, 0, 2, 3)
    if b is not None:
        y = y + b.reshape(1, -1, 1, 1).astype(x.dtype, copy=False)
    return xp.ascontiguousarray(y)


def scatter_ref(x, w, b, stride, pads, out_hw):
    """conv_transpose2d: every input pixel adds x * w[ci, :, :, :] into the full result
    ((H-1)*sH + kH rows), which is then cropped at (top, left) / zero-extended to out_hw."""
    xp = array_module_of(x)
    (sh, sw) = stride
    n, _, h, w_in = x.shape
    k_h, k_w = w.shape[2], w.shape[3]
    # contributions[n, iy, ix, co, ky, kx] = sum_ci x[n, ci, iy, ix] * w[ci, co, ky, kx]
    contributions = xp.tensordot(x, w.astype(x.dtype, copy=False), axes=([1], [0]))
    full = xp.zeros((n, (h - 1) * sh + k_h, (w_in - 1) * sw + k_w, w.shape[1]), dtype=x.dtype)
    for ky in range(k_h):
        for kx in range(k_w):
            full[:, ky:ky + (h - 1) * sh + 1:sh, kx:kx + (w_in - 1) * sw + 1:sw, :] += \
                contributions[..., ky, kx]
    y = window(full.transpose(0, 3, 1, 2), -pads[0], -pads[1], out_hw[0], out_hw[1])
    if b is not None:
        y += b.reshape(1, -1, 1, 1).astype(x.dtype, copy=False)
    return y


def weight_ref(g, x, stride, pads, kernel_hw):
    """grad_w[a, b, ky, kx] = sum_{n, i, j} g[n, a, i, j] * xpad[n, b, i*sH + ky, j*sW + kx]."""
    cols = _columns(x, pads, kernel_hw, stride, g.shape[2:])             # (N, B, K, oh, ow)
    gw = array_module_of(x).tensordot(g.astype(x.dtype, copy=False), cols,
                                      axes=([0, 2, 3], [0, 3, 4]))       # (A, B, K)
    return gw.reshape(g.shape[1], x.shape[1], kernel_hw[0], kernel_hw[1])
