"""Host memory for the CPU kernels: a cache of large buffers, reused from step to step.

    empty(shape, dtype)  -> a C-contiguous array, like np.empty, 64-byte aligned when cached
    zeros(shape, dtype)  -> the same, filled with zeros
    info()               -> {"limit_bytes", "cached_bytes", "idle_bytes", "buffers", "hits", ...}
    release()            -> hands every idle buffer back to the system; returns the bytes freed
    set_limit(nbytes)    -> the most bytes the cache may hold (0 turns it off); returns the old one

Why: a training step makes the same large arrays every time. glibc's malloc serves an array
that large with a fresh mapping from the kernel, or returns the freed top of its heap to the
system soon after, so each step touches its memory again page by page, and the kernels' own
loops wait on the faults (kernels/NOTES.md, "host buffer cache", has the figures). Keeping the
buffers turns all of that into reuse. (CuPy's memory pool does the same on the GPU; this is the
host's counterpart. Setting MALLOC_MMAP_THRESHOLD_ / MALLOC_TRIM_THRESHOLD_ helps the whole
process, PyTorch included, but a library should not have to ask its user for that.)

How a buffer is known to be free: the cache owns each buffer (a uint8 array) and hands out views
of it. Every NumPy view of that memory, however derived (a reshape, a slice, a view of a view, a
memoryview), holds a reference to the array that owns the memory, so when the buffer's reference
count is back to the cache's own references, nothing can see its memory any more. That is
checked when a buffer of the same size is next asked for; there is no callback and no
bookkeeping on the user's side. A buffer still in use is simply not handed out again.

Only buffers of at least MIN_BYTES go through the cache: malloc reuses smaller blocks well by
itself. Buffers are matched by exact size, as the sizes of one model's steps repeat exactly.
When the cache would grow past its limit (AECORE_HOST_CACHE_MB, default 2048 MiB, read at the
first allocation so that a bad value is reported there and never breaks `import aecore`), idle
buffers of other sizes are freed first, least recently used first; when that is not enough the
array is an ordinary np.empty outside the cache. The kernels that use it are the numba tier's
(and BCE-with-logits' two buffers, aecore/losses.py): the reference tier is the readable NumPy
fallback and allocates as NumPy does.
"""

import math
import sys
import threading

import numpy as np

from .. import settings

# 256 KiB: below it malloc reuses blocks from its heap; arrays of a few hundred KiB (a dense
# model's (200, 784) batch: 627 KB) still fault page by page every step (kernels/NOTES.md, "bce")
MIN_BYTES = 1 << 18
ALIGNMENT = 64              # bytes: a cache line, and one AVX-512 vector


def _references(buffers, index):
    """References to buffers[index], counted the same way for the calibration and every check."""
    return sys.getrefcount(buffers[index])


# A buffer held by nothing but its list, counted through _references. Measured rather than
# assumed: the count includes temporaries whose number depends on the Python version.
_IDLE_REFERENCES = _references([np.empty(0, np.uint8)], 0)


class _Entry:
    """One cached buffer: the owning uint8 array and when it was last handed out."""
    __slots__ = ("buffers", "last_used")

    def __init__(self, buffer, tick):
        self.buffers = [buffer]     # a one-element list, so _references counts it as calibrated
        self.last_used = tick

    @property
    def nbytes(self):
        return self.buffers[0].nbytes

    def idle(self):
        return _references(self.buffers, 0) <= _IDLE_REFERENCES


class HostCache:
    """Large host buffers, by exact size, handed out again once nothing refers to them."""

    def __init__(self, limit_bytes=None):
        """limit_bytes: the most bytes the cache may hold; None: AECORE_HOST_CACHE_MB's, read when
        first needed (aecore.settings raises its SettingsError then)."""
        self._limit_bytes = None if limit_bytes is None else int(limit_bytes)
        self._entries = {}          # requested bytes -> [_Entry, ...]
        self._cached_bytes = 0      # owned by the cache, idle or in use
        self._tick = 0
        self._lock = threading.Lock()   # the check and the hand-out are one step
        self.hits = self.misses = self.bypassed = 0

    @property
    def limit_bytes(self):
        if self._limit_bytes is None:
            self._limit_bytes = settings.host_cache_bytes()
        return self._limit_bytes

    def empty(self, shape, dtype):
        dtype = np.dtype(dtype)
        shape = (int(shape),) if np.isscalar(shape) else tuple(int(size) for size in shape)
        nbytes = math.prod(shape) * dtype.itemsize
        if nbytes < MIN_BYTES or self.limit_bytes <= 0:
            return np.empty(shape, dtype)
        with self._lock:
            self._tick += 1
            memory = self._reuse(nbytes)
            if memory is None:
                memory = self._grow(nbytes)
        if memory is None:
            return np.empty(shape, dtype)
        return memory.view(dtype).reshape(shape)

    def zeros(self, shape, dtype):
        array = self.empty(shape, dtype)
        array.fill(0)
        return array

    def _reuse(self, nbytes):
        for entry in self._entries.get(nbytes, ()):
            if entry.idle():
                entry.last_used = self._tick
                self.hits += 1
                return self._aligned(entry.buffers[0], nbytes)
        return None

    def _grow(self, nbytes):
        size = nbytes + ALIGNMENT
        if self._cached_bytes + size > self.limit_bytes:
            self._free_idle(self._cached_bytes + size - self.limit_bytes)
        if self._cached_bytes + size > self.limit_bytes:
            self.bypassed += 1
            return None
        buffer = np.empty(size, np.uint8)
        self._entries.setdefault(nbytes, []).append(_Entry(buffer, self._tick))
        self._cached_bytes += size
        self.misses += 1
        return self._aligned(buffer, nbytes)

    @staticmethod
    def _aligned(buffer, nbytes):
        start = -buffer.ctypes.data % ALIGNMENT
        return buffer[start:start + nbytes]

    def _free_idle(self, wanted_bytes=None):
        """Drop idle buffers, least recently used first, until wanted_bytes are freed (or all)."""
        idle = sorted(((nbytes, entry) for nbytes, entries in self._entries.items()
                       for entry in entries if entry.idle()),
                      key=lambda pair: pair[1].last_used)
        freed = 0
        for nbytes, entry in idle:
            if wanted_bytes is not None and freed >= wanted_bytes:
                break
            self._entries[nbytes].remove(entry)
            if not self._entries[nbytes]:
                del self._entries[nbytes]
            freed += entry.nbytes
        self._cached_bytes -= freed
        return freed

    def release(self):
        with self._lock:
            return self._free_idle()

    def info(self):
        with self._lock:
            entries = [entry for group in self._entries.values() for entry in group]
            return dict(limit_bytes=self.limit_bytes, cached_bytes=self._cached_bytes,
                        idle_bytes=sum(entry.nbytes for entry in entries if entry.idle()),
                        buffers=len(entries), hits=self.hits, misses=self.misses,
                        bypassed=self.bypassed)

    def set_limit(self, nbytes):
        if isinstance(nbytes, bool) or not isinstance(nbytes, (int, np.integer)) or nbytes < 0:
            raise ValueError(f"set_limit: expected a number of bytes >= 0 (0 turns the cache off), "
                             f"got {nbytes!r}")
        with self._lock:
            old, self._limit_bytes = self.limit_bytes, int(nbytes)
            if self._cached_bytes > self.limit_bytes:
                self._free_idle(self._cached_bytes - self.limit_bytes)
        return old


_cache = HostCache()
empty = _cache.empty
zeros = _cache.zeros
info = _cache.info
release = _cache.release
set_limit = _cache.set_limit
