"""What the command groups of `aecore` share: the usage error, the exit statuses, the data flags
and loading data with a message that says where to look.
"""

from __future__ import annotations

import os
import sys

from .. import argtypes

__all__ = ["UsageError", "EXIT_DONE", "EXIT_DIVERGED", "EXIT_USAGE", "EXIT_DISK_FULL",
           "EXIT_RANK_LOST", "EXIT_INTERRUPTED", "MODEL_KINDS", "add_data_flags", "load_or_usage",
           "report", "group_help"]

EXIT_DONE, EXIT_DIVERGED, EXIT_USAGE, EXIT_DISK_FULL, EXIT_RANK_LOST = 0, 1, 2, 3, 4
EXIT_INTERRUPTED = 130
MODEL_KINDS = ("ae", "cae", "dae", "vae")


class UsageError(Exception):
    """Bad input from the user: printed as one message, exit status 2."""


def add_data_flags(parser, data_help):
    """The data flags every subcommand that reads images takes."""
    parser.add_argument("--data", help=data_help)
    parser.add_argument("--data-root", help="a directory searched first for named data sets")
    parser.add_argument("--image-size", type=argtypes.positive_int,
                        help="image folders: resize to N x N")


def group_help(parser):
    """A command group given without its subcommand (`aecore bench`): its help, exit status 2."""
    parser.print_help(sys.stderr)
    return EXIT_USAGE


def load_or_usage(loader, what):
    """Run a data-loading call; turn its errors (no such data set, bad files) into UsageError,
    with where to look for a named set."""
    from ..data import DatasetNotFoundError
    try:
        return loader()
    except DatasetNotFoundError as e:
        message = str(e)
        if what and "no file or folder of that name exists" in message:
            message += f" (looked for {os.path.abspath(os.path.expanduser(what))})"
        if "Looked in:" in message:
            message += ("\nOn the command line: --data-root DIR (a directory searched first), "
                        "--data PATH, or --data synthetic.")
        raise UsageError(message) from None
    except (ValueError, OSError) as e:
        raise UsageError(f"cannot load data {what!r}: {e}") from None


def report(text="", stream=None):
    """A line of a command's result (stdout)."""
    print(text, file=stream or sys.stdout)
