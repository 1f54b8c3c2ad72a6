"""`aecore inspect ...` and `aecore bench ...`: the command-line side of aecore.inspect.

    aecore inspect graph RUN_DIR --out graph.dot       the graph of one training loss (DOT)
    aecore inspect graph --model cae                   ... of a fresh model, as an indented tree
    aecore inspect summary --model cae                 layers, shapes, params, FLOPs, memory
    aecore inspect stats RUN_DIR --data mnist          per-layer activation/gradient statistics
    aecore bench kernels [--ops ...] [--tiers ...]     wraps bench/kernels.py (repository only)
    aecore bench models [--models cae ae vae]          wraps bench/models.py

`add_subcommands(subparsers)` is called by aecore/cli.py; every command sets `handler`, a
function of the parsed arguments returning the exit status. The benchmarks live in the
repository's bench/ folder (not an installed package): they are found beside the aecore package
directory, and the command says so clearly when aecore was installed without its source tree.
"""

import argparse
import importlib
import json
import sys
from pathlib import Path

from .. import argtypes

MODEL_KINDS = ("ae", "cae", "dae", "vae")


class InspectUsageError(Exception):
    """A bad argument (printed as one line, exit status 2)."""


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
    """Add `inspect` (graph, summary, stats) and `bench` (kernels, models) to an argparse
    subparsers object."""
    parser_class = getattr(subparsers, "_parser_class", argparse.ArgumentParser)
    inspect = subparsers.add_parser(
        "inspect", help="look inside a model: graph, summary, per-layer statistics",
        description="Look inside a model: its graph (text or Graphviz DOT), a summary of its "
        "layers, or per-layer activation and gradient statistics for one batch.")
    inspect_sub = inspect.add_subparsers(dest="inspect_command", metavar="WHAT",
                                         parser_class=parser_class)
    inspect.set_defaults(handler=lambda args: _missing(inspect))

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
    g.set_defaults(handler=_guarded(cmd_graph))

    s = inspect_sub.add_parser("summary", help="layers: output shapes, parameters, FLOPs, memory")
    _add_model_arguments(s)
    s.add_argument("--batch-size", type=argtypes.positive_int, default=1)
    s.add_argument("--json", metavar="PATH", help="also write the summary as JSON")
    s.set_defaults(handler=_guarded(cmd_summary))

    t = inspect_sub.add_parser("stats", help="per-layer activation and gradient statistics "
                               "for one batch (dead ReLUs, vanishing gradients)")
    _add_model_arguments(t)
    t.add_argument("--data", help="images: synthetic, mnist, ... or a path (default: the run's "
                   "data set, or synthetic)")
    t.add_argument("--data-root", help="a directory searched first for named data sets")
    t.add_argument("--batch-size", type=argtypes.positive_int, default=64)
    t.add_argument("--seed", type=int, default=0)
    t.set_defaults(handler=_guarded(cmd_stats))

    bench = subparsers.add_parser(
        "bench", help="benchmarks: kernels (every op x tier) and models (training steps)",
        description="Benchmarks from the repository's bench/ folder: median ms, GFLOP/s, GB/s, "
        "share of this machine's measured peak, ratio to PyTorch when installed; JSON results "
        "and a markdown table.")
    bench_sub = bench.add_subparsers(dest="bench_command", metavar="WHAT", parser_class=parser_class)
    bench.set_defaults(handler=lambda args: _missing(bench))

    k = bench_sub.add_parser("kernels", help="every kernel op x tier, forward and backward")
    k.add_argument("--ops", nargs="+", help="op names or families (default: all)")
    k.add_argument("--tiers", nargs="+", choices=("ref", "numba", "cuda"))
    k.add_argument("--shapes", choices=("cae", "large", "all"))
    k.add_argument("--repeats", type=argtypes.positive_int)
    k.add_argument("--warmup", type=int)
    k.add_argument("--dtype", choices=("float32", "float64"))
    k.add_argument("--no-torch", dest="torch", action="store_false", default=None,
                   help="do not compare with PyTorch")
    k.add_argument("--quick", action="store_true", default=None, help="tiny shapes, few repeats")
    k.add_argument("--out", help="results JSON path")
    k.set_defaults(handler=_guarded(cmd_bench_kernels))

    m = bench_sub.add_parser("models", help="whole training steps of the CAE, AE and VAE")
    m.add_argument("--models", nargs="+", choices=("cae", "ae", "vae", "dae"))
    m.add_argument("--batch", type=argtypes.positive_int)
    m.add_argument("--steps", type=argtypes.positive_int)
    m.add_argument("--no-torch", dest="torch", action="store_false", default=None,
                   help="do not compare with PyTorch")
    m.add_argument("--quick", action="store_true", default=None, help="tiny settings")
    m.add_argument("--out", help="results JSON path")
    m.set_defaults(handler=_guarded(cmd_bench_models))
    return subparsers


def _guarded(handler):
    """Bad arguments print one line and exit with status 2 (like the rest of the CLI)."""
    def run(args):
        try:
            return handler(args)
        except InspectUsageError as e:
            command = " ".join(filter(None, [getattr(args, "command", None) or "aecore",
                                             getattr(args, "inspect_command", None),
                                             getattr(args, "bench_command", None)]))
            print(f"aecore {command}: error: {e}", file=sys.stderr)
            return 2
    run.__name__ = handler.__name__
    run.__doc__ = handler.__doc__
    return run


def _missing(parser):
    parser.print_help(sys.stderr)
    return 2


# ---------------------------------------------------------------------------------------------
# models and data for the inspect commands
# ---------------------------------------------------------------------------------------------
def _model_from_args(args):
    """(model, input_shape, config or None) from RUN_DIR or --model."""
    if args.run_dir and args.model:
        raise InspectUsageError("give RUN_DIR or --model, not both")
    if args.run_dir:
        from ..train import load_run
        model, config, _ = load_run(args.run_dir, which=args.which, device=args.device)
        input_shape = tuple(getattr(model, "input_shape", None) or config.get("input_shape"))
        return model, input_shape, config
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
    import numpy as np
    if data:
        from ..data import load_dataset
        dataset = load_dataset(data, root=data_root, n=batch_size, seed=seed)
        images = dataset.images[:batch_size]
        if tuple(images.shape[1:]) != tuple(input_shape):
            raise InspectUsageError(f"the images of {data!r} have shape {tuple(images.shape[1:])} "
                                    f"but the model takes {tuple(input_shape)}")
    else:
        ae_random.manual_seed(seed)
        images = ae_random.rand((batch_size,) + tuple(input_shape), np.float32)
    dtype = next(iter(model.parameters())).dtype if any(True for _ in model.parameters()) else np.float32
    return tensor(np.asarray(images), device=device, dtype=dtype)


def _loss_of(model, x):
    if hasattr(model, "loss"):
        out = model.loss(x)
        return out[0] if isinstance(out, tuple) else out
    from ..losses import mse_loss
    y = model(x)
    return mse_loss(y[0] if isinstance(y, (tuple, list)) else y, x)


# ---------------------------------------------------------------------------------------------
# commands
# ---------------------------------------------------------------------------------------------
def cmd_graph(args):
    from .graph import graph
    model, input_shape, _ = _model_from_args(args)
    x = _batch(model, input_shape, args.batch_size, args.device)
    model.train()
    loss = _loss_of(model, x)
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
    from .summary import summary
    model, input_shape, _ = _model_from_args(args)
    result = summary(model, input_shape, batch_size=args.batch_size)
    print(result)
    if args.json:
        Path(args.json).write_text(json.dumps(result.to_dict(), indent=1, default=str), encoding="utf-8")
        print(f"wrote {args.json}")
    return 0


def cmd_stats(args):
    from .hooks import layer_stats
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


# ---------------------------------------------------------------------------------------------
# benchmarks (the repository's bench/ folder)
# ---------------------------------------------------------------------------------------------
def bench_module(name):
    """Import bench/<name>.py from the source tree that holds this aecore package."""
    package_dir = Path(__file__).resolve().parents[1]  # .../aecore
    root = package_dir.parent
    bench_dir = root / "bench"
    if bench_dir.is_dir() and not (bench_dir / f"{name}.py").is_file():
        raise InspectUsageError(f"{bench_dir / (name + '.py')} is missing from this source tree")
    if not (bench_dir / f"{name}.py").is_file():
        raise InspectUsageError(
            f"the benchmarks live in the repository's bench/ folder, which is not beside this "
            f"aecore installation ({package_dir}); run from a source checkout installed with "
            f"'pip install -e .', or run 'python bench/{name}.py' there")
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    module = importlib.import_module(f"bench.{name}")
    if Path(module.__file__).resolve().parent != bench_dir.resolve():
        raise InspectUsageError(f"'bench.{name}' resolves to {module.__file__}, not to "
                                f"{bench_dir / (name + '.py')}: another package named 'bench' is "
                                "in the way")
    return module


def _given(args, names):
    return {name: getattr(args, name) for name in names if getattr(args, name, None) is not None}


def cmd_bench_kernels(args):
    module = bench_module("kernels")
    module.run(**_given(args, ("ops", "tiers", "shapes", "repeats", "warmup", "torch", "out",
                               "quick", "dtype")))
    return 0


def cmd_bench_models(args):
    module = bench_module("models")
    module.run(**_given(args, ("models", "batch", "steps", "torch", "out", "quick")))
    return 0


def main(argv=None):
    """`python -m aecore.inspect.cli inspect graph ...` (the same commands without aecore.cli)."""
    parser = argparse.ArgumentParser(prog="aecore")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    add_subcommands(sub)
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args.handler(args) or 0)
    except InspectUsageError as e:
        print(f"aecore: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
