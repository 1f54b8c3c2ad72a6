"""`aecore embed RUN_DIR [--out DIR]`: a run's codes for TensorBoard's embedding projector.

Encodes images (the run's validation images, or --data) with the run's model (its codes; for a
VAE the means mu) and writes the projector's files (aecore.viz.projector.write_projector) into
--out, default RUN_DIR/projector; then `tensorboard --logdir DIR` shows them in the Projector
tab. The run and its images are found as by `aecore reconstruct` and the other run commands
(runs.py), with the same data flags and messages.
"""

from __future__ import annotations

import argparse
import os

from .. import argtypes
from .common import UsageError, add_data_flags, report
from .runs import _images, _run

__all__ = ["add_subcommands", "cmd_embed", "DEFAULT_LIMIT"]

DEFAULT_LIMIT = 1000   # images embedded unless --limit says otherwise


def _limit(text):
    """--limit: a positive integer no larger than what fits in the projector's sprite."""
    from ..viz.projector import MAX_SPRITE_IMAGES
    value = argtypes.positive_int(text)
    if value > MAX_SPRITE_IMAGES:
        raise argparse.ArgumentTypeError(f"expected at most {MAX_SPRITE_IMAGES} (the most "
                                         f"thumbnails the projector's sprite holds), got {text!r}")
    return value


def add_subcommands(sub):
    """Add `embed` to the `aecore` subparsers."""
    help_text = ("codes of images for TensorBoard's embedding projector -> tensors.tsv, "
                 "metadata.tsv, sprite.png, projector_config.pbtxt, codes_pca.png")
    p = sub.add_parser("embed", help=help_text, description=help_text)
    p.add_argument("run_dir", metavar="RUN_DIR", help="a directory written by aecore train")
    p.add_argument("--out", help="the directory to write (default: RUN_DIR/projector); one "
                   "that exists must be empty unless --overwrite")
    p.add_argument("--overwrite", action="store_true",
                   help="write into an --out that already holds files")
    p.add_argument("--which", choices=("best", "last"), default="best",
                   help="weights of the best epoch (default) or the last one")
    add_data_flags(p, "images to embed (default: the run's validation images)")
    p.add_argument("--limit", type=_limit, default=DEFAULT_LIMIT,
                   help=f"embed the first N images (default {DEFAULT_LIMIT})")
    p.set_defaults(handler=cmd_embed)


def _check_out(out, overwrite):
    """Refuse an --out that is a file, or a directory holding files (unless overwrite)."""
    if os.path.exists(out) and not os.path.isdir(out):
        raise UsageError(f"--out {out}: exists and is not a directory")
    if os.path.isdir(out) and os.listdir(out) and not overwrite:
        raise UsageError(f"--out {out}: the directory is not empty (pass --overwrite to write "
                         "into it)")


def cmd_embed(args):
    from ..viz import encode_codes
    from ..viz.projector import write_projector
    args.out = args.out or os.path.join(args.run_dir, "projector")
    _check_out(args.out, args.overwrite)
    model, config, out = _run(args)
    images, labels, what = _images(config, args.data, limit=args.limit,
                                   data_root=args.data_root, image_size=args.image_size)
    if len(images) < 2:
        raise UsageError(f"{what}: need at least 2 images to embed, got {len(images)}")
    codes = encode_codes(model, images)                       # (N, D); a VAE's mu
    kind = config["model"]
    paths = write_projector(out, codes, labels, images,
                            tensor_name=f"{kind} codes (mu)" if kind == "vae" else f"{kind} codes")
    report(f"embedded {len(codes)} of {what}: {codes.shape[1]} numbers per code")
    if labels is None:
        report(f"no labels in {what}: metadata.tsv left out, codes_pca.png in one colour")
    report(f"wrote {', '.join(os.path.basename(p) for p in paths.values())} into {out}")
    report(f"view them with: tensorboard --logdir {out}  (the Projector tab)")
    return 0
