"""`aecore export RUN_DIR --onnx model.onnx [--part whole|encoder|decoder]`: a run's model as ONNX.

    aecore export runs/cae --onnx cae.onnx                      images -> logits
    aecore export runs/vae --onnx enc.onnx --part encoder       images -> mu, logvar
    aecore export runs/vae --onnx dec.onnx --part decoder       z -> logits

Loads the run's model (aecore.train.load_run: the best epoch's weights, or --which last) and
exports one part of it with aecore.onnx.export, traced on one example of the run's input shape:
    whole    forward: images -> outputs (for the VAE: outputs, mu, logvar; z = mu)
    encoder  encode: images -> code (the VAE: mu, logvar)
    decoder  decode: code (the VAE: z) -> outputs
"outputs" are named "logits" for models with output='sigmoid' (the images are their sigmoid),
"images" for output='linear'. The batch axis is free unless --static-batch.
"""

from __future__ import annotations

import os

import numpy as np

from .common import UsageError, report
from .runs import _run

__all__ = ["add_subcommands", "cmd_export", "PARTS"]

PARTS = ("whole", "encoder", "decoder")


def add_subcommands(sub):
    """Add `export` to the `aecore` subparsers."""
    help_text = "a run's model (whole, encoder or decoder) as an ONNX file"
    p = sub.add_parser("export", help=help_text, description=help_text)
    p.add_argument("run_dir", metavar="RUN_DIR", help="a directory written by aecore train")
    p.add_argument("--onnx", required=True, metavar="FILE", help="the .onnx file to write")
    p.add_argument("--part", choices=PARTS, default="whole",
                   help="what to export (default: whole, images -> outputs)")
    p.add_argument("--which", choices=("best", "last"), default="best",
                   help="weights of the best epoch (default) or the last one")
    p.add_argument("--static-batch", action="store_true",
                   help="fix the batch size to 1 (default: any batch size)")
    p.set_defaults(handler=cmd_export, out=None)


def part_signature(model, part):
    """(function, input name, output names) of one part of an aecore model."""
    outputs = "logits" if model.output == "sigmoid" else "images"
    is_vae = model.kind == "vae"
    if part == "whole":
        return model, "images", [outputs, "mu", "logvar"] if is_vae else [outputs]
    if part == "encoder":
        return model.encode, "images", ["mu", "logvar"] if is_vae else ["code"]
    return model.decode, "z" if is_vae else "code", [outputs]


def _shape(array):
    return "(N, " + ", ".join(str(s) for s in array.shape[1:]) + ")"


def cmd_export(args):
    from ..onnx import OnnxExportError, export
    directory = os.path.dirname(os.path.abspath(args.onnx))
    if not os.path.isdir(directory):
        raise UsageError(f"--onnx {args.onnx}: the directory {directory} does not exist")
    model, config, _ = _run(args)
    images = np.random.default_rng(0).random((1,) + tuple(model.input_shape)).astype(model.dtype)
    function, input_name, output_names = part_signature(model, args.part)
    example = images if args.part != "decoder" else model.code(images).numpy()
    try:
        onnx_model = export(function, example, args.onnx, input_names=[input_name],
                            output_names=output_names, dynamic_batch=not args.static_batch)
    except OnnxExportError as e:
        raise UsageError(str(e)) from None
    outputs = {o.name: [d.dim_value for d in o.type.tensor_type.shape.dim]
               for o in onnx_model.graph.output}
    described = ", ".join(f"{name} (N, {', '.join(map(str, dims[1:]))})"
                          for name, dims in outputs.items())
    what = f"the whole {config['model']} model" if args.part == "whole" else \
        f"the {config['model']} model's {args.part}"
    report(f"wrote {args.onnx}: {what}, {input_name} {_shape(example)} -> {described}")
    return 0
