"""bench/ runs end to end in quick mode: every registered op x every tier that can run here is
validated against the reference and timed, with FLOP and byte counts, and the JSON is valid.

bench/ is not an installed package: it is imported by path, as `aecore bench` does. PyTorch is
never used here (torch=False); the side-by-side comparison is exercised by running the
benchmark scripts by hand.
"""

import importlib.util
import json
import os
import math
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from aecore import kernels

REPO_ROOT = Path(__file__).resolve().parents[1]


def load_bench(name):
    path = REPO_ROOT / "bench" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"aecore_test_bench_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(autouse=True)
def _private_peak_cache(tmp_path, monkeypatch):
    """The machine-peak cache goes to a temporary folder, not to ~/.cache."""
    monkeypatch.setenv("AECORE_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def kernel_run(tmp_path_factory):
    bench_kernels = load_bench("kernels")
    out = tmp_path_factory.mktemp("bench") / "kernels.json"
    results = bench_kernels.run(quick=True, repeats=1, warmup=1, torch=False, out=out,
                                verbose=False)
    return bench_kernels, results, out


def test_every_op_and_tier_is_validated_and_timed(kernel_run):
    bench_kernels, results, _ = kernel_run
    seen = {(r["op"], r["tier"]) for r in results}
    for op in kernels.ops():
        tiers = bench_kernels.available_tiers(op)
        assert "ref" in tiers
        for tier in tiers:
            assert (op, tier) in seen, f"{op} on tier {tier} was not benchmarked"
    for r in results:
        where = f"{r['case']} {r['op']} {r['tier']}"
        assert r["valid"], f"{where}: disagrees with the reference (max abs err {r['max_abs_err']})"
        assert r["median_ms"] > 0 and r["min_ms"] > 0 and r["first_call_ms"] > 0, where
        assert r["repeats"] == 1
        assert r["bytes"] > 0 and r["gbps"] > 0, where
        if r["op"] == "upsample_nearest_forward":  # a pure copy: no arithmetic
            assert r["flops"] == 0, where
        else:
            assert r["flops"] > 0 and r["gflops"] > 0, where
        assert r["torch_ms"] is None


def test_flop_counts_follow_the_formulas(kernel_run):
    _, results, _ = kernel_run
    conv = next(r for r in results if r["op"] == "conv2d_forward" and r["case"] == "conv 1->32 28x28")
    g = conv["geom"]
    assert conv["flops"] == 2 * g["n"] * g["c_out"] * g["out_h"] * g["out_w"] * g["c_in"] * 3 * 3
    assert (g["out_h"], g["out_w"]) == (28, 28)
    pool = next(r for r in results if r["op"] == "max_pool2d_forward" and "7x7->4" in r["case"])
    assert (pool["geom"]["out_h"], pool["geom"]["out_w"]) == (4, 4)  # TF 'same' pooling
    assert pool["flops"] == pool["geom"]["n"] * pool["geom"]["c"] * 4 * 4 * 2 * 2


def test_json_report_is_valid(kernel_run):
    _, results, out = kernel_run
    payload = json.loads(Path(out).read_text())
    assert payload["benchmark"] == "kernels"
    assert len(payload["results"]) == len(results)
    machine = payload["machine"]
    for key in ("cpu_model", "cpu_count", "numpy", "python", "threads", "peak"):
        assert key in machine
    assert machine["peak"]["gflops"] > 0 and machine["peak"]["gbps"] > 0
    assert payload["settings"]["quick"] is True
    assert payload["summary"] and "| case |" in payload["markdown"]
    for row in payload["summary"]:
        assert row["total_ms"] >= row["forward_ms"] > 0


def test_roofline_svg(kernel_run, tmp_path):
    _, _, out = kernel_run
    roofline = load_bench("roofline")
    written = roofline.plot(str(out), tmp_path / "roof")
    svg = ET.parse(written[0]).getroot()
    circles = svg.findall(".//{http://www.w3.org/2000/svg}circle")
    assert len(circles) > 10


def test_validation_flags_a_wrong_result():
    common = load_bench("common")
    ref = np.linspace(-1, 1, 50, dtype=np.float32).reshape(5, 10)
    assert common.compare(ref + 1e-7, ref)["ok"]
    assert not common.compare(ref + 1e-2, ref)["ok"]
    assert not common.compare(ref[:4], ref)["ok"]
    assert not common.compare(np.full_like(ref, np.nan), ref)["ok"]
    assert not common.compare(np.array([0, 2]), np.array([0, 1]))["ok"]  # argmax: exact


def test_timers_and_table():
    common = load_bench("common")
    calls = []
    timing = common.time_cpu(lambda: calls.append(1), repeats=3, warmup=2)
    assert len(calls) == 5 and timing["repeats"] == 3 and timing["median_ms"] >= 0
    table = common.markdown_table([{"a": "x", "b": 1.5}, {"a": "y", "b": None}],
                                  [("a", "A", "s"), ("b", "B", ".1f")])
    assert table.splitlines() == ["| A | B |", "|---|---|", "| x | 1.5 |", "| y | - |"]
    assert common.sanitize({"v": [math.inf, 1.0]}) == {"v": [None, 1.0]}


def test_interleaved_timer_alternates():
    """Every round calls each function once, in order; warm-up rounds are not in the figures."""
    common = load_bench("common")
    calls = []
    timing = common.time_cpu_interleaved({"a": lambda: calls.append("a"),
                                          "b": lambda: calls.append("b")}, repeats=4, warmup=2)
    assert calls == ["a", "b"] * 6
    assert timing["a"]["repeats"] == timing["b"]["repeats"] == 4
    ratio = timing["ratios"]["b"]
    assert set(timing["ratios"]) == {"b"} and ratio["q1"] <= ratio["median"] <= ratio["q3"]


def test_model_bench_quick(tmp_path):
    bench_models = load_bench("models")
    out = tmp_path / "models.json"
    results = bench_models.run(models=("cae", "ae", "vae"), quick=True, steps=1, warmup=1,
                               torch=False, out=out, verbose=False)
    assert [r["model"] for r in results] == ["cae", "ae", "vae"]
    for r in results:
        assert r["median_ms"] > 0 and r["batch"] == 8 and r["parameters"] > 0
    # the CAE's decoder folds its nearest resizes: the unfolded step is timed beside it;
    # the dense AE and the conv VAE (transposed convs) have nothing to fold
    assert [r["unfolded_ms"] is not None for r in results] == [True, False, False]
    assert math.isclose(results[0]["fold_speedup"], results[0]["unfolded_ms"] / results[0]["median_ms"])
    payload = json.loads(out.read_text())
    assert payload["benchmark"] == "models" and len(payload["results"]) == 3


def test_model_bench_profile_is_of_a_warm_step(monkeypatch):
    """--profile records one step of the parent's own model after its warm-up steps, so the
    profile holds no first-call compile: the profiler opens after warmup steps have run."""
    bench_models = load_bench("models")
    ae = bench_models.common.import_aecore()
    from aecore import optim
    steps_before_profile = []
    real_profile, real_step = ae.profile, optim.Adam.step
    taken = []

    def counting_step(self):
        taken.append(1)
        return real_step(self)

    def recording_profile(*args, **kwargs):
        steps_before_profile.append(len(taken))
        return real_profile(*args, **kwargs)

    monkeypatch.setattr(optim.Adam, "step", counting_step)
    monkeypatch.setattr(ae, "profile", recording_profile)
    results = bench_models.run(models=("ae",), quick=True, steps=1, warmup=2, torch=False,
                               out=False, verbose=False, profile=True)
    rows = results[0]["profile"]
    assert rows and any("Linear" in str(row) for row in rows)
    assert steps_before_profile == [2]       # the parent's two warm-up steps, then the profile


@pytest.mark.parametrize("kind", ["aecore", "torch"])
def test_each_library_steps_in_a_process_of_its_own(kind):
    """bench/models.py times every CPU step inside a child process of its library (no shared
    allocator, no other library's pool spinning); a child that fails says so, never hangs."""
    if kind == "torch":
        pytest.importorskip("torch")
    bench_models = load_bench("models")
    worker = bench_models.StepProcess(kind, "ae", 4)
    try:
        assert worker.process.pid != os.getpid()
        first = worker.block(2, first=True)
        later = worker.block(3)
        assert len(first) == 3 and len(later) == 3 and all(t > 0 for t in first + later)
    finally:
        worker.close()
    assert not worker.process.is_alive() and worker.process.exitcode == 0
    with pytest.raises(RuntimeError, match=f"the {kind} benchmark process exited"):
        bench_models.StepProcess(kind, "no such model", 4)


def test_blocks_alternate_one_worker_at_a_time():
    """time_blocks_alternating: warmup first, then rounds whose order flips; ratios per round."""
    common = load_bench("common")
    calls = []

    class Fake:
        def __init__(self, name, ms):
            self.name, self.ms = name, ms

        def block(self, steps, first=False):
            calls.append((self.name, steps, first))
            return [self.ms] * (steps + first)

    timing = common.time_blocks_alternating({"ours": Fake("ours", 2.0), "torch": Fake("torch", 5.0)},
                                            repeats=7, warmup=1, block=3, pause_s=0)
    assert calls == [("ours", 1, True), ("torch", 1, True), ("ours", 3, False), ("torch", 3, False),
                     ("torch", 3, False), ("ours", 3, False), ("ours", 1, False), ("torch", 1, False)]
    assert timing["ours"]["repeats"] == 7 and timing["ours"]["median_ms"] == 2.0
    assert timing["ratios"]["torch"]["median"] == 2.5


def test_conv_paths_quick(tmp_path):
    """bench/conv_paths.py: both numba conv paths validated against each other, then timed."""
    from aecore.kernels.compile import NUMBA_AVAILABLE
    if not NUMBA_AVAILABLE:
        pytest.skip("needs the numba tier")
    conv_paths = load_bench("conv_paths")
    out = tmp_path / "conv_paths.json"
    payload = conv_paths.run(quick=True, out=out, verbose=False)
    saved = json.loads(out.read_text())
    assert saved["benchmark"] == "conv_paths" and len(saved["results"]) == 4
    for row in payload["results"]:
        assert row["direct_ms"] > 0 and row["winograd_ms"] > 0
        assert math.isclose(row["speedup"], row["direct_ms"] / row["winograd_ms"])
        assert row["default_path"] == "direct"      # outputs below 8x8: the tier's rule


def test_vector_width_quick_compiles_and_checks_the_avx2_code(tmp_path):
    """bench/vector_width.py: a child process compiles the conv loops for AVX2 (16 vector
    registers, whatever this CPU has), checks every op and both weight-gradient blockings
    against the reference there, then times them."""
    from aecore.kernels.compile import NUMBA_AVAILABLE
    if not NUMBA_AVAILABLE or __import__("platform").machine().lower() not in ("x86_64", "amd64"):
        pytest.skip("needs the numba tier on an x86 CPU")
    vector_width = load_bench("vector_width")
    out = tmp_path / "vector_width.json"
    payload = vector_width.run(quick=True, settings=["avx2"], out=out, verbose=False)
    saved = json.loads(out.read_text())
    assert saved["benchmark"] == "vector_width"
    assert saved["machine"]["instruction_sets"]["avx2"] == {
        "cpu_name": "haswell", "cpu_features": "", "llvm_cpu": "haswell"}
    assert len(payload["results"]) == 2 * 4          # 2 layers x (forward, input, weight x 2)
    assert all(error < 2e-4 for error in saved["max_rel_err"]["avx2"].values())
    eight = [row for row in payload["results"] if row["case"].endswith("8 rows")]
    assert len(eight) == 2 and all(row["avx2_4rows_over_8rows"] > 0 for row in eight)
    with pytest.raises(ValueError, match="setting must be one of"):
        vector_width.setting_environment("avx1024")


def test_fold_bench_quick(tmp_path):
    """bench/fold.py: folded and unfolded resize + conv checked against each other, then timed."""
    fold = load_bench("fold")
    out = tmp_path / "fold.json"
    payload = fold.run(quick=True, torch=False, out=out, verbose=False)
    saved = json.loads(out.read_text())
    assert saved["benchmark"] == "fold" and len(saved["results"]) == 1
    row = payload["results"][0]
    assert row["folded_ms"] > 0 and row["two_ops_ms"] > 0 and row["torch_ms"] is None
    ratio = row["fold_speedup_per_round"]
    assert ratio["q1"] <= ratio["median"] <= ratio["q3"]


@pytest.mark.skipif(__import__("shutil").which("mpiexec") is None,
                    reason="needs mpiexec and mpi4py (pip install 'aecore[mpi]')")
def test_distributed_bench_quick(tmp_path):
    """bench/distributed.py runs its three layouts (1 rank x 1 thread, 2 ranks x 1 thread,
    1 rank x 2 threads), each in processes of its own, and reports the allreduce's share."""
    bench_distributed = load_bench("distributed")
    out = tmp_path / "distributed.json"
    payload = bench_distributed.run(models=("ae",), quick=True, out=out, verbose=False)
    layouts = payload["results"]["ae"]
    assert list(layouts) == ["1 rank x 1 thread", "2 ranks x 1 thread", "1 rank x 2 threads"]
    two = layouts["2 ranks x 1 thread"]
    assert two["ms_per_step"] > 0 and 0 < two["allreduce_share"] < 1
    assert layouts["1 rank x 1 thread"]["allreduce_ms_per_step"] is None
    assert json.loads(out.read_text())["settings"]["global_batch"] == 8
