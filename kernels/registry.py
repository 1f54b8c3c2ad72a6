"""The kernel registry: every implementation of every op, by tier.

    op name (e.g. "conv2d_forward")  x  tier ("ref" | "numba" | "cuda")  ->  function

Kernel modules register their implementations when they are imported. The graph layer asks
`dispatch(op, array)` for the implementation that fits the array; tests and benchmarks iterate
over `implementations(op)` so that no tier goes untested or unmeasured.

How the tier is chosen:
1. a tier forced with `use_tier("ref")` (a context manager) wins, then
2. the environment variable AECORE_TIER (ref, numba or cuda), then
3. the array type: a CuPy array -> cuda; a NumPy array -> numba, or ref when Numba is missing.
A forced tier that has no implementation of the op, or that cannot take the array (a NumPy
array on the cuda tier outside the simulator), is an error that says so; so is an AECORE_TIER
this machine cannot run (aecore.settings.SettingsError).

Every function that `implementations()` and `dispatch()` hand out checks its arguments first,
once per call, before any tier runs, against the op's description (kernels/op.py): a kernel
indexes its arrays by the geometry, so an array that does not match it would be read or
written out of bounds.
"""

import contextlib
import functools
import threading

import numpy as np

from . import op as described
from .compile import CUDA_SIMULATOR
from .. import backend, settings

TIERS = ("ref", "numba", "cuda")


FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def check_arguments(op, args):
    """Raise ValueError, naming the op and the argument, unless `args` fit the op's description
    (kernels/op.py): each array the shape the geometry gives it, C-contiguous, and one float
    dtype for all of them (float32 or float64; indices int64). Shape comparisons only: nothing is
    copied or scanned (max-pool's backward checks its argmax values itself)."""
    params, describe = described.op(op).args, described.geometry_of(op)
    names = [p.name for p in params] + (["geom"] if describe else [])
    if len(args) != len(names):
        raise TypeError(f"{op}: takes ({', '.join(names)}), got {len(args)} arguments")
    roles = {}
    if describe is not None:
        try:
            roles = describe(args[-1])
        except (KeyError, TypeError, AttributeError) as error:
            maker = describe.__name__.replace("_arrays", "_geometry")
            raise ValueError(f"{op}: geom is not a geometry from geometry.{maker} "
                             f"({type(error).__name__}: {error})") from None
        except ValueError as error:
            raise ValueError(f"{op}: {error}") from None
    shapes, float_arg = {}, None
    for param, array in zip(params, args):
        if array is None and param.optional:
            continue
        if not all(hasattr(array, a) for a in ("shape", "dtype", "flags")):
            raise ValueError(f"{op}: {param.name} must be an array, got {type(array).__name__}")
        shape = shapes[param.name] = tuple(array.shape)
        if param.shape == "4-D":
            if len(shape) != 4:
                raise ValueError(f"{op}: {param.name} has shape {shape}, expected 4-D (N, C, H, W)")
        elif param.shape != "any":
            if param.shape in roles:
                expected, where = roles[param.shape], "from geom"
            else:
                expected, where = shapes[param.shape], f"the shape of {param.shape}"
            if shape != tuple(expected):
                raise ValueError(f"{op}: {param.name} has shape {shape}, expected "
                                 f"{tuple(expected)} ({where})")
        if param.indices:
            if array.dtype != np.int64:
                raise ValueError(f"{op}: {param.name} has dtype {array.dtype}, expected int64")
        elif array.dtype not in FLOAT_DTYPES:
            raise ValueError(f"{op}: {param.name} has dtype {array.dtype}, expected float32 or "
                             "float64")
        elif float_arg is None:
            float_arg = param.name, array.dtype
        elif array.dtype != float_arg[1]:
            raise ValueError(f"{op}: {param.name} has dtype {array.dtype}, expected {float_arg[1]} "
                             f"(the dtype of {float_arg[0]})")
        if not array.flags.c_contiguous:
            raise ValueError(f"{op}: {param.name} is not C-contiguous (strides {array.strides}); "
                             "pass a C-contiguous copy (np.ascontiguousarray)")


def contiguous(array):
    """`array` when it is C-contiguous (or not an array), else a C-contiguous copy: what the
    graph layer hands to the checked kernels."""
    if getattr(array, "flags", None) is None or array.flags.c_contiguous:
        return array
    return backend.get_array_module(array).ascontiguousarray(array)


def _checked(op, function):
    """`function` behind check_arguments."""
    @functools.wraps(function)
    def checked(*args):
        check_arguments(op, args)
        return function(*args)
    return checked


# ---------------------------------------------------------------------------- the registry
_implementations = {}  # op -> {tier: function}, as registered
_checked_implementations = {}  # op -> {tier: the same function behind check_arguments}
_forced = threading.local()


def tier_available(tier):
    """Whether this machine can run `tier`: ref always; numba with Numba installed; cuda when
    numba.cuda imports (a GPU, or the simulator)."""
    from . import compile
    return {"ref": True, "numba": compile.NUMBA_AVAILABLE, "cuda": compile.cuda is not None}[tier]


def register(op, tier):
    """Decorator: record `function` as the `tier` implementation of `op`. The one registration
    idiom of every kernel module: a tier this machine cannot run (no Numba, no numba.cuda) is
    skipped here, so modules never test for it themselves."""
    if tier not in TIERS:
        raise ValueError(f"tier must be one of {TIERS}, got {tier!r}")
    described.op(op)  # KeyError unless the family module described the op first (kernels/op.py)

    def decorate(function):
        if tier_available(tier):
            _implementations.setdefault(op, {})[tier] = function
            _checked_implementations.setdefault(op, {})[tier] = _checked(op, function)
        return function

    return decorate


def ops():
    """Names of all registered ops, sorted."""
    return sorted(_implementations)


def implementations(op):
    """{tier: function} for one op (a copy); each function checks its arguments first."""
    if op not in _implementations:
        raise KeyError(f"no kernel named {op!r}; known ops: {', '.join(ops())}")
    return dict(_checked_implementations[op])


def tiers_of(op):
    return [tier for tier in TIERS if tier in _implementations.get(op, {})]


@contextlib.contextmanager
def use_tier(tier):
    """Force every op inside the block onto one tier (None restores automatic choice)."""
    if tier is not None and tier not in TIERS:
        raise ValueError(f"tier must be one of {TIERS} or None, got {tier!r}")
    previous = getattr(_forced, "tier", None)
    _forced.tier = tier
    try:
        yield
    finally:
        _forced.tier = previous


def forced_tier():
    """The tier forced by use_tier() or AECORE_TIER, or None (SettingsError for a bad AECORE_TIER)."""
    tier = getattr(_forced, "tier", None)
    if tier is None:
        tier = settings.tier()
    return tier


def choose_tier(op, array):
    """The tier that runs `op` on `array` (see the module docstring)."""
    available = _implementations.get(op)
    if not available:
        raise KeyError(f"no kernel named {op!r}; known ops: {', '.join(ops())}")
    tier = forced_tier()
    if tier is not None:
        if tier not in available:
            raise RuntimeError(f"tier {tier!r} has no implementation of {op!r} "
                               f"(available: {', '.join(tiers_of(op))})")
        if backend.is_cupy_array(array) and tier != "cuda":
            raise RuntimeError(f"tier {tier!r} cannot run {op!r} on a CuPy (GPU) array; "
                               "move the tensor to the CPU or force tier 'cuda'")
        if tier == "cuda" and isinstance(array, np.ndarray) and not CUDA_SIMULATOR:
            raise RuntimeError(f"tier 'cuda' cannot run {op!r} on a NumPy (host) array; move "
                               "the tensor to the GPU with .to('cuda'), or run the cuda kernels "
                               "on NumPy arrays under the simulator (NUMBA_ENABLE_CUDASIM=1)")
        return tier
    if backend.is_cupy_array(array):
        return "cuda"
    return "numba" if "numba" in available else "ref"


# Observers of kernel calls (aecore.inspect's profiler): each has wrap_kernel(op, tier, function)
# returning the function to run instead (e.g. one that times the call).
_observers = []


def dispatch(op, array):
    """(tier, function) for running `op` on `array`: checked, and wrapped by the observers."""
    tier = choose_tier(op, array)
    if not _observers:
        return tier, _checked_implementations[op][tier]
    implementation = _implementations[op][tier]
    for observer in _observers:
        implementation = observer.wrap_kernel(op, tier, implementation)
    return tier, _checked(op, implementation)
