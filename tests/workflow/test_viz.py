"""Pictures: the NumPy-drawn plots (no matplotlib needed) and the image grids."""

import numpy as np
import pytest

import aecore
from aecore import models, viz
from aecore.viz import plots
from aecore.io.png import read_png

from conftest import tiny_dataset

HISTORY = [{"epoch": 1, "train_loss": 0.5, "val_loss": 0.45},
           {"epoch": 2, "train_loss": 0.3, "val_loss": 0.32},
           {"epoch": 3, "train_loss": 0.25, "val_loss": None}]


def _has_color(image, rgb, tol=0.02):
    return bool(np.any(np.all(np.abs(image[..., :3] - np.asarray(rgb)) < tol, axis=-1)))


def test_numpy_loss_curves(tmp_path):
    image = viz.loss_curves(HISTORY, tmp_path / "loss.png", backend="numpy")
    assert image.shape == (400, 600, 3)
    assert _has_color(image, viz.PALETTE[0]) and _has_color(image, viz.PALETTE[1])
    assert read_png(tmp_path / "loss.png").shape == (400, 600, 3)


def test_numpy_latent_scatter_colours_by_label(tmp_path):
    ds = tiny_dataset(n=60, size=12)
    model = models.build_model("vae", input_shape=(1, 12, 12), hidden=[8], latent_dim=2)
    xy = viz.latent_scatter(model, ds.images, ds.labels, tmp_path / "z.png", backend="numpy")
    assert xy.shape == (60, 2)
    np.testing.assert_allclose(xy, viz.encode_codes(model, ds.images), rtol=1e-6)
    image = read_png(tmp_path / "z.png") / 255.0
    for label in np.unique(ds.labels):
        assert _has_color(image, viz.PALETTE[label])
    # longer codes are projected on two principal components
    ae = models.build_model("ae", input_shape=(1, 12, 12), hidden=[8], latent_dim=5)
    xy = viz.latent_scatter(ae, ds.images, None, tmp_path / "pca.png", backend="numpy")
    assert xy.shape == (60, 2)


def test_canvas_text_and_ticks():
    canvas = viz.Canvas(60, 20)
    canvas.text(2, 2, "0.5 E-3", scale=1)
    assert canvas.pixels.min() == 0.0                # ink was drawn
    ticks = plots._nice_ticks(0.12, 0.93)
    assert np.all(np.diff(ticks) > 0) and 0.12 <= ticks[0] and ticks[-1] <= 0.93 + 1e-9


def test_grids_have_the_documented_layout(tmp_path):
    ds = tiny_dataset(n=20, size=12)
    ae = models.build_model("ae", input_shape=(1, 12, 12), hidden=[8], latent_dim=3)
    grid = viz.reconstruction_grid(ae, ds.images, tmp_path / "r.png", n=5, blocks=2, scale=1,
                                   annotate=False)
    assert grid.shape == (4 * 14 + 2, 5 * 14 + 2)     # 2 blocks x (inputs, outputs)
    np.testing.assert_allclose(grid[2:14, 2:14], ds.images[0, 0], atol=1e-6)
    dae = models.build_model("dae", input_shape=(1, 12, 12), hidden=[8], latent_dim=3)
    grid = viz.reconstruction_grid(dae, ds.images, None, n=5, blocks=1, scale=2,
                                   annotate=False)
    assert grid.shape == (2 * (3 * 14 + 2), 2 * (5 * 14 + 2))   # inputs, noisy, outputs
    strip = viz.interpolation_strip(ae, ds.images, None, labels=ds.labels, pairs=3, steps=4,
                                    scale=1, annotate=False)
    assert strip.shape == (3 * 14 + 2, 6 * 14 + 2)
    samples = viz.sample_grid(ae, None, n=6, nrow=3, images=ds.images, scale=1,
                              annotate=False)
    assert samples.shape == (2 * 14 + 2, 3 * 14 + 2)
    with pytest.raises(ValueError, match="pass images"):
        viz.sample_grid(ae, None, n=4)


def _picture(kind, path, annotate):
    """One picture of 28x28 digits, the same each call (seeded weights, the noise passed in)."""
    ds = tiny_dataset(n=24, size=28)
    aecore.manual_seed(0)
    model = models.build_model("dae" if kind == "denoising" else "ae", input_shape=(1, 28, 28),
                               hidden=[8], latent_dim=3)
    if kind == "samples":
        return viz.sample_grid(model, path, n=6, nrow=3, images=ds.images, annotate=annotate)
    if kind == "interpolation":
        return viz.interpolation_strip(model, ds.images, path, labels=ds.labels, pairs=2,
                                       steps=3, annotate=annotate)
    noisy = np.clip(ds.images[:4] + 0.3 * np.random.default_rng(0).standard_normal(
        ds.images[:4].shape, dtype=np.float32), 0, 1)
    return viz.reconstruction_grid(model, ds.images, path, n=4, blocks=1, noisy=noisy,
                                   annotate=annotate)


# grid rows; where the labels go (left: row names, top: column names or a title)
PICTURES = {"reconstructions": (2, {"left"}), "denoising": (3, {"left"}),
            "samples": (2, {"top"}), "interpolation": (2, {"left", "top"})}


@pytest.mark.parametrize("kind", sorted(PICTURES))
def test_pictures_are_enlarged_and_labelled(tmp_path, kind):
    rows, where = PICTURES[kind]
    picture = _picture(kind, tmp_path / "p.png", annotate=True)
    bare = _picture(kind, None, annotate=False)
    assert viz.tile_scale((28, 28)) == 3
    # the bare grid: every 28x28 tile enlarged 3x, nearest-neighbour, 2 (x3) pixels apart
    assert bare.shape[0] == rows * 30 * 3 + 6
    tile = bare[6:6 + 84, 6:6 + 84]
    np.testing.assert_array_equal(tile, np.repeat(np.repeat(tile[::3, ::3], 3, 0), 3, 1))
    # the labelled picture: the bare grid at its bottom right, the labels in the margins
    h, w = bare.shape
    np.testing.assert_array_equal(picture[-h:, -w:], bare)
    left, top = picture[-h:, :-w], picture[:-h, :]
    assert (left.size > 0) == ("left" in where) and (top.size > 0) == ("top" in where)
    if "left" in where:   # a name beside each row of tiles, ink (black) on white
        for r in range(rows):
            band = left[6 + r * 90:6 + r * 90 + 84]
            assert band.min() == 0.0 and set(np.unique(band)) == {0.0, 1.0}
    if "top" in where:
        assert top.min() == 0.0 and set(np.unique(top)) == {0.0, 1.0}
    written = read_png(tmp_path / "p.png")
    assert written.shape == picture.shape
    np.testing.assert_array_equal(written, np.round(picture * 255))


def test_interpolation_names_its_columns_by_t(monkeypatch):
    calls = []
    real = viz.labelled_grid

    def spy(images, **options):
        calls.append(options)
        return real(images, **options)

    monkeypatch.setattr(viz, "labelled_grid", spy)
    _picture("interpolation", None, annotate=True)
    (options,) = calls
    assert options["col_labels"] == ["a", "t=0", "t=0.5", "t=1", "b"]
    assert len(options["row_labels"]) == 2 and all(" to " in s for s in options["row_labels"])


def test_draw_text_on_a_grey_image():
    pixels = np.ones((20, 40), np.float32)
    viz.draw_text(pixels, 20, 2, "t=1", 0.0, scale=2, anchor="center")
    ys, xs = np.nonzero(pixels == 0.0)
    assert ys.min() == 2 and ys.max() == 2 + 5 * 2 - 1
    assert xs.max() - xs.min() + 1 <= viz.text_width("t=1", 2)
    assert abs((xs.min() + xs.max()) / 2 - 20) <= 2


def test_matplotlib_backend_when_installed(tmp_path):
    pytest.importorskip("matplotlib")
    viz.loss_curves(HISTORY, tmp_path / "loss.png", backend="matplotlib")
    assert read_png(tmp_path / "loss.png").shape[0] > 100
