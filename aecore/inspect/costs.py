"""FLOPs and bytes moved by every op: the counts behind GFLOP/s, GB/s and the roofline.

    op_cost(op_name, geom, dtype_itemsize=4, pass_="forward") -> (flops, bytes_moved)

`op_name` is either a kernel op of the registry ("conv2d_forward", "max_pool2d_backward",
"upsample_bilinear_forward", ...; `geom` is the geometry the geometry module returned for it) or the
class name of a graph Function of aecore/ops.py or aecore/losses.py ("MatMul", "ReLU", "Add", ...;
`geom` is `function_geom(input_shapes, output_shape, needs_grad)` and `pass_` is "forward" or
"backward"). A Function name of a kernel-backed op ("Conv2d", "MaxPool2d", ...) with
pass_="forward" / "backward_input" / "backward_weight" / "backward" names the kernel op it runs.
Kernel ops that take no geometry (relu_forward, relu_backward, conv2d_backward_bias) are costed
from their input shapes: `kernel_cost(op_name, geom, shapes)` covers both kinds.

Conventions (one multiply-add is 2 FLOPs; a comparison, a max or a transcendental function is 1).
Bytes moved: every array an op must read or write, counted once (the ideal traffic of the
roofline model). The kernel ops' formulas are written in each op's own description (the
`cost` of its aecore.kernels.op.Op, in kernels/<family>); the graph Functions' below:
- matmul (M x K) @ (K x N):      2 * M * K * N per matrix; each input gradient as much again
  (Linear: the matmul x @ W.T, and one add per output for the bias)
- elementwise ops and losses:    the small per-element counts of ELEMENTWISE below
- reductions (Sum, Mean):        one add per input element
- losses with their reduction:   per element of the input (SUMMED_LOSSES below)
- shape ops (Reshape, Transpose): 0 FLOPs and 0 bytes (views); GetItem and Concat copy
"""

import math

def _prod(shape):
    return int(math.prod(int(s) for s in shape)) if shape is not None else 0


# ---------------------------------------------------------------------------- kernel ops
# Each kernel op's formula lives in its own description (aecore.kernels.op, written in the op's
# module): what follows only looks it up.

def _kernel_op(op_name):
    """The description of a kernel op, or None when `op_name` is not one."""
    from ..kernels import op as described
    try:
        return described.op(op_name)
    except KeyError:
        return None


def kernel_cost(op_name, geom, shapes, dtype_itemsize=4):
    """(flops, bytes) of one kernel call, by its description's formula (from the geometry, or
    from the input shapes for the ops that take none: relu, the bias gradient). KeyError for an
    op without one."""
    described = _kernel_op(op_name)
    if described is None:
        raise KeyError(f"no cost formula for kernel op {op_name!r}")
    flops, moved = described.cost(geom, shapes, int(dtype_itemsize))
    return int(flops), int(moved)


# Function class name (aecore.functional) -> the kernel op each pass runs
KERNEL_FUNCTIONS = {
    "Conv2d": {"forward": "conv2d_forward", "backward_input": "conv2d_backward_input",
               "backward_weight": "conv2d_backward_weight"},
    "ConvTranspose2d": {"forward": "conv_transpose2d_forward",
                        "backward_input": "conv_transpose2d_backward_input",
                        "backward_weight": "conv_transpose2d_backward_weight"},
    "MaxPool2d": {"forward": "max_pool2d_forward", "backward": "max_pool2d_backward"},
    "AvgPool2d": {"forward": "avg_pool2d_forward", "backward": "avg_pool2d_backward"},
}


def kernel_op_of(function_name, geom, pass_="forward"):
    """The kernel op a kernel-backed Function runs in `pass_` ("Conv2d", "backward_input" ->
    "conv2d_backward_input"); None when `function_name` is not kernel-backed."""
    if function_name == "Upsample":
        from ..functional import UPSAMPLE_KERNELS
        forward, backward = UPSAMPLE_KERNELS[geom.mode]
        return forward if pass_ == "forward" else backward
    passes = KERNEL_FUNCTIONS.get(function_name)
    if passes is None:
        return None
    if "backward" in passes and pass_ != "forward":
        return passes["backward"]
    return passes[pass_]


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
# losses reduced in the same op: (forward FLOPs, backward FLOPs) per element of the first input
SUMMED_LOSSES = {"BinaryCrossEntropyWithLogitsSummed": (7, 5)}


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
    if name == "Linear":                     # x (N, in) @ w.T (in, out), then + b
        x, w = inputs[0], inputs[1]
        flops, moved = _matmul({"inputs": [x, (w[1], w[0])], "output": out,
                                "needs_grad": needs[:2]}, s, pass_)
        if len(inputs) > 2 and (pass_ == "forward" or needs[2]):
            flops, moved = flops + n_out, moved + s * (n_in[2] + n_out)
        return flops, moved
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
    if name in SUMMED_LOSSES:
        per_forward, per_backward = SUMMED_LOSSES[name]
        if pass_ == "forward":                              # reads z, y; writes e and the sums
            return per_forward * n_in[0], s * (sum(n_in) + n_in[0] + n_out)
        return per_backward * n_in[0], s * (4 * n_in[0])    # reads z, y, e; writes grad_z
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
    from ..kernels import op as described
    kernel_ops = sorted(name for family in described.families() for name in family.names)
    return (kernel_ops + sorted(KERNEL_FUNCTIONS) + ["Upsample", "MatMul", "Linear"] + sorted(ELEMENTWISE)
            + list(VIEWS) + list(COPIES) + list(REDUCTIONS) + sorted(SUMMED_LOSSES))


def op_cost(op_name, geom, dtype_itemsize=4, pass_="forward"):
    """(flops, bytes_moved) of one call of `op_name` (see the module docstring).

    Kernel ops take the geometry of their op; graph Functions take `function_geom(...)`.
    Raises KeyError for an op without a formula.
    """
    s = int(dtype_itemsize)
    if _kernel_op(op_name) is not None:
        return kernel_cost(op_name, geom, None, s)
    if op_name in KERNEL_FUNCTIONS or op_name == "Upsample":
        if pass_ == "backward":  # every gradient of the op (conv: input and weight, not bias)
            conv = op_name in ("Conv2d", "ConvTranspose2d")
            parts = ("backward_input", "backward_weight") if conv else ("backward",)
            costs = [op_cost(kernel_op_of(op_name, geom, part), geom, s) for part in parts]
            return sum(c[0] for c in costs), sum(c[1] for c in costs)
        return op_cost(kernel_op_of(op_name, geom, pass_), geom, s)
    flops, moved = _function_cost(op_name, geom, s, pass_)
    return int(flops), int(moved)
