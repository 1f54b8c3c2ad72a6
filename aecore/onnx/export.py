"""export(): trace a module once, map each op to ONNX, write the file atomically."""

import os

import numpy as np

from ..io.atomic import atomic_write
from ..tensor import Tensor
from .converters import convert
from .graph import GraphBuilder, OnnxExportError
from .trace import trace

OPSET = 18          # Resize's `axes` (a free batch axis) and ReduceMean's axes input need 18
IR_VERSION = 8      # the oldest IR that carries opset 18: readable by the most runtimes
BATCH = "N"         # the name of the free batch axis


def _require_onnx():
    try:
        import onnx
    except ImportError:
        from ..data.images import MissingDependencyError
        raise MissingDependencyError("export: ONNX export needs the onnx package: pip install "
                                     "onnx (or aecore[onnx], which adds onnxruntime)") from None
    return onnx


def _function_and_owner(module):
    """(the callable to trace, the Module holding its parameters): a Module is called itself;
    a bound method of a Module (model.encode) is called as it is."""
    from ..nn import Module
    if isinstance(module, Module):
        return module, module
    owner = getattr(module, "__self__", None)
    if callable(module) and isinstance(owner, Module):
        return module, owner
    raise TypeError(f"export: module must be an aecore.nn.Module or a method of one (such as "
                    f"model.encode), got {type(module).__name__}")


def _example_tensors(example_input, owner):
    """The example inputs as Tensors of the module's dtype (a tuple of them for several)."""
    values = example_input if isinstance(example_input, (tuple, list)) else (example_input,)
    if not values:
        raise ValueError("export: example_input must be a Tensor or array (or a tuple of them), "
                         "got an empty sequence")
    reference = next(owner.parameters(), None)
    tensors = []
    for index, value in enumerate(values):
        data = value.data if isinstance(value, Tensor) else value
        if not hasattr(data, "dtype"):
            data = np.asarray(data)
        if data.dtype.kind not in "fiub":
            raise TypeError(f"export: example_input {index} must hold numbers, got dtype "
                            f"{data.dtype}")
        if data.ndim == 0:
            raise ValueError(f"export: example_input {index} must have a batch axis, got a 0-d "
                             "value")
        if reference is not None and data.dtype != reference.dtype:
            data = reference.xp.asarray(data, dtype=reference.dtype)
        tensors.append(value if isinstance(value, Tensor) and data is value.data
                       else Tensor(data, _copy=False))
    return tensors


def _names(given, count, default, what):
    """The graph's input or output names: `given` (checked), else default, default0, ..."""
    if given is None:
        return [default] if count == 1 else [f"{default}{i}" for i in range(count)]
    given = [given] if isinstance(given, str) else list(given)
    if len(given) != count or not all(isinstance(n, str) and n for n in given):
        raise ValueError(f"export: {what} must be {count} non-empty string(s), one per "
                         f"{what[:-6]}, got {given!r}")
    return given


def export(module, example_input, path, *, input_names=None, output_names=None,
           dynamic_batch=True, opset=OPSET):
    """Write `module`'s forward, traced on `example_input`, as an ONNX file; returns the model.

    module: an aecore.nn.Module (its forward) or a bound method of one (model.encode,
        model.decode): what it returns (a Tensor or a tuple of Tensors) are the outputs.
    example_input: a Tensor or array (or a tuple of them), batch axis first; converted to the
        module's dtype. The module runs once in eval mode (the VAE's z = mu), under no_grad.
    path: the .onnx file, written atomically. input_names / output_names: the graph's names
        (default "input" / "output", numbered when there are several).
    dynamic_batch: leave the batch axis free ("N"), so the file takes any batch size; False
        fixes every shape to the example's.
    Needs the onnx package; raises OnnxExportError naming an op that has no ONNX mapping.
    """
    onnx = _require_onnx()
    from onnx import helper, numpy_helper
    if not isinstance(opset, int) or isinstance(opset, bool) or opset < OPSET:
        raise ValueError(f"export: opset must be an int >= {OPSET}, got {opset!r}")
    function, owner = _function_and_owner(module)
    inputs = _example_tensors(example_input, owner)
    input_names = _names(input_names, len(inputs), "input", "input_names")
    was_training = owner.training
    owner.eval()
    try:
        records, outputs = trace(function, inputs)
    finally:
        owner.train(was_training)
    output_names = _names(output_names, len(outputs), "output", "output_names")
    if len(set(input_names + output_names)) != len(input_names) + len(output_names):
        raise ValueError(f"export: input and output names must all differ, got "
                         f"{input_names} and {output_names}")

    parameter_names = {id(p.data): name for name, p in owner.named_parameters()}
    b = GraphBuilder(helper, numpy_helper, parameter_names, dynamic_batch)
    for name in input_names + output_names:
        b.fresh(name)                          # reserved: no node output takes these names
    graph_inputs = []
    for tensor, name in zip(inputs, input_names):
        b.add_dynamic(tensor.data, name)
        graph_inputs.append(_value_info(helper, name, tensor.data, dynamic_batch, static=True))
    for record in records:
        if any(b.is_dynamic(a) for a in record.inputs):
            b.add_dynamic(record.output, convert(b, record.function, record.inputs,
                                                 record.output))
        else:
            hints = [b.hint_of(a) for a in record.inputs]
            hint = next((h for h in hints if h != "constant"), "constant")
            b.add_folded(record.output, f"{hint}.{record.function.name.lower()}")
    graph_outputs = []
    produced = {output for node in b.nodes for output in node.output}
    for tensor, name in zip(outputs, output_names):
        value = b.value(tensor.data)
        if value in produced and value not in input_names and value not in output_names:
            b.rename(value, name)
        else:                       # an input, a constant, or an output given twice
            b.nodes.append(helper.make_node("Identity", [value], [name], name=b.fresh("Identity")))
        graph_outputs.append(_value_info(helper, name, tensor.data, dynamic_batch, static=False))

    graph = helper.make_graph(b.nodes, type(owner).__name__, graph_inputs, graph_outputs,
                              b.initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                              producer_name="aecore", ir_version=IR_VERSION)
    model = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    onnx.checker.check_model(model)
    atomic_write(os.fspath(path), model.SerializeToString())
    return model


def _value_info(helper, name, array, dynamic_batch, static):
    """A graph input (static=True: its shape, batch axis free) or output (rank only: shape
    inference fills in the sizes)."""
    elem_type = helper.np_dtype_to_tensor_dtype(np.dtype(array.dtype))
    if not static:
        return helper.make_tensor_value_info(name, elem_type, [None] * array.ndim)
    shape = [int(s) for s in array.shape]
    if dynamic_batch:
        shape[0] = BATCH
    return helper.make_tensor_value_info(name, elem_type, shape)


__all__ = ["export", "OnnxExportError", "OPSET"]
