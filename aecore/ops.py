"""The differentiable primitives on tensors: one small Function class per op.

Each class holds its forward (on raw numpy/cupy arrays) next to its backward, in the micrograd /
tinygrad style. Binary ops follow NumPy broadcasting; their backward sums the gradient over the
broadcast axes (`unbroadcast`) so every input gets a gradient of its own shape.
"""

import math

import numpy as np

from . import kernels
from .backend import get_array_module
from .tensor import Function, Tensor, as_tensor_like


# ---------------------------------------------------------------------------- helpers
def unbroadcast(grad, shape):
    """Sum `grad` down to `shape`, undoing NumPy broadcasting."""
    if grad.shape == tuple(shape):
        return grad
    extra = grad.ndim - len(shape)
    if extra > 0:
        grad = grad.sum(axis=tuple(range(extra)))
    stretched = tuple(axis for axis, size in enumerate(shape) if size == 1 and grad.shape[axis] != 1)
    if stretched:
        grad = grad.sum(axis=stretched, keepdims=True)
    return grad


def _broadcast_check(op_name, a, b):
    try:
        np.broadcast_shapes(a.shape, b.shape)
    except ValueError:
        raise ValueError(f"{op_name}: shapes {tuple(a.shape)} and {tuple(b.shape)} cannot be "
                         "broadcast together (NumPy rules: trailing dimensions must be equal or 1)"
                         ) from None


def _binary(function_class, op_name, a, b):
    a_t, b_t = as_tensor_like(a, (a, b)), as_tensor_like(b, (a, b))
    _broadcast_check(op_name, a_t, b_t)
    return function_class.apply(a_t, b_t)


# ---------------------------------------------------------------------------- arithmetic
class Add(Function):
    def forward(self, a, b):
        self.shapes = (a.shape, b.shape)
        return a + b

    def backward(self, grad):
        return unbroadcast(grad, self.shapes[0]), unbroadcast(grad, self.shapes[1])


class Sub(Function):
    def forward(self, a, b):
        self.shapes = (a.shape, b.shape)
        return a - b

    def backward(self, grad):
        grad_b = unbroadcast(-grad, self.shapes[1]) if self.needs_input_grad[1] else None
        return unbroadcast(grad, self.shapes[0]), grad_b


class Mul(Function):
    def forward(self, a, b):
        self.save_for_backward(a, b)
        return a * b

    def backward(self, grad):
        a, b = self.saved
        grad_a = unbroadcast(grad * b, a.shape) if self.needs_input_grad[0] else None
        grad_b = unbroadcast(grad * a, b.shape) if self.needs_input_grad[1] else None
        return grad_a, grad_b


class Div(Function):
    def forward(self, a, b):
        self.save_for_backward(a, b)
        return a / b

    def backward(self, grad):
        a, b = self.saved
        grad_a = unbroadcast(grad / b, a.shape) if self.needs_input_grad[0] else None
        grad_b = unbroadcast(-grad * a / (b * b), b.shape) if self.needs_input_grad[1] else None
        return grad_a, grad_b


class Neg(Function):
    def forward(self, a):
        return -a

    def backward(self, grad):
        return (-grad,)


class Power(Function):
    """a ** exponent for a Python-number exponent."""

    def forward(self, a, exponent):
        self.save_for_backward(a)
        self.exponent = exponent
        return a ** exponent

    def backward(self, grad):
        (a,) = self.saved
        p = self.exponent
        if p == 2:
            return (grad * 2 * a,)
        return (grad * p * a ** (p - 1),)


class MatMul(Function):
    """a @ b for a, b with ndim >= 2 (batched, broadcast over leading axes)."""

    def forward(self, a, b):
        self.save_for_backward(a, b)
        return a @ b

    def backward(self, grad):
        a, b = self.saved
        xp = get_array_module(grad)
        grad_a = grad_b = None
        if self.needs_input_grad[0]:
            grad_a = unbroadcast(grad @ xp.swapaxes(b, -1, -2), a.shape)
        if self.needs_input_grad[1]:
            grad_b = unbroadcast(xp.swapaxes(a, -1, -2) @ grad, b.shape)
        return grad_a, grad_b


def add(a, b):
    return _binary(Add, "add", a, b)


def sub(a, b):
    return _binary(Sub, "sub", a, b)


def mul(a, b):
    return _binary(Mul, "mul", a, b)


def div(a, b):
    return _binary(Div, "div", a, b)


def neg(a):
    return Neg.apply(a)


def power(a, exponent):
    if isinstance(exponent, Tensor) or not np.isscalar(exponent):
        raise TypeError(f"power: the exponent must be a Python number, got {type(exponent).__name__}")
    return Power.apply(a, exponent=float(exponent) if not float(exponent).is_integer() else int(exponent))


def matmul(a, b):
    """Matrix product with NumPy's rules for 1-D operands (a vector is promoted, then squeezed)."""
    a, b = as_tensor_like(a, (a, b)), as_tensor_like(b, (a, b))
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(f"matmul: operands must not be scalars, got shapes {a.shape} and {b.shape}")
    a2 = reshape(a, (1,) + a.shape) if a.ndim == 1 else a
    b2 = reshape(b, b.shape + (1,)) if b.ndim == 1 else b
    if a2.shape[-1] != b2.shape[-2]:
        raise ValueError(f"matmul: shapes {a.shape} and {b.shape} are not aligned: "
                         f"{a.shape[-1]} (last dim of the first) != {b2.shape[-2]} "
                         "(second-to-last dim of the second)")
    try:
        np.broadcast_shapes(a2.shape[:-2], b2.shape[:-2])
    except ValueError:
        raise ValueError(f"matmul: batch dimensions of shapes {a.shape} and {b.shape} cannot be "
                         "broadcast together") from None
    out = MatMul.apply(a2, b2)
    if a.ndim == 1:
        out = reshape(out, out.shape[:-2] + out.shape[-1:])
    if b.ndim == 1:
        out = reshape(out, out.shape[:-1])
    return out


# ---------------------------------------------------------------------------- reductions
def _normalize_axes(axis, ndim):
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    normalized = []
    for a in axes:
        if not -ndim <= a < ndim:
            raise ValueError(f"axis {a} is out of range for a tensor with {ndim} dimensions")
        normalized.append(a % ndim)
    return tuple(sorted(set(normalized)))


def _expand_reduced(grad, in_shape, axes, keepdims):
    xp = get_array_module(grad)
    if not keepdims:
        for axis in axes:
            grad = xp.expand_dims(grad, axis)
    return xp.ascontiguousarray(xp.broadcast_to(grad, in_shape))


class Sum(Function):
    def forward(self, a, axes, keepdims):
        self.in_shape, self.axes, self.keepdims = a.shape, axes, keepdims
        return a.sum(axis=axes, keepdims=keepdims)

    def backward(self, grad):
        return (_expand_reduced(grad, self.in_shape, self.axes, self.keepdims),)


class Mean(Function):
    def forward(self, a, axes, keepdims):
        self.in_shape, self.axes, self.keepdims = a.shape, axes, keepdims
        self.count = int(np.prod([a.shape[i] for i in axes])) if axes else 1
        return a.mean(axis=axes, keepdims=keepdims) if axes else a.copy()

    def backward(self, grad):
        return (_expand_reduced(grad / self.count, self.in_shape, self.axes, self.keepdims),)


def sum(a, axis=None, keepdims=False):  # noqa: A001 - PyTorch's name
    return Sum.apply(a, axes=_normalize_axes(axis, a.ndim), keepdims=keepdims)


def mean(a, axis=None, keepdims=False):
    return Mean.apply(a, axes=_normalize_axes(axis, a.ndim), keepdims=keepdims)


# ---------------------------------------------------------------------------- shape ops
class Reshape(Function):
    def forward(self, a, shape):
        self.in_shape = a.shape
        return a.reshape(shape)

    def backward(self, grad):
        return (grad.reshape(self.in_shape),)


class Transpose(Function):
    def forward(self, a, axes):
        self.axes = axes
        return a.transpose(axes)

    def backward(self, grad):
        return (grad.transpose(np.argsort(self.axes)),)


class GetItem(Function):
    def forward(self, a, index):
        self.in_shape, self.index = a.shape, index
        # A copy, not a view: later in-place updates of `a` (optimizer steps) must not change it.
        return a[index].copy()

    def backward(self, grad):
        xp = get_array_module(grad)
        grad_in = xp.zeros(self.in_shape, dtype=grad.dtype)
        if _is_basic_index(self.index):
            grad_in[self.index] += grad  # basic slicing never repeats an element
        elif xp is np:
            np.add.at(grad_in, self.index, grad)  # fancy indices may repeat: accumulate
        else:
            import cupyx
            cupyx.scatter_add(grad_in, self.index, grad)
        return (grad_in,)


class Concat(Function):
    def forward(self, *arrays, axis):
        xp = get_array_module(*arrays)
        self.axis = axis
        self.sizes = [a.shape[axis] for a in arrays]
        return xp.concatenate(arrays, axis=axis)

    def backward(self, grad):
        xp = get_array_module(grad)
        split_points = np.cumsum(self.sizes)[:-1].tolist()
        return tuple(xp.split(grad, split_points, axis=self.axis))


class Cast(Function):
    def forward(self, a, dtype):
        self.in_dtype = a.dtype
        return a.astype(dtype)

    def backward(self, grad):
        return (grad.astype(self.in_dtype),)


def _is_basic_index(index):
    parts = index if isinstance(index, tuple) else (index,)
    return all(isinstance(p, (int, np.integer, slice, type(None), type(Ellipsis))) for p in parts)


def _resolve_shape(shape, size):
    """`shape` with its one -1 (if any) filled in, or None when it cannot hold `size` elements."""
    unknown = [i for i, s in enumerate(shape) if s == -1]
    if len(unknown) > 1 or any(s < -1 for s in shape):
        return None
    known = math.prod(s for s in shape if s != -1)
    if unknown:
        if known == 0 or size % known:
            return None
        return shape[:unknown[0]] + (size // known,) + shape[unknown[0] + 1:]
    return shape if known == size else None


def reshape(a, shape):
    shape = tuple(int(s) for s in shape)
    target = _resolve_shape(shape, a.size)
    if target is None:
        raise ValueError(f"reshape: cannot reshape a tensor of shape {a.shape} "
                         f"({a.size} elements) into shape {shape}")
    if target == a.shape:
        return a
    return Reshape.apply(a, shape=target)


def transpose(a, axes=None):
    axes = tuple(reversed(range(a.ndim))) if axes is None else tuple(int(x) % max(a.ndim, 1) for x in axes)
    if sorted(axes) != list(range(a.ndim)):
        raise ValueError(f"transpose: axes {axes} are not a permutation of the {a.ndim} "
                         f"dimensions of shape {a.shape}")
    return Transpose.apply(a, axes=axes)


permute = transpose


def flatten(a, start_dim=0, end_dim=-1):
    start, end = start_dim % a.ndim, end_dim % a.ndim
    if start > end:
        raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim}")
    shape = a.shape[:start] + (int(np.prod(a.shape[start:end + 1])),) + a.shape[end + 1:]
    return reshape(a, shape)


def getitem(a, index):
    def raw(part):
        return part.data if isinstance(part, Tensor) else part
    index = tuple(raw(p) for p in index) if isinstance(index, tuple) else raw(index)
    return GetItem.apply(a, index=index)


def concat(tensors, axis=0):
    tensors = list(tensors)
    if not tensors:
        raise ValueError("concat: needs at least one tensor")
    ndim = tensors[0].ndim
    axis = axis % ndim
    for t in tensors:
        other_dims = [s for i, s in enumerate(t.shape) if i != axis]
        first_dims = [s for i, s in enumerate(tensors[0].shape) if i != axis]
        if t.ndim != ndim or other_dims != first_dims:
            raise ValueError(f"concat: shapes {[tuple(x.shape) for x in tensors]} differ outside "
                             f"axis {axis}")
    return Concat.apply(*tensors, axis=axis)


cat = concat


def cast(a, dtype):
    return Cast.apply(a, dtype=np.dtype(dtype))


# ---------------------------------------------------------------------------- elementwise
def stable_sigmoid(x):
    """1 / (1 + exp(-x)) without overflow: exp is only taken of -|x|."""
    xp = get_array_module(x)
    e = xp.exp(-xp.abs(x))
    return xp.where(x >= 0, 1 / (1 + e), e / (1 + e))


class Exp(Function):
    def forward(self, a):
        out = get_array_module(a).exp(a)
        self.save_for_backward(out)
        return out

    def backward(self, grad):
        return (grad * self.saved[0],)


class Log(Function):
    def forward(self, a):
        self.save_for_backward(a)
        return get_array_module(a).log(a)

    def backward(self, grad):
        return (grad / self.saved[0],)


class Sqrt(Function):
    def forward(self, a):
        out = get_array_module(a).sqrt(a)
        self.save_for_backward(out)
        return out

    def backward(self, grad):
        return (grad / (2 * self.saved[0]),)


class Abs(Function):
    def forward(self, a):
        self.save_for_backward(a)
        return get_array_module(a).abs(a)

    def backward(self, grad):
        return (grad * get_array_module(grad).sign(self.saved[0]),)


class Clip(Function):
    def forward(self, a, low, high):
        self.save_for_backward(a)
        self.low, self.high = low, high
        return get_array_module(a).clip(a, low, high)

    def backward(self, grad):
        (a,) = self.saved
        inside = np.True_
        if self.low is not None:
            inside = inside & (a >= self.low)
        if self.high is not None:
            inside = inside & (a <= self.high)
        return (grad * inside,)


class ReLU(Function):
    # Through the kernel registry (aecore.kernels.activation): the numba tier does each pass in
    # one parallel loop, where NumPy needs a boolean temporary and two passes on one core.
    # The registry's kernels take C-contiguous arrays only: a strided view is copied first.
    def forward(self, a):
        a = kernels.registry.contiguous(a)
        self.save_for_backward(a)
        self.tier, forward = kernels.dispatch("relu_forward", a)
        return forward(a)

    def backward(self, grad):
        grad = kernels.registry.contiguous(grad)
        return (kernels.dispatch("relu_backward", grad)[1](grad, self.saved[0]),)


class LeakyReLU(Function):
    def forward(self, a, negative_slope):
        self.save_for_backward(a)
        self.slope = negative_slope
        xp = get_array_module(a)
        return xp.where(a > 0, a, a * a.dtype.type(negative_slope))

    def backward(self, grad):
        (a,) = self.saved
        xp = get_array_module(a)
        return (xp.where(a > 0, grad, grad * a.dtype.type(self.slope)),)


class Sigmoid(Function):
    def forward(self, a):
        out = stable_sigmoid(a)
        self.save_for_backward(out)
        return out

    def backward(self, grad):
        (out,) = self.saved
        return (grad * out * (1 - out),)


class Tanh(Function):
    def forward(self, a):
        out = get_array_module(a).tanh(a)
        self.save_for_backward(out)
        return out

    def backward(self, grad):
        (out,) = self.saved
        return (grad * (1 - out * out),)


class Softplus(Function):
    """log(1 + exp(x)) computed as max(x, 0) + log1p(exp(-|x|)), finite for any x."""

    def forward(self, a):
        self.save_for_backward(a)
        xp = get_array_module(a)
        return xp.maximum(a, 0) + xp.log1p(xp.exp(-xp.abs(a)))

    def backward(self, grad):
        return (grad * stable_sigmoid(self.saved[0]),)


def exp(a):
    return Exp.apply(a)


def log(a):
    return Log.apply(a)


def sqrt(a):
    return Sqrt.apply(a)


def abs(a):  # noqa: A001 - PyTorch's name
    return Abs.apply(a)


def clip(a, min=None, max=None):  # noqa: A002 - PyTorch's names
    if min is None and max is None:
        raise ValueError("clip: give at least one of min and max")
    if min is not None and max is not None and min > max:
        raise ValueError(f"clip: min ({min}) is larger than max ({max})")
    return Clip.apply(a, low=min, high=max)


clamp = clip


def relu(a):
    return ReLU.apply(a)


def leaky_relu(a, negative_slope=0.01):
    return LeakyReLU.apply(a, negative_slope=float(negative_slope))


def sigmoid(a):
    return Sigmoid.apply(a)


def tanh(a):
    return Tanh.apply(a)


def softplus(a):
    return Softplus.apply(a)
