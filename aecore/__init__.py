"""aecore: a from-scratch autoencoder engine.

    import aecore as ae
    x = ae.tensor([[1.0, 2.0]], requires_grad=True)
    loss = (x * x).sum()
    loss.backward()          # x.grad == [[2., 4.]]

Tensors wrap NumPy (CPU) or CuPy (GPU) arrays; conv-family ops run hand-written kernels
(aecore.kernels: reference NumPy, Numba CPU, numba.cuda) chosen by the array type.
"""

__version__ = "0.1.0"

from . import kernels  # noqa: F401,E402  (registers every kernel tier)
from .backend import get_array_module, gpu_available  # noqa: F401,E402
from .random import manual_seed  # noqa: F401,E402
from .tensor import (Function, Tensor, enable_grad, is_grad_enabled, no_grad, ones, rand,  # noqa: F401,E402
                     randn, tensor, zeros)
from .ops import (abs, cat, clamp, clip, concat, exp, flatten, leaky_relu, log, matmul, mean,  # noqa: F401,E402,A004
                  permute, relu, reshape, sigmoid, softplus, sqrt, sum, tanh, transpose)
from .gradcheck import GradcheckError, gradcheck  # noqa: F401,E402
from .kernels.registry import use_tier  # noqa: F401,E402
from . import functional, losses, nn, optim  # noqa: F401,E402
from . import data, inspect, models  # noqa: F401,E402
from .inspect.profiler import profile  # noqa: F401,E402  (with aecore.profile() as prof)
