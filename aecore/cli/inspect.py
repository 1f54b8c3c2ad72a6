"""`aecore inspect graph | summary | stats`: the command-line side of aecore.inspect.

    aecore inspect graph RUN_DIR --out graph.dot       the graph of one training loss (DOT)
    aecore inspect graph --model cae                   ... of a fresh model, as an indented tree
    aecore inspect summary --model cae                 layers, shapes, params, FLOPs, memory
    aecore inspect stats RUN_DIR --data mnist          per-layer activation/gradient statistics

Each looks at one model, the trained model of RUN_DIR or a fresh one of --model, on one batch.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from .. import argtypes
from .common import MODEL_KINDS, UsageError, group_help

__all__ = ["add_subcommands", "cmd_graph", "cmd_summary", "cmd_stats"]


def _add_model_arguments(p):
    p.add_argument("run_dir", nargs="?", metavar="RUN_DIR",
                   help="a directory written by aecore train (its model and weights)")
    p.add_argument("--model", choices=MODEL_KINDS,
                   help="a fresh model of this kind instead of a run (default options)")
    p.add_argument("--input-shape", type=argtypes.shape, default=None, metavar="C,H,W",
                   help="input shape for --model (default 1,28,28)")
    p.add_argument("--which", choices=("best", "last"), default="best",
                   help="RUN_DIR: the weights of the best epoch (default) or the last one")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")


def add_subcommands(subparsers):
    """Add `inspect` (graph, summary, stats) to an argparse subparsers object."""
    parser_class = getattr(subparsers, "_parser_class", argparse.ArgumentParser)
    inspect = subparsers.add_parser(
        "inspect", help="look inside a model: graph, summary, per-layer statistics",
        description="Look inside a model: its graph (text or Graphviz DOT), a summary of its "
        "layers, or per-layer activation and gradient statistics for one batch.")
    inspect_sub = inspect.add_subparsers(dest="inspect_command", metavar="WHAT",
                                         parser_class=parser_class)
    inspect.set_defaults(handler=lambda args: group_help(inspect))

    g = inspect_sub.add_parser("graph", help="the graph of one loss evaluation, as text or DOT",
                               description="The graph of one loss evaluation (forward pass of "
                               "a batch of the given size): op names, shapes, dtypes, the kernel "
                               "tier of each kernel op, parameter names.")
    _add_model_arguments(g)
    g.add_argument("--out", help="write here (.dot: Graphviz DOT, else the text tree); "
                   "default: print")
    g.add_argument("--format", choices=("text", "dot"), default=None,
                   help="default: dot when --out ends with .dot/.gv, else text")
    g.add_argument("--batch-size", type=argtypes.positive_int, default=2)
    g.set_defaults(handler=cmd_graph)

    s = inspect_sub.add_parser("summary", help="layers: output shapes, parameters, FLOPs, memory")
    _add_model_arguments(s)
    s.add_argument("--batch-size", type=argtypes.positive_int, default=1)
    s.add_argument("--json", metavar="PATH", help="also write the summary as JSON")
    s.set_defaults(handler=cmd_summary)

    t = inspect_sub.add_parser("stats", help="per-layer activation and gradient statistics "
                               "for one batch (dead ReLUs, vanishing gradients)")
    _add_model_arguments(t)
    t.add_argument("--data", help="images: synthetic, mnist, ... or a path (default: the run's "
                   "data set, or synthetic)")
    t.add_argument("--data-root", help="a directory searched first for named data sets")
    t.add_argument("--batch-size", type=argtypes.positive_int, default=64)
    t.add_argument("--seed", type=int, default=0)
    t.set_defaults(handler=cmd_stats)
    return subparsers


# ---------------------------------------------------------------------------------------------
# the model and the batch
# ---------------------------------------------------------------------------------------------

def _model_from_args(args):
    """(model, input_shape, config or None) from RUN_DIR or --model."""
    if args.run_dir and args.model:
        raise UsageError("give RUN_DIR or --model, not both")
    if args.run_dir:
        from ..train import load_run
        model, config, _ = load_run(args.run_dir, which=args.which, device=args.device)
        return model, tuple(model.input_shape), config
    from .. import models
    input_shape = args.input_shape or (1, 28, 28)
    model = models.build_model(args.model or "cae", input_shape=tuple(input_shape))
    if args.device != "cpu":
        model.to(args.device)
    return model, tuple(input_shape), None


def _batch(model, input_shape, batch_size, device, data=None, data_root=None, seed=0):
    """A batch of images: from the data set `data` when given, else uniform noise in [0, 1]."""
    from .. import random as ae_random
    from ..tensor import tensor
    if data:
        from ..data import load_dataset
        dataset = load_dataset(data, root=data_root, n=batch_size, seed=seed)
        images = dataset.images[:batch_size]
        if tuple(images.shape[1:]) != tuple(input_shape):
            raise UsageError(f"the images of {data!r} have shape {tuple(images.shape[1:])} "
                             f"but the model takes {tuple(input_shape)}")
    else:
        ae_random.manual_seed(seed)
        images = ae_random.rand((batch_size,) + tuple(input_shape), np.float32)
    return tensor(np.asarray(images), device=device, dtype=model.dtype)


# ---------------------------------------------------------------------------------------------
# commands
# ---------------------------------------------------------------------------------------------

def cmd_graph(args):
    from ..inspect.graph import graph
    model, input_shape, _ = _model_from_args(args)
    x = _batch(model, input_shape, args.batch_size, args.device)
    model.train()
    loss, _ = model.loss(x)
    g = graph(loss, model=model, names={"input": x})
    fmt = args.format
    if fmt is None:
        fmt = "dot" if args.out and args.out.lower().endswith((".dot", ".gv")) else "text"
    text = g.dot() if fmt == "dot" else g.text() + "\n"
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
        ops = len(g.ops())
        print(f"wrote {args.out}: {len(g.nodes)} nodes ({ops} ops), {len(g.edges)} edges"
              + (f"; render with: dot -Tsvg {args.out} -o graph.svg" if fmt == "dot" else ""))
    else:
        sys.stdout.write(text)
    return 0


def cmd_summary(args):
    from ..inspect.summary import summary
    model, input_shape, _ = _model_from_args(args)
    result = summary(model, input_shape, batch_size=args.batch_size)
    print(result)
    if args.json:
        Path(args.json).write_text(json.dumps(result.to_dict(), indent=1, default=str),
                                   encoding="utf-8")
        print(f"wrote {args.json}")
    return 0


def cmd_stats(args):
    from ..inspect.hooks import layer_stats
    model, input_shape, config = _model_from_args(args)
    data = args.data
    data_root = args.data_root
    if data is None and config is not None:
        data = config.get("data")
        data_root = data_root or config.get("data_root")
    x = _batch(model, input_shape, args.batch_size, args.device, data or "synthetic", data_root,
               args.seed)
    model.train()
    print(layer_stats(model, x))
    return 0
