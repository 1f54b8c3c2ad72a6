"""load_dataset: one entry point for every data source, by name or by path. Never downloads.

    load_dataset("synthetic")               generated in ~1 s, no files needed (the default)
    load_dataset("mnist", split="test")     found on disk (see below)
    load_dataset("fashion-mnist")           aliases: fashion_mnist, fashionmnist
    load_dataset("kmnist")
    load_dataset("path/to/mnist.npz")       a Keras-style .npz
    load_dataset("path/train-images-idx3-ubyte.gz")   an IDX images file (+ labels beside it)
    load_dataset("path/to/idx_dir/")        a folder holding the standard IDX file names
    load_dataset("path/to/root/")           a folder holding one set's folder, such as
                                            torchvision's root/MNIST/raw (see below)
    load_dataset("path/to/pictures/", image_size=64, color="rgb")   a folder of PNG / JPEG

Where a named set is looked for, in order (first hit wins):
  1. the `root` argument:      <root>/<set folder> for each folder name of the set
                               (mnist: mnist, MNIST, MNIST/raw; fashion-mnist: fashion-mnist,
                               fashion_mnist, FashionMNIST, FashionMNIST/raw; kmnist: kmnist,
                               KMNIST, KMNIST/raw), then <root> itself
  2. $AECORE_DATA:             the same folders under it, then the directory itself
  3. Keras' cache:             $KERAS_HOME/datasets or ~/.keras/datasets: mnist.npz (MNIST),
                               fashion-mnist/ (Fashion-MNIST IDX files as Keras stores them)
  4. ./data and ~/data:        the set's folders, which include torchvision's <root>/MNIST/raw
                               and <root>/FashionMNIST/raw layouts
(The set-named subfolders come before the directory itself so that a directory holding several
sets in subfolders, plus loose files of one of them, picks the right one.)

An IDX folder matches when it holds an images file and a labels file of a split:
train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte,
each optionally gzip-compressed (.gz), also with a dot before "idx" as some mirrors name them.
split: "train", "test", or None = every split found, train first. A folder with only the test
files satisfies split=None and split="test".
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .dataset import Dataset, DatasetNotFoundError, to_float_images, to_labels
from .idx import IDXFormatError, read_idx
from .images import load_image_folder
from .npz import load_npz
from .synthetic import synthetic_digits

__all__ = ["load_dataset", "find_dataset_files", "search_places", "DATASET_NAMES"]

_SETS = {
    "mnist": {"folders": ("mnist", "MNIST", "MNIST/raw"), "keras_npz": "mnist.npz",
              "keras_dir": None},
    "fashion-mnist": {"folders": ("fashion-mnist", "fashion_mnist", "FashionMNIST",
                                  "FashionMNIST/raw"),
                      "keras_npz": None, "keras_dir": "fashion-mnist"},
    "kmnist": {"folders": ("kmnist", "KMNIST", "KMNIST/raw"), "keras_npz": None,
               "keras_dir": None},
}
_ALIASES = {"mnist": "mnist", "fashion-mnist": "fashion-mnist", "fashion_mnist": "fashion-mnist",
            "fashionmnist": "fashion-mnist", "kmnist": "kmnist", "synthetic": "synthetic"}
DATASET_NAMES = ("synthetic", "mnist", "fashion-mnist", "kmnist")

_IDX_STEMS = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_SPLITS = ("train", "test")
SYNTHETIC_SIZES = {"train": 10000, "test": 2000}


def _variants(stem):
    dotted = stem.replace("-idx", ".idx")
    return (stem + ".gz", stem, dotted + ".gz", dotted)


def _find_file(directory: Path, stem: str):
    # exists(), not is_file(): a FIFO or a device under a standard name is then refused with
    # a clear message when it is read, instead of being silently passed over
    for name in _variants(stem):
        p = directory / name
        if p.exists():
            return p
    return None


def find_dataset_files(directory) -> dict:
    """{split: (images_path, labels_path or None)} for the standard IDX names in `directory`."""
    directory = Path(directory)
    found = {}
    if not directory.is_dir():
        return found
    for split, (img_stem, lab_stem) in _IDX_STEMS.items():
        img = _find_file(directory, img_stem)
        if img is not None:
            found[split] = (img, _find_file(directory, lab_stem))
    return found


def _keras_datasets_dir() -> Path:
    home = os.environ.get("KERAS_HOME")
    return Path(home) / "datasets" if home else Path(os.path.expanduser("~")) / ".keras" / "datasets"


def search_places(name: str, root=None):
    """The ordered list of (kind, path) places where set `name` is looked for.

    kind is "idx" (a folder of IDX files) or "npz" (a Keras .npz file).
    """
    spec = _SETS[name]
    places = []
    bases = []
    if root is not None:
        bases.append(Path(root).expanduser())
    env = os.environ.get("AECORE_DATA")
    if env:
        bases.append(Path(env).expanduser())
    for base in bases:
        places += [("idx", base / f) for f in spec["folders"]]
        places.append(("idx", base))
    keras = _keras_datasets_dir()
    if spec["keras_npz"]:
        places.append(("npz", keras / spec["keras_npz"]))
    if spec["keras_dir"]:
        places.append(("idx", keras / spec["keras_dir"]))
    for base in (Path("data"), Path(os.path.expanduser("~")) / "data"):
        places += [("idx", base / f) for f in spec["folders"]]
    seen, unique = set(), []
    for kind, p in places:
        key = (kind, os.path.abspath(p))
        if key not in seen:
            seen.add(key)
            unique.append((kind, p))
    return unique


def _wanted_splits(split):
    if split is None:
        return _SPLITS
    if split not in _SPLITS:
        raise ValueError(f"split must be 'train', 'test' or None, got {split!r}")
    return (split,)


def _read_idx_images(path) -> np.ndarray:
    """An IDX images file -> float32 (N, 1, H, W); refuses 1-D, non-3-D and empty files."""
    x = read_idx(path)
    if x.ndim == 1:
        raise IDXFormatError(f"{path}: this is a labels file (1-D); pass the images file")
    if x.ndim != 3:
        raise IDXFormatError(f"{path}: an images file must be 3-D (N, H, W), got shape "
                             f"{x.shape}")
    if 0 in x.shape:
        raise IDXFormatError(f"{path}: holds 0 images (shape {x.shape}); a data set needs at "
                             "least one non-empty image")
    return to_float_images(x, what=str(path))


def _load_idx_files(files: dict, splits, name: str, source: str) -> Dataset:
    images, labels, sizes = [], [], {}
    for s in splits:
        if s not in files:
            continue
        img_path, lab_path = files[s]
        x = _read_idx_images(img_path)
        y = None
        if lab_path is not None:
            y = read_idx(lab_path)
            if y.ndim != 1 or len(y) != len(x):
                raise IDXFormatError(
                    f"{lab_path}: expected {len(x)} labels (1-D) to match {img_path}, got "
                    f"shape {y.shape}")
            y = to_labels(y, len(x), what=str(lab_path))
        images.append(x)
        labels.append(y)
        sizes[s] = len(x)
    if len({a.shape[1:] for a in images}) > 1:
        raise IDXFormatError(f"{source}: the splits have different image shapes")
    lab = None if any(y is None for y in labels) else np.concatenate(labels)
    return Dataset(np.concatenate(images) if len(images) > 1 else images[0], lab, name, source,
                   None, sizes)


def _not_found_message(name, split, looked):
    want = f"the {split} split of " if split else ""
    lines = [f"could not find {want}data set {name!r}. Looked in:"]
    for kind, p, note in looked:
        lines.append(f"  - {os.path.abspath(p)}{' (' + note + ')' if note else ''}")
    if not os.environ.get("AECORE_DATA"):
        lines.append("  ($AECORE_DATA is not set)")
    stems = list(_IDX_STEMS[split]) if split else [s for p in _IDX_STEMS.values() for s in p]
    lines += [
        "To provide it (nothing is ever downloaded):",
        f"  - put the IDX files ({', '.join(stems)}, optionally .gz) in a directory and set "
        "AECORE_DATA=that/directory (or a parent holding a "
        f"{_SETS[name]['folders'][0]}/ folder), or pass root=...;",
        "  - or pass a path instead of a name: an .npz file, an IDX images file, a folder of "
        "IDX files, or a folder of images;",
        "  - or use the built-in data: load_dataset('synthetic').",
    ]
    return "\n".join(lines)


def _load_named(name, split, root):
    splits = _wanted_splits(split)
    looked = []
    for kind, place in search_places(name, root):
        if kind == "npz":
            if place.is_file():
                return load_npz(place, split=split, name=name)
            looked.append((kind, place, "no such file"))
            continue
        files = find_dataset_files(place)
        hits = [s for s in splits if s in files]
        if hits:
            return _load_idx_files(files, splits, name, str(place))
        if not place.is_dir():
            note = "no such directory"
        elif files:
            note = "has the " + " and ".join(files) + " split only"
        else:
            note = "no IDX files with the standard names"
        looked.append((kind, place, note))
    raise DatasetNotFoundError(_not_found_message(name, split, looked))


def _labels_beside(images_path: Path):
    fname = images_path.name
    cand = fname.replace("images", "labels").replace("idx3", "idx1")
    if cand == fname:
        return None
    stem = cand[:-3] if cand.endswith(".gz") else cand
    for name in (stem + ".gz", stem):
        p = images_path.with_name(name)
        if p.exists():
            return p
    return None


def _sets_inside(directory: Path):
    """[(set name, folder, IDX files)] for each named set laid out inside `directory` the way
    torchvision (MNIST/raw) or a hand-made tree (mnist/) keeps it; the first folder per set."""
    found = []
    for name, spec in _SETS.items():
        for folder in spec["folders"]:
            files = find_dataset_files(directory / folder)
            if files:
                found.append((name, folder, files))
                break
    return found


def _load_idx_dir(files, split, name, directory: Path) -> Dataset:
    if not any(s in files for s in _wanted_splits(split)):
        raise DatasetNotFoundError(
            f"{directory}: holds the {' and '.join(files)} IDX files but not the {split} split")
    return _load_idx_files(files, _wanted_splits(split), name, str(directory))


def _load_dir(p: Path, split, image_size, color, max_pixels) -> Dataset:
    """A folder of IDX files, a folder holding set folders (ROOT/MNIST/raw), or of images."""
    files = find_dataset_files(p)
    if files:
        return _load_idx_dir(files, split, p.resolve().name, p)
    inside = _sets_inside(p)
    if len(inside) == 1:
        name, folder, files = inside[0]
        return _load_idx_dir(files, split, name, p / folder)
    if len(inside) > 1:
        folders = ", ".join(folder for _, folder, _ in inside)
        raise DatasetNotFoundError(
            f"{p}: holds several data sets ({folders}); pass one folder (e.g. "
            f"{p / inside[0][1]}), or a name with root=: load_dataset({inside[0][0]!r}, "
            f"root=...) (on the command line: --data {inside[0][0]} --data-root {p})")
    return load_image_folder(p, size=image_size, color="auto" if color is None else color,
                             max_pixels=max_pixels)


def _load_path(p: Path, split, image_size, color, max_pixels) -> Dataset:
    if p.is_dir():
        return _load_dir(p, split, image_size, color, max_pixels)
    if p.exists():  # a file, or a FIFO / device, which the readers refuse by name
        if p.suffix.lower() == ".npz":
            return load_npz(p, split=split)
        if p.suffix.lower() in (".png", ".jpg", ".jpeg"):
            raise ValueError(f"{p}: a single image is not a data set; pass the folder that "
                             "holds the images")
        images = _read_idx_images(p)  # raises IDXFormatError for anything that is not IDX
        lab_path = _labels_beside(p)
        labels = None
        if lab_path is not None:
            y = read_idx(lab_path)
            if y.ndim != 1 or len(y) != len(images):
                raise IDXFormatError(f"{lab_path}: expected {len(images)} labels (1-D) to "
                                     f"match {p}, got shape {y.shape}")
            labels = to_labels(y, len(images), what=str(lab_path))
        return Dataset(images, labels, p.name, str(p), None, {"all": len(images)})
    raise DatasetNotFoundError(f"{p}: no such file or directory")


def load_dataset(name_or_path, split=None, root=None, *, n=None, seed=0, image_size=None,
                 color=None, max_pixels=None) -> Dataset:
    """Load a data set by name or path -> Dataset (images float32 (N, C, H, W) in [0, 1]).

    name_or_path: "synthetic", "mnist", "fashion-mnist" (or fashion_mnist), "kmnist", or a
                  path (.npz, IDX images file, folder of IDX files, a folder holding one
                  set's folder such as torchvision's ROOT/MNIST/raw, folder of images).
    split:        "train", "test", or None (every split found, train first). Ignored for a
                  single IDX file and for image folders.
    root:         a directory searched first for named sets (see the module docstring).
    n:            keep at most the first n images. For "synthetic", the number generated:
                  split="train" -> n (default 10,000), "test" -> n (default 2,000),
                  None -> n - n // 6 train then n // 6 test (default 10,000 + 2,000).
    seed:         "synthetic" only: train images come from `seed`, test images from an
                  independent stream derived from it.
    image_size, color: image folders only: resize to (H, W) (or an int), "gray"/"rgb"/"auto".
    max_pixels:   image folders only: refuse larger images from their header (None:
                  aecore.io.png.MAX_IMAGE_PIXELS, Pillow's 89,478,485).

    Raises DatasetNotFoundError (a FileNotFoundError) listing every place searched when a named
    set is not on disk; nothing is ever downloaded. A bad file raises IDXFormatError,
    NPZFormatError or PNGFormatError naming it; only regular files are read, and a file or
    split of 0 images is refused.
    """
    if n is not None and (isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1):
        raise ValueError(f"n must be a positive integer or None, got {n!r}")
    key = str(name_or_path).strip().lower() if isinstance(name_or_path, str) else None
    if key in _ALIASES:  # names win over same-named paths: pass "./mnist" for a folder
        name = _ALIASES[key]
        if name == "synthetic":
            return _load_synthetic(split, n, seed)
        ds = _load_named(name, split, root)
    else:
        p = Path(os.fspath(name_or_path)).expanduser()
        if not p.exists() and isinstance(name_or_path, str) and os.sep not in name_or_path \
                and "/" not in name_or_path and not p.suffix:
            raise DatasetNotFoundError(
                f"unknown data set {name_or_path!r}: not one of {', '.join(DATASET_NAMES)} "
                "(aliases: fashion_mnist), and no file or folder of that name exists")
        ds = _load_path(p, split, image_size, color, max_pixels)
    if n is not None and n < len(ds):
        ds = Dataset(ds.images[:n], None if ds.labels is None else ds.labels[:n], ds.name,
                     ds.source, ds.classes, _cap_splits(ds.splits, n))
    return ds


def _cap_splits(splits, n):
    out, left = {}, n
    for k, v in splits.items():
        if left <= 0:
            break
        out[k] = min(v, left)
        left -= out[k]
    return out


def _load_synthetic(split, n, seed):
    splits = _wanted_splits(split)
    if split is None:
        total = 12000 if n is None else n
        sizes = {"train": total - total // 6, "test": total // 6}
    else:
        sizes = {split: SYNTHETIC_SIZES[split] if n is None else n}
    images, labels, kept = [], [], {}
    for s in splits:
        if sizes[s] == 0:
            continue
        x, y = synthetic_digits(sizes[s], seed=seed if s == "train" else [seed, 1])
        images.append(x)
        labels.append(y)
        kept[s] = sizes[s]
    return Dataset(np.concatenate(images) if len(images) > 1 else images[0],
                   np.concatenate(labels) if len(labels) > 1 else labels[0], "synthetic",
                   f"synthetic_digits(seed={seed})", None, kept)
