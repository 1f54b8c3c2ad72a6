"""BatchNorm1d / BatchNorm2d / LayerNorm and F.batch_norm / F.layer_norm: gradients (float64
finite differences), running statistics against a NumPy formula (and PyTorch when installed),
buffers in state_dict and on load, train() / eval() switching, bad arguments."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import aecore as ae
import aecore.functional as F
from aecore import nn
from strategies import arrays

BATCH_NORM_SHAPES = [(5, 3), (4, 3, 6), (3, 3, 4, 5)]


def leaf(array):
    return ae.tensor(array, dtype=np.float64, requires_grad=True)


def batch_norm_module(shape, **kw):
    return (nn.BatchNorm2d if len(shape) == 4 else nn.BatchNorm1d)(shape[1], dtype=np.float64,
                                                                     **kw)


# ---------------------------------------------------------------------------- gradients
@given(st.sampled_from(BATCH_NORM_SHAPES), st.data())
def test_batch_norm_training_gradients(shape, data):
    x = leaf(data.draw(arrays(shape)))
    weight, bias = leaf(data.draw(arrays(shape[1]))), leaf(data.draw(arrays(shape[1])))
    # inputs whose variance is nearly 0 are ill-conditioned for finite differences
    if np.var(x.numpy(), axis=(0,) + tuple(range(2, len(shape)))).min() < 1e-2:
        return
    assert ae.gradcheck(lambda t, w, b: F.batch_norm(t, None, None, w, b, training=True),
                        [x, weight, bias], atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("shape", BATCH_NORM_SHAPES)
def test_batch_norm_eval_gradients(shape):
    rng = np.random.default_rng(1)
    x = leaf(rng.standard_normal(shape))
    weight, bias = leaf(rng.standard_normal(shape[1])), leaf(rng.standard_normal(shape[1]))
    running_mean = ae.tensor(rng.standard_normal(shape[1]), dtype=np.float64)
    running_var = ae.tensor(rng.random(shape[1]) + 0.5, dtype=np.float64)
    assert ae.gradcheck(lambda t, w, b: F.batch_norm(t, running_mean, running_var, w, b,
                                                     training=False), [x, weight, bias])


@pytest.mark.parametrize("shape, normalized", [((4, 6), 6), ((2, 3, 4), (3, 4)), ((3, 5), (5,))])
def test_layer_norm_gradients(shape, normalized):
    rng = np.random.default_rng(2)
    trailing = shape[-1:] if isinstance(normalized, int) else normalized
    x = leaf(rng.standard_normal(shape))
    weight, bias = leaf(rng.standard_normal(trailing)), leaf(rng.standard_normal(trailing))
    assert ae.gradcheck(lambda t, w, b: F.layer_norm(t, normalized, w, b), [x, weight, bias])
    assert ae.gradcheck(lambda t: F.layer_norm(t, normalized), [leaf(rng.standard_normal(shape))])


# ---------------------------------------------------------------------------- running statistics
def numpy_running_statistics(batches, momentum):
    """PyTorch's rule written out: biased variance to normalize, unbiased into running_var;
    momentum None = the cumulative average of every batch so far."""
    axes = (0,) + tuple(range(2, batches[0].ndim))
    mean, var = np.zeros(batches[0].shape[1]), np.ones(batches[0].shape[1])
    for count, batch in enumerate(batches, start=1):
        factor = 1 / count if momentum is None else momentum
        n = batch.size // batch.shape[1]
        mean = (1 - factor) * mean + factor * batch.mean(axis=axes)
        var = (1 - factor) * var + factor * batch.var(axis=axes) * n / (n - 1)
    return mean, var


@pytest.mark.parametrize("shape", BATCH_NORM_SHAPES)
@pytest.mark.parametrize("momentum", [0.1, 0.5, None])
def test_running_statistics_over_steps_follow_the_formula(shape, momentum):
    rng = np.random.default_rng(3)
    batches = [rng.standard_normal(shape) * 2 + 1 for _ in range(4)]
    bn = batch_norm_module(shape, momentum=momentum)
    for batch in batches:
        bn(ae.tensor(batch, dtype=np.float64))
    mean, var = numpy_running_statistics(batches, momentum)
    np.testing.assert_allclose(bn.running_mean.numpy(), mean, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(bn.running_var.numpy(), var, rtol=1e-12, atol=1e-12)
    assert bn.num_batches_tracked.item() == 4 and bn.num_batches_tracked.dtype == np.int64


def test_training_normalizes_with_the_biased_batch_variance_and_eval_with_the_running():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((6, 2, 3)) * 3 - 1
    bn = nn.BatchNorm1d(2, dtype=np.float64, eps=1e-3)
    y = bn(ae.tensor(x, dtype=np.float64)).numpy()
    axes = (0, 2)
    expected = (x - x.mean(axes, keepdims=True)) / np.sqrt(x.var(axes, keepdims=True) + 1e-3)
    np.testing.assert_allclose(y, expected, atol=1e-12)
    bn.eval()
    y_eval = bn(ae.tensor(x, dtype=np.float64)).numpy()
    mean, var = bn.running_mean.numpy()[:, None], bn.running_var.numpy()[:, None]
    np.testing.assert_allclose(y_eval, (x - mean) / np.sqrt(var + 1e-3), atol=1e-12)
    assert bn.num_batches_tracked.item() == 1          # eval steps are not counted


def test_without_running_statistics_eval_uses_the_batch():
    x = np.random.default_rng(5).standard_normal((4, 3, 2, 2))
    bn = nn.BatchNorm2d(3, track_running_stats=False, affine=False, dtype=np.float64).eval()
    assert list(bn.state_dict()) == [] and bn.running_mean is None
    y = bn(ae.tensor(x, dtype=np.float64)).numpy()
    np.testing.assert_allclose(y.mean(axis=(0, 2, 3)), 0, atol=1e-12)


@pytest.mark.parametrize("shape", BATCH_NORM_SHAPES)
@pytest.mark.parametrize("momentum", [0.1, None])
def test_batch_norm_matches_pytorch_over_training_and_eval_steps(shape, momentum):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(6)
    ours = batch_norm_module(shape, momentum=momentum)
    theirs = (torch.nn.BatchNorm2d if len(shape) == 4 else torch.nn.BatchNorm1d)(
        shape[1], momentum=momentum).double()
    weight, bias = rng.standard_normal(shape[1]), rng.standard_normal(shape[1])
    ours.weight.data[...], ours.bias.data[...] = weight, bias
    with torch.no_grad():
        theirs.weight.copy_(torch.from_numpy(weight))
        theirs.bias.copy_(torch.from_numpy(bias))
    for step in range(3):
        x = rng.standard_normal(shape) * 1.5 + 0.5
        grad = rng.standard_normal(shape)
        x_ours, x_theirs = leaf(x), torch.tensor(x, requires_grad=True)
        y_ours, y_theirs = ours(x_ours), theirs(x_theirs)
        y_ours.backward(grad)
        y_theirs.backward(torch.from_numpy(grad))
        np.testing.assert_allclose(y_ours.numpy(), y_theirs.detach().numpy(), atol=1e-12)
        np.testing.assert_allclose(x_ours.grad, x_theirs.grad.numpy(), atol=1e-10)
    np.testing.assert_allclose(ours.weight.grad, theirs.weight.grad.numpy(), atol=1e-10)
    for name, value in ours.state_dict().items():
        np.testing.assert_allclose(value, theirs.state_dict()[name].numpy(), atol=1e-12,
                                   err_msg=name)
    ours.eval(), theirs.eval()
    x = rng.standard_normal(shape)
    np.testing.assert_allclose(ours(ae.tensor(x, dtype=np.float64)).numpy(),
                               theirs(torch.from_numpy(x)).detach().numpy(), atol=1e-12)


def test_layer_norm_matches_pytorch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(7)
    x, grad = rng.standard_normal((2, 3, 4, 5)), rng.standard_normal((2, 3, 4, 5))
    weight, bias = rng.standard_normal((4, 5)), rng.standard_normal((4, 5))
    ours = [leaf(a) for a in (x, weight, bias)]
    theirs = [torch.tensor(a, requires_grad=True) for a in (x, weight, bias)]
    y = F.layer_norm(ours[0], (4, 5), ours[1], ours[2], eps=1e-4)
    y_torch = torch.nn.functional.layer_norm(theirs[0], (4, 5), theirs[1], theirs[2], eps=1e-4)
    y.backward(grad)
    y_torch.backward(torch.from_numpy(grad))
    np.testing.assert_allclose(y.numpy(), y_torch.detach().numpy(), atol=1e-12)
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a.grad, b.grad.numpy(), atol=1e-10)


def test_layer_norm_module_defaults_and_names():
    norm = nn.LayerNorm((3, 4))
    assert list(norm.state_dict()) == ["weight", "bias"]
    np.testing.assert_array_equal(norm.weight.numpy(), np.ones((3, 4), np.float32))
    assert nn.LayerNorm(4, bias=False).bias is None
    assert list(nn.LayerNorm(4, elementwise_affine=False).state_dict()) == []
    y = norm(ae.randn(2, 3, 4)).numpy()
    np.testing.assert_allclose(y.mean(axis=(1, 2)), 0, atol=1e-6)


# ---------------------------------------------------------------------------- buffers
def test_buffers_are_named_saved_loaded_and_strict():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2))
    model(ae.randn(4, 1, 5, 5))
    assert [name for name, _ in model.named_buffers()] == [
        "1.running_mean", "1.running_var", "1.num_batches_tracked"]
    assert len(list(model.buffers())) == 3
    state = model.state_dict()
    assert list(state) == ["0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean",
                           "1.running_var", "1.num_batches_tracked"]
    assert state["1.num_batches_tracked"].dtype == np.int64

    other = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2))
    kept = other[1].running_mean                       # loading copies into the buffer
    other.load_state_dict(state)
    assert other[1].running_mean is kept
    np.testing.assert_array_equal(kept.numpy(), state["1.running_mean"])
    assert other[1].num_batches_tracked.item() == 1
    assert other[1].num_batches_tracked.dtype == np.int64

    incomplete = {k: v for k, v in state.items() if k != "1.running_var"}
    with pytest.raises(KeyError, match=r"missing keys \['1.running_var'\]"):
        other.load_state_dict(incomplete)
    missing, unexpected = other.load_state_dict(incomplete, strict=False)
    assert missing == ["1.running_var"] and unexpected == []
    with pytest.raises(ValueError, match=r"1.running_mean has shape \(3,\)"):
        other.load_state_dict(dict(state, **{"1.running_mean": np.zeros(3, np.float32)}))


def test_register_buffer_persistence_assignment_and_checks():
    module = nn.Module()
    module.register_buffer("kept", np.arange(3.0))
    module.register_buffer("scratch", np.zeros(2), persistent=False)
    module.register_buffer("empty", None)
    assert list(module.state_dict()) == ["kept"]
    assert [name for name, _ in module.named_buffers()] == ["kept", "scratch"]
    module.kept = ae.tensor([5.0, 6.0, 7.0])           # assignment replaces the buffer's value
    assert list(module.state_dict()) == ["kept"]
    np.testing.assert_array_equal(module.state_dict()["kept"], [5, 6, 7])
    module.load_state_dict({"kept": np.ones(3)})
    with pytest.raises(TypeError, match="a buffer must be a Tensor, an array or None"):
        module.kept = 3
    with pytest.raises(ValueError, match="without '.'"):
        module.register_buffer("a.b", np.zeros(1))
    module.plain = 1
    with pytest.raises(ValueError, match="already has an attribute 'plain'"):
        module.register_buffer("plain", np.zeros(1))


def test_double_casts_float_buffers_but_not_the_counter():
    bn = nn.BatchNorm1d(3).double()
    assert bn.running_mean.dtype == np.float64 and bn.weight.dtype == np.float64
    assert bn.num_batches_tracked.dtype == np.int64
    assert bn.cpu() is bn and bn.running_var.device == "cpu"


# ---------------------------------------------------------------------------- bad input
def test_bad_arguments_are_refused_by_name():
    with pytest.raises(ValueError, match="num_features must be a positive int"):
        nn.BatchNorm1d(0)
    with pytest.raises(ValueError, match=r"momentum must be in \[0.0, 1.0\]"):
        nn.BatchNorm2d(3, momentum=2)
    with pytest.raises(ValueError, match=r"expected input of shape \(N, C, H, W\)"):
        nn.BatchNorm2d(3)(ae.randn(2, 3))
    with pytest.raises(ValueError, match="expected 3 channels"):
        nn.BatchNorm1d(3)(ae.randn(2, 4))
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        nn.BatchNorm1d(3)(ae.randn(1, 3))
    with pytest.raises(ValueError, match="running_mean must have shape"):
        F.batch_norm(ae.randn(2, 3), ae.zeros(4), ae.ones(4))
    with pytest.raises(ValueError, match="must end with normalized_shape"):
        F.layer_norm(ae.randn(2, 3), (4,))
    with pytest.raises(ValueError, match="normalized_shape must be"):
        nn.LayerNorm(0)
