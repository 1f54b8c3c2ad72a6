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
