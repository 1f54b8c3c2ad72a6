"""The loss options a ported Keras tutorial chooses: reconstruction ("bce", "mse", "bce-keras"),
output ("sigmoid", "linear") and reduction ("mean", "sum"), on every model family.

Each option gives exactly its formula (against NumPy on a small model's outputs, float64); the
defaults stay as they were; the options survive config, build_model, checkpoints and the CLI;
bad combinations are refused in one line; a short run with each new option lowers the loss.
keras_binary_crossentropy, the primitive of "bce-keras", is checked on its own first.
"""

import json

import numpy as np
import pytest

import aecore as ae
from aecore.cli import main
from aecore.data import synthetic_digits
from aecore.io.checkpoint import load_checkpoint
from aecore.losses import keras_binary_crossentropy
from aecore.models import (AE, CAE, DAE, LOSS_REDUCTIONS, OUTPUTS, RECONSTRUCTIONS, VAE,
                           ModelConfigError, build_model, evaluate, from_config, model_options,
                           reconstruction_errors)

EPSILON = 1e-7  # Keras' backend epsilon


# ---------------------------------------------------------------------------- NumPy references
def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def bce_logits(z, y):
    return np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z)))


def keras_bce(p, y, epsilon=EPSILON):
    p = np.clip(p, epsilon, 1 - epsilon)
    return -(y * np.log(p) + (1 - y) * np.log1p(-p))  # log1p: log(1 - p) without rounding


def reconstruction_numpy(outputs, y, reconstruction, output, reduction):
    """Each image's reconstruction loss, (N,), from decoder outputs (logits or images)."""
    if reconstruction == "bce":
        elementwise = bce_logits(outputs, y)
    else:
        images = sigmoid(outputs) if output == "sigmoid" else outputs
        elementwise = keras_bce(images, y) if reconstruction == "bce-keras" else (images - y) ** 2
    per_pixel = elementwise.reshape(len(y), -1)
    return per_pixel.mean(axis=1) if reduction == "mean" else per_pixel.sum(axis=1)


def images(n, shape, seed=0):
    return np.random.default_rng(seed).random((n,) + tuple(shape))


def one_line(message):
    assert "\n" not in message, message
    return message


# every valid combination: a BCE needs probabilities, so output='linear' takes only 'mse'
LOSS_CASES = [dict(reconstruction=r, output=o, reduction=d)
              for r in RECONSTRUCTIONS for o in OUTPUTS for d in LOSS_REDUCTIONS
              if o == "sigmoid" or r == "mse"]
CASE_IDS = ["-".join(case.values()) for case in LOSS_CASES]


# ---------------------------------------------------------------------------- the primitive
def test_keras_bce_matches_the_clipped_formula_with_every_reduction():
    y_pred = np.array([[0.0, 1e-9, 0.3, 0.5], [0.9, 1 - 1e-9, 1.0, 0.02]])
    y_true = np.array([[0.0, 1.0, 0.2, 1.0], [1.0, 0.0, 1.0, 0.5]])
    expected = keras_bce(y_pred, y_true)
    assert expected.max() == pytest.approx(-np.log(EPSILON), rel=1e-6)  # the clip bounds it
    prediction = ae.tensor(y_pred)
    np.testing.assert_allclose(
        keras_binary_crossentropy(y_true, prediction, reduction="none").numpy(), expected,
        rtol=1e-12)
    assert keras_binary_crossentropy(y_true, prediction).item() == pytest.approx(expected.mean(),
                                                                                rel=1e-12)
    assert keras_binary_crossentropy(y_true, prediction, reduction="sum").item() == \
        pytest.approx(expected.sum(), rel=1e-12)
    looser = keras_binary_crossentropy(y_true, prediction, epsilon=1e-3, reduction="none")
    np.testing.assert_allclose(looser.numpy(), keras_bce(y_pred, y_true, 1e-3), rtol=1e-12)


def test_keras_bce_from_logits_is_the_stable_form():
    logits = np.array([[-1e4, -3.0, 0.0], [2.5, 40.0, 1e4]])
    y_true = np.array([[0.0, 1.0, 0.5], [1.0, 0.0, 1.0]])
    loss = keras_binary_crossentropy(y_true, ae.tensor(logits), from_logits=True, reduction="none")
    np.testing.assert_allclose(loss.numpy(), bce_logits(logits, y_true), rtol=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_keras_bce_gradcheck_away_from_the_clip(seed):
    rng = np.random.default_rng(seed)
    y_pred = ae.tensor(rng.uniform(0.05, 0.95, (3, 4)), requires_grad=True)
    y_true = ae.tensor(rng.random((3, 4)), requires_grad=True)
    for reduction in ("none", "mean", "sum"):
        assert ae.gradcheck(lambda t, p: keras_binary_crossentropy(t, p, reduction=reduction),
                            [y_true, y_pred], atol=1e-7, rtol=1e-5)


def test_keras_bce_gradient_is_exactly_zero_where_clipped():
    y_pred = np.array([0.0, 1e-9, 0.4, 1 - 1e-9, 1.0, 0.7])
    y_true = np.array([1.0, 0.5, 0.0, 0.2, 0.0, 1.0])
    prediction = ae.tensor(y_pred, requires_grad=True)
    keras_binary_crossentropy(y_true, prediction, reduction="sum").backward()
    clipped = (y_pred < EPSILON) | (y_pred > 1 - EPSILON)
    grad = np.asarray(prediction.grad)
    assert np.all(grad[clipped] == 0.0)
    inside = ~clipped
    p, y = y_pred[inside], y_true[inside]
    np.testing.assert_allclose(grad[inside], (p - y) / (p * (1 - p)), rtol=1e-12)


@pytest.mark.parametrize("call, error, words", [
    (lambda p: keras_binary_crossentropy(np.zeros(3), p.numpy()), TypeError, "y_pred"),
    (lambda p: keras_binary_crossentropy(np.zeros(2), p), ValueError, "y_true shape"),
    (lambda p: keras_binary_crossentropy(np.zeros(3), p, from_logits=1), TypeError, "from_logits"),
    (lambda p: keras_binary_crossentropy(np.zeros(3), p, epsilon=0.0), ValueError, "epsilon"),
    (lambda p: keras_binary_crossentropy(np.zeros(3), p, reduction="avg"), ValueError,
     "reduction"),
], ids=["numpy-y_pred", "shape", "from_logits", "epsilon", "reduction"])
def test_keras_bce_bad_arguments_are_one_line(call, error, words):
    with pytest.raises(error) as info:
        call(ae.tensor(np.full(3, 0.5)))
    assert words in one_line(str(info.value))


# ---------------------------------------------------------------------------- AE and CAE
def deterministic(kind, **options):
    if kind == "ae":
        return AE(input_shape=(1, 4, 4), hidden=(6,), latent_dim=3, **options).double()
    return CAE(input_shape=(1, 4, 4), filters=(2,), **options).double()


@pytest.mark.parametrize("kind", ["ae", "cae"])
@pytest.mark.parametrize("options", LOSS_CASES, ids=CASE_IDS)
def test_deterministic_loss_is_the_chosen_formula(kind, options):
    model = deterministic(kind, **options)
    x = images(5, (1, 4, 4))
    loss, metrics = model.loss(x)
    with ae.no_grad():
        outputs = model(x).numpy()
    per_image = reconstruction_numpy(outputs, x, **options)
    assert loss.item() == pytest.approx(per_image.mean(), rel=1e-12)
    # the metric named after the reconstruction is per pixel whatever the reduction
    per_pixel = per_image.mean() / (16 if options["reduction"] == "sum" else 1)
    assert metrics[options["reconstruction"]] == pytest.approx(per_pixel, rel=1e-12)
    if options["reduction"] == "sum":
        assert metrics["recon"] == pytest.approx(per_image.mean(), rel=1e-12)
    if options["output"] == "sigmoid":
        assert metrics["bce"] == pytest.approx(bce_logits(outputs, x).mean(), rel=1e-12)
    else:  # no BCE of unbounded outputs
        assert set(metrics) == {"mse"} | ({"recon"} if options["reduction"] == "sum" else set())


@pytest.mark.parametrize("options", LOSS_CASES, ids=CASE_IDS)
def test_deterministic_loss_gradcheck(options):
    """d loss / d parameters vs central differences (float64; the logits stay far from the
    clip, where bce-keras has the gradient of the unclipped formula)."""
    model = AE(input_shape=(1, 2, 3), hidden=(3,), latent_dim=2, activation="tanh",
               code_activation="tanh", **options).double()
    x = images(3, (1, 2, 3), 6)
    with ae.use_tier("ref"):  # the model's graph is checked here, not the kernels' tiers
        assert ae.gradcheck(lambda *_: model.loss(x)[0], list(model.parameters()),
                            atol=1e-7, rtol=1e-5)


def test_bce_keras_model_gets_no_gradient_where_the_sigmoid_saturates():
    """Pixels whose logits push sigmoid past 1 - 1e-7 (or below 1e-7) are clipped: their loss is
    -log(1e-7) at worst and the output bias of those pixels gets no gradient, as in Keras."""
    model = AE(input_shape=(1, 2, 2), hidden=(), latent_dim=2,
               reconstruction="bce-keras").double()
    out_layer = model.decoder.layers[-1]
    out_layer.bias.data[:] = [40.0, -40.0, 0.0, 0.5]  # pixels 0 and 1 saturate
    x = images(3, (1, 2, 2), 4)
    loss, _ = model.loss(x)
    with ae.no_grad():
        outputs = model(x).numpy()
    assert loss.item() == pytest.approx(
        reconstruction_numpy(outputs, x, "bce-keras", "sigmoid", "mean").mean(), rel=1e-12)
    loss.backward()
    bias_grad = np.asarray(out_layer.bias.grad)
    assert np.all(bias_grad[:2] == 0.0) and np.all(bias_grad[2:] != 0.0)
    stable = AE(input_shape=(1, 2, 2), hidden=(), latent_dim=2).double()
    stable.load_state_dict(model.state_dict())
    stable.loss(x)[0].backward()  # the logits form still learns there
    assert np.all(np.asarray(stable.decoder.layers[-1].bias.grad)[:2] != 0.0)


def test_linear_output_reconstructs_pictures_and_scores_the_outputs_as_they_are():
    model = deterministic("ae", output="linear", reconstruction="mse")
    x = images(4, (1, 4, 4), 2)
    with ae.no_grad():
        outputs = model(x).numpy()
    np.testing.assert_array_equal(model.reconstruct(x).numpy(), outputs)
    np.testing.assert_allclose(model.interpolate(x[0], x[1], steps=2).numpy()[[0, -1]],
                               outputs[:2], rtol=1e-12)
    terms = model.evaluation_terms(x)
    assert list(terms) == ["mse"]
    mse = ((outputs - x) ** 2).reshape(4, -1).mean(axis=1)
    np.testing.assert_allclose(terms["mse"], mse, rtol=1e-12)
    np.testing.assert_allclose(reconstruction_errors(model, x), mse, rtol=1e-12)
    with pytest.raises(ValueError) as info:
        reconstruction_errors(model, x, metric="bce")
    assert "output='linear'" in one_line(str(info.value))


# ---------------------------------------------------------------------------- VAE
@pytest.mark.parametrize("options", LOSS_CASES, ids=CASE_IDS)
def test_vae_loss_is_the_chosen_reconstruction_plus_beta_kl(options):
    beta = 0.5
    model = VAE(input_shape=(1, 3, 3), hidden=(5,), latent_dim=2, beta=beta, **options).double()
    x = images(4, (1, 3, 3))
    ae.manual_seed(11)
    loss, metrics = model.loss(x)
    ae.manual_seed(11)  # the same z
    with ae.no_grad():
        _, _, _, outputs, _ = model.loss_terms(x)
        mu, logvar = (t.numpy() for t in model.encode(x))
    outputs = outputs.numpy()
    recon = reconstruction_numpy(outputs, x, **options)
    kl = -0.5 * (1 + logvar - mu ** 2 - np.exp(logvar)).sum(axis=1)
    assert loss.item() == pytest.approx((recon + beta * kl).mean(), rel=1e-12)
    assert metrics["recon"] == pytest.approx(recon.mean(), rel=1e-12)
    assert metrics["kl"] == pytest.approx(kl.mean(), rel=1e-12)
    if options["output"] == "sigmoid":  # nelbo: summed BCE + KL at beta 1, whatever is trained
        bce = bce_logits(outputs, x).reshape(4, -1)
        assert metrics["nelbo"] == pytest.approx((bce.sum(axis=1) + kl).mean(), rel=1e-12)
        assert metrics["bce"] == pytest.approx(bce.mean(), rel=1e-12)
    else:
        assert set(metrics) == {"recon", "kl", "mse"}
        assert metrics["mse"] == pytest.approx(((outputs - x) ** 2).mean(), rel=1e-12)


@pytest.mark.parametrize("output", OUTPUTS)
def test_vae_samples_are_the_images_of_the_decoded_prior(output):
    model = VAE(input_shape=(1, 3, 3), hidden=(4,), latent_dim=2, output=output,
                reconstruction="mse").double()
    z = np.random.default_rng(7).standard_normal((5, 2))  # what sample(seed=7) draws
    with ae.no_grad():
        decoded = model.decode(ae.tensor(z)).numpy()
    expected = sigmoid(decoded) if output == "sigmoid" else decoded
    np.testing.assert_allclose(model.sample(5, seed=7).numpy(), expected, rtol=1e-12)
    terms = evaluate(model, images(6, (1, 3, 3)))
    assert set(terms) == ({"nelbo", "bce", "recon", "kl"} if output == "sigmoid"
                          else {"mse", "recon", "kl"})


# ---------------------------------------------------------------------------- DAE
def test_dae_trains_and_reports_with_its_base_models_loss_options():
    model = DAE(base="ae", input_shape=(1, 3, 3), hidden=(4,), latent_dim=2, output="linear",
                reconstruction="mse", reduction="sum", noise="gaussian", noise_level=0.3).double()
    assert (model.output, model.reconstruction, model.reduction) == ("linear", "mse", "sum")
    assert model.config["base"]["output"] == "linear"
    x = images(4, (1, 3, 3), 3)
    ae.manual_seed(5)
    loss, _ = model.loss(x)
    ae.manual_seed(5)  # the same corruption
    noisy = model.corrupt(x)
    with ae.no_grad():
        outputs = model.base(noisy).numpy()
    assert loss.item() == pytest.approx(((outputs - x) ** 2).reshape(4, -1).sum(axis=1).mean(),
                                        rel=1e-12)
    np.testing.assert_array_equal(model.reconstruct(noisy).numpy(), outputs)
    assert list(model.evaluation_terms(x)) == ["mse", "psnr_noisy", "psnr_denoised"]


# ---------------------------------------------------------------------------- defaults, configs
@pytest.mark.parametrize("kind, reduction, metric_names, evaluation_names", [
    ("ae", "mean", ["bce"], ["bce", "mse"]),
    ("cae", "mean", ["bce"], ["bce", "mse"]),
    ("dae", "mean", ["bce"], ["bce", "mse", "psnr_noisy", "psnr_denoised"]),
    ("vae", "sum", ["recon", "kl", "bce", "nelbo"], ["nelbo", "bce", "recon", "kl"]),
])
def test_defaults_and_their_metric_names_are_unchanged(kind, reduction, metric_names,
                                                       evaluation_names):
    model = build_model(kind, input_shape=(1, 8, 8), **({"filters": (2,)} if kind == "cae" else {}))
    assert (model.reconstruction, model.output, model.reduction) == ("bce", "sigmoid", reduction)
    config = model.config["base"] if kind == "dae" else model.config
    assert (config["reconstruction"], config["output"], config["reduction"]) == \
        ("bce", "sigmoid", reduction)
    x = images(3, (1, 8, 8)).astype(np.float32)
    assert list(model.loss(x)[1]) == metric_names
    assert list(model.evaluation_terms(x)) == evaluation_names


@pytest.mark.parametrize("kind, options", [
    ("ae", dict(output="linear", reconstruction="mse", reduction="sum")),
    ("cae", dict(filters=(2,), reconstruction="bce-keras", reduction="sum")),
    ("vae", dict(reconstruction="bce-keras", reduction="mean", beta=0.01)),
    ("vae", dict(encoder="conv", filters=(2,), output="linear", reconstruction="mse")),
    ("dae", dict(base="cae", filters=(2,), output="linear", reconstruction="mse")),
], ids=["ae", "cae", "vae", "vae-conv", "dae-cae"])
def test_loss_options_survive_build_model_and_config(kind, options):
    model = build_model(kind, input_shape=(1, 8, 8), **options)
    config = json.loads(json.dumps(model.config))
    rebuilt = from_config(config)
    assert rebuilt.config == model.config
    loss_options = {k: v for k, v in options.items()
                    if k in ("reconstruction", "output", "reduction")}
    assert {k: getattr(rebuilt, k) for k in loss_options} == loss_options
    assert {"reconstruction", "output", "reduction"} <= set(model_options(kind, "ae"))


def test_a_config_saved_before_the_options_existed_gets_the_defaults():
    for kind, reduction in (("ae", "mean"), ("vae", "sum")):
        config = build_model(kind, input_shape=(1, 4, 4)).config
        old = {k: v for k, v in config.items() if k not in ("output", "reduction")}
        model = from_config(old)
        assert (model.output, model.reduction) == ("sigmoid", reduction)


@pytest.mark.parametrize("kind", ["ae", "cae", "vae", "dae"])
@pytest.mark.parametrize("reconstruction", ["bce", "bce-keras"])
def test_linear_output_with_a_bce_is_refused_in_one_line(kind, reconstruction):
    with pytest.raises(ModelConfigError) as info:
        build_model(kind, input_shape=(1, 4, 4), output="linear", reconstruction=reconstruction)
    message = one_line(str(info.value))
    assert "output='linear'" in message and f"reconstruction={reconstruction!r}" in message


@pytest.mark.parametrize("option, value", [("output", "tanh"), ("reduction", "none"),
                                           ("reconstruction", "bce_keras")])
def test_a_bad_loss_option_value_names_the_option(option, value):
    with pytest.raises(ModelConfigError) as info:
        build_model("ae", input_shape=(1, 4, 4), **{option: value})
    message = one_line(str(info.value))
    assert message.startswith(option) and repr(value) in message


# ---------------------------------------------------------------------------- the command line
TINY_FLAGS = ["--hidden", "16", "--latent-dim", "2", "--data", "synthetic", "--limit", "64",
              "--batch-size", "32", "--epochs", "1", "--seed", "0", "--quiet", "--no-pictures"]


@pytest.mark.parametrize("flags, expected", [
    (["--model", "ae", "--output", "linear", "--reconstruction", "mse", "--reduction", "sum"],
     dict(output="linear", reconstruction="mse", reduction="sum")),
    (["--model", "vae", "--reconstruction", "bce-keras", "--reduction", "mean"],
     dict(output="sigmoid", reconstruction="bce-keras", reduction="mean")),
], ids=["ae-linear", "vae-bce-keras"])
def test_cli_flags_reach_the_model_and_its_checkpoint(tmp_path, flags, expected):
    out = tmp_path / "run"
    assert main(["train", *flags, *TINY_FLAGS, "--out", str(out)]) == 0
    model_config = load_checkpoint(out).config["model_config"]
    assert {k: model_config[k] for k in expected} == expected
    assert main(["reconstruct", str(out), "--n", "4", "--out", str(tmp_path / "pictures")]) == 0


def test_cli_refuses_a_linear_output_with_bce_in_one_line(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--model", "ae", "--output", "linear", *TINY_FLAGS,
                 "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "output='linear'" in one_line(err) and "reconstruction" in err
    assert not out.exists()


# ---------------------------------------------------------------------------- training
@pytest.fixture(scope="module")
def digits():
    """(training images, held-out images) of the synthetic digits, 28 x 28."""
    pictures, _ = synthetic_digits(256 + 96, seed=1)
    return pictures[96:], pictures[:96]


@pytest.mark.parametrize("kind, options, metric", [
    ("ae", dict(output="linear", reconstruction="mse"), "mse"),
    ("ae", dict(reconstruction="bce-keras"), "bce"),
    ("ae", dict(reduction="sum"), "bce"),
    ("cae", dict(filters=(8, 8, 4), reconstruction="bce-keras", reduction="sum"), "bce"),
    ("dae", dict(base="ae", output="linear", reconstruction="mse", noise="gaussian",
                 noise_level=0.3), "mse"),
    ("vae", dict(hidden=(64,), latent_dim=4, reconstruction="bce-keras", reduction="mean",
                 beta=0.01), "nelbo"),
    ("vae", dict(hidden=(64,), latent_dim=4, output="linear", reconstruction="mse"), "mse"),
], ids=["ae-linear-mse", "ae-bce-keras", "ae-sum", "cae-bce-keras-sum", "dae-linear",
        "vae-bce-keras-mean", "vae-linear"])
def test_training_with_each_new_option_lowers_the_loss(digits, kind, options, metric):
    ae.manual_seed(0)
    model = build_model(kind, **options)
    training, held_out = digits
    before = evaluate(model, held_out)[metric]
    optimizer = ae.optim.Adam(model.parameters(), lr=1e-2)
    rng = np.random.default_rng(0)
    losses = []
    for _ in range(30):
        optimizer.zero_grad()
        loss, _ = model.loss(training[rng.choice(len(training), 32, replace=False)])
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert np.all(np.isfinite(losses))
    assert np.mean(losses[-5:]) < 0.7 * np.mean(losses[:5]), losses
    assert evaluate(model, held_out)[metric] < 0.7 * before
