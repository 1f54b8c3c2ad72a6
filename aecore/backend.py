"""Devices and array modules: NumPy on "cpu", CuPy on "cuda".

`get_array_module(*arrays)` returns the module (numpy or cupy) that owns the arrays, in the
DeZero/Chainer style, so the same op code runs on both. Whether a GPU can be used is decided by
`cupy.cuda.is_available()` (a driver and a device), not by whether `import cupy` succeeds: CuPy
installs fine on machines with no GPU.
"""

import numpy as np

DEVICES = ("cpu", "cuda")

_cupy = None
_cupy_checked = False


def cupy_module():
    """The cupy module if it imports, else None (imported once, lazily)."""
    global _cupy, _cupy_checked
    if not _cupy_checked:
        _cupy_checked = True
        try:
            import cupy
            _cupy = cupy
        except Exception:  # ImportError, or a CuPy built for another CUDA version
            _cupy = None
    return _cupy


def gpu_available():
    """True when CuPy imports and sees at least one CUDA device."""
    cupy = cupy_module()
    if cupy is None:
        return False
    try:
        return bool(cupy.cuda.is_available())
    except Exception:
        return False


def is_cupy_array(array):
    """Whether `array` is a CuPy array: the one test of it in aecore and its kernels, read from
    the type's module so that answering never imports cupy."""
    return type(array).__module__.split(".")[0] == "cupy"


def get_array_module(*arrays):
    """numpy, or cupy when any argument is a CuPy array."""
    for array in arrays:
        if is_cupy_array(array):
            return cupy_module()
    return np


def normalize_device(device):
    """Check a device string; accepts "cpu", "cuda" and "cuda:0"."""
    if device is None:
        return "cpu"
    if not isinstance(device, str):
        raise TypeError(f"device must be 'cpu' or 'cuda', got {device!r}")
    name = device.lower()
    if name in ("cuda:0", "gpu"):
        name = "cuda"
    if name not in DEVICES:
        raise ValueError(f"device must be 'cpu' or 'cuda', got {device!r}")
    if name == "cuda" and not gpu_available():
        if cupy_module() is None:
            reason = "CuPy is not installed"
        else:
            reason = "CuPy is installed but sees no CUDA device (cupy.cuda.is_available() is False)"
        raise RuntimeError(
            f"device 'cuda' was requested but no GPU is usable: {reason}. "
            "Install the GPU extra on a machine with an NVIDIA GPU and driver "
            "(pip install 'aecore[cuda]'), or use device='cpu'.")
    return name


def device_of(array):
    return "cuda" if is_cupy_array(array) else "cpu"


def to_device(array, device):
    """Copy `array` to `device` ("cpu" or "cuda"); returns it unchanged if already there."""
    device = normalize_device(device)
    if device == "cpu":
        if is_cupy_array(array):
            return array.get()
        return np.asarray(array)
    cupy = cupy_module()
    return cupy.asarray(array)


# Small constant tables (index and fold matrices) on each GPU, copied there once: a copy per
# use would be a host-to-device transfer every step. Keyed by the table's bytes, so equal tables
# share one copy; bounded, since geometries come and go.
_device_constants = {}


def device_constant(xp, table, dtype=None):
    """The host array `table` (cast to `dtype`) as an array of module `xp`: itself for NumPy;
    for CuPy a copy made once per table, dtype and device, then reused (never write to it)."""
    if xp is np:
        return np.asarray(table, dtype=dtype)
    table = np.ascontiguousarray(table, dtype=dtype)
    key = (table.shape, table.dtype.str, table.tobytes(), xp.cuda.Device().id)
    copy = _device_constants.get(key)
    if copy is None:
        if len(_device_constants) > 256:
            _device_constants.clear()
        copy = _device_constants[key] = xp.asarray(table)
    return copy
