"""conv2d numba tier, Winograd F(2x2, 3x3): 3x3 stride-1 convs with many channels.

A 2x2 block ("tile") of outputs needs a 4x4 patch d of the padded input. Winograd's identity
    y_tile = A^T [ (G w G^T) (.) (B^T d B) ] A        ((.) = elementwise, on 4x4 = 16 values)
turns the 36 multiply-adds per tile and channel pair into 16: the 16 "components" xi of the
transformed input V = B^T d B and weight U = G w G^T multiply elementwise, summed over input
channels, which is 16 independent small GEMMs  M[xi] (Cout x tiles) = U[xi] (Cout x Cin) . V[xi].
    B^T = [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]]
    G   = [[1, 0, 0], [1/2, 1/2, 1/2], [1/2, -1/2, 1/2], [0, 0, 1]]
    A^T = [[1, 1, 1, 0], [0, 1, -1, -1]]
The transforms are additions only. The GEMMs run on direct.py's register-blocked row kernels
(4 or 1 output channels x 9 input channels per pass); that is this module's one dependency on
direct.py, and direct.py imports nothing from here.

Layout: images go in blocks of _WINO_IMAGES, and the image index is the innermost, contiguous
axis of every buffer, so every loop below runs over (tile, image) positions, however small the
image: xq (blocks, Cin, Hq, 2, Wq/2, NB) holds each padded row as its even columns then its
odd columns, so the 4 columns 2q..2q+3 of tile q are, at position p = q*NB + j, the slices
even[p], odd[p], even[p + NB], odd[p + NB] -- contiguous in p. One task = one block of
images x a few tile rows; its V (16*Cin rows) and M (16*Cout rows) stay in the core's L2.

Which convs take this path is the tier's choice (uses_winograd in __init__.py); it serves
conv2d's forward and, through the phase convs of the transposed conv, conv2d's input gradient
and the stride-1 transposed conv. Figures and what was tried: kernels/NOTES.md, "conv2d".
"""

import numpy as np

from .. import memory
from ..compile import cpu_kernel, parallel_for, start_threads, thread_slot
from .direct import _FMA, _rows1_taps9, _rows4_taps9   # the GEMM stage's row kernels
from .reference import bias_or_zeros

_WINO_IMAGES = 16            # images per block: two 8-wide float32 vectors per (tile, channel)
_WINO_POSITIONS = 512        # (tile, image) positions per task, about: V and M rows fit in L2

_WINOGRAD_G = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]])


def weight_tiles(w):
    """U = G w G^T per channel pair, cut into the (4 output x 9 input channel) tiles that
    direct.rows4_taps9 takes: (16, ceil(Cout/4), ceil(Cin/9), 4, 9), zero where padded.
    Cut once per call, not per pass. w: (Cout, Cin, 3, 3)."""
    c_out, c_in = w.shape[:2]
    u = np.einsum("ak,oikl,bl->aboi", _WINOGRAD_G, w.astype(np.float64),
                  _WINOGRAD_G).reshape(16, c_out, c_in)                 # (xi, Cout, Cin)
    tiles = np.zeros((16, -(-c_out // 4) * 4, -(-c_in // 9) * 9), w.dtype)
    tiles[:, :c_out, :c_in] = u
    tiles = tiles.reshape(16, -1, 4, tiles.shape[2] // 9, 9).transpose(0, 1, 3, 2, 4)
    return np.ascontiguousarray(tiles)


def wino_pack_task(task, x, xq, top, left):
    # x: (N, C, H, W) -> xq: (blocks, C, Hq, 2, Wq2, NB) with
    # xq[blk, c, r, k, q, j] = x[blk*NB + j, c, r - top, 2q + k - left]  (0 outside x)
    n_, c_, h, w = x.shape
    wq2 = xq.shape[4]
    blk = task // c_
    c = task - blk * c_
    images = min(_WINO_IMAGES, n_ - blk * _WINO_IMAGES)
    for r in range(xq.shape[2]):
        row = xq[blk, c, r]                                    # (2, Wq2, NB)
        if r - top < 0 or r - top >= h:
            row[:] = 0
            continue
        for k in range(2):
            # columns 2q + k - left inside [0, W): q in [q0, q1); only the rest is zeroed
            q0 = max(0, (left - k + 1) // 2)
            q1 = max(min(wq2, (w + left - k + 1) // 2), q0)
            dst = row[k]
            dst[:q0] = 0
            dst[q1:] = 0
            dst[q0:q1, images:] = 0                            # the last block's missing images
            # One column of every image per step: the stores run over the images, contiguous
            # (a 64-byte line per column), rather than one image per step storing every NB-th
            # value.
            src = x[blk * _WINO_IMAGES:blk * _WINO_IMAGES + images, c, r - top]   # (images, W)
            for q in range(q0, q1):
                out = dst[q]
                col = 2 * q + k - left
                for j in range(images):
                    out[j] = src[j, col]


_wino_pack_task = cpu_kernel(wino_pack_task)


def wino_pack(x, xq, top, left):
    """x (N, Cin, H, W) -> xq (blocks, Cin, Hq, 2, Wq/2, NB), in parallel over (block, channel)."""
    parallel_for(_wino_pack_task, xq.shape[0] * xq.shape[1], x, xq, top, left)


def wino_input_transform(plane, scratch, v, ci, c_in, a, col0, length):
    # V = B^T d B for tile row `a` of one channel, written to v[xi*Cin + ci, col0:col0 + length].
    # plane: (Hq, 2*Wq2*NB) one channel of one image block; scratch: (4, 2*Wq2*NB).
    # Two passes, each over few arrays: LLVM vectorizes a loop only when the runtime overlap
    # checks between its arrays are few.
    r0, r1, r2, r3 = plane[2 * a], plane[2 * a + 1], plane[2 * a + 2], plane[2 * a + 3]
    t0, t1, t2, t3 = scratch[0], scratch[1], scratch[2], scratch[3]
    for p in range(r0.shape[0]):                               # B^T down the columns
        t0[p] = r0[p] - r2[p]
        t1[p] = r1[p] + r2[p]
        t2[p] = r2[p] - r1[p]
        t3[p] = r1[p] - r3[p]
    odd = plane.shape[1] // 2                                  # where the odd columns start
    nb = _WINO_IMAGES
    for i in range(4):                                         # then B along the rows
        t = scratch[i]
        d0, d1 = t[:length], t[odd:odd + length]               # columns 2q, 2q+1
        d2, d3 = t[nb:nb + length], t[odd + nb:odd + nb + length]   # columns 2q+2, 2q+3
        v0 = v[(4 * i) * c_in + ci, col0:col0 + length]
        v1 = v[(4 * i + 1) * c_in + ci, col0:col0 + length]
        v2 = v[(4 * i + 2) * c_in + ci, col0:col0 + length]
        v3 = v[(4 * i + 3) * c_in + ci, col0:col0 + length]
        for p in range(length):
            v0[p] = d0[p] - d2[p]
            v1[p] = d1[p] + d2[p]
            v2[p] = d2[p] - d1[p]
            v3[p] = d1[p] - d3[p]


_wino_input_transform = cpu_kernel(wino_input_transform)


def wino_output_transform(m, out, co, c_out, col0, length):
    # out[2i + k, p] = (A^T M A)[i, k] for output channel co, positions col0:col0 + length.
    # m: (16*Cout, positions); out: (4, >= length)
    m0, m1, m2, m3 = (m[co, col0:col0 + length], m[c_out + co, col0:col0 + length],
                      m[2 * c_out + co, col0:col0 + length], m[3 * c_out + co, col0:col0 + length])
    m4, m5, m6, m7 = (m[4 * c_out + co, col0:col0 + length], m[5 * c_out + co, col0:col0 + length],
                      m[6 * c_out + co, col0:col0 + length], m[7 * c_out + co, col0:col0 + length])
    m8, m9, m10, m11 = (m[8 * c_out + co, col0:col0 + length], m[9 * c_out + co, col0:col0 + length],
                        m[10 * c_out + co, col0:col0 + length], m[11 * c_out + co, col0:col0 + length])
    m12, m13, m14, m15 = (m[12 * c_out + co, col0:col0 + length], m[13 * c_out + co, col0:col0 + length],
                          m[14 * c_out + co, col0:col0 + length], m[15 * c_out + co, col0:col0 + length])
    y00, y01, y10, y11 = out[0], out[1], out[2], out[3]
    for p in range(length):
        s0 = m0[p] + m4[p] + m8[p]             # A^T down the columns: row 0 ...
        s1 = m1[p] + m5[p] + m9[p]
        s2 = m2[p] + m6[p] + m10[p]
        s3 = m3[p] + m7[p] + m11[p]
        r0 = m4[p] - m8[p] - m12[p]            # ... and row 1
        r1 = m5[p] - m9[p] - m13[p]
        r2 = m6[p] - m10[p] - m14[p]
        r3 = m7[p] - m11[p] - m15[p]
        y00[p] = s0 + s1 + s2                  # then A along the rows
        y01[p] = s1 - s2 - s3
        y10[p] = r0 + r1 + r2
        y11[p] = r1 - r2 - r3


_wino_output_transform = cpu_kernel(wino_output_transform)


def wino_task(task, xq, u_tiles, b, y, tile_rows, tile_cols, rows_per_task, v_slots, m_slots):
    # One task = one block of images x `rows_per_task` tile rows, all channels.
    # xq: packed input (see wino_pack_task); u_tiles: (16, Cout/4, Cin/9, 4, 9); y: (N, Cout, oh, ow)
    # v_slots, m_slots: (threads, 16*Cin*L), (threads, 16*Cout*L) for L = the longest task's
    # positions: this thread's row holds its V and M (compile.thread_slot)
    blocks, c_in, hq, _, wq2, nb = xq.shape
    n_, c_out, oh, ow = y.shape
    row_groups = -(-tile_rows // rows_per_task)
    blk = task // row_groups
    a0 = (task - blk * row_groups) * rows_per_task
    rows_here = min(rows_per_task, tile_rows - a0)
    per_row = tile_cols * nb
    length = rows_here * per_row                               # (tile, image) positions
    slot = thread_slot()
    # 1. V = B^T d B: (16*Cin, length)
    v = v_slots[slot, :16 * c_in * length].reshape((16 * c_in, length))
    scratch = np.empty((4, 2 * wq2 * nb), xq.dtype)
    for r in range(rows_here):
        for ci in range(c_in):
            _wino_input_transform(xq[blk, ci].reshape(hq, 2 * wq2 * nb), scratch, v, ci, c_in,
                                  a0 + r, r * per_row, per_row)
    # 2. M[xi] = U[xi] . V[xi]: (16*Cout, length), 4 output x 9 input channels per pass
    m = m_slots[slot, :16 * c_out * length].reshape((16 * c_out, length))
    m[:] = 0
    v_flat = v.reshape(-1)
    offs = np.zeros(9, np.int64)
    for xi in range(16):
        for group in range(u_tiles.shape[2]):
            for t in range(9):
                ci = min(9 * group + t, c_in - 1)              # a missing channel has weight 0
                offs[t] = (xi * c_in + ci) * length
            for c0 in range(0, c_out, 4):
                row0 = xi * c_out + c0
                wt = u_tiles[xi, c0 // 4, group]               # (4, 9)
                if c0 + 4 <= c_out:
                    _rows4_taps9(m[row0:row0 + 4], v_flat, offs, wt, length)
                else:
                    for c in range(c_out - c0):
                        _rows1_taps9(m[row0 + c], v_flat, offs, wt, c, length)
    # 3. y = A^T M A + b, from (tile, image) order back to NCHW
    out = np.empty((4, per_row), xq.dtype)
    images = min(nb, n_ - blk * nb)
    for co in range(c_out):
        bias = b[co]
        for r in range(rows_here):
            _wino_output_transform(m, out, co, c_out, r * per_row, per_row)
            for i in range(2):
                oy = 2 * (a0 + r) + i
                if oy >= oh:
                    break
                even, odd = out[2 * i], out[2 * i + 1]
                for j in range(images):
                    dst = y[blk * nb + j, co, oy]
                    for q in range(ow // 2):
                        dst[2 * q] = even[q * nb + j] + bias
                        dst[2 * q + 1] = odd[q * nb + j] + bias
                    if ow % 2 == 1:
                        dst[ow - 1] = even[(ow // 2) * nb + j] + bias


_wino_task = cpu_kernel(wino_task, fastmath=_FMA)


def gather_winograd(x, w, b, pads, out_hw, y=None):
    """conv2d of a 3x3 kernel at stride 1 by Winograd F(2x2, 3x3) (same result as the direct loops).

    x: (N, Cin, H, W), w: (Cout, Cin, 3, 3), pads: (top, left); writes/returns y (N, Cout, oh, ow).
    """
    n_, c_in = x.shape[:2]
    oh, ow = out_hw
    tile_rows, tile_cols = -(-oh // 2), -(-ow // 2)
    blocks = -(-n_ // _WINO_IMAGES)
    # padded input rows 2a..2a+3 for tile rows a < tile_rows; columns likewise, split by parity
    xq = memory.empty((blocks, c_in, 2 * tile_rows + 2, 2, tile_cols + 1, _WINO_IMAGES), x.dtype)
    wino_pack(np.ascontiguousarray(x), xq, pads[0], pads[1])
    u_tiles = weight_tiles(np.asarray(w, dtype=x.dtype))
    b = bias_or_zeros(np, b, w.shape[0], x.dtype)
    if y is None:
        y = memory.empty((n_, w.shape[0], oh, ow), x.dtype)
    rows_per_task = max(1, _WINO_POSITIONS // (tile_cols * _WINO_IMAGES))
    length = min(rows_per_task, tile_rows) * tile_cols * _WINO_IMAGES   # the longest task's
    threads = start_threads()
    v_slots = memory.empty((threads, 16 * c_in * length), x.dtype)
    m_slots = memory.empty((threads, 16 * w.shape[0] * length), x.dtype)
    parallel_for(_wino_task, blocks * -(-tile_rows // rows_per_task),   # (block, tile rows)
                 xq, u_tiles, b, y, tile_rows, tile_cols, rows_per_task, v_slots, m_slots)
    return y
