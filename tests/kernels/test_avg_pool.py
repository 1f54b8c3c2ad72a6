"""avg_pool2d kernels and adaptive average pooling: every tier against the reference, the
reference against PyTorch's per-window loop written out, gradients against finite differences
(float64), deterministic backward passes, PyTorch's own values (when it is installed), the
functional and module forms, and argument errors."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import aecore as ae
import aecore.functional as F
from aecore import kernels, nn
from aecore.inspect.costs import op_cost
from aecore.kernels import avg_pool2d as avg_pool_family
from aecore.kernels import geometry
from strategies import pool_cases
from tiers import run_tier as call, run_twice, tier_params, tiny_shapes

TINY = tiny_shapes()
DTYPES = [np.float32, np.float64]
TOL = {np.float32: dict(rtol=1e-5, atol=1e-6), np.float64: dict(rtol=1e-12, atol=1e-14)}
OPS = ("avg_pool2d_forward", "avg_pool2d_backward")

seeds = st.integers(0, 2**32 - 1)
examples = settings(deadline=None)
few_examples = settings(deadline=None, max_examples=max(1, min(15, settings.default.max_examples // 2)))


# ------------------------------------------------------------------------------------------------
# strategies
# ------------------------------------------------------------------------------------------------

@st.composite
def avg_pool_cases(draw):
    """(x shape, avg_pool2d keyword arguments): max-pool's windows (every padding form, ceil
    mode) and the divisor options (PyTorch accepts any nonzero divisor_override)."""
    shape, kwargs = draw(pool_cases())
    kwargs["count_include_pad"] = draw(st.booleans())
    kwargs["divisor_override"] = draw(st.sampled_from([None, None, None, 1, 3, 7, -2]))
    return shape, kwargs


@st.composite
def adaptive_cases(draw, max_hw=None):
    """(x shape, output_size): outputs smaller, equal and larger than the input, an int or a
    pair, None entries among them."""
    max_hw = max_hw or (5 if TINY else 9)
    n, c = draw(st.integers(1, 2)), draw(st.integers(1, 3))
    h, w = draw(st.integers(1, max_hw)), draw(st.integers(1, max_hw))
    out_h, out_w = draw(st.integers(1, h + 3)), draw(st.integers(1, w + 3))
    form = draw(st.sampled_from(["int", "pair", "none"]))
    if form == "int":
        return (n, c, h, w), out_h
    if form == "none":
        return (n, c, h, w), (out_h, None) if draw(st.booleans()) else (None, out_w)
    return (n, c, h, w), (out_h, out_w)


# ------------------------------------------------------------------------------------------------
# PyTorch's per-window loop, written out (its CPU avg_pool2d kernel)
# ------------------------------------------------------------------------------------------------

def padding_after(size, kernel, stride, padding):
    """The padding after the input along one axis, from the arguments alone."""
    if padding == "valid":
        return 0
    if padding == "same":        # TF: ceil(in / s) outputs, the odd pixel after
        total = max((-(-size // stride) - 1) * stride + kernel - size, 0)
        return total - total // 2
    return padding


def brute_avg_pool(x, grad_y, geom, kwargs):
    """(y, grad_x) window by window: y = sum / divide_factor, grad_x[window] += grad / factor."""
    k_h, k_w = geometry.pair(kwargs["kernel_size"], "kernel_size")
    stride = kwargs.get("stride") or kwargs["kernel_size"]
    s_h, s_w = geometry.pair(stride, "stride")
    padding = kwargs.get("padding", 0)
    pads = (padding, padding) if isinstance(padding, str) else geometry.pair(padding, "padding", 0)
    h, w = x.shape[2:]
    bottom = padding_after(h, k_h, s_h, pads[0])
    right = padding_after(w, k_w, s_w, pads[1])
    y = np.zeros(grad_y.shape)
    grad_x = np.zeros(x.shape)
    for oy in range(geom.out_h):
        for ox in range(geom.out_w):
            h_start, w_start = oy * s_h - geom.pad_top, ox * s_w - geom.pad_left
            h_end, w_end = min(h_start + k_h, h + bottom), min(w_start + k_w, w + right)
            pool_size = (h_end - h_start) * (w_end - w_start)
            h_start, w_start = max(h_start, 0), max(w_start, 0)
            h_end, w_end = min(h_end, h), min(w_end, w)
            if kwargs.get("divisor_override"):
                factor = kwargs["divisor_override"]
            elif kwargs.get("count_include_pad", True):
                factor = pool_size
            else:
                factor = (h_end - h_start) * (w_end - w_start)
            window = (Ellipsis, slice(h_start, h_end), slice(w_start, w_end))
            y[:, :, oy, ox] = x[window].sum(axis=(2, 3)) / factor
            grad_x[window] += grad_y[:, :, oy, ox, None, None] / factor
    return y, grad_x


# ------------------------------------------------------------------------------------------------
# kernels: every tier against the reference, the reference against the loop
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("tier", tier_params(*OPS, compiled_only=True))
@examples
@given(case=avg_pool_cases(), seed=seeds)
def test_avg_pool_tier_matches_reference(tier, dtype, case, seed):
    shape, kwargs = case
    rng = np.random.default_rng(seed)
    geom = geometry.avg_pool2d_geometry(shape, **kwargs)
    x = rng.standard_normal(shape).astype(dtype)
    y = call("avg_pool2d_forward", tier, x, geom)
    y_ref = call("avg_pool2d_forward", "ref", x, geom)
    assert y.dtype == x.dtype and y.shape == y_ref.shape == (shape[0], shape[1], geom.out_h, geom.out_w)
    np.testing.assert_allclose(y, y_ref, **TOL[dtype])
    grad_y = rng.standard_normal(y.shape).astype(dtype)
    grad_x = call("avg_pool2d_backward", tier, grad_y, geom)
    assert grad_x.dtype == x.dtype and grad_x.shape == shape
    np.testing.assert_allclose(grad_x, call("avg_pool2d_backward", "ref", grad_y, geom), **TOL[dtype])


@examples
@given(case=avg_pool_cases(), seed=seeds)
def test_avg_pool_reference_matches_pytorchs_loop(case, seed):
    shape, kwargs = case
    rng = np.random.default_rng(seed)
    geom = geometry.avg_pool2d_geometry(shape, **kwargs)
    no_divisor = {k: v for k, v in kwargs.items() if k not in ("count_include_pad", "divisor_override")}
    assert geom.windows == geometry.max_pool2d_geometry(shape, **no_divisor)   # max-pool's windows
    x = rng.standard_normal(shape)
    grad_y = rng.standard_normal((shape[0], shape[1], geom.out_h, geom.out_w))
    y, grad_x = brute_avg_pool(x, grad_y, geom, kwargs)
    np.testing.assert_allclose(kernels.implementations("avg_pool2d_forward")["ref"](x, geom), y,
                               rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(kernels.implementations("avg_pool2d_backward")["ref"](grad_y, geom),
                               grad_x, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("tier", tier_params(*OPS))
@few_examples
@given(case=avg_pool_cases(), seed=seeds)
def test_avg_pool_backward_is_the_adjoint(tier, case, seed):
    """The op is linear: <pool(d), g> == <d, pool^T(g)> for any d and g, on every tier."""
    shape, kwargs = case
    rng = np.random.default_rng(seed)
    geom = geometry.avg_pool2d_geometry(shape, **kwargs)
    direction = rng.standard_normal(shape)
    grad_y = rng.standard_normal((shape[0], shape[1], geom.out_h, geom.out_w))
    forward = np.sum(call("avg_pool2d_forward", tier, direction, geom) * grad_y)
    backward = np.sum(direction * call("avg_pool2d_backward", tier, grad_y, geom))
    assert abs(forward - backward) <= 1e-12 * (1 + abs(forward))


@pytest.mark.parametrize("tier", tier_params(*OPS))
def test_avg_pool_borders_and_ceil_mode_divisors(tier):
    """PyTorch's divisors on a 6x6 plane of ones, kernel 3, stride 2, padding 1, ceil mode: the
    last window, pushed past the padding, counts up to the padding's edge only (2 rows of 3)."""
    x = np.ones((1, 1, 6, 6))
    with_pad = np.outer([3, 3, 3, 2], [3, 3, 3, 2])      # rows counted, padding included
    real = np.outer([2, 3, 3, 1], [2, 3, 3, 1])          # rows inside the input
    for options, divisor in ((dict(count_include_pad=True), with_pad),
                             (dict(count_include_pad=False), real),
                             (dict(divisor_override=2), np.full((4, 4), 2))):
        geom = geometry.avg_pool2d_geometry(x.shape, 3, 2, 1, ceil_mode=True, **options)
        np.testing.assert_allclose(call("avg_pool2d_forward", tier, x, geom)[0, 0], real / divisor,
                                   rtol=1e-15)


@pytest.mark.parametrize("tier", tier_params(*OPS))
def test_avg_pool_same_padding_averages_what_keras_does(tier):
    """TF 'same' on 7x7 -> 4x4 pads one row and column after the input. count_include_pad=False
    averages the real pixels only (Keras' AveragePooling2D): the corner window holds one pixel
    and returns it; True divides it by all four positions."""
    x = np.arange(49.0).reshape(1, 1, 7, 7)
    keras = geometry.avg_pool2d_geometry(x.shape, 2, padding="same", count_include_pad=False)
    zero_padded = geometry.avg_pool2d_geometry(x.shape, 2, padding="same")
    y = call("avg_pool2d_forward", tier, x, keras)[0, 0]
    assert y.shape == (4, 4) and y[3, 3] == 48.0 and y[0, 3] == (6 + 13) / 2
    assert y[0, 0] == (0 + 1 + 7 + 8) / 4
    y_padded = call("avg_pool2d_forward", tier, x, zero_padded)[0, 0]
    assert y_padded[3, 3] == 48.0 / 4 and y_padded[0, 3] == (6 + 13) / 4


@pytest.mark.parametrize("tier", tier_params(*OPS))
def test_avg_pool_non_finite_values_stay_in_their_windows(tier):
    x = np.zeros((1, 1, 4, 4))
    x[0, 0, 0, 0], x[0, 0, 3, 3] = np.nan, np.inf
    geom = geometry.avg_pool2d_geometry(x.shape, 2, padding=1, count_include_pad=False)
    y = call("avg_pool2d_forward", tier, x, geom)[0, 0]     # 3x3 windows, rows [-1, 1) [1, 3) [3, 5)
    expected = np.zeros((3, 3))
    expected[0, 0], expected[2, 2] = np.nan, np.inf
    np.testing.assert_array_equal(y, expected)              # NaN where expected is NaN
    grad_y = np.zeros((1, 1, 3, 3))
    grad_y[0, 0, 1, 1] = np.nan                             # window (1, 1): rows and cols 1, 2
    grad_x = call("avg_pool2d_backward", tier, grad_y, geom)[0, 0]
    expected = np.zeros((4, 4))
    expected[1:3, 1:3] = np.nan
    np.testing.assert_array_equal(grad_x, expected)


@pytest.mark.parametrize("tier", tier_params(*OPS))
def test_avg_pool_backward_is_deterministic(tier):
    rng = np.random.default_rng(0)
    shape = (2, 2, 5, 5) if TINY else (3, 4, 9, 9)
    geom = geometry.avg_pool2d_geometry(shape, 3, stride=1, padding=1)   # heavily overlapping
    grad_y = rng.standard_normal((shape[0], shape[1], geom.out_h, geom.out_w)).astype(np.float32)
    first, second = run_twice("avg_pool2d_backward", tier, grad_y, geom)
    assert first.tobytes() == second.tobytes()


def test_avg_pool_costs_come_from_the_description():
    geom = geometry.avg_pool2d_geometry((2, 3, 7, 7), 2, padding="same")
    out = 2 * 3 * 4 * 4
    assert op_cost("avg_pool2d_forward", geom, 4) == (out * 4, 4 * (2 * 3 * 49 + out + 16))
    assert op_cost("avg_pool2d_backward", geom, 4) == (2 * out * 4, 4 * (out + 2 * 3 * 49 + 16))


def test_registry_refuses_a_broken_or_foreign_geometry():
    x = np.zeros((1, 1, 8, 8))
    forward = kernels.implementations("avg_pool2d_forward")["ref"]
    geom = geometry.avg_pool2d_geometry(x.shape, 2)
    with pytest.raises(ValueError, match="divisor_override"):
        forward(x, geom.replace(divisor_override=0))
    with pytest.raises(ValueError, match="count_include_pad"):
        forward(x, geom.replace(count_include_pad=1))
    with pytest.raises(ValueError, match="out_h"):
        forward(x, geom.replace(out_h=5))                   # a window past the input
    with pytest.raises(ValueError, match="avg_pool2d_geometry"):
        forward(x, geometry.max_pool2d_geometry(x.shape, 2))


# ------------------------------------------------------------------------------------------------
# against PyTorch itself
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("tier", tier_params(*OPS))
@few_examples
@given(case=avg_pool_cases(), seed=seeds)
def test_avg_pool_matches_pytorch(tier, case, seed):
    torch = pytest.importorskip("torch")
    shape, kwargs = case
    geom = geometry.avg_pool2d_geometry(shape, **kwargs)
    equivalent = avg_pool_family.torch_equivalent(geom)
    if not isinstance(kwargs["padding"], str):
        assert equivalent is not None       # every PyTorch call has itself as its equivalent
    if equivalent is None:
        return                              # TF's asymmetric 'same' where it changes a divisor
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    grad_y = rng.standard_normal((shape[0], shape[1], geom.out_h, geom.out_w))
    x_t = torch.tensor(x, requires_grad=True)
    padding, ceil_mode = equivalent
    y_t = torch.nn.functional.avg_pool2d(x_t, (geom.k_h, geom.k_w), (geom.stride_h, geom.stride_w),
                                         padding, ceil_mode, kwargs["count_include_pad"],
                                         kwargs["divisor_override"])
    y_t.backward(torch.tensor(grad_y))
    np.testing.assert_allclose(call("avg_pool2d_forward", tier, x, geom), y_t.detach().numpy(),
                               rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(call("avg_pool2d_backward", tier, grad_y, geom), x_t.grad.numpy(),
                               rtol=1e-12, atol=1e-14)


@few_examples
@given(case=adaptive_cases(), seed=seeds)
def test_adaptive_avg_pool_matches_pytorch(case, seed):
    torch = pytest.importorskip("torch")
    shape, output_size = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    ours = ae.tensor(x, requires_grad=True)
    y = F.adaptive_avg_pool2d(ours, output_size)
    grad_y = rng.standard_normal(y.shape)
    y.backward(grad_y)
    x_t = torch.tensor(x, requires_grad=True)
    y_t = torch.nn.functional.adaptive_avg_pool2d(x_t, output_size)
    y_t.backward(torch.tensor(grad_y))
    np.testing.assert_allclose(y.numpy(), y_t.detach().numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(np.asarray(ours.grad), x_t.grad.numpy(), rtol=1e-12, atol=1e-14)


# ------------------------------------------------------------------------------------------------
# functional and module forms
# ------------------------------------------------------------------------------------------------

CPU_TIERS = tier_params(*OPS, cpu_only=True)


@pytest.mark.parametrize("tier", CPU_TIERS)
@few_examples
@given(case=avg_pool_cases(), seed=seeds)
def test_avg_pool2d_gradients(tier, case, seed):
    shape, kwargs = case
    x = ae.tensor(np.random.default_rng(seed).standard_normal(shape), dtype=np.float64,
                  requires_grad=True)
    with ae.use_tier(tier):
        assert ae.gradcheck(lambda t: F.avg_pool2d(t, **kwargs), [x])


@pytest.mark.parametrize("tier", CPU_TIERS)
@few_examples
@given(case=adaptive_cases(max_hw=7), seed=seeds)
def test_adaptive_avg_pool2d_gradients(tier, case, seed):
    shape, output_size = case
    x = ae.tensor(np.random.default_rng(seed).standard_normal(shape), dtype=np.float64,
                  requires_grad=True)
    with ae.use_tier(tier):
        assert ae.gradcheck(lambda t: F.adaptive_avg_pool2d(t, output_size), [x])


@examples
@given(case=adaptive_cases(), seed=seeds)
def test_adaptive_bins_are_pytorchs(case, seed):
    """Every bin is [floor(o * in / out), ceil((o + 1) * in / out)), and equal bins run
    avg_pool2d's kernels, with the values the NumPy bins give."""
    shape, output_size = case
    geom = geometry.adaptive_avg_pool2d_geometry(shape, output_size)
    for size, out, bins in ((geom.h, geom.out_h, geom.bins_h), (geom.w, geom.out_w, geom.bins_w)):
        assert bins == tuple((o * size // out, -(-(o + 1) * size // out)) for o in range(out))
        assert all(0 <= start < end <= size for start, end in bins)
    x = np.random.default_rng(seed).standard_normal(shape)
    y = F.adaptive_avg_pool2d(ae.tensor(x, requires_grad=True), output_size)
    uniform = geom.h % geom.out_h == 0 and geom.w % geom.out_w == 0
    assert y.creator.name == ("AvgPool2d" if uniform else "AdaptiveAvgPool2d")
    np.testing.assert_allclose(y.numpy(), avg_pool_family.adaptive_avg_pool2d_ref(x, geom),
                               rtol=1e-12, atol=1e-14)


def test_adaptive_avg_pool_keeps_a_nan_in_its_bins():
    x = np.zeros((1, 1, 5, 5))
    x[0, 0, 0, 0] = np.nan
    y = F.adaptive_avg_pool2d(ae.tensor(x), 3).numpy()[0, 0]         # bins [0,2) [1,4) [3,5)
    assert np.isnan(y[0, 0]) and np.isfinite(np.delete(y.ravel(), 0)).all()


def test_modules_run_the_functional_ops():
    x = ae.tensor(np.random.default_rng(0).standard_normal((2, 3, 7, 6)))
    pool = nn.AvgPool2d(3, 2, 1, ceil_mode=True, count_include_pad=False, divisor_override=None)
    np.testing.assert_array_equal(pool(x).numpy(), F.avg_pool2d(x, 3, 2, 1, True, False).numpy())
    assert pool.stride == (2, 2) and nn.AvgPool2d(2).stride == (2, 2)
    assert "count_include_pad=False" in repr(pool) and not isinstance(pool, nn.MaxPool2d)
    keras_like = nn.AvgPool2d(2, padding="same", count_include_pad=False)
    assert keras_like(x).shape == (2, 3, 4, 3)
    assert nn.AdaptiveAvgPool2d(1)(x).shape == (2, 3, 1, 1)
    np.testing.assert_allclose(nn.AdaptiveAvgPool2d((None, 4))(x).numpy(),
                               F.adaptive_avg_pool2d(x, (7, 4)).numpy())
    assert repr(nn.AdaptiveAvgPool2d((2, None))) == "AdaptiveAvgPool2d(output_size=(2, None))"
    np.testing.assert_allclose(nn.AdaptiveAvgPool2d(1)(x).numpy()[..., 0, 0],
                               x.numpy().mean(axis=(2, 3)), rtol=1e-12)


@pytest.mark.parametrize("call_op, error, name", [
    (lambda x: F.avg_pool2d(x, 2, divisor_override=0), ValueError, "divisor_override"),
    (lambda x: F.avg_pool2d(x, 2, divisor_override=1.5), TypeError, "divisor_override"),
    (lambda x: F.avg_pool2d(x, 2, divisor_override=True), TypeError, "divisor_override"),
    (lambda x: F.avg_pool2d(x, 2, count_include_pad="yes"), TypeError, "count_include_pad"),
    (lambda x: F.avg_pool2d(x, 2, padding=2), ValueError, "padding"),
    (lambda x: F.avg_pool2d(x, 9), ValueError, "kernel_size"),
    (lambda x: F.avg_pool2d(x, 2, padding="same", ceil_mode=True), ValueError, "ceil_mode"),
    (lambda x: F.avg_pool2d(x, 2, padding="full"), ValueError, "padding"),
    (lambda x: F.adaptive_avg_pool2d(x, 0), ValueError, "output_size"),
    (lambda x: F.adaptive_avg_pool2d(x, (2,)), TypeError, "output_size"),
    (lambda x: F.adaptive_avg_pool2d(x, 1.5), TypeError, "output_size"),
    (lambda x: F.adaptive_avg_pool2d(x[0], 2), ValueError, "input"),
    (lambda x: F.avg_pool2d(np.ones((1, 1, 4, 4), np.float16), 2), TypeError,
     "avg_pool2d: input x has dtype float16"),
    (lambda x: F.adaptive_avg_pool2d(np.ones((1, 1, 4, 4), np.float16), 2), TypeError,
     "adaptive_avg_pool2d: input x has dtype float16"),
])
def test_argument_errors_name_the_argument(call_op, error, name):
    x = ae.tensor(np.zeros((1, 2, 6, 6), np.float32))
    with pytest.raises(error, match=name):
        call_op(x)
