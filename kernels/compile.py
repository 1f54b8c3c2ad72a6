"""What the compiled tiers need, in one place: Numba (optional), numba.cuda (optional), launches.

Kernel modules write their loops as plain Python functions and compile them here:
- `cpu_kernel(function)` -> `njit(cache=True, fastmath=False)` when Numba is installed, else None
  (the numba tier is then simply not registered); `parallel_for(task, n, *args)` runs such a
  function over n task indices on Numba's threads;
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

import numpy as np

from .. import backend

try:  # Numba is a core requirement, but aecore still runs (slower) with NumPy alone.
    import numba
    from numba import int64, njit, prange, uint32, uint64
    NUMBA_AVAILABLE = True
except ImportError:  # exercised by tests/test_numpy_only.py
    import warnings
    warnings.warn("Numba is not installed: aecore runs its NumPy reference kernels (slower); "
                  "pip install numba for the compiled CPU kernels", RuntimeWarning, stacklevel=2)
    numba = None
    njit = None
    prange = range
    int64, uint32, uint64 = np.int64, np.uint32, np.uint64
    NUMBA_AVAILABLE = False

CUDA_SIMULATOR = os.environ.get("NUMBA_ENABLE_CUDASIM", "0") == "1"

cuda = None
if NUMBA_AVAILABLE:
    try:
        from numba import cuda  # noqa: F811  (provided by the numba-cuda package)
    except Exception:  # ImportError, or a broken CUDA installation
        cuda = None

CUDA_KERNELS_AVAILABLE = cuda is not None


# Numba's OpenMP workers spin after each parallel kernel (GNU OpenMP: 300,000 spins before they
# sleep). With as many threads as cores they then take the cores from OpenBLAS's threads in the
# matmul that follows, and a dense step slows threefold (the dense VAE 784-400-20: 48 ms against
# 15 ms; kernels/NOTES.md, "thread pools"). A short spin keeps most of the benefit of spinning
# between back-to-back kernels. It is given to Numba's pool alone: put in the environment while
# the pool starts (GNU OpenMP reads it then), and taken out again, so that child processes and
# other libraries' OpenMP (PyTorch's, in bench/'s side-by-side runs) see the environment the
# user set. A user's own GOMP_SPINCOUNT or OMP_WAIT_POLICY is left alone.
OMP_SPIN_COUNT = "10000"
_threads_started = False


def start_threads():
    """Start Numba's thread pool, once, with aecore's short OpenMP spin; return its thread count.

    parallel_for calls it before its first launch; call it before anything else asks Numba about
    threads (numba.get_num_threads / set_num_threads start the pool with OpenMP's defaults).
    """
    global _threads_started
    if not NUMBA_AVAILABLE:
        return 1
    if not _threads_started:
        user_chose = "GOMP_SPINCOUNT" in os.environ or "OMP_WAIT_POLICY" in os.environ
        if not user_chose:
            os.environ["GOMP_SPINCOUNT"] = OMP_SPIN_COUNT
        try:
            numba.get_num_threads()          # loads the threading layer, which reads it
        finally:
            if not user_chose:
                del os.environ["GOMP_SPINCOUNT"]
        _threads_started = True
    return numba.get_num_threads()


# Every CPU kernel compiled below, so that cache_is_cold() can ask Numba where each is cached.
_CPU_KERNELS = []


def _cached_njit(function, **options):
    """njit with Numba's disk cache on (cache=True), the kernel remembered in _CPU_KERNELS."""
    kernel = njit(cache=True, **options)(function)
    _CPU_KERNELS.append(kernel)
    return kernel


def cpu_kernel(function, fastmath=False, error_model="python"):
    """Compile a loop function for the CPU (serial, cached on disk), or None without Numba.

    `fastmath` is passed to njit: a kernel may opt into a named subset such as {"contract"}
    (fused multiply-add) or {"contract", "reassoc"} (vectorized sum reductions).
    `error_model="numpy"` makes a float division by zero give inf or NaN, as NumPy's does,
    instead of raising ZeroDivisionError; the check that raises keeps a loop that divides from
    being vectorized (kernels/NOTES.md, "adam").

    Every compiled CPU function is serial; a parallel kernel is a serial *task* over a task index
    that parallel_for runs on Numba's threads. One signature per function: Numba compiles once
    per distinct argument types, so a helper is called with np.int64(0) rather than the constant
    0 (typed Literal[int], a second compile). Figures: kernels/NOTES.md, "compile time".
    """
    if not NUMBA_AVAILABLE:
        return None
    return _cached_njit(function, fastmath=fastmath, error_model=error_model)


# Below this many values a kernel runs on the calling thread instead of the parallel pool (tens
# of microseconds of work): waking the pool costs more than the work when OpenBLAS's threads
# still hold the cores, as after every matmul of a dense model (kernels/NOTES.md, "relu").
SERIAL_MAX_VALUES = 1 << 18


def target_features():
    """The CPU features Numba compiles for, in LLVM's spelling ('+avx2,+fma,-avx512f,...'):
    NUMBA_CPU_FEATURES when it is set ('' there means the defaults of NUMBA_CPU_NAME, which
    this does not look up), else the host's. '' without Numba."""
    if not NUMBA_AVAILABLE:
        return ""
    from numba.core import config
    if config.CPU_FEATURES is not None:
        return config.CPU_FEATURES
    from llvmlite import binding
    return binding.get_host_cpu_features().flatten()


def has_32_vector_registers():
    """True where Numba's code gets x86's 32 vector registers: AVX-512VL gives them to 256-bit
    code too (AVX2 alone has 16). A kernel whose best register blocking depends on it asks
    here, so a machine gets the blocking its own compiled code runs best with."""
    return "+avx512vl" in target_features().split(",")


def run_in_chunks(task, n_items, chunk, *args, values=None):
    """Run task(t, *args, chunk) for the ceil(n_items / chunk) chunks of n_items (values, rows:
    whatever the task takes `chunk` of) in parallel; or, when the work is `values` (default
    n_items) <= SERIAL_MAX_VALUES, as one chunk of everything, task(0, *args, n_items), on this
    thread. The elementwise kernels' launch (relu, adam, bce)."""
    if (n_items if values is None else values) <= SERIAL_MAX_VALUES:
        task(np.int64(0), *args, n_items)
    else:
        parallel_for(task, -(-n_items // chunk), *args, chunk)


# Values per task for the kernels that work plane by plane (pooling, upsampling): a 7x7 plane is
# less work than its own launch, so small planes go several to a task (kernels/NOTES.md,
# "max_pool2d").
PLANE_BLOCK_VALUES = 1024


def run_planes(task, n_planes, plane_values, *args):
    """Run a plane-by-plane kernel in parallel, task(t, *args, planes) doing planes t*planes ..
    (t+1)*planes - 1 of n_planes, each plane_values values: about PLANE_BLOCK_VALUES values per
    task, one plane at least. Even a small whole stays parallel: a window loop costs several
    times an elementwise one per value, and one thread took longer than two tasks' launch."""
    planes = max(1, PLANE_BLOCK_VALUES // max(1, plane_values))
    parallel_for(task, -(-n_planes // planes), *args, planes)


# ---------------------------------------------------------------------------------------------
# parallel_for: the one parallel loop, calling each kernel's task through a function pointer
# ---------------------------------------------------------------------------------------------
# Numba turns a prange loop into a "gufunc" and links the code of everything the loop body calls
# into it, into the gufunc's wrapper and into the outer function: each of those three libraries
# optimizes and generates machine code for the whole linked module again. A kernel's task (its
# whole body) was compiled four times, and its prange wrapper cost more than the task. Called
# through a pointer, a task is compiled once; the loop below is a few instructions, compiled
# once per argument types (kernels/NOTES.md, "compile time").

def _run_tasks(task, n_tasks, args):
    for t in prange(n_tasks):
        task(np.int64(t), *args)


if NUMBA_AVAILABLE:
    from numba.core import types as _numba_types
    from numba.core.types import WrapperAddressProtocol
    from numba.experimental.function_type import _get_wrapper_address
    _run_tasks = _cached_njit(_run_tasks, parallel=True)
else:
    WrapperAddressProtocol = object


class _TaskPointer(WrapperAddressProtocol):
    """One task compiled for one set of argument types, as a first-class function: the address of
    its C-callable wrapper, which _run_tasks calls. The address is looked up once, here."""

    def __init__(self, task, arg_types):
        self._signature = _numba_types.void(_numba_types.int64, *arg_types)
        task.compile(self._signature.args)
        returns = task.overloads[self._signature.args].signature.return_type
        if returns != _numba_types.none:
            raise TypeError(f"{task.py_func.__name__}: a parallel_for task returns nothing (it "
                            f"writes its outputs); this one returns {returns}")
        self._address = _get_wrapper_address(task, self._signature)

    def __wrapper_address__(self):
        return self._address

    def signature(self):
        return self._signature


# The array flags Numba's array type depends on: C_CONTIGUOUS, F_CONTIGUOUS, ALIGNED, WRITEABLE.
_TYPED_FLAGS = 0x1 | 0x2 | 0x100 | 0x400


def _type_key(value):
    """What Numba's type of `value` depends on, cheaply (numba.typeof costs ~10 us a value)."""
    if type(value) is np.ndarray:
        return value.dtype, value.ndim, value.flags.num & _TYPED_FLAGS
    if isinstance(value, (int, float, bool, np.generic)):
        return type(value)
    return numba.typeof(value)


# Inside a task, the index of the thread running it: 0 .. start_threads() - 1 (0 on the calling
# thread). A task that needs a large workspace takes row thread_slot() of one array allocated
# by the caller with start_threads() rows, from the host buffer cache (kernels/memory.py): an
# np.empty of a megabyte inside a task is glibc's mmap, and its fresh pages fault on every call
# (kernels/NOTES.md, "conv2d", Winograd's workspaces). Slots are per launch: two launches never
# share a workspace array.
thread_slot = numba.get_thread_id if NUMBA_AVAILABLE else (lambda: 0)


# (task, argument type keys) -> (task pointer, _run_tasks compiled for those types)
_launches = {}


def parallel_for(task, n_tasks, *args):
    """Run task(t, *args) for t in range(n_tasks) on Numba's threads (OpenMP), and wait.

    task: a cpu_kernel whose first argument is the task index (int64) and which returns nothing;
    tasks must write disjoint outputs. The first call with new argument types compiles the task
    and the loop for them (cached on disk); later calls cost a few microseconds.
    """
    key = (task, *map(_type_key, args))
    launch_for_types = _launches.get(key)
    if launch_for_types is None:
        start_threads()
        arg_types = tuple(numba.typeof(a) for a in args)
        pointer = _TaskPointer(task, arg_types)
        loop = _run_tasks.compile((numba.typeof(pointer), _numba_types.int64,
                                   _numba_types.Tuple(arg_types)))
        launch_for_types = _launches[key] = (pointer, loop)
    pointer, loop = launch_for_types
    loop(pointer, n_tasks, args)


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


def cuda_device(function):
    """Decorator: `function` as a numba.cuda device function, a helper that kernels call (its
    Python original stays at .py_func); the function itself when numba.cuda is unavailable."""
    if cuda is None:
        return function
    return cuda.jit(device=True)(function)


# One block shape for every 1-D launch; grid = ceil(total / threads).
THREADS_PER_BLOCK = 256

# ---------------------------------------------------------------------------------------------
# index arithmetic shared by the cuda kernels
# ---------------------------------------------------------------------------------------------
# A flat thread index is split into (plane, row, column) by division and remainder. Done on
# Python's int64 with floor semantics, each `//` and `%` is a 64-bit signed division plus a sign
# fix-up: tens of instructions on a GPU. On unsigned 32-bit values it is one native division,
# which is right whenever every index is below 2**31. `wide` (from needs_wide_index, checked at
# launch) says which: a branch that is the same for every thread costs nothing.

WIDE_INDEX_LIMIT = 2 ** 31


def needs_wide_index(*sizes):
    """False when every index of arrays of these element counts fits 32 bits (the fast path)."""
    return max(sizes, default=0) >= WIDE_INDEX_LIMIT


@cuda_device
def split_index(t, h, w, wide):
    """Flat index t over (planes, h, w) -> (plane, row, column), as int64 values."""
    if wide:
        t64, h64, w64 = uint64(t), uint64(h), uint64(w)
        return int64(t64 // (h64 * w64)), int64((t64 // w64) % h64), int64(t64 % w64)
    t32, h32, w32 = uint32(t), uint32(h), uint32(w)
    return (int64(t32 // uint32(h32 * w32)), int64(uint32(t32 // w32) % h32),
            int64(t32 % w32))


@cuda_device
def split_pair(t, w, wide):
    """Flat index t over (rows, w) -> (row, column), as int64 values."""
    if wide:
        t64, w64 = uint64(t), uint64(w)
        return int64(t64 // w64), int64(t64 % w64)
    t32, w32 = uint32(t), uint32(w)
    return int64(t32 // w32), int64(t32 % w32)


@cuda_device
def quotient(a, b):
    """a // b for sizes (0 <= a < 2**31, 0 < b), as one unsigned 32-bit division."""
    return int64(uint32(a) // uint32(b))


@cuda_device
def window_span(o, stride, pad, kernel, size):
    """The input rows [start, end) of output row o's pooling window, clipped to the input."""
    start = o * stride - pad
    return max(start, 0), min(start + kernel, size)


@cuda_device
def windows_over(i, stride, pad, kernel, out, wide):
    """The output rows [first, end) whose pooling windows cover input row i, the o with
    o*stride - pad <= i <= o*stride - pad + kernel - 1 (the backward gathers' bounds)."""
    low = i + pad - kernel + stride      # first = ceil((i + pad - kernel + 1) / stride)
    first = split_pair(low, stride, wide)[0] if low > 0 else 0
    return first, min(split_pair(i + pad, stride, wide)[0] + 1, out)


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
    import types
    from numba.cuda import dispatcher
    # A device function compiles for the current GPU's compute capability; with no GPU, numba
    # is told the one PTX is compiled for.
    asks_device = dispatcher.get_current_device
    dispatcher.get_current_device = lambda: types.SimpleNamespace(
        compute_capability=PTX_COMPUTE_CAPABILITY)
    previous, _compiled_instead_of_launched = _compiled_instead_of_launched, []
    try:
        yield _compiled_instead_of_launched
    finally:
        _compiled_instead_of_launched = previous
        dispatcher.get_current_device = asks_device


def launch_1d(kernel, total, *args):
    """Launch `kernel` with one thread per output element on the current CuPy stream."""
    launch(kernel, (math.ceil(total / THREADS_PER_BLOCK),), (THREADS_PER_BLOCK,), *args)


def launch(kernel, grid, block, *args):
    """Launch `kernel` on a grid of blocks (tuples of 1 to 3 sizes) on the current CuPy stream,
    or compile it to PTX instead inside compile_only(). A grid with no blocks launches nothing."""
    if _compiled_instead_of_launched is not None:
        types = tuple(numba.typeof(a) for a in args)
        ptx, _ = cuda.compile_ptx(kernel.py_func, types, cc=PTX_COMPUTE_CAPABILITY)
        _compiled_instead_of_launched.append((kernel.py_func.__name__, types, ptx))
        return
    if 0 in grid:
        return
    _check_device_arrays(kernel, args)
    kernel[grid, block, current_stream()](*(_without_sync(a) for a in args))


def _check_device_arrays(kernel, args):
    """On a real GPU every array argument must already be on the device: numba.cuda would copy a
    NumPy array to the GPU and back on every launch, silently and slowly."""
    if CUDA_SIMULATOR:
        return
    for position, arg in enumerate(args):
        if isinstance(arg, np.ndarray) and arg.ndim > 0:
            raise TypeError(f"{kernel.py_func.__name__}: argument {position} is a NumPy "
                            f"{arg.shape} array; the cuda tier runs on CuPy arrays only (move the "
                            "tensor with .to('cuda'), or use the ref / numba tier on the CPU)")


def _without_sync(arg):
    """A CuPy array as a Numba device array view that does NOT synchronize CuPy's stream.

    By default Numba synchronizes the stream a CuPy array names in its __cuda_array_interface__
    before every launch; our launches go on that same stream (current_stream), so the wait is
    useless and would stall the host every call.
    """
    if CUDA_SIMULATOR or not hasattr(arg, "__cuda_array_interface__"):
        return arg
    return cuda.as_cuda_array(arg, sync=False)


# One Numba wrapper per CuPy stream, made on first use (a new one per launch costs host time).
_streams = {}


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
    pointer = cupy.cuda.get_current_stream().ptr
    stream = _streams.get(pointer)
    if stream is None:
        if len(_streams) > 64:      # streams come and go: keep the table small
            _streams.clear()
        stream = _streams[pointer] = cuda.external_stream(pointer)
    return stream


def table_argument(xp, table):
    """A cached, read-only host table (indices, weights, divisors) as a kernel argument: on a GPU
    its copy made once (backend.device_constant); under the simulator a fresh writable NumPy
    copy (numba.cuda copies NumPy arguments back after a launch)."""
    if xp is np:
        return table.copy()
    return backend.device_constant(xp, table)


def array_module_of(array):
    """numpy or cupy, by the array's type (aecore.backend.get_array_module, for one array)."""
    return backend.get_array_module(array)
