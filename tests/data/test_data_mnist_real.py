"""The real MNIST test set, when it sits beside the repository (../shared/data/mnist)."""

from pathlib import Path

import numpy as np
import pytest

from aecore.data import load_dataset

MNIST_DIR = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "mnist"


@pytest.fixture
def real_mnist_dir():
    if not (MNIST_DIR / "t10k-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"the real MNIST test files are not in {MNIST_DIR.resolve()}")
    return MNIST_DIR


def test_real_mnist_test_set_by_path(real_mnist_dir):
    ds = load_dataset(real_mnist_dir)
    assert ds.images.shape == (10000, 1, 28, 28) and ds.images.dtype == np.float32
    assert ds.labels.shape == (10000,) and ds.labels.dtype == np.int64
    assert ds.labels.min() == 0 and ds.labels.max() == 9
    assert np.bincount(ds.labels).min() > 800
    assert ds.images.min() == 0.0 and ds.images.max() == 1.0
    assert ds.labels[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert 0.12 < ds.images.mean() < 0.14


def test_real_mnist_by_name_through_aecore_data(real_mnist_dir, monkeypatch):
    monkeypatch.setenv("AECORE_DATA", str(real_mnist_dir.parent))
    ds = load_dataset("mnist", split="test", n=100)
    assert ds.images.shape == (100, 1, 28, 28) and ds.splits == {"test": 100}
