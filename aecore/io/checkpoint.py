"""Checkpoints: a pair of files, written atomically, that load without pickle.

    checkpoint.npz    every array: model weights ("model:<name>"), optimizer buffers
                      ("optim:<index>:<buffer>"), and any other named group of arrays the caller
                      passes (the trainer keeps the best weights as "best:<name>")
    checkpoint.json   everything else: format and version, the npz's size and SHA-256, epoch,
                      config, metrics, optimizer hyper-parameters and step count, RNG states
                      (aecore.random's PCG64 state and the DataLoader's), trainer state, and
                      "sha256": the SHA-256 of the document itself (its canonical JSON: sorted
                      keys, no spaces, without this entry)

The npz is read with `numpy.load(..., allow_pickle=False)`; the JSON is plain JSON. Nothing in
a checkpoint can run code when it is loaded. Both files are covered by checksums: the JSON
holds the npz's hash and its own, so a change to either file (a flipped digit of a saved random
state, an edited epoch) is detected, never resumed from.

Writing, so that a crash at any instant leaves at least one good pair on disk:

    1. both files are written to temporary names in the run directory and fsync'ed
    2. if the current pair is good, it becomes the previous pair: hard links (or copies)
       checkpoint.npz -> checkpoint.prev.npz, then checkpoint.json -> checkpoint.prev.json
    3. os.replace(tmp npz, checkpoint.npz)       -- npz first
    4. os.replace(tmp json, checkpoint.json)     -- json last: this is the commit point
    5. fsync the directory

Between 3 and 4 the current pair disagrees (the JSON's hash names the old npz), so a reader
sees a CheckpointError for it and falls back to checkpoint.prev.*, which step 2 made good.
Arrays holding NaN or Inf are refused (NonFiniteCheckpointError): a checkpoint that cannot
train on is never written as the good one.

`load_checkpoint` checks the format, both checksums, the npz size (truncation), and that every
array the JSON lists is in the npz; a caller's `validate` function can check the contents too
(the trainer rebuilds the model, optimizer and loader from them). Any failure is a
CheckpointError naming the file and the problem; with `fallback=True` (the default) the
previous pair is tried next, and `Checkpoint.fallback_reason` says why.
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
           "NonFiniteCheckpointError", "document_sha256",
           "CURRENT", "PREVIOUS", "pack_optimizer_state", "unpack_optimizer_state"]

FORMAT = "aecore-checkpoint"
VERSION = 2          # 2: the JSON carries its own SHA-256; version 1 files (without it) still load
READABLE_VERSIONS = (1, 2)
CURRENT = "checkpoint"        # checkpoint.npz + checkpoint.json
PREVIOUS = "checkpoint.prev"  # checkpoint.prev.npz + checkpoint.prev.json


class CheckpointError(Exception):
    """A checkpoint file is missing, truncated, corrupted, or does not match its partner."""


class NonFiniteCheckpointError(ValueError):
    """An array handed to save_checkpoint holds NaN or Inf; .key names the first such array."""

    def __init__(self, message, key):
        super().__init__(message)
        self.key = key


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
    if os.path.exists(dst) and os.path.samefile(src, dst):
        return  # already the same file (renaming a link onto its twin would do nothing)
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
    finally:
        unlink_quietly(tmp)  # gone after the rename, unless it was a no-op


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
            if a.dtype.kind in "fc" and not np.isfinite(a).all():
                raise NonFiniteCheckpointError(
                    f"checkpoint array {group}:{name} holds NaN or Inf; a checkpoint that "
                    "cannot be trained on is not written", f"{group}:{name}")
            flat[f"{group}:{name}"] = a
            listing[group].append([name, a.dtype.str, list(a.shape)])
    buffer = io.BytesIO()
    np.savez(buffer, **flat)
    return buffer.getvalue(), listing


def document_sha256(document):
    """SHA-256 of a checkpoint JSON document without its own "sha256" entry, over its canonical
    form (sorted keys, no spaces), so that parsing and re-serializing gives the same hash."""
    body = {k: v for k, v in document.items() if k != "sha256"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


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
    document["sha256"] = document_sha256(document)
    text = json.dumps(document, indent=1, allow_nan=False, sort_keys=False) + "\n"
    tmp_npz = write_temp_file(directory, data, ".npz", prefix=".tmp-checkpoint-", target=npz_path)
    tmp_json = None
    try:
        tmp_json = write_temp_file(directory, text.encode("utf-8"), ".json",
                                   prefix=".tmp-checkpoint-", target=json_path)
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

def _is_npz_entry(info):
    """True when `info` has the shape save_checkpoint writes for the "npz" entry."""
    if not (isinstance(info, dict) and isinstance(info.get("bytes"), int)
            and isinstance(info.get("sha256"), str) and isinstance(info.get("arrays"), dict)):
        return False
    for entries in info["arrays"].values():
        if not isinstance(entries, list):
            return False
        for entry in entries:
            if not (isinstance(entry, list) and len(entry) == 3 and isinstance(entry[0], str)
                    and isinstance(entry[1], str) and isinstance(entry[2], list)):
                return False
    return True


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
    except RecursionError:
        raise CheckpointError(f"{json_path}: nested too deeply to be a checkpoint") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{json_path}: not an aecore checkpoint (no "
                              f"\"format\": \"{FORMAT}\" entry)")
    if meta.get("version") not in READABLE_VERSIONS:
        raise CheckpointError(f"{json_path}: checkpoint format version {meta.get('version')!r}; "
                              f"this aecore reads versions {READABLE_VERSIONS}")
    if meta["version"] >= 2:
        expected = meta.get("sha256")
        try:
            digest = document_sha256(meta)
        except (TypeError, ValueError) as e:
            raise CheckpointError(f"{json_path}: cannot be hashed ({e})") from None
        if digest != expected:
            raise CheckpointError(f"{json_path}: SHA-256 mismatch: the document hashes to "
                                  f"{digest[:16]}..., its \"sha256\" entry says "
                                  f"{str(expected)[:16]}...; the file was changed after it "
                                  "was written")
    info = meta.get("npz")
    if not _is_npz_entry(info):
        raise CheckpointError(f"{json_path}: the \"npz\" entry (size, SHA-256, array list) is "
                              "missing, incomplete or malformed")
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


def load_checkpoint(directory, fallback=True, validate=None) -> Checkpoint:
    """Load the checkpoint in `directory` (a run directory, or a checkpoint.json path).

    fallback: when the current pair is missing, truncated, corrupted or fails `validate`, load
    checkpoint.prev.* instead and record why in `.fallback_reason`; when False (or the previous
    pair is bad as well) raise CheckpointError naming every file tried and what is wrong with it.
    validate: None, or a function of the loaded Checkpoint that raises CheckpointError when its
    contents cannot be used; what it returns is kept in `Checkpoint.extra["validated"]`.
    The files are never modified.
    """
    directory = os.fspath(directory)
    if os.path.isfile(directory) and directory.endswith(".json"):
        directory = os.path.dirname(os.path.abspath(directory))
    if not os.path.isdir(directory):
        raise CheckpointError(f"{directory}: no such run directory")
    if not checkpoint_exists(directory):
        raise CheckpointError(f"{directory}: no checkpoint here (no checkpoint.json)")
    problems = []
    for stem in (CURRENT, PREVIOUS) if fallback else (CURRENT,):
        if stem == PREVIOUS and not os.path.isfile(_paths(directory, PREVIOUS)[1]):
            problems.append("no previous checkpoint to fall back to")
            break
        try:
            checkpoint = _load_pair(directory, stem)
            if validate is not None:
                checkpoint.extra["validated"] = validate(checkpoint)
        except CheckpointError as e:
            problems.append(str(e))
            continue
        if problems:
            checkpoint.fallback_reason = problems[0]
        return checkpoint
    if len(problems) == 1:
        raise CheckpointError(problems[0])
    current, previous = problems
    if previous.startswith("no previous"):
        raise CheckpointError(f"{current}; {previous}")
    raise CheckpointError(f"{current}; the previous checkpoint is unusable too: {previous}")
