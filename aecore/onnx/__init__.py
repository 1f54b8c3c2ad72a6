"""aecore.onnx: export a model (or its encoder or decoder) as an ONNX file.

    import aecore as ae
    model = ae.models.build_model("cae")
    x = ae.randn(1, 1, 28, 28)
    ae.onnx.export(model, x, "cae.onnx")                 # the whole AE: x -> logits
    ae.onnx.export(model.encode, x, "encoder.onnx")      # x -> code (the VAE: mu, logvar)
    ae.onnx.export(model.decode, model.encode(x), "decoder.onnx", input_names="code")

    import onnxruntime                                    # pip install aecore[onnx]
    session = onnxruntime.InferenceSession("cae.onnx")
    logits = session.run(None, {"input": images.astype("float32")})[0]   # any batch size

How: the module runs once on the example input while a graph observer records every op
(trace.py); each op becomes ONNX nodes (converters.py), ops on constants only are folded into
initializers named after their parameters (graph.py), and resizes become ONNX Resize where a
runtime is bound to match the engine, else the engine's own tables (resize.py). The result is
checked with onnx's checker and shape inference and written atomically. Opset 18, a free batch
axis "N" by default. `aecore export RUN --onnx model.onnx [--part whole|encoder|decoder]` does
this for a trained run. Needs the onnx package (the "onnx" extra also brings onnxruntime).
"""

from .export import OPSET, export
from .graph import OnnxExportError

__all__ = ["export", "OnnxExportError", "OPSET"]
