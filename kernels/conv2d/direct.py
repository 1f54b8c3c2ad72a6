"""conv2d numba tier, the direct loops: packed channel-major buffers, contiguous inner loops.

Layout. The input is copied once ("packed") into a zero-padded, channel-major buffer
    buf: (Cin, sH, sW, N, Hq, Wq) + slack,  buf[c, ry, rx, n, a, q] = xpad[n, c, a*sH + ry, q*sW + rx]
so that, per input channel and stride phase, the padded images of the whole batch lie end to end.
Every kernel tap (ky, kx) is then ONE contiguous slice of it: it reads row ky*dH of the window
(dH the dilation, 1 for a plain conv), at offset (ky*dH//sH)*Wq + kx*dW//sW in phase
(ky*dH%sH, kx*dW%sW); the output of a block of B images is computed at every position of the
flattened padded plane -- the few positions outside (outH, outW) are junk that the final copy
skips. Why: the innermost loop runs over B*Hq*Wq contiguous values (about 2000) instead of over
outW (14), so LLVM's vector loop does the work rather than its scalar remainder. At stride 1 the
planes share their padding: the zeros below one image are the zeros above the next, so a 7x7
'same' 3x3 conv computes 8x8 planes instead of 9x9 (plane_length).

    gather_into(...)        conv2d forward: per pass, 4 output channels x 9 taps (rows4_taps9), a
                            whole 3x3 kernel of one input channel, so each accumulator row is read
                            and written once per input channel; fastmath "contract" makes FMAs
    scatter_by_phases(...)  the transposed conv (conv_transpose2d forward, conv2d's input gradient)
                            as sH*sW stride-1 conv2d's, one per output phase, with flipped
                            sub-kernels (dilated ones when the conv is): no scatter, no atomics
    weight_numba(...)       the weight gradient: one parallel task per chunk of positions that
                            stays in L2, reducing 8 rows of g (4 where the vector registers are
                            AVX2's 16: weight_g_rows) against 3 taps of x per pass; fastmath
                            "reassoc" vectorizes the reductions (the sum order changes; the result
                            is deterministic)
    bias_backward_numba(g)  the bias gradient: blocks of images in parallel, summed in float64

Dilation only changes where each tap's slice starts (computed once per pass, outside the inner
loops), so a plain conv runs the very same loops. Groups are independent convs of channel
slices (reference.by_groups), run one after another.
Inner loops index slices (`xr = buf[base:base+L]; xr[p]`), never `buf[base + p]` with a signed
index: Numba's negative-index wraparound on a computed index keeps LLVM from vectorizing (the
packing copies, whose rows are too short to pay for a slice each, use unsigned offsets, which
need no wraparound). Each parallel pass is
a serial "task" function over a task index, run by compile.parallel_for (which compiles the task
once, where a prange loop around it would compile it four times). winograd.py reuses
rows4_taps9 / rows1_taps9; this module imports nothing from it.
Figures and what was tried: kernels/NOTES.md, "conv2d".
"""

import contextlib
import functools
import math
import threading

import numpy as np

from .. import memory
from ..compile import (SERIAL_MAX_VALUES, cpu_kernel, has_32_vector_registers, parallel_for,
                       run_in_chunks)
from .reference import bias_or_zeros, weight_by_groups

# Inner-loop targets: about 2048 positions per pass keeps the 4 accumulator rows (32 KiB in
# float32) in L1; lengths are rounded up to ROUND so the vector loop has no scalar remainder.
_POSITIONS_PER_PASS = 2048
_ROUND = 32
_L2_VALUES = 1 << 18     # values per weight-gradient chunk (1 MiB in float32)
_FMA = {"contract"}
_FMA_REDUCE = {"contract", "reassoc"}


# ----------------------------------------------------------------------------------------------
# packing: x (N, C, H, W) -> buf (C, sH, sW, N, Hq, Wq), zero-padded
# ----------------------------------------------------------------------------------------------

def pack_task(task, x, buf, top, left, sh, sw, hq, wq):
    # x: (N, C, H, W) -> buf: flat (C, sH, sW, N, Hq, Wq) + slack, with
    # buf[c, ry, rx, n, a, q] = x[n, c, a*sH + ry - top, q*sW + rx - left] (0 outside x)
    # One task = one (n, c) plane of x, into its sH*sW phase planes: each is zeroed whole, then
    # its rows and columns inside x are copied. The tasks run in x's own order (n, then c), so
    # x is read front to back. The bounds are found once per phase, so the row loop has no
    # branch: at stride 2 a phase's rows are short (7 values for 14x14), and the per-row work
    # around each copy was most of the time. The offsets are unsigned: an index that cannot be
    # negative needs no wraparound check, which would keep LLVM from vectorizing, and a short
    # row needs no slice of its own (kernels/NOTES.md, "packing").
    n_, c_, h, w = x.shape
    plane = hq * wq
    n = task // c_
    c = task - n * c_
    flat_x = x.reshape(-1)
    image = np.uint64((n * c_ + c) * h * w)                  # where x[n, c] starts
    for ry in range(sh):
        # rows a in [a0, a1) come from x (r = a*sH + ry - top in [0, H))
        a0 = min(max(0, -((ry - top) // sh)), hq)
        a1 = max(min(hq, (h - 1 - ry + top) // sh + 1), a0)
        for rx in range(sw):
            phase = np.uint64(((c * sh + ry) * sw + rx) * n_ * plane + n * plane)
            for i in range(np.uint64(plane)):
                buf[phase + i] = 0
            # columns q in [q0, q1) come from x (col = q*sW + rx - left in [0, W))
            q0 = min(max(0, -((rx - left) // sw)), wq)
            q1 = max(min(wq, (w - 1 - rx + left) // sw + 1), q0)
            first = q0 * sw + rx - left                        # x's column for q0
            width = np.uint64(q1 - q0)
            for a in range(a0, a1):
                dst = phase + np.uint64(a * wq + q0)
                src = image + np.uint64((a * sh + ry - top) * w + first)
                if sw == 1:       # unit stride: a loop LLVM vectorizes
                    for q in range(width):
                        buf[dst + q] = flat_x[src + q]
                else:
                    step = np.uint64(sw)
                    for q in range(width):
                        buf[dst + q] = flat_x[src + q * step]


_pack_task = cpu_kernel(pack_task)


def pack(x, top, left, stride, hq, wq, reach):
    """Packed, zero-padded, channel-major copy of x (see the module docstring) with slack at the end.

    x: (N, C, H, W) -> flat (C*sH*sW*N*Hq*Wq + reach + ROUND,), the slack zeroed; reach: the
    largest offset inside a plane that a tap's slice starts at (the last slices run past the
    last plane by that much, plus the inner loop's rounding). Inside a sharing_packs() scope, a
    copy of the same array packed the same way is made once.
    """
    sh, sw = stride
    n_, c_ = x.shape[0], x.shape[1]
    size = c_ * sh * sw * n_ * hq * wq
    shared = getattr(_scope, "packs", None)
    key = (id(x), x.shape, x.strides, x.dtype.str, top, left, sh, sw, hq, wq)
    if shared is not None and key in shared and shared[key][1].size >= size + reach + _ROUND:
        return shared[key][1]
    buf = memory.empty(size + reach + _ROUND, x.dtype)
    buf[size:] = 0
    parallel_for(_pack_task, n_ * c_, np.ascontiguousarray(x), buf, top, left, sh, sw, hq, wq)
    if shared is not None:
        shared[key] = (x, buf)          # x held, so its id is not reused while the scope is open
    return buf


_scope = threading.local()


@contextlib.contextmanager
def sharing_packs():
    """A scope in which pack() keeps its copies and hands the same one out again for the same
    array packed the same way. For one layer's backward: a strided transposed conv's input
    gradient (a strided conv2d of grad_y) and its weight gradient pack grad_y identically, and
    at stride 2 that pack is a slow part of each. Nothing may write to a packed array while the
    scope is open; the copies go back to the buffer cache when it closes."""
    if getattr(_scope, "packs", None) is not None:      # nested: the outer scope keeps them
        yield
        return
    _scope.packs = {}
    try:
        yield
    finally:
        _scope.packs = None


def plane_length(size, before, convs):
    """One axis of a stride-1 packed plane: `before` zeros, the `size` values of x, then zeros.

    convs: (outputs, extent, pad_before) of each conv reading the plane: its output count along
    the axis, its kernel's extent less one (dilation * (k - 1)) and its own padding before x
    (at most `before`; it reads from `before - pad_before` on). The planes lie end to end, so
    the zeros after one plane's data run on into the next plane's leading zeros (the last
    plane's into the slack): a plane must hold the data behind its leading zeros and each conv's
    outputs, and leave each conv's padding after x, pad_after = outputs + extent - pad_before
    - size, to those two runs together -- max(pad_before, pad_after) zeros between two images'
    data rather than their sum. A 7x7 'same' 3x3 conv gets 8x8 planes instead of 9x9.
    """
    length = before + size
    for outputs, extent, pad_before in convs:
        pad_after = outputs + extent - pad_before - size
        length = max(length, outputs, size + pad_after)
    return length


def plane_hw(x_hw, pads, out_hw, kernel_hw, stride, dilation):
    """(Hq, Wq) of the packed planes of one conv (module docstring). At stride 1 the planes share
    their padding (plane_length); a stride phase's plane is padded on both sides."""
    (sh, sw), (dh, dw) = stride, dilation
    (oh, ow), (k_h, k_w) = out_hw, kernel_hw
    if (sh, sw) == (1, 1):
        return (plane_length(x_hw[0], pads[0], [(oh, dh * (k_h - 1), pads[0])]),
                plane_length(x_hw[1], pads[1], [(ow, dw * (k_w - 1), pads[1])]))
    return oh + dh * (k_h - 1) // sh, ow + dw * (k_w - 1) // sw


def tap_reach(kernel_hw, stride, dilation, wq):
    """The largest offset inside a plane that one of the conv's tap slices starts at."""
    (sh, sw), (dh, dw) = stride, dilation
    return (dh * (kernel_hw[0] - 1) // sh) * wq + dw * (kernel_hw[1] - 1) // sw


# ----------------------------------------------------------------------------------------------
# forward (gather): y (N, Cout, outH, outW) from buf and w (Cout, Cin, kH, kW)
# ----------------------------------------------------------------------------------------------

def rows4_taps9(acc, buf, offs, wt, length):
    # 4 output channels x 9 taps: acc[c, p] += sum_t wt[c, t] * buf[offs[t] + p]
    # acc: (4, >= length); offs: (9,) where each tap's slice of the packed input starts;
    # wt: (4, 9), 0 for a missing tap. Nine taps per pass (a whole 3x3 kernel of one input
    # channel) load and store each accumulator once per 36 multiply-adds.
    a0, a1, a2, a3 = acc[0], acc[1], acc[2], acc[3]
    x0, x1, x2 = buf[offs[0]:offs[0] + length], buf[offs[1]:offs[1] + length], buf[offs[2]:offs[2] + length]
    x3, x4, x5 = buf[offs[3]:offs[3] + length], buf[offs[4]:offs[4] + length], buf[offs[5]:offs[5] + length]
    x6, x7, x8 = buf[offs[6]:offs[6] + length], buf[offs[7]:offs[7] + length], buf[offs[8]:offs[8] + length]
    u0, u1, u2, u3, u4, u5, u6, u7, u8 = wt[0, 0], wt[0, 1], wt[0, 2], wt[0, 3], wt[0, 4], wt[0, 5], wt[0, 6], wt[0, 7], wt[0, 8]
    v0, v1, v2, v3, v4, v5, v6, v7, v8 = wt[1, 0], wt[1, 1], wt[1, 2], wt[1, 3], wt[1, 4], wt[1, 5], wt[1, 6], wt[1, 7], wt[1, 8]
    s0, s1, s2, s3, s4, s5, s6, s7, s8 = wt[2, 0], wt[2, 1], wt[2, 2], wt[2, 3], wt[2, 4], wt[2, 5], wt[2, 6], wt[2, 7], wt[2, 8]
    t0, t1, t2, t3, t4, t5, t6, t7, t8 = wt[3, 0], wt[3, 1], wt[3, 2], wt[3, 3], wt[3, 4], wt[3, 5], wt[3, 6], wt[3, 7], wt[3, 8]
    for p in range(length):
        e0, e1, e2, e3, e4, e5, e6, e7, e8 = x0[p], x1[p], x2[p], x3[p], x4[p], x5[p], x6[p], x7[p], x8[p]
        a0[p] += u0 * e0 + u1 * e1 + u2 * e2 + u3 * e3 + u4 * e4 + u5 * e5 + u6 * e6 + u7 * e7 + u8 * e8
        a1[p] += v0 * e0 + v1 * e1 + v2 * e2 + v3 * e3 + v4 * e4 + v5 * e5 + v6 * e6 + v7 * e7 + v8 * e8
        a2[p] += s0 * e0 + s1 * e1 + s2 * e2 + s3 * e3 + s4 * e4 + s5 * e5 + s6 * e6 + s7 * e7 + s8 * e8
        a3[p] += t0 * e0 + t1 * e1 + t2 * e2 + t3 * e3 + t4 * e4 + t5 * e5 + t6 * e6 + t7 * e7 + t8 * e8


_rows4_taps9 = cpu_kernel(rows4_taps9, fastmath=_FMA)


def rows1_taps9(a0, buf, offs, wt, c, length):
    # one output channel x 9 taps (the channels left over when Cout is not a multiple of 4)
    x0, x1, x2 = buf[offs[0]:offs[0] + length], buf[offs[1]:offs[1] + length], buf[offs[2]:offs[2] + length]
    x3, x4, x5 = buf[offs[3]:offs[3] + length], buf[offs[4]:offs[4] + length], buf[offs[5]:offs[5] + length]
    x6, x7, x8 = buf[offs[6]:offs[6] + length], buf[offs[7]:offs[7] + length], buf[offs[8]:offs[8] + length]
    u0, u1, u2, u3, u4, u5, u6, u7, u8 = wt[c, 0], wt[c, 1], wt[c, 2], wt[c, 3], wt[c, 4], wt[c, 5], wt[c, 6], wt[c, 7], wt[c, 8]
    for p in range(length):
        a0[p] += (u0 * x0[p] + u1 * x1[p] + u2 * x2[p] + u3 * x3[p] + u4 * x4[p] + u5 * x5[p]
                  + u6 * x6[p] + u7 * x7[p] + u8 * x8[p])


_rows1_taps9 = cpu_kernel(rows1_taps9, fastmath=_FMA)


def write_rows(y, a, a2, paired, c, bias, n0, images, c_out, plane, wq, y_rows, y_cols,
               y_row_step, y_col_step, out_h, y_row0, y_col0, out_w, out_w2):
    # One output channel c's results for `images` images from n0, from its accumulator row a:
    # y[n0 + j, c, y_row0 + oy*y_row_step, y_col0 + ox*y_col_step] = a[j*plane + oy*wq + ox] + bias.
    # paired: a2 holds a second conv's results, which land one column to the right of each of
    # a's (a transposed conv's two column phases at stride 2, out_w2 of them per row): both
    # are written in one loop, a pair of neighbours per step, which LLVM vectorizes as
    # interleaved stores (each phase alone would store every other value). The offsets are
    # unsigned: an index that cannot be negative needs no wraparound check, so the unit-stride
    # row is a vector loop, and a short row costs no slice of its own.
    step = np.uint64(y_col_step)
    for j in range(images):
        out = ((n0 + j) * c_out + c) * y_rows
        for oy in range(out_h):
            row = np.uint64((out + y_row0 + oy * y_row_step) * y_cols + y_col0)
            src = np.uint64(j * plane + oy * wq)
            if paired:
                for ox in range(np.uint64(out_w2)):
                    y[row + np.uint64(2) * ox] = a[src + ox] + bias
                    y[row + np.uint64(2) * ox + np.uint64(1)] = a2[src + ox] + bias
                if out_w > out_w2:
                    y[row + np.uint64(2 * out_w2)] = a[src + np.uint64(out_w2)] + bias
            elif y_col_step == 1:
                for ox in range(np.uint64(out_w)):
                    y[row + ox] = a[src + ox] + bias
            else:
                for ox in range(np.uint64(out_w)):
                    y[row + ox * step] = a[src + ox] + bias


_write_rows = cpu_kernel(write_rows)


def gather_task(task, buf, w, b, y, convs, n_, sh, sw, dh, dw, hq, wq, block,
                y_rows, y_cols, y_row_step, y_col_step):
    # buf: packed input (Cin, sH, sW, N, Hq, Wq) + slack; b: (Cout,)
    # convs: (P, 9) int64, one row per conv reading buf: kH, kW (its kernel's size), out_h, out_w
    # (the results it computes), y_row0, y_col0 (where its result (0, 0) lands in y), row_shift,
    # col_shift (where its padded input starts inside the planes), paired (1: its results and
    # the next conv's are neighbours in y, written together; column_pairs). P = 1 for a plain
    # conv; a transposed conv's sH*sW phases share one packed copy and one task.
    # w: (P, Cout, Cin, kHmax, kWmax): conv p's kernel is w[p, :, :, :kH, :kW]
    # dh, dw: the dilation (tap (ky, kx) reads window row ky*dh, column kx*dw)
    # y: flat output (N, Cout, y_rows, y_cols); conv p's result (oy, ox) goes to
    # (y_row0 + oy*y_row_step, y_col0 + ox*y_col_step).
    # One task = (a block of images, 4 output channels), every conv in turn. The phases of a
    # transposed conv interleave in y (every other column at stride 2): one after another in one
    # task, they write the same part of y while it stays in cache, so it goes to memory once
    # rather than once per phase.
    c_out, c_in = w.shape[1], w.shape[2]
    plane = hq * wq
    c_blocks = (c_out + 3) // 4
    nb = task // c_blocks
    c0 = (task - nb * c_blocks) * 4
    n0 = nb * block
    images = min(block, n_ - n0)
    length = -(-(images * plane) // _ROUND) * _ROUND
    sums = np.empty((2, 4, length), y.dtype)         # a second slot for a paired conv
    channels = min(4, c_out - c0)
    wt = np.zeros((4, 9), y.dtype)
    offs = np.zeros(9, np.int64)
    for conv in range(convs.shape[0]):
        k_h, k_w, out_w = convs[conv, 0], convs[conv, 1], convs[conv, 3]
        row_shift, col_shift = convs[conv, 6], convs[conv, 7]
        slot = 1 if conv > 0 and convs[conv - 1, 8] == 1 else 0
        acc = sums[slot]
        acc[:] = 0
        # The taps (ci, ky, kx), in order, are taken 9 at a time, across kernel rows and input
        # channels: a 3x3 kernel costs 1 pass per input channel, and so do the 2x2 + 2x1 + 1x2 +
        # 1x1 stride-phase sub-kernels of a stride-2 transposed conv together. A missing tap
        # reads the start of buf with weight 0.
        taps = c_in * k_h * k_w
        for first in range(0, taps, 9):
            for t in range(9):
                tap = first + t
                offs[t] = 0
                for c in range(4):
                    wt[c, t] = 0
                if tap < taps:
                    ci = tap // (k_h * k_w)
                    ky = (tap // k_w) % k_h
                    kx = tap % k_w
                    ry, rx = ky * dh, kx * dw             # the tap's row and column in the window
                    offs[t] = (((ci * sh + ry % sh) * sw + rx % sw) * n_ + n0) * plane \
                        + (ry // sh + row_shift) * wq + rx // sw + col_shift
                    for c in range(channels):
                        wt[c, t] = w[conv, c0 + c, ci, ky, kx]
            if channels == 4:
                _rows4_taps9(acc, buf, offs, wt, length)
            else:
                for c in range(channels):
                    _rows1_taps9(acc[c], buf, offs, wt, c, length)
        if convs[conv, 8] == 1:                     # written with the next conv
            continue
        first = conv - slot                         # the pair's first conv, or this one alone
        for c in range(channels):
            _write_rows(y, sums[0, c], sums[1, c], slot == 1, c0 + c, b[c0 + c], n0, images,
                        c_out, plane, wq, y_rows, y_cols, y_row_step, y_col_step,
                        convs[first, 2], convs[first, 4], convs[first, 5], convs[first, 3], out_w)


_gather_task = cpu_kernel(gather_task, fastmath=_FMA)


def image_block(n_, plane, c_blocks):
    """Images per task: about _POSITIONS_PER_PASS positions, but keep >= 8 tasks for 2+ threads."""
    block = max(1, min(n_, _POSITIONS_PER_PASS // plane))
    while block > 1 and -(-n_ // block) * c_blocks < 8:
        block //= 2
    return block


def gather_into(y_flat, y_shape, x, w, b, stride, pads, out_hw, offset=(0, 0), step=(1, 1),
                dilation=(1, 1)):
    """Run the packed conv2d loops; results land at y[.., offset + i*step] of the flat y.

    y_flat: (N*Cout*y_rows*y_cols,) viewed as y_shape (N, Cout, y_rows, y_cols); x: (N, Cin, H, W);
    w: (Cout, Cin, kH, kW); out_hw: the (rows, cols) computed.
    """
    kernel_hw = (w.shape[2], w.shape[3])
    hq, wq = plane_hw(x.shape[2:], pads, out_hw, kernel_hw, stride, dilation)
    buf = pack(x, pads[0], pads[1], stride, hq, wq, tap_reach(kernel_hw, stride, dilation, wq))
    gather_packed(y_flat, y_shape, buf, (hq, wq), x.shape[0], [(w, out_hw, offset, (0, 0))], b,
                  stride, step, dilation)


def column_pairs(table, step):
    """gather_task's `paired` column: 1 where conv p's results and conv p+1's are neighbours in
    y, the second one column to the right of each of the first's (y steps 2 columns; the same
    rows; as many columns, or one fewer for the second), so that both are written in one loop.
    Each conv is in one pair at most. table: (P, 9), the columns gather_task reads."""
    paired = np.zeros(len(table), np.int64)
    if step[1] != 2:
        return paired
    p = 0
    while p + 1 < len(table):
        first, second = table[p], table[p + 1]
        if (first[2] == second[2] and first[4] == second[4] and second[5] == first[5] + 1
                and first[3] - second[3] in (0, 1)):
            paired[p] = 1
            p += 2
        else:
            p += 1
    return paired


def gather_packed(y_flat, y_shape, buf, plane_hw, n_, convs, b, stride=(1, 1), step=(1, 1),
                  dilation=(1, 1)):
    """gather_into's loops on x already packed into planes of plane_hw = (Hq, Wq), for one conv
    or several reading the same packed copy (a transposed conv's phases), in the same tasks.

    convs: [(w, out_hw, offset, shift), ...]: each conv's kernel (Cout, Cin, kH, kW), the (rows,
    cols) it computes, where its result (0, 0) lands in y (its results step by `step`), and where
    its padded input starts inside the planes (row shift, column shift); b: one bias for all.
    """
    (sh, sw), (dh, dw) = stride, dilation
    hq, wq = plane_hw
    c_out, c_in = convs[0][0].shape[:2]
    k_h = max(w.shape[2] for w, _, _, _ in convs)
    k_w = max(w.shape[3] for w, _, _, _ in convs)
    weights = np.zeros((len(convs), c_out, c_in, k_h, k_w), buf.dtype)   # zero-padded kernels
    table = np.empty((len(convs), 9), np.int64)                          # gather_task's convs
    for index, (w, (oh, ow), (row0, col0), (row_shift, col_shift)) in enumerate(convs):
        weights[index, :, :, :w.shape[2], :w.shape[3]] = w
        table[index] = (w.shape[2], w.shape[3], oh, ow, row0, col0, row_shift, col_shift, 0)
    table[:, 8] = column_pairs(table, step)
    b = bias_or_zeros(np, b, c_out, buf.dtype)
    block = image_block(n_, hq * wq, (c_out + 3) // 4)
    tasks = -(-n_ // block) * ((c_out + 3) // 4)        # (image block, 4 output channels)
    parallel_for(_gather_task, tasks, buf, weights, b, y_flat, table, n_, sh, sw, dh, dw, hq, wq,
                 block, y_shape[2], y_shape[3], step[0], step[1])


# ----------------------------------------------------------------------------------------------
# transposed conv (scatter) as stride-1 gathers, one per output phase
# ----------------------------------------------------------------------------------------------

def phase_taps(phase, stride, dilation, kernel):
    """(first, every) for one axis of the transposed conv: the taps first, first + every, ... (all
    below `kernel`) are those that reach full-result rows fy with fy % stride == phase; None when
    no tap does. Tap k lands on row iy*stride + k*dilation, so k*dilation % stride == phase;
    the taps that do repeat every stride / gcd(stride, dilation)."""
    every = stride // math.gcd(stride, dilation)
    for first in range(min(every, kernel)):
        if first * dilation % stride == phase:
            return first, every
    return None


def scatter_by_phases(x, w, b, stride, pads, out_hw, conv_into=gather_into, dilation=(1, 1)):
    """Transposed conv as sH*sW stride-1 conv2d's, one per output phase (no scatter at all).

    x: (N, Cin, H, W), w: (Cin, Cout, kH, kW) -> y: (N, Cout, out_hw). Full-result row
    fy = oy + top = iy*sH + ky*dH.  Output rows with fy % sH == r only meet the taps
    ky = first + every*j of phase_taps (without dilation: ky = r + sH*j), at input rows
    iy = (fy - first*dH)/sH - j*dH' with dH' = dH / gcd(sH, dH): a stride-1 correlation of x,
    dilated by dH', with the flipped sub-kernel w[:, :, first::every][..., ::-1], written to
    every sH-th output row. Rows no tap reaches (kernel < stride, or a phase the dilation skips)
    get only the bias. The phases differ only in their padding, so they share one packed copy
    of x, padded for all of them, each reading it from its own offset (a conv's shift in
    gather_packed), and one set of tasks: each task runs every phase for its images and
    channels, so the part of y they interleave in is written while it stays in cache. At
    stride 1 the single phase is a plain conv2d with the flipped kernel and runs through
    `conv_into` (gather_into's signature): the tier passes its own, which takes Winograd where
    that pays.
    """
    (sh, sw), (dh, dw) = stride, dilation
    top, left = pads
    c_out = w.shape[1]
    oh, ow = out_hw
    y = memory.empty((x.shape[0], c_out, oh, ow), x.dtype)
    y_flat = y.reshape(-1)
    sub_dilation = (dh // math.gcd(sh, dh), dw // math.gcd(sw, dw))
    phases = []          # (sub-kernel, its pads, output rows and columns, first row and column)
    for ry in range(sh):
        oy0 = (ry - top) % sh            # first output row of this phase
        rows = -(-(oh - oy0) // sh)
        taps_y = phase_taps(ry, sh, dh, w.shape[2])
        for rx in range(sw):
            ox0 = (rx - left) % sw
            cols = -(-(ow - ox0) // sw)
            if rows <= 0 or cols <= 0:
                continue
            taps_x = phase_taps(rx, sw, dw, w.shape[3])
            if taps_y is None or taps_x is None:          # rows no tap reaches: only the bias
                y[:, :, oy0::sh, ox0::sw] = 0 if b is None else b.reshape(1, -1, 1, 1)
                continue
            (first_y, every_y), (first_x, every_x) = taps_y, taps_x
            sub = w[:, :, first_y::every_y, first_x::every_x]
            sub = np.ascontiguousarray(sub[:, :, ::-1, ::-1].transpose(1, 0, 2, 3))
            m0, l0 = (oy0 + top - first_y * dh) // sh, (ox0 + left - first_x * dw) // sw
            sub_pads = ((sub.shape[2] - 1) * sub_dilation[0] - m0,
                        (sub.shape[3] - 1) * sub_dilation[1] - l0)
            phases.append((sub, sub_pads, (rows, cols), (oy0, ox0)))
    if sh * sw == 1:
        for sub, sub_pads, out, first in phases:
            conv_into(y_flat, y.shape, x, sub, b, (1, 1), sub_pads, out, offset=first,
                      step=(sh, sw), dilation=sub_dilation)
        return y
    if not phases:
        return y
    # one packed copy for every phase: x after the largest pads, planes long enough for every
    # phase (plane_length); each phase reads from its own shift inside them
    pack_top = max(sub_pads[0] for _, sub_pads, _, _ in phases)
    pack_left = max(sub_pads[1] for _, sub_pads, _, _ in phases)
    readers_h, readers_w = [], []       # (outputs, extent, pad_before) of each phase, per axis
    for sub, sub_pads, (rows, cols), _ in phases:
        readers_h.append((rows, (sub.shape[2] - 1) * sub_dilation[0], sub_pads[0]))
        readers_w.append((cols, (sub.shape[3] - 1) * sub_dilation[1], sub_pads[1]))
    hq = plane_length(x.shape[2], pack_top, readers_h)
    wq = plane_length(x.shape[3], pack_left, readers_w)
    reach = max((extent_h + pack_top - pad_h) * wq + extent_w + pack_left - pad_w
                for (_, extent_h, pad_h), (_, extent_w, pad_w) in zip(readers_h, readers_w))
    buf = pack(x, pack_top, pack_left, (1, 1), hq, wq, reach)
    gather_packed(y_flat, y.shape, buf, (hq, wq), x.shape[0],
                  [(sub, out, first, (pack_top - sub_pads[0], pack_left - sub_pads[1]))
                   for sub, sub_pads, out, first in phases],
                  b, (1, 1), (sh, sw), sub_dilation)
    return y


# ----------------------------------------------------------------------------------------------
# weight gradient: grad_w (A, B, kH, kW) from g (N, A, outH, outW) and x (N, B, H, W)
# ----------------------------------------------------------------------------------------------

def dots4_taps3(gbuf, g_start, g_stride, x0, x1, x2, gw, c0, ci, ky, kx, length):
    # 12 dot products in one pass: gw[c0 + c, ci, ky, kx + t] += <g_c, x_t>, c < 4, t < 3,
    # with g_c = gbuf[g_start + c*g_stride:][:length] (row c0 + c of the packed gradient)
    g0 = gbuf[g_start:g_start + length]
    g1 = gbuf[g_start + g_stride:g_start + g_stride + length]
    g2 = gbuf[g_start + 2 * g_stride:g_start + 2 * g_stride + length]
    g3 = gbuf[g_start + 3 * g_stride:g_start + 3 * g_stride + length]
    s00, s01, s02 = gw[c0, ci, ky, kx], gw[c0, ci, ky, kx + 1], gw[c0, ci, ky, kx + 2]
    s10, s11, s12 = gw[c0 + 1, ci, ky, kx], gw[c0 + 1, ci, ky, kx + 1], gw[c0 + 1, ci, ky, kx + 2]
    s20, s21, s22 = gw[c0 + 2, ci, ky, kx], gw[c0 + 2, ci, ky, kx + 1], gw[c0 + 2, ci, ky, kx + 2]
    s30, s31, s32 = gw[c0 + 3, ci, ky, kx], gw[c0 + 3, ci, ky, kx + 1], gw[c0 + 3, ci, ky, kx + 2]
    for p in range(length):
        e0 = x0[p]
        e1 = x1[p]
        e2 = x2[p]
        f0 = g0[p]
        f1 = g1[p]
        f2 = g2[p]
        f3 = g3[p]
        s00 += f0 * e0
        s01 += f0 * e1
        s02 += f0 * e2
        s10 += f1 * e0
        s11 += f1 * e1
        s12 += f1 * e2
        s20 += f2 * e0
        s21 += f2 * e1
        s22 += f2 * e2
        s30 += f3 * e0
        s31 += f3 * e1
        s32 += f3 * e2
    gw[c0, ci, ky, kx], gw[c0, ci, ky, kx + 1], gw[c0, ci, ky, kx + 2] = s00, s01, s02
    gw[c0 + 1, ci, ky, kx], gw[c0 + 1, ci, ky, kx + 1], gw[c0 + 1, ci, ky, kx + 2] = s10, s11, s12
    gw[c0 + 2, ci, ky, kx], gw[c0 + 2, ci, ky, kx + 1], gw[c0 + 2, ci, ky, kx + 2] = s20, s21, s22
    gw[c0 + 3, ci, ky, kx], gw[c0 + 3, ci, ky, kx + 1], gw[c0 + 3, ci, ky, kx + 2] = s30, s31, s32


_dots4_taps3 = cpu_kernel(dots4_taps3, fastmath=_FMA_REDUCE)


def dots8_taps3(gbuf, g_start, g_stride, x0, x1, x2, gw, c0, ci, ky, kx, length):
    # 24 dot products in one pass: gw[c0 + c, ci, ky, kx + t] += <g[c], x_t>, c < 8, t < 3
    # g_c = gbuf[g_start + c*g_stride:][:length]: 8 rows of the packed gradient. 24 accumulators
    # + 8 + 3 loaded values fit AVX-512's 32 vector registers; each load feeds 3 or 8 FMAs.
    g0 = gbuf[g_start:g_start + length]
    g1 = gbuf[g_start + g_stride:g_start + g_stride + length]
    g2 = gbuf[g_start + 2 * g_stride:g_start + 2 * g_stride + length]
    g3 = gbuf[g_start + 3 * g_stride:g_start + 3 * g_stride + length]
    g4 = gbuf[g_start + 4 * g_stride:g_start + 4 * g_stride + length]
    g5 = gbuf[g_start + 5 * g_stride:g_start + 5 * g_stride + length]
    g6 = gbuf[g_start + 6 * g_stride:g_start + 6 * g_stride + length]
    g7 = gbuf[g_start + 7 * g_stride:g_start + 7 * g_stride + length]
    s00 = s01 = s02 = s10 = s11 = s12 = s20 = s21 = s22 = s30 = s31 = s32 = gw.dtype.type(0)
    s40 = s41 = s42 = s50 = s51 = s52 = s60 = s61 = s62 = s70 = s71 = s72 = gw.dtype.type(0)
    for p in range(length):
        e0 = x0[p]
        e1 = x1[p]
        e2 = x2[p]
        f = g0[p]
        s00 += f * e0
        s01 += f * e1
        s02 += f * e2
        f = g1[p]
        s10 += f * e0
        s11 += f * e1
        s12 += f * e2
        f = g2[p]
        s20 += f * e0
        s21 += f * e1
        s22 += f * e2
        f = g3[p]
        s30 += f * e0
        s31 += f * e1
        s32 += f * e2
        f = g4[p]
        s40 += f * e0
        s41 += f * e1
        s42 += f * e2
        f = g5[p]
        s50 += f * e0
        s51 += f * e1
        s52 += f * e2
        f = g6[p]
        s60 += f * e0
        s61 += f * e1
        s62 += f * e2
        f = g7[p]
        s70 += f * e0
        s71 += f * e1
        s72 += f * e2
    sums = ((s00, s01, s02), (s10, s11, s12), (s20, s21, s22), (s30, s31, s32),
            (s40, s41, s42), (s50, s51, s52), (s60, s61, s62), (s70, s71, s72))
    for c in range(8):
        for t in range(3):
            gw[c0 + c, ci, ky, kx + t] += sums[c][t]


_dots8_taps3 = cpu_kernel(dots8_taps3, fastmath=_FMA_REDUCE)


def dots8_taps1(gbuf, g_start, g_stride, x0, gw, c0, ci, ky, kx, length):
    # 8 dot products in one pass: gw[c0 + c, ci, ky, kx] += <g[c], x0>, c < 8: the tap left over
    # when kW is not a multiple of 3 (the 4x4 kernels of the folded resizes), 9 loads per 8 FMAs.
    # The 8 row slices are spelled out as in dots8_taps3 (a shared helper returning them as a
    # tuple was slower: kernels/NOTES.md).
    g0 = gbuf[g_start:g_start + length]
    g1 = gbuf[g_start + g_stride:g_start + g_stride + length]
    g2 = gbuf[g_start + 2 * g_stride:g_start + 2 * g_stride + length]
    g3 = gbuf[g_start + 3 * g_stride:g_start + 3 * g_stride + length]
    g4 = gbuf[g_start + 4 * g_stride:g_start + 4 * g_stride + length]
    g5 = gbuf[g_start + 5 * g_stride:g_start + 5 * g_stride + length]
    g6 = gbuf[g_start + 6 * g_stride:g_start + 6 * g_stride + length]
    g7 = gbuf[g_start + 7 * g_stride:g_start + 7 * g_stride + length]
    s0 = s1 = s2 = s3 = s4 = s5 = s6 = s7 = gw.dtype.type(0)
    for p in range(length):
        e = x0[p]
        s0 += g0[p] * e
        s1 += g1[p] * e
        s2 += g2[p] * e
        s3 += g3[p] * e
        s4 += g4[p] * e
        s5 += g5[p] * e
        s6 += g6[p] * e
        s7 += g7[p] * e
    sums = (s0, s1, s2, s3, s4, s5, s6, s7)
    for c in range(8):
        gw[c0 + c, ci, ky, kx] += sums[c]


_dots8_taps1 = cpu_kernel(dots8_taps1, fastmath=_FMA_REDUCE)


def dots1_taps3(g0, x0, x1, x2, gw, c, ci, ky, kx, length):
    # 3 dot products in one pass: gw[c, ci, ky, kx + t] += <g0, x_t>, t < 3 (for a g with
    # fewer than 4 channels left: 4 loads per 3 FMAs instead of 6 with three dot1 passes)
    s0, s1, s2 = gw[c, ci, ky, kx], gw[c, ci, ky, kx + 1], gw[c, ci, ky, kx + 2]
    for p in range(length):
        f = g0[p]
        s0 += f * x0[p]
        s1 += f * x1[p]
        s2 += f * x2[p]
    gw[c, ci, ky, kx], gw[c, ci, ky, kx + 1], gw[c, ci, ky, kx + 2] = s0, s1, s2


_dots1_taps3 = cpu_kernel(dots1_taps3, fastmath=_FMA_REDUCE)


def dot1(g0, x0, gw, c, ci, ky, kx, length):
    s = gw[c, ci, ky, kx]
    for p in range(length):
        s += g0[p] * x0[p]
    gw[c, ci, ky, kx] = s


_dot1 = cpu_kernel(dot1, fastmath=_FMA_REDUCE)


def weight_task(task, gbuf, buf, partial, n_, sh, sw, dh, dw, hq, wq, chunk, g_rows):
    # gbuf: packed g (A, 1, 1, N, Hq, Wq), zero outside (outH, outW); buf: packed x
    # (B, sH, sW, N, Hq, Wq) + slack; partial: (tasks, A, B, kH, kW) zeros; dh, dw: dilation.
    # One task = one chunk of positions (of the flattened N*Hq*Wq planes), ALL channel pairs:
    # the chunk's rows of g and x (A + B*sH*sW rows of `chunk` values) stay in L2 while every
    # (g_rows rows of g, 1 channel of x) pair is reduced over them, so g and x are read from
    # memory once; the partial sums of the chunks are added up afterwards. g_rows: 8 or 4.
    _, c_out, c_in, k_h, k_w = partial.shape
    gw = partial[task]
    total = n_ * hq * wq
    q0 = task * chunk
    length = min(chunk, total - q0)
    c0 = np.int64(0)       # not the constant 0: see compile.py, "one signature per kernel"
    while c0 < c_out:
        # g_rows (8 or 4) rows of g per pass while there are that many left, then 4, then 1
        channels = 8 if g_rows == 8 and c_out - c0 >= 8 else min(4, c_out - c0)
        g_start = c0 * total + q0
        for ci in range(c_in):
            for ky in range(k_h):
                ry = ky * dh                   # the tap's row in the window
                kx = np.int64(0)
                while kx < k_w:
                    taps = 3 if kx + 3 <= k_w else 1
                    # where tap (ky, kx + t) starts in the packed x: phase plane, then shift
                    rx = kx * dw
                    o0 = ((ci * sh + ry % sh) * sw + rx % sw) * total + q0 + (ry // sh) * wq + rx // sw
                    x0 = buf[o0:o0 + length]
                    if taps == 3:
                        rx1, rx2 = rx + dw, rx + 2 * dw
                        o1 = ((ci * sh + ry % sh) * sw + rx1 % sw) * total + q0 \
                            + (ry // sh) * wq + rx1 // sw
                        o2 = ((ci * sh + ry % sh) * sw + rx2 % sw) * total + q0 \
                            + (ry // sh) * wq + rx2 // sw
                        x1, x2 = buf[o1:o1 + length], buf[o2:o2 + length]
                        if channels == 8:
                            _dots8_taps3(gbuf, g_start, total, x0, x1, x2, gw, c0, ci, ky, kx, length)
                        elif channels == 4:
                            _dots4_taps3(gbuf, g_start, total, x0, x1, x2, gw, c0, ci, ky, kx, length)
                        else:
                            for c in range(channels):
                                start = g_start + c * total
                                _dots1_taps3(gbuf[start:start + length], x0, x1, x2, gw, c0 + c,
                                             ci, ky, kx, length)
                    elif channels == 8:
                        _dots8_taps1(gbuf, g_start, total, x0, gw, c0, ci, ky, kx, length)
                    else:
                        for c in range(channels):
                            start = g_start + c * total
                            _dot1(gbuf[start:start + length], x0, gw, c0 + c, ci, ky, kx, length)
                    kx += taps
        c0 += channels


_weight_task = cpu_kernel(weight_task, fastmath=_FMA_REDUCE)


def weight_chunk(total, rows):
    """Positions per weight-gradient task: the chunk's `rows` rows of g and x fill about half of
    a 2 MiB L2 (in float32), and there are at least 8 tasks so 2+ threads share the work, and a
    multiple of 4 of them, so that 2 or 4 threads get as many each (13 tasks kept one of two
    threads busy for 7 while the other had 6). The split depends on the shapes alone, never on
    the thread count: the sums, and so the result, are the same on any machine."""
    chunk = min(max(_L2_VALUES // rows, 256), 8192, max(-(-total // 8), 32))
    tasks = -(-total // chunk)
    tasks = -(-tasks // 4) * 4
    chunk = -(-total // tasks)
    return -(-chunk // _ROUND) * _ROUND


@functools.lru_cache(maxsize=None)
def weight_g_rows():
    """Rows of g per weight-gradient pass on this machine: 8 where Numba's code has 32 vector
    registers (AVX-512), which hold dots8_taps3's 24 sums with the 11 values loaded per step;
    4 with AVX2's 16, where the 8-row pass spills its sums to memory and falls far behind the
    4-row one. bench/vector_width.py times both blockings for both instruction sets on one
    machine (kernels/NOTES.md, "vector width")."""
    return 8 if has_32_vector_registers() else 4


def weight_numba(g, x, stride, pads, kernel_hw, dilation=(1, 1), groups=1, g_rows=None):
    """grad_w (A, B/groups, kH, kW) from g (N, A, outH, outW) and x (N, B, H, W): both packed,
    then one parallel task per chunk of positions, the chunks' partial sums added at the end.

    g_rows: the most rows of g reduced per pass, 4 or 8; default weight_g_rows()."""
    g_rows = weight_g_rows() if g_rows is None else int(g_rows)
    if g_rows not in (4, 8):
        raise ValueError(f"weight_numba: g_rows must be 4 or 8, got {g_rows}")
    if groups > 1:
        return weight_by_groups(functools.partial(weight_numba, g_rows=g_rows), g, x, groups,
                                stride, pads, kernel_hw, dilation)
    (sh, sw), (dh, dw) = stride, dilation
    k_h, k_w = kernel_hw
    hq, wq = plane_hw(x.shape[2:], pads, g.shape[2:], kernel_hw, stride, dilation)
    buf = pack(x, pads[0], pads[1], stride, hq, wq, tap_reach(kernel_hw, stride, dilation, wq))
    gbuf = pack(g, 0, 0, (1, 1), hq, wq, 0)
    c_a, c_b = g.shape[1], x.shape[1]
    chunk = weight_chunk(x.shape[0] * hq * wq, c_a + c_b * sh * sw)
    tasks = -(-(x.shape[0] * hq * wq) // chunk)
    partial = memory.zeros((tasks, c_a, c_b, k_h, k_w), x.dtype)
    parallel_for(_weight_task, tasks, gbuf, buf, partial, x.shape[0], sh, sw, dh, dw, hq, wq,
                 chunk, g_rows)                           # one chunk of positions each
    return partial.sum(axis=0)


# ----------------------------------------------------------------------------------------------
# bias gradient: grad_b (Cout,) = grad_y (N, Cout, outH, outW) summed over N, outH, outW
# ----------------------------------------------------------------------------------------------

def bias_task(task, g, partial, block):
    # g: (N, C, H*W); partial: (blocks, C) float64. One task = a block of images, every channel.
    # Each plane is summed in the array's dtype (a vectorized reduction), the planes in float64,
    # image after image: g is read in its own order, and each channel's planes are still added
    # in the order of the images.
    n_, c_, plane = g.shape
    totals = partial[task]
    totals[:] = 0.0
    for n in range(task * block, min((task + 1) * block, n_)):
        for c in range(c_):
            row = g[n, c]
            s = row.dtype.type(0)
            for p in range(plane):
                s += row[p]
            totals[c] += s


_bias_task = cpu_kernel(bias_task, fastmath=_FMA_REDUCE)


def bias_backward_numba(grad_y):
    """conv2d_backward_bias: blocks of images in parallel, or all of them on this thread when
    the gradient is small (run_in_chunks); the blocks' sums added in float64 at the end. NumPy's
    strided sum over (N, H, W) takes 4x as long on the CAE's 7x7 planes (kernels/NOTES.md)."""
    n_, c_ = grad_y.shape[:2]
    block = max(1, -(-n_ // 8))                                   # 8 image blocks: 2+ cores busy
    blocks = 1 if grad_y.size <= SERIAL_MAX_VALUES else -(-n_ // block)
    partial = np.empty((blocks, c_), np.float64)
    run_in_chunks(_bias_task, n_, block, np.ascontiguousarray(grad_y).reshape(n_, c_, -1),
                  partial, values=grad_y.size)
    return partial.sum(axis=0).astype(grad_y.dtype)
