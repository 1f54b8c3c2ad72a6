"""The conv loops compiled for each vector instruction set, side by side: AVX2, and AVX-512.

    python bench/vector_width.py                 # the CAE's and the conv VAE's convs, batch 200
    python bench/vector_width.py --quick         # tiny shapes, 2 rounds: checks the code runs

Numba compiles for the machine it runs on, so one machine can time another's code only by
telling LLVM which CPU to compile for. Each setting runs in a child process of its own, with its
own empty Numba cache (nothing compiled for another setting is loaded):

    host     Numba's default for this machine (on Intel's AVX-512 parts LLVM's tuning keeps to
             256-bit vectors, but uses all 32 vector registers of AVX-512VL)
    avx2     NUMBA_CPU_NAME=haswell with no extra features: AVX2 + FMA, 16 vector registers --
             the code an AVX2-only machine (the AMD EPYC of earlier rounds) gets
    avx512   the host's features less LLVM's "prefer-256-bit": 512-bit vectors (only where the
             host has AVX-512F)

In every child each op is first checked against the reference, then timed. The children take
turns, one round each, the order flipping every round, and wait a moment between rounds, so
only one works at a time and all see the same drift of a shared machine. The weight gradient
is timed with both of its blockings (8 or 4 rows of g per pass, direct.weight_numba's g_rows) in
every round, back to back, so "4 rows / 8 rows" is the median of the per-round ratios within
one process. The times are medians over the rounds. Prints a markdown table and writes bench/results/vector_width.json.
"""

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

try:  # first: bench/__init__.py imports aecore before NumPy
    from . import common
except ImportError:  # run as a script, or loaded by path: make `bench` importable
    sys.path.append(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from bench import common

import numpy as np

# (Cin, Cout, side, stride): the 3x3 'same' convs of the classic CAE and the conv VAE
LAYERS = [(1, 32, 28, 1), (32, 32, 14, 1), (32, 16, 7, 1), (32, 32, 28, 1), (32, 64, 14, 2)]
QUICK_LAYERS = [(3, 9, 6, 1), (9, 4, 5, 2)]
SETTINGS = ("host", "avx2", "avx512")
PAUSE_S = 0.25


def host_features():
    """The host's features as LLVM spells them ('+avx2,+fma,...'), and whether it has AVX-512F."""
    from llvmlite import binding
    features = binding.get_host_cpu_features().flatten()
    return features, "+avx512f" in features.split(",")


def setting_environment(setting):
    """The environment variables that make Numba compile for `setting` (one of SETTINGS)."""
    if setting == "host":
        return {}
    if setting == "avx2":
        return {"NUMBA_CPU_NAME": "haswell", "NUMBA_CPU_FEATURES": ""}
    if setting == "avx512":
        features, has_avx512 = host_features()
        if not has_avx512:
            raise ValueError("the avx512 setting needs a CPU with AVX-512F")
        return {"NUMBA_CPU_FEATURES": features + ",-prefer-256-bit"}
    raise ValueError(f"setting must be one of {SETTINGS}, got {setting!r}")


# ------------------------------------------------------------------------------- the child
def _cases(layers, batch):
    """[(name, flops, run, reference)]: per layer the forward, the input gradient and the weight
    gradient with 8 and with 4 rows of g per pass, all through the direct loops."""
    from aecore.kernels import geometry
    from aecore.kernels.conv2d import direct, reference
    rng = np.random.default_rng(0)
    cases = []
    for c_in, c_out, side, stride in layers:
        x = rng.standard_normal((batch, c_in, side, side)).astype(np.float32)
        w = rng.standard_normal((c_out, c_in, 3, 3)).astype(np.float32)
        geom = geometry.conv2d_geometry(x.shape, w.shape, stride, "same")
        s, pads, out = geom.stride, geom.pads, geom.out_hw
        g = rng.standard_normal((batch, c_out) + tuple(out)).astype(np.float32)
        flops = 2.0 * batch * c_out * c_in * 9 * out[0] * out[1]
        layer = f"{c_in}->{c_out} on {side}x{side}" + (f" stride {stride}" if stride > 1 else "")

        def forward(x=x, w=w, s=s, pads=pads, out=out):
            y = np.empty((x.shape[0], w.shape[0]) + tuple(out), np.float32)
            direct.gather_into(y.reshape(-1), y.shape, x, w, None, s, pads, out)
            return y

        cases += [
            (f"{layer}: forward", flops, forward,
             lambda x=x, w=w, s=s, pads=pads, out=out: reference.gather_ref(x, w, None, s, pads, out)),
            (f"{layer}: input grad", flops,
             lambda g=g, w=w, s=s, pads=pads, hw=x.shape[2:]: direct.scatter_by_phases(
                 g, w, None, s, pads, hw, conv_into=direct.gather_into),
             lambda g=g, w=w, s=s, pads=pads, hw=x.shape[2:]: reference.scatter_ref(g, w, None, s, pads, hw)),
        ]
        for rows in (8, 4):
            cases.append((f"{layer}: weight grad, {rows} rows", flops,
                          lambda g=g, x=x, s=s, pads=pads, rows=rows: direct.weight_numba(
                              g, x, s, pads, (3, 3), g_rows=rows),
                          lambda g=g, x=x, s=s, pads=pads: reference.weight_ref(g, x, s, pads, (3, 3))))
    return cases


def child(layers_json, batch):
    """One setting's process: check every case, then answer each 'round' line on stdin with one
    JSON line of {case: ms}; 'stop' ends it."""
    common.import_aecore()
    from numba.core import config
    layers = [tuple(layer) for layer in json.loads(layers_json)]
    cases = _cases(layers, int(batch))
    errors = {}
    for name, _, run, reference in cases:
        got, expected = run(), reference()
        check = common.compare(got, expected)
        errors[name] = check["max_rel_err"]
        if not check["ok"]:
            raise SystemExit(f"vector_width: {name} disagrees with the reference "
                             f"(max relative error {check['max_rel_err']:.2e})")
    from llvmlite import binding
    print(json.dumps({"ready": True, "max_rel_err": errors, "cpu_name": config.CPU_NAME,
                      "cpu_features": config.CPU_FEATURES,
                      "llvm_cpu": config.CPU_NAME or binding.get_host_cpu_name()}), flush=True)
    for line in sys.stdin:
        if line.strip() != "round":
            break
        times = {}
        for name, _, run, _ in cases:
            started = time.perf_counter()
            run()
            times[name] = (time.perf_counter() - started) * 1e3
        print(json.dumps(times), flush=True)


class SettingProcess:
    """A child process compiling for one setting, its Numba cache in a fresh temporary folder."""

    def __init__(self, setting, layers, batch):
        self.setting = setting
        self.cache = tempfile.mkdtemp(prefix=f"aecore-{setting}-")
        env = dict(os.environ, NUMBA_CACHE_DIR=self.cache, **setting_environment(setting))
        self.process = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "--child", json.dumps(layers), str(batch)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        self.ready = self._receive("its checks")

    def _receive(self, what):
        for line in self.process.stdout:
            if line.startswith("{"):         # (anything else is a message the child printed)
                return json.loads(line)
        code = self.process.wait()
        raise SystemExit(f"vector_width: the {self.setting} process exited (code {code}) "
                         f"before sending {what}")

    def round(self):
        self.process.stdin.write("round\n")
        self.process.stdin.flush()
        return self._receive("a round's times")

    def close(self):
        if self.process.poll() is None:
            self.process.stdin.write("stop\n")
            self.process.stdin.flush()
            self.process.wait(timeout=60)
        shutil.rmtree(self.cache, ignore_errors=True)


# ------------------------------------------------------------------------------------ the run
def run(quick=False, rounds=None, batch=200, out=None, settings=None, verbose=True):
    common.import_aecore()
    from aecore.kernels.compile import NUMBA_AVAILABLE
    if not NUMBA_AVAILABLE:
        raise SystemExit("vector_width compares Numba's code for two instruction sets: install numba")
    layers = QUICK_LAYERS if quick else LAYERS
    batch = 3 if quick else int(batch)
    rounds = rounds or (2 if quick else 9)
    _, has_avx512 = host_features()
    settings = list(settings or [s for s in SETTINGS if s != "avx512" or has_avx512])
    processes = []
    try:
        for setting in settings:               # one at a time: each compiles its kernels
            processes.append(SettingProcess(setting, layers, batch))
        times = {p.setting: {} for p in processes}
        for round_index in range(rounds):
            for process in (processes if round_index % 2 == 0 else processes[::-1]):
                time.sleep(PAUSE_S)
                for name, ms in process.round().items():
                    times[process.setting].setdefault(name, []).append(ms)
    finally:
        for process in processes:
            process.close()
    flops = {name: f for name, f, _, _ in _cases(layers, 1)}
    rows = []
    for name in times[settings[0]]:
        row = {"case": name}
        for setting in settings:
            ms = statistics.median(times[setting][name])
            row[f"{setting}_ms"] = ms
            row[f"{setting}_gflops"] = flops[name] * batch / ms / 1e6
        rows.append(row)
    for row in rows:       # the blocking's effect within each setting: per round, then the median
        if row["case"].endswith("8 rows"):
            four = row["case"].replace("8 rows", "4 rows")
            for setting in settings:
                per_round = [t4 / t8 for t4, t8 in zip(times[setting][four], times[setting][row["case"]])]
                row[f"{setting}_4rows_over_8rows"] = statistics.median(per_round)
    columns = [(f"{s} ms (GFLOP/s)", None) for s in settings]
    header = "| case | " + " | ".join(c for c, _ in columns) + " | " + " | ".join(
        f"{s}: 4 rows / 8 rows" for s in settings) + " |"
    lines = [f"### conv loops per instruction set, batch {batch} float32, median of {rounds} "
             "alternating rounds (4 rows / 8 rows: the median per-round ratio)", "", header, "|" + "---|" * (1 + 2 * len(settings))]
    for row in rows:
        if row["case"].endswith("4 rows"):
            continue
        cells = [f"{row[f'{s}_ms']:.2f} ({row[f'{s}_gflops']:.0f})" for s in settings]
        ratios = [f"{row[f'{s}_4rows_over_8rows']:.2f}" if f"{s}_4rows_over_8rows" in row else ""
                  for s in settings]
        lines.append(f"| {row['case']} | " + " | ".join(cells) + " | " + " | ".join(ratios) + " |")
    machine = common.describe_machine("cpu")
    machine["instruction_sets"] = {p.setting: {key: p.ready[key] for key in
                                               ("cpu_name", "cpu_features", "llvm_cpu")}
                                   for p in processes}
    payload = {"benchmark": "vector_width", "machine": machine,
               "settings": {"quick": quick, "batch": batch, "rounds": rounds,
                            "instruction_sets": settings},
               "max_rel_err": {p.setting: p.ready["max_rel_err"] for p in processes},
               "results": rows, "markdown": "\n".join(lines)}
    common.save_report(payload, out, "vector_width", quick, verbose)
    return payload


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        child(*argv[1:3])
        return
    parser = common.rounds_parser(__doc__.splitlines()[0], "vector_width")
    parser.add_argument("--settings", nargs="+", choices=SETTINGS,
                        help="instruction sets to compile for (default: all this CPU runs)")
    args = parser.parse_args(argv)
    run(quick=args.quick, rounds=args.rounds, batch=args.batch, out=args.out,
        settings=args.settings)


if __name__ == "__main__":
    main()
