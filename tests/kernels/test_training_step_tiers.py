"""A whole training step (loss, backward, Adam update) of each model kind on every tier this
process checks, equal to the same step on the numba tier: the dense AE, the dense VAE, the DAE,
a tiny CAE and a tiny conv VAE. In the CUDA-simulator process that is the cuda tier's step (on
NumPy arrays, every kernel run by the simulator); in the main process the reference tier's.

The conv models (4x4 images, the smallest that reach every conv, pooling and resize op of
their step) take about 10 s each under the simulator, where each tiled launch runs 256 Python
threads a block; AECORE_TEST_CONV_STEPS=0 leaves them out there."""

import os

import numpy as np
import pytest

import aecore
from aecore import kernels, models
from aecore.kernels import compile as kernel_compile
from tiers import selected_tiers, skip_if_none

BASELINE = "numba" if kernel_compile.NUMBA_AVAILABLE else "ref"
TIERS = skip_if_none([t for t in selected_tiers() if t != BASELINE and t in ("ref", "cuda")
                      and not (t == "cuda" and not kernel_compile.CUDA_SIMULATOR)])
CONV_STEPS = os.environ.get("AECORE_TEST_CONV_STEPS", "1") != "0"

MODELS = {
    "ae": dict(kind="ae", input_shape=(1, 6, 6), hidden=[8], latent_dim=3),
    "vae_dense": dict(kind="vae", input_shape=(1, 6, 6), hidden=[8], latent_dim=2),
    "dae": dict(kind="dae", input_shape=(1, 6, 6), hidden=[8], latent_dim=3),
    "cae": dict(kind="cae", input_shape=(1, 4, 4), filters=[2, 2]),
    "vae_conv": dict(kind="vae", encoder="conv", input_shape=(1, 4, 4), filters=[2, 2],
                     latent_dim=2),
}
CONV_MODELS = ("cae", "vae_conv")


def one_step(name, tier):
    """(loss, {parameter: value after one Adam step}) of model `name` on `tier`, float64."""
    options = dict(MODELS[name])
    aecore.manual_seed(0)
    model = models.build_model(options.pop("kind"), **options).double()
    optimizer = aecore.optim.Adam(model.parameters(), lr=1e-2)
    x = np.random.default_rng(1).random((2,) + MODELS[name]["input_shape"])
    aecore.manual_seed(2)                           # the same noise for the DAE and the VAE
    with kernels.use_tier(tier):
        loss, _ = model.loss(aecore.tensor(x, dtype=np.float64))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return float(loss.item()), {k: np.array(v) for k, v in model.state_dict().items()}


@pytest.mark.parametrize("tier", TIERS)
@pytest.mark.parametrize("name", list(MODELS))
def test_one_training_step_equals_the_numba_tiers(name, tier):
    if name in CONV_MODELS and tier == "cuda" and not CONV_STEPS:
        pytest.skip("AECORE_TEST_CONV_STEPS=0: the conv models' simulated steps are left out")
    loss, params = one_step(name, tier)
    expected_loss, expected = one_step(name, BASELINE)
    assert loss == pytest.approx(expected_loss, rel=1e-10)
    assert params.keys() == expected.keys()
    for key in params:
        np.testing.assert_allclose(params[key], expected[key], rtol=1e-9, atol=1e-12,
                                   err_msg=key)
