"""Data: files in, NCHW float32 batches out. NumPy only (Pillow optional, for JPEG).

    from aecore.data import load_dataset, DataLoader, split_dataset
    ds = load_dataset("synthetic")            # or "mnist", "fashion-mnist", "kmnist", a path
    train, val = split_dataset(ds, val_fraction=0.1, seed=0)
    for xb, yb in DataLoader(train.images, train.labels, batch_size=128, seed=0):
        ...                                   # xb: float32 (B, 1, 28, 28) in [0, 1]

Modules: idx (MNIST's IDX format), synthetic (built-in digits), documents (generated scanned
pages, dirty / clean pairs: make_documents), npz (Keras .npz), images (folders of PNG/JPEG),
find (load_dataset: names, paths, where files are looked for), loader (DataLoader,
train_val_split, split_dataset), dataset (the Dataset record). Every reader opens regular files
only (aecore.io.files), so a FIFO or /dev/zero cannot hang it.
"""

from .dataset import Dataset, DatasetNotFoundError, to_float_images, to_labels
from .documents import make_documents
from .find import DATASET_NAMES, find_dataset_files, load_dataset, search_places
from .idx import IDXFormatError, load_idx_pair, read_idx, write_idx
from .images import MissingDependencyError, list_images, load_image_folder, resize_image
from .loader import DataLoader, split_dataset, train_val_split
from .npz import NPZFormatError, load_npz
from .synthetic import SyntheticDigits, synthetic_digits

__all__ = [
    "Dataset", "DatasetNotFoundError", "to_float_images", "to_labels",
    "DATASET_NAMES", "find_dataset_files", "load_dataset", "search_places",
    "IDXFormatError", "load_idx_pair", "read_idx", "write_idx",
    "MissingDependencyError", "list_images", "load_image_folder", "resize_image",
    "DataLoader", "split_dataset", "train_val_split",
    "NPZFormatError", "load_npz",
    "SyntheticDigits", "synthetic_digits",
    "make_documents",
]
