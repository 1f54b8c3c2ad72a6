"""Loss modules: MSELoss, L1Loss, BCELoss, BCEWithLogitsLoss, over aecore.losses.

Each keeps its `reduction` ('mean', 'sum' or 'none') and is called as loss(input, target).
"""

from .. import losses
from ..tensor import Tensor
from .module import Module


class _Loss(Module):
    function = None

    def __init__(self, reduction="mean"):
        super().__init__()
        if reduction not in losses.REDUCTIONS:
            raise ValueError(f"{type(self).__name__}: reduction must be one of "
                             f"{losses.REDUCTIONS}, got {reduction!r}")
        self.reduction = reduction

    def forward(self, input, target):
        return type(self).function(input, target, reduction=self.reduction)

    def extra_repr(self):
        return f"reduction={self.reduction!r}"


class MSELoss(_Loss):
    """mean((input - target)^2) (or their sum, or each)."""

    function = staticmethod(losses.mse_loss)


class L1Loss(_Loss):
    """mean(|input - target|)."""

    function = staticmethod(losses.l1_loss)


class BCELoss(_Loss):
    """Binary cross-entropy on probabilities in [0, 1]."""

    function = staticmethod(losses.binary_cross_entropy)


class BCEWithLogitsLoss(_Loss):
    """Binary cross-entropy on logits, in the stable form.

    pos_weight (a Tensor broadcasting against the target's trailing dims, e.g. one weight per
    class) multiplies the positive term, as PyTorch's:
        loss = (1 - y) z + (1 + (w - 1) y) softplus(-z)
    which for w = 1 is max(z, 0) - z y + log(1 + exp(-|z|))."""

    def __init__(self, reduction="mean", pos_weight=None):
        super().__init__(reduction)
        if pos_weight is not None and not isinstance(pos_weight, Tensor):
            raise TypeError(f"BCEWithLogitsLoss: pos_weight must be a Tensor or None, got "
                            f"{type(pos_weight).__name__}")
        self.pos_weight = pos_weight

    def forward(self, input, target):
        if self.pos_weight is None:
            return losses.binary_cross_entropy_with_logits(input, target, self.reduction)
        target = losses._check("BCEWithLogitsLoss", input, target, self.reduction)
        positive_scale = (self.pos_weight - 1) * target + 1
        per_element = (1 - target) * input + positive_scale * (-input).softplus()
        return losses._reduce(per_element, self.reduction)
