"""What every benchmark shares: timing, validation, the machine's description, JSON and tables.

Timing rules (llm.c's dev/cuda style):
- validate first: a tier whose output disagrees with the reference is flagged, never hidden;
- warm-up calls are excluded (the first call of a Numba kernel compiles it or loads it from the
  cache; its time is reported separately as `first_call_ms`);
- the figure is the MEDIAN of the repeats (robust to the odd slow repeat on a shared machine);
- CPU: time.perf_counter around each call; where two implementations are compared they are
  timed in alternating rounds (time_cpu_interleaved), and whole training steps of two libraries
  each alone in a process of its own, blocks alternating (time_blocks_alternating);
- GPU: CUDA events on the current stream, and a large buffer written between repeats so that the
  L2 cache does not hold the inputs from the previous repeat (otherwise a small kernel would be
  timed from cache, not from memory).
"""

import datetime
import json
import os
import statistics
import subprocess
import time
from pathlib import Path

import numpy as np

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"


def import_aecore():
    """`import aecore`, with a clear message when only a bare source tree is at hand."""
    try:
        import aecore
    except ImportError as error:  # pragma: no cover - depends on the installation
        raise SystemExit(
            f"bench: cannot import aecore ({error}). Install the package from the repository root "
            "first: pip install -e .  (kernels/ is installed as aecore.kernels)") from error
    return aecore


def quick_requested(flag=False):
    """--quick, or AECORE_BENCH_QUICK=1: tiny shapes and few repeats, to check the code runs."""
    return bool(flag) or os.environ.get("AECORE_BENCH_QUICK", "") not in ("", "0")


def rounds_parser(description, name):
    """The command line shared by the side-by-side benchmarks timed in alternating rounds
    (conv_paths, fold): --quick, --rounds, --batch, --out."""
    import argparse
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="tiny shapes, 2 rounds (a smoke test)")
    parser.add_argument("--rounds", type=int, help="alternating rounds (default 9)")
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--out", help=f"JSON path (default bench/results/{name}.json)")
    return parser


# ------------------------------------------------------------------------------------ threads
def cpu_threads():
    """The threads our CPU kernels use (Numba's pool), so PyTorch can be given as many."""
    try:
        from aecore.kernels.compile import start_threads
        return int(start_threads())         # Numba's pool, started as a training run starts it
    except Exception:  # pragma: no cover - numba missing
        return os.cpu_count() or 1


def import_torch(threads=None):
    """torch (with its intra-op thread count set to match ours), or None when not installed.

    PyTorch is used only here, in bench/, for side-by-side numbers; never by the engine or tests.
    """
    if os.environ.get("AECORE_BENCH_NO_TORCH", "") not in ("", "0"):
        return None
    try:
        import torch
    except Exception:
        return None
    torch.set_num_threads(int(threads or cpu_threads()))
    return torch


def call_in_module(module_name, function_name, *args):
    """module_name.function_name(*args): a child process's entry point that finds its function by
    import, however the parent loaded the benchmark (as a script, a package module, or by path)."""
    import importlib
    return getattr(importlib.import_module(module_name), function_name)(*args)


def torch_cuda_available(torch):
    try:
        return torch is not None and bool(torch.cuda.is_available())
    except Exception:  # pragma: no cover
        return False


# ------------------------------------------------------------------------------------- timing
def _summary(times_ms, first_ms, warmup):
    return {
        "median_ms": float(statistics.median(times_ms)),
        "min_ms": float(min(times_ms)),
        "max_ms": float(max(times_ms)),
        "mean_ms": float(statistics.fmean(times_ms)),
        "stdev_ms": float(statistics.stdev(times_ms)) if len(times_ms) > 1 else 0.0,
        "repeats": len(times_ms),
        "warmup": warmup,
        "first_call_ms": float(first_ms),
        "times_ms": [round(float(t), 6) for t in times_ms],
    }


def time_cpu(fn, repeats=10, warmup=2):
    """Median wall time of fn() on the CPU. The first call (JIT compile) is timed on its own."""
    return time_cpu_interleaved({"fn": fn}, repeats, warmup)["fn"]


def time_cpu_interleaved(functions, repeats=10, warmup=2):
    """Median wall time of each function of `functions` (a dict name -> fn), timed in rounds:
    each round calls every function once, in the dict's order, so all of them see the same
    machine load. On a shared machine the load drifts over seconds; two blocks of repeats timed
    one after the other can differ by 1.5x for that reason alone, a round-by-round ratio does not.

    Returns {name: summary (as time_cpu)} plus "ratios": for every other name, its per-round
    time / the first function's time, summarised as median and quartiles.
    """
    repeats, warmup = max(1, int(repeats)), max(1, int(warmup))
    names = list(functions)
    first_ms, times = {}, {name: [] for name in names}
    for round_index in range(warmup + repeats):
        for name in names:
            started = time.perf_counter()
            functions[name]()
            elapsed = (time.perf_counter() - started) * 1e3
            if round_index == 0:
                first_ms[name] = elapsed
            elif round_index >= warmup:
                times[name].append(elapsed)
    result = {name: _summary(times[name], first_ms[name], warmup) for name in names}
    base = times[names[0]]
    ratios = {}
    for name in names[1:]:
        per_round = [other / ours for other, ours in zip(times[name], base)]
        quartiles = statistics.quantiles(per_round, n=4) if len(per_round) > 1 else per_round * 3
        ratios[name] = {"median": float(statistics.median(per_round)),
                        "q1": float(quartiles[0]), "q3": float(quartiles[-1])}
    result["ratios"] = ratios
    return result


# Each library alone, in a process of its own: the process that is not timing sits blocked on
# a pipe, and everyone pauses between blocks, so no library's thread pool (OpenMP's, BLAS',
# Numba's) is still spinning while another library's block runs. The issue this answers:
# PyTorch's dense AE step took 6.9 ms alone but 18.8 ms in a child timed while the parent's
# pools spun.
PAUSE_BETWEEN_BLOCKS_S = 0.25


def time_blocks_alternating(workers, repeats=10, warmup=2, block=5,
                            pause_s=PAUSE_BETWEEN_BLOCKS_S):
    """Median step time of each worker (name -> object with .block(k, first=False) -> [ms per
    step], each step timed inside its own process after one untimed step that wakes its thread
    pools; first=True times that one too), in rounds of `block` steps per worker: only one
    worker runs at a time, the order flips every round, and all wait pause_s between blocks.

    The first `warmup` steps of each worker are untimed (its first step, the JIT compile, is
    reported as first_call_ms). Returns {name: summary (as time_cpu)} plus "ratios": per round,
    each other worker's median step / the first worker's, as median and quartiles."""
    repeats, warmup, block = max(1, int(repeats)), max(1, int(warmup)), max(1, int(block))
    names = list(workers)
    first_ms, times = {}, {name: [] for name in names}
    for name in names:                                        # warmup, one worker at a time
        warm = workers[name].block(warmup, first=True)
        first_ms[name] = warm[0]
        time.sleep(pause_s)
    per_round = {name: [] for name in names}
    rounds = -(-repeats // block)
    for round_index in range(rounds):
        steps = min(block, repeats - round_index * block)
        order = names if round_index % 2 == 0 else names[::-1]
        for name in order:
            block_ms = workers[name].block(steps)
            times[name].extend(block_ms)
            per_round[name].append(statistics.median(block_ms))
            time.sleep(pause_s)
    result = {name: _summary(times[name], first_ms[name], warmup) for name in names}
    ratios = {}
    for name in names[1:]:
        ratio = [other / ours for other, ours in zip(per_round[name], per_round[names[0]])]
        quartiles = statistics.quantiles(ratio, n=4) if len(ratio) > 1 else ratio * 3
        ratios[name] = {"median": float(statistics.median(ratio)), "q1": float(quartiles[0]),
                        "q3": float(quartiles[-1])}
    result["ratios"] = ratios
    return result


class _L2Flusher:
    """Writes a buffer a few times the size of the GPU's L2 cache (evicts what is cached)."""

    def __init__(self, xp, library):
        l2_bytes = 0
        try:
            if library == "cupy":
                l2_bytes = int(xp.cuda.Device().attributes.get("L2CacheSize", 0))
            else:
                l2_bytes = int(getattr(xp.cuda.get_device_properties(0), "L2_cache_size", 0))
        except Exception:  # pragma: no cover - attribute names vary between versions
            l2_bytes = 0
        size = max(4 * l2_bytes, 256 << 20) // 4
        if library == "cupy":
            self.buffer = xp.empty(size, dtype=xp.float32)
        else:
            self.buffer = xp.empty(size, dtype=xp.float32, device="cuda")

    def __call__(self):
        self.buffer.fill(0) if hasattr(self.buffer, "fill") else self.buffer.zero_()


def time_gpu(fn, repeats=10, warmup=2, library="cupy"):
    """Median GPU time of fn() from CUDA events on the current stream, L2 flushed each repeat.

    library: "cupy" (our cuda tier: Numba kernels launched on CuPy's stream) or "torch".
    """
    repeats, warmup = max(1, int(repeats)), max(1, int(warmup))
    if library == "cupy":
        import cupy as xp
        make_event = xp.cuda.Event
        synchronize = xp.cuda.Device().synchronize

        def elapsed(a, b):
            return xp.cuda.get_elapsed_time(a, b)
    else:
        import torch as xp
        make_event = lambda: xp.cuda.Event(enable_timing=True)  # noqa: E731
        synchronize = xp.cuda.synchronize

        def elapsed(a, b):
            return a.elapsed_time(b)
    flush = _L2Flusher(xp, library)
    synchronize()
    started = time.perf_counter()
    fn()
    synchronize()
    first_ms = (time.perf_counter() - started) * 1e3
    for _ in range(warmup - 1):
        fn()
    synchronize()
    times = []
    start, stop = make_event(), make_event()
    for _ in range(repeats):
        flush()
        start.record()
        fn()
        stop.record()
        stop.synchronize()
        times.append(float(elapsed(start, stop)))
    del flush
    return _summary(times, first_ms, warmup)


# --------------------------------------------------------------------------------- validation
def to_numpy(array):
    """NumPy copy of a NumPy, CuPy or torch array."""
    if hasattr(array, "detach"):  # torch
        return array.detach().cpu().numpy()
    if import_aecore().backend.is_cupy_array(array):
        return array.get()
    return np.asarray(array)


def default_tolerance(dtype):
    """Tolerance on the error relative to the largest reference value (sums of ~1e5 terms)."""
    return 1e-10 if np.dtype(dtype) == np.float64 else 2e-4


def compare(out, ref, tol=None):
    """Compare an output with the reference: max |out - ref| against tol * max(1, max |ref|).

    Integer outputs (max-pool's argmax) must match exactly. Returns a JSON-safe dict.
    """
    a, b = to_numpy(out), to_numpy(ref)
    if a.shape != b.shape:
        return {"ok": False, "max_abs_err": float("inf"), "max_rel_err": float("inf"),
                "error": f"shape {a.shape} != reference shape {b.shape}"}
    if b.dtype.kind in "iub":
        mismatches = int(np.count_nonzero(a != b))
        return {"ok": mismatches == 0, "max_abs_err": float(mismatches), "max_rel_err": 0.0}
    tol = default_tolerance(b.dtype) if tol is None else tol
    diff = np.abs(a.astype(np.float64) - b.astype(np.float64))
    max_abs = float(diff.max()) if diff.size else 0.0
    scale = max(1.0, float(np.abs(b).max()) if b.size else 0.0)
    finite = bool(np.isfinite(a).all())
    return {"ok": finite and max_abs <= tol * scale, "max_abs_err": max_abs,
            "max_rel_err": max_abs / scale}


def compare_outputs(outs, refs, tol=None):
    """compare() over tuples of outputs; the worst error and whether all agree."""
    if not isinstance(outs, (tuple, list)):
        outs, refs = (outs,), (refs,)
    checks = [compare(o, r, tol) for o, r in zip(outs, refs)]
    return {"ok": all(c["ok"] for c in checks),
            "max_abs_err": max(c["max_abs_err"] for c in checks),
            "max_rel_err": max(c["max_rel_err"] for c in checks)}


# ------------------------------------------------------------------------------------ machine
def _git_commit():
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT,
                             capture_output=True, text=True, timeout=5)
        return out.stdout.strip() or None
    except Exception:
        return None


def machine_peak(device="cpu", refresh=False):
    """This machine's measured peak (SGEMM GFLOP/s, copy GB/s), from aecore.inspect.peak.

    refresh=True measures again instead of reading the per-machine cache: a benchmark run does
    so, so that the peak and the kernels are measured under the same conditions (a cached peak
    measured while the machine was busy would flatter every kernel)."""
    from aecore.inspect.peak import machine_peak as measure
    return dict(measure(device=device, refresh=refresh))


def describe_machine(device="cpu", torch=None, peak=None):
    """Everything needed to read the numbers on another day: hardware, versions, peak, threads."""
    aecore = import_aecore()
    from aecore.inspect.peak import describe_machine as hardware_and_versions
    base = hardware_and_versions(device)  # CPU model, cores, NumPy/Numba, GPU: one definition
    description = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "hostname": base["hostname"],
        "platform": base["platform"],
        "python": base["python"],
        "cpu_model": base["cpu"],
        "cpu_count": base["cores"],
        "numpy": base["numpy"],
        "numba": base["numba"],
        "aecore": getattr(aecore, "__version__", None),
        "git_commit": _git_commit(),
        "device": device,
        "threads": cpu_threads(),
    }
    for key in ("gpu", "gpu_memory_gb", "cupy"):
        if base.get(key) is not None:
            description[key] = base[key]
    if torch is not None:
        description["torch"] = torch.__version__
        description["torch_threads"] = torch.get_num_threads()
        description["torch_note"] = (f"PyTorch CPU ran with torch.set_num_threads("
                                     f"{torch.get_num_threads()}), the thread count of our kernels")
    else:
        description["torch"] = None
    description["peak"] = peak if peak is not None else machine_peak(device)
    return description


# ------------------------------------------------------------------------------- JSON / tables
def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def write_json(path, payload):
    """Write `payload` as indented JSON at `path` (directories created; atomic replace)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(payload, f, indent=1, default=_json_default, allow_nan=False)
        f.write("\n")
    os.replace(tmp, path)
    return path


def save_report(payload, out, name, quick, verbose):
    """Write a benchmark's JSON (bench/results/<name>.json, or <name>-quick.json, unless `out`
    names a file or is False) and print its markdown table when verbose."""
    if out is not False:
        path = out or RESULTS_DIR / (f"{name}-quick.json" if quick else f"{name}.json")
        write_json(path, payload)
        if verbose:
            print(f"\nwrote {path}")
    if verbose:
        print()
        print(payload["markdown"])


def sanitize(value):
    """Replace NaN / inf floats by None so the JSON stays strict."""
    if isinstance(value, dict):
        return {k: sanitize(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [sanitize(v) for v in value]
    if isinstance(value, (float, np.floating)) and not np.isfinite(value):
        return None
    return value


def fmt(value, spec=".2f"):
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    try:
        return format(value, spec)
    except (TypeError, ValueError):
        return str(value)


def markdown_table(rows, columns):
    """rows: list of dicts; columns: list of (key, header, format spec or callable)."""
    headers = [header for _, header, _ in columns]
    lines = ["| " + " | ".join(headers) + " |",
             "|" + "|".join("---" for _ in columns) + "|"]
    for row in rows:
        cells = []
        for key, _, spec in columns:
            value = row.get(key)
            cells.append(spec(row) if callable(spec) else fmt(value, spec))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def add_rates(record, flops, nbytes, peak):
    """GFLOP/s, GB/s, arithmetic intensity and shares of the machine's peak, into `record`."""
    ms = record.get("median_ms")
    record["flops"] = int(flops) if flops is not None else None
    record["bytes"] = int(nbytes) if nbytes is not None else None
    seconds = ms / 1e3 if ms else None
    record["gflops"] = flops / seconds / 1e9 if seconds and flops is not None else None
    record["gbps"] = nbytes / seconds / 1e9 if seconds and nbytes else None
    record["intensity"] = flops / nbytes if flops is not None and nbytes else None
    peak = peak or {}
    peak_gflops, peak_gbps = peak.get("gflops"), peak.get("gbps")
    record["pct_peak_gflops"] = (100.0 * record["gflops"] / peak_gflops
                                 if record["gflops"] is not None and peak_gflops else None)
    record["pct_peak_gbps"] = (100.0 * record["gbps"] / peak_gbps
                               if record["gbps"] is not None and peak_gbps else None)
    # share of the roofline: achieved / min(compute roof, intensity * bandwidth roof)
    if record["gflops"] is not None and record["intensity"] and peak_gflops and peak_gbps:
        attainable = min(peak_gflops, record["intensity"] * peak_gbps)
        record["pct_roofline"] = 100.0 * record["gflops"] / attainable if attainable else None
    elif record["gbps"] is not None and peak_gbps and not flops:
        record["pct_roofline"] = record["pct_peak_gbps"]  # pure data movement (no FLOPs)
    else:
        record["pct_roofline"] = None
    return record
