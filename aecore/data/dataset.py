"""The Dataset record every loader returns, and the conversions to the engine's layout.

Engine layout: images float32 (N, C, H, W) with values in [0, 1]; labels int64 (N,) or None.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional

import numpy as np

__all__ = ["Dataset", "DatasetNotFoundError", "to_float_images", "to_labels"]


class DatasetNotFoundError(FileNotFoundError):
    """A data set could not be found; the message lists every place that was searched."""


@dataclass
class Dataset:
    """A loaded data set.

    images:  float32 (N, C, H, W), values in [0, 1]
    labels:  int64 (N,), or None when the source has none
    name:    "mnist", "synthetic", a file or folder name...
    source:  where it came from (a path, or a description such as "synthetic(seed=0)")
    classes: class names when labels come from folder names (labels index into it), else None
    splits:  the splits it holds, in order, with their sizes: {"train": 60000, "test": 10000}
    """

    images: np.ndarray
    labels: Optional[np.ndarray]
    name: str
    source: str
    classes: Optional[List[str]] = None
    splits: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.images.ndim != 4:
            raise ValueError(f"Dataset.images must be (N, C, H, W), got shape {self.images.shape}")
        if self.labels is not None and len(self.labels) != len(self.images):
            raise ValueError(f"Dataset has {len(self.images)} images but {len(self.labels)} "
                             "labels")

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def shape(self):
        """(C, H, W) of one image."""
        return tuple(self.images.shape[1:])

    @property
    def num_classes(self) -> Optional[int]:
        if self.classes is not None:
            return len(self.classes)
        if self.labels is None or len(self.labels) == 0:
            return None
        return int(self.labels.max()) + 1

    def subset(self, indices, name: Optional[str] = None) -> "Dataset":
        """The images (and labels) at `indices`, as a new Dataset."""
        idx = np.asarray(indices)
        return Dataset(self.images[idx],
                       None if self.labels is None else self.labels[idx],
                       name or self.name, self.source, self.classes, {})

    def __repr__(self):
        lab = "no labels" if self.labels is None else f"labels {self.labels.dtype}"
        splits = "".join(f", {k}={v}" for k, v in self.splits.items())
        return (f"Dataset({self.name!r}, images {self.images.dtype}{tuple(self.images.shape)}, "
                f"{lab}{splits}, source={self.source!r})")


def to_float_images(x, what: str = "images") -> np.ndarray:
    """(N, H, W) or (N, C, H, W) array -> float32 (N, C, H, W) in [0, 1].

    uint8 is divided by 255, uint16 by 65535, other integers must lie in [0, 255] (divided by
    255), bool becomes 0/1, floats must already lie in [0, 1]. Channels-last input is not
    guessed here; see npz.py for that.
    """
    x = np.asarray(x)
    if x.ndim == 3:
        x = x[:, None]
    if x.ndim != 4:
        raise ValueError(f"{what}: expected (N, H, W) or (N, C, H, W), got shape {x.shape}")
    if x.dtype == np.uint8:
        return x.astype(np.float32) / np.float32(255.0)
    if x.dtype == np.uint16:
        return x.astype(np.float32) / np.float32(65535.0)
    if x.dtype == np.bool_:
        return x.astype(np.float32)
    if np.issubdtype(x.dtype, np.integer):
        if x.size and (x.min() < 0 or x.max() > 255):
            raise ValueError(f"{what}: integer pixel values must lie in [0, 255], found "
                             f"[{x.min()}, {x.max()}]")
        return x.astype(np.float32) / np.float32(255.0)
    if np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.float32)
        if x.size:
            lo, hi = float(np.min(x)), float(np.max(x))
            if not (np.isfinite(lo) and np.isfinite(hi)):
                raise ValueError(f"{what}: contains NaN or infinite values")
            if lo < -1e-6 or hi > 1 + 1e-6:
                raise ValueError(
                    f"{what}: float pixel values must lie in [0, 1], found [{lo:g}, {hi:g}] "
                    "(scale them first, e.g. divide by 255)")
            np.clip(x, 0.0, 1.0, out=x)
        return x
    raise ValueError(f"{what}: unsupported dtype {x.dtype}")


def to_labels(y, n: int, what: str = "labels") -> np.ndarray:
    """Labels -> int64 (n,); accepts (n,) or (n, 1) integer arrays (Keras stores (n, 1))."""
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise ValueError(f"{what}: expected shape ({n},), got {y.shape}")
    if len(y) != n:
        raise ValueError(f"{what}: {len(y)} labels for {n} images")
    if not (np.issubdtype(y.dtype, np.integer) or y.dtype == np.bool_):
        if np.issubdtype(y.dtype, np.floating) and np.all(np.mod(y, 1) == 0):
            pass
        else:
            raise ValueError(f"{what}: labels must be integers, got dtype {y.dtype}")
    return y.astype(np.int64)
