"""Record the ops of one forward pass, in the order they ran.

Every graph Function passes through `Function.apply`, which shows each call to the observers of
aecore.tensor (the profiler and aecore.inspect use the same hook). The tracer is one of them: it
keeps (function, input arrays, output array) for every op while the module runs once, under
no_grad (the observers see every op whether or not a graph is recorded). The Function objects
keep the op's resolved arguments (a conv's `geom`, a reshape's target is its output's shape), so
nothing else is needed to rebuild the computation. Like torch.jit.trace, Python control flow is
taken as it went for this input: a branch on a shape is fixed in the export.
"""

from dataclasses import dataclass
from typing import Tuple

from ..tensor import Tensor, _observers, no_grad


@dataclass
class OpRecord:
    """One op call: the Function (holding its resolved arguments), its input arrays and output."""
    function: object
    inputs: Tuple
    output: object


class _Tracer:
    """A graph observer that records every op call (tensor._observers' interface)."""

    def __init__(self):
        self.records = []

    def on_forward(self, function, arrays, output, seconds, started):
        self.records.append(OpRecord(function, tuple(arrays), output))

    def on_backward(self, function, grad, input_grads, seconds, started):
        pass


def trace(function, inputs):
    """Run function(*inputs) once under no_grad; (records, outputs as a tuple of Tensors).

    inputs: Tensors. The records hold references to every array, so their ids stay unique
    while the records live (the exporter identifies values by id)."""
    tracer = _Tracer()
    _observers.append(tracer)
    try:
        with no_grad():
            result = function(*inputs)
    finally:
        _observers.remove(tracer)
    outputs = tuple(result) if isinstance(result, (tuple, list)) else (result,)
    for index, value in enumerate(outputs):
        if not isinstance(value, Tensor):
            raise TypeError(f"export: the module must return a Tensor or a tuple of Tensors, "
                            f"got {type(value).__name__} as output {index}")
    return tracer.records, outputs
