"""`aecore train`: a new run from flags, `--resume` of a saved one, `--profile` of one epoch.

The flags become a config for aecore.train (each flag sets the config key of its name; the model
flags go into model_options). The config is checked once, by make_config, before any data is
loaded; what may change on `--resume` is aecore.train's RESUME_OVERRIDES, the one list.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from .. import argtypes
from ..models.base import LOSS_REDUCTIONS, OUTPUTS, RECONSTRUCTIONS
from ..models.corruption import describe_noise_kinds
from ..optim import OPTIMIZERS
from ..optim.schedule_spec import SCHEDULE_FORMS
from .common import MODEL_KINDS, UsageError, add_data_flags, load_or_usage, report

__all__ = ["add_subcommands", "cmd_train", "parse_noise"]

# The config keys set by the flag of the same name (--batch-size sets "batch_size"); besides
# these, --no-pictures sets "pictures" to False.
CONFIG_FLAGS = ("model", "data", "data_root", "epochs", "batch_size", "lr", "optimizer",
                "momentum", "weight_decay", "lr_schedule", "grad_clip", "device", "seed",
                "patience", "min_delta", "val_fraction", "limit", "image_size")
# The model options set by the flag of the same name (--latent-dim: model_options["latent_dim"]);
# --noise KIND[:LEVEL] sets "noise" and "noise_level".
MODEL_FLAGS = ("latent_dim", "filters", "hidden", "downsample", "upsample", "encoder", "base",
               "beta", "reconstruction", "output", "reduction", "sparse", "contractive")


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


def add_subcommands(sub):
    """Add `train` to the `aecore` subparsers."""
    t = sub.add_parser("train", help="train a model (no arguments: the default CAE on the "
                       "synthetic digits, under a minute the first time)",
                       description="Train a model. Every option has a default: with none, the "
                       "classic CAE trains on the built-in synthetic digits.")
    t.add_argument("--model", choices=MODEL_KINDS, help="model family (default: cae)")
    add_data_flags(t, "synthetic, mnist, fashion-mnist, kmnist, or a path (.npz, IDX file or "
                   "folder, torchvision's MNIST/raw layout, folder of images); default synthetic")
    t.add_argument("--epochs", type=argtypes.positive_int, help="default 5")
    t.add_argument("--batch-size", type=argtypes.positive_int, help="default 32")
    t.add_argument("--lr", type=argtypes.positive_float, help="learning rate (default 1e-3)")
    t.add_argument("--optimizer", choices=tuple(OPTIMIZERS), help="default adam")
    t.add_argument("--momentum", type=argtypes.nonnegative_float, help="sgd / rmsprop momentum")
    t.add_argument("--weight-decay", type=argtypes.nonnegative_float, help="default: the "
                   "optimizer's (0; adamw 0.01)")
    # Checked with the rest of the config (make_config), not here: one gate for every value.
    t.add_argument("--lr-schedule", metavar="SPEC", help="learning-rate schedule, stepped once "
                   f"per epoch after validation: {', '.join(SCHEDULE_FORMS)}; cosine without "
                   "T_MAX anneals over --epochs, plateau watches the validation loss (e.g. "
                   "step:10:0.5, exp:0.95, cosine, plateau:3:0.5)")
    t.add_argument("--grad-clip", type=argtypes.positive_float, metavar="MAX_NORM",
                   help="scale each step's gradients down to this total L2 norm at most")
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
    t.add_argument("--reconstruction", choices=RECONSTRUCTIONS, help="reconstruction loss: "
                   "bce (on logits, stable; default), mse, bce-keras (Keras' BCE on clipped "
                   "probabilities)")
    t.add_argument("--output", choices=OUTPUTS, help="decoder output: sigmoid (logits, the "
                   "images are their sigmoid; default) or linear (the output is the image; "
                   "needs --reconstruction mse)")
    t.add_argument("--reduction", choices=LOSS_REDUCTIONS, help="reconstruction loss per image: "
                   "mean over its pixels (default for ae, cae, dae) or sum (default for vae)")
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
    return t


def _flag(key):
    """The flag that sets config[key], or None when no flag does."""
    if key == "pictures":
        return "--no-pictures"
    return "--" + key.replace("_", "-") if key in CONFIG_FLAGS else None


def _overrides(args):
    """The config values the flags give (None: not given, the default applies)."""
    overrides = {key: getattr(args, key) for key in CONFIG_FLAGS if getattr(args, key) is not None}
    if args.no_pictures:
        overrides["pictures"] = False
    return overrides


def _model_options(args):
    options = {name: getattr(args, name) for name in MODEL_FLAGS
               if getattr(args, name, None) is not None}
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


def cmd_train(args):
    from .. import train as T
    overrides = _overrides(args)
    options = _model_options(args)
    start = time.perf_counter()
    if args.profile:
        if args.resume:
            raise UsageError("--profile trains one epoch of a new run; it cannot be combined "
                             "with --resume")
        from ..inspect import profile_one_epoch
        config = T.make_config(overrides, model_options=options)
        dataset = load_or_usage(lambda: T.load_data(config), config["data"])
        report(profile_one_epoch(config, data=dataset, quiet=args.quiet).table())
        return 0
    if args.resume:
        given = sorted(set(overrides) - set(T.RESUME_OVERRIDES) | set(options))
        if given:
            allowed = [f for f in map(_flag, T.RESUME_OVERRIDES) if f] + ["--out"]
            flags = ", ".join("--" + g.replace("_", "-") for g in given)
            raise UsageError(f"--resume continues a run with its saved settings; only "
                             f"{', '.join(allowed)} and --overwrite may be given with it "
                             f"(got {flags})")
        if not os.path.isdir(args.resume):
            raise UsageError(f"--resume {args.resume}: no such run directory")
        out_dir = args.out or args.resume
        with _resume_hint(out_dir):
            trainer = T.resume(args.resume, overrides=overrides, quiet=args.quiet,
                               out_dir=out_dir, overwrite=args.overwrite)
    else:
        config = T.make_config(overrides, model_options=options)   # checked once, here
        out_dir = args.out or T.default_run_dir(config)
        dataset = load_or_usage(lambda: T.load_data(config), config["data"])
        with _resume_hint(out_dir):
            trainer = T.train(config, out_dir=out_dir, quiet=args.quiet, data=dataset,
                              overwrite=args.overwrite)
    elapsed = time.perf_counter() - start
    if not trainer.world.is_root:          # data-parallel: rank 0 reports the run
        return 0
    report(f"run directory: {trainer.out_dir}")
    report(_epochs_summary(trainer, elapsed))
    if trainer.stop_reason:
        report(trainer.stop_reason)
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
