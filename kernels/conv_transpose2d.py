"""conv_transpose2d: PyTorch's `torch.nn.functional.conv_transpose2d` (NCHW), with dilation and groups.

    x: (N, Cin, H, W),  w: (Cin, Cout/G, kH, kW),  b: (Cout,) or None  ->  y: (N, Cout, outH, outW)

Every input pixel scatters x[n, ci, iy, ix] * w[ci, :, :, :] into the uncropped "full" result,
of size ((H-1)*sH + dH*(kH-1) + 1, likewise along W), dH the dilation:

    full[n, g*Cout/G + co, iy*sH + ky*dH, ix*sW + kx*dW] += x[n, ci, iy, ix] * w[ci, co, ky, kx]
    y[n, co, oy, ox] = b[co] + full[n, co, oy + pad_top, ox + pad_left]     (0 outside full)
    outH = (H - 1)*sH + dH*(kH - 1) + 1 - pad_top - pad_bottom              (likewise outW)

with G the groups and g = ci // (Cin/G) the input channel's group.

`geometry.conv_transpose2d_geometry` folds PyTorch's output_padding into a NEGATIVE pad_bottom /
pad_right: output rows past the end of the full result receive only the bias. TensorFlow's
'same' (outH = H*sH) and 'valid' (outH = (H-1)*sH + max(kH, sH), kH the dilated span) resolve
the same way.

Registered ops (same signature on every tier; `geom`: the ConvTranspose2dGeometry from
conv_transpose2d_geometry):
    conv_transpose2d_forward(x, w, b, geom)            -> y       (N, Cout, outH, outW)
    conv_transpose2d_backward_input(grad_y, w, geom)   -> grad_x  (N, Cin, H, W)
    conv_transpose2d_backward_weight(grad_y, x, geom)  -> grad_w  (Cin, Cout/G, kH, kW)
    conv2d_backward_bias(grad_y)  (conv2d's op: the same reduction)  -> (Cout,)

This op is the adjoint of conv2d, so the file holds no loops of its own: every tier's three
cores (gather = conv2d forward, scatter = this forward, weight = the correlation of two arrays)
live in the kernels/conv2d/ package, whose __init__ explains them:
    forward          = scatter(x, w, b)              (the numba tier runs it as sH*sW stride-1
                                                      conv2d's over the output phases)
    backward_input   = gather(grad_y, w)             conv2d of grad_y with the same weight,
                                                      stride, padding, dilation and groups:
                                                      grad_x[n, ci, iy, ix] = sum
                                                      grad_y[n, co, iy*sH+ky*dH-top, ..] w[ci, co, ky, kx]
    backward_weight  = weight(x, grad_y)             grad_w[ci, co, ky, kx] = sum
                                                      x[n, ci, iy, ix] grad_y[n, co, iy*sH+ky*dH-top, ..]
(co within ci's group). The cores take w's first axis in `groups` blocks either way, so the
transposed conv's groups are conv2d's read backwards, as its weight is.
Rows of grad_y past the output (negative pad_bottom) are read as zeros by every core.

Nearest upsampling by a whole factor followed by a conv2d is also this op, of the small image
with a folded kernel (geometry.nearest_fold_geometry): F.upsample_conv2d, and so the CAE's
decoder, run their 7 -> 14 and 14 -> 28 resizes + convs through these three ops.
"""

from functools import partial

from . import geometry
from .conv2d import (conv_cost, conv_inputs, conv_torch_counterpart, cuda_cores, gather_numba,
                     gather_ref, scatter_numba, scatter_ref, weight_numba, weight_ref)
from .op import Arg, Family, Op, describe
from .registry import register


# the op's description (kernels/op.py): conv2d's, with the kernel sliding over the input and
# the weight (Cin, Cout, kH, kW); the bias gradient is conv2d_backward_bias
_cost = partial(conv_cost, slides_over="input")
FAMILY = describe(Family(
    "conv_transpose2d",
    ops=(Op("conv_transpose2d_forward", (Arg("x", "input"), Arg("w", "weight"),
                                         Arg("b", "bias", optional=True)), _cost),
         Op("conv_transpose2d_backward_input", (Arg("grad_y", "output"), Arg("w", "weight")),
            _cost),
         Op("conv_transpose2d_backward_weight", (Arg("grad_y", "output"), Arg("x", "input")),
            _cost)),
    geometry=geometry.conv_transpose2d_arrays,
    inputs=partial(conv_inputs, transposed=True),
    sample={"x": (2, 4, 5, 5), "w": (4, 2, 3, 3), "stride": 2, "padding": 1, "output_padding": 1,
            "dilation": 2, "groups": 2},
    torch=conv_torch_counterpart))


# reference (NumPy / CuPy): per-kernel-offset tensordots, see conv2d/reference.py

@register("conv_transpose2d_forward", "ref")
def conv_transpose2d_forward_ref(x, w, b, geom):
    return scatter_ref(x, w, b, geom.stride, geom.pads, geom.out_hw,
                       geom.dilation, geom.groups)


@register("conv_transpose2d_backward_input", "ref")
def conv_transpose2d_backward_input_ref(grad_y, w, geom):
    # w: (Cin, Cout, kH, kW) read as a conv2d weight with Cin outputs and Cout inputs
    return gather_ref(grad_y, w, None, geom.stride, geom.pads, (geom.h, geom.w),
                      geom.dilation, geom.groups)


@register("conv_transpose2d_backward_weight", "ref")
def conv_transpose2d_backward_weight_ref(grad_y, x, geom):
    return weight_ref(x, grad_y, geom.stride, geom.pads, (geom.k_h, geom.k_w),
                      geom.dilation, geom.groups)


# numba cpu: packed buffers, stride phases as stride-1 conv2d's, see conv2d/direct.py

@register("conv_transpose2d_forward", "numba")
def conv_transpose2d_forward_numba(x, w, b, geom):
    return scatter_numba(x, w, b, geom.stride, geom.pads, geom.out_hw,
                         geom.dilation, geom.groups)


@register("conv_transpose2d_backward_input", "numba")
def conv_transpose2d_backward_input_numba(grad_y, w, geom):
    return gather_numba(grad_y, w, None, geom.stride, geom.pads, (geom.h, geom.w),
                        geom.dilation, geom.groups)


@register("conv_transpose2d_backward_weight", "numba")
def conv_transpose2d_backward_weight_numba(grad_y, x, geom):
    return weight_numba(x, grad_y, geom.stride, geom.pads, (geom.k_h, geom.k_w),
                        geom.dilation, geom.groups)


# numba cuda: the version AECORE_CUDA_CONV selects (conv2d.cuda_cores), gathers only

@register("conv_transpose2d_forward", "cuda")
def conv_transpose2d_forward_cuda(x, w, b, geom):
    scatter = cuda_cores()[1]
    return scatter(x, w, b, geom.stride, geom.pads, geom.out_hw, geom.dilation, geom.groups)


@register("conv_transpose2d_backward_input", "cuda")
def conv_transpose2d_backward_input_cuda(grad_y, w, geom):
    gather = cuda_cores()[0]
    return gather(grad_y, w, None, geom.stride, geom.pads, (geom.h, geom.w),
                  geom.dilation, geom.groups)


@register("conv_transpose2d_backward_weight", "cuda")
def conv_transpose2d_backward_weight_cuda(grad_y, x, geom):
    weight = cuda_cores()[2]
    return weight(x, grad_y, geom.stride, geom.pads, (geom.k_h, geom.k_w),
                  geom.dilation, geom.groups)
