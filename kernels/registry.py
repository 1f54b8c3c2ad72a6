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
array on the cuda tier outside the simulator), is an error that says so.
"""

import contextlib
import os
import threading

TIERS = ("ref", "numba", "cuda")

_implementations = {}  # op -> {tier: function}
_forced = threading.local()


def register(op, tier):
    """Decorator: record `function` as the `tier` implementation of `op`."""
    if tier not in TIERS:
        raise ValueError(f"tier must be one of {TIERS}, got {tier!r}")

    def decorate(function):
        _implementations.setdefault(op, {})[tier] = function
        return function

    return decorate


def ops():
    """Names of all registered ops, sorted."""
    return sorted(_implementations)


def implementations(op):
    """{tier: function} for one op (a copy)."""
    if op not in _implementations:
        raise KeyError(f"no kernel named {op!r}; known ops: {', '.join(ops())}")
    return dict(_implementations[op])


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
    """The tier forced by use_tier() or AECORE_TIER, or None."""
    tier = getattr(_forced, "tier", None)
    if tier is None:
        tier = os.environ.get("AECORE_TIER") or None
        if tier is not None and tier not in TIERS:
            raise ValueError(f"environment variable AECORE_TIER must be one of {TIERS}, got {tier!r}")
    return tier


def _is_cupy(array):
    return type(array).__module__.split(".")[0] == "cupy"


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
        if _is_cupy(array) and tier != "cuda":
            raise RuntimeError(f"tier {tier!r} cannot run {op!r} on a CuPy (GPU) array; "
                               "move the tensor to the CPU or force tier 'cuda'")
        return tier
    if _is_cupy(array):
        return "cuda"
    return "numba" if "numba" in available else "ref"


# Observers of kernel calls (aecore.inspect's profiler): each has wrap_kernel(op, tier, function)
# returning the function to run instead (e.g. one that times the call).
_observers = []


def dispatch(op, array):
    """(tier, function) for running `op` on `array` (wrapped by the observers, if any)."""
    tier = choose_tier(op, array)
    implementation = _implementations[op][tier]
    for observer in _observers:
        implementation = observer.wrap_kernel(op, tier, implementation)
    return tier, implementation
