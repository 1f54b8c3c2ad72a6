"""Dropout, the activations (GELU, ELU, Softmax, LogSoftmax), ModuleList / ModuleDict, the loss
modules and Module.apply / requires_grad_ / train / eval: values, float64 gradients, names."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import aecore as ae
import aecore.functional as F
from aecore import losses, nn
from strategies import arrays, away_from, shapes


def leaf(array):
    return ae.tensor(array, dtype=np.float64, requires_grad=True)


# ---------------------------------------------------------------------------- dropout
def test_dropout_masks_repeat_under_manual_seed_and_scale_the_kept():
    x = ae.ones(200, 50)
    ae.manual_seed(3)
    first = F.dropout(x, p=0.3).numpy()
    ae.manual_seed(3)
    again = F.dropout(x, p=0.3).numpy()
    np.testing.assert_array_equal(first, again)
    assert set(np.unique(first)) <= {0.0, np.float32(1 / 0.7)}
    assert abs((first == 0).mean() - 0.3) < 0.02
    assert not np.array_equal(F.dropout(x, p=0.3).numpy(), first)   # the generator moved on


def test_dropout_gradient_is_the_mask():
    x = leaf(np.random.default_rng(0).standard_normal((6, 7)))
    ae.manual_seed(1)
    y = F.dropout(x, p=0.4)
    y.backward(np.ones((6, 7)))
    kept = y.numpy() != 0
    np.testing.assert_allclose(x.grad, kept / 0.6)


def test_dropout2d_drops_whole_channels():
    y = F.dropout2d(ae.ones(8, 16, 3, 3), p=0.5).numpy()
    per_channel = y.reshape(8, 16, 9)
    assert np.all((per_channel == 0).all(-1) | (per_channel == 2).all(-1))
    assert 0 < (per_channel[..., 0] == 0).mean() < 1
    with pytest.raises(ValueError, match=r"dropout2d: input must have shape \(N, C, H, W\)"):
        F.dropout2d(ae.ones(2, 3))


def test_train_and_eval_switch_dropout_and_batch_norm():
    model = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4), nn.Dropout(0.5))
    x = ae.randn(8, 4)
    model.eval()
    assert not model[2].training and not model[1].training
    np.testing.assert_array_equal(model(x).numpy(), model(x).numpy())   # no mask, no stats
    assert model[1].num_batches_tracked.item() == 0
    model.train()
    assert (model(x).numpy() == 0).any() and model[1].num_batches_tracked.item() == 1


def test_dropout_edges_and_bad_probabilities():
    x = ae.randn(3, 4)
    assert F.dropout(x, p=0.0) is x and F.dropout(x, p=0.9, training=False) is x
    np.testing.assert_array_equal(F.dropout(x, p=1.0).numpy(), np.zeros((3, 4)))
    for bad in (-0.1, 1.5, "half"):
        with pytest.raises(ValueError, match=r"p \(the probability of dropping\) must be"):
            nn.Dropout(bad)
    assert repr(nn.Dropout(0.25)) == "Dropout(p=0.25)"


# ---------------------------------------------------------------------------- activations
@given(st.data())
def test_activation_gradients(data):
    shape = data.draw(shapes(min_dims=1, max_dims=3))
    x = leaf(data.draw(away_from(shape, points=(0.0,))))     # elu has a kink at 0
    assert ae.gradcheck(lambda t: F.gelu(t), [x])
    assert ae.gradcheck(lambda t: F.gelu(t, approximate="tanh"), [x])
    assert ae.gradcheck(lambda t: F.elu(t, alpha=0.7), [x])
    dim = data.draw(st.integers(-len(shape), len(shape) - 1))
    assert ae.gradcheck(lambda t: F.softmax(t, dim), [x])
    assert ae.gradcheck(lambda t: F.log_softmax(t, dim), [x])


def test_softmax_family_is_stable():
    x = ae.tensor([[1000.0, 0.0, -1000.0]], dtype=np.float64)
    np.testing.assert_allclose(F.softmax(x, dim=1).numpy(), [[1, 0, 0]])
    np.testing.assert_allclose(F.log_softmax(x, dim=-1).numpy(), [[0, -1000, -2000]])
    with pytest.raises(TypeError, match="softmax: give dim"):
        F.softmax(x, None)


def test_activations_match_pytorch():
    torch = pytest.importorskip("torch")
    tf = torch.nn.functional
    x = np.random.default_rng(2).standard_normal((3, 4, 5)) * 3
    pairs = [(nn.GELU(), tf.gelu), (nn.GELU("tanh"), lambda t: tf.gelu(t, approximate="tanh")),
             (nn.ELU(0.5), lambda t: tf.elu(t, 0.5)), (nn.Softmax(1), lambda t: tf.softmax(t, 1)),
             (nn.LogSoftmax(-1), lambda t: tf.log_softmax(t, -1))]
    for ours, theirs in pairs:
        np.testing.assert_allclose(ours(ae.tensor(x, dtype=np.float64)).numpy(),
                                   theirs(torch.from_numpy(x)).numpy(), atol=1e-12,
                                   err_msg=repr(ours))
    np.testing.assert_allclose(F.gelu(ae.tensor(x)).numpy(), tf.gelu(torch.from_numpy(
        x.astype(np.float32))).numpy(), atol=1e-6)


def test_activation_arguments_are_checked():
    with pytest.raises(ValueError, match="approximate must be one of"):
        nn.GELU("fast")
    with pytest.raises(TypeError, match="alpha must be a real number"):
        nn.ELU("1")
    with pytest.raises(TypeError, match="dim must be an int"):
        nn.Softmax(None)


# ---------------------------------------------------------------------------- containers
class TwoHeads(nn.Module):
    def __init__(self):
        super().__init__()
        self.layers = nn.ModuleList([nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2)])
        self.heads = nn.ModuleDict({"mu": nn.Linear(2, 1), "logvar": nn.Linear(2, 1)})

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return {name: head(x) for name, head in self.heads.items()}


def test_containers_register_under_pytorch_names():
    model = TwoHeads()
    assert list(model.state_dict()) == [
        "layers.0.weight", "layers.0.bias", "layers.2.weight", "layers.2.bias",
        "heads.mu.weight", "heads.mu.bias", "heads.logvar.weight", "heads.logvar.bias"]
    assert set(model(ae.randn(5, 3))) == {"mu", "logvar"}
    assert len(list(model.parameters())) == 8


def test_module_list_operations():
    layers = nn.ModuleList()
    layers.append(nn.Linear(1, 2)).extend([nn.ReLU(), nn.Linear(2, 3)])
    layers.insert(0, nn.Identity())
    assert [type(m).__name__ for m in layers] == ["Identity", "Linear", "ReLU", "Linear"]
    assert layers[-1].out_features == 3 and len(layers) == 4
    assert isinstance(layers[1:3], nn.ModuleList) and len(layers[1:3]) == 2
    del layers[0]
    assert list(layers.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    layers[1] = nn.Tanh()
    assert isinstance(layers[1], nn.Tanh)
    with pytest.raises(IndexError, match="index 5 is out of range for 3 modules"):
        layers[5]
    with pytest.raises(TypeError, match="expected a Module, got int"):
        layers.append(3)


def test_module_dict_operations():
    heads = nn.ModuleDict([("a", nn.Linear(1, 1))])
    heads["b"] = nn.Linear(1, 2)
    heads.update({"c": nn.ReLU()})
    assert list(heads) == ["a", "b", "c"] and "b" in heads and len(heads) == 3
    assert isinstance(heads.pop("c"), nn.ReLU)
    del heads["a"]
    assert list(heads.state_dict()) == ["b.weight", "b.bias"]
    with pytest.raises(TypeError, match="keys must be str"):
        heads[1] = nn.ReLU()


# ---------------------------------------------------------------------------- Module methods
def test_apply_visits_children_first_then_self_and_returns_self():
    model = nn.Sequential(nn.Linear(2, 2), nn.Sequential(nn.Tanh(), nn.Linear(2, 1)))
    visited = []
    assert model.apply(lambda m: visited.append(type(m).__name__)) is model
    assert visited == ["Linear", "Tanh", "Linear", "Sequential", "Sequential"]

    def zero_linear(module):
        if isinstance(module, nn.Linear):
            module.bias.data[...] = 0
    model.apply(zero_linear)
    assert all(not p.numpy().any() for name, p in model.named_parameters() if "bias" in name)


def test_requires_grad_freezes_and_unfreezes():
    model = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
    assert model.requires_grad_(False) is model
    assert not any(p.requires_grad for p in model.parameters())
    model.requires_grad_()
    assert all(p.requires_grad for p in model.parameters())
    with pytest.raises(TypeError, match="requires_grad must be True or False"):
        model.requires_grad_("yes")


# ---------------------------------------------------------------------------- loss modules
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_loss_modules_equal_the_functions(reduction):
    rng = np.random.default_rng(4)
    logits = ae.tensor(rng.standard_normal((4, 3)), dtype=np.float64)
    target = ae.tensor(rng.random((4, 3)), dtype=np.float64)
    probabilities = F.sigmoid(logits)
    cases = [(nn.MSELoss, losses.mse_loss, logits), (nn.L1Loss, losses.l1_loss, logits),
             (nn.BCELoss, losses.binary_cross_entropy, probabilities),
             (nn.BCEWithLogitsLoss, losses.binary_cross_entropy_with_logits, logits)]
    for module, function, input in cases:
        np.testing.assert_array_equal(module(reduction=reduction)(input, target).numpy(),
                                      function(input, target, reduction=reduction).numpy())
    with pytest.raises(ValueError, match="MSELoss: reduction must be one of"):
        nn.MSELoss(reduction="avg")


def test_bce_with_logits_pos_weight_matches_pytorch_and_its_gradient():
    rng = np.random.default_rng(5)
    logits, target = rng.standard_normal((5, 3)) * 4, (rng.random((5, 3)) > 0.5) * 1.0
    pos_weight = np.array([0.5, 1.0, 3.0])
    loss = nn.BCEWithLogitsLoss(pos_weight=ae.tensor(pos_weight, dtype=np.float64))
    assert ae.gradcheck(lambda z: loss(z, target), [leaf(logits)])
    unweighted = nn.BCEWithLogitsLoss(pos_weight=ae.tensor(np.ones(3), dtype=np.float64))
    np.testing.assert_allclose(unweighted(leaf(logits), target).item(),
                               nn.BCEWithLogitsLoss()(leaf(logits), target).item(), rtol=1e-12)
    torch = pytest.importorskip("torch")
    expected = torch.nn.BCEWithLogitsLoss(pos_weight=torch.from_numpy(pos_weight))(
        torch.from_numpy(logits), torch.from_numpy(target)).item()
    np.testing.assert_allclose(loss(leaf(logits), target).item(), expected, rtol=1e-12)


@given(st.data())
def test_loss_module_gradients(data):
    shape = data.draw(shapes(min_dims=1, max_dims=2))
    x, target = leaf(data.draw(arrays(shape))), data.draw(arrays(shape, 0.0, 1.0))
    assert ae.gradcheck(lambda t: nn.MSELoss()(t, target), [x])
    assert ae.gradcheck(lambda t: nn.BCEWithLogitsLoss(reduction="sum")(t, target), [x])
