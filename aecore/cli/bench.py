"""`aecore bench kernels | models`: the benchmarks of a source checkout, run from the command.

    aecore bench kernels [--ops ...] [--tiers ...]     runs bench/kernels.py
    aecore bench models [--models cae ae vae]          runs bench/models.py

The benchmarks are the repository's bench/ folder, not part of the installed package. This
command runs the checkout's script, `python bench/NAME.py` with the options given, in a process
of its own (as DESIGN.md asks of every benchmark): nothing from the checkout is imported here.
When aecore was not installed from a checkout (`pip install -e .`), it says so in one line.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from .. import argtypes
from .common import UsageError, group_help

__all__ = ["add_subcommands", "cmd_bench_kernels", "cmd_bench_models", "bench_script"]

PACKAGE_DIR = Path(__file__).resolve().parents[1]      # .../aecore


def add_subcommands(subparsers):
    """Add `bench` (kernels, models) to an argparse subparsers object."""
    parser_class = getattr(subparsers, "_parser_class", argparse.ArgumentParser)
    bench = subparsers.add_parser(
        "bench", help="benchmarks: kernels (every op x tier) and models (training steps)",
        description="Benchmarks from the repository's bench/ folder: median ms, GFLOP/s, GB/s, "
        "share of this machine's measured peak, ratio to PyTorch when installed; JSON results "
        "and a markdown table.")
    bench_sub = bench.add_subparsers(dest="bench_command", metavar="WHAT", parser_class=parser_class)
    bench.set_defaults(handler=lambda args: group_help(bench))

    k = bench_sub.add_parser("kernels", help="every kernel op x tier, forward and backward")
    k.add_argument("--ops", nargs="+", help="op names or families (default: all)")
    k.add_argument("--tiers", nargs="+", choices=("ref", "numba", "cuda"))
    k.add_argument("--shapes", choices=("cae", "large", "all"))
    k.add_argument("--repeats", type=argtypes.positive_int)
    k.add_argument("--warmup", type=int)
    k.add_argument("--dtype", choices=("float32", "float64"))
    k.add_argument("--no-torch", dest="torch", action="store_false", default=None,
                   help="do not compare with PyTorch")
    k.add_argument("--quick", action="store_true", default=None, help="tiny shapes, few repeats")
    k.add_argument("--out", help="results JSON path")
    k.set_defaults(handler=cmd_bench_kernels)

    m = bench_sub.add_parser("models", help="whole training steps of the CAE, AE and VAE")
    m.add_argument("--models", nargs="+", choices=("cae", "ae", "vae", "dae"))
    m.add_argument("--batch", type=argtypes.positive_int)
    m.add_argument("--steps", type=argtypes.positive_int)
    m.add_argument("--no-torch", dest="torch", action="store_false", default=None,
                   help="do not compare with PyTorch")
    m.add_argument("--quick", action="store_true", default=None, help="tiny settings")
    m.add_argument("--out", help="results JSON path")
    m.set_defaults(handler=cmd_bench_models)
    return subparsers


def bench_script(name):
    """bench/<name>.py of the source checkout this aecore package sits in; UsageError (one
    line) when there is none: an installed aecore has no bench/ beside it."""
    root = PACKAGE_DIR.parent
    script = root / "bench" / f"{name}.py"
    if not ((root / "setup.py").is_file() and script.is_file()):
        raise UsageError(f"aecore bench needs a source checkout of aecore (no {script} beside "
                         f"this aecore): clone the repository, run 'pip install -e .' there, then "
                         f"'aecore bench {name}' or 'python bench/{name}.py'")
    return script


def _given(args, names):
    """{name: value} of the options among `names` that were given (not None)."""
    return {name: getattr(args, name) for name in names if getattr(args, name, None) is not None}


def _script_arguments(given):
    """The script's command line for the options given: --no-torch for torch=False, a bare
    flag for True, the values of lists spelled out."""
    argv = []
    for name, value in given.items():
        if name == "torch":
            argv += [] if value else ["--no-torch"]
        elif value is True:
            argv.append(f"--{name}")
        elif isinstance(value, list):
            argv += [f"--{name}", *map(str, value)]
        else:
            argv += [f"--{name}", str(value)]
    return argv


def _run_script(name, given):
    script = bench_script(name)
    return subprocess.call([sys.executable, str(script), *_script_arguments(given)])


def cmd_bench_kernels(args):
    return _run_script("kernels", _given(args, ("ops", "tiers", "shapes", "repeats", "warmup",
                                                 "torch", "out", "quick", "dtype")))


def cmd_bench_models(args):
    return _run_script("models", _given(args, ("models", "batch", "steps", "torch", "out",
                                                "quick")))
