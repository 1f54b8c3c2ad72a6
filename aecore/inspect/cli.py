"""`aecore inspect ...` and `aecore bench ...` for a parser of your own.

The commands live with the rest of the `aecore` command, in aecore/cli/inspect.py and
aecore/cli/bench.py; this module keeps the names it has always offered:
add_subcommands(subparsers) adds both groups to any argparse parser (each command sets
`handler`, a function of the parsed arguments returning the exit status), and main(argv) is
`aecore`'s main (`python -m aecore.inspect.cli inspect graph --model cae`).
"""

import sys

from ..cli import bench as bench_commands
from ..cli import inspect as inspect_commands
from ..cli import main
from ..cli.bench import _given  # noqa: F401  (the options given, as aecore bench passes them on)

__all__ = ["add_subcommands", "main"]


def add_subcommands(subparsers):
    """Add `inspect` (graph, summary, stats) and `bench` (kernels, models) to an argparse
    subparsers object."""
    inspect_commands.add_subcommands(subparsers)
    bench_commands.add_subcommands(subparsers)
    return subparsers


if __name__ == "__main__":
    sys.exit(main())
