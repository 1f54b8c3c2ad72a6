"""`aecore reconstruct | sample | interpolate | score RUN_DIR`: what a trained run does.

Each loads the run's model (aecore.train.load_run: the best epoch's weights, or --which last),
takes images (the run's validation images, or --data) and writes its result beside the run (or
into --out): a picture (aecore.viz) or the anomaly scores (aecore.models.anomaly).
"""

from __future__ import annotations

import csv
import io
import json
import os
import sys

import numpy as np

from .. import argtypes
from .common import UsageError, add_data_flags, load_or_usage, report

__all__ = ["add_subcommands", "cmd_reconstruct", "cmd_sample", "cmd_interpolate", "cmd_score"]


def add_subcommands(sub):
    """Add reconstruct, sample, interpolate and score to the `aecore` subparsers."""

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
    add_data_flags(p, images_help)
    p.add_argument("--n", type=argtypes.positive_int, default=16, help="number of images (default 16)")
    p = run_dir_command("sample", "generated images -> samples.png (a VAE samples its prior; "
                        "other models a Gaussian fitted to their codes)", cmd_sample)
    p.add_argument("--n", type=argtypes.positive_int, default=64, help="number of images (default 64)")
    p = run_dir_command("interpolate", "latent interpolation between pairs of images -> "
                        "interpolation.png", cmd_interpolate)
    add_data_flags(p, images_help)
    p.add_argument("--pairs", type=argtypes.positive_int, default=4)
    p.add_argument("--steps", type=argtypes.positive_int, default=10)
    p = run_dir_command("score", "anomaly scores (per-image reconstruction error) with a "
                        "threshold picked on the run's validation data -> scores.csv, "
                        "scores.json", cmd_score)
    add_data_flags(p, "images to score (default: the run's validation images)")
    p.add_argument("--limit", type=argtypes.positive_int, help="score the first N images")
    p.add_argument("--metric", choices=("mse", "bce"), default="mse",
                   help="per-image error: mean squared error (default) or BCE per pixel")
    p.add_argument("--quantile", type=argtypes.fraction, default=0.99,
                   help="threshold = this quantile of the validation errors (default 0.99)")

def _run(args):
    """(model, config, output directory) of RUN_DIR."""
    from ..train import load_run
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
    from ..data import load_dataset, split_dataset
    from ..train import load_data
    if data is None:
        ds = load_or_usage(lambda: load_data(config), config["data"])
        train_part, val_part = split_dataset(ds, config["val_fraction"], seed=config["seed"])
        part, what = (val_part, "the run's validation images") if len(val_part) else \
            (train_part, "the run's training images")
    else:
        if data.strip().lower() == "synthetic":
            part = load_or_usage(lambda: load_dataset("synthetic", split="test",
                                                      n=limit or 2000, seed=config["seed"]),
                                 data)
        else:
            part = load_or_usage(lambda: load_dataset(
                data, split=None, root=data_root or config.get("data_root"),
                image_size=image_size or config.get("image_size")), data)
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
    from .. import viz
    model, config, out = _run(args)
    images, _, what = _images(config, args.data, **_data_flags(args))
    path = os.path.join(out, "reconstructions.png")
    n = min(args.n, len(images))
    viz.reconstruction_grid(model, images[:n], path, n=min(n, 8), blocks=-(-n // 8))
    report(f"wrote {path} ({n} of {what})")
    return 0


def cmd_sample(args):
    from .. import viz
    model, config, out = _run(args)
    images = None
    if not model.can_sample:  # no prior: a Gaussian is fitted to the codes of these
        images, _, _ = _images(config, None)
    path = os.path.join(out, "samples.png")
    viz.sample_grid(model, path, n=args.n, images=images, seed=args.seed)
    how = "from the prior" if model.can_sample else \
        "from a Gaussian fitted to the codes of the validation images"
    report(f"wrote {path} ({args.n} samples {how})")
    return 0


def cmd_interpolate(args):
    from .. import viz
    model, config, out = _run(args)
    images, labels, what = _images(config, args.data, **_data_flags(args))
    if len(images) < 2:
        raise UsageError(f"{what}: need at least 2 images to interpolate")
    path = os.path.join(out, "interpolation.png")
    viz.interpolation_strip(model, images, path, labels=labels, pairs=args.pairs,
                            steps=args.steps, seed=args.seed)
    report(f"wrote {path} ({args.pairs} pairs of {what}, {args.steps} steps)")
    return 0


def _errors(model, images, metric="mse"):
    from ..models import anomaly
    return np.asarray(anomaly.reconstruction_errors(model, images, batch_size=256, metric=metric),
                      np.float64)


def cmd_score(args):
    from ..io.checkpoint import json_safe
    from ..models import anomaly
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
    report(f"threshold {threshold:.6g} (quantile {args.quantile} of {len(val_errors)} validation "
           f"errors); {int(flagged.sum())} of {len(errors)} images flagged")
    report(f"wrote {csv_path} and {json_path}")
    return 0
