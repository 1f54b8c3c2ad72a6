"""relu: y = max(x, 0), elementwise, any shape; PyTorch's `torch.relu` semantics.

    x: any shape  ->  y: same shape and dtype
    relu_forward(x)            -> y        y = x where x > 0, else 0; a NaN stays NaN
    relu_backward(grad_y, x)   -> grad_x   grad_y where x > 0, else 0 (0 at x = 0 and at NaN,
                                           0 even where grad_y is inf or NaN); grad_y's dtype

`x` in the backward may be the forward's input or its output: x > 0 exactly where y > 0.

Tiers: reference (NumPy's maximum and where), numba (one parallel pass in chunks of _CHUNK
values, each a plain loop LLVM vectorizes; small arrays on the calling thread), cuda (one
thread per element). Why a kernel for something this small: NumPy's backward makes a boolean
temporary and a second pass, on one core (kernels/NOTES.md, "relu", has the figures).
"""

import numpy as np

from . import memory
from .compile import array_module_of, cpu_kernel, cuda, cuda_kernel, launch_1d, run_in_chunks
from .op import Arg, Family, Op, describe
from .registry import register


# ----------------------------------------------------------------------------------------------
# the op's description (kernels/op.py)
# ----------------------------------------------------------------------------------------------

def _size(shapes):
    return int(np.prod(shapes[0]))


def forward_cost(geom, shapes, s):
    n = _size(shapes)
    return n, s * 2 * n             # one max per element; read x, write y


def backward_cost(geom, shapes, s):
    n = _size(shapes)
    return n, s * 3 * n             # one select per element; read grad_y and x, write grad_x


def inputs(params, dtype, rng):
    """(None, {op: args}) for x of shape params["x"] (no geometry: elementwise)."""
    x = rng.standard_normal(params["x"]).astype(dtype)
    grad_y = rng.standard_normal(params["x"]).astype(dtype)
    return None, {"relu_forward": (x,), "relu_backward": (grad_y, x)}


def torch_counterpart(torch, op, args):
    """torch.relu, and threshold_backward: what relu's autograd calls."""
    if op == "relu_forward":
        return lambda: torch.relu(args[0])
    return lambda: torch.ops.aten.threshold_backward(args[0], args[1], 0)


FAMILY = describe(Family(
    "relu",
    ops=(Op("relu_forward", (Arg("x", "any"),), forward_cost),
         Op("relu_backward", (Arg("grad_y", "any"), Arg("x", "grad_y")), backward_cost)),
    geometry=None, inputs=inputs, sample={"x": (2, 3, 5, 5)}, torch=torch_counterpart))


# ----------------------------------------------------------------------------------------------
# reference (NumPy; CuPy arrays work too)
# ----------------------------------------------------------------------------------------------

@register("relu_forward", "ref")
def relu_forward_ref(x):
    return array_module_of(x).maximum(x, 0)     # maximum propagates NaN, as torch.relu does


@register("relu_backward", "ref")
def relu_backward_ref(grad_y, x):
    # A select, as torch's threshold_backward: where x <= 0 the gradient is 0 even when grad_y
    # is inf or NaN (the product grad_y * (x > 0) would give NaN there).
    return array_module_of(grad_y).where(x > 0, grad_y, grad_y.dtype.type(0))


# ----------------------------------------------------------------------------------------------
# numba cpu: one flat pass, in chunks of _CHUNK values per parallel task
# ----------------------------------------------------------------------------------------------

_CHUNK = 1 << 14        # 16 K values (64 KiB in float32) per task: hundreds of tasks, little overhead


def relu_forward_chunk(task, x, y, chunk):
    # x, y: flat (size,); task t does values t*chunk .. (t+1)*chunk - 1, through slices: an index
    # counted from 0 is visibly >= 0, so no wraparound check keeps LLVM from vectorizing
    # (kernels/NOTES.md, "relu")
    start = task * chunk
    stop = min(start + chunk, x.shape[0])
    xs, ys = x[start:stop], y[start:stop]
    for i in range(stop - start):
        value = xs[i]
        ys[i] = 0 if value <= 0 else value      # NaN <= 0 is False: a NaN passes through


_relu_forward_chunk = cpu_kernel(relu_forward_chunk)


def relu_backward_chunk(task, grad_y, x, grad_x, chunk):
    start = task * chunk                                                   # as in the forward
    stop = min(start + chunk, x.shape[0])
    gs, xs, out = grad_y[start:stop], x[start:stop], grad_x[start:stop]
    for i in range(stop - start):
        out[i] = gs[i] if xs[i] > 0 else 0


_relu_backward_chunk = cpu_kernel(relu_backward_chunk)


def _flat(xp, a):
    """a as a contiguous 1-D array (a view when it already is one)."""
    return xp.ascontiguousarray(a).reshape(-1)


@register("relu_forward", "numba")
def relu_forward_numba(x):
    y = memory.empty(x.shape, x.dtype)
    run_in_chunks(_relu_forward_chunk, x.size, _CHUNK, _flat(np, x), y.reshape(-1))
    return y


@register("relu_backward", "numba")
def relu_backward_numba(grad_y, x):
    grad_x = memory.empty(grad_y.shape, grad_y.dtype)
    run_in_chunks(_relu_backward_chunk, grad_y.size, _CHUNK, _flat(np, grad_y), _flat(np, x),
                  grad_x.reshape(-1))
    return grad_x


# ----------------------------------------------------------------------------------------------
# numba cuda: one thread per element
# ----------------------------------------------------------------------------------------------

def relu_forward_kernel(x, y, total):
    i = cuda.grid(1)
    if i < total:
        value = x[i]
        y[i] = 0 if value <= 0 else value


_relu_forward_kernel = cuda_kernel(relu_forward_kernel)


def relu_backward_kernel(grad_y, x, grad_x, total):
    i = cuda.grid(1)
    if i < total:
        grad_x[i] = grad_y[i] if x[i] > 0 else 0


_relu_backward_kernel = cuda_kernel(relu_backward_kernel)


@register("relu_forward", "cuda")
def relu_forward_cuda(x):
    xp = array_module_of(x)
    y = xp.empty(x.shape, dtype=x.dtype)
    launch_1d(_relu_forward_kernel, x.size, _flat(xp, x), y.reshape(-1), x.size)
    return y


@register("relu_backward", "cuda")
def relu_backward_cuda(grad_y, x):
    xp = array_module_of(grad_y)
    grad_x = xp.empty(grad_y.shape, dtype=grad_y.dtype)
    launch_1d(_relu_backward_kernel, grad_y.size, _flat(xp, grad_y), _flat(xp, x),
              grad_x.reshape(-1), grad_y.size)
    return grad_x
