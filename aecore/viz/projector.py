"""TensorBoard's embedding projector as plain files: `tensorboard --logdir DIR` shows them in its
Projector tab, and the engine needs no TensorFlow (nor TensorBoard) to write them.

    from aecore.viz.projector import write_projector
    paths = write_projector("runs/vae2/projector", codes, labels, images)

What goes into out_dir, in the formats the projector plugin reads:
    tensors.tsv             one row per image: its code, tab-separated floats
    metadata.tsv            one label per row, in the same order. A single column has no header
                            row (the projector's rule: a header only when there are 2+ columns);
                            left out when there are no labels
    sprite.png              the images as one square grid of thumbnails, ceil(sqrt(N)) a side,
                            filled row by row in the order of tensors.tsv; cells past the last
                            image are white
    projector_config.pbtxt  the text protobuf (ProjectorConfig) naming the three files, with
                            paths relative to itself, the tensor's shape and the thumbnail size
    codes_pca.png           the codes as points coloured by label (aecore.viz.plots.plot_codes:
                            longer codes projected on their first two principal components, by
                            NumPy's SVD; a 2-number code plotted as it is)

The sprite's limit: the projector loads sprites of at most SPRITE_MAX_PIXELS (8192) a side. When
ceil(sqrt(N)) thumbnails of the images' size do not fit, the thumbnails are shrunk (each one
pixel the mean of the block of pixels it covers) until they do; smaller than
MIN_THUMBNAIL_PIXELS on their longer side they would be unreadable, so more than
MAX_SPRITE_IMAGES images are refused.
"""

from __future__ import annotations

import io
import math
import os

import numpy as np

from ..io.atomic import atomic_write
from ..io.png import write_png
from .plots import plot_codes

__all__ = ["write_projector", "sprite_image", "projector_config_text", "SPRITE_MAX_PIXELS",
           "MIN_THUMBNAIL_PIXELS", "MAX_SPRITE_IMAGES", "PROJECTOR_FILES"]

SPRITE_MAX_PIXELS = 8192      # the projector's limit on a sprite's width and height
MIN_THUMBNAIL_PIXELS = 8      # thumbnails are never shrunk below this on their longer side
MAX_SPRITE_IMAGES = (SPRITE_MAX_PIXELS // MIN_THUMBNAIL_PIXELS) ** 2   # 1024 x 1024 thumbnails

# role -> file name, as written into out_dir
PROJECTOR_FILES = {"tensors": "tensors.tsv", "metadata": "metadata.tsv", "sprite": "sprite.png",
                   "config": "projector_config.pbtxt", "scatter": "codes_pca.png"}


def _side(n):
    """ceil(sqrt(n)) in integers: the number of thumbnails along each side of the sprite."""
    return math.isqrt(n - 1) + 1


def _shrink(images, height, width):
    """(N, C, H, W) -> (N, C, height, width) with height <= H, width <= W: each output pixel the
    mean of the block of input pixels it covers (floor or ceil of H / height rows, likewise
    columns)."""
    for axis, (old, new) in ((2, (images.shape[2], height)), (3, (images.shape[3], width))):
        starts = (np.arange(new) * old) // new
        sizes = np.diff(np.append(starts, old)).astype(np.float32)
        shape = [1, 1, 1, 1]
        shape[axis] = new
        images = np.add.reduceat(images, starts, axis=axis) / sizes.reshape(shape)
    return images


def sprite_image(images, max_pixels=SPRITE_MAX_PIXELS):
    """The projector's sprite of `images` (N, C, H, W) with C = 1 or 3, floats in [0, 1] (or
    uint8).

    Returns (sprite, (thumbnail width, thumbnail height)): sprite float32 (S*h, S*w) for one
    channel or (S*h, S*w, 3) for three, with S = ceil(sqrt(N)) and (h, w) = (H, W), or smaller
    when S * max(H, W) > max_pixels (see the module docstring). Image k sits in row k // S,
    column k % S.
    """
    x = np.asarray(images)
    x = x.astype(np.float32) / 255.0 if x.dtype == np.uint8 else x.astype(np.float32)
    if x.ndim != 4 or x.shape[1] not in (1, 3) or len(x) == 0:
        raise ValueError(f"images: expected (N, C, H, W) with N >= 1 and C = 1 or 3, got shape "
                         f"{x.shape}")
    n, c, h, w = x.shape
    if n > MAX_SPRITE_IMAGES:
        raise ValueError(f"images: at most {MAX_SPRITE_IMAGES} fit in a projector sprite "
                         f"({SPRITE_MAX_PIXELS} px a side, thumbnails of at least "
                         f"{MIN_THUMBNAIL_PIXELS} px), got {n}")
    side = _side(n)
    fit = max_pixels // side                      # the longest thumbnail side that fits
    if max(h, w) > fit:
        factor = fit / max(h, w)
        h, w = max(1, int(h * factor)), max(1, int(w * factor))
        x = _shrink(x, h, w)
    blank = np.ones((side * side - n, c, h, w), np.float32)
    cells = np.concatenate([x, blank]).reshape(side, side, c, h, w)
    # (row, column, C, h, w) -> (row, h, column, w, C): rows of thumbnails, pixel rows inside
    sprite = cells.transpose(0, 3, 1, 4, 2).reshape(side * h, side * w, c)
    return (sprite[:, :, 0] if c == 1 else sprite), (w, h)


def _quoted(text, what):
    """`text` as a protobuf text-format string literal."""
    text = str(text)
    if not text.isprintable():  # no line breaks, no tabs
        raise ValueError(f"{what}: expected printable text on one line, got {text!r}")
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def projector_config_text(tensor_path, tensor_shape, sprite_path, thumbnail_size,
                          metadata_path=None, tensor_name="codes"):
    """The projector_config.pbtxt text: one `embeddings` entry of a ProjectorConfig (fields of
    TensorBoard's projector_config.proto: EmbeddingInfo and its SpriteMetadata). thumbnail_size
    is (width, height): SpriteMetadata's single_image_dim, width first."""
    lines = ["embeddings {",
             f"  tensor_name: {_quoted(tensor_name, 'tensor_name')}",
             *(f"  tensor_shape: {int(size)}" for size in tensor_shape),
             f"  tensor_path: {_quoted(tensor_path, 'tensor_path')}"]
    if metadata_path is not None:
        lines.append(f"  metadata_path: {_quoted(metadata_path, 'metadata_path')}")
    lines += ["  sprite {",
              f"    image_path: {_quoted(sprite_path, 'sprite_path')}",
              *(f"    single_image_dim: {int(size)}" for size in thumbnail_size),
              "  }",
              "}"]
    return "\n".join(lines) + "\n"


def _checked(codes, labels, images):
    """codes as float (N, D), labels as int64 (N,) or None, images as (N, C, H, W)."""
    codes = np.asarray(codes)
    if codes.ndim != 2 or len(codes) < 2 or codes.shape[1] == 0 \
            or not np.issubdtype(codes.dtype, np.number):
        raise ValueError(f"codes: expected numbers of shape (N, D) with N >= 2, D >= 1, got "
                         f"{codes.dtype} {codes.shape}")
    if not np.all(np.isfinite(codes)):
        raise ValueError("codes: contain NaN or infinite values")
    n = len(codes)
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[:, None]
    if images.ndim != 4 or len(images) != n:
        raise ValueError(f"images: expected ({n}, C, H, W), one image per code, got shape "
                         f"{images.shape}")
    if labels is not None:
        labels = np.asarray(labels)
        if labels.shape != (n,) or not np.issubdtype(labels.dtype, np.integer):
            raise ValueError(f"labels: expected integers of shape ({n},), got {labels.dtype} "
                             f"{labels.shape}")
        labels = labels.astype(np.int64)
    return codes, labels, images


def _tsv_bytes(rows, fmt):
    buffer = io.StringIO()
    np.savetxt(buffer, rows, fmt=fmt, delimiter="\t", newline="\n")
    return buffer.getvalue().encode("utf-8")


def write_projector(out_dir, codes, labels, images, tensor_name="codes", backend=None):
    """Write the projector's files for `codes` (N, D) with N >= 2, `labels` (N,) integers or
    None, and `images` (N, C, H, W) in [0, 1] with C = 1 or 3, all in the same order, into
    `out_dir` (made if missing; files of these names are replaced). Returns {role: path} for
    the roles of PROJECTOR_FILES written: tensors, metadata (only with labels), sprite, config,
    scatter.

    tensor_name: the name the projector lists the tensor under. backend: codes_pca.png's
    plotter (None: matplotlib if installed, else NumPy; see plots.plot_codes).
    """
    codes, labels, images = _checked(codes, labels, images)
    os.makedirs(out_dir, exist_ok=True)
    paths = {role: os.path.join(out_dir, name) for role, name in PROJECTOR_FILES.items()}
    sprite, thumbnail_size = sprite_image(images)
    # %.9g: enough digits that each float32 reads back exactly
    atomic_write(paths["tensors"], _tsv_bytes(codes, "%.9g"))
    if labels is None:
        stale = paths.pop("metadata")
        if os.path.exists(stale):  # an earlier call's labels must not pass for these codes'
            os.remove(stale)
    else:
        atomic_write(paths["metadata"], _tsv_bytes(labels[:, None], "%d"))
    write_png(paths["sprite"], sprite)
    config = projector_config_text(
        PROJECTOR_FILES["tensors"], codes.shape, PROJECTOR_FILES["sprite"], thumbnail_size,
        metadata_path=None if labels is None else PROJECTOR_FILES["metadata"],
        tensor_name=tensor_name)
    atomic_write(paths["config"], config.encode("utf-8"))
    plot_codes(codes, labels, paths["scatter"], backend=backend)
    return paths
