"""ae.save / ae.load: safetensors when the package is there, npz without it, the format read
from the file's bytes, atomic writes, one-line errors naming the file; and the README's
load_run example (encode new images, decode codes)."""

import importlib.util
import os
import sys
import warnings

import numpy as np
import pytest

import aecore as ae
from aecore import nn
from aecore.io.save import ModelFileError, load, save


def small_model():
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding="same"), nn.ReLU(), nn.Flatten(),
                         nn.Linear(4 * 6 * 6, 3))


@pytest.fixture
def without_safetensors(monkeypatch):
    """`import safetensors` fails inside the test, as on a machine without the package."""
    monkeypatch.setitem(sys.modules, "safetensors", None)
    monkeypatch.setitem(sys.modules, "safetensors.numpy", None)


def assert_same_arrays(loaded, expected):
    assert list(loaded) == list(expected)
    for name, array in expected.items():
        assert loaded[name].dtype == np.asarray(array).dtype, name
        np.testing.assert_array_equal(loaded[name], array)


def test_the_names_are_lazy_exports_of_aecore():
    import aecore.io.save
    assert ae.save is aecore.io.save.save and ae.load is aecore.io.save.load


def test_a_module_round_trips_through_safetensors_and_safetensors_reads_the_file(tmp_path):
    safetensors_numpy = pytest.importorskip("safetensors.numpy")
    model = small_model()
    path = tmp_path / "model.safetensors"
    assert ae.save(model, path) == "safetensors"
    state = ae.load(path)
    assert_same_arrays(state, model.state_dict())
    assert_same_arrays(dict(sorted(safetensors_numpy.load_file(str(path)).items())),
                       dict(sorted(model.state_dict().items())))
    fresh = small_model()
    fresh.load_state_dict(state)
    x = np.random.default_rng(1).random((2, 1, 6, 6)).astype(np.float32)
    np.testing.assert_array_equal(fresh(ae.tensor(x)).numpy(), model(ae.tensor(x)).numpy())


@pytest.mark.parametrize("form", ["safetensors", "npz"])
def test_a_dict_of_tensors_and_arrays_keeps_dtypes_and_order(tmp_path, form):
    if form == "safetensors":
        pytest.importorskip("safetensors")
    arrays = {"z.weight": np.arange(6, dtype=np.float64).reshape(2, 3),
              "a.steps": np.array([3, 1], dtype=np.int64),
              "m.mask": np.array([True, False])}
    given = dict(arrays, **{"b.tensor": ae.tensor([[1.5, -2.0]])})
    path = tmp_path / "arrays.bin"
    assert save(given, path, format=form) == form
    assert_same_arrays(load(path), dict(arrays, **{"b.tensor": np.array([[1.5, -2.0]],
                                                                        np.float32)}))


def test_without_the_package_save_writes_npz_and_says_so_in_one_line(tmp_path,
                                                                     without_safetensors):
    model = small_model()
    path = tmp_path / "model.safetensors"
    with pytest.warns(UserWarning) as caught:
        assert save(model, path) == "npz"
    (warning,) = caught
    message = str(warning.message)
    assert "\n" not in message and "npz" in message and str(path) in message
    assert_same_arrays(load(path), model.state_dict())       # read by content, not by name
    with pytest.raises(ImportError, match="pip install safetensors"):
        save(model, path, format="safetensors")


def test_a_safetensors_file_without_the_package_is_a_one_line_error(tmp_path, monkeypatch):
    pytest.importorskip("safetensors")
    path = tmp_path / "model.npz"                               # a misleading name
    save(small_model(), path, format="safetensors")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert set(load(path)) == set(small_model().state_dict())
    monkeypatch.setitem(sys.modules, "safetensors", None)
    monkeypatch.setitem(sys.modules, "safetensors.numpy", None)
    with pytest.raises(ModelFileError, match="pip install safetensors") as error:
        load(path)
    assert str(path) in str(error.value)


@pytest.mark.parametrize("form", ["safetensors", "npz"])
def test_damaged_files_are_one_line_errors_naming_the_file(tmp_path, form):
    if form == "safetensors":
        pytest.importorskip("safetensors")
    path = tmp_path / "model.bin"
    save(small_model(), path, format=form)
    data = path.read_bytes()
    cases = {"truncated": data[:len(data) // 2], "not a model file": b"hello, world\n" * 4,
             "empty": b""}
    for what, content in cases.items():
        path.write_bytes(content)
        with pytest.raises(ModelFileError) as error:
            load(path)
        message = str(error.value)
        assert message.startswith(str(path)) and "\n" not in message, (what, message)


def test_save_is_atomic_a_failed_write_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "model.safetensors"
    save({"w": np.ones(3, np.float32)}, path, format="npz")
    before = path.read_bytes()

    def refuse(src, dst):
        raise OSError("simulated failure of the rename")

    monkeypatch.setattr("aecore.io.atomic.os.replace", refuse)
    with pytest.raises(OSError, match="simulated"):
        save({"w": np.zeros(5, np.float32)}, path, format="npz")
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["model.safetensors"]         # no temporary file left


def test_bad_arguments_are_clear_errors(tmp_path):
    path = tmp_path / "x.safetensors"
    with pytest.raises(TypeError, match="obj must be a Module or a dict"):
        save([np.ones(2)], path)
    with pytest.raises(TypeError, match="'w' must be a Tensor or an array"):
        save({"w": [1.0, 2.0]}, path)
    with pytest.raises(TypeError, match="'w' has dtype object"):
        save({"w": np.array([object()])}, path)
    with pytest.raises(ValueError, match="format must be one of 'safetensors', 'npz'"):
        save({"w": np.ones(2)}, path, format="pickle")
    with pytest.raises(FileNotFoundError, match="missing.safetensors"):
        load(tmp_path / "missing.safetensors")


def test_the_readme_load_run_example_encodes_new_images_and_decodes_codes(tmp_path):
    """The README's example of aecore.train.load_run, on a tiny trained run."""
    from aecore.data import synthetic_digits
    from aecore.train import load_run, train
    run = tmp_path / "run"
    train({"model": "ae", "model_options": {"hidden": [32], "latent_dim": 4},
           "data": "synthetic", "limit": 120, "epochs": 1, "batch_size": 32,
           "val_fraction": 0.25, "seed": 3, "pictures": False}, out_dir=run, quiet=True)

    model, config, checkpoint = load_run(run)          # the best epoch's weights, eval mode
    images, _ = synthetic_digits(8, seed=1)             # new images, (8, 1, 28, 28) in [0, 1]
    with ae.no_grad():
        codes = model.code(images)                      # (8, 4); a VAE gives its mean mu
        decoded = model.to_images(model.decode(codes))  # (8, 1, 28, 28) in [0, 1]
    assert codes.shape == (8, 4) and decoded.shape == (8, 1, 28, 28)
    assert config["model"] == "ae" and checkpoint.epoch == 1
    np.testing.assert_allclose(decoded.numpy(), model.reconstruct(images).numpy(), atol=1e-6)
    assert float(decoded.numpy().min()) >= 0 and float(decoded.numpy().max()) <= 1


def test_a_zero_dimensional_buffer_keeps_its_shape(tmp_path):
    """BatchNorm's num_batches_tracked is 0-d: it must come back 0-d from either format."""
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2))
    for fmt in ("npz",) + (("safetensors",) if importlib.util.find_spec("safetensors") else ()):
        path = tmp_path / f"m.{fmt}"
        ae.save(model, path, format=fmt)
        loaded = ae.load(path)
        assert loaded["1.num_batches_tracked"].shape == ()
        model.load_state_dict(loaded)
