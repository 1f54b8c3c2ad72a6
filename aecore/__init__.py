"""aecore: a from-scratch autoencoder engine.

    import aecore as ae
    x = ae.tensor([[1.0, 2.0]], requires_grad=True)
    loss = (x * x).sum()
    loss.backward()          # x.grad == [[2., 4.]]

Tensors wrap NumPy (CPU) or CuPy (GPU) arrays; conv-family ops run hand-written kernels
(aecore.kernels: reference NumPy, Numba CPU, numba.cuda) chosen by the array type.

`import aecore` loads the kernels (which register every tier) and nothing else: every name below
is imported on first use (PEP 562), so the graph layer (`import aecore.tensor`) loads without
the models, the data readers, the inspector or the CLI.
"""

import importlib
import importlib.util
import sys
import types

__version__ = "0.1.0"

# kernels/ sits beside aecore/ in the repository and becomes aecore.kernels only when the package
# is installed (setup.py's package_dir). Run from a bare source tree, `from . import kernels`
# would fail with a misleading "partially initialized module ... circular import".
if importlib.util.find_spec(__name__ + ".kernels") is None:
    raise ImportError(f"cannot import aecore.kernels: {__path__[0]} is aecore's source folder, not "
                      "an installed package; run `pip install -e .` in the repository root first")

# Under mpiexec, each rank's share of the cores, before NumPy's BLAS and Numba start their
# threads (aecore.distributed.launch; nothing changes when the user set a thread count).
from .distributed import launch as _launch  # noqa: E402
_launch.set_rank_threads()

# OpenBLAS's threads to spin for a millisecond or two after a matmul, not a tenth of a second
# (aecore/blas.py); read once, when NumPy loads OpenBLAS.
from . import blas as _blas  # noqa: E402
_blas.import_numpy()

from . import kernels  # noqa: F401,E402  (registers every kernel tier)

# The submodules reachable as attributes (ae.nn, ae.models, ...), imported on first use.
_SUBMODULES = ("backend", "data", "distributed", "functional", "inspect", "io", "kernels", "losses",
               "models", "nn", "onnx", "ops", "optim", "random", "settings")

# module -> the names `aecore` takes from it, imported on first use.
_NAMES_FROM = {
    "backend": ("get_array_module", "gpu_available"),
    "random": ("manual_seed",),
    "tensor": ("Function", "Tensor", "arange", "empty", "enable_grad", "from_numpy", "full",
               "full_like", "is_grad_enabled", "linspace", "no_grad", "ones", "ones_like", "rand",
               "rand_like", "randn", "randn_like", "tensor", "zeros", "zeros_like"),
    "ops": ("abs", "argmax", "argmin", "cat", "clamp", "clip", "clone", "concat", "eq", "exp",
            "flatten", "ge", "gt", "le", "leaky_relu", "log", "lt", "matmul", "max", "mean", "min",
            "ne", "permute", "relu", "reshape", "sigmoid", "softplus", "sqrt", "squeeze", "stack",
            "std", "sum", "tanh", "transpose", "unsqueeze", "var"),
    "gradcheck": ("GradcheckError", "gradcheck"),
    "kernels.registry": ("use_tier",),
    "inspect.profiler": ("profile",),      # with aecore.profile() as prof
    "io.save": ("load", "save"),           # ae.save(model, "m.safetensors"); ae.load(path)
}
_MODULE_OF = {name: module for module, names in _NAMES_FROM.items() for name in names}

__all__ = sorted(set(_SUBMODULES) | set(_MODULE_OF))


def __getattr__(name):
    if name in _MODULE_OF:
        value = getattr(importlib.import_module(f"{__name__}.{_MODULE_OF[name]}"), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f"{__name__}.{name}")
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value         # resolved once; later lookups never come back here
    return value


def __dir__():
    return sorted(set(__all__) | {name for name in globals() if name.startswith("__")})


class _Package(types.ModuleType):
    """aecore's module type: `ae.tensor` and `ae.gradcheck` stay the functions.

    Importing a submodule binds it as an attribute of its package, so `import aecore.tensor`
    would replace the function `ae.tensor` with the module aecore.tensor (the eager __init__
    used to rebind the function afterwards). The module stays in sys.modules either way.
    """

    def __setattr__(self, name, value):
        if name in _MODULE_OF and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
