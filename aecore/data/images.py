"""A folder of PNG / JPEG images as a data set.

    load_image_folder("faces/", size=(64, 64), color="rgb")
        -> Dataset: images float32 (N, C, H, W) in [0, 1], labels from subfolder names

Files: *.png, *.jpg, *.jpeg (any case) found recursively, in sorted path order; hidden files
and folders (starting with '.') are skipped. Labels: when every image sits inside a subfolder
of the root, the first-level subfolder names, sorted, are the classes (like torchvision's
ImageFolder); otherwise labels are None.

Only regular files are read: a FIFO or a link to a device named like an image raises an
error naming it (a FIFO would hang the loader, /dev/zero would never end). Images larger
than `max_pixels` are refused from their header, before decoding.

Decoding: with Pillow installed (pip install aecore[images]) any format Pillow reads; without
it, PNGs are still read by aecore.io.png (8/16-bit gray, gray+alpha, RGB, RGBA, palette;
non-interlaced) and JPEGs raise MissingDependencyError. Everything after decoding is NumPy
and identical either way: alpha is dropped (as Pillow's convert does), RGB -> gray uses the
ITU-R 601 luma weights 0.299 R + 0.587 G + 0.114 B (as Pillow's convert("L")), and resizing
is Pillow's BILINEAR filter rewritten in NumPy (a triangle filter widened by the scale factor
when shrinking, so shrinking averages areas instead of skipping pixels).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np

from ..io import png
from ..io.png import PNGFormatError, read_png
from .dataset import Dataset, DatasetNotFoundError
from ..io.files import open_regular

__all__ = ["load_image_folder", "list_images", "read_image", "resize_image",
           "MissingDependencyError", "IMAGE_EXTENSIONS"]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")
_GRAY = "gray"
_RGB = "rgb"
_COLOR_ALIASES = {"gray": _GRAY, "grey": _GRAY, "l": _GRAY, "grayscale": _GRAY, "1": _GRAY,
                  "rgb": _RGB, "color": _RGB, "3": _RGB, "auto": "auto"}


class MissingDependencyError(ImportError):
    """An optional dependency (Pillow) is needed for this file."""


def _pillow():
    try:
        from PIL import Image
    except ImportError:
        return None
    return Image


def list_images(root):
    """Image files under `root`, recursively, sorted by their path relative to root."""
    root = Path(root)
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for f in filenames:
            if not f.startswith(".") and f.lower().endswith(IMAGE_EXTENSIONS):
                found.append(Path(dirpath) / f)
    return sorted(found, key=lambda p: p.relative_to(root).as_posix())


def _read_with_pillow(image_mod, path: Path, max_pixels) -> np.ndarray:
    error = PNGFormatError if path.suffix.lower() == ".png" else ValueError
    with open_regular(path, error) as f:
        try:
            with warnings.catch_warnings():  # our own limit below says it better
                warnings.simplefilter("ignore", image_mod.DecompressionBombWarning)
                im = image_mod.open(f)
            with im:
                limit = png.MAX_IMAGE_PIXELS if max_pixels is None else max_pixels
                if limit is not None and im.width * im.height > limit:
                    raise error(png.too_many_pixels(path, im.width, im.height, limit))
                mode = im.mode
                if mode.startswith("I;16"):
                    return np.asarray(im).astype(np.float32) / np.float32(65535.0)
                if mode in ("1", "L", "LA", "I", "F"):
                    return np.asarray(im.convert("L")).astype(np.float32) / np.float32(255.0)
                return np.asarray(im.convert("RGB")).astype(np.float32) / np.float32(255.0)
        except image_mod.DecompressionBombError as e:  # Pillow's own hard limit
            raise error(f"{path}: refused by Pillow ({e}); raise PIL.Image.MAX_IMAGE_PIXELS "
                        "too to allow it") from None
        except OSError as e:  # Pillow's "cannot identify" / "truncated"
            raise error(f"{path}: cannot decode the image ({e})") from None


def read_image(path, max_pixels=None) -> np.ndarray:
    """Decode one image file -> float32 (H, W) gray or (H, W, 3) RGB in [0, 1], alpha dropped.

    Only regular files are read; an image of more than `max_pixels` pixels (None: the limit
    aecore.io.png.MAX_IMAGE_PIXELS) is refused from its header, before it is decoded.
    """
    path = Path(path)
    image_mod = _pillow()
    if image_mod is not None:
        return _read_with_pillow(image_mod, path, max_pixels)
    if path.suffix.lower() != ".png":
        raise MissingDependencyError(
            f"{path}: reading {path.suffix or 'this'} files needs Pillow; install it with "
            "`pip install aecore[images]` (or `pip install pillow`). Without Pillow only PNG "
            "files can be read.")
    a = read_png(path, max_pixels=max_pixels)
    scale = np.float32(65535.0 if a.dtype == np.uint16 else 255.0)
    a = a.astype(np.float32) / scale
    if a.ndim == 3 and a.shape[2] in (2, 4):  # drop alpha
        a = a[:, :, :-1]
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    return a


def _resize_matrix(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) weights of Pillow's BILINEAR resampling along one axis."""
    scale = n_in / n_out
    fscale = max(scale, 1.0)
    center = (np.arange(n_out) + 0.5) * scale  # output pixel centers, in input coordinates
    src = np.arange(n_in) + 0.5
    w = np.maximum(0.0, 1.0 - np.abs((src[None, :] - center[:, None]) / fscale))
    w /= w.sum(axis=1, keepdims=True)
    return w


def resize_image(a: np.ndarray, size) -> np.ndarray:
    """Resize (H, W) or (H, W, C) float image to size = (h, w) with Pillow-style bilinear."""
    h, w = size
    if a.shape[:2] == (h, w):
        return a
    mh = _resize_matrix(a.shape[0], h).astype(np.float32)
    mw = _resize_matrix(a.shape[1], w).astype(np.float32)
    if a.ndim == 2:
        return mh @ a @ mw.T
    return np.einsum("oh,hwc,pw->opc", mh, a, mw, optimize=True)


def _normalize_size(size):
    if size is None:
        return None
    if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
        size = (int(size), int(size))
    try:
        h, w = (int(s) for s in size)
    except (TypeError, ValueError):
        raise ValueError(f"size must be an int or an (H, W) pair, got {size!r}") from None
    if h < 1 or w < 1:
        raise ValueError(f"size must be positive, got {size!r}")
    return h, w


def load_image_folder(path, size=None, color="auto", name=None, max_pixels=None) -> Dataset:
    """Load every PNG/JPEG under `path` -> Dataset (images float32 (N, C, H, W) in [0, 1]).

    size:  (H, W) or an int for square images; None keeps the files' size, which must then
           be the same for every file.
    color: "gray" (C = 1), "rgb" (C = 3), or "auto": gray when every file is gray, else RGB.
    max_pixels: refuse any image larger than this, from its header (a decompression bomb
           guard); None: aecore.io.png.MAX_IMAGE_PIXELS (89,478,485, Pillow's limit).

    An entry with an image name that is not a regular file (a FIFO, a link to a device) is
    refused with an error naming it rather than skipped, so the set never silently shrinks.
    """
    root = Path(path)
    if not root.is_dir():
        raise DatasetNotFoundError(f"{root}: not a directory")
    size = _normalize_size(size)
    mode = _COLOR_ALIASES.get(str(color).lower())
    if mode is None:
        raise ValueError(f"color must be 'gray', 'rgb' or 'auto', got {color!r}")
    files = list_images(root)
    if not files:
        raise DatasetNotFoundError(
            f"{root}: no image files ({', '.join(IMAGE_EXTENSIONS)}) found in it or its "
            "subfolders")
    arrays = [read_image(f, max_pixels) for f in files]
    if mode == "auto":
        mode = _RGB if any(a.ndim == 3 for a in arrays) else _GRAY
    out = []
    for f, a in zip(files, arrays):
        if mode == _GRAY and a.ndim == 3:
            a = a @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
        elif mode == _RGB and a.ndim == 2:
            a = np.repeat(a[:, :, None], 3, axis=2)
        if size is not None:
            a = resize_image(a, size)
        out.append(a)
    shapes = {a.shape[:2] for a in out}
    if len(shapes) > 1:
        first = out[0].shape[:2]
        other = next(i for i, a in enumerate(out) if a.shape[:2] != first)
        raise ValueError(
            f"{root}: images have different sizes ({first[0]}x{first[1]} in {files[0].name}, "
            f"{out[other].shape[0]}x{out[other].shape[1]} in {files[other].name}); resize them "
            "all to N x N with image_size=N (load_dataset; size=N in load_image_folder; "
            "--image-size N on the command line)")
    images = np.stack(out)
    images = images[:, None] if images.ndim == 3 else images.transpose(0, 3, 1, 2)
    images = np.ascontiguousarray(np.clip(images, 0.0, 1.0), dtype=np.float32)

    rel = [f.relative_to(root).parts for f in files]
    labels = classes = None
    if all(len(parts) >= 2 for parts in rel):
        classes = sorted({parts[0] for parts in rel})
        index = {c: i for i, c in enumerate(classes)}
        labels = np.array([index[parts[0]] for parts in rel], dtype=np.int64)
    return Dataset(images, labels, name or root.resolve().name, str(root), classes,
                   {"all": len(images)})
