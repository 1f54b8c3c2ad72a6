"""Hooks and per-layer statistics: every layer seen once per pass, numbers that mean something."""

import numpy as np
import pytest

import aecore
from aecore import nn
from aecore.inspect import capture, layer_stats


def small_mlp():
    return nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 16))


def test_every_layer_once_per_pass():
    model = small_mlp()
    x = aecore.rand(5, 1, 4, 4)
    for _ in range(2):  # hooks are removed after each capture: still once per pass
        cap = capture(model, x, target=x.reshape(5, 16))
        assert [r.name for r in cap.layers] == ["0", "1", "2", "3"]
        assert all(r.forward_calls == 1 for r in cap.layers)
        # Flatten's output does not depend on a parameter: no gradient flows there
        assert [r.backward_calls for r in cap.layers] == [0, 1, 1, 1]
        for record in cap.layers[1:]:
            assert record.grad.shape == record.activation.shape
    for module in model.modules():
        assert not module._forward_hooks and not module._backward_hooks


def test_capture_matches_a_manual_computation():
    model = small_mlp()
    x = aecore.rand(5, 1, 4, 4)
    target = aecore.rand(5, 16)
    cap = capture(model, x, target)
    w1, b1 = model[1].weight.data, model[1].bias.data
    h = x.numpy().reshape(5, 16) @ w1.T + b1
    np.testing.assert_allclose(cap["1"].activation, h, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(cap["2"].activation, np.maximum(h, 0), rtol=1e-5, atol=1e-6)
    y = np.maximum(h, 0) @ model[3].weight.data.T + model[3].bias.data
    grad_y = 2 * (y - target.numpy()) / y.size                        # d mse / d y
    np.testing.assert_allclose(cap["3"].grad, grad_y, rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(cap["3"].param_grads["bias"], grad_y.sum(0), rtol=1e-4, atol=1e-7)
    assert cap.loss == pytest.approx(float(((y - target.numpy()) ** 2).mean()), rel=1e-5)


def test_parameter_grads_are_restored():
    model = small_mlp()
    x = aecore.rand(3, 1, 4, 4)
    marker = np.full(model[1].weight.shape, 7.0, np.float32)
    model[1].weight.grad = marker
    cap = capture(model, x, x.reshape(3, 16))
    assert model[1].weight.grad is marker and model[3].weight.grad is None
    assert cap["1"].param_grads["weight"] is not marker


def test_stats_find_dead_relus():
    model = small_mlp()
    # units 0..3 of the hidden layer can never fire: bias -100 with inputs in [0, 1]
    model[1].bias.data[:4] = -100.0
    x = aecore.rand(6, 1, 4, 4)
    table = layer_stats(model, x, target=x.reshape(6, 16))
    relu = table["2"]
    h = np.maximum(x.numpy().reshape(6, 16) @ model[1].weight.data.T + model[1].bias.data, 0)
    assert relu.zeros == pytest.approx(float((h == 0).mean()))
    assert relu.dead == pytest.approx(float((h == 0).all(axis=0).mean()))
    assert relu.dead >= 0.5
    assert relu.mean == pytest.approx(float(h.mean()), rel=1e-5)
    assert table["1"].param_grad_norm > 0 and table["1"].update_ratio > 0
    text = str(table)
    assert "dead" in text and "grad norm" in text and "ReLU" in text


def test_functional_relu_is_attached_to_its_layer():
    models = pytest.importorskip("aecore.models")
    model = models.build_model("cae")
    x = aecore.rand(2, 1, 28, 28)
    cap = capture(model, x)
    convs = [r for r in cap.layers if r.type in ("Conv2d", "UpsampleConv2d")]
    assert len(convs) == len(cap.layers) == 7
    assert all(r.forward_calls == 1 and r.backward_calls == 1 for r in cap.layers)
    assert [r.activation_function for r in convs] == ["ReLU"] * 6 + [None]
    for record in convs[:-1]:
        np.testing.assert_array_equal(record.post_activation, np.maximum(record.activation, 0))
    stats = layer_stats(cap)
    assert stats.rows[0]["type"] == "Conv2d+ReLU"
    assert 0 < stats.rows[0]["zeros"] < 1
    # vanishing gradients show up as norms shrinking toward the input: here they are all finite
    assert all(np.isfinite(row["grad_norm"]) and row["grad_norm"] > 0 for row in stats.rows)
