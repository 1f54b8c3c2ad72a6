"""The built-in synthetic digits: deterministic, well-formed, and learnable."""

import numpy as np
import pytest

from aecore.data import SyntheticDigits, synthetic_digits


@pytest.fixture(scope="module")
def digits():
    return synthetic_digits(3000, seed=0)


def test_shapes_dtypes_range(digits):
    x, y = digits
    assert x.shape == (3000, 1, 28, 28) and x.dtype == np.float32
    assert y.shape == (3000,) and y.dtype == np.int64
    assert x.min() >= 0.0 and x.max() <= 1.0
    assert x.max() == 1.0  # strokes saturate
    assert np.array_equal(np.bincount(y, minlength=10), np.full(10, 300))
    assert np.all(x.reshape(3000, -1).max(axis=1) > 0.5)  # no blank image
    # ink fraction in MNIST's range (13 % of MNIST's pixels are above 0.5)
    assert 0.05 < (x > 0.5).mean() < 0.25
    # the borders stay mostly empty, as in MNIST
    assert x[:, :, 0, :].mean() < 0.02 and x[:, :, :, 0].mean() < 0.02


def test_all_labels_present_for_small_n():
    _, y = synthetic_digits(10, seed=3)
    assert sorted(y.tolist()) == list(range(10))


def test_deterministic_per_seed():
    a = synthetic_digits(200, seed=7)
    b = synthetic_digits(200, seed=7)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    c = synthetic_digits(200, seed=8)
    assert not np.array_equal(a[0], c[0])


def test_images_differ_within_a_class(digits):
    x, y = digits
    ones = x[y == 1]
    assert np.abs(ones[0] - ones[1]).max() > 0.3


def test_classes_are_distinguishable(digits):
    """A nearest-class-mean classifier fit on 2/3 must beat 50 % on the held-out 1/3."""
    x, y = digits
    flat = x.reshape(len(x), -1)
    tr, te = slice(0, 2000), slice(2000, None)
    means = np.stack([flat[tr][y[tr] == c].mean(axis=0) for c in range(10)])
    d = ((flat[te][:, None, :] - means[None]) ** 2).sum(axis=2)
    acc = (d.argmin(axis=1) == y[te]).mean()
    assert acc > 0.5, acc


def test_other_sizes_and_arguments():
    x, y = SyntheticDigits(n=20, seed=1, image_size=16).generate()
    assert x.shape == (20, 1, 16, 16)
    x, y = synthetic_digits(0)
    assert x.shape == (0, 1, 28, 28) and y.shape == (0,)
    with pytest.raises(ValueError, match="n must be"):
        synthetic_digits(-1)
    with pytest.raises(ValueError, match="image_size"):
        synthetic_digits(5, image_size=4)
    assert "five steps" in SyntheticDigits.__doc__
