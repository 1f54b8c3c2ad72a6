"""Open data files for reading: regular files only.

Why: a FIFO (named pipe) blocks the reader until something writes to it, so a loader that
opens one hangs forever; a device such as /dev/zero never ends, so reading it to the end
eats all memory. Both can hide behind an ordinary name (`f.png`, a symlink
`train-images-idx3-ubyte -> /dev/zero`). os.stat follows symlinks, so a link to a regular
file is fine.

Used by every reader: aecore.io.png and the data readers in aecore.data.
"""

from __future__ import annotations

import os
import stat

__all__ = ["open_regular", "file_kind"]

_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
          (stat.S_ISSOCK, "a socket"))


def file_kind(mode: int) -> str:
    """'a FIFO (named pipe)', 'a character device', ... for an st_mode that is not a file."""
    for test, kind in _KINDS:
        if test(mode):
            return kind
    return "not a file"


def _refuse(path, mode, error):
    target = os.path.realpath(path)
    via = f" ({target})" if target != os.path.abspath(path) else ""
    raise error(f"{path}: not a regular file but {file_kind(mode)}{via}; only regular files "
                "are read")


def open_regular(path, error=OSError):
    """Open `path` in binary mode, refusing anything but a regular file with `error`.

    Returns the open file; its size is os.fstat(f.fileno()).st_size. A missing file raises
    FileNotFoundError as open() does. The file is opened with O_NONBLOCK, so a FIFO swapped
    in after the check cannot block the open either (on a regular file the flag does nothing).
    """
    path = os.fspath(path)
    mode = os.stat(path).st_mode
    if not stat.S_ISREG(mode):
        _refuse(path, mode, error)
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    f = os.fdopen(fd, "rb")
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        f.close()
        _refuse(path, mode, error)
    return f
