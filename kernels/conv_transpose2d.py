"""conv_transpose2d: PyTorch's `torch.nn.functional.conv_transpose2d` (NCHW, groups=1, dilation=1).

    x: (N, Cin, H, W),  w: (Cin, Cout, kH, kW),  b: (Cout,) or None  ->  y: (N, Cout, outH, outW)

Every input pixel scatters x[n, ci, iy, ix] * w[ci, :, :, :] into the uncropped "full" result,
of size ((H-1)*sH + kH, (W-1)*sW + kW):

    full[n, co, iy*sH + ky, ix*sW + kx] += x[n, ci, iy, ix] * w[ci, co, ky, kx]
    y[n, co, oy, ox] = b[co] + full[n, co, oy + pad_top, ox + pad_left]     (0 outside full)
    outH = (H - 1)*sH + kH - pad_top - pad_bottom                          (likewise outW)

`geometry.conv_transpose2d_geometry` folds PyTorch's output_padding into a NEGATIVE pad_bottom /
pad_right: output rows past the end of the full result receive only the bias. TensorFlow's
'same' (outH = H*sH) and 'valid' (outH = (H-1)*sH + max(kH, sH)) resolve the same way. Only
dilation 1 and groups 1 are supported.

Registered ops (same signature on every tier; `geom` is the dict from conv_transpose2d_geometry):
    conv_transpose2d_forward(x, w, b, geom)            -> y       (N, Cout, outH, outW)
    conv_transpose2d_backward_input(grad_y, w, geom)   -> grad_x  (N, Cin, H, W)
    conv_transpose2d_backward_weight(grad_y, x, geom)  -> grad_w  (Cin, Cout, kH, kW)
    conv2d_backward_bias(grad_y)  (conv2d's op: the same reduction)  -> (Cout,)

This op is the adjoint of conv2d, so the file holds no loops of its own: every tier's three
cores (gather = conv2d forward, scatter = this forward, weight = the correlation of two arrays)
live in conv2d.py, whose docstring explains them and the measured loop choices:
    forward          = scatter(x, w, b)              (the numba tier runs it as sH*sW stride-1
                                                      conv2d's over the output phases)
    backward_input   = gather(grad_y, w)             conv2d of grad_y with the same weight,
                                                      stride and padding: grad_x[n, ci, iy, ix]
                                                      = sum grad_y[n, co, iy*sH+ky-top, ..] w[ci, co, ky, kx]
    backward_weight  = weight(x, grad_y)             grad_w[ci, co, ky, kx]
                                                      = sum x[n, ci, iy, ix] grad_y[n, co, iy*sH+ky-top, ..]
Rows of grad_y past the output (negative pad_bottom) are read as zeros by every core.

Nearest upsampling by a whole factor followed by a conv2d is also this op, of the small image
with a folded kernel (geometry.nearest_fold_geometry): F.upsample_conv2d, and so the CAE's
decoder, run their 7 -> 14 and 14 -> 28 resizes + convs through these three ops.
"""

from . import conv2d as _conv
from .registry import register


def register_conv_transpose2d_tier(tier, gather, scatter, weight):
    """Register the three conv_transpose2d ops of one tier as compositions of its cores."""

    def stride(geom):
        return geom["stride_h"], geom["stride_w"]

    def pads(geom):
        return geom["pad_top"], geom["pad_left"]

    def conv_transpose2d_forward(x, w, b, geom):
        return scatter(x, w, b, stride(geom), pads(geom), (geom["out_h"], geom["out_w"]))

    def conv_transpose2d_backward_input(grad_y, w, geom):
        # w: (Cin, Cout, kH, kW) read as a conv2d weight with Cin outputs and Cout inputs
        return gather(grad_y, w, None, stride(geom), pads(geom), (geom["h"], geom["w"]))

    def conv_transpose2d_backward_weight(grad_y, x, geom):
        return weight(x, grad_y, stride(geom), pads(geom), (geom["k_h"], geom["k_w"]))

    register("conv_transpose2d_forward", tier)(conv_transpose2d_forward)
    register("conv_transpose2d_backward_input", tier)(conv_transpose2d_backward_input)
    register("conv_transpose2d_backward_weight", tier)(conv_transpose2d_backward_weight)


# reference (NumPy / CuPy): per-kernel-offset tensordots, see conv2d.py
register_conv_transpose2d_tier("ref", _conv.gather_ref, _conv.scatter_ref, _conv.weight_ref)

# numba cpu: packed buffers, stride phases as stride-1 conv2d's, see conv2d.py
if _conv.NUMBA_TIER:
    register_conv_transpose2d_tier("numba", _conv.gather_numba, _conv.scatter_numba,
                                   _conv.weight_numba)

# numba cuda: one thread per output element, gathers only, see conv2d.py
if _conv.CUDA_TIER:
    register_conv_transpose2d_tier("cuda", _conv.gather_cuda, _conv.scatter_cuda, _conv.weight_cuda)
