"""The GPU check's measuring stages (bench/gpu_check.sh runs them, each under a time limit).

    python bench/gpu_check.py steps --out steps.json    # each model's first step, cuda vs CPU
    python bench/gpu_check.py conv --out conv.json      # the large conv, every version, cuDNN
    python bench/gpu_check.py merge DIR --out FILE      # the stages' JSON files in one
    ... --dry-run                                       # here, under the Numba CUDA simulator

steps: each model kind (dense AE, dense VAE, DAE, CAE, conv VAE) built twice from one seed,
one copy on the CPU (numba tier), one on the GPU (cuda tier); the same batch, the same noise
(drawn on the host for both), one training step: the loss and every parameter's gradient must
agree to 1e-4 (relative to the largest value).

conv: the large conv (x 64x32x112x112, w 64x32x3x3, padding 1), forward + input gradient +
weight gradient: the tiled kernels (version 2), the naive ones (version 1), the reference tier
on CuPy (im2col slices and one tensordot: cuBLAS), and PyTorch's cuDNN in FP32 with TF32 off.
Each is checked against cuDNN before it is timed (CUDA events, L2 flushed, median), and the
tiled backward passes are run twice: their bits must be the same.

--dry-run runs the same code on tiny shapes with NUMBA_ENABLE_CUDASIM=1 (NumPy arrays, the cuda
tier forced), against the numba tier and PyTorch's CPU conv when installed, timed with the host
clock: it checks the script, not the GPU.
"""

import argparse
import json
import os
import sys
import time

import numpy as np

try:
    from . import common
except ImportError:  # run as a script: make `bench` importable
    sys.path.append(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from bench import common

TOLERANCE = 1e-4

STEP_MODELS = {
    "ae": dict(kind="ae"),
    "vae_dense": dict(kind="vae", encoder="dense"),
    "dae": dict(kind="dae", base="cae"),
    "cae": dict(kind="cae"),
    "vae": dict(kind="vae", encoder="conv"),
}
# the dry run's tiny versions of some of the kinds (the simulator runs 256 Python threads a
# block; tests/kernels/test_training_step_tiers.py runs every kind's step there)
DRY_STEP_MODELS = {
    "ae": dict(kind="ae", input_shape=(1, 6, 6), hidden=[8], latent_dim=3),
    "vae_dense": dict(kind="vae", input_shape=(1, 6, 6), hidden=[8], latent_dim=2),
    "cae": dict(kind="cae", input_shape=(1, 4, 4), filters=[2, 2]),
}

LARGE_CONV = dict(x=(64, 32, 112, 112), w=(64, 32, 3, 3), padding=1)
DRY_CONV = dict(x=(1, 2, 6, 6), w=(3, 2, 3, 3), padding=1)


def relative_error(ours, theirs):
    ours, theirs = common.to_numpy(ours).astype(np.float64), common.to_numpy(theirs).astype(np.float64)
    return float(np.max(np.abs(ours - theirs)) / max(1e-12, float(np.max(np.abs(theirs)))))


def on_gpu(dry_run):
    """Where the cuda tier's arrays live: CuPy on a GPU, NumPy under the simulator."""
    if dry_run:
        return np
    import cupy
    return cupy


def first_step(model, x, tier, device):
    """(loss, {name: gradient}) of one step of `model` on batch x (NumPy) on `device`, its
    kernels on `tier` (None: by the arrays), noise from seed 7 drawn on the host (the GPU draws
    its own otherwise, from another generator): the same noise for the CPU and the GPU step."""
    import aecore
    from aecore import kernels
    from aecore import random as ae_random
    with kernels.use_tier(tier), ae_random.host_draws():
        batch = aecore.tensor(x, device=device)
        ae_random.manual_seed(7)
        loss, _ = model.loss(batch)
        model.zero_grad()
        loss.backward()
    return float(loss.item()), {name: p.grad.data for name, p in model.named_parameters()}


def run_steps(dry_run):
    import aecore
    from aecore.models import build_model

    records = []
    for name, options in (DRY_STEP_MODELS if dry_run else STEP_MODELS).items():
        options = dict(options)
        kind = options.pop("kind")
        shape = options.get("input_shape", (1, 28, 28))
        x = np.random.default_rng(3).random((4 if dry_run else 64,) + tuple(shape)).astype(np.float32)
        aecore.manual_seed(0)
        cpu_model = build_model(kind, **options)
        aecore.manual_seed(0)
        gpu_model = build_model(kind, **options)
        if not dry_run:
            gpu_model.to("cuda")
        cpu_loss, cpu_grads = first_step(cpu_model, x, None, "cpu")
        # a dry run: the cuda tier forced on NumPy arrays (the simulator); else on the GPU
        gpu_loss, gpu_grads = first_step(gpu_model, x, "cuda" if dry_run else None,
                                         "cpu" if dry_run else "cuda")
        worst = max(relative_error(gpu_grads[k], cpu_grads[k]) for k in cpu_grads)
        loss_error = abs(gpu_loss - cpu_loss) / max(1e-12, abs(cpu_loss))
        record = dict(model=name, batch=x.shape[0], loss_cpu=cpu_loss, loss_cuda=gpu_loss,
                      loss_relative_error=loss_error, worst_gradient_relative_error=worst,
                      ok=bool(loss_error <= TOLERANCE and worst <= TOLERANCE))
        print(f"{name:<10} loss {gpu_loss:.6f} (cpu {cpu_loss:.6f}), worst gradient error "
              f"{worst:.2e}: {'ok' if record['ok'] else 'DISAGREES'}", flush=True)
        records.append(record)
    return {"steps": records, "steps_ok": all(r["ok"] for r in records)}


# ------------------------------------------------------------------------------------- conv
def time_it(function, dry_run, library="cupy", repeats=10):
    """Median ms of function(): CUDA events (bench/common.time_gpu), or in a dry run one call by
    the host clock."""
    if dry_run:            # one run by the host clock: the simulator's time means nothing
        started = time.perf_counter()
        function()
        return (time.perf_counter() - started) * 1e3
    return common.time_gpu(function, repeats, 2, library=library)["median_ms"]


def run_conv(dry_run, partial_out=None):
    from aecore import kernels
    from aecore.kernels import geometry

    shape = DRY_CONV if dry_run else LARGE_CONV
    xp = on_gpu(dry_run)
    rng = np.random.default_rng(0)
    x_host = rng.standard_normal(shape["x"]).astype(np.float32)
    w_host = (rng.standard_normal(shape["w"]) / np.sqrt(np.prod(shape["w"][1:]))).astype(np.float32)
    geom = geometry.conv2d_geometry(x_host.shape, w_host.shape, padding=shape["padding"])
    g_host = rng.standard_normal((geom.n, geom.c_out, geom.out_h, geom.out_w)).astype(np.float32)
    x, w, g = xp.asarray(x_host), xp.asarray(w_host), xp.asarray(g_host)
    ops = {"forward": ("conv2d_forward", (x, w, None, geom)),
           "backward_input": ("conv2d_backward_input", (g, w, geom)),
           "backward_weight": ("conv2d_backward_weight", (g, x, geom))}

    reference = cudnn_conv(x_host, w_host, g_host, shape["padding"], dry_run)
    flops = {name: 2 * geom.n * geom.out_h * geom.out_w * int(np.prod(w_host.shape))
             for name in ops}
    record = dict(case=f"x {shape['x']}, w {shape['w']}, padding {shape['padding']}",
                  flops_per_pass=flops["forward"], versions={})
    if reference is not None:
        record["versions"]["cudnn"] = reference["ms"]
    # the naive version last and with few repeats: its weight gradient may take seconds a call
    for version, tier, repeats in (("tiled", "cuda", 10), ("reference", "ref", 10),
                                   ("naive", "cuda", 2)):
        os.environ["AECORE_CUDA_CONV"] = "naive" if version == "naive" else "tiled"
        times, errors = {}, {}
        for name, (op, args) in ops.items():
            function = kernels.implementations(op)[tier]
            result = function(*args)
            if reference is not None:
                errors[name] = relative_error(result, reference["values"][name])
            times[name] = time_it(lambda: function(*args), dry_run, repeats=repeats)
        record["versions"][version] = dict(ms=times, relative_error=errors,
                                           total_ms=sum(times.values()))
        if partial_out:        # what is measured survives the stage's time limit
            common.write_json(partial_out, {"large_conv": record, "partial": True})
    os.environ.pop("AECORE_CUDA_CONV", None)
    bits_same = {}
    for name in ("backward_input", "backward_weight"):
        op, args = ops[name]
        first = common.to_numpy(kernels.implementations(op)["cuda"](*args)).copy()
        second = common.to_numpy(kernels.implementations(op)["cuda"](*args))
        bits_same[name] = first.tobytes() == second.tobytes()
    record["tiled_backward_bit_identical"] = bits_same
    if reference is not None:
        cudnn_total = sum(reference["ms"].values())
        for version in ("tiled", "naive", "reference"):
            entry = record["versions"][version]
            entry["share_of_cudnn_speed"] = cudnn_total / entry["total_ms"]
            entry["ok"] = all(e <= 1e-3 for e in entry["relative_error"].values())
        record["versions"]["cudnn"] = dict(ms=reference["ms"], total_ms=cudnn_total)
    for version, entry in record["versions"].items():
        share = entry.get("share_of_cudnn_speed")
        print(f"{version:<10} forward + backward {entry['total_ms']:.2f} ms"
              + (f" ({share:.0%} of cuDNN's speed)" if share else ""), flush=True)
    print(f"tiled backward passes bit-identical run to run: {bits_same}", flush=True)
    return {"large_conv": record}


def cudnn_conv(x, w, g, padding, dry_run):
    """PyTorch's conv (cuDNN, FP32, TF32 off; in a dry run its CPU conv): values and times."""
    torch = common.import_torch()
    if torch is None or (not dry_run and not common.torch_cuda_available(torch)):
        return None
    device = "cpu" if dry_run else "cuda"
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    F, aten = torch.nn.functional, torch.ops.aten
    xt, wt, gt = (torch.from_numpy(a).to(device) for a in (x, w, g))

    def backward(mask):
        return aten.convolution_backward(gt, xt, wt, None, [1, 1], [padding, padding], [1, 1],
                                         False, [0, 0], 1, mask)

    passes = {"forward": lambda: F.conv2d(xt, wt, None, 1, padding),
              "backward_input": lambda: backward([True, False, False])[0],
              "backward_weight": lambda: backward([False, True, False])[1]}
    values = {name: function().cpu().numpy() for name, function in passes.items()}
    times = {name: time_it(function, dry_run, library="torch") for name, function in passes.items()}
    return {"values": values, "ms": times}


# ------------------------------------------------------------------------------------ merge
def merge(directory, out, dry_run):
    """Every stage's JSON in `directory` (and stages.json, the exit status of each) in one file,
    with the machine described."""
    payload = {"dry_run": dry_run}
    for name in sorted(os.listdir(directory)):
        if name.endswith(".json"):
            with open(os.path.join(directory, name)) as f:
                payload[name[:-5]] = json.load(f)
    payload["machine"] = common.describe_machine("cpu" if dry_run else "cuda", peak={})
    common.write_json(out, payload)
    print(f"wrote {out}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stage", choices=("steps", "conv", "merge"))
    parser.add_argument("directory", nargs="?", help="merge: the stages' JSON files")
    parser.add_argument("--out", required=True, help="the JSON file to write")
    parser.add_argument("--dry-run", action="store_true",
                        help="tiny shapes under the CUDA simulator (NUMBA_ENABLE_CUDASIM=1)")
    args = parser.parse_args(argv)
    if args.dry_run and os.environ.get("NUMBA_ENABLE_CUDASIM") != "1":
        parser.error("--dry-run needs NUMBA_ENABLE_CUDASIM=1 (bench/gpu_check.sh --dry-run sets it)")
    common.import_aecore()
    if args.stage == "merge":
        merge(args.directory, args.out, args.dry_run)
        return 0
    result = run_steps(args.dry_run) if args.stage == "steps" else \
        run_conv(args.dry_run, partial_out=args.out)
    common.write_json(args.out, result)
    ok = result.get("steps_ok", True) and all(
        v.get("ok", True) for v in result.get("large_conv", {}).get("versions", {}).values()
        if isinstance(v, dict))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
