"""BatchNorm1d, BatchNorm2d and LayerNorm: PyTorch's modules, arguments, buffers and defaults.

BatchNorm keeps per-channel running statistics as buffers (running_mean starts at 0,
running_var at 1, num_batches_tracked counts the training batches) and uses them in eval
mode; in training mode it normalizes with the batch's statistics and updates the running
ones (aecore.normalization has the formulas). momentum=None makes the running statistics the
cumulative average of every batch so far instead of an exponential one.
"""

import numpy as np

from .. import normalization
from .layers import _positive_int
from .module import Module, Parameter


class _BatchNorm(Module):
    """What BatchNorm1d and BatchNorm2d share; they differ only in the input shapes taken."""

    input_dims = ()        # the numbers of dimensions an input may have
    input_shapes = ""      # the same, as a reader would write them (for errors)

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True,
                 track_running_stats=True, dtype=np.float32):
        super().__init__()
        self.num_features = _positive_int(num_features, "num_features")
        self.eps = normalization.check_number(eps, "eps", type(self).__name__)
        self.momentum = (None if momentum is None else
                         normalization.check_number(momentum, "momentum", type(self).__name__,
                                                     0.0, 1.0))
        self.affine = bool(affine)
        self.track_running_stats = bool(track_running_stats)
        if self.affine:
            self.weight = Parameter(np.ones(self.num_features, dtype))
            self.bias = Parameter(np.zeros(self.num_features, dtype))
        else:
            self.weight = self.bias = None
        if self.track_running_stats:
            self.register_buffer("running_mean", np.zeros(self.num_features, dtype))
            self.register_buffer("running_var", np.ones(self.num_features, dtype))
            self.register_buffer("num_batches_tracked", np.array(0, dtype=np.int64))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)

    def reset_running_stats(self):
        """running_mean 0, running_var 1, num_batches_tracked 0 (as after construction)."""
        if self.track_running_stats:
            self.running_mean.data[...] = 0
            self.running_var.data[...] = 1
            self.num_batches_tracked.data[...] = 0

    def reset_parameters(self):
        """The running statistics reset, weight 1 and bias 0."""
        self.reset_running_stats()
        if self.affine:
            self.weight.data[...] = 1
            self.bias.data[...] = 0

    def forward(self, x):
        if x.ndim not in self.input_dims:
            raise ValueError(f"{type(self).__name__}: expected input of shape "
                             f"{self.input_shapes}, got shape {x.shape}")
        if x.shape[1] != self.num_features:
            raise ValueError(f"{type(self).__name__}: expected {self.num_features} channels "
                             f"(num_features) in dimension 1, got shape {x.shape}")
        momentum = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats:
            self.num_batches_tracked.data += 1
            if self.momentum is None:      # cumulative moving average
                momentum = 1.0 / int(self.num_batches_tracked.item())
        # without running statistics (track_running_stats=False) batch_norm normalizes with
        # the batch's own in eval mode too, as PyTorch
        return normalization.batch_norm(x, self.running_mean, self.running_var, self.weight,
                                        self.bias, self.training, momentum, self.eps)

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, track_running_stats={self.track_running_stats}")


class BatchNorm1d(_BatchNorm):
    """Batch normalization of (N, C) features or (N, C, L) sequences, per channel C."""

    input_dims = (2, 3)
    input_shapes = "(N, C) or (N, C, L)"


class BatchNorm2d(_BatchNorm):
    """Batch normalization of (N, C, H, W) images, per channel C."""

    input_dims = (4,)
    input_shapes = "(N, C, H, W)"


class LayerNorm(Module):
    """Normalize each example over its trailing dims `normalized_shape` (an int or a tuple);
    elementwise_affine: a learned weight (1) and bias (0) of that shape; bias=False drops it."""

    def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True, bias=True,
                 dtype=np.float32):
        super().__init__()
        self.normalized_shape = normalization.normalized_shape_tuple(normalized_shape,
                                                                     "LayerNorm")
        self.eps = normalization.check_number(eps, "eps", "LayerNorm")
        self.elementwise_affine = bool(elementwise_affine)
        self.weight = (Parameter(np.ones(self.normalized_shape, dtype))
                       if self.elementwise_affine else None)
        self.bias = (Parameter(np.zeros(self.normalized_shape, dtype))
                     if self.elementwise_affine and bias else None)

    def forward(self, x):
        return normalization.layer_norm(x, self.normalized_shape, self.weight, self.bias,
                                        self.eps)

    def extra_repr(self):
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}")
