"""One epoch's progress on a text stream: a line redrawn in place on a terminal, one line per
epoch in a log. No dependencies, so training prints the same with or without extras.
"""

from __future__ import annotations

import sys
import time

__all__ = ["ProgressBar"]


def _clock(seconds):
    """'m:ss', or 'h:mm:ss' from an hour on."""
    seconds = int(round(max(seconds, 0)))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class ProgressBar:
    """One epoch's progress on a text stream (stderr by default). No dependencies.

    On a terminal the line is redrawn in place (at most ~10 times a second):
        epoch 2/5 [##########..........] 24/47  1534 img/s  loss 0.1821  ETA 0:07
    When the stream is not a terminal (a log file, a pipe, CI), nothing is written until the
    epoch ends; then one line per epoch. enabled=False writes nothing at all.
    """

    width = 20

    def __init__(self, epoch, epochs, total_batches, stream=None, enabled=True, interactive=None):
        self.stream = sys.stderr if stream is None else stream
        self.enabled = enabled
        if interactive is None:
            isatty = getattr(self.stream, "isatty", None)
            interactive = bool(isatty and isatty())
        self.interactive = interactive and enabled
        self.epoch, self.epochs, self.total = epoch, epochs, total_batches
        self.start = time.perf_counter()
        self.last_draw = 0.0
        self.drawn = 0

    def update(self, batches, items, loss):
        if not self.interactive:
            return
        now = time.perf_counter()
        if now - self.last_draw < 0.1 and batches < self.total:
            return
        self.last_draw = now
        elapsed = now - self.start
        rate = items / elapsed if elapsed > 0 else 0.0
        eta = elapsed / batches * (self.total - batches) if batches else 0.0
        filled = int(self.width * batches / max(self.total, 1))
        line = (f"epoch {self.epoch}/{self.epochs} [{'#' * filled}{'.' * (self.width - filled)}] "
                f"{batches}/{self.total}  {rate:,.0f} img/s  loss {loss:.4f}  ETA {_clock(eta)}")
        self._draw(line)

    def _draw(self, line):
        pad = max(self.drawn - len(line), 0)
        self.stream.write("\r" + line + " " * pad)
        self.stream.flush()
        self.drawn = len(line)

    def close(self, summary):
        if not self.enabled:
            return
        if self.interactive:
            self._draw(summary)
            self.stream.write("\n")
        else:
            self.stream.write(summary + "\n")
        self.stream.flush()
