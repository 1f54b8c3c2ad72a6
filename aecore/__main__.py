"""`python -m aecore ...` runs the `aecore` command (see aecore/cli/__init__.py)."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
