"""Loss values against NumPy; the VAE loss gradient (gradcheck, float64, noise fixed); the
contractive penalty against a finite-difference Jacobian, and gradchecked."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import aecore as ae
from aecore.models import AE, VAE, build_model, dense_jacobian_frobenius
from aecore.models.regularizers import numeric_jacobian


def bce_logits(z, y):
    return np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z)))


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def act(name, a):
    return {"relu": lambda v: np.maximum(v, 0), "sigmoid": sigmoid, "tanh": np.tanh,
            "linear": lambda v: v, "softplus": lambda v: np.log1p(np.exp(v))}[name](a)


def dense_numpy(layers, activations, x):
    for (w, b), name in zip(layers, activations):
        x = act(name, x @ w.T + b)
    return x


def stack_params(stack):
    return [(layer.weight.numpy().astype(np.float64), layer.bias.numpy().astype(np.float64))
            for layer in stack.layers]


def images(n, shape, seed=0, dtype=np.float64):
    return np.random.default_rng(seed).random((n,) + shape).astype(dtype)


# ---------------------------------------------------------------------------- AE
@pytest.mark.parametrize("reconstruction", ["bce", "mse"])
def test_ae_loss_matches_numpy(reconstruction):
    model = AE(input_shape=(1, 4, 4), hidden=(6,), latent_dim=3, sparse=0.05,
               reconstruction=reconstruction).double()
    x = images(5, (1, 4, 4))
    loss, metrics = model.loss(x)
    flat = x.reshape(5, -1)
    code = dense_numpy(stack_params(model.encoder), model.encoder.activations, flat)
    logits = dense_numpy(stack_params(model.decoder), model.decoder.activations, code)
    if reconstruction == "bce":
        recon = bce_logits(logits, flat).mean()
    else:
        recon = ((sigmoid(logits) - flat) ** 2).mean()
    expected = recon + 0.05 * np.abs(code).sum() / 5
    assert loss.item() == pytest.approx(expected, rel=1e-12)
    assert "loss" not in metrics  # the trainer logs the loss Tensor itself
    assert metrics["bce"] == pytest.approx(bce_logits(logits, flat).mean(), rel=1e-12)
    assert metrics["sparse"] == pytest.approx(np.abs(code).sum() / 5, rel=1e-12)


def test_loss_target_differs_from_input():
    model = AE(input_shape=(1, 2, 2), hidden=(), latent_dim=2).double()
    x, target = images(3, (1, 2, 2), 1), images(3, (1, 2, 2), 2)
    loss, _ = model.loss(x, target=target)
    logits = model(x).numpy().reshape(3, -1)
    assert loss.item() == pytest.approx(bce_logits(logits, target.reshape(3, -1)).mean(), rel=1e-12)


# ---------------------------------------------------------------------------- VAE
@pytest.mark.parametrize("beta", [1.0, 0.25, 4.0])
def test_vae_loss_is_summed_bce_plus_beta_kl(beta):
    model = VAE(input_shape=(1, 3, 3), hidden=(5,), latent_dim=2, beta=beta).double()
    x = images(4, (1, 3, 3))
    ae.manual_seed(11)
    loss, metrics = model.loss(x)
    eps = np.random.default_rng(11).standard_normal((4, 2))  # the same draw aecore.random made
    flat = x.reshape(4, -1)
    h = dense_numpy(stack_params(model.body), model.body.activations, flat)
    mu = h @ model.mu.weight.numpy().T + model.mu.bias.numpy()
    logvar = np.clip(h @ model.logvar.weight.numpy().T + model.logvar.bias.numpy(), -30, 20)
    z = mu + np.exp(0.5 * logvar) * eps
    logits = dense_numpy(stack_params(model.decoder), model.decoder.activations, z)
    bce = bce_logits(logits, flat).sum(axis=1)
    kl = -0.5 * (1 + logvar - mu ** 2 - np.exp(logvar)).sum(axis=1)
    assert loss.item() == pytest.approx((bce + beta * kl).mean(), rel=1e-12)
    assert metrics["kl"] == pytest.approx(kl.mean(), rel=1e-12)
    assert metrics["recon"] == pytest.approx(bce.mean(), rel=1e-12)
    assert metrics["nelbo"] == pytest.approx((bce + kl).mean(), rel=1e-12)  # beta = 1 always
    assert metrics["bce"] == pytest.approx(bce.mean() / 9, rel=1e-12)


def test_vae_mse_reconstruction_is_summed_squared_error():
    model = VAE(input_shape=(1, 2, 2), hidden=(), latent_dim=1, reconstruction="mse").double()
    x = images(3, (1, 2, 2))
    ae.manual_seed(3)
    loss, metrics = model.loss(x)
    ae.manual_seed(3)
    _, recon, kl, logits, _ = model.loss_terms(x)
    p = sigmoid(logits.numpy())
    np.testing.assert_allclose(recon.numpy(), ((p - x) ** 2).reshape(3, -1).sum(axis=1), rtol=1e-12)
    assert metrics["nelbo"] == pytest.approx(
        (bce_logits(logits.numpy(), x).reshape(3, -1).sum(axis=1) + kl.numpy()).mean(), rel=1e-12)


def _vae_for_gradcheck(encoder, reconstruction, beta):
    if encoder == "dense":
        model = VAE(input_shape=(1, 3, 3), hidden=(4,), latent_dim=2, activation="tanh",
                    beta=beta, reconstruction=reconstruction)
    else:
        model = VAE(input_shape=(1, 4, 4), encoder="conv", filters=(2,), latent_dim=2,
                    activation="tanh", beta=beta, reconstruction=reconstruction)
    return model.double()


@settings(max_examples=6)
@given(encoder=st.sampled_from(["dense", "conv"]), reconstruction=st.sampled_from(["bce", "mse"]),
       beta=st.sampled_from([0.0, 0.5, 1.0, 3.0]), seed=st.integers(0, 2 ** 16))
def test_vae_loss_gradient_property(encoder, reconstruction, beta, seed):
    """d loss / d parameters vs central differences, float64, the noise re-seeded each call."""
    ae.manual_seed(seed)
    model = _vae_for_gradcheck(encoder, reconstruction, beta)
    x = images(2, model.input_shape, seed)
    params = list(model.parameters())

    def fn(*_):
        ae.manual_seed(seed + 1)  # the same eps at every evaluation
        return model.loss(x)[0]

    # The reference tier: this checks the model's graph, not the kernels (tested per tier
    # elsewhere), and Numba's thread start-up dominates on shapes this small.
    with ae.use_tier("ref"):
        assert ae.gradcheck(fn, params, eps=1e-6, atol=1e-6, rtol=1e-4)


def test_vae_reparameterization_uses_the_std():
    """z = mu + exp(0.5 logvar) eps: the empirical std of z is exp(0.5 logvar)."""
    model = VAE(input_shape=(1, 2, 2), hidden=(), latent_dim=1).double()
    mu = ae.tensor(np.full((20000, 1), 0.5))
    logvar = ae.tensor(np.full((20000, 1), np.log(4.0)))  # variance 4, std 2
    z = model.reparameterize(mu, logvar).numpy()
    assert z.mean() == pytest.approx(0.5, abs=0.05)
    assert z.std() == pytest.approx(2.0, rel=0.03)


# ---------------------------------------------------------------------------- contractive
@pytest.mark.parametrize("activations", [("sigmoid",), ("tanh", "sigmoid"),
                                         ("relu", "relu", "linear"), ("softplus", "tanh"),
                                         ("linear", "linear")])
def test_contractive_penalty_matches_finite_difference_jacobian(activations):
    sizes = {1: (), 2: (5,), 3: (6, 4)}[len(activations)]
    model = AE(input_shape=(1, 3, 3), hidden=sizes, latent_dim=3, activation=activations[0],
               code_activation=activations[-1]).double()
    if len(activations) == 3:
        model.encoder.activations = activations
    x = images(4, (1, 3, 3), 5).reshape(4, 9) * 2 - 1
    with ae.no_grad():
        _, norms = model.encoder.jacobian_frobenius(ae.tensor(x))
    for n in range(4):
        def encode(v):
            with ae.no_grad():
                return model.encoder(ae.tensor(v[None])).numpy()[0]
        jacobian = numeric_jacobian(encode, x[n])
        assert norms.numpy()[n] == pytest.approx((jacobian ** 2).sum(), rel=1e-7, abs=1e-10)


def test_contractive_penalty_wide_first_layer_branch():
    """h_1 > D: the Jacobian is formed directly instead of through the Gram matrix."""
    model = AE(input_shape=(1, 1, 2), hidden=(5,), latent_dim=2, activation="tanh",
               code_activation="sigmoid").double()
    x = np.array([[0.3, -0.7], [1.1, 0.2]])
    _, norms = model.encoder.jacobian_frobenius(ae.tensor(x))
    for n in range(2):
        def encode(v):
            with ae.no_grad():
                return model.encoder(ae.tensor(v[None])).numpy()[0]
        assert norms.numpy()[n] == pytest.approx((numeric_jacobian(encode, x[n]) ** 2).sum(), rel=1e-7)


@pytest.mark.parametrize("activation,code_activation", [("sigmoid", "sigmoid"), ("tanh", "linear"),
                                                         ("relu", "sigmoid")])
def test_contractive_penalty_gradcheck(activation, code_activation):
    model = AE(input_shape=(1, 3, 3), hidden=(4,), latent_dim=2, activation=activation,
               code_activation=code_activation, contractive=0.7).double()
    x = ae.tensor(images(3, (9,), 2) * 2 - 1, requires_grad=True)
    params = list(model.encoder.parameters())

    def penalty(*_):
        return model.encoder.jacobian_frobenius(x)[1]

    assert ae.gradcheck(penalty, params + [x], atol=1e-6, rtol=1e-4)

    def full_loss(*_):
        return model.loss(x.data.reshape(3, 1, 3, 3))[0]

    assert ae.gradcheck(full_loss, list(model.parameters()), atol=1e-6, rtol=1e-4)


def test_contractive_loss_value():
    model = AE(input_shape=(1, 2, 2), hidden=(), latent_dim=2, code_activation="sigmoid",
               contractive=0.3).double()
    x = images(3, (1, 2, 2))
    loss, metrics = model.loss(x)
    w, b = stack_params(model.encoder)[0]
    h = sigmoid(x.reshape(3, 4) @ w.T + b)
    # the classic closed form: sum_j (h_j (1 - h_j))^2 sum_i W_ji^2
    penalty = ((h * (1 - h)) ** 2 @ (w ** 2).sum(axis=1)).mean()
    assert metrics["contractive"] == pytest.approx(penalty, rel=1e-12)
    assert loss.item() == pytest.approx(metrics["bce"] + 0.3 * penalty, rel=1e-12)


def test_dense_jacobian_frobenius_all_linear():
    w1 = ae.tensor(np.arange(6.0).reshape(3, 2) / 5)
    w2 = ae.tensor(np.arange(6.0).reshape(2, 3) / 7)
    norms = dense_jacobian_frobenius([w1, w2], [None, None], 4)
    expected = ((w2.numpy() @ w1.numpy()) ** 2).sum()
    np.testing.assert_allclose(norms.numpy(), np.full(4, expected), rtol=1e-12)


def test_sparse_option_on_the_cae_code():
    model = build_model("cae", input_shape=(1, 4, 4), filters=(2,), sparse=0.5).double()
    x = images(2, (1, 4, 4))
    loss, metrics = model.loss(x)
    code = model.encode(x).numpy()
    assert metrics["sparse"] == pytest.approx(np.abs(code).sum() / 2, rel=1e-12)
    assert loss.item() == pytest.approx(metrics["bce"] + 0.5 * metrics["sparse"], rel=1e-12)
