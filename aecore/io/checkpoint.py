"""Checkpoints: a pair of files, written atomically, that load without pickle.

    checkpoint.npz    every array: model weights ("model:<name>"), optimizer buffers
                      ("optim:<index>:<buffer>"), and any other named group of arrays the caller
                      passes (the trainer keeps the best weights as "best:<name>")
    checkpoint.json   everything else: format and version, the npz's size and SHA-256, epoch,
                      config, metrics, optimizer hyper-parameters and step count, RNG states
                      (aecore.random's PCG64 state and the DataLoader's), trainer state

The npz is read with `numpy.load(..., allow_pickle=False)`; the JSON is plain JSON. Nothing in
a checkpoint can run code when it is loaded.

Writing, so that a crash at any instant leaves at least one good pair on disk:

    1. both files are written to temporary names in the run directory and fsync'ed
    2. if the current pair is good, it becomes the previous pair: hard links (or copies)
       checkpoint.npz -> checkpoint.prev.npz, then checkpoint.json -> checkpoint.prev.json
    3. os.replace(tmp npz, checkpoint.npz)       -- npz first
    4. os.replace(tmp json, checkpoint.json)     -- json last: this is the commit point
    5. fsync the directory

Between 3 and 4 the current pair disagrees (the JSON's hash names the old npz), so a reader
sees a CheckpointError for it and falls back to checkpoint.prev.*, which step 2 made good.
`load_checkpoint` checks the format, the npz size (truncation) and SHA-256 (corruption), and
that every array the JSON lists is in the npz; any failure raises CheckpointError naming the
file and the problem. With `fallback=True` (the default) it then tries the previous pair, and
says so in `Checkpoint.fallback_reason`.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass, field
from typing import Dict, Optional

import numpy as np

from .atomic import fsync_directory, unlink_quietly, write_temp_file

__all__ = ["CheckpointError", "Checkpoint", "save_checkpoint", "load_checkpoint",
           "checkpoint_exists", "verify_checkpoint", "json_safe", "FORMAT", "VERSION",
           "CURRENT", "PREVIOUS", "pack_optimizer_state", "unpack_optimizer_state"]

FORMAT = "aecore-checkpoint"
VERSION = 1
CURRENT = "checkpoint"        # checkpoint.npz + checkpoint.json
PREVIOUS = "checkpoint.prev"  # checkpoint.prev.npz + checkpoint.prev.json


class CheckpointError(Exception):
    """A checkpoint file is missing, truncated, corrupted, or does not match its partner."""


@dataclass
class Checkpoint:
    """A loaded checkpoint.

    arrays: {group: {name: ndarray}} e.g. arrays["model"]["enc.0.weight"]
    meta:   the JSON document (epoch, config, metrics, rng, optimizer, trainer, ...)
    path:   the JSON file it came from
    fallback_reason: None, or why the current pair was unusable and the previous one was loaded
    """

    arrays: Dict[str, Dict[str, np.ndarray]]
    meta: dict
    path: str
    fallback_reason: Optional[str] = None
    extra: dict = field(default_factory=dict)

    @property
    def epoch(self) -> int:
        return int(self.meta.get("epoch", 0))

    @property
    def config(self) -> dict:
        return self.meta.get("config", {})


# ---------------------------------------------------------------------------------------------
# JSON helpers
# ---------------------------------------------------------------------------------------------

def json_safe(obj):
    """A copy of `obj` that json.dumps(allow_nan=False) accepts: tuples -> lists, NumPy scalars
    and 0-d arrays -> Python numbers, NaN / +-Inf -> None, dict keys -> str."""
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return json_safe(obj.tolist())
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        value = float(obj)
        return value if math.isfinite(value) else None
    return obj


def _link_or_copy(src, dst, directory):
    """Make `dst` hold `src`'s bytes, atomically (a hard link, or a copy, under a temp name)."""
    fd, tmp = tempfile.mkstemp(prefix=".tmp-checkpoint-", suffix=".prev", dir=directory)
    os.close(fd)
    unlink_quietly(tmp)
    try:
        try:
            os.link(src, tmp)
        except OSError:  # no hard links on this file system
            shutil.copyfile(src, tmp)
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
        os.replace(tmp, dst)
    except BaseException:
        unlink_quietly(tmp)
        raise


def _paths(directory, stem):
    return os.path.join(directory, stem + ".npz"), os.path.join(directory, stem + ".json")


# ---------------------------------------------------------------------------------------------
# optimizer state <-> arrays + JSON
# ---------------------------------------------------------------------------------------------

def pack_optimizer_state(state_dict):
    """aecore.optim's state_dict() -> (arrays {"<index>:<buffer>": ndarray}, JSON-safe dict)."""
    arrays = {}
    buffers = []
    for index, saved in enumerate(state_dict["state"]):
        names = sorted(saved)
        buffers.append(names)
        for name in names:
            arrays[f"{index}:{name}"] = np.asarray(saved[name])
    meta = {"type": state_dict["type"], "hyper": json_safe(state_dict["hyper"]),
            "step_count": int(state_dict["step_count"]), "buffers": buffers}
    return arrays, meta


def unpack_optimizer_state(arrays, meta):
    """The inverse of pack_optimizer_state -> a dict for Optimizer.load_state_dict()."""
    state = []
    for index, names in enumerate(meta["buffers"]):
        state.append({name: arrays[f"{index}:{name}"] for name in names})
    return {"type": meta["type"], "hyper": meta["hyper"], "step_count": meta["step_count"],
            "state": state}


# ---------------------------------------------------------------------------------------------
# saving
# ---------------------------------------------------------------------------------------------

def _npz_bytes(arrays: Dict[str, Dict[str, np.ndarray]]):
    flat = {}
    listing = {}
    for group, named in arrays.items():
        if ":" in group:
            raise ValueError(f"array group names may not contain ':', got {group!r}")
        listing[group] = []
        for name, array in named.items():
            a = np.asarray(array)
            if a.dtype == object:
                raise TypeError(f"checkpoint array {group}:{name} has dtype object; only "
                                "numeric arrays can be saved without pickle")
            flat[f"{group}:{name}"] = a
            listing[group].append([name, a.dtype.str, list(a.shape)])
    buffer = io.BytesIO()
    np.savez(buffer, **flat)
    return buffer.getvalue(), listing


def _pair_is_good(directory, stem):
    try:
        _load_pair(directory, stem)
        return True
    except CheckpointError:
        return False


def save_checkpoint(directory, arrays: Dict[str, Dict[str, np.ndarray]], meta: dict) -> str:
    """Write checkpoint.npz + checkpoint.json into `directory` (see the module docstring).

    arrays: {group: {name: ndarray}}, e.g. {"model": model.state_dict(), "optim": {...}}
    meta:   JSON-safe information (json_safe() is applied; NaN/Inf become null)
    Returns the path of the JSON file. The previous good pair is kept as checkpoint.prev.*.
    """
    directory = os.path.abspath(os.fspath(directory))
    os.makedirs(directory, exist_ok=True)
    data, listing = _npz_bytes(arrays)
    npz_path, json_path = _paths(directory, CURRENT)
    document = dict(json_safe(meta))
    document.update({
        "format": FORMAT, "version": VERSION,
        "npz": {"file": os.path.basename(npz_path), "bytes": len(data),
                "sha256": hashlib.sha256(data).hexdigest(), "arrays": listing},
    })
    text = json.dumps(document, indent=1, allow_nan=False, sort_keys=False) + "\n"
    tmp_npz = write_temp_file(directory, data, ".npz", prefix=".tmp-checkpoint-")
    tmp_json = None
    try:
        tmp_json = write_temp_file(directory, text.encode("utf-8"), ".json", prefix=".tmp-checkpoint-")
        if _pair_is_good(directory, CURRENT):
            prev_npz, prev_json = _paths(directory, PREVIOUS)
            _link_or_copy(npz_path, prev_npz, directory)
            _link_or_copy(json_path, prev_json, directory)
        os.replace(tmp_npz, npz_path)
        tmp_npz = None
        os.replace(tmp_json, json_path)
        tmp_json = None
        fsync_directory(directory)
    finally:
        for tmp in (tmp_npz, tmp_json):
            if tmp is not None:
                unlink_quietly(tmp)
    return json_path


# ---------------------------------------------------------------------------------------------
# loading
# ---------------------------------------------------------------------------------------------

def _load_pair(directory, stem) -> Checkpoint:
    npz_path, json_path = _paths(directory, stem)
    if not os.path.isfile(json_path):
        raise CheckpointError(f"{json_path}: no such file")
    try:
        with open(json_path, "rb") as f:
            raw = f.read()
        meta = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise CheckpointError(f"{json_path}: not UTF-8 text ({e.reason} at byte {e.start}); "
                              "the file is corrupted") from None
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{json_path}: not valid JSON ({e.msg} at line {e.lineno}, "
                              f"column {e.colno}); the file is truncated or corrupted") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{json_path}: not an aecore checkpoint (no "
                              f"\"format\": \"{FORMAT}\" entry)")
    if meta.get("version") != VERSION:
        raise CheckpointError(f"{json_path}: checkpoint format version {meta.get('version')!r}; "
                              f"this aecore reads version {VERSION}")
    info = meta.get("npz")
    if not isinstance(info, dict) or not {"bytes", "sha256", "arrays"} <= set(info):
        raise CheckpointError(f"{json_path}: the \"npz\" entry (size, SHA-256, array list) is "
                              "missing or incomplete")
    if not os.path.isfile(npz_path):
        raise CheckpointError(f"{npz_path}: no such file (named by {json_path})")
    with open(npz_path, "rb") as f:
        data = f.read()
    if len(data) != info["bytes"]:
        kind = "truncated" if len(data) < info["bytes"] else "has extra bytes"
        raise CheckpointError(f"{npz_path}: {kind}: {len(data)} bytes, {json_path} says "
                              f"{info['bytes']}")
    digest = hashlib.sha256(data).hexdigest()
    if digest != info["sha256"]:
        raise CheckpointError(f"{npz_path}: SHA-256 mismatch: the file hashes to "
                              f"{digest[:16]}..., {json_path} expects {info['sha256'][:16]}...; "
                              "the file is corrupted or belongs to another checkpoint")
    arrays = {}
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            present = set(npz.files)
            for group, entries in info["arrays"].items():
                arrays[group] = {}
                for name, dtype, shape in entries:
                    key = f"{group}:{name}"
                    if key not in present:
                        raise CheckpointError(f"{npz_path}: array {key!r} listed in {json_path} "
                                              "is missing")
                    a = npz[key]
                    if a.dtype.str != dtype or list(a.shape) != list(shape):
                        raise CheckpointError(f"{npz_path}: array {key!r} is {a.dtype.str} "
                                              f"{list(a.shape)}, {json_path} says {dtype} {shape}")
                    arrays[group][name] = a
    except CheckpointError:
        raise
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError) as e:
        raise CheckpointError(f"{npz_path}: cannot be read as an npz archive ({e})") from None
    return Checkpoint(arrays, meta, json_path)


def checkpoint_exists(directory) -> bool:
    """True when `directory` holds a checkpoint.json or checkpoint.prev.json (good or not)."""
    return any(os.path.isfile(_paths(directory, stem)[1]) for stem in (CURRENT, PREVIOUS))


def verify_checkpoint(directory, which=CURRENT):
    """Raise CheckpointError unless the pair `which` in `directory` is complete and intact."""
    _load_pair(os.fspath(directory), which)


def load_checkpoint(directory, fallback=True) -> Checkpoint:
    """Load the checkpoint in `directory` (a run directory, or a checkpoint.json path).

    fallback: when the current pair is missing, truncated or corrupted, load checkpoint.prev.*
    instead and record why in `.fallback_reason`; when False (or the previous pair is bad as
    well) raise CheckpointError with every problem found. The files are never modified.
    """
    directory = os.fspath(directory)
    if os.path.isfile(directory) and directory.endswith(".json"):
        directory = os.path.dirname(os.path.abspath(directory))
    if not os.path.isdir(directory):
        raise CheckpointError(f"{directory}: no such run directory")
    try:
        return _load_pair(directory, CURRENT)
    except CheckpointError as current_error:
        if not fallback:
            raise
        prev_json = _paths(directory, PREVIOUS)[1]
        if not os.path.isfile(prev_json):
            if not os.path.isfile(_paths(directory, CURRENT)[1]):
                raise CheckpointError(f"{directory}: no checkpoint here (no checkpoint.json)") \
                    from None
            raise CheckpointError(f"{current_error}; no previous checkpoint to fall back "
                                  "to") from None
        try:
            checkpoint = _load_pair(directory, PREVIOUS)
        except CheckpointError as prev_error:
            raise CheckpointError(f"{current_error}; the previous checkpoint is unusable too: "
                                  f"{prev_error}") from None
        checkpoint.fallback_reason = str(current_error)
        return checkpoint
