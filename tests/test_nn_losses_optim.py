"""Modules, initializers, losses and optimizers."""

import math

import numpy as np
import pytest
from hypothesis import given

import aecore as ae
import aecore.functional as F
from aecore import losses, nn, optim
from strategies import arrays


# ---------------------------------------------------------------------------- modules
def small_mlp(dtype=np.float32):
    return nn.Sequential(nn.Linear(4, 3, dtype=dtype), nn.ReLU(), nn.Linear(3, 2, dtype=dtype))


def test_module_registers_parameters_and_prints():
    model = small_mlp()
    names = [name for name, _ in model.named_parameters()]
    assert names == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert model.num_parameters() == 4 * 3 + 3 + 3 * 2 + 2
    assert "(0): Linear(in_features=4, out_features=3, bias=True)" in repr(model)
    model.eval()
    assert not any(m.training for m in model.modules())
    model.train()
    assert all(m.training for m in model.modules())


def test_state_dict_round_trip_and_errors():
    model, other = small_mlp(), small_mlp()
    state = model.state_dict()
    other.load_state_dict(state)
    for (name, a), (_, b) in zip(model.named_parameters(), other.named_parameters()):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=name)
    state["0.weight"] = np.zeros((5, 5), np.float32)
    with pytest.raises(ValueError, match=r"0.weight has shape \(5, 5\)"):
        other.load_state_dict(state)
    with pytest.raises(KeyError, match="missing keys"):
        other.load_state_dict({})


def test_linear_matches_numpy_and_gradchecks():
    layer = nn.Linear(5, 3, dtype=np.float64)
    x = ae.tensor(np.random.rand(4, 5), dtype=np.float64, requires_grad=True)
    expected = x.numpy() @ layer.weight.numpy().T + layer.bias.numpy()
    np.testing.assert_allclose(layer(x).numpy(), expected, rtol=1e-12)
    assert ae.gradcheck(lambda a, w, b: F.linear(a, w, b), [x, layer.weight, layer.bias])
    with pytest.raises(ValueError, match=r"input has 4 features.*weight expects 5"):
        layer(ae.tensor(np.ones((2, 4))))


@pytest.mark.parametrize("bias", [True, False])
def test_linear_is_one_node_with_the_bits_of_matmul_and_add(bias):
    """F.linear on a 2-D input is one graph node (functional.Linear) giving the very bits of the
    general composition x @ W.T + b; with more axes it is that composition."""
    rng = np.random.default_rng(0)
    x_host = rng.standard_normal((200, 784)).astype(np.float32)
    w_host = rng.standard_normal((64, 784)).astype(np.float32) * 0.05
    b_host = rng.standard_normal(64).astype(np.float32)
    g_host = rng.standard_normal((200, 64)).astype(np.float32)
    results = []
    for fused in (True, False):
        x, w = ae.tensor(x_host, requires_grad=True), ae.tensor(w_host, requires_grad=True)
        b = ae.tensor(b_host, requires_grad=True) if bias else None
        y = F.linear(x, w, b) if fused else (x @ w.T + b if bias else x @ w.T)
        assert (type(y.creator).__name__ == "Linear") == fused
        (y * ae.tensor(g_host)).sum().backward()
        results.append([y.numpy(), x.grad, w.grad] + ([b.grad] if bias else []))
    for fused, plain in zip(*results):
        np.testing.assert_array_equal(fused, plain)
    three_d = F.linear(ae.tensor(x_host.reshape(8, 25, 784)), ae.tensor(w_host))
    assert three_d.shape == (8, 25, 64) and type(three_d.creator).__name__ != "Linear"


def test_flatten_unflatten():
    x = ae.tensor(np.arange(24, dtype=np.float32).reshape(2, 3, 4))
    flat = nn.Flatten()(x)
    assert flat.shape == (2, 12)
    assert nn.Unflatten(1, (3, 4))(flat).shape == (2, 3, 4)
    with pytest.raises(ValueError, match="cannot be split"):
        nn.Unflatten(1, (5, 5))(flat)


def test_forward_and_backward_hooks_see_each_layer_once():
    model = small_mlp()
    seen_forward, seen_backward = [], []
    for name, module in model.named_children():
        module.register_forward_hook(lambda m, inputs, out, name=name: seen_forward.append((name, out.shape)))
        module.register_full_backward_hook(lambda m, grad, name=name: seen_backward.append((name, grad.shape)))
    model(ae.tensor(np.random.rand(5, 4), dtype=np.float32)).sum().backward()
    assert seen_forward == [("0", (5, 3)), ("1", (5, 3)), ("2", (5, 2))]
    assert sorted(seen_backward) == sorted(seen_forward)


@pytest.mark.parametrize("initializer,expected_std", [
    (lambda w: nn.init.kaiming_uniform_(w, nonlinearity="relu"), math.sqrt(2 / 200)),
    (lambda w: nn.init.kaiming_normal_(w, nonlinearity="relu"), math.sqrt(2 / 200)),
    (lambda w: nn.init.xavier_uniform_(w), math.sqrt(2 / (200 + 300))),
    (lambda w: nn.init.xavier_normal_(w), math.sqrt(2 / (200 + 300))),
])
def test_initializers_have_the_textbook_spread(initializer, expected_std):
    weight = nn.Parameter(np.zeros((300, 200), np.float32))
    initializer(weight)
    assert abs(weight.numpy().std() / expected_std - 1) < 0.03
    ae.manual_seed(5)
    first = initializer(nn.Parameter(np.zeros((3, 2), np.float32))).numpy()
    ae.manual_seed(5)
    np.testing.assert_array_equal(first, initializer(nn.Parameter(np.zeros((3, 2), np.float32))).numpy())


# ---------------------------------------------------------------------------- losses
def t64(a, grad=True):
    return ae.tensor(np.asarray(a, np.float64), requires_grad=grad)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@given(logits=arrays((3, 4), -6, 6), target=arrays((3, 4), 0, 1))
def test_bce_with_logits_matches_definition_and_gradchecks(reduction, logits, target):
    z, y = t64(logits), t64(target)
    p = 1 / (1 + np.exp(-logits))
    elementwise = -(target * np.log(p) + (1 - target) * np.log(1 - p))
    expected = {"mean": elementwise.mean(), "sum": elementwise.sum(), "none": elementwise}[reduction]
    loss = F.binary_cross_entropy_with_logits(z, y, reduction=reduction)
    np.testing.assert_allclose(loss.numpy(), expected, rtol=1e-9)
    assert ae.gradcheck(lambda a, b: F.binary_cross_entropy_with_logits(a, b, reduction=reduction), [z, y])


def test_bce_with_logits_is_finite_for_huge_logits():
    z = ae.tensor([-1e4, 1e4, -1e4, 1e4], requires_grad=True)
    y = ae.tensor([0.0, 1.0, 1.0, 0.0])
    loss = F.binary_cross_entropy_with_logits(z, y, reduction="none")
    np.testing.assert_allclose(loss.numpy(), [0, 0, 1e4, 1e4], rtol=1e-6)
    loss.sum().backward()
    np.testing.assert_allclose(z.grad, [0, 0, -1, 1])


@given(p=arrays((2, 5), 0.05, 0.95), target=arrays((2, 5), 0, 1))
def test_bce_on_probabilities(p, target):
    expected = -(target * np.log(p) + (1 - target) * np.log(1 - p)).mean()
    pt, yt = t64(p), t64(target)
    np.testing.assert_allclose(F.binary_cross_entropy(pt, yt).numpy(), expected, rtol=1e-10)
    assert ae.gradcheck(lambda a, b: F.binary_cross_entropy(a, b), [pt, yt])


def test_bce_clamps_log_at_zero_and_one_and_rejects_logits():
    p = ae.tensor([0.0, 1.0], requires_grad=True)
    loss = F.binary_cross_entropy(p, ae.tensor([1.0, 0.0]), reduction="none")
    np.testing.assert_allclose(loss.numpy(), [100, 100])
    loss.sum().backward()
    assert np.all(np.isfinite(p.grad))
    with pytest.raises(ValueError, match="probabilities in \\[0, 1\\].*with_logits"):
        F.binary_cross_entropy(ae.tensor([2.0]), ae.tensor([1.0]))


@given(a=arrays((3, 4)), b=arrays((3, 4)))
def test_mse_and_l1(a, b):
    x, y = t64(a), t64(b)
    np.testing.assert_allclose(F.mse_loss(x, y).numpy(), ((a - b) ** 2).mean(), rtol=1e-12)
    np.testing.assert_allclose(F.mse_loss(x, y, reduction="sum").numpy(), ((a - b) ** 2).sum(), rtol=1e-12)
    assert ae.gradcheck(lambda u, v: F.mse_loss(u, v), [x, y])


def test_loss_argument_errors():
    x = ae.tensor(np.ones((2, 3)))
    with pytest.raises(ValueError, match="target shape"):
        F.mse_loss(x, ae.tensor(np.ones((3, 2))))
    with pytest.raises(ValueError, match="reduction must be one of"):
        F.mse_loss(x, x, reduction="avg")


@given(mu=arrays((3, 4)), logvar=arrays((3, 4), -3, 3))
def test_gaussian_kl_closed_form(mu, logvar):
    sigma2 = np.exp(logvar)
    expected = (0.5 * (mu ** 2 + sigma2 - logvar - 1)).sum(axis=1)
    m, lv = t64(mu), t64(logvar)
    np.testing.assert_allclose(losses.gaussian_kl(m, lv, reduction="none").numpy(), expected, rtol=1e-10)
    assert ae.gradcheck(lambda a, b: losses.gaussian_kl(a, b), [m, lv])


def test_gaussian_kl_is_zero_for_the_prior():
    zero = ae.tensor(np.zeros((2, 3)))
    assert losses.gaussian_kl(zero, zero).item() == 0.0


def test_penalties():
    a, b = t64([[1.0, -2.0]]), t64([3.0])
    assert losses.l1_penalty([a, b]).item() == 6.0
    assert losses.l2_penalty([a, b]).item() == 14.0
    assert ae.gradcheck(lambda u, v: losses.l2_penalty([u, v]) + losses.l1_penalty([u, v]), [a, b])


# ---------------------------------------------------------------------------- optimizers
def reference_steps(name, hyper, p, grads):
    """The update rules written out from PyTorch's documented pseudo-code, one step at a time."""
    p = p.copy()
    m = np.zeros_like(p)
    v = np.zeros_like(p)
    g_avg = np.zeros_like(p)
    buf = None
    for t, g in enumerate(grads, start=1):
        g = g + hyper.get("weight_decay", 0) * p
        if name == "sgd":
            mom = hyper.get("momentum", 0)
            if mom:
                buf = g.copy() if buf is None else mom * buf + (1 - hyper.get("dampening", 0)) * g
                g = g + mom * buf if hyper.get("nesterov") else buf
            p = p - hyper["lr"] * g
        elif name == "adam":
            b1, b2 = hyper.get("betas", (0.9, 0.999))
            m = b1 * m + (1 - b1) * g
            v = b2 * v + (1 - b2) * g * g
            m_hat, v_hat = m / (1 - b1 ** t), v / (1 - b2 ** t)
            p = p - hyper["lr"] * m_hat / (np.sqrt(v_hat) + hyper.get("eps", 1e-8))
        elif name == "rmsprop":
            alpha, eps = hyper.get("alpha", 0.99), hyper.get("eps", 1e-8)
            v = alpha * v + (1 - alpha) * g * g
            if hyper.get("centered"):
                g_avg = alpha * g_avg + (1 - alpha) * g
                avg = np.sqrt(v - g_avg ** 2) + eps
            else:
                avg = np.sqrt(v) + eps
            if hyper.get("momentum", 0):
                m = hyper["momentum"] * m + g / avg
                p = p - hyper["lr"] * m
            else:
                p = p - hyper["lr"] * g / avg
    return p


OPTIMIZER_CASES = [
    ("sgd", dict(lr=0.1)),
    ("sgd", dict(lr=0.1, momentum=0.9, weight_decay=0.01)),
    ("sgd", dict(lr=0.1, momentum=0.9, nesterov=True)),
    ("sgd", dict(lr=0.1, momentum=0.5, dampening=0.3)),
    ("adam", dict(lr=0.01)),
    ("adam", dict(lr=0.01, betas=(0.8, 0.99), weight_decay=0.1)),
    ("rmsprop", dict(lr=0.01)),
    ("rmsprop", dict(lr=0.01, centered=True, momentum=0.9, weight_decay=0.05)),
]


@pytest.mark.parametrize("name,hyper", OPTIMIZER_CASES)
def test_optimizer_matches_reference_rule(name, hyper):
    rng = np.random.default_rng(1)
    start = rng.standard_normal((3, 4))
    grads = [rng.standard_normal((3, 4)) for _ in range(5)]
    param = nn.Parameter(start.copy())
    optimizer = optim.OPTIMIZERS[name]([param], **hyper)
    for g in grads:
        optimizer.zero_grad()
        param.grad = g.copy()
        optimizer.step()
    np.testing.assert_allclose(param.numpy(), reference_steps(name, hyper, start, grads), rtol=1e-12)


@pytest.mark.parametrize("name,hyper", OPTIMIZER_CASES)
def test_optimizer_state_dict_resumes_exactly(name, hyper):
    rng = np.random.default_rng(2)
    grads = [rng.standard_normal(4) for _ in range(6)]
    straight = nn.Parameter(np.ones(4))
    opt = optim.OPTIMIZERS[name]([straight], **hyper)
    for g in grads:
        straight.grad = g.copy()
        opt.step()
    resumed = nn.Parameter(np.ones(4))
    first = optim.OPTIMIZERS[name]([resumed], **hyper)
    for g in grads[:3]:
        resumed.grad = g.copy()
        first.step()
    state = first.state_dict()
    second = optim.OPTIMIZERS[name]([resumed], lr=123.0)
    second.load_state_dict(state)
    for g in grads[3:]:
        resumed.grad = g.copy()
        second.step()
    np.testing.assert_array_equal(resumed.numpy(), straight.numpy())


def test_optimizer_argument_errors():
    p = nn.Parameter(np.ones(2))
    with pytest.raises(ValueError, match="lr must be >= 0"):
        optim.Adam([p], lr=-1)
    with pytest.raises(TypeError, match="unknown arguments \\['momentum'\\]"):
        optim.Adam([p], momentum=0.9)
    with pytest.raises(ValueError, match="nesterov"):
        optim.SGD([p], nesterov=True)
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.SGD([])


@pytest.mark.parametrize("name", ["sgd", "adam", "rmsprop"])
def test_optimizers_fit_a_linear_regression(name):
    rng = np.random.default_rng(0)
    x = ae.tensor(rng.standard_normal((64, 3)), dtype=np.float32)
    true_w = np.array([[1.5, -2.0, 0.5]], np.float32)
    y = ae.tensor(x.numpy() @ true_w.T + 0.3)
    layer = nn.Linear(3, 1)
    lr = {"sgd": 0.1, "adam": 0.05, "rmsprop": 0.01}[name]
    opt = optim.OPTIMIZERS[name](layer.parameters(), lr=lr)
    for _ in range(300):
        opt.zero_grad()
        loss = F.mse_loss(layer(x), y)
        loss.backward()
        opt.step()
    assert loss.item() < 1e-3


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bce_with_logits_in_place_is_bitwise_the_plain_formula(dtype):
    """BinaryCrossEntropyWithLogits computes in two buffers, in place; its values and gradient
    are the plain formulas' to the bit, NaN, infinities and zeros included."""
    import aecore as ae
    from aecore.ops import stable_sigmoid
    rng = np.random.default_rng(0)
    z = (rng.standard_normal((64, 50)) * 8).astype(dtype)
    z.flat[:6] = [np.nan, np.inf, -np.inf, 0.0, -0.0, 90.0]
    y = rng.random(z.shape).astype(dtype)
    grad = rng.standard_normal(z.shape).astype(dtype)
    zt = ae.tensor(z, requires_grad=True)
    with np.errstate(all="ignore"):         # inf - inf at z = inf, as in the plain form
        loss = ae.functional.binary_cross_entropy_with_logits(zt, ae.tensor(y), reduction="none")
        loss.backward(ae.tensor(grad))
        plain = np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z)))
        plain_grad = grad * (stable_sigmoid(z) - y)
    np.testing.assert_array_equal(loss.data, plain)
    np.testing.assert_array_equal(zt.grad, plain_grad)
