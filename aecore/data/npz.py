"""Keras-style .npz files: `x_train`, `x_test`, and optionally `y_train`, `y_test`.

This is how `keras.datasets.mnist` caches MNIST (~/.keras/datasets/mnist.npz: x_train
(60000, 28, 28) uint8, y_train (60000,) uint8, x_test, y_test). Loaded with
allow_pickle=False: an .npz can otherwise run code when opened.

Image arrays may be (N, H, W), channels-last (N, H, W, C) as Keras stores them (C = 1, 2, 3
or 4 in the last axis), or channels-first (N, C, H, W). A 4-D array whose last axis is 1-4 is
taken as channels-last.
"""

from __future__ import annotations

import os
import zipfile
import zlib

import numpy as np

from .dataset import Dataset, to_float_images, to_labels
from ..io.files import open_regular

__all__ = ["load_npz", "NPZFormatError"]

_SPLIT_KEYS = {"train": ("x_train", "y_train"), "test": ("x_test", "y_test")}
_ZIP_MAGIC = b"PK\x03\x04"  # a zip archive's first local file header
_EMPTY_ZIP_MAGIC = b"PK\x05\x06"  # an archive with no files: its end-of-directory record
_NPY_MAGIC = b"\x93NUM"


class NPZFormatError(ValueError):
    """An .npz file does not hold what a Keras-style data set file holds."""


def _to_nchw(x):
    if x.ndim == 4 and x.shape[-1] in (1, 2, 3, 4):
        return np.ascontiguousarray(x.transpose(0, 3, 1, 2))
    return x


def _corrupt(path, key, e):
    return NPZFormatError(f"{path}: corrupt .npz file: cannot read {key} "
                          f"({type(e).__name__}: {e}); re-download or re-create the file")


def _load_array(npz, path, key):
    """npz[key], with every way a damaged archive fails turned into one NPZFormatError line."""
    try:
        return npz[key]
    except ValueError as e:
        if "pickle" in str(e):  # object arrays refuse to load without pickle
            raise NPZFormatError(f"{path}: cannot load {key} without pickle ({e}); store "
                                 "plain numeric arrays") from None
        raise _corrupt(path, key, e) from None
    except MemoryError as e:  # a damaged header can declare an enormous shape
        raise _corrupt(path, key, e) from None
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError) as e:
        raise _corrupt(path, key, e) from None


def load_npz(path, split=None, name=None) -> Dataset:
    """Load a Keras-style .npz: -> Dataset (images float32 (N, C, H, W) in [0, 1]).

    split: "train" (needs x_train), "test" (needs x_test), or None: every split present,
    train first. Labels are kept when every loaded split has its y array, else dropped.
    Only regular files are read (a FIFO or a device raises NPZFormatError); an empty file,
    a damaged archive and a split of 0 images raise NPZFormatError too.
    """
    path = os.fspath(path)
    if split not in (None, "train", "test"):
        raise ValueError(f"split must be 'train', 'test' or None, got {split!r}")
    with open_regular(path, NPZFormatError) as f:
        head = f.read(len(_ZIP_MAGIC))
        f.seek(0)
        if not head:
            raise NPZFormatError(f"{path}: empty file (0 bytes); expected an .npz archive")
        if head.startswith(_NPY_MAGIC):
            raise NPZFormatError(f"{path}: holds a single array (an .npy file), not an .npz "
                                 "archive of named arrays (expected x_train, x_test, y_train, "
                                 "y_test)")
        if head not in (_ZIP_MAGIC, _EMPTY_ZIP_MAGIC):
            raise NPZFormatError(f"{path}: not a readable .npz file: an .npz is a zip archive, "
                                 f"which starts with {_ZIP_MAGIC!r}, this starts with {head!r}")
        try:
            npz = np.load(f, allow_pickle=False)
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError) as e:
            raise NPZFormatError(f"{path}: not a readable .npz file ({e})") from None
        with npz:
            return _load_splits(npz, path, split, name)


def _load_splits(npz, path, split, name) -> Dataset:
    keys = set(npz.files)
    wanted = [split] if split else [s for s in ("train", "test") if _SPLIT_KEYS[s][0] in keys]
    if not wanted or any(_SPLIT_KEYS[s][0] not in keys for s in wanted):
        need = (" and ".join(repr(_SPLIT_KEYS[s][0]) for s in wanted) if split
                else "'x_train' or 'x_test'")
        raise NPZFormatError(
            f"{path}: no {need} array (keys found: {sorted(keys) or 'none'}); a Keras-style "
            ".npz holds x_train, x_test and optionally y_train, y_test")
    images, labels, splits = [], [], {}
    for s in wanted:
        xk, yk = _SPLIT_KEYS[s]
        x = _to_nchw(_load_array(npz, path, xk))
        y = _load_array(npz, path, yk) if yk in keys else None
        if x.ndim >= 1 and 0 in x.shape:
            raise NPZFormatError(f"{path}: {xk} holds 0 images (shape {x.shape}); a data set "
                                 "needs at least one non-empty image")
        x = to_float_images(x, what=f"{path}: {xk}")
        images.append(x)
        labels.append(None if y is None else to_labels(y, len(x), what=f"{path}: {yk}"))
        splits[s] = len(x)
    shapes = {a.shape[1:] for a in images}
    if len(shapes) > 1:
        raise NPZFormatError(f"{path}: splits have different image shapes {sorted(shapes)}")
    lab = None if any(y is None for y in labels) else np.concatenate(labels)
    return Dataset(np.concatenate(images) if len(images) > 1 else images[0], lab,
                   name or os.path.splitext(os.path.basename(path))[0], path, None, splits)
