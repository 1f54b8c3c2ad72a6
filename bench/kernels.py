"""Kernel benchmark: every op x tier, forward and backward, at the classic CAE's shapes.

    python bench/kernels.py                       # shapes "cae", every available tier
    python bench/kernels.py --shapes all          # + the large conv (64x32x112x112 -> 64)
    python bench/kernels.py --quick               # tiny shapes, 2 repeats: checks the code runs
    python bench/kernels.py --ops conv2d_forward max_pool2d_backward --tiers numba
    python bench/kernels.py --out bench/results/my_machine.json

For each case (a layer of the classic CAE: batch 200, 28x28, 1->32->32->16 channels, 2x2 'same'
pooling 28->14->7->4, nearest resizes to 7, 14, 28, its ReLUs, a bilinear x2 and a stride-2 3x3
transposed conv 32->32 on 7x7; or the large conv) and each kernel op of its family:
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

import numpy as np

try:
    from . import common
except ImportError:  # run as a script, or loaded by path: make `bench` importable
    sys.path.append(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from bench import common

# ----------------------------------------------------------------------------------------- cases
# family -> its kernel ops, in the order they run in training (forward first)
FAMILY_OPS = {
    "conv2d": ("conv2d_forward", "conv2d_backward_input", "conv2d_backward_weight",
               "conv2d_backward_bias"),
    "conv_transpose2d": ("conv_transpose2d_forward", "conv_transpose2d_backward_input",
                         "conv_transpose2d_backward_weight"),
    "max_pool2d": ("max_pool2d_forward", "max_pool2d_backward"),
    "upsample_nearest": ("upsample_nearest_forward", "upsample_nearest_backward"),
    "upsample_bilinear": ("upsample_bilinear_forward", "upsample_bilinear_backward"),
    "relu": ("relu_forward", "relu_backward"),
}
OP_FAMILY = {op: family for family, ops in FAMILY_OPS.items() for op in ops}


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
    ]
    if quick:
        large = [_conv("conv 32->64 112x112 (large)", 2, 4, 8, 16, padding=1, group="large")]
    else:
        large = [_conv("conv 32->64 112x112 (large)", 64, 32, 64, 112, padding=1, group="large")]
    return {"cae": cae, "large": large, "all": cae + large}[shapes]


def _geometry(case):
    from aecore.kernels import geometry
    family = case["family"]
    if family == "relu":
        return {}           # elementwise: no geometry
    if family == "conv2d":
        return geometry.conv2d_geometry(case["x"], case["w"], case["stride"], case["padding"],
                                        b_shape=(case["w"][0],))
    if family == "conv_transpose2d":
        return geometry.conv_transpose2d_geometry(case["x"], case["w"], case["stride"],
                                                  case["padding"], case.get("output_padding", 0),
                                                  b_shape=(case["w"][1],))
    if family == "max_pool2d":
        return geometry.max_pool2d_geometry(case["x"], case["kernel_size"], case.get("stride"),
                                            case.get("padding", 0), case.get("ceil_mode", False))
    mode = "nearest" if family == "upsample_nearest" else "bilinear"
    return geometry.interpolate_geometry(case["x"], size=case.get("size"),
                                         scale_factor=case.get("scale_factor"), mode=mode,
                                         align_corners=case.get("align_corners"))


def _output_shape(case, geom):
    n = case["x"][0]
    family = case["family"]
    if family == "conv2d":
        return (n, case["w"][0], geom["out_h"], geom["out_w"])
    if family == "conv_transpose2d":
        return (n, case["w"][1], geom["out_h"], geom["out_w"])
    if family == "relu":
        return tuple(case["x"])
    return (n, case["x"][1], geom["out_h"], geom["out_w"])


def make_inputs(case, dtype=np.float32, seed=0):
    """Host (NumPy) inputs for every op of the case's family, and its geometry."""
    rng = np.random.default_rng(seed)
    geom = _geometry(case)
    data = {"geom": geom, "x": rng.standard_normal(case["x"]).astype(dtype)}
    if "w" in case:
        fan_in = int(np.prod(case["w"][1:])) if case["family"] == "conv2d" else \
            case["w"][0] * case["w"][2] * case["w"][3]
        bound = 1.0 / np.sqrt(fan_in)
        data["w"] = rng.uniform(-bound, bound, case["w"]).astype(dtype)
        c_out = case["w"][0] if case["family"] == "conv2d" else case["w"][1]
        data["b"] = rng.uniform(-bound, bound, (c_out,)).astype(dtype)
    data["gy"] = rng.standard_normal(_output_shape(case, geom)).astype(dtype)
    return data


def op_arguments(op, data):
    """The positional arguments of one registered op (every tier shares one signature)."""
    g = data["geom"]
    if op.endswith("_forward") and OP_FAMILY[op] in ("conv2d", "conv_transpose2d"):
        return (data["x"], data["w"], data["b"], g)
    if op.endswith("_backward_input"):
        return (data["gy"], data["w"], g)
    if op.endswith("_backward_weight"):
        return (data["gy"], data["x"], g)
    if op == "max_pool2d_backward":
        return (data["gy"], data["argmax"], g)
    if op == "conv2d_backward_bias":
        return (data["gy"],)
    if op == "relu_forward":
        return (data["x"],)
    if op == "relu_backward":
        return (data["gy"], data["x"])
    if op.endswith("_forward"):
        return (data["x"], g)
    return (data["gy"], g)


def _to_device(data, xp):
    return {k: (xp.asarray(v) if isinstance(v, np.ndarray) else v) for k, v in data.items()}


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
def _torch_op(torch, op, case, data, device):
    """A no-argument callable running the PyTorch equivalent of `op` on `data`, or None.

    Backward ops call the aten functions that PyTorch's autograd itself calls for each output
    (convolution_backward with an output mask, max_pool2d_with_indices_backward, upsample_*
    _backward), so the comparison is op for op.
    """
    aten = torch.ops.aten
    F = torch.nn.functional
    g = data["geom"]
    t = {k: torch.from_numpy(np.ascontiguousarray(v)).to(device)
         for k, v in data.items() if isinstance(v, np.ndarray) and k != "argmax"}
    family = OP_FAMILY[op]
    if family == "relu":
        if op == "relu_forward":
            return lambda: torch.relu(t["x"])
        return lambda: aten.threshold_backward(t["gy"], t["x"], 0)    # what relu's autograd calls
    if family in ("conv2d", "conv_transpose2d"):
        stride = [g["stride_h"], g["stride_w"]]
        if family == "conv2d":
            if g["pad_top"] != g["pad_bottom"] or g["pad_left"] != g["pad_right"]:
                return None  # asymmetric 'same' padding: no single PyTorch call
            padding, output_padding, transposed = [g["pad_top"], g["pad_left"]], [0, 0], False
        else:
            output_padding = [g["pad_top"] - g["pad_bottom"], g["pad_left"] - g["pad_right"]]
            if not all(0 <= p < s for p, s in zip(output_padding, stride)):
                return None
            padding, transposed = [g["pad_top"], g["pad_left"]], True
        x, w, b, gy = t["x"], t["w"], t["b"], t["gy"]
        if op.endswith("_forward"):
            if transposed:
                return lambda: F.conv_transpose2d(x, w, b, stride, padding, output_padding)
            return lambda: F.conv2d(x, w, b, stride, padding)
        index = 0 if op.endswith("_backward_input") else 2 if op.endswith("_backward_bias") else 1
        mask = [i == index for i in range(3)]
        return lambda: aten.convolution_backward(gy, x, w, None, stride, padding, [1, 1],
                                                 transposed, output_padding, 1, mask)[index]
    if family == "max_pool2d":
        kernel, stride = [g["k_h"], g["k_w"]], [g["stride_h"], g["stride_w"]]
        padding = [g["pad_top"], g["pad_left"]]
        if max(padding) * 2 > min(kernel):
            return None
        ceil_mode = None
        for ceil in (False, True):  # TF 'same' with the padding at the end == ceil mode
            probe = aten.max_pool2d_with_indices(t["x"][:1, :1], kernel, stride, padding, [1, 1], ceil)[0]
            if tuple(probe.shape[-2:]) == (g["out_h"], g["out_w"]):
                ceil_mode = ceil
                break
        if ceil_mode is None:
            return None
        x, gy = t["x"], t["gy"]
        if op == "max_pool2d_forward":
            return lambda: aten.max_pool2d_with_indices(x, kernel, stride, padding, [1, 1], ceil_mode)
        indices = aten.max_pool2d_with_indices(x, kernel, stride, padding, [1, 1], ceil_mode)[1]
        return lambda: aten.max_pool2d_with_indices_backward(gy, x, kernel, stride, padding, [1, 1],
                                                             ceil_mode, indices)
    size = [g["out_h"], g["out_w"]]
    in_size = list(data["x"].shape)
    x, gy = t["x"], t["gy"]
    if family == "upsample_nearest":
        if op.endswith("_forward"):
            return lambda: F.interpolate(x, size=size, mode="nearest")
        return lambda: aten.upsample_nearest2d_backward(gy, size, in_size, None, None)
    align = bool(g["align_corners"])
    if op.endswith("_forward"):
        return lambda: F.interpolate(x, size=size, mode="bilinear", align_corners=align)
    return lambda: aten.upsample_bilinear2d_backward(gy, size, in_size, align, None, None)


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
    for case in cases(shapes, quick):
        case_ops = [op for op in FAMILY_OPS[case["family"]] if op in selected]
        if not case_ops:
            continue
        host = make_inputs(case, dtype)
        ref = kernels.implementations("max_pool2d_forward")["ref"] if case["family"] == "max_pool2d" else None
        if ref is not None:  # the backward of max-pool needs the forward's argmax
            host["argmax"] = common.to_numpy(ref(host["x"], host["geom"])[1])
        impls = {op: kernels.implementations(op) for op in case_ops}
        for op in case_ops:
            arguments = op_arguments(op, host)
            reference = impls[op]["ref"](*arguments)
            flops, nbytes = costs.kernel_cost(op, host["geom"],
                                              [a.shape for a in arguments if hasattr(a, "shape")],
                                              dtype.itemsize)
            for tier in available_tiers(op, tiers):
                device = "cuda" if tier == "cuda" and _cuda_real() else "cpu"
                data = host
                if device == "cuda":
                    import cupy
                    data = _to_device(host, cupy)
                fn_impl = impls[op][tier]
                args = op_arguments(op, data)
                check = common.compare_outputs(fn_impl(*args), reference)
                if device == "cuda":
                    timing = common.time_gpu(lambda: fn_impl(*args), repeats, warmup, "cupy")
                else:
                    timing = common.time_cpu(lambda: fn_impl(*args), repeats, warmup)
                record = dict(case=case["name"], group=case["group"], family=case["family"],
                              op=op, tier=tier, device=device, dtype=dtype.name,
                              input_shape=list(case["x"]), geom=dict(host["geom"]),
                              valid=check["ok"], max_abs_err=check["max_abs_err"],
                              max_rel_err=check["max_rel_err"], **timing)
                common.add_rates(record, flops, nbytes, peak[device])
                _add_torch(record, torch_module, torch_times, case, op, host, reference,
                           device, repeats, warmup)
                results.append(common.sanitize(record))
                if verbose:
                    print(_progress_line(record), flush=True)

    payload = report(results, peak, torch_module, quick=quick, shapes=shapes, repeats=repeats,
                     warmup=warmup)
    common.save_report(payload, out, "kernels", quick, verbose)
    return results


def _select_ops(ops, registered):
    if not ops:
        return list(registered)
    selected = []
    for name in ops:
        if name in FAMILY_OPS:
            selected.extend(op for op in FAMILY_OPS[name] if op in registered)
        elif name in registered:
            selected.append(name)
        else:
            raise ValueError(f"unknown op {name!r}; registered ops: {', '.join(registered)}; "
                             f"families: {', '.join(FAMILY_OPS)}")
    return selected


def _add_torch(record, torch, torch_times, case, op, host, reference, device, repeats, warmup):
    record.update(torch_ms=None, speedup_vs_torch=None, torch_max_abs_err=None)
    if torch is None or (device == "cuda" and not common.torch_cuda_available(torch)):
        return
    key = (case["name"], op, device)
    if key not in torch_times:
        fn = _torch_op(torch, op, case, host, device)
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
