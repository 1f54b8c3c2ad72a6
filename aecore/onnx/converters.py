"""One converter per engine op: the ONNX nodes (opset 18) that compute what the op computed.

A converter takes (builder, function, input arrays, output array) and returns the name of the
graph value holding the output. `function` is the traced graph Function, which keeps the op's
resolved arguments: the geometries of kernels/geometry.py (explicit pads on each side, output
sizes), a reshape's in_shape, a transpose's axes.

    Conv2d            Conv, pads (top, left, bottom, right): TF 'same' asymmetric pads explicit
    ConvTranspose2d   ConvTranspose; a negative pad_bottom / pad_right (PyTorch's
                      output_padding, Keras' 'same' / 'valid' sizes) is ONNX's output_padding
    MaxPool2d         MaxPool, the bottom / right pads that give the engine's output size
    AvgPool2d         a depthwise Conv of ones (the window sums), then Div by the divisor table
    AdaptiveAvgPool2d uneven bins: two MatMuls with averaging matrices
    Normalize         layer_norm: ReduceMean, Sub, Sqrt, Div (the statistics in the graph)
    GELU, ELU, Softmax, LogSoftmax   Erf / Tanh arithmetic, Elu, Softmax, LogSoftmax
    Upsample          Resize or the engine's own tables (resize.py explains when)
    Linear            Gemm (transB=1) for F.linear on a 2-D input; with more axes F.linear
                      is MatMul with the folded W.T, then Add of the bias
    UpsampleConv2d    nearest by a whole factor: ConvTranspose with the folded weight (what it
                      computes); otherwise the resize and the Conv
    ...               elementwise ops, reductions, reshape / transpose / slicing, concat, pad
"""

import math

import numpy as np

from ..kernels.avg_pool2d import divisor_table
from ..kernels.geometry import adaptive_bins

from .graph import OnnxExportError
from .resize import (NEAREST_ATTRIBUTES, bilinear_matrices, bilinear_resize_matches,
                     nearest_resize_is_robust, nearest_tables)

# engine Function name -> ONNX op of the same inputs and no attributes
ELEMENTWISE = {"Add": "Add", "Sub": "Sub", "Mul": "Mul", "Div": "Div", "MatMul": "MatMul",
               "Neg": "Neg", "Exp": "Exp", "Log": "Log", "Sqrt": "Sqrt", "Abs": "Abs",
               "ReLU": "Relu", "Sigmoid": "Sigmoid", "Tanh": "Tanh", "Softplus": "Softplus",
               "Clone": "Identity"}


def _same_op(op_type):
    def convert(b, function, inputs, output):
        return b.node(op_type, [b.value(a) for a in inputs])
    return convert


def _scalar(b, value, like, hint):
    """A 0-d initializer of `like`'s dtype."""
    return b.constant(np.asarray(value, dtype=like.dtype), hint)


# ---------------------------------------------------------------------------- elementwise
def power(b, f, inputs, output):
    return b.node("Pow", [b.value(inputs[0]), _scalar(b, f.exponent, inputs[0], "exponent")])


def linear(b, f, inputs, output):
    """x @ W^T + b as one Gemm: transB=1 takes W (out, in) as it is; the bias is optional."""
    return b.node("Gemm", [b.value(a) for a in inputs], transB=1)


def leaky_relu(b, f, inputs, output):
    return b.node("LeakyRelu", [b.value(inputs[0])], alpha=float(f.slope))


def clip(b, f, inputs, output):
    x = inputs[0]
    low = "" if f.low is None else _scalar(b, f.low, x, "clip_min")
    high = "" if f.high is None else _scalar(b, f.high, x, "clip_max")
    return b.node("Clip", [b.value(x), low, high])


def cast(b, f, inputs, output):
    to = b.helper.np_dtype_to_tensor_dtype(np.dtype(output.dtype))
    return b.node("Cast", [b.value(inputs[0])], to=to)


def backward_hook(b, f, inputs, output):
    """A module's backward hook: the identity in forward."""
    return b.value(inputs[0])


# ---------------------------------------------------------------------------- reductions
def _reduce(op_type):
    def convert(b, f, inputs, output):
        if not f.axes:                                   # sum / mean over no axis: a copy
            return b.node("Identity", [b.value(inputs[0])])
        return b.node(op_type, [b.value(inputs[0]), b.int64s(f.axes, "axes")],
                      keepdims=int(bool(f.keepdims)))
    return convert


def extremum(b, f, inputs, output):
    """max() / min() of every element, 0-d (which one: the output is the input's max or not)."""
    x = inputs[0]
    largest = bool(output == x.max())
    return b.node("ReduceMax" if largest else "ReduceMin", [b.value(x)], keepdims=0)


# ---------------------------------------------------------------------------- shapes
def reshape(b, f, inputs, output):
    """Reshape to the traced shape; with a free batch axis, dim 0 is ONNX's 0 (copy the input's)."""
    target = list(output.shape)
    if b.dynamic_batch:
        if not (inputs[0].ndim and target and inputs[0].shape[0] == target[0]):
            raise OnnxExportError(
                f"export: Reshape from {tuple(inputs[0].shape)} to {tuple(output.shape)} "
                "changes the batch axis, which a free batch size cannot follow; export with "
                "dynamic_batch=False")
        target[0] = 0
    return b.node("Reshape", [b.value(inputs[0]), b.int64s(target, "shape")])


def transpose(b, f, inputs, output):
    return b.node("Transpose", [b.value(inputs[0])], perm=[int(a) for a in f.axes])


def concat(b, f, inputs, output):
    return b.node("Concat", [b.value(a) for a in inputs], axis=int(f.axis))


def getitem(b, f, inputs, output):
    """Basic indexing (slices and ints, Ellipsis): one Slice for the slices, a Gather per int."""
    x = inputs[0]
    index = f.index if isinstance(f.index, tuple) else (f.index,)
    if any(part is Ellipsis for part in index):
        at = index.index(Ellipsis)
        index = index[:at] + (slice(None),) * (x.ndim - len(index) + 1) + index[at + 1:]
    if len(index) > x.ndim or not all(
            isinstance(p, slice) or isinstance(p, (int, np.integer)) and not isinstance(p, bool)
            for p in index):
        raise OnnxExportError(f"export: indexing with {index!r} is not supported by the ONNX "
                              "exporter (slices, ints and ... are)")
    starts, ends, axes, steps = [], [], [], []
    for axis, part in enumerate(index):
        if isinstance(part, slice):
            start, stop, step = part.indices(x.shape[axis])
            if (start, stop, step) == (0, x.shape[axis], 1):
                continue
            if step < 0 and stop < 0:
                stop = -2 ** 63                          # through element 0 (ONNX's -1 wraps)
            starts.append(start), ends.append(stop), axes.append(axis), steps.append(step)
    name = b.value(x)
    if axes:
        name = b.node("Slice", [name, b.int64s(starts, "starts"), b.int64s(ends, "ends"),
                                b.int64s(axes, "axes"), b.int64s(steps, "steps")])
    for axis in reversed([a for a, p in enumerate(index) if not isinstance(p, slice)]):
        position = int(index[axis]) % x.shape[axis]
        name = b.node("Gather", [name, b.int64s(position, "index")], axis=axis)
    return name


def pad(b, f, inputs, output):
    """Constant padding by f.widths (negative widths crop) with f.value."""
    widths = [(int(before), int(after)) for before, after in f.widths]
    pads = [before for before, _ in widths] + [after for _, after in widths]
    return b.node("Pad", [b.value(inputs[0]), b.int64s(pads, "pads"),
                          _scalar(b, f.value, inputs[0], "pad_value")], mode="constant")


# ---------------------------------------------------------------------------- conv family
def _dilations_and_groups(g):
    """ONNX's dilations and group of a conv geometry."""
    return dict(dilations=[g.dilation_h, g.dilation_w], group=g.groups)


def conv2d(b, f, inputs, output):
    g = f.geom
    return b.node("Conv", [b.value(a) for a in inputs], kernel_shape=[g.k_h, g.k_w],
                  strides=[g.stride_h, g.stride_w],
                  pads=[g.pad_top, g.pad_left, g.pad_bottom, g.pad_right],
                  **_dilations_and_groups(g))


def conv_transpose2d(b, f, inputs, output):
    """ONNX: out = stride * (in - 1) + output_padding + k - pad_begin - pad_end, pads >= 0; the
    engine's negative pad_bottom / pad_right extend the output, which is output_padding."""
    g = f.geom
    return b.node("ConvTranspose", [b.value(a) for a in inputs], kernel_shape=[g.k_h, g.k_w],
                  strides=[g.stride_h, g.stride_w],
                  pads=[g.pad_top, g.pad_left, max(g.pad_bottom, 0), max(g.pad_right, 0)],
                  output_padding=[max(-g.pad_bottom, 0), max(-g.pad_right, 0)],
                  **_dilations_and_groups(g))


def _pool_end_pad(in_size, kernel, stride, pad_begin, out_size):
    """The end pad that makes ONNX's floor rule give the engine's output size (ceil mode and
    TF 'same' included): just enough for the last window, never negative."""
    end = max((out_size - 1) * stride + kernel - in_size - pad_begin, 0)
    assert (in_size + pad_begin + end - kernel) // stride + 1 == out_size
    return end


def max_pool2d(b, f, inputs, output):
    g = f.geom
    bottom = _pool_end_pad(g.h, g.k_h, g.stride_h, g.pad_top, g.out_h)
    right = _pool_end_pad(g.w, g.k_w, g.stride_w, g.pad_left, g.out_w)
    return b.node("MaxPool", [b.value(inputs[0])], kernel_shape=[g.k_h, g.k_w],
                  strides=[g.stride_h, g.stride_w], pads=[g.pad_top, g.pad_left, bottom, right])


def avg_pool2d(b, f, inputs, output):
    """Each window's sum as a depthwise Conv of ones over zero padding (the padding adds
    nothing, as in the engine), then a Div by the engine's own divisor table: exact for every
    divisor rule (count_include_pad, ceil mode, TF 'same', divisor_override), where ONNX's
    AveragePool has no divisor_override and its own rule at ceil-mode edges."""
    g, x = f.geom, inputs[0]
    bottom = _pool_end_pad(g.h, g.k_h, g.stride_h, g.pad_top, g.out_h)
    right = _pool_end_pad(g.w, g.k_w, g.stride_w, g.pad_left, g.out_w)
    ones = np.ones((g.c, 1, g.k_h, g.k_w), dtype=x.dtype)                 # (C, 1, kH, kW)
    sums = b.node("Conv", [b.value(x), b.constant(ones, "avg_pool_ones")],
                  kernel_shape=[g.k_h, g.k_w], strides=[g.stride_h, g.stride_w],
                  pads=[g.pad_top, g.pad_left, bottom, right], group=g.c)
    return b.node("Div", [sums, b.constant(divisor_table(g, x.dtype), "avg_pool_divisor")])


def adaptive_avg_pool2d(b, f, inputs, output):
    """Uneven bins (even ones ran avg_pool2d): rows @ x @ cols with averaging matrices, row o of
    `rows` holding 1 / len over bin o (kernels.geometry.adaptive_bins)."""
    g, x = f.geom, inputs[0]

    def averaging(in_size, out_size):                              # (out_size, in_size)
        matrix = np.zeros((out_size, in_size), dtype=x.dtype)
        for o, (start, end) in enumerate(adaptive_bins(in_size, out_size)):
            matrix[o, start:end] = 1.0 / (end - start)
        return matrix
    name = b.node("MatMul", [b.constant(averaging(g.h, g.out_h), "pool_rows"), b.value(x)])
    return b.node("MatMul", [name, b.constant(averaging(g.w, g.out_w).T.copy(), "pool_cols")])


# ---------------------------------------------------------------------------- normalization, activations
def normalize(b, f, inputs, output):
    """layer_norm's (and batch_norm's, in training) x_hat = (x - mean) / sqrt(var + eps) over
    f.axes, the statistics recomputed in the graph (the engine takes them from the data)."""
    x = inputs[0]
    axes = b.int64s(list(f.axes), "axes")
    centered = b.node("Sub", [b.value(x), b.node("ReduceMean", [b.value(x), axes], keepdims=1)])
    var = b.node("ReduceMean", [b.node("Mul", [centered, centered]), axes], keepdims=1)
    std = b.node("Sqrt", [b.node("Add", [var, _scalar(b, f.eps, x, "eps")])])
    return b.node("Div", [centered, std])


def gelu(b, f, inputs, output):
    """x Phi(x) = 0.5 x (1 + erf(x / sqrt 2)), or the tanh form (opset 18 has no Gelu)."""
    x = inputs[0]
    name = b.value(x)
    if f.approximate == "tanh":                    # 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
        cube = b.node("Mul", [b.node("Mul", [name, name]), name])
        inner = b.node("Add", [name, b.node("Mul", [cube, _scalar(b, 0.044715, x, "gelu_cubic")])])
        curve = b.node("Tanh", [b.node("Mul", [inner, _scalar(b, math.sqrt(2 / math.pi), x,
                                                               "sqrt_2_over_pi")])])
    else:
        curve = b.node("Erf", [b.node("Div", [name, _scalar(b, math.sqrt(2), x, "sqrt_2")])])
    one_plus = b.node("Add", [curve, _scalar(b, 1.0, x, "one")])
    return b.node("Mul", [b.node("Mul", [name, one_plus]), _scalar(b, 0.5, x, "half")])


def elu(b, f, inputs, output):
    return b.node("Elu", [b.value(inputs[0])], alpha=float(f.alpha))


def softmax(b, f, inputs, output):
    return b.node("Softmax", [b.value(inputs[0])], axis=int(f.dim))


def log_softmax(b, f, inputs, output):
    return b.node("LogSoftmax", [b.value(inputs[0])], axis=int(f.dim))


def upsample(b, f, inputs, output):
    """Resize when it gives the engine's values (resize.py); else the engine's own operator:
    a Gather of its source table per axis (nearest), or its interpolation matrices (bilinear)."""
    g, x = f.geom, inputs[0]
    name = b.value(x)
    sizes = [g.out_h, g.out_w]
    if g.mode in NEAREST_ATTRIBUTES:
        if nearest_resize_is_robust(g):
            return b.node("Resize", [name, "", "", b.int64s(sizes, "sizes")], mode="nearest",
                          axes=[2, 3], **NEAREST_ATTRIBUTES[g.mode])
        for axis, table in zip((2, 3), nearest_tables(g)):
            if not np.array_equal(table, np.arange(x.shape[axis])):
                name = b.node("Gather", [name, b.int64s(table, "source_index")], axis=axis)
        return name
    if bilinear_resize_matches(g):
        transform = "align_corners" if g.align_corners else "pytorch_half_pixel"
        return b.node("Resize", [name, "", "", b.int64s(sizes, "sizes")], mode="linear",
                      axes=[2, 3], coordinate_transformation_mode=transform)
    rows, cols = bilinear_matrices(g, x.dtype)                  # (out_h, h), (w, out_w)
    name = b.node("MatMul", [b.constant(rows, "resize_rows"), name])   # (N, C, out_h, w)
    return b.node("MatMul", [name, b.constant(cols, "resize_cols")])   # (N, C, out_h, out_w)


CONVERTERS = {name: _same_op(op_type) for name, op_type in ELEMENTWISE.items()}
CONVERTERS.update({
    "Power": power, "Linear": linear, "LeakyReLU": leaky_relu, "Clip": clip, "Cast": cast,
    "_BackwardHook": backward_hook,
    "Sum": _reduce("ReduceSum"), "Mean": _reduce("ReduceMean"), "Extremum": extremum,
    "Reshape": reshape, "Transpose": transpose, "Concat": concat, "GetItem": getitem,
    "Pad": pad, "Conv2d": conv2d, "ConvTranspose2d": conv_transpose2d, "MaxPool2d": max_pool2d,
    "AvgPool2d": avg_pool2d, "AdaptiveAvgPool2d": adaptive_avg_pool2d, "Upsample": upsample,
    "Normalize": normalize, "GELU": gelu, "ELU": elu, "Softmax": softmax,
    "LogSoftmax": log_softmax,
})


def convert(b, function, inputs, output):
    """The graph value of one traced op on dynamic inputs; OnnxExportError for an op without
    a mapping (ops of constants only, such as FoldNearest, are folded before this)."""
    converter = CONVERTERS.get(function.name)
    if converter is None:
        raise OnnxExportError(f"export: the op {function.name} has no ONNX mapping (supported: "
                              f"{', '.join(sorted(n for n in CONVERTERS if n[0] != '_'))})")
    return converter(b, function, inputs, output)
