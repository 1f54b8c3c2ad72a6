"""load_dataset: names found in every documented place, paths of every kind, clear errors.

Each test runs in an isolated world: HOME, the working directory, AECORE_DATA and KERAS_HOME
all point into tmp_path, so nothing on the real machine is found by accident.
"""

import os

import numpy as np
import pytest

from aecore.data import (DatasetNotFoundError, MissingDependencyError, NPZFormatError,
                         load_dataset, load_image_folder, load_npz, search_places, write_idx)
from aecore.data.images import resize_image
from aecore.io.png import write_png


@pytest.fixture
def world(tmp_path, monkeypatch):
    home = tmp_path / "home"
    cwd = tmp_path / "cwd"
    home.mkdir()
    cwd.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("AECORE_DATA", raising=False)
    monkeypatch.delenv("KERAS_HOME", raising=False)
    monkeypatch.chdir(cwd)
    return tmp_path


def make_idx_set(directory, splits=("train", "test"), n=None, gz=True, offset=0):
    """Small fake MNIST-like IDX files; image k of a split is filled with value k + offset."""
    directory.mkdir(parents=True, exist_ok=True)
    sizes = {"train": 6, "test": 4}
    ext = ".gz" if gz else ""
    for s in splits:
        m = n or sizes[s]
        x = np.zeros((m, 28, 28), dtype=np.uint8) + (np.arange(m, dtype=np.uint8) + offset)[:, None, None]
        y = (np.arange(m) % 10).astype(np.uint8)
        prefix = "train" if s == "train" else "t10k"
        write_idx(directory / f"{prefix}-images-idx3-ubyte{ext}", x)
        write_idx(directory / f"{prefix}-labels-idx1-ubyte{ext}", y)
    return directory


def test_aecore_data_subfolder(world, monkeypatch):
    make_idx_set(world / "store" / "mnist")
    make_idx_set(world / "store" / "fashion-mnist", offset=100)
    monkeypatch.setenv("AECORE_DATA", str(world / "store"))
    ds = load_dataset("mnist")
    assert ds.images.shape == (10, 1, 28, 28) and ds.images.dtype == np.float32
    assert ds.labels.dtype == np.int64 and ds.splits == {"train": 6, "test": 4}
    assert ds.images[1, 0, 0, 0] == pytest.approx(1 / 255)  # train first
    assert ds.source == str(world / "store" / "mnist")
    fm = load_dataset("fashion_mnist", split="test")
    assert fm.name == "fashion-mnist" and len(fm) == 4
    assert fm.images[0, 0, 0, 0] == pytest.approx(100 / 255)


def test_aecore_data_directory_itself_raw_files(world, monkeypatch):
    make_idx_set(world / "flat", gz=False)
    monkeypatch.setenv("AECORE_DATA", str(world / "flat"))
    assert len(load_dataset("kmnist", split="train")) == 6


def test_root_argument_wins_over_env(world, monkeypatch):
    make_idx_set(world / "env" / "mnist", n=3)
    make_idx_set(world / "given", n=5)
    monkeypatch.setenv("AECORE_DATA", str(world / "env"))
    assert len(load_dataset("mnist", split="test", root=world / "given")) == 5
    assert len(load_dataset("mnist", split="test")) == 3


@pytest.mark.parametrize("layout", ["MNIST/raw", "FashionMNIST/raw"])
def test_torchvision_layout(world, layout):
    make_idx_set(world / "cwd" / "data" / layout, gz=False)
    name = "mnist" if layout.startswith("MNIST") else "fashion-mnist"
    assert len(load_dataset(name)) == 10
    other = "fashion-mnist" if name == "mnist" else "mnist"
    with pytest.raises(DatasetNotFoundError):
        load_dataset(other)


def test_torchvision_layout_in_home_data_and_root(world):
    make_idx_set(world / "home" / "data" / "MNIST" / "raw", n=2)
    assert len(load_dataset("mnist", split="train")) == 2
    make_idx_set(world / "tv" / "FashionMNIST" / "raw", n=3)
    assert len(load_dataset("fashion-mnist", split="train", root=world / "tv")) == 3


def test_keras_layouts(world, monkeypatch):
    keras = world / "home" / ".keras" / "datasets"
    keras.mkdir(parents=True)
    rng = np.random.default_rng(0)
    np.savez(keras / "mnist.npz", x_train=rng.integers(0, 256, (7, 28, 28), dtype=np.uint8),
             y_train=np.arange(7, dtype=np.uint8), x_test=np.zeros((3, 28, 28), np.uint8),
             y_test=np.arange(3, dtype=np.uint8))
    make_idx_set(keras / "fashion-mnist", n=2)
    ds = load_dataset("mnist")
    assert ds.splits == {"train": 7, "test": 3} and ds.labels.tolist() == list(range(7)) + [0, 1, 2]
    assert len(load_dataset("mnist", split="test")) == 3
    assert len(load_dataset("fashion-mnist")) == 4
    monkeypatch.setenv("KERAS_HOME", str(world / "kh"))
    with pytest.raises(DatasetNotFoundError):
        load_dataset("mnist")


def test_test_split_only_folder(world, monkeypatch):
    make_idx_set(world / "shared" / "mnist", splits=("test",))
    monkeypatch.setenv("AECORE_DATA", str(world / "shared"))
    ds = load_dataset("mnist")
    assert ds.splits == {"test": 4}
    with pytest.raises(DatasetNotFoundError, match=r"has the test split only"):
        load_dataset("mnist", split="train")


def test_missing_set_lists_every_place(world, monkeypatch):
    monkeypatch.setenv("AECORE_DATA", str(world / "nothing-here"))
    with pytest.raises(DatasetNotFoundError) as info:
        load_dataset("fashion-mnist", root=world / "r")
    msg = str(info.value)
    assert isinstance(info.value, FileNotFoundError)
    for kind, place in search_places("fashion-mnist", world / "r"):
        assert os.path.abspath(place) in msg
    assert str(world / "r" / "FashionMNIST" / "raw") in msg
    assert str(world / "home" / ".keras" / "datasets" / "fashion-mnist") in msg
    assert "AECORE_DATA" in msg and "t10k-images-idx3-ubyte" in msg
    assert "synthetic" in msg


def test_unknown_name_and_missing_path(world):
    with pytest.raises(DatasetNotFoundError, match="unknown data set 'cifar'"):
        load_dataset("cifar")
    with pytest.raises(DatasetNotFoundError, match="no such file or directory"):
        load_dataset(str(world / "absent.npz"))
    with pytest.raises(ValueError, match="split must be"):
        load_dataset("synthetic", split="validation")


def test_path_to_idx_file_and_directory(world):
    d = make_idx_set(world / "files", n=5)
    ds = load_dataset(d / "train-images-idx3-ubyte.gz")
    assert len(ds) == 5 and ds.labels is not None
    ds = load_dataset(str(d), split="test", n=2)
    assert len(ds) == 2 and ds.splits == {"test": 2}
    with pytest.raises(ValueError, match="labels file"):
        load_dataset(d / "train-labels-idx1-ubyte.gz")
    # images file without a labels file beside it
    write_idx(world / "lonely-images-idx3-ubyte", np.zeros((2, 4, 4), np.uint8))
    ds = load_dataset(world / "lonely-images-idx3-ubyte")
    assert ds.labels is None and ds.images.shape == (2, 1, 4, 4)


def test_npz_paths_and_errors(world):
    p = world / "set.npz"
    np.savez(p, x_train=np.ones((4, 5, 6, 3), np.uint8) * 255, x_test=np.zeros((2, 5, 6, 3), np.uint8))
    ds = load_npz(p)
    assert ds.images.shape == (6, 3, 5, 6) and ds.labels is None  # channels-last -> NCHW
    assert ds.images[:4].min() == 1.0 and ds.images[4:].max() == 0.0
    assert len(load_dataset(p, split="test")) == 2
    q = world / "only_train.npz"
    np.savez(q, x_train=np.zeros((2, 3, 3), np.float32), y_train=np.array([[1], [2]]))
    ds = load_npz(q)
    assert ds.labels.tolist() == [1, 2] and ds.splits == {"train": 2}
    with pytest.raises(NPZFormatError, match=r"no 'x_test' array \(keys found: \['x_train', 'y_train'\]\)"):
        load_npz(q, split="test")
    r = world / "wrong.npz"
    np.savez(r, images=np.zeros((2, 3, 3)))
    with pytest.raises(NPZFormatError, match="'x_train' or 'x_test'"):
        load_npz(r)
    s = world / "obj.npz"
    np.savez(s, x_train=np.array([None, 1], dtype=object))
    with pytest.raises(NPZFormatError, match="pickle"):
        load_npz(s)
    t = world / "range.npz"
    np.savez(t, x_train=np.full((2, 3, 3), 7.0))
    with pytest.raises(ValueError, match=r"must lie in \[0, 1\]"):
        load_npz(t)
    u = world / "mismatch.npz"
    np.savez(u, x_train=np.zeros((2, 3, 3)), y_train=np.zeros(3, np.int64))
    with pytest.raises(ValueError, match="3 labels for 2 images"):
        load_npz(u)
    (world / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(NPZFormatError, match="not a readable .npz"):
        load_npz(world / "junk.npz")


def test_image_folder_with_classes(world):
    root = world / "pics"
    (root / "cats").mkdir(parents=True)
    (root / "dogs" / "big").mkdir(parents=True)
    write_png(root / "cats" / "b.png", np.full((8, 8), 0.25))
    write_png(root / "cats" / "a.png", np.zeros((8, 8, 3), np.uint8) + np.uint8([255, 0, 0]))
    write_png(root / "dogs" / "big" / "c.png", np.full((8, 8, 4), 255, np.uint8))
    write_png(root / "dogs" / ".hidden.png", np.zeros((8, 8)))
    ds = load_dataset(root)
    assert ds.images.shape == (3, 3, 8, 8)  # one RGB file -> every image RGB
    assert ds.classes == ["cats", "dogs"] and ds.labels.tolist() == [0, 0, 1]
    np.testing.assert_allclose(ds.images[0, :, 0, 0], [1, 0, 0])  # cats/a.png first (sorted)
    np.testing.assert_allclose(ds.images[1, :, 0, 0], 64 / 255, atol=1e-6)
    gray = load_image_folder(root, color="gray", size=4)
    assert gray.images.shape == (3, 1, 4, 4)
    np.testing.assert_allclose(gray.images[0, 0], 0.299, atol=1e-6)  # luma of pure red
    np.testing.assert_allclose(gray.images[2, 0], 1.0, atol=1e-6)  # alpha dropped


def test_image_folder_without_classes_and_errors(world):
    root = world / "flat"
    root.mkdir()
    write_png(root / "x.png", np.zeros((5, 5)))
    write_png(root / "y.png", np.zeros((6, 5)))
    with pytest.raises(ValueError, match=r"different sizes.*image_size=N"):
        load_image_folder(root)
    ds = load_image_folder(root, size=(3, 3))
    assert ds.labels is None and ds.images.shape == (2, 1, 3, 3)
    empty = world / "empty"
    empty.mkdir()
    with pytest.raises(DatasetNotFoundError, match="no image files"):
        load_image_folder(empty)
    with pytest.raises(ValueError, match="color must be"):
        load_image_folder(root, color="cmyk")


def test_jpeg_without_pillow_says_how_to_install(world, monkeypatch):
    import aecore.data.images as images_mod
    monkeypatch.setattr(images_mod, "_pillow", lambda: None)
    root = world / "jpgs"
    root.mkdir()
    (root / "a.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    with pytest.raises(MissingDependencyError, match=r"pip install aecore\[images\]"):
        load_image_folder(root)


def test_resize_uses_pillows_bilinear_weights():
    # Pillow's BILINEAR, 4 -> 2 pixels: output centers at 1.0 and 3.0 (input coordinates), a
    # tent of half-width 2 over input centers 0.5 .. 3.5 -> weights [3, 3, 1, 0] / 7
    m = np.array([[3, 3, 1, 0], [0, 1, 3, 3]], dtype=np.float32) / 7
    a = np.arange(16, dtype=np.float32).reshape(4, 4)
    np.testing.assert_allclose(resize_image(a, (2, 2)), m @ a @ m.T, rtol=1e-6)
    # upsampling 2 -> 4: plain bilinear with half-pixel centers, edges clamped
    up = resize_image(np.array([[0.0, 1.0]], dtype=np.float32), (1, 4))
    np.testing.assert_allclose(up, [[0.0, 0.25, 0.75, 1.0]], atol=1e-6)
    np.testing.assert_allclose(resize_image(np.ones((5, 7, 3), np.float32), (3, 11)), 1.0,
                               rtol=1e-6)


def test_synthetic_by_name():
    ds = load_dataset("synthetic", n=60, seed=2)
    assert ds.images.shape == (60, 1, 28, 28) and ds.splits == {"train": 50, "test": 10}
    tr = load_dataset("synthetic", split="train", n=50, seed=2)
    np.testing.assert_array_equal(tr.images, ds.images[:50])
    te = load_dataset("synthetic", split="test", n=10, seed=2)
    np.testing.assert_array_equal(te.images, ds.images[50:])
    assert not np.array_equal(te.images, tr.images[:10])


def test_names_win_over_same_named_folders(world, monkeypatch):
    make_idx_set(world / "cwd" / "mnist", n=3)  # ./mnist: only reachable as a path
    make_idx_set(world / "store" / "mnist", n=5)
    monkeypatch.setenv("AECORE_DATA", str(world / "store"))
    assert len(load_dataset("mnist", split="test")) == 5
    assert len(load_dataset("./mnist", split="test")) == 3
