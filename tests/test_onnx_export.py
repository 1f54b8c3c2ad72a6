"""ae.onnx.export and `aecore export`: every exported file runs in onnxruntime and gives the
engine's forward, float32, to 1e-5: every model kind and part, every resize mode (as Resize and
as the exact fallback), every padding form of conv2d, conv_transpose2d and max_pool2d.
Skipped without onnx and onnxruntime (the "onnx" extra)."""

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
onnxruntime = pytest.importorskip("onnxruntime")

import aecore as ae  # noqa: E402
import aecore.functional as F  # noqa: E402
from aecore import nn  # noqa: E402
from aecore.cli import main  # noqa: E402
from aecore.kernels import geometry  # noqa: E402
from aecore.models import build_model  # noqa: E402
from aecore.onnx import OnnxExportError  # noqa: E402
from aecore.onnx.resize import nearest_resize_is_robust  # noqa: E402

TOLERANCE = dict(atol=1e-5, rtol=1e-5)


def run_onnx(path, *inputs):
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    return session.run(None, dict(zip(names, inputs)))


def engine(function, *inputs):
    with ae.no_grad():
        out = function(*[ae.tensor(x) for x in inputs])
    return [o.numpy() for o in (out if isinstance(out, tuple) else (out,))]


def check_export(function, example, path, batch=3, seed=0, **options):
    """Export on a batch of 1, run a batch of `batch` in onnxruntime, compare with the engine;
    returns the op types of the exported graph."""
    shape = (batch,) + tuple(example.shape[1:])
    x = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    model = ae.onnx.export(function, example[:1], path, **options)
    got, expected = run_onnx(path, x), engine(function, x)
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        assert g.shape == e.shape
        np.testing.assert_allclose(g, e, **TOLERANCE)
    return [node.op_type for node in model.graph.node]


def images(shape=(1, 1, 28, 28)):
    return np.random.default_rng(1).random(shape).astype(np.float32)


# ---------------------------------------------------------------------------- every model
MODELS = {
    "ae": dict(kind="ae"),
    "cae-nearest": dict(kind="cae"),
    "cae-bilinear-stride": dict(kind="cae", upsample="bilinear", downsample="stride"),
    "cae-transpose-latent": dict(kind="cae", upsample="transpose", latent_dim=8),
    "dae": dict(kind="dae", base="cae", filters=[8, 4]),
    "vae-dense": dict(kind="vae"),
    "vae-conv": dict(kind="vae", encoder="conv", filters=[8, 16]),
}


@pytest.mark.parametrize("name", list(MODELS))
@pytest.mark.parametrize("part", ["whole", "encoder", "decoder"])
def test_every_model_kind_and_part_matches_the_engine(name, part, tmp_path):
    options = dict(MODELS[name])
    model = build_model(options.pop("kind"), **options)
    model.eval()
    x = images()
    path = tmp_path / f"{name}-{part}.onnx"
    if part == "whole":
        check_export(model, x, path)
    elif part == "encoder":
        check_export(model.encode, x, path)
    else:
        check_export(model.decode, model.code(x).numpy(), path)


def test_the_vae_encoder_exports_mean_and_log_variance(tmp_path):
    model = build_model("vae", latent_dim=5)
    exported = ae.onnx.export(model.encode, images(), tmp_path / "e.onnx",
                              output_names=["mu", "logvar"])
    assert [o.name for o in exported.graph.output] == ["mu", "logvar"]
    mu, logvar = run_onnx(tmp_path / "e.onnx", images((4, 1, 28, 28)))
    expected_mu, expected_logvar = engine(model.encode, images((4, 1, 28, 28)))
    np.testing.assert_allclose(mu, expected_mu, **TOLERANCE)
    np.testing.assert_allclose(logvar, expected_logvar, **TOLERANCE)


def test_export_traces_in_eval_mode_and_restores_training(tmp_path):
    model = build_model("vae")
    model.train()
    ae.onnx.export(model, images(), tmp_path / "vae.onnx")
    assert model.training
    model.eval()                                                 # z = mu, as exported
    x = images((3, 1, 28, 28))
    for got, expected in zip(run_onnx(tmp_path / "vae.onnx", x), engine(model, x)):
        np.testing.assert_allclose(got, expected, **TOLERANCE)


# ---------------------------------------------------------------------------- resize
def resize_module(size=None, scale_factor=None, mode="nearest", align_corners=None):
    return nn.Lambda(lambda x: F.interpolate(x, size, scale_factor, mode, align_corners))


RESIZES = [  # (input H, W), keyword arguments of interpolate
    ((4, 5), dict(size=(7, 9))), ((7, 7), dict(size=(14, 28))), ((14, 3), dict(size=(46, 5))),
    ((6, 6), dict(size=(3, 4))), ((5, 5), dict(scale_factor=1.5)),
    ((9, 9), dict(scale_factor=1.05)),
    ((3, 4), dict(scale_factor=(3, 2.5))), ((8, 8), dict(size=(1, 1))),
]


@pytest.mark.parametrize("mode, align_corners", [("nearest", None), ("nearest-exact", None),
                                                 ("bilinear", False), ("bilinear", True)])
@pytest.mark.parametrize("in_hw, arguments", RESIZES)
def test_every_resize_mode_matches_the_engine(mode, align_corners, in_hw, arguments, tmp_path):
    module = resize_module(mode=mode, align_corners=align_corners, **arguments)
    ops = check_export(module, images((1, 2) + in_hw), tmp_path / "resize.onnx")
    assert set(ops) <= {"Resize", "Gather", "MatMul"}, ops


def test_nearest_exports_resize_when_safe_and_the_engine_table_otherwise(tmp_path):
    """14 -> 46: onnxruntime's float32 division differs from the engine's (PyTorch's) product
    for one index, so the exporter writes the engine's source table as a Gather."""
    for (h, out), expected in (((4, 7), "Resize"), ((14, 46), "Gather")):
        geom = geometry.interpolate_geometry((1, 1, h, h), size=(out, out), mode="nearest")
        assert nearest_resize_is_robust(geom) == (expected == "Resize")
        ops = check_export(resize_module(size=(out, out)), images((1, 1, h, h)),
                           tmp_path / "nearest.onnx")
        assert expected in ops, ops


def test_bilinear_with_a_scale_factor_uses_the_engine_matrices(tmp_path):
    """scale_factor 1.5 on 5 pixels: the engine's scale is 1 / 1.5, not 5 / 7."""
    ops = check_export(resize_module(scale_factor=1.5, mode="bilinear"), images((1, 1, 5, 5)),
                       tmp_path / "bilinear.onnx")
    assert ops == ["MatMul", "MatMul"]
    ops = check_export(resize_module(size=(7, 7), mode="bilinear"), images((1, 1, 5, 5)),
                       tmp_path / "bilinear.onnx")
    assert ops == ["Resize"]


# ---------------------------------------------------------------------------- conv family
@pytest.mark.parametrize("in_hw, kernel, stride, padding", [
    ((7, 8), 3, 1, "same"), ((7, 8), 4, 2, "same"), ((9, 6), 2, 3, "same"), ((7, 7), 3, 2, "valid"),
    ((6, 6), 3, 1, 2), ((6, 7), (3, 2), (2, 1), (1, 0)),
])
def test_conv2d_padding_forms(in_hw, kernel, stride, padding, tmp_path):
    conv = nn.Conv2d(2, 3, kernel, stride=stride, padding=padding)
    assert check_export(conv, images((1, 2) + in_hw), tmp_path / "conv.onnx") == ["Conv"]


@pytest.mark.parametrize("in_hw, kernel, stride, padding, output_padding", [
    ((4, 5), 3, 2, 0, 0), ((4, 5), 3, 2, 1, 1), ((4, 4), 3, 3, 0, 2), ((4, 5), 4, 2, 2, 1),
    ((4, 5), 3, 2, "same", 0), ((4, 5), 4, 2, "same", 0), ((3, 5), 3, 2, "same", 1),
    ((4, 5), 3, 2, "valid", 0), ((4, 5), 2, 3, "valid", 0), ((4, 5), 3, 2, "valid", 1),
])
def test_conv_transpose2d_padding_forms(in_hw, kernel, stride, padding, output_padding, tmp_path):
    layer = nn.ConvTranspose2d(2, 3, kernel, stride=stride, padding=padding,
                               output_padding=output_padding)
    ops = check_export(layer, images((1, 2) + in_hw), tmp_path / "convt.onnx")
    assert ops == ["ConvTranspose"]


def test_the_folded_upsample_conv_exports_what_it_computes(tmp_path):
    folded = nn.UpsampleConv2d(2, 3, 3, (14, 14), mode="nearest", padding="same")
    assert check_export(folded, images((1, 2, 7, 7)), tmp_path / "up.onnx") == ["ConvTranspose"]
    unfolded = nn.UpsampleConv2d(2, 3, 3, (7, 7), mode="nearest", padding="same")    # 4 -> 7
    assert check_export(unfolded, images((1, 2, 4, 4)), tmp_path / "up.onnx") == ["Resize", "Conv"]


@pytest.mark.parametrize("in_hw, kernel, stride, padding, ceil_mode", [
    ((7, 8), 2, 2, "same", False), ((7, 7), 3, 2, "same", False), ((7, 8), 2, 2, 0, False),
    ((7, 8), 3, 2, 1, True), ((8, 7), 2, 2, 0, True), ((9, 9), 3, 1, "valid", False),
])
def test_max_pool2d_padding_forms(in_hw, kernel, stride, padding, ceil_mode, tmp_path):
    pool = nn.MaxPool2d(kernel, stride, padding, ceil_mode)
    assert check_export(pool, images((1, 2) + in_hw), tmp_path / "pool.onnx") == ["MaxPool"]


@pytest.mark.parametrize("in_hw, kernel, stride, padding, ceil_mode, count_include_pad, divisor", [
    ((7, 8), 2, 2, "same", False, False, None), ((7, 7), 3, 2, "same", False, True, None),
    ((7, 8), 3, 2, 1, True, True, None), ((8, 7), 3, 2, 1, True, False, None),
    ((9, 9), 3, 1, "valid", False, True, 5), ((6, 6), 2, 2, 0, False, True, None),
])
def test_avg_pool2d_every_divisor_rule(in_hw, kernel, stride, padding, ceil_mode,
                                       count_include_pad, divisor, tmp_path):
    pool = nn.AvgPool2d(kernel, stride, padding, ceil_mode, count_include_pad, divisor)
    assert check_export(pool, images((1, 2) + in_hw), tmp_path / "avg.onnx") == ["Conv", "Div"]


@pytest.mark.parametrize("layers, expected_op", [
    ((nn.GELU(),), "Erf"), ((nn.GELU(approximate="tanh"),), "Tanh"), ((nn.ELU(0.7),), "Elu"),
    ((nn.Softmax(1),), "Softmax"), ((nn.LogSoftmax(3),), "LogSoftmax"),
    ((nn.LayerNorm((7, 6)),), "ReduceMean"),
    ((nn.Conv2d(2, 2, 3, padding=1), nn.BatchNorm2d(2), nn.Dropout(0.5)), "Conv"),  # eval mode
    ((nn.AdaptiveAvgPool2d((4, 5)),), "MatMul"), ((nn.AdaptiveAvgPool2d(1),), "Conv"),
], ids=lambda v: v if isinstance(v, str) else "-".join(type(m).__name__ for m in v))
def test_normalization_activations_and_adaptive_pooling(layers, expected_op, tmp_path):
    model = nn.Sequential(*layers)
    for module in model.modules():          # running statistics that are not the defaults
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.data[...] = [0.3, -0.2]
            module.running_var.data[...] = [2.0, 0.5]
    model.eval()                            # the engine's side too: running statistics, no dropout
    assert expected_op in check_export(model, images((1, 2, 7, 6)), tmp_path / "m.onnx")


# ---------------------------------------------------------------------------- other ops
def test_elementwise_reductions_slicing_and_padding(tmp_path):
    def forward(x):
        y = F.leaky_relu(x, 0.2) * 0.5 - ae.tanh(x) / 3.0 + F.softplus(x) ** 2
        y = F.pad(y, (2, -2, 0, -1)) + ae.sqrt(ae.exp(x[:, :1, 1:, :]).mean(dim=1, keepdim=True)
                                               ).sum(dim=(1, 2), keepdim=True)
        z = ae.cat([y, y.clamp(-0.5, 0.7)], dim=1)[:, :, ::2, 1:-1]
        return z.transpose((0, 1, 3, 2)), ae.sigmoid(z).abs().reshape(z.shape[0], -1)
    check_export(nn.Lambda(forward), images((1, 2, 5, 6)), tmp_path / "ops.onnx")


def test_pad_exports_its_fill_value(tmp_path):
    padded = nn.Lambda(lambda x: F.pad(x, (1, 2, -1, 3), value=0.5))
    assert check_export(padded, images((1, 2, 4, 5)), tmp_path / "pad.onnx") == ["Pad"]


def test_a_fixed_batch_export_and_a_reshape_across_the_batch(tmp_path):
    across = nn.Lambda(lambda x: x.reshape(-1))
    with pytest.raises(OnnxExportError, match="changes the batch axis.*dynamic_batch=False"):
        ae.onnx.export(across, images((2, 1, 3, 3)), tmp_path / "a.onnx")
    x = images((2, 1, 3, 3))
    ae.onnx.export(across, x, tmp_path / "a.onnx", dynamic_batch=False)
    np.testing.assert_allclose(run_onnx(tmp_path / "a.onnx", x)[0], x.reshape(-1))


def test_unsupported_ops_and_hidden_computations_are_one_line_errors(tmp_path):
    with pytest.raises(OnnxExportError, match="the op TakeAlongDim has no ONNX mapping"):
        ae.onnx.export(nn.Lambda(lambda x: x.max(dim=1).values), images((1, 2, 3, 3)),
                       tmp_path / "m.onnx")
    hidden = nn.Lambda(lambda x: x + ae.Tensor(x.data[:, :1], _copy=False))
    with pytest.raises(OnnxExportError, match="views the input but was not made by an aecore op"):
        ae.onnx.export(hidden, images((1, 2, 3, 3)), tmp_path / "h.onnx")
    with pytest.raises(TypeError, match="module must be an aecore.nn.Module or a method of one"):
        ae.onnx.export(lambda x: x, images(), tmp_path / "f.onnx")
    with pytest.raises(ValueError, match="output_names must be 2"):
        ae.onnx.export(build_model("vae").encode, images(), tmp_path / "v.onnx",
                       output_names=["mu"])
    assert not list(tmp_path.iterdir())                      # nothing written on a failure


# ---------------------------------------------------------------------------- the CLI
@pytest.fixture(scope="module")
def vae_run(tmp_path_factory):
    from aecore.train import train
    run = tmp_path_factory.mktemp("export") / "run"
    train({"model": "vae", "model_options": {"encoder": "dense", "hidden": [32], "latent_dim": 3},
           "data": "synthetic", "limit": 120, "epochs": 1, "batch_size": 32,
           "val_fraction": 0.25, "seed": 3, "pictures": False}, out_dir=run, quiet=True)
    return run


@pytest.mark.parametrize("part, outputs", [("whole", ["logits", "mu", "logvar"]),
                                           ("encoder", ["mu", "logvar"]),
                                           ("decoder", ["logits"])])
def test_aecore_export_writes_each_part_of_a_run(vae_run, part, outputs, tmp_path, capsys):
    from aecore.train import load_run
    path = tmp_path / f"{part}.onnx"
    assert main(["export", str(vae_run), "--onnx", str(path), "--part", part]) == 0
    assert f"wrote {path}" in capsys.readouterr().out
    exported = onnx.load(str(path))
    assert [o.name for o in exported.graph.output] == outputs
    model = load_run(vae_run)[0]
    x = images((5, 1, 28, 28)) if part != "decoder" else \
        np.random.default_rng(2).standard_normal((5, 3)).astype(np.float32)
    function = {"whole": model, "encoder": model.encode, "decoder": model.decode}[part]
    for got, expected in zip(run_onnx(path, x), engine(function, x)):
        np.testing.assert_allclose(got, expected, **TOLERANCE)


def test_aecore_export_errors_are_one_line(vae_run, tmp_path, capsys):
    missing = tmp_path / "no" / "such" / "dir" / "m.onnx"
    assert main(["export", str(vae_run), "--onnx", str(missing)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "does not exist" in err
    assert main(["export", str(tmp_path), "--onnx", str(tmp_path / "m.onnx")]) == 2
