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

import numpy as np

from .dataset import Dataset, to_float_images, to_labels

__all__ = ["load_npz", "NPZFormatError"]

_SPLIT_KEYS = {"train": ("x_train", "y_train"), "test": ("x_test", "y_test")}


class NPZFormatError(ValueError):
    """An .npz file does not hold what a Keras-style data set file holds."""


def _to_nchw(x):
    if x.ndim == 4 and x.shape[-1] in (1, 2, 3, 4):
        return np.ascontiguousarray(x.transpose(0, 3, 1, 2))
    return x


def load_npz(path, split=None, name=None) -> Dataset:
    """Load a Keras-style .npz: -> Dataset (images float32 (N, C, H, W) in [0, 1]).

    split: "train" (needs x_train), "test" (needs x_test), or None: every split present,
    train first. Labels are kept when every loaded split has its y array, else dropped.
    """
    path = os.fspath(path)
    if split not in (None, "train", "test"):
        raise ValueError(f"split must be 'train', 'test' or None, got {split!r}")
    try:
        npz = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise
    except (zipfile.BadZipFile, OSError, ValueError) as e:
        raise NPZFormatError(f"{path}: not a readable .npz file ({e})") from None
    if not isinstance(npz, np.lib.npyio.NpzFile):
        raise NPZFormatError(f"{path}: holds a single array, not an .npz archive of named "
                             "arrays (expected x_train, x_test, y_train, y_test)")
    with npz:
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
            try:
                x = npz[xk]
                y = npz[yk] if yk in keys else None
            except ValueError as e:  # object arrays refuse to load without pickle
                raise NPZFormatError(f"{path}: cannot load {xk}/{yk} without pickle ({e}); "
                                     "store plain numeric arrays") from None
            x = to_float_images(_to_nchw(x), what=f"{path}: {xk}")
            images.append(x)
            labels.append(None if y is None else to_labels(y, len(x), what=f"{path}: {yk}"))
            splits[s] = len(x)
    shapes = {a.shape[1:] for a in images}
    if len(shapes) > 1:
        raise NPZFormatError(f"{path}: splits have different image shapes {sorted(shapes)}")
    lab = None if any(y is None for y in labels) else np.concatenate(labels)
    return Dataset(np.concatenate(images) if len(images) > 1 else images[0], lab,
                   name or os.path.splitext(os.path.basename(path))[0], path, None, splits)
