"""The `aecore` command.

    aecore train                          the default CAE on the built-in synthetic digits
                                          (under a minute the first time on two CPU cores)
    aecore train --model vae --latent-dim 2 --data mnist --epochs 10 --out runs/vae2
    aecore train --model dae --noise gaussian:0.5 --data fashion-mnist
    aecore train --resume runs/vae2 [--epochs 20]    continue exactly where it stopped
    aecore reconstruct RUN_DIR            inputs vs reconstructions -> RUN_DIR/reconstructions.png
    aecore sample RUN_DIR                 generated images -> samples.png
    aecore interpolate RUN_DIR            latent interpolations -> interpolation.png
    aecore score RUN_DIR --data PATH      anomaly scores -> scores.csv, scores.json
    aecore embed RUN_DIR [--out DIR]      codes for TensorBoard's embedding projector ->
                                          DIR/tensors.tsv, metadata.tsv, sprite.png, ...
    aecore export RUN_DIR --onnx FILE     the model (--part whole|encoder|decoder) as ONNX
    aecore inspect graph|summary|stats    look inside a model
    aecore bench kernels|models           the benchmarks of a source checkout

Exit status (each failure is reported in one message, without a traceback):
    0    done
    1    training diverged: a NaN/Inf loss, parameter or optimizer buffer (the message names
         the step; the last good checkpoint stays)
    2    bad input: an unknown option, a bad setting (AECORE_*), a missing or damaged data
         file, an unusable checkpoint, a run directory in use or already holding a run, no
         GPU for --device cuda
    3    disk full: a file of the run could not be written (the message names it, the space
         needed and the last good checkpoint; metrics.json records the stop)
    4    data-parallel runs (`mpiexec -n 4 aecore train`): a rank died or stopped answering
    130  interrupted (Ctrl-C; `--resume` continues from the last checkpoint)

A module per command group: train.py (`aecore train`), runs.py (reconstruct, sample,
interpolate, score), embed.py (embed), export.py (export), inspect.py, bench.py; common.py holds
what they share.
This module builds the parser from them and runs a command: `main` checks the AECORE_* settings
once, then turns each kind of failure into its message and exit status.

Under an MPI launcher, `aecore train` joins the job's ranks (aecore.distributed.init) first. A
failure every rank meets at once (a diverged loss, ranks started differently, a bad run
directory on rank 0) is reported by rank 0, and every rank exits with its status; a failure of
one rank alone is reported by that rank, named, and ends the whole job (MPI_Abort).
"""

from __future__ import annotations

import argparse
import difflib
import os
import sys

from . import bench, embed, export, inspect, runs, train
from .common import (EXIT_DISK_FULL, EXIT_DIVERGED, EXIT_DONE, EXIT_INTERRUPTED,
                     EXIT_RANK_LOST, EXIT_USAGE, UsageError)
from .train import parse_noise

__all__ = ["main", "build_parser", "UsageError", "parse_noise", "EXIT_DONE", "EXIT_DIVERGED",
           "EXIT_USAGE", "EXIT_DISK_FULL", "EXIT_INTERRUPTED"]


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")

    def parse_args(self, args=None, namespace=None):
        """As argparse's, but an unknown option is reported by the subcommand it was given to,
        with its usage and the closest option it has (`--epocs`: did you mean --epochs?)."""
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:
            subcommands = getattr(self, "subcommands", {})
            parser = subcommands.get(getattr(parsed, "command", None), self)
            known = [o for action in parser._actions for o in action.option_strings
                     if o.startswith("--")]
            hints = []
            for extra in extras:
                name = extra.split("=", 1)[0]
                close = difflib.get_close_matches(name, known, n=1, cutoff=0.6) \
                    if name.startswith("-") else []
                if close:
                    hints.append(f"{name}: did you mean {close[0]}?")
            hint = f" ({'; '.join(hints)})" if hints else ""
            parser.error(f"unrecognized arguments: {' '.join(extras)}{hint}")
        return parsed


def build_parser():
    """The `aecore` parser: every command group's subcommands, each setting `handler`."""
    parser = _Parser(prog="aecore", description="Train autoencoders (AE, CAE, DAE, VAE) and "
                     "look at what they learned.",
                     formatter_class=argparse.RawDescriptionHelpFormatter,
                     epilog="Run 'aecore COMMAND --help' for a command's options.")
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for group in (train, runs, embed, export, inspect, bench):
        group.add_subcommands(sub)
    parser.subcommands = dict(sub.choices)
    return parser


def _user_errors():
    """Exception types that mean bad input (exit 2, one message)."""
    from ..data import DatasetNotFoundError, IDXFormatError, MissingDependencyError, \
        NPZFormatError
    from ..distributed import MissingMPIError, RanksDisagree
    from ..io.checkpoint import CheckpointError
    from ..io.png import PNGFormatError
    from ..io.rundir import RunDirectoryError
    from ..models.base import ModelConfigError
    from ..settings import SettingsError
    from ..train import ConfigError, DeviceError
    return (UsageError, DatasetNotFoundError, IDXFormatError, NPZFormatError, PNGFormatError,
            MissingDependencyError, CheckpointError, ConfigError, DeviceError, RunDirectoryError,
            SettingsError, ModelConfigError, MissingMPIError, RanksDisagree)


class _Ranks:
    """The ranks this command runs on: none joined (one process) until join()."""

    def __init__(self, command):
        self.command, self.world = command, None

    def join(self):
        """Join the launcher's ranks (nothing without a launcher)."""
        from ..distributed import init, launched_rank
        try:
            self.world = init()
        except ImportError as e:            # started by mpiexec without mpi4py
            e.collective = True
            e.print_here = launched_rank() == 0
            raise

    def fail(self, error, message, status):
        """Report `error` once: here in one process; on rank 0 when every rank met it
        (error.collective); else on this rank, named, and then end every rank."""
        world = self.world
        if world is None or world.size == 1 or getattr(error, "collective", False):
            if (world is None or world.is_root) and getattr(error, "print_here", True):
                print(message, file=sys.stderr)
            return status
        start = f"aecore {self.command}"
        print(message.replace(start, f"{start} (rank {world.rank} of {world.size})", 1),
              file=sys.stderr)
        world.abort(status)
        return status


def _command_name(args):
    """'train', 'inspect graph', 'bench kernels': the command as given, for messages."""
    return " ".join(filter(None, (getattr(args, name, None) for name in
                                  ("command", "inspect_command", "bench_command"))))


def main(argv=None):
    """Entry point of the `aecore` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.version:
        from .. import __version__
        print(f"aecore {__version__}")
        return EXIT_DONE
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    from ..distributed import DistributedError
    from ..io.atomic import DiskFullError
    from ..settings import check_environment
    from ..train import NonFiniteLossError
    user_errors = _user_errors()
    command = _command_name(args)
    ranks = _Ranks(command)
    try:
        check_environment()  # every setting checked once, before anything is created
        if args.command == "train":
            ranks.join()
        return int(args.handler(args) or 0)
    except NonFiniteLossError as e:
        return ranks.fail(e, f"aecore {command}: {e}", EXIT_DIVERGED)
    except DiskFullError as e:
        return ranks.fail(e, f"aecore {command}: error: {e}", EXIT_DISK_FULL)
    except user_errors as e:
        message = str(e) if not isinstance(e, KeyError) else e.args[0]
        return ranks.fail(e, f"aecore {command}: error: {message}", EXIT_USAGE)
    except DistributedError as e:
        return ranks.fail(e, f"aecore {command}: error: {e}", EXIT_RANK_LOST)
    except KeyboardInterrupt as e:           # every rank gets the launcher's SIGINT
        e.collective = True
        return ranks.fail(e, f"\naecore {command}: interrupted", EXIT_INTERRUPTED)
    except BrokenPipeError:  # e.g. `aecore score ... | head -1`: the reader left, that is fine
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return 141
