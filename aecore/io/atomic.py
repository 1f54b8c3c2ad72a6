"""Writing files so that a crash never leaves a half-written one: temporary file, then rename.

`write_temp_file` writes bytes to a temporary file beside the target (same directory, so the
rename is atomic on one filesystem), flushed and fsynced, with the permissions a plain open()
would give (mkstemp alone makes the file private, 0600). `atomic_write` renames it into place.
A write that fails for want of space raises DiskFullError (an OSError) saying which file, how
many bytes it needed and how many were free; the partial temporary file is removed.
"""

import errno
import os
import shutil
import tempfile

# errno values that mean "no room for these bytes": a full disk, a quota, a file size limit.
_NO_SPACE = {errno.ENOSPC, errno.EFBIG, getattr(errno, "EDQUOT", errno.ENOSPC)}


class DiskFullError(OSError):
    """Bytes could not be written for want of space; .path, .needed and .free say more, and
    .note (set by whoever knows more, e.g. which checkpoint is the last good one) ends the
    message."""

    def __init__(self, path, needed, free, cause):
        super().__init__(cause.errno, cause.strerror or str(cause))
        self.path, self.needed, self.free = path, needed, free
        self.note = None

    def __str__(self):
        free = "unknown" if self.free is None else f"{self.free:,}"
        text = (f"cannot write {self.path}: {self.strerror} ({self.needed:,} bytes needed, "
                f"{free} free)")
        if self.note:
            text += f"; {self.note}"
        return text


def free_bytes(directory):
    """Bytes free for this user on the file system holding `directory` (None if unknown)."""
    try:
        return shutil.disk_usage(directory).free
    except OSError:
        return None


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


def write_temp_file(directory, data, suffix="", prefix=".tmp-", target=None):
    """Write `data` (bytes) to a new temporary file in `directory`; return its path.

    target: the file the temporary one will become, named in a DiskFullError.
    """
    try:
        return _write_temp_file(directory, data, suffix, prefix)
    except OSError as e:
        if e.errno in _NO_SPACE and not isinstance(e, DiskFullError):
            raise DiskFullError(target or os.path.join(directory, f"{prefix}*{suffix}"),
                                len(data), free_bytes(directory), e) from None
        raise


def _write_temp_file(directory, data, suffix, prefix):
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
    tmp = write_temp_file(directory, data, suffix=os.path.splitext(path)[1], target=path)
    try:
        os.replace(tmp, path)
    except BaseException:
        unlink_quietly(tmp)
        raise
