"""Kernel benchmark: every op x tier, forward and backward, at the classic CAE's shapes.

    python bench/kernels.py                       # shapes "cae", every available tier
    python bench/kernels.py --shapes all          # + the large conv (64x32x112x112 -> 64)
    python bench/kernels.py --quick               # tiny shapes, 2 repeats: checks the code runs
    python bench/kernels.py --ops conv2d_forward max_pool2d_backward --tiers numba
    python bench/kernels.py --out bench/results/my_machine.json

For each case (a layer of the classic CAE: batch 200, 28x28, 1->32->32->16 channels, 2x2 'same'
pooling 28->14->7->4, nearest resizes to 7, 14, 28, its ReLUs, a bilinear x2, a stride-2 3x3
transposed conv 32->32 on 7x7 and 2x2 average pools on 28x28 and 7x7; or the large conv) and
each kernel op of its family:
 1. validate: run every tier on the same inputs and compare with the NumPy reference tier
    (PyTorch's result is compared too when it is installed);
 2. time: warm-up excluded (the JIT compile shows up as first_call_ms), median of the repeats;
 3. rates: GFLOP/s and GB/s from the FLOPs and bytes counted by aecore.inspect.costs, and their
    share of this machine's measured peak (aecore.inspect.peak: SGEMM GFLOP/s, copy GB/s);
 4. PyTorch side by side, same op, same inputs, same thread count (the aten op that its autograd
    calls for each backward output), reported as speedup_vs_torch = torch_ms / our_ms.
On a machine with a GPU (CuPy sees one) the cuda tier runs on CuPy arrays, timed with CUDA
events and an L2 flush between repeats, beside PyTorch on cuda (cuDNN) when that is available.
Results: bench/results/kernels[-quick].json (machine described) and markdown tables on stdout.
"""

import argparse
import os
import sys

try:  # first: bench/__init__.py imports aecore before NumPy
    from . import common
except ImportError:  # run as a script, or loaded by path: make `bench` importable
    sys.path.append(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from bench import common

import numpy as np


# ----------------------------------------------------------------------------------------- cases
def family_ops():
    """family -> its kernel ops, in the order they run in training (forward first), from the
    ops' own descriptions (aecore.kernels.op)."""
    common.import_aecore()
    from aecore.kernels import op as described
    return {family.name: family.names for family in described.families()}


def _conv(name, n, c_in, c_out, hw, k=3, stride=1, padding="same", group="cae"):
    return dict(name=name, family="conv2d", group=group, x=(n, c_in, hw, hw),
                w=(c_out, c_in, k, k), stride=stride, padding=padding)


def cases(shapes="cae", quick=False):
    """The benchmark cases. quick: batch 2 and a small 'large' conv (same geometry otherwise)."""
    if shapes not in ("cae", "large", "all"):
        raise ValueError(f"shapes must be 'cae', 'large' or 'all', got {shapes!r}")
    n = 2 if quick else 200
    cae = [
        # encoder: conv 32, pool, conv 32, pool, conv 16, pool ('same' everywhere, as Keras)
        _conv("conv 1->32 28x28", n, 1, 32, 28),
        _conv("conv 32->32 14x14", n, 32, 32, 14),
        _conv("conv 32->16 7x7", n, 32, 16, 7),
        dict(name="maxpool 2x2 32ch 28x28", family="max_pool2d", group="cae",
             x=(n, 32, 28, 28), kernel_size=2, stride=2, padding="same"),
        dict(name="maxpool 2x2 32ch 14x14", family="max_pool2d", group="cae",
             x=(n, 32, 14, 14), kernel_size=2, stride=2, padding="same"),
        dict(name="maxpool 2x2 16ch 7x7->4", family="max_pool2d", group="cae",
             x=(n, 16, 7, 7), kernel_size=2, stride=2, padding="same"),
        # decoder: resize 4->7, conv 16, resize 14, conv 32, resize 28, conv 32, conv 1
        dict(name="nearest 16ch 4x4->7x7", family="upsample_nearest", group="cae",
             x=(n, 16, 4, 4), size=(7, 7)),
        _conv("conv 16->16 7x7", n, 16, 16, 7),
        dict(name="nearest x2 16ch 7x7", family="upsample_nearest", group="cae",
             x=(n, 16, 7, 7), size=(14, 14)),
        _conv("conv 16->32 14x14", n, 16, 32, 14),
        dict(name="nearest x2 32ch 14x14", family="upsample_nearest", group="cae",
             x=(n, 32, 14, 14), size=(28, 28)),
        _conv("conv 32->32 28x28", n, 32, 32, 28),
        _conv("conv 32->1 28x28", n, 32, 1, 28),
        # the ReLU after each conv (the largest and a middle one)
        dict(name="relu 32ch 28x28", family="relu", group="cae", x=(n, 32, 28, 28)),
        dict(name="relu 32ch 14x14", family="relu", group="cae", x=(n, 32, 14, 14)),
        # the variants: bilinear x2, and the transposed conv that would replace resize + conv
        dict(name="bilinear x2 32ch 14x14", family="upsample_bilinear", group="cae",
             x=(n, 32, 14, 14), size=(28, 28), align_corners=False),
        dict(name="convT 32->32 s2 7x7", family="conv_transpose2d", group="cae",
             x=(n, 32, 7, 7), w=(32, 32, 3, 3), stride=2, padding=1, output_padding=1),
        # average pooling in place of the max pools (Keras' AveragePooling2D 'same')
        dict(name="avgpool 2x2 32ch 28x28", family="avg_pool2d", group="cae",
             x=(n, 32, 28, 28), kernel_size=2, stride=2, padding="same", count_include_pad=False),
        dict(name="avgpool 2x2 16ch 7x7->4", family="avg_pool2d", group="cae",
             x=(n, 16, 7, 7), kernel_size=2, stride=2, padding="same", count_include_pad=False),
    ]
    if quick:
        large = [_conv("conv 32->64 112x112 (large)", 2, 4, 8, 16, padding=1, group="large")]
    else:
        large = [_conv("conv 32->64 112x112 (large)", 64, 32, 64, 112, padding=1, group="large")]
    return {"cae": cae, "large": large, "all": cae + large}[shapes]


def make_inputs(case, dtype=np.float32, seed=0):
    """(geom, {op: args}) on the host for every op of the case's family, built by the family's
    own description from the case's parameters (x, w, stride, padding, ...)."""
    from aecore.kernels import op as described
    family = next(f for f in described.families() if f.name == case["family"])
    return family.inputs(case, np.dtype(dtype), np.random.default_rng(seed))


def _on_device(args, to):
    """args with every NumPy array passed through `to` (the geometry and None stay)."""
    return tuple(to(a) if isinstance(a, np.ndarray) else a for a in args)


# ----------------------------------------------------------------------------------------- tiers
def available_tiers(op, requested=None):
    """The registered tiers of `op` that can run here.

    cuda runs when CuPy sees a GPU; under the Numba simulator (NUMBA_ENABLE_CUDASIM=1) only when
    asked for explicitly (it interprets every thread in Python: slow, only for tiny shapes).
    """
    from aecore import kernels
    from aecore.backend import gpu_available
    simulator = os.environ.get("NUMBA_ENABLE_CUDASIM", "0") == "1"
    tiers = []
    for tier in kernels.tiers_of(op):
        if tier == "cuda" and not (gpu_available() or (simulator and requested and "cuda" in requested)):
            continue
        if requested and tier not in requested:
            continue
        tiers.append(tier)
    return tiers


def _cuda_real():
    from aecore.backend import gpu_available
    return gpu_available()


# ----------------------------------------------------------------------------------------- torch
def _torch_op(torch, op, args, device):
    """A no-argument callable running PyTorch's counterpart of `op` (the family's description
    says which: the aten functions its autograd calls for each backward output), or None."""
    from aecore.kernels import op as described
    counterpart = described.family_of(op).torch
    if counterpart is None:
        return None
    to_torch = lambda a: torch.from_numpy(np.ascontiguousarray(a)).to(device)  # noqa: E731
    return counterpart(torch, op, _on_device(args, to_torch))


def _first(out):
    return out[0] if isinstance(out, (tuple, list)) else out


# ------------------------------------------------------------------------------------------- run
def run(ops=None, tiers=None, shapes="cae", repeats=None, warmup=None, torch=True, out=None,
        quick=False, dtype="float32", verbose=True, refresh_peak=None):
    """Benchmark the kernel ops; return a list of result dicts (one per case x op x tier).

    ops: op names (e.g. "conv2d_forward") or families ("conv2d"); default every registered op.
    tiers: subset of ("ref", "numba", "cuda"); default every tier that can run here.
    shapes: "cae" (the classic CAE's layers), "large" (64x32x112x112 -> 64) or "all".
    repeats / warmup: default 20 / 3 (quick: 2 / 1). torch: compare with PyTorch when installed.
    out: JSON path (default bench/results/kernels.json, or kernels-quick.json in quick mode);
    False writes nothing. quick (or AECORE_BENCH_QUICK=1): batch 2, tiny large conv.
    refresh_peak: measure the machine's peak again now (default: yes, except in quick mode).
    """
    common.import_aecore()
    from aecore import kernels
    from aecore.inspect import costs

    quick = common.quick_requested(quick)
    repeats = int(repeats if repeats is not None else (2 if quick else 20))
    warmup = int(warmup if warmup is not None else (1 if quick else 3))
    dtype = np.dtype(dtype)
    selected = _select_ops(ops, kernels.ops())
    torch_module = common.import_torch() if torch else None
    on_gpu = _cuda_real() and (tiers is None or "cuda" in tiers)
    refresh = (not quick) if refresh_peak is None else bool(refresh_peak)
    peak = {"cpu": common.machine_peak("cpu", refresh)}
    if on_gpu:
        peak["cuda"] = common.machine_peak("cuda", refresh)

    results = []
    torch_times = {}  # (case, op, device) -> timing dict; shared by the tiers of one device
    ops_of = family_ops()
    for case in cases(shapes, quick):
        case_ops = [op for op in ops_of[case["family"]] if op in selected]
        if not case_ops:
            continue
        geom, host = make_inputs(case, dtype)
        impls = {op: kernels.implementations(op) for op in case_ops}
        for op in case_ops:
            arguments = host[op]
            reference = impls[op]["ref"](*arguments)
            flops, nbytes = costs.kernel_cost(op, geom,
                                              [a.shape for a in arguments if hasattr(a, "shape")],
                                              dtype.itemsize)
            for tier in available_tiers(op, tiers):
                device = "cuda" if tier == "cuda" and _cuda_real() else "cpu"
                args = arguments
                if device == "cuda":
                    import cupy
                    args = _on_device(arguments, cupy.asarray)
                fn_impl = impls[op][tier]
                check = common.compare_outputs(fn_impl(*args), reference)
                if device == "cuda":
                    timing = common.time_gpu(lambda: fn_impl(*args), repeats, warmup, "cupy")
                else:
                    timing = common.time_cpu(lambda: fn_impl(*args), repeats, warmup)
                record = dict(case=case["name"], group=case["group"], family=case["family"],
                              op=op, tier=tier, device=device, dtype=dtype.name,
                              input_shape=list(case["x"]), geom=_geom_record(geom),
                              valid=check["ok"], max_abs_err=check["max_abs_err"],
                              max_rel_err=check["max_rel_err"], **timing)
                common.add_rates(record, flops, nbytes, peak[device])
                _add_torch(record, torch_module, torch_times, case, op, arguments, reference,
                           device, repeats, warmup)
                results.append(common.sanitize(record))
                if verbose:
                    print(_progress_line(record), flush=True)

    payload = report(results, peak, torch_module, quick=quick, shapes=shapes, repeats=repeats,
                     warmup=warmup)
    common.save_report(payload, out, "kernels", quick, verbose)
    return results


def _geom_record(geom):
    """The geometry as JSON-ready fields (None for the ops that take none)."""
    if geom is None:
        return None
    return geom.as_dict()


def _select_ops(ops, registered):
    if not ops:
        return list(registered)
    families = family_ops()
    selected = []
    for name in ops:
        if name in families:
            selected.extend(op for op in families[name] if op in registered)
        elif name in registered:
            selected.append(name)
        else:
            raise ValueError(f"unknown op {name!r}; registered ops: {', '.join(registered)}; "
                             f"families: {', '.join(families)}")
    return selected


def _add_torch(record, torch, torch_times, case, op, args, reference, device, repeats, warmup):
    record.update(torch_ms=None, speedup_vs_torch=None, torch_max_abs_err=None)
    if torch is None or (device == "cuda" and not common.torch_cuda_available(torch)):
        return
    key = (case["name"], op, device)
    if key not in torch_times:
        fn = _torch_op(torch, op, args, device)
        if fn is None:
            torch_times[key] = None
        else:
            with torch.no_grad():
                check = common.compare(_first(fn()), _first(reference))
                if device == "cuda":
                    timing = common.time_gpu(fn, repeats, warmup, "torch")
                else:
                    timing = common.time_cpu(fn, repeats, warmup)
            torch_times[key] = dict(timing, max_abs_err=check["max_abs_err"], ok=check["ok"])
    timing = torch_times[key]
    if timing is None:
        return
    record["torch_ms"] = timing["median_ms"]
    record["torch_max_abs_err"] = timing["max_abs_err"]
    record["torch_agrees"] = timing["ok"]
    record["speedup_vs_torch"] = timing["median_ms"] / record["median_ms"] if record["median_ms"] else None


def _progress_line(r):
    torch_part = ""
    if r.get("torch_ms") is not None:
        torch_part = f"  torch {r['torch_ms']:.3f} ms (x{r['speedup_vs_torch']:.2f})"
    flag = "" if r["valid"] else "  INVALID (max abs err %.3g)" % r["max_abs_err"]
    return (f"{r['case']:<28} {r['op']:<34} {r['tier']:<5} {r['median_ms']:9.3f} ms"
            f"{torch_part}{flag}")


# ---------------------------------------------------------------------------------------- report
def summarize(results):
    """Per case and tier: forward ms and forward+backward ms (all backward outputs), ours vs
    PyTorch's — the figures issue 3 quotes for PyTorch."""
    rows = {}
    for r in results:
        key = (r["case"], r["tier"], r["device"])
        row = rows.setdefault(key, dict(case=r["case"], tier=r["tier"], device=r["device"],
                                        forward_ms=0.0, total_ms=0.0, torch_forward_ms=0.0,
                                        torch_total_ms=0.0, torch_complete=True, valid=True))
        forward = r["op"].endswith("_forward")
        row["total_ms"] += r["median_ms"]
        if forward:
            row["forward_ms"] += r["median_ms"]
        row["valid"] = row["valid"] and r["valid"]
        if r.get("torch_ms") is None:
            row["torch_complete"] = False
        else:
            row["torch_total_ms"] += r["torch_ms"]
            if forward:
                row["torch_forward_ms"] += r["torch_ms"]
    out = []
    for row in rows.values():
        if not row.pop("torch_complete"):
            row["torch_forward_ms"] = row["torch_total_ms"] = None
        row["speedup_forward"] = (row["torch_forward_ms"] / row["forward_ms"]
                                  if row["torch_forward_ms"] and row["forward_ms"] else None)
        row["speedup_total"] = (row["torch_total_ms"] / row["total_ms"]
                                if row["torch_total_ms"] and row["total_ms"] else None)
        out.append(row)
    return out


OP_COLUMNS = [
    ("case", "case", "s"), ("op", "op", "s"), ("tier", "tier", "s"),
    ("median_ms", "ms", ".3f"), ("gflops", "GFLOP/s", ".1f"), ("gbps", "GB/s", ".1f"),
    ("pct_roofline", "% roofline", ".1f"), ("torch_ms", "torch ms", ".3f"),
    ("speedup_vs_torch", "x torch", ".2f"),
    ("valid", "valid", lambda r: "yes" if r["valid"] else f"NO ({r['max_abs_err']:.2g})"),
]
SUMMARY_COLUMNS = [
    ("case", "case", "s"), ("tier", "tier", "s"),
    ("forward_ms", "fwd ms", ".2f"), ("total_ms", "fwd+bwd ms", ".2f"),
    ("torch_forward_ms", "torch fwd", ".2f"), ("torch_total_ms", "torch fwd+bwd", ".2f"),
    ("speedup_forward", "x torch fwd", ".2f"), ("speedup_total", "x torch fwd+bwd", ".2f"),
]


def report(results, peak, torch=None, **settings):
    """The JSON payload: machine, settings, per-op results, per-case summary, markdown."""
    devices = sorted({r["device"] for r in results}) or ["cpu"]
    machine = common.describe_machine(devices[-1], torch=torch, peak=peak.get(devices[-1]))
    machine["peaks"] = peak
    summary = summarize(results)
    markdown = ("### kernels: per op (x torch = torch ms / our ms; > 1: we are faster)\n\n"
                + common.markdown_table(results, OP_COLUMNS)
                + "\n\n### kernels: per layer, forward and forward + backward\n\n"
                + common.markdown_table(summary, SUMMARY_COLUMNS))
    return common.sanitize(dict(benchmark="kernels", machine=machine, settings=settings,
                                results=results, summary=summary, markdown=markdown))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny shapes, 2 repeats (a smoke test)")
    parser.add_argument("--ops", nargs="+", help="op names or families (default: all)")
    parser.add_argument("--tiers", nargs="+", choices=("ref", "numba", "cuda"))
    parser.add_argument("--shapes", default="cae", choices=("cae", "large", "all"))
    parser.add_argument("--repeats", type=int)
    parser.add_argument("--warmup", type=int)
    parser.add_argument("--dtype", default="float32", choices=("float32", "float64"))
    parser.add_argument("--no-torch", action="store_true", help="skip the PyTorch comparison")
    parser.add_argument("--out", help="JSON file (default bench/results/kernels.json)")
    args = parser.parse_args(argv)
    run(ops=args.ops, tiers=args.tiers, shapes=args.shapes, repeats=args.repeats,
        warmup=args.warmup, torch=not args.no_torch, out=args.out, quick=args.quick,
        dtype=args.dtype)
    return 0


if __name__ == "__main__":
    sys.exit(main())
