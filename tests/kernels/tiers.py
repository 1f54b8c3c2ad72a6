"""Which kernel tiers a test process checks.

The default process checks ref and numba (when Numba is installed), plus cuda when CuPy sees a real
GPU. The CUDA-simulator process (NUMBA_ENABLE_CUDASIM=1, started separately by tests/run.sh)
sets AECORE_TEST_TIERS=cuda: the simulator replaces numba.cuda for the whole process and is slow,
so that process checks only the cuda tier, on tiny shapes.

Every test file picks its tiers here (tier_params to parametrize, require_tier to skip) and runs
kernels through run_tier / run_twice, so that no file keeps its own rule of which tiers to test.
"""

import contextlib
import os

import numpy as np

from aecore import kernels
from aecore.kernels import compile as kernel_compile
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


def tier_params(*ops, compiled_only=False, cpu_only=False):
    """What a test of `ops` is parametrized over: the tiers this process checks that implement
    every op (common_tiers), without the cuda tier when cpu_only; a reported skip when none."""
    tiers = common_tiers(ops, compiled_only)
    return skip_if_none([tier for tier in tiers if not (cpu_only and tier == "cuda")])


def require_tier(tier, *ops, reason=None):
    """Skip the calling test (or, at module level, the whole module) unless this process checks
    `tier` for every op in `ops`."""
    import pytest
    if tier not in common_tiers(ops):
        pytest.skip(reason or f"this process does not check the {tier} tier of {', '.join(ops)}",
                    allow_module_level=True)


def on_tier(tier, args):
    """`args` as `tier` takes them (NumPy arrays moved to the GPU when the cuda tier runs for
    real), and that tier's array module."""
    if not on_gpu_arrays(tier):
        return list(args), np
    import cupy
    return [cupy.asarray(a) if isinstance(a, np.ndarray) else a for a in args], cupy


def run_tier(op, tier, *args):
    """Run `op` on `tier` with NumPy inputs (moved to the GPU when the cuda tier runs for real);
    NumPy results, a tuple of them for ops that return several arrays."""
    from aecore.kernels import implementations
    result = implementations(op)[tier](*on_tier(tier, args)[0])

    def to_host(array):
        return array.get() if hasattr(array, "get") else np.asarray(array)
    return tuple(map(to_host, result)) if isinstance(result, tuple) else to_host(result)


# ------------------------------------------------------------------------ determinism
def run_twice(op, tier, *args):
    """`op` run twice on `tier` (as run_tier), the two runs differing in all that a kernel must
    not let decide its arithmetic: the second one reads copies of the inputs that start one
    element past a 64-byte boundary (vector loops peel and split differently), runs on one Numba
    thread instead of all of them (parallel loops split differently), and gets the first run's
    scratch buffers back from the host cache, dirty. Bit-identical results then mean no atomics,
    reductions in a fixed order and no read of memory the kernel did not write."""
    with every_buffer_cached():
        first = run_tier(op, tier, *args)
        with _numba_threads(1 if tier == "numba" else None):
            second = run_tier(op, tier, *map(_off_alignment, args))
        results = _copied(first), _copied(second)
        del first, second       # the cache's buffers are idle again: released as the block ends
    return results


def _copied(result):
    return tuple(map(np.copy, result)) if isinstance(result, tuple) else np.copy(result)


def _off_alignment(array):
    """A C-contiguous copy of a NumPy array that starts one element past a 64-byte boundary;
    anything else unchanged."""
    if not isinstance(array, np.ndarray):
        return array
    step = array.dtype.itemsize
    buffer = np.empty(array.size + 64 // step + 1, array.dtype)
    start = (-buffer.ctypes.data % 64) // step + 1
    copy = buffer[start:start + array.size].reshape(array.shape)
    copy[...] = array
    return copy


@contextlib.contextmanager
def _numba_threads(count):
    """Run the block on `count` Numba threads (None: leave the count as it is)."""
    if count is None:
        yield
        return
    import numba
    previous = kernel_compile.start_threads()
    numba.set_num_threads(count)
    try:
        yield
    finally:
        numba.set_num_threads(previous)


@contextlib.contextmanager
def every_buffer_cached():
    """Send every host-cache allocation through the cache, not only those of MIN_BYTES and more
    (small test shapes), so that buffers come back reused; the idle ones are released after."""
    from aecore.kernels import memory
    previous, memory.MIN_BYTES = memory.MIN_BYTES, 1
    try:
        yield
    finally:
        memory.MIN_BYTES = previous
        memory.release()
