"""conv2d: 2-D cross-correlation, PyTorch's `torch.nn.functional.conv2d` (NCHW, groups=1, dilation=1).

    x: (N, Cin, H, W),  w: (Cout, Cin, kH, kW),  b: (Cout,) or None  ->  y: (N, Cout, outH, outW)

    y[n, co, oy, ox] = b[co] + sum_{ci, ky, kx} w[co, ci, ky, kx] * xpad[n, ci, oy*sH + ky, ox*sW + kx]
    outH = (H + pad_top + pad_bottom - kH) // sH + 1          (likewise outW)

where xpad is x with pad_top zero rows above it (pad_left columns on the left, ...). Only dilation 1
and groups 1 are supported. Padding arrives resolved by `geometry.conv2d_geometry`: ints, pairs,
'valid', and TensorFlow's 'same' (outH = ceil(H / sH), the odd pixel of padding at the bottom/right).

Registered ops (same signature on every tier; `geom` is the dict from conv2d_geometry):
    conv2d_forward(x, w, b, geom)            -> y       (N, Cout, outH, outW)
    conv2d_backward_input(grad_y, w, geom)   -> grad_x  (N, Cin, H, W)
    conv2d_backward_weight(grad_y, x, geom)  -> grad_w  (Cout, Cin, kH, kW)
    conv2d_backward_bias(grad_y)             -> grad_b  (Cout,) = grad_y summed over N, H, W
                                                (also the transposed conv's bias gradient)

The adjoint pairs. Every tier implements three *cores*, and all six ops of the conv family (this
file and conv_transpose2d.py) are thin compositions of them:
    gather(x, w, b, stride, (top, left), (outH, outW))   conv2d forward          (w: Cout, Cin, ..)
    scatter(x, w, b, stride, (top, left), (outH, outW))  conv_transpose2d fwd   (w: Cin, Cout, ..)
    weight(g, x, stride, (top, left), (kH, kW))          sum_{n,i,j} g[n,a,i,j] x[n,b,i*s+ky-top, ..]
conv2d's input gradient IS a transposed convolution of grad_y with the same weight, stride and
padding, cropped to (H, W) ("scatter"); the transposed conv's input gradient IS a conv2d of grad_y
("gather"); and both weight gradients are the same correlation with the roles of the two arrays
swapped ("weight"). Rows of the padded input that no window reaches (when (H + pads - kH) is not a
multiple of the stride) simply get a zero gradient: the scatter core crops/extends by the geometry.

numba cpu: how the loops were chosen (2-core Xeon (Sapphire Rapids, AVX-512) shared with other
jobs, batch 200, float32, median ms; indicative only)
-----------------------------------------------------------------------------------------------
* Layout. The input is copied once ("packed") into a zero-padded, channel-major buffer
  (Cin, sH, sW, N, Hq, Wq): per input channel and per stride phase, the padded images of the whole
  batch lie end to end. Then every kernel tap (ky, kx) is ONE contiguous slice of that buffer
  (offset (ky//sH)*Wq + kx//sW in phase (ky%sH, kx%sW)), and the output of a block of B images is
  computed at every position of the flattened padded plane -- the few positions outside
  (outH, outW) are junk that the final copy skips. The innermost loop therefore runs over
  B*Hq*Wq contiguous elements (about 2000) instead of over outW (14): with a 14-wide row, LLVM's
  8-wide vector loop left most of the work in the scalar remainder.
* Packing copies each row through unit-stride slices when the stride is 1 (a loop LLVM
  vectorizes); the strided index loop it replaces took 7.7 ms, against 4.1, to pack the
  (200, 32, 28, 28) batch.
* Innermost loop indexing uses slices (`xr = buf[base:base+L]; xr[p]`), not `buf[base + p]`:
  Numba's negative-index wraparound on a computed index kept LLVM from vectorizing
  (32->32 on 14x14: 259 ms -> 48 ms).
* Register blocking (forward and both transposed uses): each pass over the positions updates 4
  output channels from 9 taps (36 multiply-adds per 9 loads + 4 accumulator loads/stores): a
  whole 3x3 kernel of one input channel per pass, so each accumulator row is read and written
  once per input channel instead of once per kernel row. Taps are taken 9 at a time in
  (ci, ky, kx) order, so a transposed conv's stride-phase sub-kernels (2x2+2x1+1x2+1x1) fill
  passes too; a missing tap gets weight 0. fastmath {"contract"} fuses multiply-add into FMA.
  History for 32->32 3x3 on 14x14 forward (loaded machine): computed-index loop 259 ms ->
  slices 48 ms -> 4 channels 33 ms -> 3 taps 28 ms -> image blocks of 8 + FMA ~14 ms. Then
  (interleaved with PyTorch, ratio numba/torch, quiet machine): 4 ch x 3 taps 3.07 -> 4 ch x 9
  taps 2.77. Tried and dropped: 8 ch x 3 taps (24 weights in registers, 8 FMA chains) was
  slower than 4 x 9 (8 accumulator stores per 24 FMAs); 3 partial sums per 9-tap chain (more
  ILP) made no measurable difference. LLVM (as Numba drives it) uses 256-bit vectors here
  even on AVX-512 machines; PyTorch's oneDNN uses 512-bit JIT kernels, which is most of the
  remaining gap on the many-channel shapes (see the table).
* Writing the result: each accumulator row goes to y through slices (`_add_bias_row`), a vector
  loop where the stride is 1. The computed index y[row + ox*step] it replaced was a scalar loop,
  and with one input channel (one pass of multiply-adds) it cost as much as the pass itself:
  conv 1->32 on 28x28 forward 9.8 -> 4.8 ms, the 32->1 conv's input gradient 9.4 -> 4.6 ms
  (x2.0, old and new interleaved in one process, 7 rounds); the folded 2x resize + conv, whose
  phases write every other column, gained x1.03-1.09.
* Weight gradient: the same packed buffers; one parallel task per CHUNK of positions (about
  1 MiB of g and x rows, so they stay in L2), reducing every (4 channels of g, 1 channel of x)
  pair over it with 12 dot products per pass, vectorized as reductions thanks to fastmath
  "reassoc" (the sum order changes; the result is deterministic); the chunks' partial sums
  are added at the end. Then 8 rows of g x 3 taps per pass (24 accumulators; AVX-512's 32
  vector registers hold them with the 11 loaded values): every load feeds 3 or 8 FMAs instead
  of 3 or 4; the CAE's seven weight gradients went 108.7 -> 94.2 ms (x1.15, side by side).
  A g with fewer than 4 channels (the 32->1 conv) reduces one g row against 3 taps per pass
  (`_dots1_taps3`, 4 loads per 3 FMAs; one tap at a time took 6): 9.7 -> 8.6 ms (x1.18).
  The tap left in each row of a 4-wide kernel (the folded resizes) is reduced against 8 g rows
  per pass (`_dots8_taps1`) instead of one: the 32->32 fold's weight gradient 38.3 -> 35.6 ms
  (x1.09 per round, 15 rounds).
  The earlier order (one task per channel pair, streaming the whole batch) re-read g and x
  from memory for every pair: 32->32 on 28x28 went 2.02x -> 1.65x of PyTorch's time.
* Transposed conv (conv_transpose2d forward, conv2d's input gradient): sH*sW stride-1 conv2d's,
  one per output phase, with flipped sub-kernels (see scatter_numba): no scatter, no atomics.
* Winograd F(2x2, 3x3) for 3x3 stride-1 convs with >= 8 input and output channels (every
  many-channel conv of the classic CAE): 16 multiplications per 2x2 outputs and channel pair
  instead of 36, as 16 small GEMMs between additions-only transforms (see its section below).
  It serves conv2d's forward and, through the scatter core, its input gradient and the stride-1
  transposed conv. Measured side by side in one process, alternating the two paths round by
  round (`python bench/conv_paths.py`: batch 200, float32, 'same', median of 9 rounds, 2
  threads, the machine shared; bench/results/conv_paths.json), direct -> Winograd ms:
      32->32 on 28x28   forward 51.7 -> 40.8 (x1.27)   input grad 51.0 -> 42.2 (x1.21)
      32->32 on 14x14   forward 16.1 -> 11.6 (x1.39)   input grad 16.4 -> 11.1 (x1.47)
      16->32 on 14x14   forward  9.8 ->  6.8 (x1.44)   input grad  9.6 ->  7.2 (x1.33)
      32->16 on 7x7     forward  3.7 ->  2.8 (x1.32)   input grad  3.2 ->  2.7 (x1.18)
      16->16 on 7x7     forward  1.9 ->  1.7 (x1.12)   input grad  1.9 ->  1.7 (x1.14)
  (before the faster Winograd pack the 7x7 layers were a tie, x0.92 - x1.02).
  On a quieter run the 32->32 forward went 53 -> 31 ms (x1.7): the transforms and the packing
  are memory-bound, so the gain shrinks when other jobs load the memory bus. Below 8 channels
  the transforms cost more than they save (1->32 on 28x28: 5.0 -> 9.7 ms; 32->1: 9.0 -> 10.8).
  Its weight gradient (G^T [sum over tiles (A g A^T) (.) (B^T d B)] G) was written and tested
  too, and was not kept: x0.77-1.03 against the direct loops in the same run (two transforms
  per tile for one GEMM's worth of savings).
  Getting it to pay needed care: one transform loop with 16 outputs and 8 inputs was left
  scalar by LLVM (too many runtime overlap checks between the arrays; 58 ms for the input
  transform alone), two passes of 4 outputs each vectorize (8 ms); a Python list of 16 row
  views inside the loop was slower still; and the (4 x 9) weight tiles are cut once per call
  instead of per pass (the GEMM stage went 23 -> 15 ms). Its pack copies one column of every
  image of a block per step (contiguous stores) and zeroes only what x does not cover: the pack
  ran 1.8-2.0x faster and the whole Winograd forward 1.09-1.14x faster on the CAE's five
  many-channel layers (interleaved in one process, batch 200).
  F(4x4, 3x3) (36 multiplications per 16 outputs instead of 16 per 4) was written and tested
  too, and was not kept: with its 6-point transforms as separate loops over short rows
  (7 tiles x 16 images), 32->32 at 28x28 took 40-61 ms where this F(2x2) path took 35-49 ms
  in the same interleaved runs; its GEMM stage gained 10-25% of the 44% it saves on paper.
* im2col + GEMM was not kept: the im2col copy of a 32->32 conv on 14x14 was measured earlier in
  this project to cost more than its GEMM, NumPy's matmul cannot accumulate (beta=1) into the
  output, and Numba has no BLAS without SciPy, so the direct loops were kept. One numba
  tier per op; inside it, `uses_winograd` picks Winograd or the direct loops by the shape.
* Compile cost: the kernels take several seconds to compile per dtype (cold), then load from
  Numba's on-disk cache in a fraction of a second. Each prange loop is a one-line loop over tasks
  calling a serial function, which keeps Numba's parfor passes cheap. Cold compile of the
  three cores for float32 + float64 (empty NUMBA_CACHE_DIR, machine loaded): 39.5 s, was 35.4 s
  before the 9-tap kernel and the chunked weight gradient. The Winograd path adds 21 s cold for
  float32 (0.4 s to load from the cache).

Measured (batch 200, float32, 'same' padding, numba/torch time ratio (< 1: numba faster), median
of 7, PyTorch 2.13 with 2 threads interleaved in the same process; the 2-core machine was
fairly quiet (PyTorch ran 32->32 on 14x14 in 5.7 ms, its quoted quiet figure); before = the
previous version (4 ch x 3 taps, per-channel-pair weight tasks), after = this one:

    shape (CAE layers)          forward          input grad        weight grad     torch ms (fwd)
                              before  after    before  after     before  after
    conv 1->32 on 28x28        0.35   0.34      0.63   0.73       1.37   1.77        15.0
    conv 32->32 on 14x14       3.07   2.77      3.04   2.72       2.31   2.42         5.7
    conv 32->16 on 7x7         3.41   3.03      2.49   2.16       2.52   2.53         1.3
    conv 16->32 on 14x14       2.89   2.64      2.69   2.57       2.25   2.42         3.3
    conv 32->32 on 28x28       1.85   1.68      1.72   1.63       2.02   1.65        38.7
    conv 32->1 on 28x28        0.66   0.66      0.46   0.44       0.56   0.66        16.2
On a LOADED machine (load average 3-4 on 2 cores) PyTorch's spinning OpenMP threads suffer more
than these loops and the ratios were about 1.0-1.4 for the 32-channel shapes, 0.5-0.8 for the
others. Numba wins where the CAE has 1 input or 1 output channel; PyTorch (oneDNN, 512-bit
vectors, ~100 GFLOP/s on 2 cores) wins 1.6-3x on the many-channel shapes, where these loops run
at ~40 GFLOP/s. Closing that gap needs an im2col + BLAS path or 512-bit code; NumPy's OpenBLAS
reached 40-60 GFLOP/s on the packed-im2col GEMM shapes (32 x 288 x 784/196 per image) in a
quick test, not enough to pay for the copy, so it was not adopted.
"""

import numpy as np

from .compile import (SERIAL_MAX_VALUES, array_module_of, cpu_kernel, cpu_kernel_serial, cuda,
                      cuda_kernel, launch_1d, prange)
from .registry import register
from . import memory


def _bias_or_zeros(xp, b, channels, dtype):
    """The bias as a contiguous (channels,) array of `dtype`; zeros when there is none."""
    return xp.zeros(channels, dtype=dtype) if b is None else xp.ascontiguousarray(b, dtype=dtype)


def _stride(geom):
    return geom["stride_h"], geom["stride_w"]


def _pads(geom):
    return geom["pad_top"], geom["pad_left"]


def register_conv2d_tier(tier, gather, scatter, weight):
    """Register the three conv2d ops of one tier as compositions of its cores."""

    def conv2d_forward(x, w, b, geom):
        return gather(x, w, b, _stride(geom), _pads(geom), (geom["out_h"], geom["out_w"]))

    def conv2d_backward_input(grad_y, w, geom):
        # the adjoint of a correlation is the transposed convolution, cropped to the input size
        return scatter(grad_y, w, None, _stride(geom), _pads(geom), (geom["h"], geom["w"]))

    def conv2d_backward_weight(grad_y, x, geom):
        return weight(grad_y, x, _stride(geom), _pads(geom), (geom["k_h"], geom["k_w"]))

    register("conv2d_forward", tier)(conv2d_forward)
    register("conv2d_backward_input", tier)(conv2d_backward_input)
    register("conv2d_backward_weight", tier)(conv2d_backward_weight)


# ----------------------------------------------------------------------------------------------
# reference (NumPy; CuPy arrays work too): im2col slices + one tensordot (a GEMM)
# ----------------------------------------------------------------------------------------------

@register("conv2d_backward_bias", "ref")
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


register_conv2d_tier("ref", gather_ref, scatter_ref, weight_ref)


# ----------------------------------------------------------------------------------------------
# numba cpu: packed channel-major buffers, contiguous inner loops over blocks of images
# ----------------------------------------------------------------------------------------------

# Inner-loop targets: about 2048 positions per pass keeps the 4 accumulator rows (32 KiB in
# float32) in L1; lengths are rounded up to ROUND so the vector loop has no scalar remainder.
_POSITIONS_PER_PASS = 2048
_ROUND = 32
_L2_VALUES = 1 << 18     # values per weight-gradient chunk (1 MiB in float32)
_FMA = {"contract"}
_FMA_REDUCE = {"contract", "reassoc"}


# Each parallel loop below is a one-line prange over tasks calling a serial "task" function:
# Numba's parfor passes are slow on big loop bodies, and this halves the compile time.

def _pack_task(task, x, buf, top, left, sh, sw, hq, wq):
    # x: (N, C, H, W) -> buf: flat (C, sH, sW, N, Hq, Wq) + slack, with
    # buf[c, ry, rx, n, a, q] = x[n, c, a*sH + ry - top, q*sW + rx - left] (0 outside x)
    n_, c_, h, w = x.shape
    plane = hq * wq
    c = task // n_
    n = task - c * n_
    for ry in range(sh):
        for rx in range(sw):
            base = ((c * sh + ry) * sw + rx) * n_ * plane + n * plane
            # columns q in [q0, q1) come from x (col = q*sW + rx - left in [0, W)), the rest are 0:
            # the bounds are found once, so the copy loop has no branch and vectorizes
            q0 = min(max(0, -((rx - left) // sw)), wq)
            q1 = max(min(wq, (w - 1 - rx + left) // sw + 1), q0)
            for a in range(hq):
                r = a * sh + ry - top
                row = buf[base + a * wq:base + (a + 1) * wq]
                if r < 0 or r >= h:
                    row[:] = 0
                else:
                    row[:q0] = 0
                    row[q1:] = 0
                    src = x[n, c, r]
                    if sw == 1:       # unit stride: slices of both rows, a loop LLVM vectorizes
                        dst, first = row[q0:q1], src[q0 + rx - left:q1 + rx - left]
                        for q in range(q1 - q0):
                            dst[q] = first[q]
                    else:
                        for q in range(q0, q1):
                            row[q] = src[q * sw + rx - left]


def _rows4_taps9(acc, buf, offs, wt, length):
    # 4 output channels x 9 taps: acc[c, p] += sum_t wt[c, t] * buf[offs[t] + p]
    # acc: (4, >= length); offs: (9,) where each tap's slice of the packed input starts;
    # wt: (4, 9), 0 for a missing tap. Nine taps per pass (a whole 3x3 kernel of one input
    # channel) load and store each accumulator once per 36 multiply-adds: the 3-tap version
    # was bound by those loads and stores (8 channels x 3 taps was slower still).
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


def _rows1_taps9(a0, buf, offs, wt, c, length):
    # one output channel x 9 taps (the channels left over when Cout is not a multiple of 4)
    x0, x1, x2 = buf[offs[0]:offs[0] + length], buf[offs[1]:offs[1] + length], buf[offs[2]:offs[2] + length]
    x3, x4, x5 = buf[offs[3]:offs[3] + length], buf[offs[4]:offs[4] + length], buf[offs[5]:offs[5] + length]
    x6, x7, x8 = buf[offs[6]:offs[6] + length], buf[offs[7]:offs[7] + length], buf[offs[8]:offs[8] + length]
    u0, u1, u2, u3, u4, u5, u6, u7, u8 = wt[c, 0], wt[c, 1], wt[c, 2], wt[c, 3], wt[c, 4], wt[c, 5], wt[c, 6], wt[c, 7], wt[c, 8]
    for p in range(length):
        a0[p] += (u0 * x0[p] + u1 * x1[p] + u2 * x2[p] + u3 * x3[p] + u4 * x4[p] + u5 * x5[p]
                  + u6 * x6[p] + u7 * x7[p] + u8 * x8[p])


_rows4_taps9 = cpu_kernel_serial(_rows4_taps9, fastmath=_FMA)
_rows1_taps9 = cpu_kernel_serial(_rows1_taps9, fastmath=_FMA)


def _gather_task(task, buf, w, b, y, n_, sh, sw, hq, wq, block,
                 out_h, out_w, y_rows, y_cols, y_row0, y_col0, y_row_step, y_col_step):
    # buf: packed input (Cin, sH, sW, N, Hq, Wq) + slack; w: (Cout, Cin, kH, kW); b: (Cout,)
    # y: flat output (N, Cout, y_rows, y_cols); result (oy, ox) goes to
    # (y_row0 + oy*y_row_step, y_col0 + ox*y_col_step) (transposed conv phases use the steps).
    # One task = (a block of images, 4 output channels).
    c_out, c_in, k_h, k_w = w.shape
    plane = hq * wq
    c_blocks = (c_out + 3) // 4
    nb = task // c_blocks
    c0 = (task - nb * c_blocks) * 4
    n0 = nb * block
    images = min(block, n_ - n0)
    length = (images * plane + 31) // 32 * 32
    acc = np.zeros((4, length), y.dtype)
    channels = min(4, c_out - c0)
    # The taps (ci, ky, kx), in order, are taken 9 at a time, across kernel rows and input
    # channels: a 3x3 kernel costs 1 pass per input channel, and so do the 2x2 + 2x1 + 1x2 + 1x1
    # stride-phase sub-kernels of a stride-2 transposed conv together. A missing tap reads the
    # start of buf with weight 0.
    wt = np.zeros((4, 9), y.dtype)
    offs = np.zeros(9, np.int64)
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
                offs[t] = (((ci * sh + ky % sh) * sw + kx % sw) * n_ + n0) * plane \
                    + (ky // sh) * wq + kx // sw
                for c in range(channels):
                    wt[c, t] = w[c0 + c, ci, ky, kx]
        if channels == 4:
            _rows4_taps9(acc, buf, offs, wt, length)
        else:
            for c in range(channels):
                _rows1_taps9(acc[c], buf, offs, wt, c, length)
    for c in range(channels):
        bias = b[c0 + c]
        for j in range(images):
            out = ((n0 + j) * c_out + c0 + c) * y_rows
            for oy in range(out_h):
                row = (out + y_row0 + oy * y_row_step) * y_cols + y_col0
                src = acc[c, j * plane + oy * wq:j * plane + oy * wq + out_w]
                # two calls, so each is compiled for its own layout: the unit-stride one is a
                # vector loop (a computed index y[row + ox*step] was a scalar loop)
                if y_col_step == 1:
                    _add_bias_row(y[row:row + out_w], src, bias)
                else:
                    _add_bias_row(y[row:row + (out_w - 1) * y_col_step + 1:y_col_step], src, bias)


def _add_bias_row(dst, src, bias):
    # dst[i] = src[i] + bias: one output row, from the accumulator to y
    for i in range(src.shape[0]):
        dst[i] = src[i] + bias


def _dots4_taps3(gbuf, g_start, g_stride, x0, x1, x2, gw, c0, ci, ky, kx, length):
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


def _dots8_taps3(gbuf, g_start, g_stride, x0, x1, x2, gw, c0, ci, ky, kx, length):
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


def _dots8_taps1(gbuf, g_start, g_stride, x0, gw, c0, ci, ky, kx, length):
    # 8 dot products in one pass: gw[c0 + c, ci, ky, kx] += <g[c], x0>, c < 8: the tap left over
    # when kW is not a multiple of 3 (the 4x4 kernels of the folded resizes), 9 loads per 8 FMAs.
    # The 8 row slices are spelled out as in _dots8_taps3: taking them from a shared helper that
    # returns a tuple ran the weight gradients 2-5% slower (measured side by side, 15 rounds).
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


def _dots1_taps3(g0, x0, x1, x2, gw, c, ci, ky, kx, length):
    # 3 dot products in one pass: gw[c, ci, ky, kx + t] += <g0, x_t>, t < 3 (for a g with
    # fewer than 4 channels left: 4 loads per 3 FMAs instead of 6 with three _dot1 passes)
    s0, s1, s2 = gw[c, ci, ky, kx], gw[c, ci, ky, kx + 1], gw[c, ci, ky, kx + 2]
    for p in range(length):
        f = g0[p]
        s0 += f * x0[p]
        s1 += f * x1[p]
        s2 += f * x2[p]
    gw[c, ci, ky, kx], gw[c, ci, ky, kx + 1], gw[c, ci, ky, kx + 2] = s0, s1, s2


def _dot1(g0, x0, gw, c, ci, ky, kx, length):
    s = gw[c, ci, ky, kx]
    for p in range(length):
        s += g0[p] * x0[p]
    gw[c, ci, ky, kx] = s


_dots4_taps3 = cpu_kernel_serial(_dots4_taps3, fastmath=_FMA_REDUCE)
_dot1 = cpu_kernel_serial(_dot1, fastmath=_FMA_REDUCE)
_dots1_taps3 = cpu_kernel_serial(_dots1_taps3, fastmath=_FMA_REDUCE)
_dots8_taps1 = cpu_kernel_serial(_dots8_taps1, fastmath=_FMA_REDUCE)
_dots8_taps3 = cpu_kernel_serial(_dots8_taps3, fastmath=_FMA_REDUCE)


def _weight_task(task, gbuf, buf, partial, n_, sh, sw, hq, wq, chunk):
    # gbuf: packed g (A, 1, 1, N, Hq, Wq), zero outside (outH, outW); buf: packed x
    # (B, sH, sW, N, Hq, Wq) + slack; partial: (tasks, A, B, kH, kW) zeros.
    # One task = one chunk of positions (of the flattened N*Hq*Wq planes), ALL channel pairs:
    # the chunk's rows of g and x (A + B*sH*sW rows of `chunk` values) stay in L2 while every
    # (4 rows of g, 1 channel of x) pair is reduced over them, so g and x are read from memory
    # once; the partial sums of the chunks are added up afterwards.
    _, c_out, c_in, k_h, k_w = partial.shape
    gw = partial[task]
    total = n_ * hq * wq
    q0 = task * chunk
    length = min(chunk, total - q0)
    c0 = 0
    while c0 < c_out:
        # 8 rows of g per pass while there are 8 left, then 4, then one at a time
        channels = 8 if c_out - c0 >= 8 else min(4, c_out - c0)
        g_start = c0 * total + q0
        for ci in range(c_in):
            for ky in range(k_h):
                kx = 0
                while kx < k_w:
                    taps = 3 if kx + 3 <= k_w else 1
                    # where tap (ky, kx + t) starts in the packed x: phase plane, then shift
                    o0 = ((ci * sh + ky % sh) * sw + kx % sw) * total + q0 + (ky // sh) * wq + kx // sw
                    x0 = buf[o0:o0 + length]
                    if taps == 3:
                        o1 = ((ci * sh + ky % sh) * sw + (kx + 1) % sw) * total + q0 \
                            + (ky // sh) * wq + (kx + 1) // sw
                        o2 = ((ci * sh + ky % sh) * sw + (kx + 2) % sw) * total + q0 \
                            + (ky // sh) * wq + (kx + 2) // sw
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


_pack_task = cpu_kernel_serial(_pack_task)
_add_bias_row = cpu_kernel_serial(_add_bias_row)
_gather_task = cpu_kernel_serial(_gather_task, fastmath=_FMA)
_weight_task = cpu_kernel_serial(_weight_task, fastmath=_FMA_REDUCE)


def _pack_loops(x, buf, top, left, sh, sw, hq, wq):
    for task in prange(x.shape[0] * x.shape[1]):
        _pack_task(task, x, buf, top, left, sh, sw, hq, wq)


def _gather_loops(buf, w, b, y, n_, sh, sw, hq, wq, block,
                  out_h, out_w, y_rows, y_cols, y_row0, y_col0, y_row_step, y_col_step):
    tasks = -(-n_ // block) * ((w.shape[0] + 3) // 4)   # (image block, 4 output channels)
    for task in prange(tasks):
        _gather_task(task, buf, w, b, y, n_, sh, sw, hq, wq, block,
                     out_h, out_w, y_rows, y_cols, y_row0, y_col0, y_row_step, y_col_step)


def _weight_loops(gbuf, buf, partial, n_, sh, sw, hq, wq, chunk):
    for task in prange(partial.shape[0]):                 # one chunk of positions each
        _weight_task(task, gbuf, buf, partial, n_, sh, sw, hq, wq, chunk)


_pack_loops = cpu_kernel(_pack_loops)
_gather_loops = cpu_kernel(_gather_loops)
_weight_loops = cpu_kernel(_weight_loops)


def _pack(x, top, left, stride, hq, wq):
    """Packed, zero-padded, channel-major copy of x (see the docstring) with slack at the end."""
    sh, sw = stride
    n_, c_ = x.shape[0], x.shape[1]
    size = c_ * sh * sw * n_ * hq * wq
    buf = memory.empty(size + hq * wq + _ROUND, x.dtype)
    buf[size:] = 0
    _pack_loops(np.ascontiguousarray(x), buf, top, left, sh, sw, hq, wq)
    return buf


def _image_block(n_, plane, c_blocks):
    """Images per task: about _POSITIONS_PER_PASS positions, but keep >= 8 tasks for 2+ threads."""
    block = max(1, min(n_, _POSITIONS_PER_PASS // plane))
    while block > 1 and -(-n_ // block) * c_blocks < 8:
        block //= 2
    return block


def _weight_chunk(total, rows):
    """Positions per weight-gradient task: the chunk's `rows` rows of g and x fill about half of
    a 2 MiB L2 (in float32), and there are at least 8 tasks so 2+ threads share the work."""
    chunk = min(max(_L2_VALUES // rows, 256), 8192, max(-(-total // 8), 32))
    return -(-chunk // _ROUND) * _ROUND


def _gather_into(y_flat, y_shape, x, w, b, stride, pads, out_hw, offset=(0, 0), step=(1, 1)):
    """Run the packed conv2d loops; results land at y[.., offset + i*step] of the flat y."""
    if offset == (0, 0) and step == (1, 1) and uses_winograd(w.shape, stride):
        gather_winograd(x, w, b, pads, out_hw, y=y_flat.reshape(y_shape))
        return
    sh, sw = stride
    k_h, k_w = w.shape[2], w.shape[3]
    oh, ow = out_hw
    hq, wq = oh + (k_h - 1) // sh, ow + (k_w - 1) // sw
    buf = _pack(x, pads[0], pads[1], stride, hq, wq)
    w = np.ascontiguousarray(w, dtype=x.dtype)
    b = _bias_or_zeros(np, b, w.shape[0], x.dtype)
    n_ = x.shape[0]
    block = _image_block(n_, hq * wq, (w.shape[0] + 3) // 4)
    _gather_loops(buf, w, b, y_flat, n_, sh, sw, hq, wq, block, oh, ow,
                  y_shape[2], y_shape[3], offset[0], offset[1], step[0], step[1])


def gather_numba(x, w, b, stride, pads, out_hw):
    y = memory.empty((x.shape[0], w.shape[0]) + tuple(out_hw), x.dtype)
    _gather_into(y.reshape(-1), y.shape, x, w, b, stride, pads, out_hw)
    return y


def scatter_numba(x, w, b, stride, pads, out_hw):
    """Transposed conv as sH*sW stride-1 conv2d's, one per output phase (no scatter at all).

    Full-result row fy = oy + top = iy*sH + ky.  Output rows with fy % sH == ry only meet taps
    ky = ry + sH*j, at input rows iy = fy//sH - j: a stride-1 correlation of x with the
    flipped sub-kernel w[:, :, ry::sH][..., ::-1], written to every sH-th output row.
    """
    sh, sw = stride
    top, left = pads
    c_out = w.shape[1]
    oh, ow = out_hw
    y = memory.empty((x.shape[0], c_out, oh, ow), x.dtype)
    y_flat = y.reshape(-1)
    for ry in range(sh):
        oy0 = (ry - top) % sh            # first output row of this phase
        rows = -(-(oh - oy0) // sh)
        for rx in range(sw):
            ox0 = (rx - left) % sw
            cols = -(-(ow - ox0) // sw)
            if rows <= 0 or cols <= 0:
                continue
            sub = w[:, :, ry::sh, rx::sw]
            if sub.shape[2] == 0 or sub.shape[3] == 0:   # kernel < stride: rows get only the bias
                y[:, :, oy0::sh, ox0::sw] = 0 if b is None else b.reshape(1, -1, 1, 1)
                continue
            sub = np.ascontiguousarray(sub[:, :, ::-1, ::-1].transpose(1, 0, 2, 3))
            m0, l0 = (oy0 + top - ry) // sh, (ox0 + left - rx) // sw
            _gather_into(y_flat, y.shape, x, sub, b, (1, 1),
                         (sub.shape[2] - 1 - m0, sub.shape[3] - 1 - l0), (rows, cols),
                         offset=(oy0, ox0), step=(sh, sw))
    return y


def weight_numba(g, x, stride, pads, kernel_hw):
    sh, sw = stride
    k_h, k_w = kernel_hw
    oh, ow = g.shape[2], g.shape[3]
    hq, wq = oh + (k_h - 1) // sh, ow + (k_w - 1) // sw
    buf = _pack(x, pads[0], pads[1], stride, hq, wq)
    gbuf = _pack(g, 0, 0, (1, 1), hq, wq)
    c_a, c_b = g.shape[1], x.shape[1]
    chunk = _weight_chunk(x.shape[0] * hq * wq, c_a + c_b * sh * sw)
    tasks = -(-(x.shape[0] * hq * wq) // chunk)
    partial = memory.zeros((tasks, c_a, c_b, k_h, k_w), x.dtype)
    _weight_loops(gbuf, buf, partial, x.shape[0], sh, sw, hq, wq, chunk)
    return partial.sum(axis=0)


def _bias_task(task, g, partial, block):
    # g: (N, C, H*W); partial: (blocks, C) float64. One task = (a block of images, a channel).
    # Each plane is summed in the array's dtype (a vectorized reduction), the planes in float64.
    n_, c_, plane = g.shape
    nb = task // c_
    c = task - nb * c_
    total = 0.0
    for n in range(nb * block, min((nb + 1) * block, n_)):
        row = g[n, c]
        s = row.dtype.type(0)
        for p in range(plane):
            s += row[p]
        total += s
    partial[nb, c] = total


_bias_task = cpu_kernel_serial(_bias_task, fastmath=_FMA_REDUCE)


def _bias_loops(g, partial, block):
    for task in prange(partial.shape[0] * partial.shape[1]):     # (image block, channel)
        _bias_task(task, g, partial, block)


_bias_loops = cpu_kernel(_bias_loops)


def bias_backward_numba(grad_y):
    """conv2d_backward_bias in one parallel pass (NumPy's strided sum over N, H, W is one core)."""
    if grad_y.size <= SERIAL_MAX_VALUES:      # too small to wake the thread pool for
        return bias_backward_ref(grad_y)
    n_, c_ = grad_y.shape[:2]
    block = max(1, -(-n_ // 8))                                   # 8 image blocks: 2+ cores busy
    partial = np.empty((-(-n_ // block), c_), np.float64)
    _bias_loops(np.ascontiguousarray(grad_y).reshape(n_, c_, -1), partial, block)
    return partial.sum(axis=0).astype(grad_y.dtype)


# ----------------------------------------------------------------------------------------------
# numba cpu, Winograd F(2x2, 3x3): 3x3 stride-1 convs with many channels (see the docstring)
# ----------------------------------------------------------------------------------------------
#
# A 2x2 block ("tile") of outputs needs a 4x4 patch d of the padded input. Winograd's identity
#     y_tile = A^T [ (G w G^T) (.) (B^T d B) ] A        ((.) = elementwise, on 4x4 = 16 values)
# turns the 36 multiply-adds per tile and channel pair into 16: the 16 "components" xi of the
# transformed input V = B^T d B and weight U = G w G^T multiply elementwise, summed over input
# channels, which is 16 independent small GEMMs  M[xi] (Cout x tiles) = U[xi] (Cout x Cin) . V[xi].
#     B^T = [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]]
#     G   = [[1, 0, 0], [1/2, 1/2, 1/2], [1/2, -1/2, 1/2], [0, 0, 1]]
#     A^T = [[1, 1, 1, 0], [0, 1, -1, -1]]
# The transforms are additions only; in float64 the results match the direct sum to ~1e-14.
#
# Layout: images go in blocks of _WINO_IMAGES, and the image index is the innermost, contiguous
# axis of every buffer, so every loop below runs over (tile, image) positions, however small the
# image: xq (blocks, Cin, Hq, 2, Wq/2, NB) holds each padded row as its even columns then its
# odd columns, so the 4 columns 2q..2q+3 of tile q are, at position p = q*NB + j, the slices
# even[p], odd[p], even[p + NB], odd[p + NB] -- contiguous in p. One task = one block of
# images x a few tile rows; its V (16*Cin rows) and M (16*Cout rows) stay in the core's L2.

_WINO_IMAGES = 16            # images per block: two 8-wide float32 vectors per (tile, channel)
_WINO_POSITIONS = 512        # (tile, image) positions per task, about: V and M rows fit in L2

_WINOGRAD_G = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]])

# The Winograd path is taken for 3x3 stride-1 convs with at least this many input AND output
# channels: below it the transforms cost more than the multiplications they save (1->32 and
# 32->1 on 28x28 were 1.5-2x slower than the direct loops; 16->16 on 7x7 was a tie).
WINOGRAD_MIN_CHANNELS = 8


def uses_winograd(w_shape, stride):
    """True when conv2d with this weight shape (Cout, Cin, kH, kW) and stride runs Winograd."""
    c_out, c_in, k_h, k_w = w_shape
    return ((k_h, k_w) == (3, 3) and tuple(stride) == (1, 1)
            and min(c_in, c_out) >= WINOGRAD_MIN_CHANNELS)


def _winograd_weight_tiles(w):
    """U = G w G^T per channel pair, cut into the (4 output x 9 input channel) tiles the
    _rows4_taps9 kernel takes: (16, ceil(Cout/4), ceil(Cin/9), 4, 9), zero where padded."""
    c_out, c_in = w.shape[:2]
    u = np.einsum("ak,oikl,bl->aboi", _WINOGRAD_G, w.astype(np.float64),
                  _WINOGRAD_G).reshape(16, c_out, c_in)                 # (xi, Cout, Cin)
    tiles = np.zeros((16, -(-c_out // 4) * 4, -(-c_in // 9) * 9), w.dtype)
    tiles[:, :c_out, :c_in] = u
    tiles = tiles.reshape(16, -1, 4, tiles.shape[2] // 9, 9).transpose(0, 1, 3, 2, 4)
    return np.ascontiguousarray(tiles)


def _wino_pack_task(task, x, xq, top, left):
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
            # (a 64-byte line per column); one image per step stored every NB-th value instead,
            # and the pack took 1.8-2x longer (5.7 -> 3.1 ms for (200, 32, 28, 28), side by side).
            src = x[blk * _WINO_IMAGES:blk * _WINO_IMAGES + images, c, r - top]   # (images, W)
            for q in range(q0, q1):
                out = dst[q]
                col = 2 * q + k - left
                for j in range(images):
                    out[j] = src[j, col]


def _wino_input_transform(plane, scratch, v, ci, c_in, a, col0, length):
    # V = B^T d B for tile row `a` of one channel, written to v[xi*Cin + ci, col0:col0 + length].
    # plane: (Hq, 2*Wq2*NB) one channel of one image block; scratch: (4, 2*Wq2*NB).
    # Two passes, each over few arrays: LLVM vectorizes a loop only when the runtime overlap
    # checks between its arrays are few (one pass with 16 outputs and 8 inputs stayed scalar).
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


def _wino_output_transform(m, out, co, c_out, col0, length):
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


def _wino_task(task, xq, u_tiles, b, y, tile_rows, tile_cols, rows_per_task):
    # One task = one block of images x `rows_per_task` tile rows, all channels.
    # xq: packed input (see _wino_pack_task); u_tiles: (16, Cout/4, Cin/9, 4, 9); y: (N, Cout, oh, ow)
    blocks, c_in, hq, _, wq2, nb = xq.shape
    n_, c_out, oh, ow = y.shape
    row_groups = -(-tile_rows // rows_per_task)
    blk = task // row_groups
    a0 = (task - blk * row_groups) * rows_per_task
    rows_here = min(rows_per_task, tile_rows - a0)
    per_row = tile_cols * nb
    length = rows_here * per_row                               # (tile, image) positions
    # 1. V = B^T d B: (16*Cin, length)
    v = np.empty((16 * c_in, length), xq.dtype)
    scratch = np.empty((4, 2 * wq2 * nb), xq.dtype)
    for r in range(rows_here):
        for ci in range(c_in):
            _wino_input_transform(xq[blk, ci].reshape(hq, 2 * wq2 * nb), scratch, v, ci, c_in,
                                  a0 + r, r * per_row, per_row)
    # 2. M[xi] = U[xi] . V[xi]: (16*Cout, length), 4 output x 9 input channels per pass
    m = np.zeros((16 * c_out, length), xq.dtype)
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


_wino_pack_task = cpu_kernel_serial(_wino_pack_task)
_wino_input_transform = cpu_kernel_serial(_wino_input_transform)
_wino_output_transform = cpu_kernel_serial(_wino_output_transform)
_wino_task = cpu_kernel_serial(_wino_task, fastmath=_FMA)


def _wino_pack_loops(x, xq, top, left):
    for task in prange(xq.shape[0] * xq.shape[1]):            # (image block, channel)
        _wino_pack_task(task, x, xq, top, left)


def _wino_loops(xq, u_tiles, b, y, tile_rows, tile_cols, rows_per_task):
    for task in prange(xq.shape[0] * -(-tile_rows // rows_per_task)):   # (block, tile rows)
        _wino_task(task, xq, u_tiles, b, y, tile_rows, tile_cols, rows_per_task)


_wino_pack_loops = cpu_kernel(_wino_pack_loops)
_wino_loops = cpu_kernel(_wino_loops)


def gather_winograd(x, w, b, pads, out_hw, y=None):
    """conv2d of a 3x3 kernel at stride 1 by Winograd F(2x2, 3x3) (same result as gather_numba).

    x: (N, Cin, H, W), w: (Cout, Cin, 3, 3), pads: (top, left); writes/returns y (N, Cout, oh, ow).
    """
    n_, c_in = x.shape[:2]
    oh, ow = out_hw
    tile_rows, tile_cols = -(-oh // 2), -(-ow // 2)
    blocks = -(-n_ // _WINO_IMAGES)
    # padded input rows 2a..2a+3 for tile rows a < tile_rows; columns likewise, split by parity
    xq = memory.empty((blocks, c_in, 2 * tile_rows + 2, 2, tile_cols + 1, _WINO_IMAGES), x.dtype)
    _wino_pack_loops(np.ascontiguousarray(x), xq, pads[0], pads[1])
    u_tiles = _winograd_weight_tiles(np.asarray(w, dtype=x.dtype))
    b = _bias_or_zeros(np, b, w.shape[0], x.dtype)
    if y is None:
        y = memory.empty((n_, w.shape[0], oh, ow), x.dtype)
    rows_per_task = max(1, _WINO_POSITIONS // (tile_cols * _WINO_IMAGES))
    _wino_loops(xq, u_tiles, b, y, tile_rows, tile_cols, rows_per_task)
    return y


NUMBA_TIER = _gather_loops is not None
if NUMBA_TIER:
    register_conv2d_tier("numba", gather_numba, scatter_numba, weight_numba)
    register("conv2d_backward_bias", "numba")(bias_backward_numba)


# ----------------------------------------------------------------------------------------------
# numba cuda: one thread per output element, gathers only (no atomics)
# ----------------------------------------------------------------------------------------------

def _gather_kernel(x, w, b, y, sh, sw, top, left):
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


def _scatter_kernel(x, w, b, y, sh, sw, top, left):
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


def _weight_kernel(g, x, gw, sh, sw, top, left):
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


_gather_kernel = cuda_kernel(_gather_kernel)
_scatter_kernel = cuda_kernel(_scatter_kernel)
_weight_kernel = cuda_kernel(_weight_kernel)


def gather_cuda(x, w, b, stride, pads, out_hw):
    xp = array_module_of(x)
    x = xp.ascontiguousarray(x)
    w = xp.ascontiguousarray(w, dtype=x.dtype)
    y = xp.empty((x.shape[0], w.shape[0]) + tuple(out_hw), dtype=x.dtype)
    launch_1d(_gather_kernel, y.size, x, w, _bias_or_zeros(xp, b, w.shape[0], x.dtype), y,
              stride[0], stride[1], pads[0], pads[1])
    return y


def scatter_cuda(x, w, b, stride, pads, out_hw):
    xp = array_module_of(x)
    x = xp.ascontiguousarray(x)
    w = xp.ascontiguousarray(w, dtype=x.dtype)
    y = xp.empty((x.shape[0], w.shape[1]) + tuple(out_hw), dtype=x.dtype)
    launch_1d(_scatter_kernel, y.size, x, w, _bias_or_zeros(xp, b, w.shape[1], x.dtype), y,
              stride[0], stride[1], pads[0], pads[1])
    return y


def weight_cuda(g, x, stride, pads, kernel_hw):
    xp = array_module_of(x)
    g = xp.ascontiguousarray(g)
    x = xp.ascontiguousarray(x, dtype=g.dtype)
    gw = xp.zeros((g.shape[1], x.shape[1]) + tuple(kernel_hw), dtype=g.dtype)
    launch_1d(_weight_kernel, gw.size, g, x, gw, stride[0], stride[1], pads[0], pads[1])
    return gw


CUDA_TIER = _gather_kernel is not None
if CUDA_TIER:
    register_conv2d_tier("cuda", gather_cuda, scatter_cuda, weight_cuda)
    # The bias gradient on the GPU is the reference's reduction on the CuPy array: CuPy runs
    # it as its own tuned reduction kernel, which a hand-written one would only repeat.
    register("conv2d_backward_bias", "cuda")(bias_backward_ref)
