"""kernels/bce.py through aecore.losses: BCE on logits reduced in one fused op gives the very
gradient bits of the elementwise op followed by Mean or Sum, and the loss to float rounding;
serial and parallel, per example and over everything, and the fallbacks where it cannot run."""

import numpy as np
import pytest

import aecore as ae
from aecore import losses
from aecore.kernels import compile as kernel_compile

needs_numba = pytest.mark.skipif(not kernel_compile.NUMBA_AVAILABLE, reason="needs Numba")


def _logits_and_targets(shape, dtype):
    rng = np.random.default_rng(0)
    z = (rng.standard_normal(shape) * 4).astype(dtype)
    z.reshape(-1)[:5] = [1e4, -1e4, 0.0, -0.0, np.nan]       # the stable form's edges, and NaN
    y = rng.random(shape).astype(dtype)
    return z, y


def _loss_and_gradient(z_host, y_host, reduction, per_example, fused):
    z, y = ae.tensor(z_host, requires_grad=True), ae.tensor(y_host)
    if fused:
        loss = (losses.binary_cross_entropy_with_logits_per_example(z, y, reduction)
                if per_example else losses.binary_cross_entropy_with_logits(z, y, reduction))
        assert type(loss.creator).__name__ == "BinaryCrossEntropyWithLogitsSummed"
    else:
        elementwise = losses.BinaryCrossEntropyWithLogits.apply(z, y)
        axes = tuple(range(1, z.ndim)) if per_example else None
        loss = elementwise.mean(axis=axes) if reduction == "mean" else elementwise.sum(axis=axes)
    (loss.sum() if per_example else loss).backward()
    return loss.data, z.grad.data


@needs_numba
@pytest.mark.parametrize("shape", [(6, 1, 5, 5), (9, 13), (40, 1, 128, 128)])   # the last: parallel
@pytest.mark.parametrize("per_example", [True, False])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fused_gradient_has_the_bits_of_the_elementwise_op_and_its_reduction(
        dtype, reduction, per_example, shape):
    z, y = _logits_and_targets(shape, dtype)
    fused_loss, fused_grad = _loss_and_gradient(z, y, reduction, per_example, fused=True)
    plain_loss, plain_grad = _loss_and_gradient(z, y, reduction, per_example, fused=False)
    np.testing.assert_array_equal(fused_grad, plain_grad)          # NaN where z is NaN, both
    assert fused_loss.dtype == dtype and fused_loss.shape == plain_loss.shape
    np.testing.assert_array_equal(np.isnan(fused_loss), np.isnan(plain_loss))  # the NaN's example
    finite = np.isfinite(plain_loss)
    np.testing.assert_allclose(fused_loss[finite], plain_loss[finite],
                               rtol=1e-6 if dtype == np.float32 else 1e-13)


@needs_numba
def test_the_elementwise_op_stays_where_the_fused_one_cannot_go():
    z, y = _logits_and_targets((4, 3), np.float32)
    wants_target_grad = losses.binary_cross_entropy_with_logits(
        ae.tensor(z, requires_grad=True), ae.tensor(y, requires_grad=True))
    assert type(wants_target_grad.creator).__name__ == "Mean"
    strided = losses.binary_cross_entropy_with_logits_per_example(
        ae.tensor(np.asfortranarray(z), requires_grad=True), ae.tensor(y))
    assert type(strided.creator).__name__ == "Mean"
    with pytest.raises(ValueError, match="reduction must be 'mean' or 'sum', got 'none'"):
        losses.binary_cross_entropy_with_logits_per_example(ae.tensor(z), ae.tensor(y), "none")
