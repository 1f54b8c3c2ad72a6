"""conv2d: 2-D cross-correlation, PyTorch's `torch.nn.functional.conv2d` (NCHW), with dilation and groups.

    x: (N, Cin, H, W),  w: (Cout, Cin/G, kH, kW),  b: (Cout,) or None  ->  y: (N, Cout, outH, outW)
    y[n, co, oy, ox] = b[co] + sum_{ci, ky, kx} w[co, ci, ky, kx]
                               * xpad[n, g*Cin/G + ci, oy*sH + ky*dH, ox*sW + kx*dW]
    outH = (H + pad_top + pad_bottom - dH*(kH - 1) - 1) // sH + 1          (likewise outW)

xpad is x with pad_top zero rows above it (pad_left columns on the left, ...); dH, dW is the
dilation (taps dH rows apart: a wider view for the same weights); G the groups, g = co // (Cout/G)
the output channel's group (G = Cin: the depthwise conv). Padding arrives resolved by
`geometry.conv2d_geometry`: ints, pairs, 'valid', and TensorFlow's 'same' (outH = ceil(H / sH),
the odd pixel of padding at the bottom/right, for the dilated kernel).

Ops, the same signature on every tier (`geom`: the Conv2dGeometry of conv2d_geometry):
    conv2d_forward(x, w, b, geom)            -> y       (N, Cout, outH, outW)
    conv2d_backward_input(grad_y, w, geom)   -> grad_x  (N, Cin, H, W)
    conv2d_backward_weight(grad_y, x, geom)  -> grad_w  (Cout, Cin, kH, kW)
    conv2d_backward_bias(grad_y)             -> grad_b  (Cout,), also the transposed conv's

The adjoint pairs: each tier has three cores, and the six conv ops (here and in
conv_transpose2d.py) are thin compositions of them, so no op needs loops of its own
(each core also takes the geometry's dilation and groups, last):
    gather(x, w, b, stride, (top, left), (outH, outW))    conv2d forward         (w: Cout, Cin/G, ..)
    scatter(x, w, b, stride, (top, left), (outH, outW))   conv_transpose2d fwd   (w: Cin, Cout/G, ..)
    weight(g, x, stride, (top, left), (kH, kW))           sum_{n,i,j} g[n,a,i,j] x[n,b,i*s+ky*d-top, ..]
conv2d's input gradient IS the transposed conv of grad_y with the same weight, stride, padding,
dilation and groups, cropped to (H, W); its weight gradient is the correlation of x with grad_y.
Input rows that no window reaches get a zero gradient: scatter crops/extends by the geometry.
Groups pair up the same way: group g of the conv reads input block g and writes output block g,
so its adjoint reads output block g and writes input block g -- the transposed conv's groups.

The algorithms, one module each:
    reference.py  NumPy im2col slices + one tensordot: readable, float64-capable, the source of truth.
    direct.py     numba loops over a packed, channel-major copy of x: each kernel tap is one
                  contiguous slice, so the inner loop spans a block of images and vectorizes.
    winograd.py   numba Winograd F(2x2, 3x3) for 3x3 stride-1 convs with many channels: 16
                  multiplications per 2x2 outputs and channel pair instead of 36.
    cuda.py       numba.cuda version 1, one thread per output element: gathers only, so no
                  atomics. Simple to read, and slow: no data reuse between threads.
    cuda_tiled.py numba.cuda version 2, the default: each pass as a matrix product tiled
                  through shared memory with register blocking (implicit GEMM), the weight
                  gradient as a two-stage (chunks, then their sum in order) reduction.
                  AECORE_CUDA_CONV=naive runs version 1 instead.
The numba tier picks Winograd or the direct loops by shape (uses_winograd, below: undilated
3x3 stride-1 convs with 8+ channels and outputs of 8x8 or more); the weight gradient always
takes the direct loops. The reference and the numba tier run groups as one conv per group
(reference.by_groups); the cuda kernels index the groups themselves. Measurements and what was tried: kernels/NOTES.md, "conv2d".
"""

import numpy as np

from .. import geometry, memory
from ..op import Arg, Family, Op, describe
from ..registry import register
from . import direct
from .reference import bias_backward_ref, by_groups, gather_ref, scatter_ref, weight_ref
from .direct import bias_backward_numba, weight_numba
from .winograd import gather_winograd
from .cuda import gather_cuda, scatter_cuda, weight_cuda
from .cuda_tiled import gather_tiled, scatter_tiled, weight_tiled
from ... import settings


# ------------------------------------------------------------------------------------------------
# the op's description (kernels/op.py): arguments, cost, inputs for tests and benchmarks, PyTorch
# ------------------------------------------------------------------------------------------------

def conv_cost(geom, shapes, s, slides_over="output"):
    """Every pass of a conv: each (kernel tap, channel pair of one group) meets every position
    of the grid the kernel slides over (the output for conv2d, the input for the transposed
    conv): 2 FLOPs a multiply-add, so groups divide the count (dilation changes nothing); the
    bytes of x, w and y (the bias is its own op)."""
    n, cin, cout = geom.n, geom.c_in, geom.c_out
    x = n * cin * geom.h * geom.w
    y = n * cout * geom.out_h * geom.out_w
    w = cout * cin // geom.groups * geom.k_h * geom.k_w      # the weight's elements
    grid = geom.out_h * geom.out_w if slides_over == "output" else geom.h * geom.w
    return 2 * n * grid * w, s * (x + w + y)


def bias_gradient_cost(geom, shapes, s):
    y = int(np.prod(shapes[0]))                 # grad_y: (N, Cout, outH, outW)
    return y, s * (y + shapes[0][1])            # one add per element; read grad_y, write (Cout,)


def conv_inputs(params, dtype, rng, transposed=False):
    """(geom, {op: args}) for x of shape params["x"] and a weight of shape params["w"] with
    params' stride, padding, dilation, groups (and output_padding when transposed); PyTorch's
    default init bound 1/sqrt(fan_in) for w and b."""
    x_shape, w_shape = params["x"], params["w"]
    common = dict(dilation=params.get("dilation", 1), groups=params.get("groups", 1))
    if transposed:
        c_out, fan_in = w_shape[1] * common["groups"], w_shape[0] * w_shape[2] * w_shape[3]
        geom = geometry.conv_transpose2d_geometry(x_shape, w_shape, params.get("stride", 1),
                                                  params.get("padding", 0),
                                                  params.get("output_padding", 0),
                                                  b_shape=(c_out,), **common)
    else:
        c_out, fan_in = w_shape[0], int(np.prod(w_shape[1:]))
        geom = geometry.conv2d_geometry(x_shape, w_shape, params.get("stride", 1),
                                        params.get("padding", 0), b_shape=(c_out,), **common)
    bound = 1.0 / np.sqrt(fan_in)
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.uniform(-bound, bound, w_shape).astype(dtype)
    b = rng.uniform(-bound, bound, (c_out,)).astype(dtype)
    grad_y = rng.standard_normal((geom.n, c_out, geom.out_h, geom.out_w)).astype(dtype)
    stem = "conv_transpose2d" if transposed else "conv2d"
    args = {f"{stem}_forward": (x, w, b, geom),
            f"{stem}_backward_input": (grad_y, w, geom),
            f"{stem}_backward_weight": (grad_y, x, geom)}
    if not transposed:
        args["conv2d_backward_bias"] = (grad_y,)
    return geom, args


def conv_torch_counterpart(torch, op, args):
    """F.conv2d / F.conv_transpose2d forward, and aten.convolution_backward with the output mask
    autograd uses for each gradient; the bias gradient is grad_y's sum over (N, H, W), as
    autograd computes it. None for a padding PyTorch cannot express (asymmetric 'same')."""
    F, aten = torch.nn.functional, torch.ops.aten
    if op == "conv2d_backward_bias":
        grad_y = args[0]
        return lambda: grad_y.sum(dim=(0, 2, 3))
    geom = args[-1]
    transposed = op.startswith("conv_transpose2d")
    stride = [geom.stride_h, geom.stride_w]
    if transposed:
        output_padding = [geom.pad_top - geom.pad_bottom, geom.pad_left - geom.pad_right]
        if not all(0 <= p < s for p, s in zip(output_padding, stride)):
            return None
    else:
        if geom.pad_top != geom.pad_bottom or geom.pad_left != geom.pad_right:
            return None
        output_padding = [0, 0]
    padding, dilation, groups = [geom.pad_top, geom.pad_left], list(geom.dilation), geom.groups
    if op.endswith("_forward"):
        x, w, b = args[0], args[1], args[2]
        if transposed:
            return lambda: F.conv_transpose2d(x, w, b, stride, padding, output_padding, groups,
                                              dilation)
        return lambda: F.conv2d(x, w, b, stride, padding, dilation, groups)
    grad_y, other = args[0], args[1]
    x_shape = (geom.n, geom.c_in, geom.h, geom.w)
    w_shape = ((geom.c_in, geom.c_out // groups) if transposed else
               (geom.c_out, geom.c_in // groups)) + (geom.k_h, geom.k_w)
    if op.endswith("_backward_input"):     # needs w's values, x only for its shape
        x, w, index = grad_y.new_zeros(x_shape), other, 0
    else:                                  # needs x's values, w only for its shape
        x, w, index = other, grad_y.new_zeros(w_shape), 1
    mask = [i == index for i in range(3)]
    return lambda: aten.convolution_backward(grad_y, x, w, None, stride, padding, dilation,
                                             transposed, output_padding, groups, mask)[index]


FAMILY = describe(Family(
    "conv2d",
    ops=(Op("conv2d_forward", (Arg("x", "input"), Arg("w", "weight"),
                               Arg("b", "bias", optional=True)), conv_cost),
         Op("conv2d_backward_input", (Arg("grad_y", "output"), Arg("w", "weight")), conv_cost),
         Op("conv2d_backward_weight", (Arg("grad_y", "output"), Arg("x", "input")), conv_cost),
         Op("conv2d_backward_bias", (Arg("grad_y", "4-D"),), bias_gradient_cost,
            takes_geometry=False)),
    geometry=geometry.conv2d_arrays,
    inputs=conv_inputs,
    # the one call every op test makes (tests/kernels/sample_calls.py): dilated and grouped, so
    # that those tests reach the index arithmetic of both
    sample={"x": (2, 4, 7, 7), "w": (4, 2, 3, 3), "stride": 2, "padding": "same", "dilation": 2,
            "groups": 2},
    torch=conv_torch_counterpart))


# ----------------------------------------------------------------------------------------------
# the numba tier's choice: Winograd or the direct loops, by shape
# ----------------------------------------------------------------------------------------------

# Winograd for 3x3 stride-1 convs with at least this many input AND output channels: below it
# the transforms cost more than the multiplications they save.
WINOGRAD_MIN_CHANNELS = 8
# ... and outputs at least this many rows and columns: a 7x7 output takes 4x4 tiles of 2x2 (64
# results for 49), and the direct loops were faster there (kernels/NOTES.md, "Winograd F(2x2, 3x3)").
WINOGRAD_MIN_OUTPUT = 8


def uses_winograd(w_shape, stride, dilation=(1, 1), *, out_hw):
    """True when conv2d (of one group) with this weight shape (Cout, Cin, kH, kW), stride,
    dilation and output (rows, cols) runs Winograd: F(2x2, 3x3) is derived for adjacent taps,
    so never when dilated."""
    c_out, c_in, k_h, k_w = w_shape
    return ((k_h, k_w) == (3, 3) and tuple(stride) == (1, 1) and tuple(dilation) == (1, 1)
            and min(c_in, c_out) >= WINOGRAD_MIN_CHANNELS
            and min(out_hw) >= WINOGRAD_MIN_OUTPUT)


def gather_into_numba(y_flat, y_shape, x, w, b, stride, pads, out_hw, offset=(0, 0), step=(1, 1),
                      dilation=(1, 1)):
    """direct.gather_into, or Winograd when uses_winograd() and the result fills y (N, Cout, oh, ow)."""
    if offset == (0, 0) and step == (1, 1) and uses_winograd(w.shape, stride, dilation, out_hw=out_hw):
        gather_winograd(x, w, b, pads, out_hw, y=y_flat.reshape(y_shape))
        return
    direct.gather_into(y_flat, y_shape, x, w, b, stride, pads, out_hw, offset, step, dilation)


def gather_numba(x, w, b, stride, pads, out_hw, dilation=(1, 1), groups=1):
    """conv2d: x (N, Cin, H, W), w (Cout, Cin/groups, kH, kW) -> y (N, Cout, outH, outW)."""
    if groups > 1:
        return by_groups(gather_numba, x, w, b, groups, stride, pads, out_hw, dilation)
    y = memory.empty((x.shape[0], w.shape[0]) + tuple(out_hw), x.dtype)
    gather_into_numba(y.reshape(-1), y.shape, x, w, b, stride, pads, out_hw, dilation=dilation)
    return y


def scatter_numba(x, w, b, stride, pads, out_hw, dilation=(1, 1), groups=1):
    """Transposed conv as stride-1 phase convs; at stride 1 its one phase can take Winograd."""
    if groups > 1:
        return by_groups(scatter_numba, x, w, b, groups, stride, pads, out_hw, dilation)
    return direct.scatter_by_phases(x, w, b, stride, pads, out_hw, conv_into=gather_into_numba,
                                    dilation=dilation)


# ----------------------------------------------------------------------------------------------
# registration: every tier's ops, forward and backward side by side
# ----------------------------------------------------------------------------------------------

# reference (NumPy; CuPy arrays work too)

@register("conv2d_forward", "ref")
def conv2d_forward_ref(x, w, b, geom):
    return gather_ref(x, w, b, geom.stride, geom.pads, geom.out_hw,
                      geom.dilation, geom.groups)


@register("conv2d_backward_input", "ref")
def conv2d_backward_input_ref(grad_y, w, geom):
    # the adjoint of a correlation is the transposed convolution, cropped to the input size
    return scatter_ref(grad_y, w, None, geom.stride, geom.pads, (geom.h, geom.w),
                       geom.dilation, geom.groups)


@register("conv2d_backward_weight", "ref")
def conv2d_backward_weight_ref(grad_y, x, geom):
    return weight_ref(grad_y, x, geom.stride, geom.pads, (geom.k_h, geom.k_w),
                      geom.dilation, geom.groups)


@register("conv2d_backward_bias", "ref")
def conv2d_backward_bias_ref(grad_y):
    return bias_backward_ref(grad_y)


# numba cpu

@register("conv2d_forward", "numba")
def conv2d_forward_numba(x, w, b, geom):
    return gather_numba(x, w, b, geom.stride, geom.pads, geom.out_hw,
                        geom.dilation, geom.groups)


@register("conv2d_backward_input", "numba")
def conv2d_backward_input_numba(grad_y, w, geom):
    return scatter_numba(grad_y, w, None, geom.stride, geom.pads, (geom.h, geom.w),
                         geom.dilation, geom.groups)


@register("conv2d_backward_weight", "numba")
def conv2d_backward_weight_numba(grad_y, x, geom):
    return weight_numba(grad_y, x, geom.stride, geom.pads, (geom.k_h, geom.k_w),
                        geom.dilation, geom.groups)


@register("conv2d_backward_bias", "numba")
def conv2d_backward_bias_numba(grad_y):
    return bias_backward_numba(grad_y)


# numba cuda: version 2 (tiled) unless AECORE_CUDA_CONV=naive asks for version 1

CUDA_VERSIONS = {"tiled": (gather_tiled, scatter_tiled, weight_tiled),
                 "naive": (gather_cuda, scatter_cuda, weight_cuda)}


def cuda_cores():
    """(gather, scatter, weight) of the cuda version AECORE_CUDA_CONV selects."""
    return CUDA_VERSIONS[settings.cuda_conv()]


@register("conv2d_forward", "cuda")
def conv2d_forward_cuda(x, w, b, geom):
    gather = cuda_cores()[0]
    return gather(x, w, b, geom.stride, geom.pads, geom.out_hw, geom.dilation, geom.groups)


@register("conv2d_backward_input", "cuda")
def conv2d_backward_input_cuda(grad_y, w, geom):
    scatter = cuda_cores()[1]
    return scatter(grad_y, w, None, geom.stride, geom.pads, (geom.h, geom.w),
                   geom.dilation, geom.groups)


@register("conv2d_backward_weight", "cuda")
def conv2d_backward_weight_cuda(grad_y, x, geom):
    weight = cuda_cores()[2]
    return weight(grad_y, x, geom.stride, geom.pads, (geom.k_h, geom.k_w),
                  geom.dilation, geom.groups)


@register("conv2d_backward_bias", "cuda")
def conv2d_backward_bias_cuda(grad_y):
    # the reference's reduction on the CuPy array: CuPy runs it as its own tuned reduction
    # kernel, which a hand-written one would only repeat
    return bias_backward_ref(grad_y)
