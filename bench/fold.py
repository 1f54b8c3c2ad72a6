"""Nearest upsampling folded into the next conv, side by side with the two ops (and PyTorch).

    python bench/fold.py               # the classic CAE's two folding decoder layers, batch 200
    python bench/fold.py --quick       # tiny shapes, 2 rounds: checks the code runs

The CAE's decoder resizes 7 -> 14 and 14 -> 28 by nearest upsampling, each followed by a 3x3
'same' conv. F.upsample_conv2d runs such a pair as one transposed conv of the small image with
a folded 4x4 kernel (geometry.nearest_fold_geometry); with fold=False it runs interpolate then
conv2d (Winograd for these shapes). For each layer, one graph step -- the forward, then the
backward for the input, the weight and the bias -- is timed three ways, alternating round by
round in one process: folded, two ops, and PyTorch's F.interpolate + F.conv2d (when installed,
same threads). The three results are checked against each other first. Median ms, and the
per-round ratio's quartiles. Writes bench/results/fold.json (fold-quick.json with --quick).
"""

import os
import sys

import numpy as np

try:
    from . import common
except ImportError:  # run as a script, or loaded by path: make `bench` importable
    sys.path.append(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from bench import common

# (Cin, Cout, small side): upsampled x2, then a 3x3 'same' conv
CAE_LAYERS = [(16, 32, 7), (32, 32, 14)]
QUICK_LAYERS = [(3, 4, 3)]


def _ours(ae, F, x_host, w_host, b_host, fold):
    """One step of resize + conv on our graph: (output array, [grad x, grad w, grad b])."""
    def step():
        x, w, b = (ae.tensor(a, requires_grad=True) for a in (x_host, w_host, b_host))
        y = F.upsample_conv2d(x, w, b, scale_factor=2, padding="same", fold=fold)
        y.backward(ae.tensor(np.ones(y.shape, np.float32)))
        return y.data, [x.grad, w.grad, b.grad]
    return step


def _theirs(torch, x_host, w_host, b_host):
    def step():
        x, w, b = (torch.from_numpy(a).requires_grad_() for a in (x_host, w_host, b_host))
        up = torch.nn.functional.interpolate(x, scale_factor=2, mode="nearest")
        y = torch.nn.functional.conv2d(up, w, b, padding=1)
        y.backward(torch.ones_like(y))
        return y.detach().numpy(), [x.grad.numpy(), w.grad.numpy(), b.grad.numpy()]
    return step


def _check(name, results):
    """Every pair of (output, grads) agrees to float32 rounding (relative to the largest value)."""
    reference = results[0]
    for other in results[1:]:
        for a, b in zip([reference[0]] + reference[1], [other[0]] + other[1]):
            scale = max(float(np.abs(a).max()), 1.0)
            if float(np.abs(a - b).max()) > 1e-4 * scale:
                raise SystemExit(f"fold benchmark: results disagree on {name}")


def run(quick=False, rounds=None, batch=200, torch=True, out=None, verbose=True):
    ae = common.import_aecore()
    import aecore.functional as F
    quick = common.quick_requested(quick)
    layers = QUICK_LAYERS if quick else CAE_LAYERS
    batch = 3 if quick else batch
    rounds = rounds or (2 if quick else 9)
    torch_module = common.import_torch() if torch else None
    rng = np.random.default_rng(0)
    rows = []
    for c_in, c_out, side in layers:
        x = rng.standard_normal((batch, c_in, side, side)).astype(np.float32)
        w = (rng.standard_normal((c_out, c_in, 3, 3)) * 0.1).astype(np.float32)
        b = rng.standard_normal(c_out).astype(np.float32)
        functions = {"folded": _ours(ae, F, x, w, b, True), "two_ops": _ours(ae, F, x, w, b, False)}
        if torch_module is not None:
            functions["torch"] = _theirs(torch_module, x, w, b)
        name = f"{c_in}->{c_out}, {side}x{side} -> {2 * side}x{2 * side}"
        _check(name, [fn() for fn in functions.values()])      # also compiles every kernel
        timing = common.time_cpu_interleaved(functions, rounds, warmup=1)
        row = dict(layer=name, batch=batch, folded_ms=timing["folded"]["median_ms"],
                   two_ops_ms=timing["two_ops"]["median_ms"],
                   fold_speedup_per_round=timing["ratios"]["two_ops"],
                   torch_ms=None, torch_per_round=None)
        if torch_module is not None:
            row.update(torch_ms=timing["torch"]["median_ms"], torch_per_round=timing["ratios"]["torch"])
        rows.append(row)

    def quartiles(ratio):
        return "-" if ratio is None else "{q1:.2f} / {median:.2f} / {q3:.2f}".format(**ratio)

    lines = [f"### nearest x2 + 3x3 conv, forward + backward, batch {batch} float32, "
             f"median of {rounds} alternating rounds", "",
             "| layer | folded ms | two ops ms | two ops / folded per round (quartiles) "
             "| torch ms | torch / folded per round (quartiles) |", "|---|---|---|---|---|---|"]
    lines += [f"| {r['layer']} | {r['folded_ms']:.2f} | {r['two_ops_ms']:.2f} | "
              f"{quartiles(r['fold_speedup_per_round'])} | {common.fmt(r['torch_ms'])} | "
              f"{quartiles(r['torch_per_round'])} |" for r in rows]
    payload = common.sanitize({"benchmark": "fold",
                               "machine": common.describe_machine("cpu", torch=torch_module),
                               "settings": {"quick": quick, "batch": batch, "rounds": rounds},
                               "results": rows, "markdown": "\n".join(lines)})
    common.save_report(payload, out, "fold", quick, verbose)
    return payload


def main(argv=None):
    parser = common.rounds_parser(__doc__.splitlines()[0], "fold")
    parser.add_argument("--no-torch", action="store_true")
    args = parser.parse_args(argv)
    run(quick=args.quick, rounds=args.rounds, batch=args.batch, torch=not args.no_torch,
        out=args.out)


if __name__ == "__main__":
    main()
