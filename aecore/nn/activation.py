"""GELU, ELU, Softmax and LogSoftmax as modules (aecore.activations has the functions)."""

from .. import activations
from .module import Module


class GELU(Module):
    """x * Phi(x); approximate='tanh' for the tanh approximation (as in GPT-2)."""

    def __init__(self, approximate="none"):
        super().__init__()
        if approximate not in activations.GELU_APPROXIMATIONS:
            raise ValueError(f"GELU: approximate must be one of "
                             f"{activations.GELU_APPROXIMATIONS}, got {approximate!r}")
        self.approximate = approximate

    def forward(self, x):
        return activations.gelu(x, self.approximate)

    def extra_repr(self):
        return f"approximate={self.approximate!r}"


class ELU(Module):
    """x where x > 0, else alpha * (exp(x) - 1)."""

    def __init__(self, alpha=1.0):
        super().__init__()
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)):
            raise TypeError(f"ELU: alpha must be a real number, got {alpha!r}")
        self.alpha = float(alpha)

    def forward(self, x):
        return activations.elu(x, self.alpha)

    def extra_repr(self):
        return f"alpha={self.alpha}"


class _AlongDim(Module):
    function = None

    def __init__(self, dim):
        super().__init__()
        if dim is None or isinstance(dim, bool) or not isinstance(dim, int):
            raise TypeError(f"{type(self).__name__}: dim must be an int (the dimension to "
                            f"normalize over), got {dim!r}")
        self.dim = dim

    def forward(self, x):
        return type(self).function(x, self.dim)

    def extra_repr(self):
        return f"dim={self.dim}"


class Softmax(_AlongDim):
    """Softmax along dim: each slice along dim becomes positive and sums to 1."""

    function = staticmethod(activations.softmax)


class LogSoftmax(_AlongDim):
    """log(softmax) along dim, in the stable form."""

    function = staticmethod(activations.log_softmax)
