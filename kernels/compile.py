"""What the compiled tiers need, in one place: Numba (optional), numba.cuda (optional), launches.

Kernel modules write their loops as plain Python functions and compile them here:
- `cpu_kernel(function)` -> `njit(parallel=True, cache=True, fastmath=False)` when Numba is
  installed, else None (the numba tier is then simply not registered);
- `cuda_kernel(function)` -> `numba.cuda.jit(function)` when numba.cuda imports (a real GPU, or the
  simulator with NUMBA_ENABLE_CUDASIM=1), else None.
`cuda.jit` compiles lazily, per argument types, on the first launch.

Numba keeps the compiled CPU kernels on disk (cache=True), so only a fresh install's first run
compiles them (about half a minute on 2 cores); `compile_notice()` is the line a run prints
before that wait.
"""

import contextlib
import importlib
import math
import os

from .. import backend

# Numba's OpenMP workers spin after each parallel kernel (GNU OpenMP: 300,000 spins before they
# sleep). With as many threads as cores they then take the cores from OpenBLAS's threads in the
# matmul that follows, and a dense step slows threefold (the dense VAE 784-400-20: 48 ms against
# 15 ms; kernels/NOTES.md, "thread pools"). A short spin keeps most of the benefit of spinning
# between back-to-back kernels. Set before the OpenMP runtime starts, and only when the user
# has chosen neither a spin count nor a wait policy.
OMP_SPIN_COUNT = "10000"
if "GOMP_SPINCOUNT" not in os.environ and "OMP_WAIT_POLICY" not in os.environ:
    os.environ["GOMP_SPINCOUNT"] = OMP_SPIN_COUNT

try:  # Numba is a core requirement, but aecore still runs (slower) with NumPy alone.
    import numba
    from numba import njit, prange
    NUMBA_AVAILABLE = True
except ImportError:  # exercised by tests/test_numpy_only.py
    import warnings
    warnings.warn("Numba is not installed: aecore runs its NumPy reference kernels (slower); "
                  "pip install numba for the compiled CPU kernels", RuntimeWarning, stacklevel=2)
    numba = None
    njit = None
    prange = range
    NUMBA_AVAILABLE = False

CUDA_SIMULATOR = os.environ.get("NUMBA_ENABLE_CUDASIM", "0") == "1"

cuda = None
if NUMBA_AVAILABLE:
    try:
        from numba import cuda  # noqa: F811  (provided by the numba-cuda package)
    except Exception:  # ImportError, or a broken CUDA installation
        cuda = None

CUDA_KERNELS_AVAILABLE = cuda is not None


# Every CPU kernel compiled below, so that cache_is_cold() can ask Numba where each is cached.
_CPU_KERNELS = []


def _cached_njit(function, **options):
    """njit with Numba's disk cache on (cache=True), the kernel remembered in _CPU_KERNELS."""
    kernel = njit(cache=True, **options)(function)
    _CPU_KERNELS.append(kernel)
    return kernel


def cpu_kernel(function, fastmath=False):
    """Compile a loop function for the CPU (parallel, cached on disk), or None without Numba.

    `fastmath` is passed to njit: a kernel may opt into a named subset such as {"contract"}
    (fused multiply-add) or {"contract", "reassoc"} (vectorized sum reductions).

    One signature per kernel: Numba compiles a function once per distinct argument types, so a
    serial task called from a prange loop gets its index as np.int64(task) (the parfor's index is
    uint64, the loop's int64 before the parfor pass: two compiles otherwise), and a helper is
    called with np.int64(0) rather than the constant 0 (typed Literal[int], a second compile).
    Figures: kernels/NOTES.md, "compile time".
    """
    if not NUMBA_AVAILABLE:
        return None
    return _cached_njit(function, parallel=True, fastmath=fastmath)


# Below this many values a kernel runs on the calling thread instead of the parallel pool (a few
# microseconds of work): waking the pool costs more than the work when OpenBLAS's threads still
# hold the cores (kernels/NOTES.md, "relu").
SERIAL_MAX_VALUES = 1 << 16


def cpu_kernel_serial(function, fastmath=False):
    """Like cpu_kernel, for helpers called from inside parallel loops (no nested parallelism)."""
    if not NUMBA_AVAILABLE:
        return None
    return _cached_njit(function, fastmath=fastmath)


# ---------------------------------------------------------------------------------------------
# the first-run notice: is Numba's on-disk cache of these kernels still empty?
# ---------------------------------------------------------------------------------------------

COMPILE_NOTICE = ("compiling aecore's Numba kernels for this machine "
                  "(first run only, about half a minute; cached afterwards)")


def _cache_index(kernel):
    """The index file (.nbi) where Numba lists `kernel`'s compiled versions, or None.

    Numba chose its folder when the kernel was decorated: NUMBA_CACHE_DIR when set, else the
    __pycache__ beside the kernel's module when that is writable, else the user's cache folder
    (~/.cache/numba/...); asking Numba (numba/core/caching.py) keeps us right whichever it chose.
    The name is <module>.<function>-<first line>.py<version>.nbi, beside its .nbc data files.
    """
    cache = getattr(kernel, "_cache", None)          # absent under NUMBA_DISABLE_JIT=1
    cache_file = getattr(cache, "_cache_file", None)
    return getattr(cache_file, "_index_path", None)


def cache_is_cold():
    """True when none of aecore's CPU kernels is in Numba's on-disk cache yet (a first run).

    Cheap: it compiles nothing and only looks for files. One cached kernel is enough to call the
    cache warm, since kernels a run never calls are never cached. False without Numba (nothing
    will compile) or when this Numba does not say where its cache is.
    """
    if not NUMBA_AVAILABLE:
        return False
    importlib.import_module(__package__)   # the kernel families register their kernels on import
    indexes = [_cache_index(kernel) for kernel in _CPU_KERNELS]
    if not indexes or None in indexes:
        return False
    return not any(os.path.exists(index) for index in indexes)


def compile_notice(tier=None):
    """The line to print before a run's first step when it is about to compile the CPU kernels
    (Numba installed, the numba tier, a cold cache), else None.

    tier: the tier the run uses ("ref", "numba" or "cuda"); None takes the forced one
    (use_tier / AECORE_TIER), else "numba". Pass "cuda" for a run on the GPU.
    """
    if tier is None:
        from .registry import forced_tier
        tier = forced_tier() or "numba"
    if tier != "numba" or not cache_is_cold():
        return None
    return COMPILE_NOTICE


def cuda_kernel(function):
    """Compile a kernel for numba.cuda (lazily), or None when numba.cuda is unavailable."""
    if cuda is None:
        return None
    return cuda.jit(function)


# One block shape for every 1-D launch; grid = ceil(total / threads).
THREADS_PER_BLOCK = 256


# When a list (inside `compile_only()`), launches compile PTX for the arguments' types instead of
# running: CI checks that every CUDA kernel type-checks and compiles, with no GPU and no driver.
_compiled_instead_of_launched = None

# The compute capability PTX is compiled for in compile_only() (any supported one will do).
PTX_COMPUTE_CAPABILITY = (8, 0)


@contextlib.contextmanager
def compile_only():
    """Inside this block, launch_1d compiles each kernel to PTX for the launch's argument types
    (via numba.cuda.compile_ptx, which needs NVRTC but no GPU) and records (name, types, ptx)."""
    global _compiled_instead_of_launched
    previous, _compiled_instead_of_launched = _compiled_instead_of_launched, []
    try:
        yield _compiled_instead_of_launched
    finally:
        _compiled_instead_of_launched = previous


def launch_1d(kernel, total, *args):
    """Launch `kernel` with one thread per output element on the current CuPy stream."""
    if _compiled_instead_of_launched is not None:
        types = tuple(numba.typeof(a) for a in args)
        ptx, _ = cuda.compile_ptx(kernel.py_func, types, cc=PTX_COMPUTE_CAPABILITY)
        _compiled_instead_of_launched.append((kernel.py_func.__name__, types, ptx))
        return
    if total == 0:
        return
    blocks = math.ceil(total / THREADS_PER_BLOCK)
    kernel[blocks, THREADS_PER_BLOCK, current_stream()](*(_without_sync(a) for a in args))


def _without_sync(arg):
    """A CuPy array as a Numba device array view that does NOT synchronize CuPy's stream.

    By default Numba synchronizes the stream a CuPy array names in its __cuda_array_interface__
    before every launch; our launches go on that same stream (current_stream), so the wait is
    useless and would stall the host every call.
    """
    if CUDA_SIMULATOR or not hasattr(arg, "__cuda_array_interface__"):
        return arg
    return cuda.as_cuda_array(arg, sync=False)


def current_stream():
    """CuPy's current stream as a Numba stream, so launches queue behind CuPy's work (no sync).

    Under the simulator (NumPy arrays) the default stream is used.
    """
    if CUDA_SIMULATOR or cuda is None:
        return 0
    try:
        import cupy
    except ImportError:
        return 0
    return cuda.external_stream(cupy.cuda.get_current_stream().ptr)


def array_module_of(array):
    """numpy or cupy, by the array's type (aecore.backend.get_array_module, for one array)."""
    return backend.get_array_module(array)
