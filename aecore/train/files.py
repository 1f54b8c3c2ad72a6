"""The text files of a run directory: config.json, metrics.json and metrics.csv.

Each is written atomically (aecore.io.atomic: a temporary file renamed into place), so a run
killed mid-write leaves the previous version, never half a file. The checkpoints themselves are
aecore.io.checkpoint's; the pictures aecore.viz's.
"""

from __future__ import annotations

import csv
import io
import json
import os

from ..io.atomic import atomic_write
from ..io.checkpoint import json_safe

__all__ = ["write_json", "write_metrics"]


def write_json(out_dir, name, obj):
    """out_dir/name holding `obj` as JSON (NaN and infinities written as null)."""
    text = json.dumps(json_safe(obj), indent=1, allow_nan=False) + "\n"
    atomic_write(os.path.join(out_dir, name), text.encode("utf-8"))


def write_metrics(out_dir, summary, history):
    """metrics.json (`summary` with every epoch's record under "epochs") and metrics.csv (one
    row per epoch, a column per key any record has)."""
    write_json(out_dir, "metrics.json", dict(summary, epochs=history))
    keys = []
    for record in history:
        keys += [k for k in record if k not in keys]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(keys)
    for record in history:
        writer.writerow(["" if record.get(k) is None else record.get(k) for k in keys])
    atomic_write(os.path.join(out_dir, "metrics.csv"), buffer.getvalue().encode("utf-8"))
