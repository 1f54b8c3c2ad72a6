"""GELU, ELU, softmax and log_softmax: PyTorch's functional forms, one Function per op.

    gelu(x, approximate="none")   x * Phi(x), Phi the standard normal CDF (via erf)
    gelu(x, approximate="tanh")   0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
    elu(x, alpha=1.0)             x where x > 0, else alpha * (exp(x) - 1)
    softmax(x, dim)               exp(x - max) / sum(exp(x - max)) along dim
    log_softmax(x, dim)           (x - max) - log(sum(exp(x - max))) along dim

Each forward sits beside its closed-form backward. Softmax and log_softmax subtract the maximum
along dim first, so no exp overflows (log(softmax(x)) would give log(0) = -inf for a logit
1000 below the largest; log_softmax gives the finite -1000).
"""

import math

import numpy as np

from .backend import get_array_module, is_cupy_array
from .ops import normalize_dim
from .tensor import Function, Tensor

GELU_APPROXIMATIONS = ("none", "tanh")
_SQRT_2_OVER_PI = math.sqrt(2 / math.pi)
_GELU_CUBIC = 0.044715


# ---------------------------------------------------------------------------- erf
_erf_numpy = None


def _scalar_erf(value):
    return math.erf(value)


def erf(x):
    """The error function of an array, elementwise, to the last bit of its dtype.

    NumPy has no erf: on the CPU it is math.erf vectorized by Numba (compiled once), or, without
    Numba, by np.vectorize (the same values, slower); on the GPU it is CuPy's."""
    if is_cupy_array(x):
        import cupyx.scipy.special
        return cupyx.scipy.special.erf(x)
    global _erf_numpy
    if _erf_numpy is None:
        from .kernels.compile import NUMBA_AVAILABLE
        if NUMBA_AVAILABLE:
            import numba
            _erf_numpy = numba.vectorize(["float32(float32)", "float64(float64)"],
                                         cache=True)(_scalar_erf)
        else:
            vectorized = np.vectorize(math.erf, otypes=[np.float64])
            _erf_numpy = lambda a: vectorized(a).astype(a.dtype, copy=False)  # noqa: E731
    return _erf_numpy(x)


# ---------------------------------------------------------------------------- gelu
class GELU(Function):
    """Exact form: y = x Phi(x); dy/dx = Phi(x) + x phi(x), phi the standard normal density.
    Tanh form: y = 0.5 x (1 + t), t = tanh(u), u = sqrt(2/pi) (x + 0.044715 x^3);
    dy/dx = 0.5 (1 + t) + 0.5 x (1 - t^2) sqrt(2/pi) (1 + 3 * 0.044715 x^2)."""

    def forward(self, x, approximate):
        xp = get_array_module(x)
        self.save_for_backward(x)
        self.approximate = approximate
        if approximate == "tanh":
            self.t = xp.tanh(_SQRT_2_OVER_PI * (x + _GELU_CUBIC * x ** 3))
            return 0.5 * x * (1 + self.t)
        self.cdf = 0.5 * (1 + erf(x / x.dtype.type(math.sqrt(2))))
        return x * self.cdf

    def backward(self, grad):
        (x,) = self.saved
        xp = get_array_module(x)
        if self.approximate == "tanh":
            t = self.t
            du_dx = _SQRT_2_OVER_PI * (1 + 3 * _GELU_CUBIC * x * x)
            return (grad * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * du_dx),)
        density = xp.exp(-0.5 * x * x) / x.dtype.type(math.sqrt(2 * math.pi))
        return (grad * (self.cdf + x * density),)


def gelu(x, approximate="none"):
    """Gaussian Error Linear Unit, PyTorch's F.gelu: approximate 'none' (erf) or 'tanh'."""
    if approximate not in GELU_APPROXIMATIONS:
        raise ValueError(f"gelu: approximate must be one of {GELU_APPROXIMATIONS}, got "
                         f"{approximate!r}")
    return GELU.apply(_tensor(x, "gelu"), approximate=approximate)


# ---------------------------------------------------------------------------- elu
class ELU(Function):
    """y = x (x > 0), alpha (exp(x) - 1) (x <= 0); dy/dx = 1, alpha exp(x) = y + alpha."""

    def forward(self, x, alpha):
        xp = get_array_module(x)
        self.positive = x > 0
        self.alpha = x.dtype.type(alpha)
        out = xp.where(self.positive, x, self.alpha * xp.expm1(xp.minimum(x, 0)))
        self.save_for_backward(out)
        return out

    def backward(self, grad):
        (out,) = self.saved
        return (grad * get_array_module(grad).where(self.positive, 1, out + self.alpha),)


def elu(x, alpha=1.0):
    """Exponential Linear Unit, PyTorch's F.elu."""
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float, np.integer, np.floating)):
        raise TypeError(f"elu: alpha must be a real number, got {alpha!r}")
    return ELU.apply(_tensor(x, "elu"), alpha=float(alpha))


# ---------------------------------------------------------------------------- softmax
class Softmax(Function):
    """y = exp(x - max) / sum(exp(x - max)) along dim; dx = y (g - sum(g y)) along dim."""

    def forward(self, x, dim):
        xp = get_array_module(x)
        self.dim = dim
        exps = xp.exp(x - x.max(axis=dim, keepdims=True))
        out = exps / exps.sum(axis=dim, keepdims=True)
        self.save_for_backward(out)
        return out

    def backward(self, grad):
        (out,) = self.saved
        return (out * (grad - (grad * out).sum(axis=self.dim, keepdims=True)),)


class LogSoftmax(Function):
    """y = (x - max) - log(sum(exp(x - max))) along dim; dx = g - exp(y) sum(g) along dim."""

    def forward(self, x, dim):
        xp = get_array_module(x)
        self.dim = dim
        shifted = x - x.max(axis=dim, keepdims=True)
        out = shifted - xp.log(xp.exp(shifted).sum(axis=dim, keepdims=True))
        self.save_for_backward(out)
        return out

    def backward(self, grad):
        (out,) = self.saved
        xp = get_array_module(out)
        return (grad - xp.exp(out) * grad.sum(axis=self.dim, keepdims=True),)


def _softmax_dim(x, dim, op_name):
    if dim is None:
        raise TypeError(f"{op_name}: give dim, the dimension to normalize over (PyTorch's "
                        "implicit choice of dim is deprecated there and not taken here)")
    return normalize_dim(dim, max(x.ndim, 1), op_name)


def softmax(x, dim):
    """Softmax along dim (every slice along dim sums to 1), PyTorch's F.softmax."""
    x = _tensor(x, "softmax")
    return Softmax.apply(x, dim=_softmax_dim(x, dim, "softmax") if x.ndim else None)


def log_softmax(x, dim):
    """log(softmax(x, dim)) in the stable form, PyTorch's F.log_softmax."""
    x = _tensor(x, "log_softmax")
    return LogSoftmax.apply(x, dim=_softmax_dim(x, dim, "log_softmax") if x.ndim else None)


def _tensor(x, op_name):
    if not isinstance(x, Tensor):
        raise TypeError(f"{op_name}: input must be a Tensor, got {type(x).__name__}")
    return x
