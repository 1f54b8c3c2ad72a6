"""The DAE's corruptions (rates, clipping, determinism per seed), evaluate(), PSNR, anomaly
scoring."""

import numpy as np
import pytest

import aecore as ae
from aecore import random as ae_random
from aecore.models import (build_model, corrupt, evaluate, pick_threshold, psnr_array,
                           reconstruction_errors, roc_auc)
from aecore.models.anomaly import flag
from aecore.models.corruption import occlusion_mask


def gray(n=200, value=0.5, shape=(1, 28, 28)):
    return np.full((n,) + shape, value, dtype=np.float32)


# ---------------------------------------------------------------------------- corruptions
def test_gaussian_noise_level_and_clipping():
    x = gray()
    noisy = corrupt(x, "gaussian", 0.1)
    assert noisy.dtype == np.float32 and noisy.shape == x.shape
    assert noisy.mean() == pytest.approx(0.5, abs=0.005)
    assert (noisy - x).std() == pytest.approx(0.1, rel=0.02)
    clipped = corrupt(gray(value=0.0), "gaussian", 1.0)
    assert clipped.min() == 0.0 and clipped.max() <= 1.0
    assert (clipped == 0).mean() == pytest.approx(0.5, abs=0.01)  # the negative half clipped
    np.testing.assert_array_equal(x, gray())  # the input is not changed


def test_salt_and_pepper_rate():
    noisy = corrupt(gray(), "salt_and_pepper", 0.3)
    assert (noisy == 0).mean() == pytest.approx(0.15, abs=0.005)
    assert (noisy == 1).mean() == pytest.approx(0.15, abs=0.005)
    assert (noisy == 0.5).mean() == pytest.approx(0.7, abs=0.005)


def test_masking_rate_and_channels_share_the_mask():
    noisy = corrupt(gray(shape=(3, 14, 14)), "masking", 0.4)
    hidden = noisy == 0
    assert hidden.mean() == pytest.approx(0.4, abs=0.01)
    assert (hidden == hidden[:, :1]).all()  # the same pixels in every channel
    assert (noisy[~hidden] == 0.5).all()


def test_block_occlusion():
    noisy = corrupt(np.ones((50, 1, 28, 28), np.float32), "occlusion", 0.25, occlusion="block")
    hidden = noisy[:, 0] == 0
    assert (hidden.sum(axis=(1, 2)) == 14 * 14).all()
    rows, cols = hidden.any(axis=2), hidden.any(axis=1)
    assert (rows.sum(axis=1) == 14).all() and (cols.sum(axis=1) == 14).all()  # one square
    tops = rows.argmax(axis=1)
    assert len(set(tops.tolist())) > 5  # at random places


def test_crosshair_occlusion():
    masks = occlusion_mask(40, 28, 28, 0.2, "crosshair")
    full_rows = masks.all(axis=2).sum(axis=1)
    full_cols = masks.all(axis=1).sum(axis=1)
    t = round(28 * (1 - np.sqrt(0.8)))
    assert (full_rows == t).all() and (full_cols == t).all()
    assert masks.mean() == pytest.approx((2 * t * 28 - t * t) / 784, abs=1e-9)
    same = corrupt(np.ones((40, 1, 28, 28), np.float32), "crosshair", 0.2)
    assert (same == 0).mean() == pytest.approx(masks.mean())


@pytest.mark.parametrize("kind", ["gaussian", "salt_and_pepper", "masking", "block", "crosshair"])
def test_corruption_is_deterministic_per_seed_and_keeps_types(kind):
    x = np.random.default_rng(0).random((4, 1, 10, 10)).astype(np.float32)
    ae.manual_seed(5)
    a = corrupt(x, kind, 0.3)
    ae.manual_seed(5)
    b = corrupt(x, kind, 0.3)
    ae.manual_seed(6)
    c = corrupt(x, kind, 0.3)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert a.min() >= 0 and a.max() <= 1
    t = corrupt(ae.tensor(x), kind, 0.3)
    assert isinstance(t, ae.Tensor) and t.shape == x.shape and not t.requires_grad
    assert corrupt(x.astype(np.float64), kind, 0.3).dtype == np.float64


def test_zero_level_is_identity():
    x = np.random.default_rng(1).random((3, 1, 5, 5)).astype(np.float32)
    for kind in ("gaussian", "salt_and_pepper", "masking", "block", "crosshair"):
        np.testing.assert_array_equal(corrupt(x, kind, 0.0), x)


def test_dae_loss_uses_noisy_input_and_clean_target():
    model = build_model("dae", input_shape=(1, 4, 4), hidden=(5,), latent_dim=2,
                        noise="masking", noise_level=0.5).double()
    x = np.random.default_rng(2).random((3, 1, 4, 4))
    ae.manual_seed(9)
    loss, _ = model.loss(x)
    ae.manual_seed(9)
    noisy = model.corrupt(x)
    expected, _ = model.base.loss(noisy, target=x)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-12)
    assert not np.array_equal(noisy, x)


# ---------------------------------------------------------------------------- evaluation
def test_psnr():
    a = np.zeros((2, 1, 2, 2))
    b = np.stack([np.full((1, 2, 2), 0.1), np.full((1, 2, 2), 0.01)])
    np.testing.assert_allclose(psnr_array(a, b), [20.0, 40.0])


def test_evaluate_dae_reports_psnr_and_repeats_without_disturbing_the_stream():
    model = build_model("dae", input_shape=(1, 6, 6), hidden=(8,), latent_dim=3,
                        noise="gaussian", noise_level=0.3)
    x = np.random.default_rng(3).random((10, 1, 6, 6)).astype(np.float32)
    ae.manual_seed(1)
    state = ae_random.get_rng_state()
    first = evaluate(model, x, batch_size=4)
    assert ae_random.get_rng_state() == state
    assert evaluate(model, x, batch_size=3) == pytest.approx(first)
    assert set(first) == {"bce", "mse", "psnr_noisy", "psnr_denoised"}
    # psnr_noisy by hand, with the same seeded draws
    with ae.models.base.fixed_noise(0):
        noisy = np.concatenate([model.corrupt(x[i:i + 4]) for i in range(0, 10, 4)])
    assert first["psnr_noisy"] == pytest.approx(psnr_array(noisy, x).mean(), rel=1e-9)
    assert model.training  # restored


def test_evaluate_ae_matches_loss_and_vae_reports_nelbo():
    model = build_model("ae", input_shape=(1, 5, 5), hidden=(4,), latent_dim=2).double()
    x = np.random.default_rng(4).random((6, 1, 5, 5))
    metrics = evaluate(model, x, batch_size=4)
    assert metrics["bce"] == pytest.approx(model.loss(x)[1]["bce"], rel=1e-12)
    vae = build_model("vae", input_shape=(1, 5, 5), hidden=(4,), latent_dim=2).double()
    result = evaluate(vae, x, batch_size=6, seed=3)
    with ae.models.base.fixed_noise(3):
        _, m = vae.loss(x)
    assert result["nelbo"] == pytest.approx(m["nelbo"], rel=1e-9)
    assert result["nelbo"] == pytest.approx(result["bce"] * 25 + result["kl"], rel=1e-9)


# ---------------------------------------------------------------------------- anomaly scoring
def test_reconstruction_errors_and_threshold():
    model = build_model("ae", input_shape=(1, 4, 4), hidden=(3,), latent_dim=2)
    x = np.random.default_rng(5).random((9, 1, 4, 4)).astype(np.float32)
    errors = reconstruction_errors(model, x, batch_size=4)
    p = model.reconstruct(x).numpy()
    np.testing.assert_allclose(errors, ((p - x) ** 2).reshape(9, -1).mean(axis=1), rtol=1e-6)
    bce = reconstruction_errors(model, x, batch_size=2, metric="bce")
    assert bce.shape == (9,) and (bce > 0).all()
    threshold = pick_threshold(errors, 0.5)
    assert threshold == pytest.approx(np.median(errors))
    assert flag(errors, threshold).sum() == 4
    with pytest.raises(ValueError, match="quantile"):
        pick_threshold(errors, 1.5)
    with pytest.raises(ValueError, match="metric"):
        reconstruction_errors(model, x, metric="l1")


def test_vae_and_dae_scores_are_deterministic():
    for kind in ("vae", "dae"):
        model = build_model(kind, input_shape=(1, 4, 4), hidden=(3,), latent_dim=2)
        x = np.random.default_rng(6).random((5, 1, 4, 4)).astype(np.float32)
        np.testing.assert_array_equal(reconstruction_errors(model, x), reconstruction_errors(model, x))


def test_roc_auc_against_brute_force():
    rng = np.random.default_rng(7)
    scores = np.round(rng.random(40), 1)  # with ties
    labels = rng.random(40) < 0.3
    pos, neg = scores[labels], scores[~labels]
    brute = np.mean([(p > n) + 0.5 * (p == n) for p in pos for n in neg])
    assert roc_auc(scores, labels) == pytest.approx(brute)
    assert roc_auc([0.1, 0.2, 0.9], [False, False, True]) == 1.0
