"""Shapes of encode / decode / forward / reconstruct / sample for every model and option;
config round trips; bad options raise errors that name the option."""

import json

import numpy as np
import pytest

import aecore as ae
from aecore.models import (AE, CAE, DAE, VAE, ModelConfigError, build_model, from_config,
                           model_options)


def images(n=3, shape=(1, 28, 28), seed=0):
    return np.random.default_rng(seed).random((n,) + shape).astype(np.float32)


# ---------------------------------------------------------------------------- AE
def test_ae_default_architecture_and_shapes():
    model = build_model("ae")
    sizes = [layer.weight.shape for layer in model.encoder.layers]
    assert sizes == [(64, 784), (32, 64), (16, 32)]
    assert [layer.weight.shape for layer in model.decoder.layers] == [(32, 16), (64, 32), (784, 64)]
    assert model.latent_dim == 16 and model.input_shape == (1, 28, 28)
    x = images()
    code = model.encode(x)
    assert code.shape == (3, 16) and code.numpy().min() >= 0  # ReLU code
    logits = model.decode(code)
    assert logits.shape == (3, 1, 28, 28)
    assert model(x).shape == (3, 1, 28, 28)
    p = model.reconstruct(x)
    assert p.shape == (3, 1, 28, 28) and 0 <= p.numpy().min() and p.numpy().max() <= 1
    assert p.creator is None and not p.requires_grad


def test_inputs_single_image_flat_and_tensor():
    model = build_model("ae", input_shape=(1, 6, 6), hidden=(5,), latent_dim=3)
    x = images(2, (1, 6, 6))
    assert model(x[0]).shape == (1, 1, 6, 6)
    assert model(x.reshape(2, 36)).shape == (2, 1, 6, 6)
    assert model(ae.tensor(x)).shape == (2, 1, 6, 6)
    assert model(x.astype(np.float64)).dtype == np.float32  # cast to the model's dtype
    with pytest.raises(ValueError, match=r"\(N, 1, 6, 6\)"):
        model(images(2, (1, 5, 5)))


# ---------------------------------------------------------------------------- CAE
@pytest.mark.parametrize("downsample", ["pool", "stride"])
@pytest.mark.parametrize("upsample", ["nearest", "bilinear", "transpose"])
def test_cae_shapes_every_variant(downsample, upsample):
    model = build_model("cae", filters=(4, 4, 2), downsample=downsample, upsample=upsample)
    assert model.encoder.sizes == [(28, 28), (14, 14), (7, 7)]
    assert model.code_shape == (2, 4, 4) and model.latent_dim == 32
    assert model.sizes == [(28, 28), (14, 14), (7, 7), (4, 4), (7, 7), (14, 14), (28, 28)]
    x = images(2)
    code = model.encode(x)
    assert code.shape == (2, 2, 4, 4)
    assert model.decode(code).shape == (2, 1, 28, 28)
    loss, metrics = model.loss(x)
    loss.backward()
    assert all(p.grad is not None and p.grad.shape == p.shape for p in model.parameters())


def test_cae_default_is_the_classic_keras_cae():
    model = build_model("cae")
    enc = [m.weight.shape for m in model.encoder._modules.values()]
    assert enc == [(32, 1, 3, 3), (32, 32, 3, 3), (16, 32, 3, 3)]
    dec = [m.weight.shape for m in model.decoder._modules.values()]
    assert dec == [(16, 16, 3, 3), (32, 16, 3, 3), (32, 32, 3, 3), (1, 32, 3, 3)]
    assert model.code_shape == (16, 4, 4)
    assert model.config["downsample"] == "pool" and model.config["upsample"] == "nearest"


@pytest.mark.parametrize("size,expected", [(32, [(32, 32), (16, 16), (8, 8)]),
                                           (13, [(13, 13), (7, 7), (4, 4)])])
def test_cae_any_input_size_round_trips(size, expected):
    for upsample in ("nearest", "transpose"):
        model = build_model("cae", input_shape=(3, size, size), filters=(2, 2, 2),
                            upsample=upsample)
        assert model.encoder.sizes == expected
        assert model(images(1, (3, size, size))).shape == (1, 3, size, size)


def test_cae_dense_bottleneck():
    model = build_model("cae", filters=(2, 2), latent_dim=2)
    assert model.latent_dim == 2 and model.code_shape == (2,)
    x = images(2)
    assert model.encode(x).shape == (2, 2)
    assert model.decode(ae.tensor(np.zeros((5, 2), np.float32))).shape == (5, 1, 28, 28)


# ---------------------------------------------------------------------------- DAE
@pytest.mark.parametrize("base", ["ae", "cae"])
def test_dae_shapes_and_delegation(base):
    options = dict(hidden=(8,), latent_dim=4) if base == "ae" else dict(filters=(2, 2))
    model = build_model("dae", base=base, noise="masking", noise_level=0.5, **options)
    assert isinstance(model.base, AE if base == "ae" else CAE)
    assert model.latent_dim == model.base.latent_dim
    x = images(2)
    assert model(x).shape == (2, 1, 28, 28)
    assert model.reconstruct(x).shape == (2, 1, 28, 28)
    noisy, clean = model.noisy_and_clean(x)
    assert noisy.shape == clean.shape == (2, 1, 28, 28)
    assert sorted(n for n, _ in model.named_parameters()) == \
        sorted("base." + n for n, _ in model.base.named_parameters())


def test_dae_wraps_a_model_instance():
    base = AE(input_shape=(1, 4, 4), hidden=(3,), latent_dim=2)
    model = DAE(base, noise="gaussian", noise_level=0.1)
    assert model.base is base and model.config["base"] == base.config
    with pytest.raises(ModelConfigError, match="base"):
        DAE(VAE(input_shape=(1, 4, 4), hidden=(3,), latent_dim=2))


# ---------------------------------------------------------------------------- VAE
def test_vae_dense_shapes_sample_interpolate():
    model = build_model("vae", hidden=(32,), latent_dim=3)
    x = images(4)
    mu, logvar = model.encode(x)
    assert mu.shape == logvar.shape == (4, 3)
    logits, mu2, logvar2 = model(x)
    assert logits.shape == (4, 1, 28, 28)
    samples = model.sample(5)
    assert samples.shape == (5, 1, 28, 28)
    s = samples.numpy()
    assert s.min() >= 0 and s.max() <= 1
    np.testing.assert_array_equal(model.sample(2, seed=7).numpy(), model.sample(2, seed=7).numpy())
    strip = model.interpolate(x[0], x[1], steps=6)
    assert strip.shape == (6, 1, 28, 28)
    # the endpoints are the reconstructions (decoded from mu)
    np.testing.assert_allclose(strip.numpy()[0], model.reconstruct(x[:1]).numpy()[0], atol=1e-6)
    np.testing.assert_allclose(strip.numpy()[-1], model.reconstruct(x[1:2]).numpy()[0], atol=1e-6)
    assert model.interpolate(x[:2], x[2:], steps=3).shape == (2, 3, 1, 28, 28)


def test_vae_eval_mode_uses_the_mean():
    model = build_model("vae", hidden=(8,), latent_dim=2)
    x = images(2)
    model.eval()
    a, mu, _ = model(x)
    np.testing.assert_array_equal(a.numpy(), model.decode(mu).numpy())
    model.train()
    b, _, _ = model(x)
    assert not np.allclose(a.numpy(), b.numpy())


@pytest.mark.parametrize("downsample,upsample", [("stride", "transpose"), ("pool", "nearest"),
                                                  ("pool", "bilinear")])
def test_vae_conv_shapes(downsample, upsample):
    model = build_model("vae", encoder="conv", filters=(2, 3), latent_dim=2, hidden=(5,),
                        downsample=downsample, upsample=upsample)
    assert model.conv_shape == (3, 7, 7)
    x = images(2)
    mu, logvar = model.encode(x)
    assert mu.shape == (2, 2)
    assert model(x)[0].shape == (2, 1, 28, 28)
    assert model.sample(3).shape == (3, 1, 28, 28)


def test_logvar_is_clamped():
    model = build_model("vae", input_shape=(1, 2, 2), hidden=(), latent_dim=1,
                        logvar_clamp=(-3, 2))
    model.logvar.bias.data[...] = 1e6
    _, logvar = model.encode(np.ones((1, 1, 2, 2), np.float32))
    assert logvar.numpy().max() == 2
    loss, metrics = model.loss(np.ones((1, 1, 2, 2), np.float32))
    assert np.isfinite(loss.item())


# ---------------------------------------------------------------------------- configs
CONFIGS = [
    ("ae", dict(hidden=(8, 4), latent_dim=2, sparse=0.01, contractive=0.1, code_activation="sigmoid")),
    ("cae", dict(filters=(3, 2), downsample="stride", upsample="bilinear", latent_dim=3)),
    ("dae", dict(base="cae", filters=(2,), noise="crosshair", noise_level=0.3)),
    ("dae", dict(base="ae", hidden=(4,), latent_dim=2, noise="salt_and_pepper", contractive=0.5)),
    ("vae", dict(hidden=(6,), latent_dim=2, beta=4.0, reconstruction="mse")),
    ("vae", dict(encoder="conv", filters=(2,), latent_dim=2, upsample="nearest")),
]


@pytest.mark.parametrize("kind,options", CONFIGS)
def test_config_round_trip(kind, options):
    model = build_model(kind, input_shape=(1, 8, 8), **options)
    config = json.loads(json.dumps(model.config))  # JSON-safe
    assert config["kind"] == kind
    rebuilt = from_config(config)
    assert type(rebuilt) is type(model) and rebuilt.config == model.config
    rebuilt.load_state_dict(model.state_dict())  # the same parameters, names and shapes
    x = images(2, (1, 8, 8))
    model.eval(), rebuilt.eval()
    a = model.reconstruct(x).numpy()
    np.testing.assert_array_equal(a, rebuilt.reconstruct(x).numpy())


def test_build_model_drops_none_and_knows_aliases():
    model = build_model("ae", latent_dim=None, hidden_sizes=(5,), beta=None)
    assert model.config["hidden"] == [5] and model.latent_dim == 16
    model = build_model("dae", noise_factor=0.3)
    assert model.noise_level == 0.3
    assert "noise" in model_options("dae") and "hidden" in model_options("dae")
    assert "filters" in model_options("dae", base="cae")


@pytest.mark.parametrize("kind,options,name", [
    ("ae", dict(beta=2.0), "beta"),
    ("ae", dict(filterz=(1,)), "filterz"),
    ("cae", dict(hidden=(3,)), "hidden"),
    ("cae", dict(downsample="avg"), "downsample"),
    ("cae", dict(upsample="cubic"), "upsample"),
    ("cae", dict(filters=()), "filters"),
    ("cae", dict(filters=(4, 0)), "filters"),
    ("cae", dict(filters=(4, 4), decoder_filters=(4,)), "decoder_filters"),
    ("cae", dict(contractive=0.1), "contractive"),
    ("ae", dict(latent_dim=0), "latent_dim"),
    ("ae", dict(activation="swish"), "activation"),
    ("ae", dict(sparse=-1.0), "sparse"),
    ("ae", dict(reconstruction="l1"), "reconstruction"),
    ("ae", dict(init="he"), "init"),
    ("vae", dict(encoder="recurrent"), "encoder"),
    ("vae", dict(beta=float("nan")), "beta"),
    ("vae", dict(filters=(4,)), "filters"),
    ("vae", dict(logvar_clamp=(3, -3)), "logvar_clamp"),
    ("dae", dict(noise="speckle"), "noise"),
    ("dae", dict(noise="masking", noise_level=1.5), "noise_level"),
    ("dae", dict(base="vae"), "base"),
    ("dae", dict(noise="occlusion", occlusion="circle"), "occlusion"),
    ("gan", dict(), "kind"),
])
def test_bad_options_name_the_option(kind, options, name):
    with pytest.raises(ValueError, match=name):
        build_model(kind, **options)


def test_bad_input_shape():
    with pytest.raises(ValueError, match="input_shape"):
        build_model("ae", input_shape=(28, 28))
    with pytest.raises(ValueError, match="kind"):
        from_config({"hidden": [3]})


def test_init_schemes():
    glorot = build_model("ae", input_shape=(1, 10, 10), hidden=(20,), latent_dim=5)
    assert glorot.config["init"] == "glorot"
    first = glorot.encoder.layers[0]
    assert np.all(first.bias.numpy() == 0)
    bound = np.sqrt(6 / (100 + 20))
    assert np.abs(first.weight.numpy()).max() <= bound
    assert np.abs(first.weight.numpy()).max() > 0.9 * bound
    pytorch = build_model("ae", input_shape=(1, 10, 10), hidden=(20,), latent_dim=5, init="default")
    layer = pytorch.encoder.layers[0]
    assert np.abs(layer.bias.numpy()).max() > 0 and np.abs(layer.weight.numpy()).max() <= 0.1
    assert build_model("vae").config["init"] == "default"
