"""Shared pieces of the workflow tests: tiny configs that train in well under a second."""

import pytest

from aecore.data import Dataset, synthetic_digits

# A dense AE small enough that an epoch over a few hundred 28x28 images takes ~0.1 s.
TINY_AE = {"model": "ae", "model_options": {"hidden": [32], "latent_dim": 4},
           "data": "synthetic", "limit": 240, "epochs": 3, "batch_size": 32, "lr": 3e-3,
           "val_fraction": 0.25, "seed": 3, "pictures": False}
# A dense VAE: its loss draws noise from aecore.random every step (the reparameterization).
TINY_VAE = dict(TINY_AE, model="vae",
                model_options={"encoder": "dense", "hidden": [32], "latent_dim": 2})
# A dense DAE: the corruption draws from aecore.random too.
TINY_DAE = dict(TINY_AE, model="dae",
                model_options={"base": "ae", "hidden": [32], "latent_dim": 4,
                               "noise": "gaussian", "noise_level": 0.3})

# command-line flags for the same tiny AE
TINY_AE_ARGS = ["--model", "ae", "--hidden", "32", "--latent-dim", "2", "--data", "synthetic",
                "--limit", "160", "--batch-size", "32", "--seed", "0", "--quiet"]


def tiny_dataset(n=120, size=12, seed=0):
    x, y = synthetic_digits(n, seed=seed, image_size=size)
    return Dataset(x, y, "synthetic-small", "synthetic_digits", None, {"train": n})


@pytest.fixture
def small_data():
    return tiny_dataset()
