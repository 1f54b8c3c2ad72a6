"""conv2d reference tier: NumPy (CuPy arrays work too), written to be read; the source of truth.

Three cores, each an im2col slice stack or a per-tap scatter plus one tensordot (a GEMM):
    gather_ref(x, w, b, stride, pads, out_hw, dilation, groups)
        conv2d forward          x: (N, Cin, H, W), w: (Cout, Cin/groups, kH, kW)
    scatter_ref(x, w, b, stride, pads, out_hw, dilation, groups)
        conv_transpose2d fwd    x: (N, Cin, H, W), w: (Cin, Cout/groups, kH, kW)
    weight_ref(g, x, stride, pads, kernel_hw, dilation, groups)
        grad_w[a, b, ky, kx] = sum_{n,i,j} g[n, a, i, j] xpad[n, b', i*sH + ky*dH, j*sW + kx*dW],
        b' = b + (a's group) * (B / groups)  ->  (A, B/groups, kH, kW)
    bias_backward_ref(grad_y)
        grad_b = grad_y summed over (N, H, W)
`pads` is (top, left); bottom/right follow from out_hw. Tap (ky, kx) of a dilated kernel reads
the input (ky*dH, kx*dW) away from the window's corner. With groups, each group is an
independent conv of its slice of the channels (by_groups / weight_by_groups); the other tiers
share these two helpers or index the groups themselves.
"""

from ..compile import array_module_of
from ..geometry import span


def bias_or_zeros(xp, b, channels, dtype):
    """The bias as a contiguous (channels,) array of `dtype`; zeros when there is none.
    (Shared by the compiled tiers, which always add a bias row.)"""
    return xp.zeros(channels, dtype=dtype) if b is None else xp.ascontiguousarray(b, dtype=dtype)


def bias_backward_ref(grad_y):
    """grad_b[co] = sum over (n, oy, ox) of grad_y[n, co, oy, ox]  ->  (Cout,)."""
    return grad_y.sum(axis=(0, 2, 3))


# ----------------------------------------------------------------------------------------------
# groups: independent convs of channel slices, shared by the reference and the numba tier
# ----------------------------------------------------------------------------------------------

def channel_slices(a, groups, axis):
    """`a` cut into `groups` equal, contiguous parts along `axis` (None stays None)."""
    if a is None:
        return [None] * groups
    xp, size = array_module_of(a), a.shape[axis] // groups
    index = [slice(None)] * a.ndim
    parts = []
    for group in range(groups):
        index[axis] = slice(group * size, (group + 1) * size)
        parts.append(xp.ascontiguousarray(a[tuple(index)]))
    return parts


def by_groups(core, x, w, b, groups, *args):
    """core(x, w, b, *args) once per group: x's channels (axis 1), w's first axis and b cut into
    `groups` parts, the results joined along the channels. Serves gather and scatter alike:
    both read group g's input channels with the g-th block of w's first axis (conv2d's w is
    (Cout, Cin/groups, ..), the transposed conv's (Cin, Cout/groups, ..)) and write its outputs."""
    if groups == 1:
        return core(x, w, b, *args)
    parts = [core(*group_args, *args) for group_args in zip(
        channel_slices(x, groups, 1), channel_slices(w, groups, 0), channel_slices(b, groups, 0))]
    return array_module_of(x).concatenate(parts, axis=1)


def weight_by_groups(core, g, x, groups, *args):
    """core(g, x, *args) once per group, g's and x's channels cut into `groups` parts: group
    g's block of grad_w (A/groups, B/groups, kH, kW), the blocks stacked along A."""
    if groups == 1:
        return core(g, x, *args)
    parts = [core(g_part, x_part, *args) for g_part, x_part in
             zip(channel_slices(g, groups, 1), channel_slices(x, groups, 1))]
    return array_module_of(x).concatenate(parts, axis=0)


# ----------------------------------------------------------------------------------------------
# the three cores
# ----------------------------------------------------------------------------------------------

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


def _columns(x, pads, kernel_hw, stride, out_hw, dilation):
    """(N, C, kH*kW, outH, outW): for every kernel tap, the strided slice of the padded input it
    meets (im2col, kept 5-D), so one tensordot does the whole sum."""
    (sh, sw), (k_h, k_w), (oh, ow), (dh, dw) = stride, kernel_hw, out_hw, dilation
    x_pad = window(x, pads[0], pads[1], (oh - 1) * sh + span(k_h, dh),
                   (ow - 1) * sw + span(k_w, dw))
    xp = array_module_of(x)
    return xp.stack([x_pad[:, :, ky * dh:ky * dh + (oh - 1) * sh + 1:sh,
                           kx * dw:kx * dw + (ow - 1) * sw + 1:sw]
                     for ky in range(k_h) for kx in range(k_w)], axis=2)


def gather_ref(x, w, b, stride, pads, out_hw, dilation=(1, 1), groups=1):
    """conv2d: y[n, co] = b[co] + sum_{ci, tap} w[co, ci, tap] * columns[n, ci, tap]."""
    if groups > 1:
        return by_groups(gather_ref, x, w, b, groups, stride, pads, out_hw, dilation)
    xp = array_module_of(x)
    c_out, c_in, k_h, k_w = w.shape
    cols = _columns(x, pads, (k_h, k_w), stride, out_hw, dilation)     # (N, Cin, K, oh, ow)
    y = xp.tensordot(w.reshape(c_out, c_in, k_h * k_w).astype(x.dtype, copy=False), cols,
                     axes=([1, 2], [1, 2]))                              # (Cout, N, oh, ow)
    y = y.transpose(1, 0, 2, 3)
    if b is not None:
        y = y + b.reshape(1, -1, 1, 1).astype(x.dtype, copy=False)
    return xp.ascontiguousarray(y)


def scatter_ref(x, w, b, stride, pads, out_hw, dilation=(1, 1), groups=1):
    """conv_transpose2d: every input pixel adds x * w[ci, :, :, :] into the full result
    ((H-1)*sH + dH*(kH-1) + 1 rows; tap ky lands ky*dH rows down), which is then cropped at
    (top, left) / zero-extended to out_hw."""
    if groups > 1:
        return by_groups(scatter_ref, x, w, b, groups, stride, pads, out_hw, dilation)
    xp = array_module_of(x)
    (sh, sw), (dh, dw) = stride, dilation
    n, _, h, w_in = x.shape
    k_h, k_w = w.shape[2], w.shape[3]
    # contributions[n, iy, ix, co, ky, kx] = sum_ci x[n, ci, iy, ix] * w[ci, co, ky, kx]
    contributions = xp.tensordot(x, w.astype(x.dtype, copy=False), axes=([1], [0]))
    full = xp.zeros((n, (h - 1) * sh + span(k_h, dh), (w_in - 1) * sw + span(k_w, dw),
                     w.shape[1]), dtype=x.dtype)
    for ky in range(k_h):
        for kx in range(k_w):
            full[:, ky * dh:ky * dh + (h - 1) * sh + 1:sh,
                 kx * dw:kx * dw + (w_in - 1) * sw + 1:sw, :] += contributions[..., ky, kx]
    y = window(full.transpose(0, 3, 1, 2), -pads[0], -pads[1], out_hw[0], out_hw[1])
    if b is not None:
        y += b.reshape(1, -1, 1, 1).astype(x.dtype, copy=False)
    return y


def weight_ref(g, x, stride, pads, kernel_hw, dilation=(1, 1), groups=1):
    """grad_w[a, b, ky, kx] = sum_{n, i, j} g[n, a, i, j] * xpad[n, b, i*sH + ky*dH, j*sW + kx*dW]
    (per group: see the module docstring)."""
    if groups > 1:
        return weight_by_groups(weight_ref, g, x, groups, stride, pads, kernel_hw, dilation)
    cols = _columns(x, pads, kernel_hw, stride, g.shape[2:], dilation)   # (N, B, K, oh, ow)
    gw = array_module_of(x).tensordot(g.astype(x.dtype, copy=False), cols,
                                      axes=([0, 2, 3], [0, 3, 4]))       # (A, B, K)
    return gw.reshape(g.shape[1], x.shape[1], kernel_hw[0], kernel_hw[1])
