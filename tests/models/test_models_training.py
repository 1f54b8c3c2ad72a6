"""A short training run per family on a small synthetic subset: the loss must fall clearly."""

import numpy as np
import pytest

import aecore as ae
from aecore.data import synthetic_digits
from aecore.models import build_model, evaluate


@pytest.fixture(scope="module")
def digits():
    images, _ = synthetic_digits(256, seed=1)
    return images


def train(model, images, steps=30, lr=1e-2, batch_size=32):
    optimizer = ae.optim.Adam(model.parameters(), lr=lr)
    rng = np.random.default_rng(0)
    losses = []
    for _ in range(steps):
        batch = images[rng.choice(len(images), batch_size, replace=False)]
        optimizer.zero_grad()
        loss, _ = model.loss(batch)
        loss.backward()
        optimizer.step()
        assert np.isfinite(loss.item())
        losses.append(loss.item())
    return losses


@pytest.mark.parametrize("kind,options", [
    ("ae", {}),
    ("ae", dict(sparse=1e-4, contractive=1e-3)),
    ("cae", dict(filters=(8, 8, 4))),
    ("dae", dict(base="ae", noise="gaussian", noise_level=0.3)),
    ("dae", dict(base="cae", filters=(8, 8, 4), noise="masking", noise_level=0.3)),
    ("vae", dict(hidden=(64,), latent_dim=4)),
])
def test_training_lowers_the_loss(digits, kind, options):
    ae.manual_seed(0)
    model = build_model(kind, **options)
    held_out = digits[:96]
    before = evaluate(model, held_out)
    losses = train(model, digits)
    after = evaluate(model, held_out)
    assert np.mean(losses[-5:]) < 0.7 * np.mean(losses[:5])
    key = "nelbo" if kind == "vae" else "bce"
    assert after[key] < 0.7 * before[key], (before, after)
    if kind == "dae":
        assert after["psnr_denoised"] > before["psnr_denoised"] + 3
