"""ae.save / ae.load: named arrays (a state_dict) in a file that loads without running code.

    ae.save(model, "cae.safetensors")             # a Module: its state_dict()
    ae.save({"w": w, "b": b}, "arrays.safetensors")
    model.load_state_dict(ae.load("cae.safetensors"))

save(obj, path): obj is a Module (its state_dict() is written) or a dict {name: Tensor or
array}. The file is safetensors (written with the safetensors package's NumPy API, readable by
safetensors in any language) when that package is installed; without it, an npz archive (the
checkpoint files' format, aecore.io.checkpoint), and a warning says so. Either way the file is
written atomically (a temporary file renamed into place): a reader never sees half a file.

load(path) returns what save wrote: a dict {name: numpy array} in the saved order, so a saved
Module comes back as its state_dict ("load_state_dict it"), as torch.load returns the state_dict
torch.save was given. The format is read from the file's first bytes, not its name. Nothing in
either format can run code when loaded (npz is read with allow_pickle=False). A file that is
neither, or is truncated or damaged, raises ModelFileError naming the file.
"""

import io
import json
import os
import struct
import warnings
import zipfile
from collections import OrderedDict

import numpy as np

from ..backend import to_device
from .atomic import atomic_write

__all__ = ["save", "load", "ModelFileError", "FORMATS"]

FORMATS = ("safetensors", "npz")
_ORDER_KEY = "aecore.names"      # safetensors metadata: the names in the order they were saved
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")   # a zip archive with entries / an empty one


class ModelFileError(ValueError):
    """A file given to load() is not a safetensors or npz file of arrays, or is damaged."""


def _safetensors_numpy():
    """safetensors.numpy, or None when the package is not installed."""
    try:
        import safetensors.numpy
    except ImportError:
        return None
    return safetensors.numpy


def _arrays_of(obj):
    """The {name: host numpy array} to save from a Module or a dict of Tensors / arrays."""
    from ..nn import Module
    from ..tensor import Tensor
    if isinstance(obj, Module):
        obj = obj.state_dict()
    if not isinstance(obj, dict):
        raise TypeError(f"save: obj must be a Module or a dict of name -> Tensor or array, got "
                        f"{type(obj).__name__}")
    arrays = OrderedDict()
    for name, value in obj.items():
        if not isinstance(name, str) or not name:
            raise TypeError(f"save: every name must be a non-empty str, got {name!r}")
        data = value.data if isinstance(value, Tensor) else value
        if not hasattr(data, "dtype"):
            raise TypeError(f"save: {name!r} must be a Tensor or an array, got "
                            f"{type(value).__name__}")
        array = np.asarray(to_device(data, "cpu"), order="C")   # (ascontiguousarray makes 0-d 1-d)
        if array.dtype.kind not in "biuf":
            raise TypeError(f"save: {name!r} has dtype {array.dtype}; only bool, integer and "
                            "float arrays can be saved")
        arrays[name] = array
    return arrays


def save(obj, path, *, format=None):  # noqa: A002 - the natural name
    """Write obj's arrays to `path` atomically; returns the format written.

    format: "safetensors" (needs the package), "npz", or None: safetensors when installed,
    else npz with a warning naming the format written.
    """
    if format not in (None,) + FORMATS:
        raise ValueError(f"save: format must be one of {', '.join(map(repr, FORMATS))} or None, "
                         f"got {format!r}")
    arrays = _arrays_of(obj)
    path = os.fspath(path)
    writer = _safetensors_numpy()
    if format == "safetensors" and writer is None:
        raise ImportError("save: format='safetensors' needs the safetensors package: pip "
                          "install safetensors (or aecore[safetensors])")
    if format is None:
        format = "safetensors" if writer is not None else "npz"
        if writer is None:
            warnings.warn(f"save: the safetensors package is not installed; wrote {path} as an "
                          "npz archive (ae.load reads it; pip install safetensors for "
                          "safetensors files)", stacklevel=2)
    if format == "safetensors":
        data = writer.save(dict(arrays), metadata={"format": "np",
                                                   _ORDER_KEY: json.dumps(list(arrays))})
    else:
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        data = buffer.getvalue()
    atomic_write(path, data)
    return format


def _sniff(path, head):
    """'safetensors' or 'npz' from a file's first bytes; ModelFileError naming the file else."""
    if head[:4] in _ZIP_MAGIC:
        return "npz"
    if len(head) >= 9 and head[8:9] == b"{":    # u64 little-endian header size, then JSON
        return "safetensors"
    raise ModelFileError(f"{path}: not a safetensors or npz file (it starts with {head[:8]!r})")


def load(path):
    """The {name: numpy array} that save wrote to `path` (see the module docstring)."""
    path = os.fspath(path)
    with open(path, "rb") as f:
        head = f.read(9)
    kind = _sniff(path, head)
    if kind == "npz":
        return _load_npz(path)
    return _load_safetensors(path)


def _load_npz(path):
    try:
        with np.load(path, allow_pickle=False) as archive:
            return OrderedDict((name, archive[name]) for name in archive.files)
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError) as e:
        raise ModelFileError(f"{path}: a damaged npz archive ({e})") from None


def _load_safetensors(path):
    reader = _safetensors_numpy()
    if reader is None:
        raise ModelFileError(f"{path}: a safetensors file, and the safetensors package is not "
                             "installed: pip install safetensors")
    try:
        arrays = reader.load_file(path)
        with open(path, "rb") as f:
            (size,) = struct.unpack("<Q", f.read(8))
            metadata = json.loads(f.read(size)).get("__metadata__") or {}
        order = json.loads(metadata.get(_ORDER_KEY, "[]"))
    except Exception as e:  # noqa: BLE001 - safetensors raises its own error types
        message = " ".join(str(e).split()) or type(e).__name__
        raise ModelFileError(f"{path}: a damaged safetensors file ({message})") from None
    if sorted(order) != sorted(arrays):
        order = list(arrays)
    return OrderedDict((name, arrays[name]) for name in order)
