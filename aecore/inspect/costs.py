"""FLOPs and bytes moved by every op: the counts behind GFLOP/s, GB/s and the roofline.

    op_cost(op_name, geom, dtype_itemsize=4, pass_="forward") -> (flops, bytes_moved)

`op_name` is either a kernel op of the registry ("conv2d_forward", "max_pool2d_backward",
"upsample_bilinear_forward", ...; `geom` is the dict the geometry module returned for it) or the
class name of a graph Function of aecore/ops.py or aecore/losses.py ("MatMul", "ReLU", "Add", ...;
`geom` is `function_geom(input_shapes, output_shape, needs_grad)` and `pass_` is "forward" or
"backward"). A Function name of a kernel-backed op ("Conv2d", "MaxPool2d", ...) with
pass_="forward" / "backward_input" / "backward_weight" / "backward" names the kernel op it runs.
Kernel ops that take no geometry (relu_forward, relu_backward, conv2d_backward_bias) are costed
from their input shapes: `kernel_cost(op_name, geom, shapes)` covers both kinds.

Conventions (one multiply-add is 2 FLOPs; a comparison, a max or a transcendental function is 1):
- conv2d, every pass:            2 * N * Cout * outH * outW * Cin * kH * kW
  (the input gradient and the weight gradient do exactly as many multiply-adds as the forward;
  the bias is not counted -- its gradient is the separate op "conv2d_backward_bias", one add per
  element of grad_y, for conv2d and the transposed conv alike)
- conv_transpose2d, every pass:  2 * N * Cin * H * W * Cout * kH * kW   (H, W: its input)
- max_pool2d forward:            N * C * outH * outW * kH * kW comparisons; backward: one add per
                                 output element (routed by the saved argmax)
- nearest upsampling:            0 forward (a copy); backward one add per output element
- bilinear upsampling:           7 per output element forward (4 products, 3 sums), 8 backward
- matmul (M x K) @ (K x N):      2 * M * K * N per matrix; each input gradient as much again
- elementwise ops and losses:    the small per-element counts of ELEMENTWISE below; the relu
                                 kernels 1 per element (SHAPE_OPS: counted from the shapes)
- reductions (Sum, Mean):        one add per input element
- shape ops (Reshape, Transpose): 0 FLOPs and 0 bytes (views); GetItem and Concat copy

Bytes moved: every array an op must read or write, counted once (the ideal traffic of the
roofline model): conv2d forward reads x and w and writes y; its input gradient reads grad_y and w
and writes grad_x; and so on. max_pool2d's argmax indices are int64 (8 bytes each).
"""

import math

ARGMAX_ITEMSIZE = 8  # max_pool2d saves int64 argmax indices


def _prod(shape):
    return int(math.prod(int(s) for s in shape)) if shape is not None else 0


# ---------------------------------------------------------------------------- kernel ops
def _conv_costs(geom, s, pass_, slides_over):
    """FLOPs and bytes of a conv op. Every (kernel tap, channel pair) meets every position of the
    grid the kernel slides over: the output for conv2d, the input for the transposed conv."""
    n, cin, cout = geom["n"], geom["c_in"], geom["c_out"]
    x = n * cin * geom["h"] * geom["w"]
    y = n * cout * geom["out_h"] * geom["out_w"]
    w = cout * cin * geom["k_h"] * geom["k_w"]
    grid = geom["out_h"] * geom["out_w"] if slides_over == "output" else geom["h"] * geom["w"]
    macs = n * grid * cin * cout * geom["k_h"] * geom["k_w"]
    return 2 * macs, s * (x + w + y)


def _conv2d(geom, s, pass_):
    return _conv_costs(geom, s, pass_, slides_over="output")


def _conv_transpose2d(geom, s, pass_):
    return _conv_costs(geom, s, pass_, slides_over="input")


def _planes(geom):
    n, c = geom["n"], geom["c"]
    return n * c * geom["h"] * geom["w"], n * c * geom["out_h"] * geom["out_w"]


def _max_pool2d(geom, s, pass_):
    x, y = _planes(geom)
    if pass_ == "forward":
        return y * geom["k_h"] * geom["k_w"], s * (x + y) + ARGMAX_ITEMSIZE * y
    return y, s * (y + x) + ARGMAX_ITEMSIZE * y


def _upsample_nearest(geom, s, pass_):
    x, y = _planes(geom)
    return (0 if pass_ == "forward" else y), s * (x + y)


def _upsample_bilinear(geom, s, pass_):
    x, y = _planes(geom)
    return (7 * y if pass_ == "forward" else 8 * y), s * (x + y)


KERNEL_OPS = {
    "conv2d_forward": (_conv2d, "forward"),
    "conv2d_backward_input": (_conv2d, "backward_input"),
    "conv2d_backward_weight": (_conv2d, "backward_weight"),
    "conv_transpose2d_forward": (_conv_transpose2d, "forward"),
    "conv_transpose2d_backward_input": (_conv_transpose2d, "backward_input"),
    "conv_transpose2d_backward_weight": (_conv_transpose2d, "backward_weight"),
    "max_pool2d_forward": (_max_pool2d, "forward"),
    "max_pool2d_backward": (_max_pool2d, "backward"),
    "upsample_nearest_forward": (_upsample_nearest, "forward"),
    "upsample_nearest_backward": (_upsample_nearest, "backward"),
    "upsample_bilinear_forward": (_upsample_bilinear, "forward"),
    "upsample_bilinear_backward": (_upsample_bilinear, "backward"),
}

# Kernel ops that take no geometry (elementwise, reductions): their cost from the input shapes.
def _relu_forward(shapes, s):
    n = _prod(shapes[0])
    return n, s * 2 * n                     # one max per element; read x, write y


def _relu_backward(shapes, s):
    n = _prod(shapes[0])
    return n, s * 3 * n                     # one select per element; read grad_y and x, write


def _bias_from_grad(shapes, s):
    y = _prod(shapes[0])                    # grad_y: (N, Cout, outH, outW)
    return y, s * (y + shapes[0][1])        # one add per element; read grad_y, write (Cout,)


SHAPE_OPS = {
    "relu_forward": _relu_forward,
    "relu_backward": _relu_backward,
    "conv2d_backward_bias": _bias_from_grad,
}


def kernel_cost(op_name, geom, shapes, dtype_itemsize=4):
    """(flops, bytes) of one kernel call: by its input shapes for the ops that take no geometry
    (relu, the bias gradient), else by its geometry. Raises KeyError for an op without a formula."""
    if op_name in SHAPE_OPS:
        flops, moved = SHAPE_OPS[op_name](shapes, int(dtype_itemsize))
        return int(flops), int(moved)
    return op_cost(op_name, geom, dtype_itemsize)


# Function class name (aecore.functional) -> kernel op family
KERNEL_FUNCTIONS = {
    "Conv2d": "conv2d",
    "ConvTranspose2d": "conv_transpose2d",
    "MaxPool2d": "max_pool2d",
    "Upsample": "upsample",  # + "_" + geom["mode"]
}


def kernel_op_of(function_name, geom, pass_="forward"):
    """The kernel op a kernel-backed Function runs in `pass_` ("Conv2d", "backward_input" ->
    "conv2d_backward_input"); None when `function_name` is not kernel-backed."""
    family = KERNEL_FUNCTIONS.get(function_name)
    if family is None:
        return None
    if family == "upsample":
        family = "upsample_" + geom["mode"]
    if family in ("max_pool2d",) or family.startswith("upsample"):
        pass_ = "forward" if pass_ == "forward" else "backward"
    return f"{family}_{pass_}"


# ---------------------------------------------------------------------------- graph Functions
# name: (forward FLOPs per output element, backward FLOPs per element per input that gets a
#        gradient, whether the backward reads the saved inputs/outputs)
ELEMENTWISE = {
    "Add": (1, 0, False), "Sub": (1, 1, False), "Mul": (1, 1, True), "Div": (1, 3, True),
    "Neg": (1, 1, False), "Power": (1, 3, True),
    "ReLU": (1, 1, True), "LeakyReLU": (2, 2, True), "Sigmoid": (4, 3, True), "Tanh": (1, 3, True),
    "Exp": (1, 1, True), "Log": (1, 1, True), "Sqrt": (1, 2, True), "Abs": (1, 2, True),
    "Clip": (2, 2, True), "Softplus": (4, 4, True), "Cast": (0, 0, False),
    "BinaryCrossEntropy": (7, 6, True), "BinaryCrossEntropyWithLogits": (6, 5, True),
}
VIEWS = ("Reshape", "Transpose")
COPIES = ("GetItem", "Concat")
REDUCTIONS = ("Sum", "Mean")


def function_geom(input_shapes, output_shape, needs_grad=None):
    """The `geom` of a graph Function for op_cost: its input shapes, output shape and which inputs
    get a gradient (all of them when None)."""
    input_shapes = [tuple(s) for s in input_shapes]
    if needs_grad is None:
        needs_grad = [True] * len(input_shapes)
    return {"inputs": input_shapes, "output": tuple(output_shape) if output_shape is not None else None,
            "needs_grad": list(needs_grad)}


def _matmul(geom, s, pass_):
    a, b = geom["inputs"]
    out = geom["output"]
    k = a[-1] if len(a) >= 1 else 1
    flops_one = 2 * _prod(out) * k  # every output element is a K-long dot product
    na, nb, no = _prod(a), _prod(b), _prod(out)
    if pass_ == "forward":
        return flops_one, s * (na + nb + no)
    flops, moved = 0, s * no
    for needed, shape, other in ((geom["needs_grad"][0], a, nb), (geom["needs_grad"][1], b, na)):
        if needed:
            flops += flops_one
            moved += s * (_prod(shape) + other)
    return flops, moved


def _function_cost(name, geom, s, pass_):
    inputs, out = geom["inputs"], geom["output"]
    needs = geom.get("needs_grad") or [True] * len(inputs)
    n_out = _prod(out)
    n_in = [_prod(shape) for shape in inputs]
    if name == "MatMul":
        return _matmul(geom, s, pass_)
    if name in VIEWS:
        return 0, 0
    if name in COPIES:
        if pass_ == "forward":
            return 0, s * 2 * n_out
        return n_out, s * (n_out + sum(n for n, g in zip(n_in, needs) if g))
    if name in REDUCTIONS:
        extra = n_out if name == "Mean" else 0
        if pass_ == "forward":
            return sum(n_in) + extra, s * (sum(n_in) + n_out)
        return (sum(n_in) if name == "Mean" else 0), s * (n_out + sum(n_in))
    if name in ELEMENTWISE:
        per_forward, per_backward, reads = ELEMENTWISE[name]
        if pass_ == "forward":
            return per_forward * n_out, s * (sum(n_in) + n_out)
        flops, moved = 0, s * n_out
        for n, shape, needed in zip(n_in, inputs, needs):
            if not needed:
                continue
            flops += per_backward * n_out + (n_out if tuple(shape) != tuple(out) else 0)  # unbroadcast
            moved += s * n
        if reads:
            moved += s * sum(n_in)
        return flops, moved
    raise KeyError(f"no cost formula for op {name!r}; known: {', '.join(known_ops())}")


def known_ops():
    """Every op name op_cost knows (kernel ops, then graph Function names)."""
    return (sorted(set(KERNEL_OPS) | set(SHAPE_OPS)) + sorted(KERNEL_FUNCTIONS) + ["MatMul"] + sorted(ELEMENTWISE)
            + list(VIEWS) + list(COPIES) + list(REDUCTIONS))


def op_cost(op_name, geom, dtype_itemsize=4, pass_="forward"):
    """(flops, bytes_moved) of one call of `op_name` (see the module docstring).

    Kernel ops take the geometry dict of their op; graph Functions take `function_geom(...)`.
    Raises KeyError for an op without a formula.
    """
    s = int(dtype_itemsize)
    if op_name in KERNEL_OPS:
        formula, kernel_pass = KERNEL_OPS[op_name]
        flops, moved = formula(geom, s, kernel_pass)
        return int(flops), int(moved)
    if op_name in KERNEL_FUNCTIONS:
        if pass_ == "backward":  # every gradient of the op (conv: input and weight, not bias)
            conv = KERNEL_FUNCTIONS[op_name].startswith("conv")
            parts = ("backward_input", "backward_weight") if conv else ("backward",)
            costs = [op_cost(kernel_op_of(op_name, geom, part), geom, s) for part in parts]
            return sum(c[0] for c in costs), sum(c[1] for c in costs)
        return op_cost(kernel_op_of(op_name, geom, pass_), geom, s)
    flops, moved = _function_cost(op_name, geom, s, pass_)
    return int(flops), int(moved)


def arithmetic_intensity(flops, bytes_moved):
    """FLOPs per byte (0 when nothing moves)."""
    return flops / bytes_moved if bytes_moved else 0.0
