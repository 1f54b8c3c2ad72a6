"""The Keras tutorials of examples/keras/ run end to end on --quick settings (in this process,
so the kernels compiled by the other tests are reused), write their numbers and pictures, and
make the claims they make to their readers."""

import contextlib
import importlib.util
import io
import json
import math
from pathlib import Path

import numpy as np
import pytest

from aecore.io.png import read_png

KERAS_EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "keras"
TUTORIALS = sorted(p.name for p in KERAS_EXAMPLES.glob("*.py") if p.name != "keras_port.py")


def load_tutorial(name):
    spec = importlib.util.spec_from_file_location(f"aecore_keras_{Path(name).stem}",
                                                  KERAS_EXAMPLES / name)
    module = importlib.util.module_from_spec(spec)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        spec.loader.exec_module(module)
    assert printed.getvalue() == "", f"importing {name} printed (it must do its work in main())"
    return module


def run_tutorial(name, out, *extra):
    module = load_tutorial(name)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        result = module.main(["--quick", "--out", str(out), *extra])
    return result, printed.getvalue()


def finite_numbers(value):
    """Every number inside a results structure."""
    if isinstance(value, dict):
        for v in value.values():
            yield from finite_numbers(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from finite_numbers(v)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        yield value


def test_the_five_tutorials_are_there():
    assert len(TUTORIALS) == 5, TUTORIALS


@pytest.mark.parametrize("name", TUTORIALS)
def test_tutorial_runs_quick_and_writes_numbers_and_pictures(name, tmp_path):
    result, printed = run_tutorial(name, tmp_path, "--data", "synthetic")
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved == json.loads(json.dumps(result)), "results.json differs from what main returned"
    numbers = list(finite_numbers({k: v for k, v in saved.items() if k != "pictures"}))
    assert numbers and all(math.isfinite(v) for v in numbers)
    assert saved["pictures"], "no pictures written"
    for path in saved["pictures"].values():
        picture = read_png(path)
        assert picture.shape[0] > 28 and picture.shape[1] > 28
    assert "epoch 1/1" in printed


@pytest.mark.parametrize("name", TUTORIALS)
def test_tutorial_answers_help(name):
    module = load_tutorial(name)
    with contextlib.redirect_stdout(io.StringIO()), pytest.raises(SystemExit) as exit_info:
        module.main(["--help"])
    assert exit_info.value.code == 0


def test_a_missing_data_set_is_one_line(tmp_path):
    module = load_tutorial("conv_autoencoder.py")
    with pytest.raises(SystemExit) as exit_info:
        module.main(["--quick", "--out", str(tmp_path), "--data", str(tmp_path / "nothing-here")])
    message = str(exit_info.value.code)
    assert message.startswith("error: ") and "\n" not in message


def test_conv_autoencoder_denoiser_on_real_mnist(tmp_path, mnist_dir):
    """The classic tutorial's claims on real digits: the denoiser beats its noisy input."""
    result, _ = run_tutorial("conv_autoencoder.py", tmp_path, "--data", str(mnist_dir),
                             "--limit", "1200", "--epochs", "2")
    assert result["data"] == "mnist"
    for model in ("autoencoder", "denoiser"):
        losses = result[model]
        assert losses["val_loss"][-1] < losses["val_loss"][0] < 0.7
    assert result["denoiser"]["psnr_denoised"] > result["denoiser"]["psnr_noisy"]


def mean_image_psnr(data_dir, limit):
    """The held-out PSNR of the training images' mean, split as the tutorials split: the score
    of a model that ignores its input, which a working autoencoder must beat."""
    from aecore.data import load_dataset, split_dataset
    train, held_out = split_dataset(load_dataset(str(data_dir), n=limit, seed=0),
                                    val_fraction=0.2, seed=0)
    error = (held_out.images - train.images.mean(0)) ** 2          # (N, 1, 28, 28)
    return float(np.mean(10 * np.log10(1 / error.reshape(len(error), -1).mean(1))))


def test_dense_autoencoder_is_784_64_32_16_32_64_784_before_its_output_activation():
    from aecore import nn
    module = load_tutorial("dense_autoencoder.py")
    model = module.dense_autoencoder(784)
    sizes = [(layer.in_features, layer.out_features) for layer in model
             if isinstance(layer, nn.Linear)]
    assert sizes == [(784, 64), (64, 32), (32, 16), (16, 32), (32, 64), (64, 784)]
    assert isinstance(model[-1], nn.Linear)


def test_dense_autoencoder_losses_apply_the_output_activation():
    """The sigmoid lives in the loss: Keras' clipped cross-entropy of the sigmoid's output (the
    same away from saturation), the MSE of that output, or the MSE of the linear output."""
    import aecore as ae
    from aecore import losses
    module = load_tutorial("dense_autoencoder.py")
    rng = np.random.default_rng(0)
    logits, target = rng.normal(0, 2, (4, 10)), rng.uniform(0, 1, (4, 10))
    sigmoid = 1 / (1 + np.exp(-logits))
    expected = {
        ("binary_crossentropy", "sigmoid"):
            losses.keras_binary_crossentropy(ae.tensor(target), ae.tensor(sigmoid)).item(),
        ("mse", "sigmoid"): np.mean((sigmoid - target) ** 2),
        ("mse", "linear"): np.mean((logits - target) ** 2),
    }
    for (loss, output), value in expected.items():
        got = module.loss_function(loss, output)(ae.tensor(logits), ae.tensor(target)).item()
        assert got == pytest.approx(value, rel=1e-6), (loss, output)


def test_dense_autoencoder_refuses_cross_entropy_on_a_linear_output(tmp_path, capsys):
    module = load_tutorial("dense_autoencoder.py")
    with pytest.raises(SystemExit) as exit_info:
        module.main(["--quick", "--out", str(tmp_path), "--data", "synthetic",
                     "--output", "linear"])
    assert exit_info.value.code == 2
    assert "error: --loss binary_crossentropy needs probabilities" in capsys.readouterr().err
    assert not (tmp_path / "results.json").exists()


@pytest.mark.parametrize("loss, output", [("binary_crossentropy", "sigmoid"), ("mse", "linear")])
def test_dense_autoencoder_beats_the_mean_image_on_real_mnist(tmp_path, mnist_dir, loss, output):
    """Both losses learn digits: a lower held-out loss, a PSNR no input-blind model reaches."""
    result, printed = run_tutorial("dense_autoencoder.py", tmp_path, "--data", str(mnist_dir),
                                   "--limit", "1200", "--epochs", "20", "--loss", loss,
                                   "--output", output)
    assert "shapes: 784 -> 64 -> 32 -> 16 -> 32 -> 64 -> 784" in printed
    assert (result["loss_function"], result["output_activation"]) == (loss, output)
    history = result["autoencoder"]
    assert history["val_loss"][-1] < 0.8 * history["val_loss"][0]
    assert history["psnr"] > mean_image_psnr(mnist_dir, 1200) + 0.5


def test_strided_conv_autoencoders_shapes(tmp_path):
    """The shapes the docstring and comments give, printed and saved for both models."""
    result, printed = run_tutorial("strided_conv_autoencoder.py", tmp_path, "--data", "synthetic")
    expected = {
        "strided": "1x28x28 -> 16x14x14 -> 8x7x7 -> 8x14x14 -> 16x28x28 -> 1x28x28",
        "padded_to_32": "1x28x28 -> 1x32x32 -> 16x16x16 -> 8x8x8 -> 8x16x16 -> 16x32x32 -> "
                        "1x32x32 -> 1x28x28",
    }
    for name, shapes in expected.items():
        assert result[name]["shapes"] == shapes
        assert f"shapes: {shapes}" in printed


def test_strided_conv_autoencoder_refuses_sides_not_divisible_by_4(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (20, 30, 30), dtype=np.uint8)
    np.savez(tmp_path / "thirty.npz", x_train=images)
    module = load_tutorial("strided_conv_autoencoder.py")
    with contextlib.redirect_stdout(io.StringIO()), pytest.raises(SystemExit) as exit_info:
        module.main(["--quick", "--out", str(tmp_path), "--data", str(tmp_path / "thirty.npz")])
    assert str(exit_info.value.code) == ("error: the strided models need image sides divisible "
                                         "by 4, got 30 x 30")


def test_strided_conv_autoencoders_beat_the_mean_image_on_real_mnist(tmp_path, mnist_dir):
    result, _ = run_tutorial("strided_conv_autoencoder.py", tmp_path, "--data", str(mnist_dir),
                             "--limit", "2000", "--epochs", "4")
    baseline = mean_image_psnr(mnist_dir, 2000)
    for name in ("strided", "padded_to_32"):
        history = result[name]
        assert history["val_loss"][-1] < history["val_loss"][0] < 0.7
        assert history["psnr"] > baseline + 1.0


def test_vae_is_the_keras_model_with_the_keras_loss():
    """The VAE tutorial's model and loss without training: Keras' parameter counts and shapes,
    its loss written out in NumPy (BCE of the sigmoid from its logits, summed over pixels, KL
    summed over the latent, both averaged over the batch), and that loss's gradient."""
    import aecore as ae
    vae_tutorial = load_tutorial("vae.py")
    vae = vae_tutorial.VAE()

    def count(*modules):
        return sum(p.data.size for m in modules for p in m.parameters())
    assert count(vae.encoder, vae.z_mean, vae.z_log_var) == 69_076   # Keras' encoder.summary()
    assert count(vae.decoder) == 65_089                              # Keras' decoder.summary()
    reconstruction, z_mean, z_log_var = vae(ae.tensor(np.zeros((3, 1, 28, 28), np.float32)))
    assert reconstruction.shape == (3, 1, 28, 28) and z_mean.shape == z_log_var.shape == (3, 2)

    rng = np.random.default_rng(1)
    images = rng.random((4, 1, 6, 6))
    logits = rng.normal(0, 3, images.shape)
    logits[0, 0, 0, :2] = [40.0, -40.0]                 # saturated: no clip, the loss keeps growing
    mean, log_var = rng.normal(size=(4, 2)), rng.normal(size=(4, 2))
    total, reconstruction_loss, kl_loss = vae_tutorial.vae_losses(
        images, ae.tensor(logits, dtype=np.float64), ae.tensor(mean, dtype=np.float64),
        ae.tensor(log_var, dtype=np.float64))
    bce = np.logaddexp(0, logits) - images * logits    # -(y log p + (1 - y) log(1 - p)), p = sigmoid
    kl = -0.5 * (1 + log_var - mean ** 2 - np.exp(log_var))
    assert reconstruction_loss.item() == pytest.approx(bce.sum(axis=(1, 2, 3)).mean(), rel=1e-12)
    assert kl_loss.item() == pytest.approx(kl.sum(axis=1).mean(), rel=1e-12)
    assert total.item() == pytest.approx(reconstruction_loss.item() + kl_loss.item(), rel=1e-12)

    inside = [ae.tensor(logits, requires_grad=True, dtype=np.float64),
              ae.tensor(mean, requires_grad=True, dtype=np.float64),
              ae.tensor(log_var, requires_grad=True, dtype=np.float64)]
    assert ae.gradcheck(lambda *t: vae_tutorial.vae_losses(images, *t)[0], inside)


def test_vae_sampling_layer_draws_seeded_z_with_the_kl_terms_variance():
    """Sampling: z = z_mean + exp(0.5 * z_log_var) * eps, so z_log_var is log sigma^2 (what
    the KL term assumes); the same seed gives the same z; the gradient reaches both inputs."""
    import aecore as ae
    sample_z = load_tutorial("vae.py").sample_z
    n = 20_000
    mean = ae.tensor(np.tile([1.0, -2.0], (n, 1)), dtype=np.float64)
    log_var = ae.tensor(np.tile(np.log([4.0, 0.25]), (n, 1)), dtype=np.float64)
    ae.manual_seed(7)
    z = sample_z(mean, log_var).numpy()
    np.testing.assert_allclose(z.mean(axis=0), [1.0, -2.0], atol=0.06)        # 4 standard errors
    np.testing.assert_allclose(z.std(axis=0), [2.0, 0.5], rtol=0.03)
    ae.manual_seed(7)
    np.testing.assert_array_equal(sample_z(mean, log_var).numpy(), z)

    def sample_with_fixed_noise(z_mean, z_log_var):
        ae.manual_seed(0)                  # the same eps at every finite-difference evaluation
        return sample_z(z_mean, z_log_var)
    rng = np.random.default_rng(2)
    inputs = [ae.tensor(rng.normal(size=(3, 2)), requires_grad=True, dtype=np.float64)
              for _ in range(2)]
    assert ae.gradcheck(sample_with_fixed_noise, inputs)


def test_vae_names_fashion_mnist_classes_in_the_latent_space_legend():
    """Fashion-MNIST's labels get their ten names in a key beside the scatter; digits need none."""
    from aecore.data.dataset import Dataset
    vae_tutorial = load_tutorial("vae.py")
    images, labels = np.zeros((10, 1, 28, 28), np.float32), np.arange(10)
    fashion = Dataset(images, labels, "fashion-mnist", "test", None, {})
    names = vae_tutorial.class_names(fashion)
    assert len(names) == 10 and names[0] == "T-shirt/top" and names[9] == "Ankle boot"
    assert vae_tutorial.class_names(Dataset(images, labels, "mnist", "test", None, {})) is None
    codes = np.random.default_rng(0).normal(size=(10, 2))
    digits = vae_tutorial.latent_space(codes, labels)
    named = vae_tutorial.latent_space(codes, labels, names)
    assert named.shape[0] == digits.shape[0] and named.shape[1] > digits.shape[1]
    np.testing.assert_array_equal(named[:, :digits.shape[1]], digits)


def test_vae_learns_real_mnist(tmp_path, mnist_dir):
    """The VAE tutorial on real digits: the held-out loss falls, below 784 ln 2 (every pixel
    answered 0.5), and every epoch's total is its reconstruction plus its KL."""
    result, printed = run_tutorial("vae.py", tmp_path, "--data", str(mnist_dir),
                                   "--limit", "1200", "--epochs", "3")
    history = result["history"]
    assert result["data"] == "mnist" and result["latent_dim"] == 2
    assert set(history) == {"loss", "reconstruction_loss", "kl_loss",
                            "val_loss", "val_reconstruction_loss", "val_kl_loss"}
    assert all(len(values) == 3 for values in history.values())
    assert history["val_loss"][2] < history["val_loss"][0] < 784 * math.log(2)
    for prefix in ("", "val_"):
        for total, reconstruction, kl in zip(history[prefix + "loss"],
                                             history[prefix + "reconstruction_loss"],
                                             history[prefix + "kl_loss"]):
            assert kl >= 0 and total == pytest.approx(reconstruction + kl, rel=1e-6)
    assert "epoch 3/3" in printed


def test_document_denoiser_cleans_held_out_pages(tmp_path):
    """The Kaggle kernel's claim on small crops of the generated pages: the held-out loss falls
    and the denoised pages are closer to the clean ones than the dirty pages were; the dirty
    PSNR is that of the centre crops of make_documents' pages after the training ones."""
    from aecore.data import make_documents
    # batches of 1: 720 steps, so the BatchNormalization layers' running statistics (Keras'
    # momentum 0.99) have settled by the time the held-out pages are scored in eval mode
    result, printed = run_tutorial("document_denoiser.py", tmp_path, "--crop", "32x64",
                                   "--pages", "12", "--held-out", "4", "--epochs", "60",
                                   "--batch-size", "1", "--filters", "16,32")
    denoiser = result["denoiser"]
    assert (result["train_pages"], result["held_out_pages"]) == (12, 4)
    assert result["page_size"] == [32, 64] and "epoch 60/60" in printed
    assert denoiser["val_loss"][-1] < 0.5 * denoiser["val_loss"][0]
    assert denoiser["psnr_denoised"] > denoiser["psnr_dirty"] + 1.0     # measured: +3.5 dB
    dirty, clean = make_documents(16, seed=0)
    centre = np.s_[12:, :, 113:145, 238:302]       # (258 - 32) / 2 = 113, (540 - 64) / 2 = 238
    dirty_mse = ((dirty[centre].astype(np.float64) - clean[centre]) ** 2).mean(axis=(1, 2, 3))
    assert denoiser["psnr_dirty"] == pytest.approx(np.mean(10 * np.log10(1 / dirty_mse)))
