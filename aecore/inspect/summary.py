"""Model summary: one row per layer with output shape, parameters, FLOPs and activation memory.

    print(aecore.inspect.summary(model, (1, 28, 28)))      # or model.summary((1, 28, 28))

How: one forward pass under no_grad on zeros of shape (batch_size, *input_shape). Every module's
`forward` is wrapped for the duration of that pass (and restored after), so each op the pass
runs is attributed to the innermost module running it; a profiler counts the ops' FLOPs with the
formulas of aecore.inspect.costs (a 3x3 conv: 2 * H * W * Cin * Cout * 9 per image, bias not
counted; ReLU: one per element; 2x2 max-pool: 4 comparisons per output element; ...).
Rows are the leaf modules (layers) in the order they ran, and, where a container module runs ops
of its own (the CAE's forward applies F.relu, max_pool2d and interpolate between its convs; a
model reshapes or crops), one row per run of such ops between two of its children, named after
the container and typed by the ops ("encoder (ReLU + MaxPool2d)"). A layer that runs twice gets
two rows; its parameters are counted once. "activations" are the bytes of the row's outputs (for
a run of ops: every op's output, which training keeps for backward).
"""

from dataclasses import dataclass, field

import numpy as np

from ..tensor import Tensor, no_grad, tensor as make_tensor
from .profiler import Profiler
from .table import format_table, human, human_bytes


@dataclass
class SummaryRow:
    name: str            # qualified module name ("encoder.0"); the model's class for its own ops
    type: str            # the module's class name, or the ops a container ran ("ReLU + MaxPool2d")
    output_shape: object  # a shape tuple, or a list of them for modules returning several tensors
    params: int          # parameters of this module itself (0 on a repeated call)
    flops: int           # forward FLOPs of the ops this module ran itself (whole batch)
    activation_bytes: int  # bytes of the module's output(s)
    ops: list = field(default_factory=list)  # the ops it ran, e.g. ["conv2d_forward"]

    def as_dict(self):
        return dict(self.__dict__)


class _Call:
    def __init__(self, module, name, parent, order):
        self.module, self.name, self.parent, self.order = module, name, parent, order
        self.output = None
        self.start = self.end = 0  # profiler event indices [start, end) of the call
        self.children = []


def _shapes_and_bytes(output):
    if isinstance(output, Tensor):
        return tuple(output.shape), int(output.data.nbytes)
    if isinstance(output, (tuple, list)):
        parts = [_shapes_and_bytes(o) for o in output]
        return [p[0] for p in parts], sum(p[1] for p in parts)
    if isinstance(output, dict):
        return _shapes_and_bytes(list(output.values()))
    return None, 0


class Summary:
    """The result of summary(): .rows (SummaryRow), totals, and str() gives the table."""

    def __init__(self, model, input_shape, batch_size, dtype, rows, output_shape, other_flops):
        parameters = list(model.parameters())
        self.model_name = type(model).__name__
        self.input_shape = (batch_size,) + tuple(input_shape)
        self.batch_size = batch_size
        self.dtype = np.dtype(dtype)
        self.rows = rows
        self.output_shape = output_shape
        self.total_params = sum(p.numel() for p in parameters)
        self.trainable_params = sum(p.numel() for p in parameters if p.requires_grad)
        self.param_bytes = sum(int(p.data.nbytes) for p in parameters)
        self.total_flops = sum(r.flops for r in rows) + other_flops
        self.total_activation_bytes = sum(r.activation_bytes for r in rows)

    def to_dict(self):
        return {"model": self.model_name, "input_shape": list(self.input_shape),
                "dtype": str(self.dtype), "rows": [r.as_dict() for r in self.rows],
                "total_params": self.total_params, "trainable_params": self.trainable_params,
                "param_bytes": self.param_bytes, "total_flops": self.total_flops,
                "total_activation_bytes": self.total_activation_bytes}

    def __str__(self):
        body = []
        for r in self.rows:
            shape = r.output_shape
            shape_text = ("x".join(map(str, shape)) if isinstance(shape, tuple)
                          else ", ".join("x".join(map(str, s)) for s in shape) if shape else "-")
            body.append([f"{r.name} ({r.type})", shape_text, f"{r.params:,}", human(r.flops),
                         human_bytes(r.activation_bytes)])
        title = (f"{self.model_name}: input {'x'.join(map(str, self.input_shape))} {self.dtype}")
        table = format_table(["layer (type)", "output shape", "params", "FLOPs", "activations"],
                             body, align="llrrr", title=title)
        lines = [table, "",
                 f"total params:        {self.total_params:,} ({human_bytes(self.param_bytes)}), "
                 f"trainable {self.trainable_params:,}",
                 f"forward FLOPs:       {self.total_flops:,} ({human(self.total_flops)}) for a batch of "
                 f"{self.batch_size}",
                 f"activation memory:   {human_bytes(self.total_activation_bytes)} (sum of layer outputs, "
                 f"forward, batch {self.batch_size}; training keeps about this much for backward)"]
        return "\n".join(lines)

    __repr__ = __str__


def summary(model, input_shape, batch_size=1, dtype=None, device=None):
    """Summarize `model` for inputs of shape `input_shape` (WITHOUT the batch dimension).

    dtype and device default to those of the model's parameters. Returns a Summary.
    """
    if isinstance(input_shape, int):
        input_shape = (input_shape,)
    input_shape = tuple(int(s) for s in input_shape)
    parameters = list(model.parameters())
    if dtype is None:
        dtype = parameters[0].dtype if parameters else np.float32
    if device is None:
        device = parameters[0].device if parameters else "cpu"
    x = make_tensor(np.zeros((batch_size,) + input_shape, dtype=dtype), device=device, dtype=dtype)

    names = {}
    for name, module in model.named_modules():
        names.setdefault(id(module), name)
    calls, stack = [], []
    profiler = Profiler(peak=False)
    saved = []

    def wrap(module, original):
        def forward(*args, **kwargs):
            parent = stack[-1] if stack else None
            call = _Call(module, names.get(id(module)) or type(module).__name__, parent, len(calls))
            call.start = len(profiler.events)
            if parent is not None:
                parent.children.append(call)
            calls.append(call)
            stack.append(call)
            profiler.context = call
            try:
                call.output = original(*args, **kwargs)
            finally:
                stack.pop()
                profiler.context = stack[-1] if stack else None
                call.end = len(profiler.events)
            return call.output
        return forward

    for module in model.modules():
        if any(m is module for m, _ in saved):
            continue
        saved.append((module, module.__dict__.get("forward")))
        object.__setattr__(module, "forward", wrap(module, module.forward))
    try:
        with no_grad(), profiler:
            output = model(x)
    finally:
        for module, previous in saved:
            if previous is None:
                module.__dict__.pop("forward", None)
            else:
                object.__setattr__(module, "forward", previous)

    events = profiler.events
    keyed, seen = [], set()

    def own_params(module):
        if id(module) in seen:
            return 0
        seen.add(id(module))
        return sum(p.numel() for p in module._parameters.values() if p is not None)

    def op_names(group):
        names_ = []
        for e in group:
            if e.kind != "kernel" and e.function not in names_:
                names_.append(e.function)
        return names_

    for call in calls:
        if not call.module._modules:  # a layer: one row
            group = events[call.start:call.end]
            shape, nbytes = _shapes_and_bytes(call.output)
            keyed.append(((call.start, 0, call.order), SummaryRow(
                name=call.name, type=type(call.module).__name__, output_shape=shape,
                params=own_params(call.module), flops=sum(e.flops or 0 for e in group),
                activation_bytes=nbytes, ops=op_names(group))))
            continue
        # a container: its own ops (e.g. functional relu / pooling between its layers), one row
        # per run of ops between two of its children
        segments = {}
        for index in range(call.start, call.end):
            if events[index].context is call:
                segment = sum(1 for child in call.children if child.start <= index)
                segments.setdefault(segment, []).append(index)
        for number, (segment, indices) in enumerate(sorted(segments.items())):
            group = [events[i] for i in indices]
            last = next((e for e in reversed(group) if e.out_shape is not None), None)
            keyed.append(((indices[0], 1, call.order), SummaryRow(
                name=call.name, type=" + ".join(op_names(group)) or "ops",
                output_shape=last.out_shape if last is not None else None,
                params=own_params(call.module) if number == 0 else 0,
                flops=sum(e.flops or 0 for e in group),
                activation_bytes=sum(e.out_bytes or 0 for e in group if e.kind != "kernel"),
                ops=op_names(group))))
    keyed.sort(key=lambda item: item[0])
    rows = [row for _, row in keyed]
    other_flops = sum(e.flops or 0 for e in events if e.context is None)
    output_shape, _ = _shapes_and_bytes(output)
    return Summary(model, input_shape, batch_size, dtype, rows, output_shape, other_flops)
