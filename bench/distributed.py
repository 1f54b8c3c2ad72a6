"""Data-parallel benchmark: training steps per second on 1 and 2 ranks, and the allreduce's share.

    python bench/distributed.py                    # CAE and dense AE, global batch 200
    python bench/distributed.py --quick            # tiny: checks the code runs
    python bench/distributed.py --models cae --rounds 7 --steps 10

Three ways to spend the cores of one machine on the same training, the same global batch:
    1 rank x 1 thread      the baseline
    2 ranks x 1 thread     `mpiexec -n 2`, each rank half of every batch (aecore.distributed)
    1 rank x 2 threads     the kernels' own threads (Numba, OpenBLAS)
Each runs alone, in processes of its own, as a user runs it: the step is the Trainer's
(aecore.train.Trainer.train_epoch: loader, forward, backward, allreduce, Adam), timed inside the
ranks, one epoch of `steps` steps at a time after an untimed epoch (compile, pools). The three
alternate round by round, their order rotating, and the figure is the median ms per step over
every timed epoch of every round; ratios are ratios of those medians.

"allreduce ms" is the time inside World.allreduce_gradients per step (packing, MPI, unpacking),
which includes waiting for the slower rank; its share is of rank 0's step. On a 2-core machine,
2 ranks x 1 thread and 1 rank x 2 threads use the same cores: the comparison says which way of
using them is faster, not how the run would scale on more machines (the README's Scaling
section works that out from these figures and a network's bandwidth and latency).
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys

try:
    from . import common
except ImportError:  # run as a script: make `bench` importable
    sys.path.append(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from bench import common

MODELS = {"cae": ("cae", {}),                                  # the classic CAE, 30,689 weights
          "ae": ("ae", {}),                                    # dense 784-64-32-16, 106,464
          "cae_wide": ("cae", {"filters": [128, 128, 64]})}    # the same, 4x wider: 482,177
LAYOUTS = (("1 rank x 1 thread", 1, 1), ("2 ranks x 1 thread", 2, 1),
           ("1 rank x 2 threads", 1, 2))
THREAD_VARIABLES = ("OMP_NUM_THREADS", "NUMBA_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                    "MKL_NUM_THREADS")


# ------------------------------------------------------------------------- inside the ranks
def worker(model_name, global_batch, steps, epochs):
    """Train 1 + epochs epochs of `steps` global batches; rank 0 prints one JSON line:
    per timed epoch, ms per step and allreduce ms per step."""
    import numpy as np

    import aecore as ae
    from aecore import distributed, optim
    from aecore.models import build_model
    from aecore.train import Trainer
    world = distributed.init()
    kind, options = MODELS[model_name]
    ae.manual_seed(0)
    model = build_model(kind, (1, 28, 28), **options)
    images = np.random.default_rng(0).random((global_batch * steps, 1, 28, 28), dtype=np.float32)
    timed = []

    def record(trainer, epoch_record):
        if epoch_record["epoch"] > 1:                      # the first epoch warms up
            timed.append({"ms_per_step": 1e3 * epoch_record["seconds"] / steps,
                          "allreduce_ms_per_step": 1e3 * world.seconds_in_allreduce / steps})
        world.seconds_in_allreduce = 0.0

    trainer = Trainer(model, optim.Adam(model.parameters(), lr=1e-3), (images, None),
                      {"batch_size": global_batch // world.size, "epochs": 1 + epochs,
                       "seed": 0}, quiet=True, callbacks=[record])
    trainer.fit()
    if world.is_root:
        print(json.dumps({"ranks": world.size, "epochs": timed}), flush=True)


# ------------------------------------------------------------------------- the parent
def launch(model_name, ranks, threads, global_batch, steps, epochs, timeout=900):
    """One layout's processes, alone; -> their JSON."""
    env = dict(os.environ)
    for variable in THREAD_VARIABLES:
        env[variable] = str(threads)
    command = [sys.executable, os.path.abspath(__file__), "--worker", model_name,
               "--batch", str(global_batch), "--steps", str(steps), "--epochs", str(epochs)]
    if ranks > 1:
        command = [shutil.which("mpiexec"), "-n", str(ranks)] + command
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=timeout)
    if result.returncode != 0:
        raise SystemExit(f"bench/distributed.py: {model_name} on {ranks} rank(s) failed:\n"
                         f"{result.stderr[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def run(models=("cae", "ae"), rounds=5, steps=8, epochs=3, global_batch=200, quick=False,
        out=None, verbose=True):
    if shutil.which("mpiexec") is None:
        raise SystemExit("bench/distributed.py needs mpiexec and mpi4py: pip install "
                         "'aecore[mpi]'")
    if quick:
        rounds, steps, epochs, global_batch = 1, 2, 1, 8
    results, rows = {}, []
    for name in models:
        times = {label: [] for label, _, _ in LAYOUTS}
        allreduce = {label: [] for label, _, _ in LAYOUTS}
        for round_index in range(rounds):
            shift = round_index % len(LAYOUTS)             # rotate who goes first
            for label, ranks, threads in LAYOUTS[shift:] + LAYOUTS[:shift]:
                report = launch(name, ranks, threads, global_batch, steps, epochs)
                times[label] += [e["ms_per_step"] for e in report["epochs"]]
                allreduce[label] += [e["allreduce_ms_per_step"] for e in report["epochs"]]
            if verbose:
                print(f"{name}: round {round_index + 1}/{rounds} done", file=sys.stderr)
        medians = {label: statistics.median(values) for label, values in times.items()}
        base = medians["1 rank x 1 thread"]
        results[name] = {}
        for label, ranks, threads in LAYOUTS:
            share = statistics.median(allreduce[label]) if ranks > 1 else None
            results[name][label] = {
                "ranks": ranks, "threads_per_rank": threads,
                "ms_per_step": medians[label], "steps_per_second": 1e3 / medians[label],
                "speedup_vs_1x1": base / medians[label],
                "allreduce_ms_per_step": share,
                "allreduce_share": None if share is None else share / medians[label],
                "all_ms_per_step": times[label]}
            rows.append({"model": name, "layout": label, "ms": medians[label],
                         "rate": 1e3 / medians[label], "speedup": base / medians[label],
                         "allreduce": share,
                         "share": None if share is None else 100 * share / medians[label]})
    payload = {
        "machine": common.describe_machine("cpu"),
        "settings": {"models": list(models), "rounds": rounds, "steps_per_epoch": steps,
                     "timed_epochs_per_process": epochs, "global_batch": global_batch,
                     "quick": quick, "mpi": _mpi_version()},
        "method": __doc__.split("\n\n", 2)[2].strip(),
        "results": results,
        "markdown": common.markdown_table(rows, [
            ("model", "model", "s"), ("layout", "layout", "s"), ("ms", "ms / step", ".1f"),
            ("rate", "steps / s", ".2f"), ("speedup", "x 1 rank x 1 thread", ".2f"),
            ("allreduce", "allreduce ms / step", ".2f"), ("share", "allreduce share %", ".1f")]),
    }
    common.save_report(payload, out, "distributed", quick, verbose)
    return payload


def _mpi_version():
    try:
        from mpi4py import MPI
        return MPI.Get_library_version().strip().splitlines()[0]
    except Exception:
        return None


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="cae,ae", help="comma-separated: cae, ae, cae_wide")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=8, help="steps per timed epoch")
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs per process")
    parser.add_argument("--batch", type=int, default=200, help="the global batch")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", help="JSON path (default bench/results/distributed.json)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return worker(args.worker, args.batch, args.steps, args.epochs)
    models = tuple(m.strip() for m in args.models.split(",") if m.strip())
    unknown = sorted(set(models) - set(MODELS))
    if unknown:
        parser.error(f"--models: unknown {', '.join(unknown)}; choose from {', '.join(MODELS)}")
    run(models, rounds=args.rounds, steps=args.steps, epochs=args.epochs,
        global_batch=args.batch, quick=args.quick or common.quick_requested(), out=args.out)


if __name__ == "__main__":
    main()
