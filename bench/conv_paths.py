"""The numba tier's two conv2d paths side by side: direct loops vs Winograd F(2x2, 3x3).

    python bench/conv_paths.py               # the classic CAE's many-channel layers, batch 200
    python bench/conv_paths.py --quick       # tiny shapes, 2 rounds: checks the code runs

For each layer, the forward pass and the input gradient (the two ops that can take Winograd; the
weight gradient always runs the direct loops) are timed with the Winograd path switched off
(`WINOGRAD_MIN_CHANNELS` raised) and on, alternating round by round in one process
so that both paths see the same machine load; the figure is the median over the rounds. Both
results are checked against each other before anything is timed. Prints a markdown table and
writes bench/results/conv_paths.json (conv_paths-quick.json with --quick).
"""

import os
import statistics
import sys
import time
from unittest import mock

import numpy as np

try:
    from . import common
except ImportError:  # run as a script, or loaded by path: make `bench` importable
    sys.path.append(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from bench import common

# (Cin, Cout, side): the 3x3 'same' convs of the classic CAE with >= 8 channels each way
CAE_LAYERS = [(32, 32, 14), (32, 16, 7), (16, 16, 7), (16, 32, 14), (32, 32, 28)]
QUICK_LAYERS = [(8, 8, 6), (9, 8, 5)]


def _ops(conv2d, x, w, grad_y, side):
    pads, same = (1, 1), (side, side)
    return {
        "forward": lambda: conv2d.gather_numba(x, w, None, (1, 1), pads, same),
        "input_grad": lambda: conv2d.scatter_numba(grad_y, w, None, (1, 1), pads, same),
    }


def _path(conv2d, winograd):
    """A context in which the numba tier takes (or avoids) the Winograd path."""
    return mock.patch.object(conv2d, "WINOGRAD_MIN_CHANNELS", 1 if winograd else 10**9)


def run(quick=False, rounds=None, batch=200, out=None, verbose=True):
    common.import_aecore()
    from aecore.kernels import conv2d
    from aecore.kernels.compile import NUMBA_AVAILABLE
    if not NUMBA_AVAILABLE:
        raise SystemExit("conv_paths compares the numba tier's paths: install numba")
    layers = QUICK_LAYERS if quick else CAE_LAYERS
    batch = 3 if quick else batch
    rounds = rounds or (2 if quick else 9)
    rng = np.random.default_rng(0)
    cases = []
    for c_in, c_out, side in layers:
        x = rng.standard_normal((batch, c_in, side, side)).astype(np.float32)
        w = rng.standard_normal((c_out, c_in, 3, 3)).astype(np.float32)
        grad_y = rng.standard_normal((batch, c_out, side, side)).astype(np.float32)
        ops = _ops(conv2d, x, w, grad_y, side)
        for name, op in ops.items():                     # validate (and compile) both paths
            with _path(conv2d, False):
                direct = op()
            with _path(conv2d, True):
                winograd = op()
            scale = max(float(np.abs(direct).max()), 1.0)
            if float(np.abs(direct - winograd).max()) > 1e-4 * scale:
                raise SystemExit(f"paths disagree on {name} for {c_in}->{c_out} on {side}x{side}")
        cases.append(((c_in, c_out, side), ops))
    times = {}
    for _ in range(rounds):
        for winograd in (False, True):
            with _path(conv2d, winograd):
                for layer, ops in cases:
                    for name, op in ops.items():
                        start = time.perf_counter()
                        op()
                        times.setdefault((layer, name, winograd), []).append(time.perf_counter() - start)
    rows = []
    for layer, ops in cases:
        for name in ops:
            direct_ms = statistics.median(times[(layer, name, False)]) * 1e3
            winograd_ms = statistics.median(times[(layer, name, True)]) * 1e3
            rows.append({"layer": "{}->{} on {}x{}".format(layer[0], layer[1], layer[2], layer[2]),
                         "op": name, "direct_ms": direct_ms, "winograd_ms": winograd_ms,
                         "speedup": direct_ms / winograd_ms,
                         "default_path": "winograd" if conv2d.uses_winograd(
                             (layer[1], layer[0], 3, 3), (1, 1), out_hw=(layer[2], layer[2]))
                         else "direct"})
    lines = ["### conv2d numba paths, batch %d float32, median of %d alternating rounds" % (batch, rounds),
             "", "| layer | op | direct ms | Winograd ms | direct / Winograd | taken by default |",
             "|---|---|---|---|---|---|"]
    lines += ["| {layer} | {op} | {direct_ms:.2f} | {winograd_ms:.2f} | {speedup:.2f} | {default_path} |"
              .format(**row) for row in rows]
    payload = {"benchmark": "conv_paths", "machine": common.describe_machine("cpu"),
               "settings": {"quick": quick, "batch": batch, "rounds": rounds},
               "results": rows, "markdown": "\n".join(lines)}
    common.save_report(payload, out, "conv_paths", quick, verbose)
    return payload


def main(argv=None):
    args = common.rounds_parser(__doc__.splitlines()[0], "conv_paths").parse_args(argv)
    run(quick=args.quick, rounds=args.rounds, batch=args.batch, out=args.out)


if __name__ == "__main__":
    main()
