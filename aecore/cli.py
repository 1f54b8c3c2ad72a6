"""The `aecore` command.

    aecore train                          the default CAE on the built-in synthetic digits
                                          (under a minute on two CPU cores; see the README)
    aecore train --model vae --latent-dim 2 --data mnist --epochs 10 --out runs/vae2
    aecore train --model dae --noise gaussian:0.5 --data fashion-mnist
    aecore train --resume runs/vae2 [--epochs 20]    continue exactly where it stopped
    aecore reconstruct RUN_DIR            inputs vs reconstructions -> RUN_DIR/reconstructions.png
    aecore sample RUN_DIR                 generated images -> samples.png
    aecore interpolate RUN_DIR            latent interpolations -> interpolation.png
    aecore score RUN_DIR --data PATH      anomaly scores -> scores.csv, scores.json

Exit status (each failure is reported in one message, without a traceback):
    0    done
    1    training diverged: a NaN/Inf loss, parameter or optimizer buffer (the message names
         the step; the last good checkpoint stays)
    2    bad input: an unknown option, a bad setting (AECORE_*), a missing or damaged data
         file, an unusable checkpoint, a run directory in use or already holding a run, no
         GPU for --device cuda
    3    disk full: a file of the run could not be written (the message names it, the space
         needed and the last good checkpoint; metrics.json records the stop)
    130  interrupted (Ctrl-C; `--resume` continues from the last checkpoint)
"""

from __future__ import annotations

import argparse
import csv
import difflib
import io
import json
import os
import sys
import time

import numpy as np

from . import argtypes
from .models.corruption import describe_noise_kinds

__all__ = ["main", "build_parser", "UsageError"]

MODEL_KINDS = ("ae", "cae", "dae", "vae")
EXIT_DONE, EXIT_DIVERGED, EXIT_USAGE, EXIT_DISK_FULL, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


class UsageError(Exception):
    """Bad input from the user: printed as one message, exit status 2."""


# ---------------------------------------------------------------------------------------------
# argument types
# ---------------------------------------------------------------------------------------------

def parse_noise(text):
    """'gaussian', 'gaussian:0.5', 'salt_and_pepper:0.2', 'masking:0.3', 'occlusion:0.2',
    'crosshair' -> (kind, level or None); the kinds are checked by the model."""
    kind, _, level = text.partition(":")
    kind = kind.strip().lower().replace("salt-and-pepper", "salt_and_pepper")
    if not kind:
        raise argparse.ArgumentTypeError(f"expected KIND[:LEVEL], got {text!r}")
    if level:
        try:
            value = float(level)
        except ValueError:
            raise argparse.ArgumentTypeError(f"the noise level in {text!r} is not a number") \
                from None
        if not value >= 0:
            raise argparse.ArgumentTypeError(f"the noise level in {text!r} must be >= 0")
        return kind, value
    return kind, None


# ---------------------------------------------------------------------------------------------
# the parser
# ---------------------------------------------------------------------------------------------

class _Parser(argparse.ArgumentParser):
    def error(self, message):
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {message}\n")

    def parse_args(self, args=None, namespace=None):
        """As argparse's, but an unknown option is reported by the subcommand it was given to,
        with its usage and the closest option it has (`--epocs`: did you mean --epochs?)."""
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:
            subcommands = getattr(self, "subcommands", {})
            parser = subcommands.get(getattr(parsed, "command", None), self)
            known = [o for action in parser._actions for o in action.option_strings
                     if o.startswith("--")]
            hints = []
            for extra in extras:
                name = extra.split("=", 1)[0]
                close = difflib.get_close_matches(name, known, n=1, cutoff=0.6) \
                    if name.startswith("-") else []
                if close:
                    hints.append(f"{name}: did you mean {close[0]}?")
            hint = f" ({'; '.join(hints)})" if hints else ""
            parser.error(f"unrecognized arguments: {' '.join(extras)}{hint}")
        return parsed


def _add_data_flags(parser, data_help):
    """The data flags every subcommand that reads images takes."""
    parser.add_argument("--data", help=data_help)
    parser.add_argument("--data-root", help="a directory searched first for named data sets")
    parser.add_argument("--image-size", type=argtypes.positive_int,
                        help="image folders: resize to N x N")


def build_parser():
    parser = _Parser(prog="aecore", description="Train autoencoders (AE, CAE, DAE, VAE) and "
                     "look at what they learned.",
                     formatter_class=argparse.RawDescriptionHelpFormatter,
                     epilog="Run 'aecore COMMAND --help' for a command's options.")
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    t = sub.add_parser("train", help="train a model (no arguments: the default CAE on the "
                       "synthetic digits, under a minute)",
                       description="Train a model. Every option has a default: with none, the "
                       "classic CAE trains on the built-in synthetic digits.")
    t.add_argument("--model", choices=MODEL_KINDS, help="model family (default: cae)")
    _add_data_flags(t, "synthetic, mnist, fashion-mnist, kmnist, or a path (.npz, IDX file or "
                    "folder, torchvision's MNIST/raw layout, folder of images); default synthetic")
    t.add_argument("--epochs", type=argtypes.positive_int, help="default 5")
    t.add_argument("--batch-size", type=argtypes.positive_int, help="default 32")
    t.add_argument("--lr", type=argtypes.positive_float, help="learning rate (default 1e-3)")
    t.add_argument("--optimizer", choices=("adam", "sgd", "rmsprop"), help="default adam")
    t.add_argument("--momentum", type=argtypes.nonnegative_float, help="sgd / rmsprop momentum")
    t.add_argument("--weight-decay", type=argtypes.nonnegative_float)
    t.add_argument("--latent-dim", type=argtypes.positive_int, help="size of the code")
    t.add_argument("--filters", type=argtypes.int_list, help="conv filters, e.g. 32,32,16")
    t.add_argument("--hidden", type=argtypes.int_list_or_empty, help="dense hidden sizes, e.g. 64,32")
    t.add_argument("--downsample", choices=("pool", "stride"))
    t.add_argument("--upsample", choices=("nearest", "bilinear", "transpose"))
    t.add_argument("--encoder", choices=("dense", "conv"), help="VAE encoder")
    t.add_argument("--base", choices=("ae", "cae"), help="the model a DAE trains")
    t.add_argument("--noise", type=parse_noise, metavar="KIND[:LEVEL]",
                   help="DAE corruption: " + describe_noise_kinds())
    t.add_argument("--beta", type=argtypes.nonnegative_float, help="VAE: weight of the KL term")
    t.add_argument("--reconstruction", choices=("bce", "mse"), help="reconstruction loss")
    t.add_argument("--sparse", type=argtypes.nonnegative_float, help="L1 activity penalty on the code")
    t.add_argument("--contractive", type=argtypes.nonnegative_float,
                   help="contractive penalty weight (dense encoders)")
    t.add_argument("--device", choices=("cpu", "cuda"), help="default cpu")
    t.add_argument("--seed", type=argtypes.nonnegative_int, help="default 0")
    t.add_argument("--out", help="run directory (default runs/<model>-<time>); one that holds "
                   "a run already is refused unless --overwrite is given")
    t.add_argument("--overwrite", action="store_true", help="delete the files of the run "
                   "already in --out before training")
    t.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR from its "
                   "last checkpoint (with --epochs: train up to that many epochs)")
    t.add_argument("--patience", type=argtypes.nonnegative_int,
                   help="early stopping after this many epochs without improvement (0: off)")
    t.add_argument("--min-delta", type=argtypes.nonnegative_float)
    t.add_argument("--val-fraction", type=argtypes.fraction, help="default 0.1")
    t.add_argument("--limit", type=argtypes.positive_int, help="use the first N images "
                   "(default 3000 for synthetic, else all)")
    t.add_argument("--no-pictures", action="store_true", help="do not write PNGs at the end")
    t.add_argument("--quiet", action="store_true", help="no progress output")
    t.add_argument("--profile", action="store_true",
                   help="train ONE epoch under the op profiler and print its table (time, "
                   "GFLOP/s, GB/s, share of peak per op); writes nothing")
    t.set_defaults(handler=cmd_train)

    def run_dir_command(name, help_text, handler):
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("run_dir", metavar="RUN_DIR", help="a directory written by aecore train")
        p.add_argument("--out", help="where to write (default: RUN_DIR)")
        p.add_argument("--which", choices=("best", "last"), default="best",
                       help="weights of the best epoch (default) or the last one")
        p.add_argument("--seed", type=argtypes.nonnegative_int, default=0)
        p.set_defaults(handler=handler)
        return p

    images_help = "images to use (default: the run's validation images)"
    p = run_dir_command("reconstruct", "inputs vs reconstructions (and noisy inputs for a "
                        "DAE) -> reconstructions.png", cmd_reconstruct)
    _add_data_flags(p, images_help)
    p.add_argument("--n", type=argtypes.positive_int, default=16, help="number of images (default 16)")
    p = run_dir_command("sample", "generated images -> samples.png (a VAE samples its prior; "
                        "other models a Gaussian fitted to their codes)", cmd_sample)
    p.add_argument("--n", type=argtypes.positive_int, default=64, help="number of images (default 64)")
    p = run_dir_command("interpolate", "latent interpolation between pairs of images -> "
                        "interpolation.png", cmd_interpolate)
    _add_data_flags(p, images_help)
    p.add_argument("--pairs", type=argtypes.positive_int, default=4)
    p.add_argument("--steps", type=argtypes.positive_int, default=10)
    p = run_dir_command("score", "anomaly scores (per-image reconstruction error) with a "
                        "threshold picked on the run's validation data -> scores.csv, "
                        "scores.json", cmd_score)
    _add_data_flags(p, "images to score (default: the run's validation images)")
    p.add_argument("--limit", type=argtypes.positive_int, help="score the first N images")
    p.add_argument("--metric", choices=("mse", "bce"), default="mse",
                   help="per-image error: mean squared error (default) or BCE per pixel")
    p.add_argument("--quantile", type=argtypes.fraction, default=0.99,
                   help="threshold = this quantile of the validation errors (default 0.99)")

    try:
        from .inspect import cli as inspect_cli
    except ImportError:
        inspect_cli = None
    if inspect_cli is not None and hasattr(inspect_cli, "add_subcommands"):
        inspect_cli.add_subcommands(sub)
    parser.subcommands = dict(sub.choices)
    return parser


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------

def _user_errors():
    """Exception types that mean bad input (exit 2, one message)."""
    from .data import DatasetNotFoundError, IDXFormatError, MissingDependencyError, \
        NPZFormatError
    from .io.checkpoint import CheckpointError
    from .io.png import PNGFormatError
    from .io.rundir import RunDirectoryError
    from .settings import SettingsError
    from .train import ConfigError
    errors = [UsageError, DatasetNotFoundError, IDXFormatError, NPZFormatError, PNGFormatError,
              MissingDependencyError, CheckpointError, ConfigError, RunDirectoryError,
              SettingsError]
    try:
        from .models.base import ModelConfigError
        errors.append(ModelConfigError)
    except ImportError:
        pass
    return tuple(errors)


def _check_device(device):
    from .backend import normalize_device
    try:
        normalize_device(device)
    except RuntimeError as e:
        raise UsageError(str(e)) from None


def _load(loader, what):
    """Run a data-loading call; turn its ValueErrors (bad files) into UsageError."""
    from .data import DatasetNotFoundError
    try:
        return loader()
    except DatasetNotFoundError as e:
        message = str(e)
        if what and "no file or folder of that name exists" in message:
            message += f" (looked for {os.path.abspath(os.path.expanduser(what))})"
        if "Looked in:" in message:
            message += ("\nOn the command line: --data-root DIR (a directory searched first), "
                        "--data PATH, or --data synthetic.")
        raise UsageError(message) from None
    except (ValueError, OSError) as e:
        raise UsageError(f"cannot load data {what!r}: {e}") from None


def _model_options(args):
    options = {}
    for name in ("latent_dim", "filters", "hidden", "downsample", "upsample", "encoder", "base",
                 "beta", "reconstruction", "sparse", "contractive"):
        value = getattr(args, name, None)
        if value is not None:
            options[name] = value
    if args.noise is not None:
        options["noise"], level = args.noise
        if level is not None:
            options["noise_level"] = level
    return options


class _resume_hint:
    """On Ctrl-C, say how to continue (the last finished epoch's checkpoint is on disk)."""

    def __init__(self, out_dir):
        self.out_dir = out_dir

    def __enter__(self):
        return self

    def __exit__(self, kind, value, traceback):
        if kind is KeyboardInterrupt and os.path.isfile(os.path.join(self.out_dir,
                                                                      "checkpoint.json")):
            print(f"\ncontinue with: aecore train --resume {self.out_dir}", file=sys.stderr)
        return False


def _out(text="", stream=None):
    print(text, file=stream or sys.stdout)


# ---------------------------------------------------------------------------------------------
# commands
# ---------------------------------------------------------------------------------------------

def cmd_train(args):
    from . import train as T
    overrides = {}
    for key, attr in (("model", "model"), ("data", "data"), ("data_root", "data_root"),
                      ("epochs", "epochs"), ("batch_size", "batch_size"), ("lr", "lr"),
                      ("optimizer", "optimizer"), ("momentum", "momentum"),
                      ("weight_decay", "weight_decay"), ("device", "device"), ("seed", "seed"),
                      ("patience", "patience"), ("min_delta", "min_delta"),
                      ("val_fraction", "val_fraction"), ("limit", "limit"),
                      ("image_size", "image_size")):
        value = getattr(args, attr)
        if value is not None:
            overrides[key] = value
    if args.no_pictures:
        overrides["pictures"] = False
    options = _model_options(args)
    if args.device:
        _check_device(args.device)
    start = time.perf_counter()
    if args.profile:
        if args.resume:
            raise UsageError("--profile trains one epoch of a new run; it cannot be combined "
                             "with --resume")
        from .inspect import profile_one_epoch
        config = T.make_config(overrides, model_options=options)
        dataset = _load(lambda: T.load_data(config), config["data"])
        _out(profile_one_epoch(config, data=dataset, quiet=args.quiet).table())
        return 0
    if args.resume:
        allowed = {"epochs", "patience", "min_delta", "device", "pictures"}
        given = sorted(set(overrides) - allowed | set(options))
        if given:
            flags = ", ".join("--" + g.replace("_", "-") for g in given)
            raise UsageError(f"--resume continues a run with its saved settings; only --epochs, "
                             f"--patience, --min-delta, --device, --no-pictures, --out and "
                             f"--overwrite may be given with it (got {flags})")
        if not os.path.isdir(args.resume):
            raise UsageError(f"--resume {args.resume}: no such run directory")
        out_dir = args.out or args.resume
        with _resume_hint(out_dir):
            trainer = T.resume(args.resume, overrides=overrides, quiet=args.quiet,
                               out_dir=out_dir, overwrite=args.overwrite)
    else:
        config = T.make_config(overrides, model_options=options)
        out_dir = args.out or T.default_run_dir(config)
        dataset = _load(lambda: T.load_data(config), config["data"])
        with _resume_hint(out_dir):
            trainer = T.train(config, out_dir=out_dir, quiet=args.quiet, data=dataset,
                              overwrite=args.overwrite)
    elapsed = time.perf_counter() - start
    _out(f"run directory: {trainer.out_dir}")
    _out(_epochs_summary(trainer, elapsed))
    if trainer.stop_reason:
        _out(trainer.stop_reason)
    return 0


def _epochs_summary(trainer, elapsed):
    """'3 epochs in 11.2 s: training loss ...', counting this process's epochs; after a resume
    also the run's total; '0 epochs run (the run had finished)' when there was nothing to do."""
    if trainer.epochs_run == 0:
        return "0 epochs run (the run had finished)" if trainer.finished else "0 epochs run"
    last = trainer.history[-1]
    total = f" ({trainer.epoch} in total)" if trainer.resumed_from else ""
    val = "" if last["val_loss"] is None else f", validation loss {last['val_loss']:.4f}"
    return (f"{trainer.epochs_run} epochs in {elapsed:.1f} s{total}: training loss "
            f"{last['train_loss']:.4f}{val}; best epoch {trainer.best_epoch}")


def _run(args):
    from .train import load_run
    model, config, checkpoint = load_run(args.run_dir, which=args.which)
    if checkpoint.fallback_reason:
        print(f"warning: {checkpoint.fallback_reason}; using the previous checkpoint",
              file=sys.stderr)
    out = args.out or args.run_dir
    os.makedirs(out, exist_ok=True)
    return model, config, out


def _images(config, data, limit=None, seed=0, data_root=None, image_size=None):
    """(images, labels, description): the run's validation images, or `data` (its test split
    when it has one), looked for first in `data_root` (default: the run's)."""
    from .data import load_dataset, split_dataset
    from .train import load_data
    if data is None:
        ds = _load(lambda: load_data(config), config["data"])
        train_part, val_part = split_dataset(ds, config["val_fraction"], seed=config["seed"])
        part, what = (val_part, "the run's validation images") if len(val_part) else \
            (train_part, "the run's training images")
    else:
        if data.strip().lower() == "synthetic":
            part = _load(lambda: load_dataset("synthetic", split="test", n=limit or 2000,
                                              seed=config["seed"]), data)
        else:
            part = _load(lambda: load_dataset(data, split=None,
                                              root=data_root or config.get("data_root"),
                                              image_size=image_size or config.get("image_size")),
                         data)
            if "test" in part.splits and len(part.splits) > 1:
                start = len(part) - part.splits["test"]
                part = part.subset(np.arange(start, len(part)))
        what = f"{data} ({part.name})"
    if limit is not None and limit < len(part):
        part = part.subset(np.arange(limit))
    shape = tuple(config.get("input_shape") or part.images.shape[1:])
    if tuple(part.images.shape[1:]) != shape:
        raise UsageError(f"{what}: images are {tuple(part.images.shape[1:])} (C, H, W) but the "
                         f"model was trained on {shape}")
    return part.images, part.labels, what


def _data_flags(args):
    return {"data_root": args.data_root, "image_size": args.image_size}


def cmd_reconstruct(args):
    from . import viz
    model, config, out = _run(args)
    images, _, what = _images(config, args.data, **_data_flags(args))
    path = os.path.join(out, "reconstructions.png")
    n = min(args.n, len(images))
    viz.reconstruction_grid(model, images[:n], path, n=min(n, 8), blocks=-(-n // 8))
    _out(f"wrote {path} ({n} of {what})")
    return 0


def cmd_sample(args):
    from . import viz
    model, config, out = _run(args)
    images = None
    if not hasattr(model, "sample"):
        images, _, _ = _images(config, None)
    path = os.path.join(out, "samples.png")
    viz.sample_grid(model, path, n=args.n, images=images, seed=args.seed)
    how = "from the prior" if hasattr(model, "sample") else \
        "from a Gaussian fitted to the codes of the validation images"
    _out(f"wrote {path} ({args.n} samples {how})")
    return 0


def cmd_interpolate(args):
    from . import viz
    model, config, out = _run(args)
    images, labels, what = _images(config, args.data, **_data_flags(args))
    if len(images) < 2:
        raise UsageError(f"{what}: need at least 2 images to interpolate")
    path = os.path.join(out, "interpolation.png")
    viz.interpolation_strip(model, images, path, labels=labels, pairs=args.pairs,
                            steps=args.steps, seed=args.seed)
    _out(f"wrote {path} ({args.pairs} pairs of {what}, {args.steps} steps)")
    return 0


def _errors(model, images, metric="mse"):
    from .models import anomaly
    return np.asarray(anomaly.reconstruction_errors(model, images, batch_size=256, metric=metric),
                      np.float64)


def cmd_score(args):
    from .io.checkpoint import json_safe
    from .models import anomaly
    model, config, out = _run(args)
    val_images, _, val_what = _images(config, None)
    val_errors = _errors(model, val_images, args.metric)
    threshold = float(anomaly.pick_threshold(val_errors, quantile=args.quantile))
    images, labels, what = _images(config, args.data, limit=args.limit, **_data_flags(args))
    errors = _errors(model, images, args.metric)
    flagged = errors > threshold
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["index", "label", "score", "anomaly"])
    for k, e in enumerate(errors):
        writer.writerow([k, "" if labels is None else int(labels[k]), repr(float(e)),
                         int(flagged[k])])
    csv_path = os.path.join(out, "scores.csv")
    with open(csv_path, "w", encoding="utf-8", newline="") as f:
        f.write(buffer.getvalue())
    summary = {
        "run": os.path.abspath(args.run_dir),
        "scored": what, "count": int(len(errors)),
        "score": ("mean squared error per pixel between each image and its reconstruction"
                  if args.metric == "mse" else "binary cross-entropy per pixel of the "
                  "reconstruction"),
        "metric": args.metric,
        "threshold": threshold, "quantile": args.quantile,
        "threshold_from": f"{val_what} ({len(val_errors)} images)",
        "flagged": int(flagged.sum()), "flagged_fraction": float(flagged.mean()),
        "score_mean": float(errors.mean()), "score_max": float(errors.max()),
        "validation_score_mean": float(val_errors.mean()),
    }
    if labels is not None:
        summary["by_label"] = {
            str(int(k)): {"count": int((labels == k).sum()),
                          "score_mean": float(errors[labels == k].mean()),
                          "flagged": int(flagged[labels == k].sum())}
            for k in np.unique(labels)}
    json_path = os.path.join(out, "scores.json")
    with open(json_path, "w", encoding="utf-8") as f:
        json.dump(json_safe(summary), f, indent=1)
        f.write("\n")
    _out(f"threshold {threshold:.6g} (quantile {args.quantile} of {len(val_errors)} validation "
         f"errors); {int(flagged.sum())} of {len(errors)} images flagged")
    _out(f"wrote {csv_path} and {json_path}")
    return 0


# ---------------------------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------------------------

def main(argv=None):
    """Entry point of the `aecore` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.version:
        from . import __version__
        _out(f"aecore {__version__}")
        return 0
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    from .io.atomic import DiskFullError
    from .settings import check_environment
    from .train import NonFiniteLossError
    user_errors = _user_errors()
    try:
        check_environment()  # every setting checked before anything is created
        return int(args.handler(args) or 0)
    except NonFiniteLossError as e:
        print(f"aecore {args.command}: {e}", file=sys.stderr)
        return EXIT_DIVERGED
    except DiskFullError as e:
        print(f"aecore {args.command}: error: {e}", file=sys.stderr)
        return EXIT_DISK_FULL
    except user_errors as e:
        message = str(e) if not isinstance(e, KeyError) else e.args[0]
        print(f"aecore {args.command}: error: {message}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"\naecore {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # e.g. `aecore score ... | head -1`: the reader left, that is fine
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return 141


if __name__ == "__main__":
    sys.exit(main())
