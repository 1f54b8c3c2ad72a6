"""Writing files so that a crash never leaves a half-written one: temporary file, then rename.

`write_temp_file` writes bytes to a temporary file beside the target (same directory, so the
rename is atomic on one filesystem), flushed and fsynced, with the permissions a plain open()
would give (mkstemp alone makes the file private, 0600). `atomic_write` renames it into place.
"""

import os
import tempfile


def _default_file_mode():
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def unlink_quietly(path):
    try:
        os.unlink(path)
    except OSError:
        pass


def fsync_directory(directory):
    """Make a rename durable (no-op where directories cannot be opened)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_temp_file(directory, data, suffix="", prefix=".tmp-"):
    """Write `data` (bytes) to a new temporary file in `directory`; return its path."""
    fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=directory)
    try:
        try:
            os.fchmod(fd, _default_file_mode())
        except (AttributeError, OSError):  # no fchmod on some platforms
            pass
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        unlink_quietly(tmp)
        raise
    return tmp


def atomic_write(path, data):
    """Replace `path` with `data` (bytes) atomically: readers see the old file or the new one."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    tmp = write_temp_file(directory, data, suffix=os.path.splitext(path)[1])
    try:
        os.replace(tmp, path)
    except BaseException:
        unlink_quietly(tmp)
        raise
