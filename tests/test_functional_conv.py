"""The conv-family ops in the graph: every backward output vs finite differences (float64),
on every CPU tier, over drawn geometry; modules; and argument errors before any kernel runs."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import aecore as ae
import aecore.functional as F
from aecore import kernels, nn
from strategies import conv2d_cases, conv_transpose2d_cases, no_ties, pool_cases, upsample_cases
from tiers import tier_params

# Graph-level checks run on the CPU tiers; the cuda tier is compared with the reference kernel
# by kernel in tests/kernels/.
CPU_TIERS = tier_params("conv2d_forward", cpu_only=True)


def t64(shape, rng, scale=1.0):
    return ae.tensor(rng.standard_normal(shape) * scale, dtype=np.float64, requires_grad=True)


@pytest.mark.parametrize("tier", CPU_TIERS)
@given(case=conv2d_cases(max_hw=7), with_bias=st.booleans(), seed=st.integers(0, 2 ** 16))
def test_conv2d_gradients(tier, case, with_bias, seed):
    x_shape, w_shape, stride, padding = case
    rng = np.random.default_rng(seed)
    x, w = t64(x_shape, rng), t64(w_shape, rng)
    inputs = [x, w] + ([t64((w_shape[0],), rng)] if with_bias else [])
    with ae.use_tier(tier):
        assert ae.gradcheck(lambda *t: F.conv2d(t[0], t[1], t[2] if with_bias else None,
                                                stride, padding), inputs)


@pytest.mark.parametrize("tier", CPU_TIERS)
@given(case=conv_transpose2d_cases(max_hw=6), with_bias=st.booleans(), seed=st.integers(0, 2 ** 16))
def test_conv_transpose2d_gradients(tier, case, with_bias, seed):
    x_shape, w_shape, stride, padding, output_padding = case
    rng = np.random.default_rng(seed)
    x, w = t64(x_shape, rng), t64(w_shape, rng)
    inputs = [x, w] + ([t64((w_shape[1],), rng)] if with_bias else [])
    with ae.use_tier(tier):
        assert ae.gradcheck(lambda *t: F.conv_transpose2d(
            t[0], t[1], t[2] if with_bias else None, stride, padding, output_padding), inputs)


@pytest.mark.parametrize("tier", CPU_TIERS)
@given(case=pool_cases(max_hw=7), seed=st.integers(0, 2 ** 16))
def test_max_pool2d_gradients(tier, case, seed):
    x_shape, kwargs = case
    x = ae.tensor(no_ties(x_shape, np.random.default_rng(seed)), dtype=np.float64, requires_grad=True)
    with ae.use_tier(tier):
        assert ae.gradcheck(lambda t: F.max_pool2d(t, **kwargs), [x])


@pytest.mark.parametrize("tier", CPU_TIERS)
@given(case=upsample_cases(max_hw=6, max_out=10), seed=st.integers(0, 2 ** 16))
def test_interpolate_gradients(tier, case, seed):
    x_shape, kwargs = case
    x = t64(x_shape, np.random.default_rng(seed))
    with ae.use_tier(tier):
        assert ae.gradcheck(lambda t: F.interpolate(t, **kwargs), [x])


def test_classic_cae_shapes_with_same_padding():
    x = ae.tensor(np.zeros((2, 1, 28, 28), np.float32))
    sizes = []
    for _ in range(3):
        x = F.max_pool2d(x, 2, padding="same")
        sizes.append(x.shape[-1])
    assert sizes == [14, 7, 4]
    assert F.interpolate(x, size=(7, 7)).shape == (2, 1, 7, 7)
    y = F.conv_transpose2d(ae.tensor(np.zeros((1, 2, 7, 7), np.float32)),
                           ae.tensor(np.zeros((2, 3, 3, 3), np.float32)), stride=2, padding="same")
    assert y.shape == (1, 3, 14, 14)


def test_modules_build_run_and_record_tier():
    ae.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding="same"), nn.ReLU(), nn.MaxPool2d(2),
                          nn.ConvTranspose2d(4, 2, 3, stride=2, padding=1, output_padding=1),
                          nn.Upsample(scale_factor=2, mode="bilinear"), nn.Conv2d(2, 1, 1))
    x = ae.tensor(np.random.default_rng(0).random((3, 1, 8, 8)), dtype=np.float32)
    y = model(x)
    assert y.shape == (3, 1, 16, 16)
    expected_tier = "numba" if "numba" in kernels.tiers_of("conv2d_forward") else "ref"
    assert y.creator.tier == expected_tier
    y.sum().backward()
    assert all(p.grad is not None and p.grad.shape == p.shape for p in model.parameters())
    bound = 1 / np.sqrt(1 * 3 * 3)  # PyTorch's default init: U(-1/sqrt(fan_in), 1/sqrt(fan_in))
    assert np.abs(model[0].weight.numpy()).max() <= bound


@pytest.mark.parametrize("call,message", [
    (lambda x: F.conv2d(x, ae.tensor(np.zeros((2, 3, 3, 3)))), r"weight expects 3 input channels.*input has 1"),
    (lambda x: F.conv2d(x, ae.tensor(np.zeros((2, 1, 9, 9)))), r"kernel size \(9, 9\) is larger than the padded input"),
    (lambda x: F.conv2d(x, ae.tensor(np.zeros((2, 1, 3)))), r"weight must be 4-D"),
    (lambda x: F.conv2d(x, ae.tensor(np.zeros((2, 1, 3, 3))), stride=0), r"stride must be >= 1"),
    (lambda x: F.conv2d(x, ae.tensor(np.zeros((2, 1, 3, 3))), padding="full"), r"padding must be"),
    (lambda x: F.conv2d(x, ae.tensor(np.zeros((2, 1, 3, 3))), ae.tensor(np.zeros(3))), r"bias must have shape \(2,\)"),
    (lambda x: F.conv_transpose2d(x, ae.tensor(np.zeros((1, 2, 3, 3))), stride=2, output_padding=2),
     r"output_padding must be smaller than stride"),
    (lambda x: F.max_pool2d(x, 9), r"kernel_size \(9, 9\) is larger than the padded input"),
    (lambda x: F.max_pool2d(x, 2, padding=2), r"padding must be at most half of kernel_size"),
    (lambda x: F.interpolate(x, scale_factor=-1), r"scale_factor must be positive"),
    (lambda x: F.interpolate(x, size=3, scale_factor=2), r"exactly one of size or scale_factor"),
    (lambda x: F.interpolate(x, size=0), r"size must be >= 1"),
    (lambda x: F.interpolate(x, size=3, mode="bicubic"), r"mode must be one of 'nearest', 'nearest-exact', 'bilinear'"),
    (lambda x: F.interpolate(x, size=3, align_corners=True), r"align_corners can only be set"),
    (lambda x: F.conv2d(ae.tensor(np.zeros((1, 5, 5))), x), r"input must be 4-D"),
])
def test_impossible_geometry_is_refused_before_any_kernel_runs(call, message, monkeypatch):
    def no_kernels(*args, **kwargs):
        raise AssertionError("a kernel ran before the arguments were checked")
    monkeypatch.setattr(kernels, "dispatch", no_kernels)
    x = ae.tensor(np.zeros((1, 1, 5, 5)))
    with pytest.raises((ValueError, TypeError), match=message):
        call(x)
