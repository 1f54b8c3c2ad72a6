"""Pictures: the NumPy-drawn plots (no matplotlib needed) and the image grids."""

import numpy as np
import pytest

from aecore import models, viz
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
    ticks = viz._nice_ticks(0.12, 0.93)
    assert np.all(np.diff(ticks) > 0) and 0.12 <= ticks[0] and ticks[-1] <= 0.93 + 1e-9


def test_grids_have_the_documented_layout(tmp_path):
    ds = tiny_dataset(n=20, size=12)
    ae = models.build_model("ae", input_shape=(1, 12, 12), hidden=[8], latent_dim=3)
    grid = viz.reconstruction_grid(ae, ds.images, tmp_path / "r.png", n=5, blocks=2, scale=1)
    assert grid.shape == (4 * 14 + 2, 5 * 14 + 2)     # 2 blocks x (inputs, outputs)
    np.testing.assert_allclose(grid[2:14, 2:14], ds.images[0, 0], atol=1e-6)
    dae = models.build_model("dae", input_shape=(1, 12, 12), hidden=[8], latent_dim=3)
    grid = viz.reconstruction_grid(dae, ds.images, None, n=5, blocks=1, scale=2)
    assert grid.shape == (2 * (3 * 14 + 2), 2 * (5 * 14 + 2))   # inputs, noisy, outputs
    strip = viz.interpolation_strip(ae, ds.images, None, labels=ds.labels, pairs=3, steps=4,
                                    scale=1)
    assert strip.shape == (3 * 14 + 2, 6 * 14 + 2)
    samples = viz.sample_grid(ae, None, n=6, nrow=3, images=ds.images, scale=1)
    assert samples.shape == (2 * 14 + 2, 3 * 14 + 2)
    with pytest.raises(ValueError, match="pass images"):
        viz.sample_grid(ae, None, n=4)


def test_matplotlib_backend_when_installed(tmp_path):
    pytest.importorskip("matplotlib")
    viz.loss_curves(HISTORY, tmp_path / "loss.png", backend="matplotlib")
    assert read_png(tmp_path / "loss.png").shape[0] > 100
