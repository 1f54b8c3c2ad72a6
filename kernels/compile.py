"""What the compiled tiers need, in one place: Numba (optional), numba.cuda (optional), launches.

Kernel modules write their loops as plain Python functions and compile them here:
- `cpu_kernel(function)` -> `njit(parallel=True, cache=True, fastmath=False)` when Numba is
  installed, else None (the numba tier is then simply not registered);
- `cuda_kernel(function)` -> `numba.cuda.jit(function)` when numba.cuda imports (a real GPU, or the
  simulator with NUMBA_ENABLE_CUDASIM=1), else None.
`cuda.jit` compiles lazily, per argument types, on the first launch.
"""

import contextlib
import math
import os

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


def cpu_kernel(function, fastmath=False):
    """Compile a loop function for the CPU (parallel, cached on disk), or None without Numba.

    `fastmath` is passed to njit: a kernel may opt into a named subset such as {"contract"}
    (fused multiply-add) or {"contract", "reassoc"} (vectorized sum reductions).
    """
    if not NUMBA_AVAILABLE:
        return None
    return njit(parallel=True, cache=True, fastmath=fastmath)(function)


# Below this many values a kernel runs on the calling thread instead of the parallel pool (a few
# microseconds of work). Waking the pool for a small array cost up to 3 ms when OpenBLAS's threads
# (the dense layers' matmuls) still held the cores: the dense AE's step went 7 -> 27 ms through
# its small ReLUs before this limit.
SERIAL_MAX_VALUES = 1 << 16


def cpu_kernel_serial(function, fastmath=False):
    """Like cpu_kernel, for helpers called from inside parallel loops (no nested parallelism)."""
    if not NUMBA_AVAILABLE:
        return None
    return njit(cache=True, fastmath=fastmath)(function)


def cuda_kernel(function):
    """Compile a kernel for numba.cuda (lazily), or None when numba.cuda is unavailable."""
    if cuda is None:
        return None
    return cuda.jit(function)


def cuda_device_function(function):
    if cuda is None:
        return None
    return cuda.jit(device=True)(function)


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
    """numpy or cupy, by the array's type (cupy imported only if the array is one)."""
    if type(array).__module__.split(".")[0] == "cupy":
        import cupy
        return cupy
    import numpy
    return numpy
