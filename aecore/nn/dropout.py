"""Dropout and Dropout2d: inverted dropout in training mode, the identity in eval mode
(model.train() / model.eval() switch it; aecore.dropout has the functional forms)."""

from .. import dropout as functional_dropout
from .module import Module


class _DropoutNd(Module):
    def __init__(self, p=0.5):
        super().__init__()
        # checked here, at construction, with the functional form's rule and message
        functional_dropout.dropout_probability(p, type(self).__name__)
        self.p = float(p)

    def extra_repr(self):
        return f"p={self.p}"


class Dropout(_DropoutNd):
    """Zero each element with probability p in training, scaling the rest by 1 / (1 - p)."""

    def forward(self, x):
        return functional_dropout.dropout(x, self.p, self.training)


class Dropout2d(_DropoutNd):
    """Zero whole channels of (N, C, H, W) inputs with probability p in training."""

    def forward(self, x):
        return functional_dropout.dropout2d(x, self.p, self.training)
