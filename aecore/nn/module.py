"""Module and Parameter: PyTorch's way of grouping parameters, layers and state.

Assigning a Parameter or a Module as an attribute registers it, so `parameters()`,
`state_dict()` and `repr()` find everything without bookkeeping in each layer. Buffers
(`register_buffer`) are tensors a module keeps but does not train, such as BatchNorm's running
statistics: they move with `.to()`, and the persistent ones are saved in `state_dict()`.
"""

from collections import OrderedDict

import numpy as np

from ..backend import is_cupy_array, normalize_device, to_device
from ..tensor import Function, Tensor


class Parameter(Tensor):
    """A tensor that a Module trains: requires_grad=True unless told otherwise."""

    def __init__(self, data, requires_grad=True):
        if isinstance(data, Tensor):
            data = data.data
        super().__init__(data, requires_grad=requires_grad)

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()


class _BackwardHook(Function):
    """Identity in forward; in backward, shows the gradient of a module's output to hooks."""

    def forward(self, x, module):
        self.module = module
        return x

    def backward(self, grad):
        for hook in list(self.module._backward_hooks.values()):
            hook(self.module, grad)
        return (grad,)


def _as_buffer(value, what):
    """A buffer's value: a Tensor (kept as given, as PyTorch does), an array wrapped in a Tensor
    without a copy or a change of dtype, or None."""
    if value is None or isinstance(value, Tensor):
        return value
    if isinstance(value, np.ndarray) or is_cupy_array(value):
        return Tensor(value, _copy=False)
    raise TypeError(f"{what}: a buffer must be a Tensor, an array or None, got "
                    f"{type(value).__name__}")


class RemovableHandle:
    def __init__(self, hooks, key):
        self.hooks, self.key = hooks, key

    def remove(self):
        self.hooks.pop(self.key, None)


class Module:
    """Base class of every layer and model. Subclasses define `forward`."""

    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_non_persistent_buffers", set())
        object.__setattr__(self, "_forward_hooks", OrderedDict())
        object.__setattr__(self, "_backward_hooks", OrderedDict())
        object.__setattr__(self, "_hook_counter", 0)
        object.__setattr__(self, "training", True)

    # ------------------------------------------------------------------ registration
    def __setattr__(self, name, value):
        if "_parameters" not in self.__dict__:
            raise RuntimeError(f"{type(self).__name__}.__init__ must call super().__init__() "
                               "before assigning attributes")
        if name in self._buffers and not isinstance(value, (Parameter, Module)):
            # PyTorch: assigning to a buffer's name replaces the buffer's value
            self._buffers[name] = _as_buffer(value, f"{type(self).__name__}.{name}")
            return
        for registry in (self._parameters, self._modules, self._buffers):
            registry.pop(name, None)
        if isinstance(value, Parameter):
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._modules[name] = value
        else:
            object.__setattr__(self, name, value)

    def __getattr__(self, name):
        for registry in ("_parameters", "_modules", "_buffers"):
            values = self.__dict__.get(registry)
            if values is not None and name in values:
                return values[name]
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")

    def __delattr__(self, name):
        for registry in (self._parameters, self._modules, self._buffers):
            if name in registry:
                del registry[name]
                return
        object.__delattr__(self, name)

    def register_buffer(self, name, tensor, persistent=True):
        """Keep `tensor` (a Tensor, an array or None) as state that is not trained, such as
        running statistics: it is reachable as `self.name`, moved by `.to()`, and, when
        persistent, saved in `state_dict()` and restored by `load_state_dict()`."""
        if not isinstance(name, str):
            raise TypeError(f"register_buffer: name must be a str, got {type(name).__name__}")
        if not name or "." in name:
            raise ValueError(f"register_buffer: name must be a non-empty str without '.', "
                             f"got {name!r}")
        if name not in self._buffers and (name in self.__dict__ or name in self._parameters
                                          or name in self._modules):
            raise ValueError(f"register_buffer: {type(self).__name__} already has an attribute "
                             f"{name!r} that is not a buffer")
        self._buffers[name] = _as_buffer(tensor, f"register_buffer: {name}")
        if persistent:
            self._non_persistent_buffers.discard(name)
        else:
            self._non_persistent_buffers.add(name)

    def add_module(self, name, module):
        self._modules[name] = module

    # ------------------------------------------------------------------ calling
    def forward(self, *args, **kwargs):  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__} must define forward()")

    def __call__(self, *args, **kwargs):
        out = self.forward(*args, **kwargs)
        for hook in list(self._forward_hooks.values()):
            replaced = hook(self, args, out)
            if replaced is not None:
                out = replaced
        if self._backward_hooks and isinstance(out, Tensor) and out.requires_grad:
            out = _BackwardHook.apply(out, module=self)
        return out

    def register_forward_hook(self, hook):
        """hook(module, inputs, output) after every forward; may return a replacement output."""
        return self._add_hook(self._forward_hooks, hook)

    def register_full_backward_hook(self, hook):
        """hook(module, grad_output) with the gradient of the module's output (an array)."""
        return self._add_hook(self._backward_hooks, hook)

    register_backward_hook = register_full_backward_hook

    def _add_hook(self, hooks, hook):
        key = self._hook_counter
        object.__setattr__(self, "_hook_counter", key + 1)
        hooks[key] = hook
        return RemovableHandle(hooks, key)

    # ------------------------------------------------------------------ traversal
    def named_children(self):
        return iter(self._modules.items())

    def children(self):
        return iter(self._modules.values())

    def named_modules(self, prefix=""):
        yield prefix, self
        for name, child in self._modules.items():
            yield from child.named_modules(f"{prefix}.{name}" if prefix else name)

    def modules(self):
        for _, module in self.named_modules():
            yield module

    def named_parameters(self, prefix=""):
        seen = set()
        for module_name, module in self.named_modules(prefix):
            for name, parameter in module._parameters.items():
                if id(parameter) in seen:
                    continue
                seen.add(id(parameter))
                yield (f"{module_name}.{name}" if module_name else name), parameter

    def parameters(self):
        for _, parameter in self.named_parameters():
            yield parameter

    def named_buffers(self, prefix="", recurse=True):
        """(name, tensor) for every buffer that is not None, each tensor once, as PyTorch."""
        modules = self.named_modules(prefix) if recurse else [(prefix, self)]
        seen = set()
        for module_name, module in modules:
            for name, buffer in module._buffers.items():
                if buffer is None or id(buffer) in seen:
                    continue
                seen.add(id(buffer))
                yield (f"{module_name}.{name}" if module_name else name), buffer

    def buffers(self, recurse=True):
        for _, buffer in self.named_buffers(recurse=recurse):
            yield buffer

    def apply(self, fn):
        """Call fn(module) on every child (recursively), then on self; returns self. The
        usual use is initialization: model.apply(lambda m: ... if isinstance(m, nn.Linear))."""
        for child in self.children():
            child.apply(fn)
        fn(self)
        return self

    def num_parameters(self):
        return sum(p.numel() for p in self.parameters())

    def summary(self, input_shape, **kw):
        """A table of layers: output shapes, parameters, FLOPs, activations (aecore.inspect.summary)."""
        from ..inspect import summary
        return summary(self, input_shape, **kw)

    # ------------------------------------------------------------------ modes and state
    def train(self, mode=True):
        for module in self.modules():
            object.__setattr__(module, "training", bool(mode))
        return self

    def eval(self):
        return self.train(False)

    def zero_grad(self):
        for parameter in self.parameters():
            parameter.grad = None

    def requires_grad_(self, requires_grad=True):
        """Set requires_grad on every parameter (False freezes the module); returns self."""
        if not isinstance(requires_grad, (bool, np.bool_)):
            raise TypeError(f"requires_grad_: requires_grad must be True or False, got "
                            f"{requires_grad!r}")
        for parameter in self.parameters():
            parameter.requires_grad_(bool(requires_grad))
        return self

    def to(self, device=None, dtype=None):
        """Move (and/or cast) every parameter and buffer in place; returns self. A dtype casts
        the floating-point buffers only (a counter such as num_batches_tracked stays int64)."""
        device = normalize_device(device) if device is not None else None
        for module in self.modules():
            for parameter in module._parameters.values():
                data = parameter.data
                if device is not None:
                    data = to_device(data, device)
                if dtype is not None:
                    data = data.astype(dtype)
                parameter.data = data
                parameter.grad = None
            for buffer in module._buffers.values():
                if buffer is None:
                    continue
                if device is not None:
                    buffer.data = to_device(buffer.data, device)
                if dtype is not None and buffer.dtype.kind == "f":
                    buffer.data = buffer.data.astype(dtype)
        return self

    def cpu(self):
        return self.to("cpu")

    def cuda(self):
        return self.to("cuda")

    def float(self):
        return self.to(dtype=np.float32)

    def double(self):
        return self.to(dtype=np.float64)

    def _named_state(self):
        """(key, module, name, tensor) of every parameter and persistent buffer that is not
        None, in state_dict's order: each module's parameters, then its buffers, then its
        children's ("encoder.0.weight", "bn.running_mean")."""
        for module_name, module in self.named_modules():
            buffers = [(name, buffer) for name, buffer in module._buffers.items()
                       if name not in module._non_persistent_buffers]
            for name, value in list(module._parameters.items()) + buffers:
                if value is not None:
                    yield (f"{module_name}.{name}" if module_name else name), module, name, value

    def state_dict(self):
        """Ordered {name: numpy array} of every parameter and persistent buffer (copies, on
        the host)."""
        return OrderedDict((key, np.array(to_device(value.data, "cpu"), copy=True))
                           for key, _, _, value in self._named_state())

    def load_state_dict(self, state, strict=True):
        """Copy arrays into the parameters and buffers; shapes must match.

        strict: every key must be present on both sides. Returns (missing, unexpected) keys.
        """
        own = {key: (module, name) for key, module, name, _ in self._named_state()}
        missing = [k for k in own if k not in state]
        unexpected = [k for k in state if k not in own]
        if strict and (missing or unexpected):
            raise KeyError(f"load_state_dict: missing keys {missing}, unexpected keys {unexpected}")
        for key, (module, name) in own.items():
            if key not in state:
                continue
            value = state[key]
            value = value.data if isinstance(value, Tensor) else np.asarray(to_device(value, "cpu"))
            if name in module._parameters:
                parameter = module._parameters[name]
                if tuple(value.shape) != parameter.shape:
                    raise ValueError(f"load_state_dict: {key} has shape {tuple(value.shape)} in the "
                                     f"state but {parameter.shape} in the model")
                xp = parameter.xp
                parameter.data = xp.asarray(value, dtype=parameter.dtype).copy()
                parameter.grad = None
            else:
                # copied into the buffer, which keeps its device and dtype (PyTorch's copy_)
                buffer = module._buffers[name]
                if tuple(value.shape) != buffer.shape:
                    raise ValueError(f"load_state_dict: {key} has shape {tuple(value.shape)} in "
                                     f"the state but {buffer.shape} in the model")
                buffer.data = buffer.xp.asarray(value, dtype=buffer.dtype).copy()
        return missing, unexpected

    # ------------------------------------------------------------------ printing
    def extra_repr(self):
        return ""

    def __repr__(self):
        lines = [f"{type(self).__name__}({self.extra_repr()}"]
        if self._modules:
            for name, child in self._modules.items():
                child_lines = repr(child).split("\n")
                lines.append(f"  ({name}): " + child_lines[0])
                lines.extend("  " + line for line in child_lines[1:])
            lines.append(")")
            return "\n".join(lines)
        return lines[0] + ")"
