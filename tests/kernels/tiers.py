"""Which kernel tiers a test process checks.

The default process checks ref and numba (when Numba is installed), plus cuda when CuPy sees a real
GPU. The CUDA-simulator process (NUMBA_ENABLE_CUDASIM=1, started separately by tests/run.sh)
sets AECORE_TEST_TIERS=cuda: the simulator replaces numba.cuda for the whole process and is slow,
so that process checks only the cuda tier, on tiny shapes.
"""

import os

from aecore import kernels
from aecore.backend import gpu_available

SIMULATOR = os.environ.get("NUMBA_ENABLE_CUDASIM", "0") == "1"


def selected_tiers():
    chosen = os.environ.get("AECORE_TEST_TIERS")
    if chosen:
        return [t.strip() for t in chosen.split(",") if t.strip()]
    tiers = ["ref", "numba"]
    if gpu_available():
        tiers.append("cuda")
    return tiers


def tiers_to_test(op):
    """The registered tiers of `op` that this process checks."""
    return [tier for tier in kernels.tiers_of(op) if tier in selected_tiers()]


def compiled_tiers_to_test(op):
    """Like tiers_to_test, without the reference (for 'tier vs reference' tests)."""
    return [tier for tier in tiers_to_test(op) if tier != "ref"]


def on_gpu_arrays(tier):
    """True when the cuda tier runs for real, so test inputs must be CuPy arrays."""
    return tier == "cuda" and not SIMULATOR


def tiny_shapes():
    """True in processes where shapes must stay tiny (the simulator)."""
    return "cuda" in selected_tiers() and SIMULATOR


TIER_ORDER = ("ref", "numba", "cuda")


def common_tiers(ops, compiled_only=False):
    """Tiers this process checks that implement every op in `ops`, in ref/numba/cuda order."""
    pick = compiled_tiers_to_test if compiled_only else tiers_to_test
    shared = set.intersection(*[set(pick(op)) for op in ops])
    return sorted(shared, key=TIER_ORDER.index)


def skip_if_none(tiers):
    """A parametrize list that reports a skip (not an empty, silently passing test) when empty."""
    import pytest
    return tiers if tiers else [pytest.param(None, marks=pytest.mark.skip(reason="no tier to test"))]


def run_tier(op, tier, *args):
    """Run `op` on `tier` with NumPy inputs (moved to the GPU when the cuda tier runs for real);
    NumPy results, a tuple of them for ops that return several arrays."""
    from aecore.kernels import implementations
    function = implementations(op)[tier]
    if on_gpu_arrays(tier):
        import cupy
        import numpy as np
        args = [cupy.asarray(a) if isinstance(a, np.ndarray) else a for a in args]
    result = function(*args)

    def to_host(array):
        import numpy as np
        return array.get() if hasattr(array, "get") else np.asarray(array)
    return tuple(map(to_host, result)) if isinstance(result, tuple) else to_host(result)
