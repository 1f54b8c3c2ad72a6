"""A short training run per family on a small synthetic subset: the loss must fall clearly."""

import numpy as np
import pytest

import aecore as ae
from aecore.data import synthetic_digits
from aecore.models import build_model, evaluate


@pytest.fixture(scope="module")
def digits():
    """(training images, held-out images): 256 to train on, 96 others to evaluate on."""
    images, _ = synthetic_digits(256 + 96, seed=1)
    training, held_out = images[96:], images[:96]
    assert not {image.tobytes() for image in training} & {image.tobytes() for image in held_out}
    return training, held_out


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
    training, held_out = digits
    before = evaluate(model, held_out)
    losses = train(model, training)
    after = evaluate(model, held_out)
    assert np.mean(losses[-5:]) < 0.7 * np.mean(losses[:5])
    key = "nelbo" if kind == "vae" else "bce"
    assert after[key] < 0.7 * before[key], (before, after)
    if kind == "dae":
        assert after["psnr_denoised"] > before["psnr_denoised"] + 3
