"""A run directory held by one process at a time.

    with RunDirectory.open("runs/cae", mode="new") as run:    # or "resume", "overwrite"
        ...                                                     # train, save checkpoints

What opening one guarantees, for as long as it is held:
- an exclusive lock: `flock` on `DIR/.lock`, which records the holder's PID. The OS drops the
  lock when the process dies, even by kill -9, so a lock is never stale; a second process is
  refused with RunDirectoryLocked naming the PID that holds it.
- no run is overwritten by accident: mode "new" refuses a directory that already holds a run
  (RunDirectoryExists names the ways forward); "overwrite" deletes the old run's files first;
  "resume" expects them.
- no leftovers: temporary files (`.tmp-*`) left by a writer that died are deleted, since no other
  writer can be alive while the lock is ours.

The lock is advisory and needs `fcntl` (POSIX); elsewhere the directory is used unlocked.
"""

from __future__ import annotations

import errno
import fnmatch
import os

try:
    import fcntl
except ImportError:  # Windows: no flock
    fcntl = None

__all__ = ["RunDirectory", "RunDirectoryError", "RunDirectoryLocked", "RunDirectoryExists",
           "RUN_FILES", "TEMP_PATTERN", "LOCK_NAME"]

LOCK_NAME = ".lock"
TEMP_PATTERN = ".tmp-*"
# What `aecore train` writes into a run directory; "overwrite" deletes exactly these.
RUN_FILES = ("config.json", "metrics.json", "metrics.csv", "checkpoint.npz", "checkpoint.json",
             "checkpoint.prev.npz", "checkpoint.prev.json", "*.png")
# A directory holding any of these holds a run.
_RUN_MARKERS = ("config.json", "checkpoint.json", "checkpoint.prev.json", "metrics.json")


class RunDirectoryError(Exception):
    """A run directory cannot be used (a user error: the CLI exits 2)."""


class RunDirectoryLocked(RunDirectoryError):
    """Another live process holds the run directory; .pid names it (None if unknown)."""

    def __init__(self, message, pid=None):
        super().__init__(message)
        self.pid = pid


class RunDirectoryExists(RunDirectoryError):
    """A new run was pointed at a directory that already holds one."""


def _matching(directory, patterns):
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return []
    return sorted(name for name in names if any(fnmatch.fnmatch(name, p) for p in patterns))


def holds_run(directory) -> bool:
    """True when `directory` holds the files of a run (config, checkpoint or metrics)."""
    return bool(_matching(directory, _RUN_MARKERS))


class RunDirectory:
    """An opened, locked run directory. Use `RunDirectory.open(path, mode)`; `close()` (or the
    end of a `with` block, or the end of the process) releases it."""

    def __init__(self, path, lock_file):
        self.path = path
        self._lock_file = lock_file
        self.removed_temp_files = []

    @classmethod
    def open(cls, path, mode="new"):
        """Create `path` if needed, lock it, check it suits `mode`, clean up leftovers.

        mode: "new" (refuse a directory holding a run), "overwrite" (delete the old run's files)
        or "resume" (keep them).
        """
        if mode not in ("new", "overwrite", "resume"):
            raise ValueError(f"mode must be 'new', 'overwrite' or 'resume', got {mode!r}")
        path = os.fspath(path)
        if os.path.exists(path) and not os.path.isdir(path):
            raise RunDirectoryError(f"{path}: exists and is not a directory; give a directory "
                                    "for the run")
        os.makedirs(path, exist_ok=True)
        lock_file = cls._lock(path)
        run = cls(path, lock_file)
        try:
            if mode == "new" and holds_run(path):
                found = ", ".join(_matching(path, _RUN_MARKERS))
                raise RunDirectoryExists(
                    f"{path} already holds a run ({found}); continue it with --resume {path}, "
                    f"choose another --out, or pass --overwrite to delete its files first")
            if mode == "overwrite":
                for name in _matching(path, RUN_FILES):
                    os.unlink(os.path.join(path, name))
            run.removed_temp_files = run.remove_temp_files()
        except BaseException:
            run.close()
            raise
        return run

    @staticmethod
    def _lock(path):
        lock_path = os.path.join(path, LOCK_NAME)
        if fcntl is None:
            return None
        handle = open(lock_path, "a+", encoding="utf-8")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            handle.seek(0)
            text = handle.read().strip()
            handle.close()
            if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise
            pid = int(text) if text.isdigit() else None
            holder = f"process {pid}" if pid else "another process"
            raise RunDirectoryLocked(f"{path} is in use by {holder} (it holds {lock_path}); "
                                     "wait for it to finish, or choose another --out", pid) \
                from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        return handle

    def remove_temp_files(self):
        """Delete `.tmp-*` files (a dead writer's leftovers); returns their names."""
        removed = []
        for name in _matching(self.path, (TEMP_PATTERN,)):
            try:
                os.unlink(os.path.join(self.path, name))
                removed.append(name)
            except (IsADirectoryError, PermissionError, FileNotFoundError):
                pass
        return removed

    @property
    def locked(self):
        return self._lock_file is not None and not self._lock_file.closed

    def close(self):
        """Release the lock (the lock file stays; it is reused by the next holder)."""
        if self._lock_file is not None and not self._lock_file.closed:
            self._lock_file.close()  # closing the descriptor releases the flock

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False
