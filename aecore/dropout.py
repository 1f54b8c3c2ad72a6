"""dropout and dropout2d: PyTorch's inverted dropout.

In training each element (dropout) or each whole channel (dropout2d) is kept with probability
1 - p and scaled by 1 / (1 - p), so the expected output equals the input and evaluation needs
no rescaling: with training=False both are the identity.

The mask is drawn from aecore's seeded generator (aecore.random, reset by ae.manual_seed) on
the host and copied to the input's device, so a seeded run drops the same elements on the CPU
and on a GPU. The output is x * mask, an ordinary differentiable product with a constant: the
gradient is the same mask times the output's gradient.
"""

import numbers

from . import ops, random
from .tensor import Tensor


def dropout_probability(p, op_name):
    """p as a float, checked: the probability of dropping, in [0, 1]."""
    if isinstance(p, bool) or not isinstance(p, numbers.Real) or not 0 <= p <= 1:
        raise ValueError(f"{op_name}: p (the probability of dropping) must be a number in "
                         f"[0, 1], got {p!r}")
    return float(p)


def _dropout(x, p, training, mask_shape, op_name):
    """x times a keep-mask of mask_shape (broadcast over x) scaled by 1 / (1 - p)."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{op_name}: input must be a Tensor, got {type(x).__name__}")
    p = dropout_probability(p, op_name)
    if not isinstance(training, bool):
        raise TypeError(f"{op_name}: training must be True or False, got {training!r}")
    if not training or p == 0:
        return x
    if p == 1:                                   # everything dropped (1 / (1 - p) is undefined)
        return x * 0
    keep = random.rand(mask_shape, x.dtype, like=x.data) < 1 - p
    mask = keep.astype(x.dtype) / x.dtype.type(1 - p)
    return ops.mul(x, Tensor(mask, _copy=False))


def dropout(x, p=0.5, training=True):
    """Zero each element with probability p, scale the rest by 1 / (1 - p) (training only)."""
    return _dropout(x, p, training, x.shape if isinstance(x, Tensor) else (), "dropout")


def dropout2d(x, p=0.5, training=True):
    """Zero each whole channel of x (N, C, H, W) with probability p, scale the rest by
    1 / (1 - p) (training only): neighbouring pixels are correlated, so dropping single ones
    regularizes little in conv layers (Tompson et al., 2015)."""
    if isinstance(x, Tensor) and x.ndim != 4:
        raise ValueError(f"dropout2d: input must have shape (N, C, H, W), got shape {x.shape}")
    mask_shape = x.shape[:2] + (1, 1) if isinstance(x, Tensor) else ()
    return _dropout(x, p, training, mask_shape, "dropout2d")
