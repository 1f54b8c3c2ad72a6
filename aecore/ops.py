"""The differentiable primitives on tensors: one small Function class per op.

Each class holds its forward (on raw numpy/cupy arrays) next to its backward, in the micrograd /
tinygrad style. Binary ops follow NumPy broadcasting; their backward sums the gradient over the
broadcast axes (`unbroadcast`) so every input gets a gradient of its own shape. Derived ops
(var, std, max with dim, stack, unsqueeze) are a few lines over these primitives.

Names and arguments are PyTorch's (`dim`, `keepdim`); reductions also take NumPy's `axis` /
`keepdims`. Comparisons and argmax give bool / int64 tensors without a graph.
"""

import builtins
import collections
import math
import operator
import warnings

import numpy as np

from . import kernels
from .backend import get_array_module
from .tensor import Function, Tensor, as_tensor_like, check_same_device


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


def _promote(a, b):
    """PyTorch's promotion for the bool and integer tensors aecore makes (comparisons, argmax):
    beside a float tensor they take its dtype (NumPy would make int64 * float32 a float64)."""
    if a.dtype.kind == "f" and b.dtype.kind != "f":
        b = Tensor(b.data.astype(a.dtype), _copy=False)
    elif b.dtype.kind == "f" and a.dtype.kind != "f":
        a = Tensor(a.data.astype(b.dtype), _copy=False)
    return a, b


def _binary(function_class, op_name, a, b):
    a_t, b_t = _promote(as_tensor_like(a, (a, b)), as_tensor_like(b, (a, b)))
    _broadcast_check(op_name, a_t, b_t)
    return function_class.apply(a_t, b_t)


def _scaled(b, alpha):
    """alpha * b for add / sub's `alpha=` (PyTorch): differentiable when b is a tensor."""
    if alpha == 1:
        return b
    return mul(b, alpha) if isinstance(b, Tensor) else np.asarray(b) * alpha


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


def add(a, b, *, alpha=1):
    """a + alpha * b."""
    return _binary(Add, "add", a, _scaled(b, alpha))


def sub(a, b, *, alpha=1):
    """a - alpha * b."""
    return _binary(Sub, "sub", a, _scaled(b, alpha))


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
def normalize_dim(dim, ndim, op_name, extra=0):
    """`dim` counted from 0, as PyTorch checks it: -ndim <= dim < ndim (negative dims count from
    the end). extra=1 for the ops that insert a dimension (unsqueeze, stack)."""
    if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)):
        raise TypeError(f"{op_name}: dim must be an int, got {dim!r}")
    size = ndim + extra
    if not -size <= dim < size:
        raise ValueError(f"{op_name}: dim {dim} is out of range for a tensor with {ndim} "
                         f"dimensions (expected {-size} to {size - 1})")
    return int(dim) % size


def _normalize_axes(dim, ndim, op_name="reduction"):
    """dim (None: every dimension, an int, or a tuple of ints) as a sorted tuple of dims."""
    if dim is None:
        return tuple(range(ndim))
    dims = (dim,) if isinstance(dim, (int, np.integer)) else tuple(dim)
    return tuple(sorted({normalize_dim(d, ndim, op_name) for d in dims}))


def _reduction_args(op_name, dim, keepdim, axis, keepdims):
    """(dim, keepdim) from PyTorch's names or NumPy's aliases axis / keepdims.

    PyTorch reduces every dimension for an empty dim tuple; NumPy's axis=() reduces none."""
    if axis is not None:
        if dim is not None:
            raise TypeError(f"{op_name}: give dim or its NumPy alias axis, not both")
        dim = axis
    elif isinstance(dim, (tuple, list)) and len(dim) == 0:
        dim = None
    if keepdims is not None:
        if keepdim:
            raise TypeError(f"{op_name}: give keepdim or its NumPy alias keepdims, not both")
        keepdim = keepdims
    return dim, bool(keepdim)


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


class Extremum(Function):
    """The largest (or smallest) element, 0-d. The gradient is shared evenly among the elements
    equal to it: PyTorch's rule for max() and min() without dim."""

    def forward(self, a, largest):
        out = a.max() if largest else a.min()
        self.ties = a == out
        return get_array_module(a).asarray(out)

    def backward(self, grad):
        return (grad * self.ties / int(self.ties.sum()),)


class TakeAlongDim(Function):
    """The elements of `a` at `indices` along `dim` (indices keep dim with size 1): max and min
    with dim. The gradient goes back to those positions only."""

    def forward(self, a, indices, dim, keepdim):
        xp = get_array_module(a)
        self.in_shape, self.indices, self.dim, self.keepdim = a.shape, indices, dim, keepdim
        out = xp.take_along_axis(a, indices, axis=dim)     # a's shape with dim of size 1
        return out if keepdim else xp.squeeze(out, axis=dim)

    def backward(self, grad):
        xp = get_array_module(grad)
        if not self.keepdim:
            grad = xp.expand_dims(grad, self.dim)
        trailing = len(self.in_shape) - self.dim - 1
        positions = xp.arange(self.in_shape[self.dim]).reshape((-1,) + (1,) * trailing)
        chosen = positions == self.indices                  # in_shape, one True per slice
        return (xp.where(chosen, grad, grad.dtype.type(0)),)


def sum(a, dim=None, keepdim=False, *, axis=None, keepdims=None):  # noqa: A001 - PyTorch's name
    """The sum over dim (None: every dimension; an int or a tuple of ints)."""
    dim, keepdim = _reduction_args("sum", dim, keepdim, axis, keepdims)
    return Sum.apply(a, axes=_normalize_axes(dim, a.ndim, "sum"), keepdims=keepdim)


def mean(a, dim=None, keepdim=False, *, axis=None, keepdims=None):
    """The mean over dim (None: every dimension; an int or a tuple of ints)."""
    dim, keepdim = _reduction_args("mean", dim, keepdim, axis, keepdims)
    return Mean.apply(a, axes=_normalize_axes(dim, a.ndim, "mean"), keepdims=keepdim)


def _correction(op_name, unbiased, correction):
    """The number subtracted from the count: correction= (default 1), or the older unbiased=."""
    if unbiased is not None and correction is not None:
        raise TypeError(f"{op_name}: give correction or the older unbiased, not both")
    if unbiased is not None:
        if not isinstance(unbiased, (bool, np.bool_)):
            raise TypeError(f"{op_name}: unbiased must be True or False, got {unbiased!r}")
        return 1 if unbiased else 0
    if correction is None:
        return 1
    if isinstance(correction, bool) or not isinstance(correction, (int, float, np.number)):
        raise TypeError(f"{op_name}: correction must be a number, got {correction!r}")
    return correction


def var(a, dim=None, unbiased=None, keepdim=False, *, correction=None, axis=None, keepdims=None):
    """sum((a - mean)^2) / (N - correction) over dim; correction=1 (the default) is Bessel's.

    PyTorch's overloads: var(dim, unbiased, keepdim) and var(unbiased) (a bool first).
    With N - correction <= 0 the result is inf or nan, with a warning, as in PyTorch.
    """
    if isinstance(dim, (bool, np.bool_)):
        if unbiased is not None:
            raise TypeError("var: unbiased was given twice")
        dim, unbiased = None, dim
    correction = _correction("var", unbiased, correction)
    dim, keepdim = _reduction_args("var", dim, keepdim, axis, keepdims)
    axes = _normalize_axes(dim, a.ndim, "var")
    count = math.prod(a.shape[i] for i in axes)
    centered = a - Mean.apply(a, axes=axes, keepdims=True)
    squares = Sum.apply(centered * centered, axes=axes, keepdims=keepdim)
    degrees = builtins.max(count - correction, 0)
    if degrees == 0:
        warnings.warn(f"var: degrees of freedom <= 0 ({count} elements, correction {correction})",
                      RuntimeWarning, stacklevel=2)
        with np.errstate(divide="ignore", invalid="ignore"):
            return squares / degrees
    return squares / degrees


def std(a, dim=None, unbiased=None, keepdim=False, *, correction=None, axis=None, keepdims=None):
    """sqrt(var(...)): the same arguments as var."""
    return sqrt(var(a, dim, unbiased, keepdim, correction=correction, axis=axis, keepdims=keepdims))


# max / min with dim return a named pair, as torch.return_types.max
MaxResult = collections.namedtuple("max", ("values", "indices"))
MinResult = collections.namedtuple("min", ("values", "indices"))


def _arg_extremum(op_name, a, dim, keepdim, largest):
    """Indices (int64, no graph) of the first largest / smallest element along dim; without dim
    the index into the flattened tensor."""
    a = as_tensor_like(a, (a,), f"{op_name}: input")
    find = a.xp.argmax if largest else a.xp.argmin
    if dim is None:
        if a.numel() == 0:
            raise ValueError(f"{op_name}: the tensor of shape {a.shape} has no elements")
        index = a.xp.asarray(find(a.data), dtype=np.int64)
        return Tensor(index.reshape((1,) * a.ndim if keepdim else ()), _copy=False)
    dim = normalize_dim(dim, a.ndim, op_name)
    if a.shape[dim] == 0:
        raise ValueError(f"{op_name}: dim {dim} of shape {a.shape} has no elements")
    indices = find(a.data, axis=dim).astype(np.int64, copy=False)
    return Tensor(a.xp.expand_dims(indices, dim) if keepdim else indices, _copy=False)


def _extremum(op_name, result_type, a, dim, keepdim, largest):
    a = as_tensor_like(a, (a,), f"{op_name}: input")
    if dim is None:
        if keepdim:
            raise TypeError(f"{op_name}: keepdim needs dim (without dim, {op_name}() is a 0-d "
                            "value over every element)")
        if a.numel() == 0:
            raise ValueError(f"{op_name}: the tensor of shape {a.shape} has no elements")
        return Extremum.apply(a, largest=largest)
    if isinstance(dim, Tensor):
        raise TypeError(f"{op_name}: dim must be an int, got a Tensor (the elementwise {op_name} "
                        "of two tensors is not in aecore)")
    dim = normalize_dim(dim, a.ndim, op_name)
    indices = _arg_extremum(op_name, a, dim, True, largest)
    values = TakeAlongDim.apply(a, indices=indices.data, dim=dim, keepdim=keepdim)
    if not keepdim:
        indices = Tensor(a.xp.squeeze(indices.data, axis=dim), _copy=False)
    return result_type(values, indices)


def max(a, dim=None, keepdim=False):  # noqa: A001 - PyTorch's name
    """Without dim: the largest element (0-d). With dim: (values, indices) along it, indices of
    the first largest (the gradient goes to those)."""
    return _extremum("max", MaxResult, a, dim, keepdim, largest=True)


def min(a, dim=None, keepdim=False):  # noqa: A001 - PyTorch's name
    """Without dim: the smallest element (0-d). With dim: (values, indices) along it."""
    return _extremum("min", MinResult, a, dim, keepdim, largest=False)


def argmax(a, dim=None, keepdim=False):
    """int64 indices of the first largest element along dim (None: in the flattened tensor)."""
    return _arg_extremum("argmax", a, dim, keepdim, largest=True)


def argmin(a, dim=None, keepdim=False):
    """int64 indices of the first smallest element along dim (None: in the flattened tensor)."""
    return _arg_extremum("argmin", a, dim, keepdim, largest=False)


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


class Clone(Function):
    def forward(self, a):
        return a.copy()

    def backward(self, grad):
        return (grad,)


class Overwrite(Function):
    """`a` with every element replaced by `src` broadcast to a's shape and dtype (copy_, fill_):
    the old values get a zero gradient, src the gradient summed over the broadcast."""

    def forward(self, a, src):
        self.src_shape = src.shape
        return get_array_module(a).broadcast_to(src, a.shape).astype(a.dtype)

    def backward(self, grad):
        grad_a = get_array_module(grad).zeros_like(grad) if self.needs_input_grad[0] else None
        grad_src = unbroadcast(grad, self.src_shape) if self.needs_input_grad[1] else None
        return grad_a, grad_src


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
    a = as_tensor_like(a, (a,), "reshape: input")
    shape = tuple(int(s) for s in shape)
    target = _resolve_shape(shape, a.numel())
    if target is None:
        raise ValueError(f"reshape: cannot reshape a tensor of shape {a.shape} "
                         f"({a.numel()} elements) into shape {shape}")
    if target == a.shape:
        return a
    return Reshape.apply(a, shape=target)


def transpose(a, axes=None):
    axes = (tuple(reversed(range(a.ndim))) if axes is None
            else tuple(int(x) % builtins.max(a.ndim, 1) for x in axes))
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


def unsqueeze(a, dim):
    """A view with a new dimension of size 1 at dim (-a.ndim - 1 <= dim <= a.ndim)."""
    a = as_tensor_like(a, (a,), "unsqueeze: input")
    dim = normalize_dim(dim, a.ndim, "unsqueeze", extra=1)
    return reshape(a, a.shape[:dim] + (1,) + a.shape[dim:])


def squeeze(a, dim=None):
    """A view without the dimensions of size 1 (only those among dim, an int or a tuple, when
    given; a named dimension of another size stays, as in PyTorch)."""
    a = as_tensor_like(a, (a,), "squeeze: input")
    dims = _normalize_axes(dim, a.ndim, "squeeze")
    return reshape(a, tuple(s for i, s in enumerate(a.shape) if not (i in dims and s == 1)))


def cat(tensors, dim=None, *, axis=None):
    """Join tensors along an existing dim (default 0); NumPy's `axis` is an alias."""
    if axis is not None:
        if dim is not None:
            raise TypeError("cat: give dim or its NumPy alias axis, not both")
        dim = axis
    tensors = list(tensors)
    if not tensors:
        raise ValueError("cat: needs at least one tensor")
    ndim = tensors[0].ndim
    if ndim == 0:
        raise ValueError("cat: 0-d tensors cannot be concatenated (stack them instead)")
    dim = normalize_dim(0 if dim is None else dim, ndim, "cat")
    first_dims = [s for i, s in enumerate(tensors[0].shape) if i != dim]
    for t in tensors:
        other_dims = [s for i, s in enumerate(t.shape) if i != dim]
        if t.ndim != ndim or other_dims != first_dims:
            raise ValueError(f"cat: shapes {[tuple(x.shape) for x in tensors]} differ outside "
                             f"dim {dim}")
    return Concat.apply(*tensors, axis=dim)


concat = cat


def stack(tensors, dim=0):
    """Join tensors of one shape along a new dim: cat of each unsqueezed at dim."""
    tensors = list(tensors)
    if not tensors:
        raise ValueError("stack: needs at least one tensor")
    shapes = [tuple(t.shape) for t in tensors]
    if len(set(shapes)) > 1:
        raise ValueError(f"stack: every tensor must have the same shape, got {shapes}")
    dim = normalize_dim(dim, len(shapes[0]), "stack", extra=1)
    return cat([unsqueeze(t, dim) for t in tensors], dim=dim)


def clone(a):
    """A copy of the data that stays in the graph (the gradient passes through unchanged)."""
    return Clone.apply(a)


def overwrite(a, src):
    """src broadcast to a's shape and dtype, as a differentiable op of both (for copy_/fill_)."""
    src = as_tensor_like(src, (a,), "copy_: src")
    try:
        fits = np.broadcast_shapes(src.shape, a.shape) == a.shape
    except ValueError:
        fits = False
    if not fits:
        raise ValueError(f"copy_: src of shape {src.shape} cannot be broadcast to shape {a.shape}")
    return Overwrite.apply(a, src)


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
        inside = None               # where a lies inside the bounds, as an array of a's module
        if self.low is not None:
            inside = a >= self.low
        if self.high is not None:
            inside = a <= self.high if inside is None else inside & (a <= self.high)
        return (grad if inside is None else grad * inside,)


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


# ---------------------------------------------------------------------------- comparisons
def _compare(op_name, compare, a, b):
    """compare(a, b) elementwise: a bool tensor without a graph (it has no gradient)."""
    a_t, b_t = as_tensor_like(a, (a, b)), as_tensor_like(b, (a, b))
    _broadcast_check(op_name, a_t, b_t)
    check_same_device(op_name, (a_t, b_t))
    return Tensor(compare(a_t.data, b_t.data), _copy=False)


def eq(a, b):
    return _compare("eq", operator.eq, a, b)


def ne(a, b):
    return _compare("ne", operator.ne, a, b)


def lt(a, b):
    return _compare("lt", operator.lt, a, b)


def le(a, b):
    return _compare("le", operator.le, a, b)


def gt(a, b):
    return _compare("gt", operator.gt, a, b)


def ge(a, b):
    return _compare("ge", operator.ge, a, b)
