"""F.upsample_conv2d and nn.UpsampleConv2d: a resize then a conv, with nearest upsampling by a
whole factor folded into one transposed conv (geometry.nearest_fold_geometry). The fold must give
the two ops' values and gradients (float64, 1e-10) on every CPU tier, run exactly when the rule
says it can, and its own backward (FoldNearest) must pass finite differences."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import aecore as ae
import aecore.functional as F
from aecore import nn
from aecore.kernels import geometry
from strategies import upsample_conv2d_cases
from tiers import tier_params

CPU_TIERS = tier_params("conv2d_forward", cpu_only=True)
FOLDED_OPS = ("ConvTranspose2d",)
PLAIN_OPS = ("Conv2d",)


def t64(shape, rng):
    return ae.tensor(rng.standard_normal(shape), dtype=np.float64, requires_grad=True)


def run(arrays, kwargs, fold, tier):
    """Forward and backward (with a fixed, non-uniform output gradient): y, its op, the grads."""
    inputs = [ae.tensor(a, dtype=np.float64, requires_grad=True) for a in arrays]
    bias = inputs[2] if len(inputs) > 2 else None
    with ae.use_tier(tier):
        y = F.upsample_conv2d(inputs[0], inputs[1], bias, fold=fold, **kwargs)
        weights = np.cos(np.arange(y.data.size)).reshape(y.shape)
        (y * ae.tensor(weights, dtype=np.float64)).sum().backward()
    return y.data, type(y.creator).__name__, [t.grad for t in inputs]


@pytest.mark.parametrize("tier", CPU_TIERS)
@given(case=upsample_conv2d_cases(), with_bias=st.booleans(), seed=st.integers(0, 2 ** 16))
def test_fold_gives_the_two_ops_results(tier, case, with_bias, seed):
    x_shape, w_shape, kwargs, folds = case
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal(x_shape), rng.standard_normal(w_shape)]
    if with_bias:
        arrays.append(rng.standard_normal(w_shape[0]))
    y, op, grads = run(arrays, kwargs, True, tier)
    y_plain, op_plain, grads_plain = run(arrays, kwargs, False, tier)
    assert op in (FOLDED_OPS if folds else PLAIN_OPS) and op_plain in PLAIN_OPS
    np.testing.assert_allclose(y, y_plain, rtol=0, atol=1e-10)
    for grad, grad_plain in zip(grads, grads_plain):
        np.testing.assert_allclose(grad, grad_plain, rtol=0, atol=1e-10)


@pytest.mark.parametrize("tier", CPU_TIERS)
@settings(max_examples=20)
@given(case=upsample_conv2d_cases(max_n=2, max_c=2, max_hw=3), seed=st.integers(0, 2 ** 16))
def test_fold_gradients_against_finite_differences(tier, case, seed):
    x_shape, w_shape, kwargs, _ = case
    rng = np.random.default_rng(seed)
    inputs = [t64(x_shape, rng), t64(w_shape, rng), t64((w_shape[0],), rng)]
    with ae.use_tier(tier):
        assert ae.gradcheck(lambda x, w, b: F.upsample_conv2d(x, w, b, **kwargs), inputs)


def test_fold_matrix_is_the_documented_one():
    # kernel 3, factor 2: the folded kernel is (w2, w1 + w2, w0 + w1, w0)
    w = np.array([1.0, 10.0, 100.0])
    folded = np.array(geometry.nearest_fold_matrix(3, 2)) @ w
    np.testing.assert_array_equal(folded, [100.0, 110.0, 11.0, 1.0])
    # kernel 1, factor 3: a 1x1 conv after x3 upsampling is a 3-tap transposed conv of stride 3
    assert geometry.nearest_fold_matrix(1, 3) == [[1], [1], [1]]


def test_classic_decoder_sizes_fold_where_the_factor_is_whole():
    x = ae.tensor(np.ones((1, 16, 4, 4), np.float32))
    w = ae.tensor(np.ones((16, 16, 3, 3), np.float32), requires_grad=True)
    # 4 -> 7 is not a whole factor: resize, then conv
    assert type(F.upsample_conv2d(x, w, size=7, padding="same").creator).__name__ in PLAIN_OPS
    # 4 -> 8 folds; its result has the conv's size
    y = F.upsample_conv2d(x, w, size=8, padding="same")
    assert type(y.creator).__name__ in FOLDED_OPS and y.shape == (1, 16, 8, 8)


@pytest.mark.parametrize("call, message", [
    (lambda x, w: F.upsample_conv2d(x, w, size=0), "size must be >= 1"),
    (lambda x, w: F.upsample_conv2d(x, w), "exactly one of size or scale_factor"),
    (lambda x, w: F.upsample_conv2d(x, w[:, :1], size=8), "weight expects 1 input channels"),
    (lambda x, w: F.upsample_conv2d(x, w, size=8, mode="bicubic"), "mode must be"),
    (lambda x, w: F.upsample_conv2d(x, w, size=8, padding="full"), "padding must be"),
    (lambda x, w: F.upsample_conv2d(x, w, w[0, 0, 0], size=8), r"bias must have shape \(4,\)"),
    (lambda x, w: nn.UpsampleConv2d(2, 4, 3, size=8, mode="area"), "mode must be"),
    (lambda x, w: nn.UpsampleConv2d(2, 4, 3, size=(8, 0)), "size must be >= 1"),
])
def test_bad_arguments_are_named(call, message):
    x = ae.tensor(np.ones((1, 2, 4, 4)))
    w = ae.tensor(np.ones((4, 2, 3, 3)))
    with pytest.raises((ValueError, TypeError), match=message):
        call(x, w)


def test_module_is_a_conv_that_resizes_and_can_turn_the_fold_off():
    ae.manual_seed(0)
    layer = nn.UpsampleConv2d(3, 5, 3, size=(8, 6), padding="same")
    x = ae.tensor(np.random.default_rng(0).standard_normal((2, 3, 4, 3)).astype(np.float32))
    folded = layer(x)
    assert type(folded.creator).__name__ in FOLDED_OPS and folded.shape == (2, 5, 8, 6)
    layer.fold = False
    plain = layer(x)
    assert type(plain.creator).__name__ in PLAIN_OPS
    np.testing.assert_allclose(folded.data, plain.data, rtol=1e-5, atol=1e-5)
    expected = F.conv2d(F.interpolate(x, size=(8, 6)), layer.weight, layer.bias, padding="same")
    np.testing.assert_allclose(plain.data, expected.data, rtol=0, atol=0)
    assert [name for name, _ in layer.named_parameters()] == ["weight", "bias"]
    assert "size=(8, 6), mode='nearest', fold=False" in repr(layer)
