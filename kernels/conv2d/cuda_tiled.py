"""conv2d numba.cuda tier, version 2: every conv pass as a tiled matrix product (implicit GEMM).

Each pass is C = A @ B with A and B never built in memory: the kernel reads their elements
straight from x, w or grad_y (one small loader per operand; see each pass below).

    pass                  C (rows x columns)           K (the sum)         A[m, k]     B[k, j]
    conv2d forward        (n, oy, ox) x Cout/G         (ci, ky, kx)        x window    w
    transposed conv       (n, oy, ox) x Cout/G,        (ci, ky, kx), the   x           w
      (= conv2d's input   one phase (oy % sH, ox % sW) taps that reach
       gradient)          at a time                    that phase
    weight gradient       (c, ky, kx) x Cout/G         (n, i, j), split    x window    grad_y
                                                        into chunks

The tiling, the same for every pass: a block of 16 x 16 threads owns a 64 x 32 tile of C. It
walks K in steps of 16: all 256 threads copy the next 16 x 64 slab of A and 16 x 32 slab of B into
shared memory (each value read from global memory once per block instead of once per output),
wait, and then each thread multiplies from shared memory into its own 4 x 2 outputs held in
registers (register blocking: 6 shared-memory reads per 8 multiply-adds instead of 16). Thread
(tx, ty) owns rows tx + 16*i and columns ty + 16*j, so a warp's stores cover 16 consecutive
output pixels: coalesced. A C too small to give the GPU MIN_BLOCKS blocks of 64 rows (the
CAE's 7x7 convs) takes tiles of 32 rows instead, 2 x 2 outputs a thread.

The grid's third axis is a "plane": a group (forward), a group and a stride phase (transposed:
restricted to one phase, K holds only the taps that reach it, so a stride-2 transposed conv
multiplies no structural zeros), or a group and a chunk of K (the weight gradient). The weight
gradient's K (every image and pixel) is long and its C small, so K is split into chunks that
give the GPU enough blocks; each chunk writes its partial sums to a scratch buffer, and a second
kernel adds the chunks in chunk order: no atomics, the same bits run after run, and the same
bits for a given shape on any GPU (the chunking depends on the shape only).

Index arithmetic is unsigned 32-bit when every size allows (compile.needs_wide_index), else
64-bit: `wide` is a kernel argument, the same for every thread. The 1-D kernels of cuda.py are
version 1 (one thread per output), kept to read and to compare; kernels/NOTES.md, "cuda conv".
"""

import functools
import math

import numpy as np

from ..compile import (array_module_of, cuda, cuda_device, launch, launch_1d, needs_wide_index,
                       split_index, split_pair)
from .cuda import bias_argument, first_tap

TILE_M, TILE_N, TILE_K = 64, 32, 16          # a block's tile of C, and its step along K
SMALL_TILE_M = 32                            # the tile for a C too small to fill the GPU
THREADS_X, THREADS_Y = 16, 16                # threads per block: 256
THREADS = THREADS_X * THREADS_Y
PER_THREAD_N = TILE_N // THREADS_Y           # each thread's register block: 4 (or 2) x 2 outputs
B_LOADS = TILE_K * TILE_N // THREADS         # B values each thread copies per step: 2

# A grid with fewer blocks than this (4 per SM on a 132-SM GPU) takes the small tile.
MIN_BLOCKS = 512

# The weight gradient's split of K: enough chunks for this many blocks in all (8 per SM on a
# 132-SM GPU), each chunk at least MIN_CHUNK_STEPS steps of TILE_K long.
TARGET_BLOCKS = 1024
MIN_CHUNK_STEPS = 4


# ------------------------------------------------------------------------------------------------
# the launch configuration, in one place (tests/kernels/test_conv_cuda.py checks it)
# ------------------------------------------------------------------------------------------------

def tiled_grid(rows, columns, planes, tile_m=TILE_M):
    """Blocks (x, y, z) covering a C of `rows` x `columns` in each of `planes` planes."""
    return (math.ceil(rows / tile_m), math.ceil(columns / TILE_N), planes)


def choose_tile_m(rows, columns, planes):
    """TILE_M, or SMALL_TILE_M when the big tile would leave the GPU short of blocks."""
    grid = tiled_grid(rows, columns, planes)
    return TILE_M if grid[0] * grid[1] * grid[2] >= MIN_BLOCKS else SMALL_TILE_M


def weight_chunks(rows, columns, groups, k_total):
    """(chunks, chunk_length) splitting the weight gradient's K = k_total: about TARGET_BLOCKS
    blocks in all, each chunk a multiple of TILE_K and at least MIN_CHUNK_STEPS steps long."""
    tiles = math.ceil(rows / TILE_M) * math.ceil(columns / TILE_N) * groups
    steps = math.ceil(k_total / TILE_K)
    chunks = max(1, min(math.ceil(TARGET_BLOCKS / tiles), steps // MIN_CHUNK_STEPS))
    length = math.ceil(steps / chunks) * TILE_K
    return math.ceil(k_total / length), length


# ------------------------------------------------------------------------------------------------
# the one tiled product; each pass gives its loaders (device functions, compiled into it)
# ------------------------------------------------------------------------------------------------

def tiled_product_kernel(name, plane_info, a_row, a_at, b_at, store, dtype, tile_m):
    """A kernel (named `name`) computing C = A @ B in tiles of tile_m x TILE_N, for one pass:

    plane_info(geo, plane)            -> info: (rows, columns, k_begin, k_end, ...) of the plane
    a_row(geo, info, m, wide)         -> what a thread's A row m needs, decoded once
    a_at(a, geo, info, row, k, wide, zero) -> A[m, k] (zero outside the image)
    b_at(b, geo, info, k, j, wide)    -> B[k, j]
    store(c, extra, geo, info, m, j, value, wide)
    """
    zero = dtype(0)
    per_thread_m = tile_m // THREADS_X           # this thread's rows tx + 16*i, i < per_thread_m
    a_loads = TILE_K * tile_m // THREADS         # A values each thread copies per step
    a_row_step = THREADS // tile_m               # a thread copies A's row tid % tile_m, at k
                                                 # rows tid // tile_m + a_row_step * r

    def kernel(a, b, c, extra, geo, wide):
        tx, ty = cuda.threadIdx.x, cuda.threadIdx.y
        tid = ty * THREADS_X + tx
        info = plane_info(geo, cuda.blockIdx.z)
        rows, columns, k_begin, k_end = info[0], info[1], info[2], info[3]
        m0 = cuda.blockIdx.x * tile_m
        j0 = cuda.blockIdx.y * TILE_N
        if m0 >= rows or j0 >= columns:    # the whole block: planes differ in rows
            return
        a_slab = cuda.shared.array((TILE_K, tile_m), dtype)
        b_slab = cuda.shared.array((TILE_K, TILE_N), dtype)
        acc = cuda.local.array((per_thread_m, PER_THREAD_N), dtype)
        a_reg = cuda.local.array(per_thread_m, dtype)
        b_reg = cuda.local.array(PER_THREAD_N, dtype)
        for i in range(per_thread_m):
            for j in range(PER_THREAD_N):
                acc[i, j] = zero
        load_m = m0 + tid % tile_m                      # the A row this thread copies
        row = a_row(geo, info, load_m, wide)
        for k0 in range(k_begin, k_end, TILE_K):
            for r in range(a_loads):                    # A slab: (TILE_K, tile_m)
                kk = tid // tile_m + r * a_row_step
                value = zero
                if load_m < rows and k0 + kk < k_end:
                    value = a_at(a, geo, info, row, k0 + kk, wide, zero)
                a_slab[kk, tid % tile_m] = value
            for r in range(B_LOADS):                    # B slab: (TILE_K, TILE_N), k fastest
                e = tid + r * THREADS
                kk, jj = e % TILE_K, e // TILE_K
                value = zero
                if k0 + kk < k_end and j0 + jj < columns:
                    value = b_at(b, geo, info, k0 + kk, j0 + jj, wide)
                b_slab[kk, jj] = value
            cuda.syncthreads()
            for kk in range(TILE_K):
                for i in range(per_thread_m):
                    a_reg[i] = a_slab[kk, tx + THREADS_X * i]
                for j in range(PER_THREAD_N):
                    b_reg[j] = b_slab[kk, ty + THREADS_Y * j]
                for i in range(per_thread_m):
                    for j in range(PER_THREAD_N):
                        acc[i, j] += a_reg[i] * b_reg[j]
            cuda.syncthreads()
        for i in range(per_thread_m):
            m = m0 + tx + THREADS_X * i
            if m < rows:
                for j in range(PER_THREAD_N):
                    column = j0 + ty + THREADS_Y * j
                    if column < columns:
                        store(c, extra, geo, info, m, column, acc[i, j], wide)

    kernel.__name__ = kernel.__qualname__ = name     # the name profilers and PTX show
    return cuda.jit(kernel)


# ------------------------------------------------------------------------------------------------
# conv2d forward: C[(n, oy, ox), co] = sum over (ci, ky, kx) of x[n, ci, window] * w[co, ci, ky, kx]
# geo = (N, Cin/G, H, W, Cout/G, kH, kW, oH, oW, sH, sW, top, left, dH, dW, has_bias)
# ------------------------------------------------------------------------------------------------

@cuda_device
def forward_plane(geo, group):
    n, c_in_g, k_h, k_w, c_out_g, out_h, out_w = geo[0], geo[1], geo[5], geo[6], geo[4], geo[7], geo[8]
    return (n * out_h * out_w, c_out_g, 0, c_in_g * k_h * k_w, group)


@cuda_device
def forward_a_row(geo, info, m, wide):
    # output pixel m -> (n, first input row of its window, first input column)
    n, oy, ox = split_index(m, geo[7], geo[8], wide)
    return (n, oy * geo[9] - geo[11], ox * geo[10] - geo[12])


@cuda_device
def forward_a_at(x, geo, info, row, k, wide, zero):
    ci, ky, kx = split_index(k, geo[5], geo[6], wide)
    iy = row[1] + ky * geo[13]
    ix = row[2] + kx * geo[14]
    if iy >= 0 and iy < geo[2] and ix >= 0 and ix < geo[3]:
        return x[row[0], info[4] * geo[1] + ci, iy, ix]
    return zero


@cuda_device
def forward_b_at(w2, geo, info, k, j, wide):
    return w2[info[4] * geo[4] + j, k]                  # w as (Cout, Cin/G * kH * kW)


@cuda_device
def forward_store(y3, bias, geo, info, m, j, value, wide):
    n, pixel = split_pair(m, geo[7] * geo[8], wide)     # y as (N, Cout, oH * oW)
    co = info[4] * geo[4] + j
    if geo[15]:
        value += bias[co]
    y3[n, co, pixel] = value


# ------------------------------------------------------------------------------------------------
# transposed conv, one stride phase (py, px) of the output per plane:
# C[(n, qy, qx), co] with oy = oy0 + qy*sH, over the taps ky = first_h + t*every_h that reach
# row oy (oy + top - ky*dH divisible by sH), likewise for columns; iy = (oy + top - ky*dH) / sH.
# geo = (N, Cin/G, H, W, Cout/G, kH, kW, oH, oW, sH, sW, top, left, dH, dW, has_bias,
#        every_h, every_w)
# ------------------------------------------------------------------------------------------------

@cuda_device
def phase_axis(phase, stride, pad, dilation, kernel, every, out):
    """One axis of a phase: (first output row o0, rows, first tap, taps) of the rows o with
    (o + pad) % stride == phase (all values >= 0: unsigned division)."""
    o0 = split_pair(phase + stride - split_pair(pad, stride, False)[1], stride, False)[1]
    count = split_pair(out - o0 + stride - 1, stride, False)[0] if o0 < out else 0
    first = first_tap(phase, stride, dilation, kernel)
    taps = split_pair(kernel - first + every - 1, every, False)[0] if first < kernel else 0
    return o0, count, first, taps


@cuda_device
def transposed_plane(geo, plane):
    group, phase = split_pair(plane, geo[9] * geo[10], False)
    phase_h, phase_w = split_pair(phase, geo[10], False)
    oy0, rows_h, first_h, taps_h = phase_axis(phase_h, geo[9], geo[11], geo[13], geo[5],
                                              geo[16], geo[7])
    ox0, rows_w, first_w, taps_w = phase_axis(phase_w, geo[10], geo[12], geo[14], geo[6],
                                              geo[17], geo[8])
    return (geo[0] * rows_h * rows_w, geo[4], 0, geo[1] * taps_h * taps_w, group,
            oy0, rows_h, first_h, taps_h, ox0, rows_w, first_w, taps_w)


@cuda_device
def transposed_a_row(geo, info, m, wide):
    n, qy, qx = split_index(m, info[6], info[10], wide)
    return (n, info[5] + qy * geo[9] + geo[11], info[9] + qx * geo[10] + geo[12])  # padded row, col


@cuda_device
def transposed_a_at(x, geo, info, row, k, wide, zero):
    ci, ty, tx = split_index(k, info[8], info[12], wide)
    fy = row[1] - (info[7] + ty * geo[16]) * geo[13]    # divisible by sH by the phase's choice
    fx = row[2] - (info[11] + tx * geo[17]) * geo[14]
    if fy >= 0 and fx >= 0:
        iy = split_pair(fy, geo[9], wide)[0]            # fy // sH, on unsigned values
        ix = split_pair(fx, geo[10], wide)[0]
        if iy < geo[2] and ix < geo[3]:
            return x[row[0], info[4] * geo[1] + ci, iy, ix]
    return zero


@cuda_device
def transposed_b_at(w, geo, info, k, j, wide):
    ci, ty, tx = split_index(k, info[8], info[12], wide)
    return w[info[4] * geo[1] + ci, j, info[7] + ty * geo[16], info[11] + tx * geo[17]]


@cuda_device
def transposed_store(y, bias, geo, info, m, j, value, wide):
    n, qy, qx = split_index(m, info[6], info[10], wide)
    co = info[4] * geo[4] + j
    if geo[15]:
        value += bias[co]
    y[n, co, info[5] + qy * geo[9], info[9] + qx * geo[10]] = value


# ------------------------------------------------------------------------------------------------
# weight gradient, K split into chunks: C[(c, ky, kx), a] over (n, i, j) in one chunk
#   = sum of x[n, c, i*sH + ky*dH - top, j*sW + kx*dW - left] * grad_y[n, a, i, j]
# plane = group * chunks + chunk; partial sums to scratch (chunks, Cout, Cin/G * kH * kW)
# geo = (N, Cin/G, H, W, Cout/G, kH, kW, oH, oW, sH, sW, top, left, dH, dW, chunks, chunk_length)
# ------------------------------------------------------------------------------------------------

@cuda_device
def weight_plane(geo, plane):
    group, chunk = split_pair(plane, geo[15], False)
    k_total = geo[0] * geo[7] * geo[8]
    k_begin = chunk * geo[16]
    return (geo[1] * geo[5] * geo[6], geo[4], k_begin, min(k_begin + geo[16], k_total),
            group, chunk)


@cuda_device
def weight_a_row(geo, info, m, wide):
    c, ky, kx = split_index(m, geo[5], geo[6], wide)
    return (info[4] * geo[1] + c, ky * geo[13] - geo[11], kx * geo[14] - geo[12])


@cuda_device
def weight_a_at(x, geo, info, row, k, wide, zero):
    n, i, j = split_index(k, geo[7], geo[8], wide)
    iy = i * geo[9] + row[1]
    ix = j * geo[10] + row[2]
    if iy >= 0 and iy < geo[2] and ix >= 0 and ix < geo[3]:
        return x[n, row[0], iy, ix]
    return zero


@cuda_device
def weight_b_at(g3, geo, info, k, j, wide):
    n, pixel = split_pair(k, geo[7] * geo[8], wide)    # grad_y as (N, Cout, oH * oW)
    return g3[n, info[4] * geo[4] + j, pixel]


@cuda_device
def weight_store(scratch, unused, geo, info, m, j, value, wide):     # unused: no bias here
    scratch[info[5], info[4] * geo[4] + j, m] = value


def chunk_sum_kernel(scratch, gw, total, chunks):
    # gw[e] = scratch[0, e] + scratch[1, e] + ... in chunk order: the same bits every run
    e = cuda.grid(1)
    if e >= total:
        return
    acc = scratch[0, e]
    for chunk in range(1, chunks):
        acc += scratch[chunk, e]
    gw[e] = acc


_chunk_sum_kernel = cuda.jit(chunk_sum_kernel) if cuda is not None else None


# ------------------------------------------------------------------------------------------------
# the launchers: one kernel per pass and dtype, compiled on first use
# ------------------------------------------------------------------------------------------------

PASSES = {
    "forward": (forward_plane, forward_a_row, forward_a_at, forward_b_at, forward_store),
    "transposed": (transposed_plane, transposed_a_row, transposed_a_at, transposed_b_at,
                   transposed_store),
    "weight": (weight_plane, weight_a_row, weight_a_at, weight_b_at, weight_store),
}


@functools.lru_cache(maxsize=None)
def pass_kernel(name, dtype, tile_m=TILE_M):
    """The tiled kernel of pass `name` for arrays of `dtype` (shared memory is typed) and tiles
    of tile_m rows."""
    return tiled_product_kernel(f"conv_{name}_tiled_{tile_m}", *PASSES[name],
                                np.dtype(dtype).type, tile_m)


def launch_pass(name, dtype, rows, columns, planes, *args):
    """Launch pass `name` over C (rows x columns in each of `planes` planes), tiled by
    choose_tile_m."""
    tile_m = choose_tile_m(rows, columns, planes)
    launch(pass_kernel(name, dtype, tile_m), tiled_grid(rows, columns, planes, tile_m),
           (THREADS_X, THREADS_Y), *args)


def conv_geo(x_shape, c_in_g, c_out_g, kernel_hw, out_hw, stride, pads, dilation):
    """The scalars every pass reads, in one tuple (the layout each pass's comment names)."""
    return (x_shape[0], c_in_g, x_shape[2], x_shape[3], c_out_g, kernel_hw[0], kernel_hw[1],
            out_hw[0], out_hw[1], stride[0], stride[1], pads[0], pads[1], dilation[0],
            dilation[1])


def gather_tiled(x, w, b, stride, pads, out_hw, dilation=(1, 1), groups=1):
    """conv2d forward: x (N, Cin, H, W), w (Cout, Cin/G, kH, kW) -> y (N, Cout, outH, outW)."""
    xp = array_module_of(x)
    x = xp.ascontiguousarray(x)
    w = xp.ascontiguousarray(w, dtype=x.dtype)
    c_out, c_in_g = w.shape[0], w.shape[1]
    y = xp.empty((x.shape[0], c_out) + tuple(out_hw), dtype=x.dtype)
    bias, has_bias = bias_argument(xp, b, w, x.dtype)
    geo = conv_geo(x.shape, c_in_g, c_out // groups, w.shape[2:], out_hw, stride, pads,
                   dilation) + (has_bias,)
    rows = x.shape[0] * out_hw[0] * out_hw[1]
    launch_pass("forward", x.dtype, rows, c_out // groups, groups, x, w.reshape(c_out, -1),
                y.reshape(y.shape[0], c_out, -1), bias, geo,
                needs_wide_index(x.size, y.size, w.size))
    return y


def scatter_tiled(x, w, b, stride, pads, out_hw, dilation=(1, 1), groups=1):
    """Transposed conv: x (N, Cin, H, W), w (Cin, Cout/G, kH, kW) -> y (N, Cout, outH, outW),
    one plane per group and stride phase."""
    xp = array_module_of(x)
    x = xp.ascontiguousarray(x)
    w = xp.ascontiguousarray(w, dtype=x.dtype)
    c_out_g = w.shape[1]
    y = xp.empty((x.shape[0], c_out_g * groups) + tuple(out_hw), dtype=x.dtype)
    bias, has_bias = bias_argument(xp, b, w, x.dtype)
    every = tuple(s // math.gcd(s, d) for s, d in zip(stride, dilation))  # taps of one phase
    geo = conv_geo(x.shape, x.shape[1] // groups, c_out_g, w.shape[2:], out_hw, stride, pads,
                   dilation) + (has_bias,) + every
    rows = x.shape[0] * math.ceil(out_hw[0] / stride[0]) * math.ceil(out_hw[1] / stride[1])
    launch_pass("transposed", x.dtype, rows, c_out_g, groups * stride[0] * stride[1], x, w, y,
                bias, geo, needs_wide_index(x.size, y.size, w.size))
    return y


def weight_tiled(g, x, stride, pads, kernel_hw, dilation=(1, 1), groups=1):
    """Weight gradient: g (N, A, oH, oW), x (N, C, H, W) -> gw (A, C/G, kH, kW): chunk partial
    sums into a scratch buffer, then their sum in chunk order."""
    xp = array_module_of(x)
    g = xp.ascontiguousarray(g)
    x = xp.ascontiguousarray(x, dtype=g.dtype)
    n, c_a, out_h, out_w = g.shape
    c_b = x.shape[1] // groups
    rows, k_total = c_b * kernel_hw[0] * kernel_hw[1], n * out_h * out_w
    chunks, length = weight_chunks(rows, c_a // groups, groups, k_total)
    scratch = xp.empty((chunks, c_a, rows), dtype=g.dtype)
    geo = conv_geo(x.shape, c_b, c_a // groups, kernel_hw, (out_h, out_w), stride, pads,
                   dilation) + (chunks, length)
    launch_pass("weight", g.dtype, rows, c_a // groups, groups * chunks, x,
                g.reshape(n, c_a, -1), scratch, x.reshape(-1), geo,
                needs_wide_index(x.size, g.size, scratch.size))
    gw = xp.empty((c_a, c_b) + tuple(kernel_hw), dtype=g.dtype)
    launch_1d(_chunk_sum_kernel, gw.size, scratch.reshape(chunks, -1), gw.reshape(-1), gw.size,
              chunks)
    return gw
