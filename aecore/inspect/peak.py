"""What this machine can do: measured, not assumed, and cached per machine.

    machine_peak(device="cpu", refresh=False) -> {
        "gflops":     float32 matrix multiply (SGEMM) GFLOP/s, NumPy's BLAS (CuPy's on "cuda"),
        "gflops_f64": the same in float64 (DGEMM),
        "gbps":       copy bandwidth in GB/s (bytes read + bytes written per second),
        "machine":    {cpu, cores, numpy, numba, gpu, ...},
        "device", "measured_at", "method": how the numbers were obtained}

A kernel's "share of peak" is its GFLOP/s against min(gflops, intensity * gbps): the roofline
of THIS machine, so the figure means the same on a laptop and on a server. The numbers are the
best of a few repeats of a large matmul and a large copy (about a second in all), stored in
$AECORE_CACHE_DIR/peak.json (default ~/.cache/aecore/peak.json) under a key describing the machine,
and read from there afterwards; `refresh=True` measures again.
"""

import json
import os
import platform
import time
from pathlib import Path

import numpy as np

_memory_cache = {}


def cache_path():
    """Where measured peaks are kept: AECORE_CACHE_DIR (aecore.settings), else ~/.cache/aecore."""
    from ..settings import cache_dir
    return cache_dir() / "peak.json"


def _cpu_model():
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _usable_cores():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count()


def describe_machine(device="cpu"):
    """A JSON-safe description of the machine (and the GPU, for device 'cuda')."""
    info = {
        "hostname": platform.node(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "usable_cores": _usable_cores(),
        "numpy": np.__version__,
    }
    try:
        import numba
        info["numba"] = numba.__version__
        info["numba_threads"] = numba.config.NUMBA_NUM_THREADS
    except ImportError:
        info["numba"] = None
    info["gpu"] = None
    if device == "cuda":
        import cupy
        properties = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)
        name = properties["name"]
        info["gpu"] = name.decode() if isinstance(name, bytes) else str(name)
        info["gpu_memory_gb"] = round(properties["totalGlobalMem"] / 1e9, 1)
        info["cupy"] = cupy.__version__
    return info


def _key(info, device):
    return "|".join(str(info.get(k)) for k in ("hostname", "cpu", "usable_cores", "numpy", "gpu")) + f"|{device}"


def _best_seconds(run, repeats, synchronize):
    run()  # warm-up (page faults, BLAS thread start, CuPy plan)
    synchronize()
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        synchronize()
        best = min(best, time.perf_counter() - started)
    return best


def _measure(xp, synchronize, gemm_size, copy_bytes, repeats):
    result = {}
    for key, dtype in (("gflops", xp.float32), ("gflops_f64", xp.float64)):
        n = gemm_size
        a = xp.ones((n, n), dtype=dtype)
        b = xp.ones((n, n), dtype=dtype)
        c = xp.empty((n, n), dtype=dtype)
        seconds = _best_seconds(lambda: xp.matmul(a, b, out=c), repeats, synchronize)
        result[key] = 2 * n ** 3 / seconds / 1e9
    elements = copy_bytes // 4
    source = xp.ones(elements, dtype=xp.float32)
    target = xp.empty_like(source)
    seconds = _best_seconds(lambda: xp.copyto(target, source), repeats, synchronize)
    result["gbps"] = 2 * source.nbytes / seconds / 1e9  # read once, written once
    result["method"] = (f"best of {repeats}: {gemm_size}x{gemm_size} matmul (float32, float64), "
                        f"copy of {source.nbytes // 2**20} MiB float32")
    return result


def measure(device="cpu"):
    """Measure the peaks now (no cache). Quick: about a second on a CPU."""
    if device == "cuda":
        import cupy
        stream_sync = cupy.cuda.get_current_stream().synchronize
        numbers = _measure(cupy, stream_sync, 4096, 512 * 2**20, 5)
    else:
        # A first small matmul tells whether 1024 is too small to time on a fast machine.
        a = np.ones((1024, 1024), np.float32)
        a @ a
        started = time.perf_counter()
        a @ a
        size = 2048 if time.perf_counter() - started < 0.005 else 1024
        numbers = _measure(np, lambda: None, size, 128 * 2**20, 3)
    numbers["device"] = device
    numbers["machine"] = describe_machine(device)
    numbers["measured_at"] = time.strftime("%Y-%m-%dT%H:%M:%S")
    return numbers


def machine_peak(device="cpu", refresh=False):
    """This machine's measured peaks (see the module docstring), from the cache when there."""
    if device not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'cpu' or 'cuda', got {device!r}")
    info = describe_machine(device)
    key = _key(info, device)
    path = cache_path()
    if not refresh:
        if (str(path), key) in _memory_cache:
            return dict(_memory_cache[(str(path), key)])
        try:
            stored = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            stored = {}
        if key in stored:
            _memory_cache[(str(path), key)] = stored[key]
            return dict(stored[key])
    numbers = measure(device)
    try:
        try:
            stored = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            stored = {}
        stored[key] = numbers
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_text(json.dumps(stored, indent=1, sort_keys=True), encoding="utf-8")
        os.replace(temporary, path)
    except OSError:
        pass  # a read-only home: the numbers are still returned (and kept in memory)
    _memory_cache[(str(path), key)] = numbers
    return dict(numbers)


def roof_gflops(flops, bytes_moved, peak, dtype_itemsize=4):
    """The attainable GFLOP/s of an op with this intensity on this machine (the roofline)."""
    compute = peak["gflops_f64"] if dtype_itemsize == 8 and peak.get("gflops_f64") else peak["gflops"]
    if not bytes_moved:
        return compute
    return min(compute, flops / bytes_moved * peak["gbps"])


def share_of_peak(flops, bytes_moved, seconds, peak, dtype_itemsize=4):
    """Achieved performance as a fraction of this machine's roofline for the op (0..1+).

    Ops that compute (flops > 0): achieved GFLOP/s over the roof at their intensity.
    Pure data movement (flops == 0): achieved GB/s over the copy bandwidth.
    None when nothing can be said (no time, or nothing counted).
    """
    if not seconds or seconds <= 0 or (not flops and not bytes_moved):
        return None
    if flops:
        return flops / seconds / 1e9 / roof_gflops(flops, bytes_moved, peak, dtype_itemsize)
    return bytes_moved / seconds / 1e9 / peak["gbps"]
