"""The ONNX graph under construction: values named by the arrays of a trace.

Every array of the trace is one of
    dynamic    computed from the graph inputs: an input, or the output of an exported node
    constant   everything else: a Parameter's data, a literal (x * 0.5), or the output of an op
               whose inputs are all constants (W.T of a Linear, the folded weight of an
               UpsampleConv2d). Constants are folded: the trace already holds their values, so
               they become initializers (named after the parameter they come from) only when
               a node reads them.
Arrays are identified by id(); the trace keeps every array alive, so no id is reused.

A constant that shares memory with a dynamic array was made from the input outside aecore's
ops (a raw array operation on `.data`): baking it in would export a wrong model, so it is refused.
"""

import collections

import numpy as np

from ..backend import to_device
from ..tensor import _storage_root


class OnnxExportError(ValueError):
    """The module cannot be exported: an op without an ONNX mapping, or a computation the
    trace cannot see. The message names the op or the value."""


class GraphBuilder:
    """Nodes, initializers and value names of one export (see the module docstring).

    parameter_names: {id(array): name} of the module's parameters; dynamic_batch: the batch
    axis (axis 0 of every input) is left free in the exported graph."""

    def __init__(self, helper, numpy_helper, parameter_names, dynamic_batch):
        self.helper, self.numpy_helper = helper, numpy_helper
        self.dynamic_batch = dynamic_batch
        self.nodes, self.initializers = [], []
        self._names = {}                 # id(array) -> the value's name in the graph
        self._dynamic = set()            # id(array) of every dynamic array
        self._dynamic_roots = set()      # id of the memory each dynamic array looks at
        self._constants = {}             # id(array) -> (array, name hint), not yet emitted
        self._parameter_names = dict(parameter_names)
        self._used = collections.Counter()

    # ------------------------------------------------------------------ names
    def fresh(self, hint):
        """A value or node name not used before: `hint`, else hint_1, hint_2, ..."""
        count = self._used[hint]
        self._used[hint] += 1
        return hint if count == 0 else f"{hint}_{count}"

    def hint_of(self, array):
        """The name a constant would take: its parameter's name, or its folding's."""
        if id(array) in self._parameter_names:
            return self._parameter_names[id(array)]
        if id(array) in self._constants:
            return self._constants[id(array)][1]
        return "constant"

    # ------------------------------------------------------------------ values
    def is_dynamic(self, array):
        return id(array) in self._dynamic

    def add_dynamic(self, array, name):
        """Record that `array` is the graph value `name` (an input or a node's output)."""
        self._names[id(array)] = name
        self._dynamic.add(id(array))
        self._dynamic_roots.add(id(_storage_root(array)))

    def add_folded(self, array, hint):
        """Record `array` as a constant (an op of constants), emitted if a node reads it."""
        self._constants[id(array)] = (array, hint)

    def value(self, array):
        """The graph name of a traced array: a dynamic value, or a constant made an initializer
        on first use."""
        key = id(array)
        if key in self._names:
            return self._names[key]
        if key not in self._constants and key not in self._parameter_names \
                and id(_storage_root(array)) in self._dynamic_roots:
            raise OnnxExportError(
                f"export: an op reads an array of shape {tuple(array.shape)} that views the "
                "input but was not made by an aecore op (a raw array operation on .data, or an "
                "input that is not (N, C, H, W) in the model's dtype); compute it with Tensor "
                "ops so the export can follow it")
        name = self.constant(array, self.hint_of(array))
        self._names[key] = name
        return name

    def constant(self, array, hint):
        """A new initializer holding `array` (a host copy of a GPU array); returns its name."""
        name = self.fresh(hint)
        host = np.ascontiguousarray(to_device(array, "cpu"))
        self.initializers.append(self.numpy_helper.from_array(host, name))
        return name

    def int64s(self, values, hint):
        """An int64 initializer (shapes, axes, pads, indices)."""
        return self.constant(np.asarray(values, dtype=np.int64), hint)

    # ------------------------------------------------------------------ nodes
    def node(self, op_type, inputs, **attributes):
        """Append one node with one output; returns the output's name."""
        output = self.fresh(op_type.lower())
        self.nodes.append(self.helper.make_node(op_type, list(inputs), [output],
                                                name=self.fresh(op_type), **attributes))
        return output

    def rename(self, old, new):
        """Give the value `old` the name `new` everywhere (for the graph's outputs)."""
        for node in self.nodes:
            for field in (node.input, node.output):
                for index, name in enumerate(field):
                    if name == old:
                        field[index] = new
        for key, name in self._names.items():
            if name == old:
                self._names[key] = new
