"""Every layer's activation and gradient for one batch, and the statistics that diagnose training.

    cap = aecore.inspect.capture(model, x)         # one forward + backward
    cap["encoder.0"].activation, cap["encoder.0"].grad
    print(aecore.inspect.layer_stats(cap))         # or layer_stats(model, x)

capture() registers a forward hook and a backward hook (Module.register_forward_hook /
register_full_backward_hook) on every leaf module, runs the model's loss on the batch -- the
model's own `loss(x, target)` when it has one (the autoencoders of aecore.models do), else
mse_loss(model(x), target or x) -- and calls backward() on it. The hooks are removed afterwards,
and the parameters' .grad are put back as they were (the gradients of this batch are kept in the
capture), so capturing in the middle of training changes nothing.

layer_stats() turns a capture into a table. What to look for:
- The statistics describe what the next layer receives: when the model applies an activation
  function to a layer's output itself (F.relu(self.conv(x)), as the CAE does), the capture
  catches it and the row shows "Conv2d+ReLU" with the statistics after the ReLU.
- "zeros": the fraction of a ReLU's outputs that are exactly 0. Around half is normal; near 1 means
  the layer is mostly dead. "dead" is the fraction of its units (channels, or features) that
  are 0 for EVERY example and position of the batch: those units receive no gradient at all.
- "grad norm": the L2 norm of the gradient of the loss w.r.t. the layer's output. Norms that
  shrink by orders of magnitude towards the first layers are vanishing gradients.
- "w grad / w": a layer's parameter-gradient norm over its parameter norm: roughly how far one
  SGD step of learning rate 1 moves the layer; very different values across layers mean some
  layers learn far slower than others.
"""

import math

import numpy as np

from ..backend import to_device
from ..tensor import Tensor
from ..tensor import _observers as _graph_observers
from .table import format_table


class LayerRecord:
    """One layer's view of the batch: name, type, module, activation (its output array; a list of
    arrays for several outputs), grad (the gradient of the loss w.r.t. that output, or None),
    forward_calls and backward_calls (how many times the hooks fired), param_grads ({name: array})."""

    def __init__(self, name, module):
        self.name, self.module, self.type = name, module, type(module).__name__
        self.activation = None
        self.grad = None
        self.forward_calls = 0
        self.backward_calls = 0
        self.param_grads = {}
        self.activation_function = None  # e.g. "ReLU" when the model applies one to this output
        self.post_activation = None      # ... and its result (functional activations in forward)

    def __repr__(self):
        shape = getattr(self.activation, "shape", None)
        return f"LayerRecord({self.name} {self.type} {shape}, grad={'yes' if self.grad is not None else 'no'})"


class Capture:
    """The result of capture(): .layers (LayerRecord, in forward order), .loss (float),
    .metrics (dict), indexing by layer name."""

    def __init__(self, layers, loss, metrics):
        self.layers = layers
        self.loss = loss
        self.metrics = metrics
        self._by_name = {record.name: record for record in layers}

    def __getitem__(self, name):
        return self._by_name[name]

    def __iter__(self):
        return iter(self.layers)

    def __len__(self):
        return len(self.layers)

    def stats(self):
        return layer_stats(self)


def _leaf_modules(model):
    named = [(name or type(model).__name__, module) for name, module in model.named_modules()
             if not module._modules]
    return named


def _loss(model, x, target):
    out = model.loss(x, target) if hasattr(model, "loss") and callable(model.loss) else None
    if out is not None:
        if isinstance(out, tuple):
            return out[0], (out[1] if len(out) > 1 and isinstance(out[1], dict) else {})
        return out, {}
    from ..losses import mse_loss
    prediction = model(x)
    if isinstance(prediction, (tuple, list)):
        prediction = prediction[0]
    reference = x if target is None else target
    reference = reference if isinstance(reference, Tensor) else Tensor(np.asarray(reference, prediction.dtype))
    return mse_loss(prediction, reference), {}


def capture(model, x, target=None):
    """One forward + backward of `model` on batch `x`; every leaf layer's activation and output
    gradient (see the module docstring). x: a Tensor or an array."""
    if not isinstance(x, Tensor):
        x = Tensor(np.asarray(x), _copy=False)
    records = {}
    order = []
    handles = []
    for name, module in _leaf_modules(model):
        record = LayerRecord(name, module)
        records[id(module)] = record

        def on_forward(mod, inputs, output, record=record):
            record.forward_calls += 1
            if record.forward_calls == 1:
                order.append(record)
                if isinstance(output, Tensor):
                    record.activation = output.data
                    by_activation[id(output.data)] = record
                elif isinstance(output, (tuple, list)):
                    record.activation = [o.data for o in output if isinstance(o, Tensor)]

        def on_backward(mod, grad, record=record):
            record.backward_calls += 1
            record.grad = grad if record.grad is None else record.grad + grad

        handles.append(module.register_forward_hook(on_forward))
        handles.append(module.register_full_backward_hook(on_backward))

    # Models often apply the activation functionally (F.relu(self.conv(x))): catch the activation
    # ops whose input is a layer's output, so that dead ReLUs show up on the layer that feeds them.
    by_activation = {}
    watcher = _ActivationWatcher(by_activation)
    parameters = list(model.named_parameters())
    previous_grads = [p.grad for _, p in parameters]
    _graph_observers.append(watcher)
    try:
        for _, p in parameters:
            p.grad = None
        loss, metrics = _loss(model, x, target)
        loss.backward()
        owner = {}
        for module_name, module in model.named_modules():
            for pname, p in module._parameters.items():
                if p is not None:
                    owner.setdefault(id(p), (module, pname))
        for _, p in parameters:
            module, pname = owner[id(p)]
            if id(module) in records and p.grad is not None:
                records[id(module)].param_grads[pname] = p.grad
    finally:
        _graph_observers.remove(watcher)
        for handle in handles:
            handle.remove()
        for (_, p), grad in zip(parameters, previous_grads):
            p.grad = grad
    # an activation that is a layer of its own (nn.ReLU in a Sequential) has its own row
    layer_outputs = {id(r.activation) for r in order}
    for record in order:
        if record.post_activation is not None and id(record.post_activation) in layer_outputs:
            record.post_activation = record.activation_function = None
    layers = order + [r for r in records.values() if r.forward_calls == 0]
    return Capture(layers, float(loss.item()), metrics)


ACTIVATIONS = ("ReLU", "LeakyReLU", "Sigmoid", "Tanh", "Softplus")


class _ActivationWatcher:
    """A graph observer: remembers the activation function applied to a layer's output."""

    def __init__(self, by_activation):
        self.by_activation = by_activation

    def on_forward(self, function, arrays, output, seconds, started):
        if function.name in ACTIVATIONS and arrays:
            record = self.by_activation.get(id(arrays[0]))
            if record is not None and record.activation is arrays[0] and record.post_activation is None:
                record.activation_function = function.name
                record.post_activation = output

    def on_backward(self, function, grad, input_grads, seconds, started):
        pass


def _host(array):
    return np.asarray(to_device(array, "cpu"))


def _norm(array):
    a = _host(array).astype(np.float64, copy=False)
    return float(math.sqrt(float(np.vdot(a.ravel(), a.ravel()))))


class StatsRow(dict):
    """A dict with the statistics of one layer (keys: layer, type, shape, mean, std, zeros, dead,
    grad_norm, grad_rms, param_norm, param_grad_norm, update_ratio); printable."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


class StatsTable:
    """layer_stats()'s result: .rows (StatsRow), str() gives the table."""

    def __init__(self, rows, loss=None):
        self.rows = rows
        self.loss = loss

    def __iter__(self):
        return iter(self.rows)

    def __getitem__(self, name):
        for row in self.rows:
            if row["layer"] == name:
                return row
        raise KeyError(name)

    def __str__(self):
        def f(value, spec=".3g"):
            return "-" if value is None else format(value, spec)

        body = [[r["layer"], r["type"], "x".join(map(str, r["shape"])) if r["shape"] else "-",
                 f(r["mean"]), f(r["std"]), f(r["zeros"], ".1%"), f(r["dead"], ".1%"),
                 f(r["grad_norm"]), f(r["param_grad_norm"]), f(r["update_ratio"])] for r in self.rows]
        title = None if self.loss is None else f"loss {self.loss:.6g}"
        return format_table(["layer", "type", "output", "mean", "std", "zeros", "dead", "grad norm",
                             "w grad norm", "w grad / w"], body, align="lllrrrrrrr", title=title)

    __repr__ = __str__


def _layer_row(record):
    activation = record.activation
    kind = record.type
    if record.post_activation is not None:  # statistics of what the next layer sees
        activation = record.post_activation
        kind = f"{record.type}+{record.activation_function}"
    if isinstance(activation, list):
        activation = activation[0] if activation else None
    row = StatsRow(layer=record.name, type=kind, shape=None, mean=None, std=None, zeros=None,
                   dead=None, grad_norm=None, grad_rms=None, param_norm=None, param_grad_norm=None,
                   update_ratio=None, forward_calls=record.forward_calls,
                   backward_calls=record.backward_calls)
    if activation is not None:
        a = _host(activation).astype(np.float64, copy=False)
        row["shape"] = tuple(a.shape)
        if a.size:
            row["mean"] = float(a.mean())
            row["std"] = float(a.std())
            zero = a == 0
            row["zeros"] = float(zero.mean())
            if a.ndim >= 2:  # units: axis 1 (channels of NCHW, features of (N, F))
                per_unit = np.moveaxis(zero, 1, 0).reshape(a.shape[1], -1)
                row["dead"] = float(per_unit.all(axis=1).mean())
    if record.grad is not None:
        row["grad_norm"] = _norm(record.grad)
        row["grad_rms"] = row["grad_norm"] / math.sqrt(max(record.grad.size, 1))
    parameters = {n: p for n, p in record.module._parameters.items() if p is not None}
    if parameters:
        row["param_norm"] = math.sqrt(sum(_norm(p.data) ** 2 for p in parameters.values()))
    if record.param_grads:
        row["param_grad_norm"] = math.sqrt(sum(_norm(g) ** 2 for g in record.param_grads.values()))
        if row["param_norm"]:
            row["update_ratio"] = row["param_grad_norm"] / row["param_norm"]
    return row


def layer_stats(model_or_capture, x=None, target=None):
    """Per-layer statistics (see the module docstring) of a Capture, or of capture(model, x, target)."""
    if isinstance(model_or_capture, Capture):
        cap = model_or_capture
    else:
        if x is None:
            raise ValueError("layer_stats(model, x): give a batch x (or pass a Capture)")
        cap = capture(model_or_capture, x, target)
    return StatsTable([_layer_row(r) for r in cap.layers], cap.loss)
