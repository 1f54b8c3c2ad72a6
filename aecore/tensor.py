"""Tensor and the autograd-lite graph.

A `Tensor` wraps a NumPy or CuPy array. When it is the result of an op on tensors that require
gradients, it remembers the `Function` that made it (`tensor.creator`); the functions remember
their input tensors. `loss.backward()` walks that graph in reverse topological order, calling each
function's `backward` with the gradient of its output and handing the results to its inputs.

    x (leaf) --\
                Mul --> y --\
    w (leaf) --/             Sum --> loss        loss.backward(): Sum.backward, then Mul.backward
"""

import contextlib
import threading

import numpy as np

from .backend import device_of, get_array_module, is_cupy_array, normalize_device, to_device
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


class Function:
    """One node of the graph: `forward` on raw arrays, `backward` returning input gradients.

    Subclasses implement:
      forward(self, *arrays, **params) -> array
      backward(self, grad) -> one gradient per tensor input (None where `needs_input_grad` is
                              False, or for inputs that cannot have one)
    and keep what backward needs with `self.save_for_backward(...)` / attributes.
    Kernel-backed functions set `self.tier` to the tier that ran their forward.
    """

    tier = None

    def __init__(self):
        self.inputs = ()
        self.needs_input_grad = ()
        self.saved = ()
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

    def release(self):
        """Drop what backward needed, so the graph's memory is freed after backward()."""
        self.saved = ()
        self.inputs = ()
        self.released = True
        for key in list(vars(self)):
            if key not in ("inputs", "needs_input_grad", "saved", "released", "tier"):
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
        if requires_grad:
            function.inputs = tuple(tensors)
            result.creator = function
        return result


def _check_same_device_and_dtype(op_name, tensors):
    for t in tensors:
        check_dtype(t.dtype, f"{op_name}: an input")
    if len(tensors) < 2:
        return
    devices = {t.device for t in tensors}
    if len(devices) > 1:
        described = ", ".join(f"{t.device} {tuple(t.shape)}" for t in tensors)
        raise RuntimeError(f"{op_name}: all tensors must be on one device, got {described}; "
                           "move them with .to('cpu') or .to('cuda')")
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
    return Tensor(xp.asarray(value, dtype=reference.dtype), _copy=False)


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
    creator (the Function that made it, None for leaves).
    """

    __array_priority__ = 1000  # so `ndarray * tensor` calls Tensor.__rmul__

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
    def size(self):
        return int(self.data.size)

    @property
    def device(self):
        return device_of(self.data)

    @property
    def is_leaf(self):
        return self.creator is None

    def __len__(self):
        return self.shape[0]

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
        if self.size != 1:
            raise ValueError(f"item() needs a tensor with one element, got shape {self.shape}")
        return self.numpy().reshape(()).item()

    def tolist(self):
        return self.numpy().tolist()

    def detach(self):
        """The same data, cut from the graph."""
        return Tensor(self.data, _copy=False)

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
            if self.size != 1:
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

        order = _topological_order(self)
        pending = {id(self): grad}  # gradients waiting for their tensor's function
        for tensor in order:
            function = tensor.creator
            out_grad = pending.pop(id(tensor), None)
            if out_grad is None:
                continue
            if tensor.retains_grad:
                tensor._accumulate(out_grad)
            if function.released:
                raise RuntimeError(
                    f"backward() through {function.name} a second time: its saved arrays were "
                    "freed after the first backward. Pass retain_graph=True to the first call "
                    "if you need to backward twice.")
            input_grads = _run_backward(function, out_grad)
            for tensor_in, grad_in in zip(function.inputs, input_grads):
                if grad_in is None or not tensor_in.requires_grad:
                    continue
                if grad_in.shape != tensor_in.shape:
                    raise RuntimeError(f"internal error: {function.name}.backward returned a "
                                       f"gradient of shape {grad_in.shape} for an input of shape "
                                       f"{tensor_in.shape}")
                if tensor_in.creator is None:
                    tensor_in._accumulate(grad_in)
                elif id(tensor_in) in pending:
                    pending[id(tensor_in)] = pending[id(tensor_in)] + grad_in
                else:
                    pending[id(tensor_in)] = grad_in
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

    # Comparisons give plain boolean arrays: they have no gradient.
    def __lt__(self, other):
        return self.data < _raw(other)

    def __le__(self, other):
        return self.data <= _raw(other)

    def __gt__(self, other):
        return self.data > _raw(other)

    def __ge__(self, other):
        return self.data >= _raw(other)

    __hash__ = object.__hash__

    # ------------------------------------------------------------------ methods
    def sum(self, axis=None, keepdims=False):
        return _ops().sum(self, axis=axis, keepdims=keepdims)

    def mean(self, axis=None, keepdims=False):
        return _ops().mean(self, axis=axis, keepdims=keepdims)

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


def _raw(value):
    return value.data if isinstance(value, Tensor) else value


def _ops():
    from . import ops
    return ops


def _topological_order(root):
    """Tensors with a creator, each after every tensor that uses it (iterative DFS, no recursion)."""
    order = []
    visited = set()
    stack = [(root, False)]
    while stack:
        tensor, children_done = stack.pop()
        if children_done:
            order.append(tensor)
            continue
        if id(tensor) in visited:
            continue
        visited.add(id(tensor))
        stack.append((tensor, True))
        for parent in tensor.creator.inputs:
            if parent.creator is not None and id(parent) not in visited:
                stack.append((parent, False))
    order.reverse()  # root first: a tensor comes before the tensors it was made from
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


def _factory(fill):
    def make(*shape, requires_grad=False, device="cpu", dtype=np.float32):
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return tensor(fill(shape, dtype=dtype), requires_grad=requires_grad, device=device, dtype=dtype)
    return make


zeros = _factory(np.zeros)
ones = _factory(np.ones)


def randn(*shape, requires_grad=False, device="cpu", dtype=np.float32):
    from . import random
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    return tensor(random.randn(shape, dtype), requires_grad=requires_grad, device=device, dtype=dtype)


def rand(*shape, requires_grad=False, device="cpu", dtype=np.float32):
    from . import random
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    return tensor(random.rand(shape, dtype), requires_grad=requires_grad, device=device, dtype=dtype)
