"""Tensor and the autograd-lite graph.

A `Tensor` wraps a NumPy or CuPy array. When it is the result of an op on tensors that require
gradients, it remembers the `Function` that made it (`tensor.creator`); the functions remember
their input tensors. `loss.backward()` walks that graph in reverse topological order, calling each
function's `backward` with the gradient of its output and handing the results to its inputs.

    x (leaf) --\
                Mul --> y --\
    w (leaf) --/             Sum --> loss        loss.backward(): Sum.backward, then Mul.backward

In-place ops (`add_`, `+=`, `clamp_`, ...) follow PyTorch. Every tensor has a version counter
(`_version`) that each in-place op bumps; views (reshape, transpose, ...) share their base's. A
Function records the version of every tensor whose array it saved for backward, and its backward
refuses to run on changed values. An in-place op that autograd must record is recorded on a copy
of the old values, which takes the tensor's old place in the graph (functions remember the creator
each input had when they ran, so they still reach the old history). Writes through `.data` (the
raw array, as optimizers and initializers do) stay outside the graph and the counter, like
PyTorch's `.data`.
"""

import contextlib
import math
import threading
import weakref

import numpy as np

from .backend import (device_constant, device_of, get_array_module, is_cupy_array, normalize_device,
                      to_device)
from .kernels.registry import FLOAT_DTYPES

_grad_mode = threading.local()

# Observers of every op call (the profiler and graph tools of aecore.inspect register here).
# Each has on_forward(function, input_arrays, output_array, seconds, started) and
# on_backward(function, grad_array, input_grads, seconds, started): `started` is the
# time.perf_counter() at which the op began, `seconds` how long it took.
_observers = []


def is_grad_enabled():
    return getattr(_grad_mode, "enabled", True)


@contextlib.contextmanager
def no_grad():
    """Inside this block no graph is recorded (inference, optimizer updates)."""
    previous = is_grad_enabled()
    _grad_mode.enabled = False
    try:
        yield
    finally:
        _grad_mode.enabled = previous


@contextlib.contextmanager
def enable_grad():
    previous = is_grad_enabled()
    _grad_mode.enabled = True
    try:
        yield
    finally:
        _grad_mode.enabled = previous


class _VersionCounter:
    """How many in-place ops changed an array; shared by a tensor, its views and detach()."""

    __slots__ = ("value",)

    def __init__(self):
        self.value = 0


class Function:
    """One node of the graph: `forward` on raw arrays, `backward` returning input gradients.

    Subclasses implement:
      forward(self, *arrays, **params) -> array
      backward(self, grad) -> one gradient per tensor input (None where `needs_input_grad` is
                              False, or for inputs that cannot have one)
    and keep what backward needs with `self.save_for_backward(...)` / attributes.
    Kernel-backed functions set `self.tier` to the tier that ran their forward.

    When the op is recorded, apply() notes the version of each tensor whose array (or a view of
    it) was saved with save_for_backward, and backward() checks them first (check_saved_versions).
    """

    tier = None
    # the attributes release() keeps (everything else is what backward needed)
    _KEPT = ("inputs", "input_creators", "needs_input_grad", "saved", "saved_versions",
             "retained_output", "released", "tier")

    def __init__(self):
        self.inputs = ()
        self.input_creators = ()      # each input's creator when this op ran (in-place ops move it)
        self.needs_input_grad = ()
        self.saved = ()
        self.saved_versions = ()      # (array, version counter, version at save time)
        self.retained_output = None   # weakref to the output, when it retains its grad
        self.released = False

    @property
    def name(self):
        return type(self).__name__

    def save_for_backward(self, *arrays):
        self.saved = arrays

    def forward(self, *arrays, **params):  # pragma: no cover - abstract
        raise NotImplementedError

    def backward(self, grad):  # pragma: no cover - abstract
        raise NotImplementedError

    def check_saved_versions(self):
        """Refuse to run backward on saved arrays that an in-place op changed since forward."""
        for array, counter, version in self.saved_versions:
            if counter.value != version:
                raise RuntimeError(
                    f"one of the variables needed for gradient computation has been modified by "
                    f"an inplace operation: [{array.dtype} {list(array.shape)}], saved by "
                    f"{self.name} for backward, is at version {counter.value}; expected version "
                    f"{version} instead. Do the in-place op after backward(), use its out-of-place "
                    "form (x = x + y instead of x += y), or clone() the tensor first")

    def release(self):
        """Drop what backward needed, so the graph's memory is freed after backward()."""
        self.saved = self.saved_versions = ()
        self.inputs = self.input_creators = ()
        self.retained_output = None
        self.released = True
        for key in list(vars(self)):
            if key not in self._KEPT:
                delattr(self, key)

    @classmethod
    def apply(cls, *inputs, **params):
        """Run the op on tensors and, when gradients are needed, record it in the graph."""
        tensors = [as_tensor_like(value, inputs, f"{cls.__name__}: an input") for value in inputs]
        _check_same_device_and_dtype(cls.__name__, tensors)
        function = cls()
        function.needs_input_grad = tuple(t.requires_grad for t in tensors)
        arrays = [t.data for t in tensors]
        if _observers:
            import time
            started = time.perf_counter()
            out = function.forward(*arrays, **params)
            elapsed = time.perf_counter() - started
            for observer in _observers:
                observer.on_forward(function, arrays, out, elapsed, started)
        else:
            out = function.forward(*arrays, **params)
        requires_grad = is_grad_enabled() and any(function.needs_input_grad)
        result = Tensor(out, requires_grad=requires_grad, _copy=False)
        _link_view(result, tensors)
        if requires_grad:
            function.inputs = tuple(tensors)
            function.input_creators = tuple(t.creator for t in tensors)
            function.saved_versions = _saved_versions(function.saved, tensors + [result])
            result.creator = function
        return result


def _storage_root(array):
    """The array that owns the memory `array` looks at (itself unless it is a view)."""
    while getattr(array, "base", None) is not None:
        array = array.base
    return array


def _link_view(result, tensors):
    """An op's output that views an input's memory (reshape, transpose) shares its version
    counter, as in PyTorch, and is remembered by the base so in-place ops can refuse to change
    memory that live views see."""
    root = _storage_root(result.data)
    for t in tensors:
        if _storage_root(t.data) is root:
            base = t._base if t._base is not None else t
            result._version_counter = t._version_counter
            result._base = base
            base._views = [ref for ref in base._views if ref() is not None] + [weakref.ref(result)]
            return


def _saved_versions(saved, tensors):
    """(array, counter, version) for every saved array that is (a view of) a tensor's data."""
    roots = [(_storage_root(t.data), t) for t in tensors]
    versions = []
    for array in saved:
        if not hasattr(array, "shape"):
            continue
        root = _storage_root(array)
        owner = next((t for r, t in roots if r is root), None)
        if owner is not None:
            versions.append((array, owner._version_counter, owner._version))
    return tuple(versions)


def check_same_device(op_name, tensors):
    """One device for all the tensors of an op, or a RuntimeError that says how to move them."""
    devices = {t.device for t in tensors}
    if len(devices) > 1:
        described = ", ".join(f"{t.device} {tuple(t.shape)}" for t in tensors)
        raise RuntimeError(f"{op_name}: all tensors must be on one device, got {described}; "
                           "move them with .to('cpu') or .to('cuda')")


def _check_same_device_and_dtype(op_name, tensors):
    for t in tensors:
        check_dtype(t.dtype, f"{op_name}: an input")
    if len(tensors) < 2:
        return
    check_same_device(op_name, tensors)
    dtypes = {t.dtype for t in tensors if t.dtype.kind == "f"}
    if len(dtypes) > 1:
        described = ", ".join(f"{t.dtype} {tuple(t.shape)}" for t in tensors)
        raise TypeError(f"{op_name}: all tensors must have one dtype, got {described}; "
                        "convert with .float() or .double()")


def as_tensor_like(value, others, what="an operand"):
    """A Tensor for `value`; Python numbers and arrays take the dtype/device of the tensors.
    `what` names the value if its dtype is refused (see check_dtype)."""
    if isinstance(value, Tensor):
        return value
    check_dtype(dtype_of(value), what)
    reference = next((o for o in others if isinstance(o, Tensor)), None)
    if reference is None:
        return Tensor(value)
    xp = reference.xp
    if reference.dtype.kind == "f":
        if xp is not np and np.ndim(value) == 0 and not hasattr(value, "__cuda_array_interface__"):
            # a number beside a GPU tensor (a loss weight, 0.5): its 0-d device copy is made
            # once and reused, not copied from the host at every use
            return Tensor(device_constant(xp, np.asarray(value, dtype=reference.dtype)),
                          _copy=False)
        return Tensor(xp.asarray(value, dtype=reference.dtype), _copy=False)
    # beside a boolean or integer tensor (a comparison, argmax indices) a float stays a float:
    # float32, as PyTorch's `mask * 0.5`
    array = xp.asarray(value)
    return Tensor(array.astype(np.float32) if array.dtype.kind == "f" else array, _copy=False)


# ---------------------------------------------------------------------------- dtypes


def dtype_of(value):
    """The dtype of a tensor, an array, or the array NumPy would make of a number or a list."""
    dtype = getattr(value, "dtype", None)
    return np.dtype(dtype) if dtype is not None else np.asarray(value).dtype


def check_dtype(dtype, what):
    """Refuse data aecore cannot compute with, naming it as `what` ("conv2d: input x").

    aecore computes in float32 and float64. Integers and bools are numbers too: they become
    floats. Everything else would be silently wrong or crash deep in a kernel: float16 (no
    kernel takes it), complex (the imaginary part would be dropped), strings (parsed as numbers),
    objects."""
    dtype = np.dtype(dtype)
    if dtype in FLOAT_DTYPES or dtype.kind in "biu":
        return
    raise TypeError(f"{what} has dtype {dtype}; aecore computes in float32 or float64 "
                    "(convert with .astype(np.float32))")


def _target_dtype(array, dtype, from_python):
    """The dtype of a new tensor: `dtype` if given, else the array's float32/float64; float32
    for integers, bools and Python data (NumPy would pick float64)."""
    if dtype is not None:
        dtype = np.dtype(dtype)
        if dtype not in FLOAT_DTYPES:
            raise TypeError(f"dtype must be float32 or float64, got {dtype}")
        return dtype
    if array.dtype in FLOAT_DTYPES and not from_python:
        return array.dtype
    return np.dtype(np.float32)


class Tensor:
    """An n-dimensional array that can record the operations applied to it.

    Attributes: data (the numpy/cupy array), grad (an array, after backward), requires_grad,
    creator (the Function that made it, None for leaves), _version (in-place ops so far).
    Comparisons (==, <, ...) give bool tensors without a graph; hashing is by identity, as in
    PyTorch, so tensors work as dict keys, but `tensor in a_list` compares values: use `is`.
    """

    __array_priority__ = 1000  # so `ndarray * tensor` calls Tensor.__rmul__
    _base = None               # the tensor this one is a view of (set by Function.apply)
    _views = ()                # weak references to the live views of this tensor

    def __init__(self, data, requires_grad=False, dtype=None, _copy=True):
        if isinstance(data, Tensor):
            data = data.data
        # Python numbers and lists become float32; NumPy scalars (e.g. from 0-d arithmetic) keep
        # their dtype, as arrays do.
        from_python = not (isinstance(data, (np.ndarray, np.generic)) or is_cupy_array(data))
        if not (isinstance(data, np.ndarray) or is_cupy_array(data)):
            data = np.asarray(data)
        if dtype is not None or _copy or from_python:
            check_dtype(data.dtype, "tensor: data")
            data = data.astype(_target_dtype(data, dtype, from_python), copy=_copy and not from_python)
        self.data = data
        self.grad = None
        self.requires_grad = bool(requires_grad)
        self.creator = None
        self.name = None
        self.retains_grad = False
        self._version_counter = _VersionCounter()
        if self.requires_grad and data.dtype.kind != "f":
            raise TypeError(f"only floating-point tensors can require gradients, got {data.dtype}")

    # ------------------------------------------------------------------ properties
    @property
    def xp(self):
        return get_array_module(self.data)

    @property
    def shape(self):
        return tuple(self.data.shape)

    @property
    def ndim(self):
        return self.data.ndim

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def device(self):
        return device_of(self.data)

    @property
    def is_leaf(self):
        return self.creator is None

    @property
    def _version(self):
        """How many in-place ops have changed this tensor's memory (PyTorch's `_version`)."""
        return self._version_counter.value

    def size(self, dim=None):
        """The shape as a tuple, or with `dim` the length of that dimension (PyTorch's size())."""
        if dim is None:
            return self.shape
        return self.shape[_ops().normalize_dim(dim, self.ndim, "size")]

    def numel(self):
        """The number of elements (NumPy's `.size`)."""
        return int(self.data.size)

    def dim(self):
        """The number of dimensions (PyTorch's name for ndim)."""
        return self.ndim

    def __len__(self):
        return self.shape[0]

    def __getstate__(self):
        """Pickling and deepcopy leave out the weak references to views (they cannot be pickled)."""
        state = dict(vars(self))
        state.pop("_views", None)
        return state

    def __repr__(self):
        body = np.array2string(self.numpy(), precision=4, threshold=20, edgeitems=2,
                               separator=", ", prefix="tensor(")
        extras = []
        if self.dtype != np.float32:
            extras.append(f"dtype={self.dtype}")
        if self.device != "cpu":
            extras.append(f"device='{self.device}'")
        if self.creator is not None:
            extras.append(f"grad_fn={self.creator.name}")
        elif self.requires_grad:
            extras.append("requires_grad=True")
        return f"tensor({body}{''.join(', ' + e for e in extras)})"

    # ------------------------------------------------------------------ conversion
    def numpy(self):
        """A NumPy array of the data (copied to the host from a GPU)."""
        return to_device(self.data, "cpu") if self.device == "cuda" else self.data

    def item(self):
        if self.numel() != 1:
            raise ValueError(f"item() needs a tensor with one element, got shape {self.shape}")
        return self.numpy().reshape(()).item()

    def tolist(self):
        return self.numpy().tolist()

    def __bool__(self):
        """The truth of a one-element tensor (`if (x > 0):`); more elements are ambiguous."""
        if self.numel() != 1:
            raise RuntimeError(f"the truth value of a tensor of shape {self.shape} is ambiguous: "
                               "it needs exactly one element (reduce it first, e.g. with .max())")
        return bool(self.item())

    def detach(self):
        """The same data, cut from the graph (it shares the version counter, as in PyTorch)."""
        detached = Tensor(self.data, _copy=False)
        detached._version_counter = self._version_counter
        return detached

    def clone(self):
        """A copy of the data that stays in the graph: gradients flow back to self."""
        return _ops().clone(self)

    def to(self, device=None, dtype=None):
        """A copy on another device and/or with another dtype (self when nothing changes).

        The result is a new leaf unless nothing changed; gradients do not flow across `to`.
        """
        result = self
        if device is not None and normalize_device(device) != self.device:
            result = Tensor(to_device(self.data, device), requires_grad=self.requires_grad, _copy=False)
        if dtype is not None and np.dtype(dtype) != self.dtype:
            if np.dtype(dtype) not in FLOAT_DTYPES:
                raise TypeError(f"to: dtype must be float32 or float64, got {np.dtype(dtype)}")
            from . import ops
            result = ops.cast(result, np.dtype(dtype))
        return result

    def cpu(self):
        return self.to("cpu")

    def cuda(self):
        return self.to("cuda")

    def float(self):
        return self.to(dtype=np.float32)

    def double(self):
        return self.to(dtype=np.float64)

    def requires_grad_(self, flag=True):
        if flag and self.dtype.kind != "f":
            raise TypeError(f"only floating-point tensors can require gradients, got {self.dtype}")
        self.requires_grad = bool(flag)
        return self

    def retain_grad(self):
        """Keep .grad on this non-leaf tensor after backward (leaves always keep theirs)."""
        self.retains_grad = True
        if self.creator is not None:
            self.creator.retained_output = weakref.ref(self)
        return self

    def zero_grad(self):
        self.grad = None

    # ------------------------------------------------------------------ backward
    def backward(self, grad=None, retain_graph=False):
        """Accumulate d(self)/d(leaf) into every leaf's .grad that requires gradients.

        grad: the gradient of some scalar with respect to self; may be omitted only when self
        has a single element. retain_graph: keep the graph for another backward pass.
        """
        if not self.requires_grad:
            raise RuntimeError("backward() called on a tensor that does not require gradients "
                               "(no input had requires_grad=True, or it was made under no_grad())")
        if grad is None:
            if self.numel() != 1:
                raise RuntimeError(
                    f"backward() without a gradient needs a tensor with one element (a loss); "
                    f"this one has shape {self.shape}: pass grad= of the same shape, or reduce it "
                    f"with .sum() or .mean() first")
            grad = self.xp.ones_like(self.data)
        else:
            grad = grad.data if isinstance(grad, Tensor) else grad
            grad = self.xp.asarray(grad, dtype=self.dtype)
            if grad.shape != self.shape:
                raise ValueError(f"backward(): grad has shape {tuple(grad.shape)} but the tensor "
                                 f"has shape {self.shape}")
        if self.creator is None:
            self._accumulate(grad)
            return

        # Gradients wait under their tensor's creator: a tensor changed in place has a new
        # creator, and the functions that used its old value still point at the old one.
        pending = {id(self.creator): grad}
        for function in _topological_order(self.creator):
            out_grad = pending.pop(id(function), None)
            if out_grad is None:
                continue
            if function.released:
                raise RuntimeError(
                    f"backward() through {function.name} a second time: its saved arrays were "
                    "freed after the first backward. Pass retain_graph=True to the first call "
                    "if you need to backward twice.")
            retained = function.retained_output() if function.retained_output else None
            if retained is not None:
                retained._accumulate(out_grad)
            function.check_saved_versions()
            input_grads = _run_backward(function, out_grad)
            edges = zip(function.inputs, function.input_creators, function.needs_input_grad,
                        input_grads)
            for tensor_in, creator_in, needed, grad_in in edges:
                if grad_in is None or not needed:
                    continue
                if grad_in.shape != tensor_in.shape:
                    raise RuntimeError(f"internal error: {function.name}.backward returned a "
                                       f"gradient of shape {grad_in.shape} for an input of shape "
                                       f"{tensor_in.shape}")
                if creator_in is None:
                    tensor_in._accumulate(grad_in)
                elif id(creator_in) in pending:
                    pending[id(creator_in)] = pending[id(creator_in)] + grad_in
                else:
                    pending[id(creator_in)] = grad_in
            if not retain_graph:
                function.release()  # keeps tensor.creator, so a second backward says why it fails

    def _accumulate(self, grad):
        if self.grad is None:
            # A copy: one gradient array may be handed to several inputs (e.g. by Add), and
            # users and optimizers may change .grad in place.
            self.grad = grad.copy()
        else:
            self.grad = self.grad + grad

    # ------------------------------------------------------------------ operators
    def __add__(self, other):
        return _ops().add(self, other)

    def __radd__(self, other):
        return _ops().add(other, self)

    def __sub__(self, other):
        return _ops().sub(self, other)

    def __rsub__(self, other):
        return _ops().sub(other, self)

    def __mul__(self, other):
        return _ops().mul(self, other)

    def __rmul__(self, other):
        return _ops().mul(other, self)

    def __truediv__(self, other):
        return _ops().div(self, other)

    def __rtruediv__(self, other):
        return _ops().div(other, self)

    def __neg__(self):
        return _ops().neg(self)

    def __pow__(self, exponent):
        return _ops().power(self, exponent)

    def __matmul__(self, other):
        return _ops().matmul(self, other)

    def __rmatmul__(self, other):
        return _ops().matmul(other, self)

    def __getitem__(self, index):
        return _ops().getitem(self, index)

    # `t += x` changes t in place (PyTorch), it does not rebind the name to a new tensor
    def __iadd__(self, other):
        return self.add_(other)

    def __isub__(self, other):
        return self.sub_(other)

    def __imul__(self, other):
        return self.mul_(other)

    def __itruediv__(self, other):
        return self.div_(other)

    # Comparisons give bool tensors without a graph (they have no gradient). Other operand types
    # get NotImplemented, so `t == None` is False and `t < "a"` a TypeError, as in Python.
    def __eq__(self, other):
        return _ops().eq(self, other) if _comparable(other) else NotImplemented

    def __ne__(self, other):
        return _ops().ne(self, other) if _comparable(other) else NotImplemented

    def __lt__(self, other):
        return _ops().lt(self, other) if _comparable(other) else NotImplemented

    def __le__(self, other):
        return _ops().le(self, other) if _comparable(other) else NotImplemented

    def __gt__(self, other):
        return _ops().gt(self, other) if _comparable(other) else NotImplemented

    def __ge__(self, other):
        return _ops().ge(self, other) if _comparable(other) else NotImplemented

    __hash__ = object.__hash__  # identity, as PyTorch (defining __eq__ would drop hashing)

    # ------------------------------------------------------------------ reductions
    # PyTorch's dim / keepdim; NumPy's axis / keepdims are accepted as aliases.
    def sum(self, dim=None, keepdim=False, *, axis=None, keepdims=None):
        return _ops().sum(self, dim, keepdim, axis=axis, keepdims=keepdims)

    def mean(self, dim=None, keepdim=False, *, axis=None, keepdims=None):
        return _ops().mean(self, dim, keepdim, axis=axis, keepdims=keepdims)

    def var(self, dim=None, unbiased=None, keepdim=False, *, correction=None, axis=None,
            keepdims=None):
        return _ops().var(self, dim, unbiased, keepdim, correction=correction, axis=axis,
                          keepdims=keepdims)

    def std(self, dim=None, unbiased=None, keepdim=False, *, correction=None, axis=None,
            keepdims=None):
        return _ops().std(self, dim, unbiased, keepdim, correction=correction, axis=axis,
                          keepdims=keepdims)

    def max(self, dim=None, keepdim=False):
        return _ops().max(self, dim, keepdim)

    def min(self, dim=None, keepdim=False):
        return _ops().min(self, dim, keepdim)

    def argmax(self, dim=None, keepdim=False):
        return _ops().argmax(self, dim, keepdim)

    def argmin(self, dim=None, keepdim=False):
        return _ops().argmin(self, dim, keepdim)

    # ------------------------------------------------------------------ shape methods
    def reshape(self, *shape):
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return _ops().reshape(self, shape)

    def view(self, *shape):
        return self.reshape(*shape)

    def transpose(self, *axes):
        if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
            axes = tuple(axes[0])
        return _ops().transpose(self, axes if axes else None)

    def permute(self, *axes):
        return self.transpose(*axes)

    @property
    def T(self):
        return _ops().transpose(self, None)

    def flatten(self, start_dim=0, end_dim=-1):
        return _ops().flatten(self, start_dim, end_dim)

    def unsqueeze(self, dim):
        return _ops().unsqueeze(self, dim)

    def squeeze(self, dim=None):
        return _ops().squeeze(self, dim)

    # ------------------------------------------------------------------ elementwise
    def exp(self):
        return _ops().exp(self)

    def log(self):
        return _ops().log(self)

    def sqrt(self):
        return _ops().sqrt(self)

    def abs(self):
        return _ops().abs(self)

    def clip(self, min=None, max=None):
        return _ops().clip(self, min, max)

    clamp = clip

    def relu(self):
        return _ops().relu(self)

    def leaky_relu(self, negative_slope=0.01):
        return _ops().leaky_relu(self, negative_slope)

    def sigmoid(self):
        return _ops().sigmoid(self)

    def tanh(self):
        return _ops().tanh(self)

    def softplus(self):
        return _ops().softplus(self)

    # ------------------------------------------------------------------ in-place ops
    def add_(self, other, *, alpha=1):
        return self._in_place("add_", _ops().add, other, alpha=alpha)

    def sub_(self, other, *, alpha=1):
        return self._in_place("sub_", _ops().sub, other, alpha=alpha)

    def mul_(self, other):
        return self._in_place("mul_", _ops().mul, other)

    def div_(self, other):
        return self._in_place("div_", _ops().div, other)

    def clamp_(self, min=None, max=None):
        return self._in_place("clamp_", _ops().clip, min=min, max=max)

    clip_ = clamp_

    def copy_(self, src):
        """Write `src` (broadcast to this shape, converted to this dtype and device) into self."""
        if isinstance(src, Tensor):
            src = src.to(device=self.device)
            if src.dtype != self.dtype and self.dtype.kind == src.dtype.kind == "f":
                src = src.to(dtype=self.dtype)
        return self._in_place("copy_", _ops().overwrite, src)

    def fill_(self, value):
        """Set every element to `value`: a number or a 0-d tensor."""
        if isinstance(value, Tensor) and value.ndim != 0:
            raise ValueError(f"fill_: value must be a number or a 0-d tensor, got a tensor of "
                             f"shape {value.shape}")
        return self.copy_(value)

    def zero_(self):
        return self.fill_(0)

    def _in_place(self, op_name, out_of_place, *operands, **params):
        """Write out_of_place(self, *operands, **params) into self's memory, as PyTorch does.

        With nothing to record (no_grad, or nothing requires grad) the value is written and the
        version bumped, so a Function that saved this memory refuses to backward through it. When
        autograd records the op, it runs on a copy of the old value that takes self's old place
        in the graph, and self becomes the op's output.
        """
        recording = is_grad_enabled() and (self.requires_grad or any(
            isinstance(o, Tensor) and o.requires_grad for o in operands))
        if recording:
            self._check_in_place_can_be_recorded(op_name)
        current = self._old_value() if recording else self
        result = out_of_place(current, *operands, **params)
        if result.shape != self.shape:
            raise ValueError(f"{op_name}: the result has shape {result.shape}, but an in-place op "
                             f"cannot change this tensor's shape {self.shape}")
        if not np.can_cast(result.dtype, self.dtype, "same_kind"):
            raise TypeError(f"{op_name}: the result has dtype {result.dtype}, which cannot be "
                            f"stored in this {self.dtype} tensor")
        self.data[...] = result.data
        self._version_counter.value += 1
        if recording:
            if self.retains_grad:  # the retained grad is the new value's, as in PyTorch
                if self.creator is not None:
                    self.creator.retained_output = None
                result.creator.retained_output = weakref.ref(self)
            self.creator, self.requires_grad = result.creator, True
        return self

    def _old_value(self):
        """A copy of self that takes self's place in the graph before an in-place op."""
        old = Tensor(self.data.copy(), _copy=False)
        old.requires_grad, old.creator = self.requires_grad, self.creator
        return old

    def _check_in_place_can_be_recorded(self, op_name):
        shape = list(self.shape)
        if self.is_leaf and self.requires_grad:
            raise RuntimeError(f"{op_name}: a leaf tensor that requires grad (shape {shape}) is "
                               "being used in an in-place operation; change it under "
                               "ae.no_grad() (as optimizers do), or work on a clone()")
        if self._base is not None:
            raise RuntimeError(f"{op_name}: this tensor (shape {shape}) is a view of another "
                               "(reshape, view, transpose, ...), and aecore cannot record an "
                               "in-place op on a view; use the out-of-place form (x = x + y)")
        if any(ref() is not None for ref in self._views):
            raise RuntimeError(f"{op_name}: views of this tensor (shape {shape}; made by reshape, "
                               "view, transpose, ...) are still in use, and aecore cannot record "
                               "an in-place op that they would see; use the out-of-place form "
                               "(x = x + y)")


def _comparable(value):
    """What tensors compare with: tensors, numbers and arrays."""
    return isinstance(value, (Tensor, int, float, np.generic, np.ndarray)) or is_cupy_array(value)


def _ops():
    from . import ops
    return ops


def _topological_order(root):
    """Functions, each after every function that uses its output (iterative DFS, no recursion)."""
    order = []
    visited = set()
    stack = [(root, False)]
    while stack:
        function, children_done = stack.pop()
        if children_done:
            order.append(function)
            continue
        if id(function) in visited:
            continue
        visited.add(id(function))
        stack.append((function, True))
        for parent in function.input_creators:
            if parent is not None and id(parent) not in visited:
                stack.append((parent, False))
    order.reverse()  # root first: a function comes before the functions that made its inputs
    return order


def _run_backward(function, grad):
    if _observers:
        import time
        started = time.perf_counter()
        grads = function.backward(grad)
        elapsed = time.perf_counter() - started
    else:
        grads = function.backward(grad)
    if not isinstance(grads, tuple):
        grads = (grads,)
    if len(grads) != len(function.inputs):
        raise RuntimeError(f"internal error: {function.name}.backward returned {len(grads)} "
                           f"gradients for {len(function.inputs)} inputs")
    if _observers:
        for observer in _observers:
            observer.on_backward(function, grad, grads, elapsed, started)
    return grads


# ---------------------------------------------------------------------------- factories
def tensor(data, requires_grad=False, device="cpu", dtype=None):
    """Make a tensor of `data` (an array, a number or nested lists).

    float32 and float64 are the supported dtypes (aecore computes in nothing else): float32 and
    float64 arrays keep theirs, integers, bools and Python numbers become float32, unless `dtype`
    says otherwise. float16, complex, string and object data are refused with a TypeError:
    convert them first (e.g. with .astype(np.float32)).
    """
    if isinstance(data, Tensor):
        data = data.data
    device = normalize_device(device)
    result = Tensor(data, requires_grad=requires_grad, dtype=dtype)
    if device != result.device:
        result = Tensor(to_device(result.data, device), requires_grad=requires_grad, _copy=False)
    return result


def from_numpy(array):
    """A tensor that shares `array`'s memory: a write through either one shows in the other
    (torch.from_numpy). Its dtype is the array's; writes to the array bypass the version counter."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"from_numpy: expected a numpy.ndarray, got {type(array).__name__}")
    check_dtype(array.dtype, "from_numpy: array")
    return Tensor(array, _copy=False)


def _shape_of(shape, op_name):
    """PyTorch's factories take sizes as arguments or as one tuple/list: (2, 3) or ((2, 3),)."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    for size in shape:
        if isinstance(size, bool) or not isinstance(size, (int, np.integer)):
            raise TypeError(f"{op_name}: sizes must be ints, got {shape!r}")
        if size < 0:
            raise ValueError(f"{op_name}: sizes must be >= 0, got {shape!r}")
    return tuple(int(size) for size in shape)


def _made(array, requires_grad, device, dtype):
    """A new leaf of `array` (a host array) in `dtype` on `device`."""
    return tensor(array, requires_grad=requires_grad, device=device, dtype=dtype)


def zeros(*size, requires_grad=False, device="cpu", dtype=np.float32):
    return _made(np.zeros(_shape_of(size, "zeros")), requires_grad, device, dtype)


def ones(*size, requires_grad=False, device="cpu", dtype=np.float32):
    return _made(np.ones(_shape_of(size, "ones")), requires_grad, device, dtype)


def empty(*size, requires_grad=False, device="cpu", dtype=np.float32):
    """Uninitialized memory, as torch.empty: write every element before reading it."""
    return _made(np.empty(_shape_of(size, "empty")), requires_grad, device, dtype)


def full(size, fill_value, *, requires_grad=False, device="cpu", dtype=np.float32):
    """A tensor of shape `size` (a tuple or list) with every element `fill_value`."""
    if not isinstance(size, (tuple, list)):
        raise TypeError(f"full: size must be a tuple or list of ints, got {size!r}")
    return _made(np.full(_shape_of(size, "full"), fill_value, dtype=np.float64), requires_grad,
                 device, dtype)


def arange(start, end=None, step=1, *, requires_grad=False, device="cpu", dtype=np.float32):
    """start, start + step, ... up to end (excluded); arange(n) is 0 .. n-1, as torch.arange.

    The values are float32 (or dtype=np.float64), also for integer arguments: aecore computes in
    floats only, as ae.tensor([0, 1, 2]) is float32. Each value is start + i * step, computed in
    float64, and there are ceil((end - start) / step) of them (PyTorch's rule).
    """
    if end is None:
        start, end = 0, start
    for name, value in (("start", start), ("end", end), ("step", step)):
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise TypeError(f"arange: {name} must be a number, got {value!r}")
    if step == 0:
        raise ValueError("arange: step must be nonzero")
    count = math.ceil((end - start) / step)
    if count < 0:
        raise ValueError(f"arange: the range from {start} to {end} goes against step {step}")
    values = start + np.arange(count, dtype=np.float64) * step
    return _made(values, requires_grad, device, dtype)


def linspace(start, end, steps, *, requires_grad=False, device="cpu", dtype=np.float32):
    """`steps` evenly spaced values from start to end, both included (torch.linspace).

    Computed as PyTorch does, in the tensor's dtype: the first half counts up from start, the
    second half down from end, so both ends are exact.
    """
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)):
        raise TypeError(f"linspace: steps must be an int, got {steps!r}")
    if steps < 0:
        raise ValueError(f"linspace: steps must be >= 0, got {steps}")
    number = np.dtype(dtype).type
    start, end = number(start), number(end)
    if steps == 1:
        return _made(np.array([start]), requires_grad, device, dtype)
    step = (end - start) / number(steps - 1)
    i = np.arange(steps).astype(number)
    values = np.where(i < steps // 2, start + step * i, end - step * (number(steps - 1) - i))
    return _made(values, requires_grad, device, dtype)


def _like(input, op_name, make, requires_grad, device, dtype):
    """A new leaf of make(shape, dtype) with input's shape, and its dtype and device unless given
    (integer and bool tensors give float32: aecore computes in floats)."""
    if not isinstance(input, Tensor):
        raise TypeError(f"{op_name}: input must be a Tensor, got {type(input).__name__}")
    if dtype is None:
        dtype = input.dtype if input.dtype.kind == "f" else np.float32
    return _made(make(input.shape, np.dtype(dtype)), requires_grad, device or input.device, dtype)


def zeros_like(input, *, requires_grad=False, device=None, dtype=None):
    return _like(input, "zeros_like", np.zeros, requires_grad, device, dtype)


def ones_like(input, *, requires_grad=False, device=None, dtype=None):
    return _like(input, "ones_like", np.ones, requires_grad, device, dtype)


def full_like(input, fill_value, *, requires_grad=False, device=None, dtype=None):
    return _like(input, "full_like", lambda shape, dt: np.full(shape, fill_value, dtype=dt),
                 requires_grad, device, dtype)


def rand_like(input, *, requires_grad=False, device=None, dtype=None):
    """Uniform [0, 1) draws from aecore's seeded generator (ae.manual_seed), input's shape."""
    from . import random
    return _like(input, "rand_like", random.rand, requires_grad, device, dtype)


def randn_like(input, *, requires_grad=False, device=None, dtype=None):
    """Standard normal draws from aecore's seeded generator (ae.manual_seed), input's shape."""
    from . import random
    return _like(input, "randn_like", random.randn, requires_grad, device, dtype)


def randn(*size, requires_grad=False, device="cpu", dtype=np.float32):
    from . import random
    return _made(random.randn(_shape_of(size, "randn"), dtype), requires_grad, device, dtype)


def rand(*size, requires_grad=False, device="cpu", dtype=np.float32):
    from . import random
    return _made(random.rand(_shape_of(size, "rand"), dtype), requires_grad, device, dtype)
