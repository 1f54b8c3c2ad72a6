"""Mini-batches, and a deterministic train / validation split.

    loader = DataLoader(images, labels, batch_size=128, shuffle=True, seed=0)
    for epoch in range(epochs):
        for xb, yb in loader:          # a new order every epoch
            ...
    ckpt["loader"] = loader.state_dict()      # JSON-safe
    ...
    loader.load_state_dict(ckpt["loader"])   # the next batches are exactly those that would
                                             # have come without the interruption

The shuffling Generator (numpy.random.default_rng(seed), PCG64) is created once; each epoch
(each `for` loop over the loader) draws its permutation from it, so epoch k's order depends on
the seed and k only. Leaving a loop early abandons that epoch: the next loop starts a new one. The state
records the generator's state at the start of the current epoch and how many batches of the
epoch were already handed out, so a checkpoint taken in the middle of an epoch resumes in the
middle of the same permutation.
"""

from __future__ import annotations

import copy

import numpy as np

from .dataset import Dataset

__all__ = ["DataLoader", "train_val_split", "split_dataset"]


def _check_int(value, name, minimum):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


class DataLoader:
    """Iterate (batch_images, batch_labels) over arrays, reshuffled every epoch.

    images: array (N, ...), indexed along the first axis (NumPy; anything supporting
            fancy indexing with an integer NumPy array works), or a Dataset
    labels: array (N,) or None (then batch_labels is None)
    batch_size >= 1; drop_last drops the final short batch.
    len(loader) = number of batches per epoch.
    """

    def __init__(self, images, labels=None, batch_size=128, shuffle=True, seed=0,
                 drop_last=False):
        if isinstance(images, Dataset):  # DataLoader(dataset, ...) takes its images and labels
            if labels is not None:
                raise ValueError("pass either a Dataset or images and labels, not both")
            images, labels = images.images, images.labels
        if not hasattr(images, "shape") or len(images.shape) < 1:
            raise ValueError("images must be an array with a leading batch axis, got "
                             f"{type(images).__name__}")
        n = int(images.shape[0])
        if n == 0:
            raise ValueError("images is empty (0 samples): nothing to iterate over")
        if labels is not None and int(labels.shape[0]) != n:
            raise ValueError(f"labels has {labels.shape[0]} entries but images has {n}: "
                             "they must have the same length")
        self.batch_size = _check_int(batch_size, "batch_size", 1)
        self.images = images
        self.labels = labels
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.seed = seed
        self.num_samples = n
        self._rng = np.random.default_rng(seed)
        self._epoch = 0            # index of the epoch the next batch belongs to
        self._epoch_rng_state = None  # generator state before this epoch's permutation
        self._position = 0         # batches of the current epoch already handed out
        self._order = None         # the current epoch's permutation (None between epochs)
        self._resume = False       # set by load_state_dict when it restores a partial epoch
        if len(self) == 0:
            raise ValueError(f"batch_size={batch_size} with drop_last=True leaves no batch "
                             f"for {n} samples")

    def __len__(self):
        if self.drop_last:
            return self.num_samples // self.batch_size
        return -(-self.num_samples // self.batch_size)

    @property
    def epoch(self) -> int:
        """Number of epochs completed (or, mid-epoch, the index of the current epoch)."""
        return self._epoch

    def _start_epoch(self):
        self._epoch_rng_state = copy.deepcopy(self._rng.bit_generator.state)
        if self.shuffle:
            self._order = self._rng.permutation(self.num_samples)
        else:
            self._order = np.arange(self.num_samples)
        self._position = 0

    def __iter__(self):
        if self._resume:  # load_state_dict put us in the middle of an epoch: continue it
            self._resume = False
        else:
            if self._order is not None:  # the previous epoch was abandoned part-way
                self._finish_epoch()
            self._start_epoch()
        order = self._order
        nb = len(self)
        for k in range(self._position, nb):
            lo, hi = self._positions(k)        # batch k is order[lo:hi]
            if not self.shuffle:  # contiguous: a slice (a view, no copy)
                xb = self.images[lo:hi]
                yb = None if self.labels is None else self.labels[lo:hi]
            else:
                idx = order[lo:hi]
                xb = self.images[idx]
                yb = None if self.labels is None else self.labels[idx]
            self._position += 1
            if self._position == nb:
                self._finish_epoch()
            yield xb, yb

    def _positions(self, k):
        """(lo, hi): batch k is the epoch's order[lo:hi] (aecore.distributed's ShardedLoader
        narrows this to one rank's part)."""
        lo = k * self.batch_size
        return lo, min(lo + self.batch_size, self.num_samples)

    def _finish_epoch(self):
        self._epoch += 1
        self._order = None
        self._position = 0
        self._epoch_rng_state = None

    # -- checkpointing ----------------------------------------------------------------------

    def state_dict(self) -> dict:
        """JSON-safe state: epoch, position in it, and the generator state to replay it."""
        in_epoch = self._order is not None and self._position > 0
        rng_state = self._epoch_rng_state if in_epoch else self._rng.bit_generator.state
        return {
            "epoch": self._epoch,
            "batch": self._position if in_epoch else 0,
            "rng_state": _json_safe(rng_state),
            "num_samples": self.num_samples,
            "batch_size": self.batch_size,
            "shuffle": self.shuffle,
            "drop_last": self.drop_last,
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore a state from state_dict(); the next batches are the ones that would have
        followed when the state was taken."""
        for key in ("num_samples", "batch_size", "shuffle", "drop_last"):
            if key in state and state[key] != getattr(self, key):
                raise ValueError(f"load_state_dict: the state was saved with {key}="
                                 f"{state[key]!r} but this loader has {key}="
                                 f"{getattr(self, key)!r}")
        batch = int(state.get("batch", 0))
        if not 0 <= batch < max(len(self), 1):
            raise ValueError(f"load_state_dict: batch {batch} out of range for {len(self)} "
                             "batches per epoch")
        self._rng.bit_generator.state = copy.deepcopy(state["rng_state"])
        self._epoch = int(state["epoch"])
        self._order = None
        self._position = 0
        self._epoch_rng_state = None
        self._resume = False
        if batch > 0:
            self._start_epoch()  # replays the permutation from the saved generator state
            self._position = batch
            self._resume = True

    def __repr__(self):
        return (f"DataLoader(num_samples={self.num_samples}, batch_size={self.batch_size}, "
                f"shuffle={self.shuffle}, drop_last={self.drop_last}, seed={self.seed!r}, "
                f"epoch={self._epoch})")


def _json_safe(obj):
    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    return obj


def train_val_split(n, val_fraction=0.1, seed=0):
    """Deterministic split of range(n): -> (train_indices, val_indices), each sorted int64.

    The validation part has floor(n * val_fraction) samples, chosen by a permutation from
    numpy.random.default_rng(seed); the two parts are disjoint and cover range(n).
    """
    n = _check_int(n, "n", 0)
    if isinstance(val_fraction, bool) or not isinstance(val_fraction, (int, float, np.floating,
                                                                       np.integer)) \
            or not 0.0 <= float(val_fraction) < 1.0:
        raise ValueError(f"val_fraction must be a number in [0, 1), got {val_fraction!r}")
    n_val = int(np.floor(n * float(val_fraction)))
    perm = np.random.default_rng(seed).permutation(n)
    return np.sort(perm[n_val:]).astype(np.int64), np.sort(perm[:n_val]).astype(np.int64)


def split_dataset(dataset: Dataset, val_fraction=0.1, seed=0):
    """-> (train Dataset, validation Dataset), via train_val_split(len(dataset), ...)."""
    tr, va = train_val_split(len(dataset), val_fraction, seed)
    return (dataset.subset(tr, name=dataset.name),
            dataset.subset(va, name=f"{dataset.name} (validation)"))
