"""The environment variables aecore reads, each checked in one place.

    AECORE_TIER           ref | numba | cuda: run every kernel on that tier (unset: by array type)
    AECORE_HOST_CACHE_MB  the most MiB the host buffer cache may hold (default 2048; 0 turns it off)
    AECORE_DATA           a directory where named data sets are looked for
    AECORE_CACHE_DIR      where measurements of this machine are cached (default ~/.cache/aecore)
    AECORE_DIST_TIMEOUT   data-parallel runs: seconds a rank waits for the others before it ends
                          the job (default 300)
    AECORE_CUDA_CONV      tiled | naive: which cuda-tier conv kernels run (default tiled; naive
                          is version 1, one thread per output, kept to read and to compare)

An empty variable counts as unset. `check_environment()` checks them all and raises SettingsError,
one line naming the variable, its value and what is accepted; the CLI calls it before it does
anything else. The kernels read AECORE_TIER and AECORE_HOST_CACHE_MB through `tier()` and
`host_cache_bytes()` when they need them, never at import, so a bad value never breaks
`import aecore`: the same error comes at first use. (aecore.data and aecore.inspect read
AECORE_DATA and AECORE_CACHE_DIR themselves; `data_dir()` and `cache_dir()` check them.)
"""

import math
import os
from pathlib import Path

DEFAULT_HOST_CACHE_MB = 2048
DEFAULT_DIST_TIMEOUT = 300.0    # long enough for a slow rank's first compile


class SettingsError(ValueError):
    """An AECORE_* environment variable with a value aecore cannot use."""

    def __init__(self, variable, value, accepted):
        super().__init__(f"{variable}={value!r}: {accepted}")
        self.variable, self.value = variable, value


def _read(variable):
    return os.environ.get(variable) or None


def tier():
    """The tier AECORE_TIER forces, or None when it is unset."""
    value = _read("AECORE_TIER")
    if value is None:
        return None
    problem = _tier_problem(value)
    if problem:
        raise SettingsError("AECORE_TIER", value, problem)
    return value


def _tier_problem(value):
    """Why `value` cannot be the tier here, or None when it can."""
    from .kernels import compile as kernel_compile
    from .kernels.registry import TIERS

    if value not in TIERS:
        return f"expected one of {', '.join(TIERS)} (or unset: each array's own tier)"
    if value == "numba" and not kernel_compile.NUMBA_AVAILABLE:
        return "Numba is not installed (pip install numba), so only ref can run here"
    if value == "cuda":
        if not kernel_compile.CUDA_KERNELS_AVAILABLE:
            return "numba.cuda does not import (pip install 'aecore[cuda]'); use ref or numba"
        if not (kernel_compile.CUDA_SIMULATOR or _gpu_usable()):
            return ("no GPU is usable here (CuPy is missing or sees no CUDA device); use ref or "
                    "numba, or run the cuda kernels under the simulator with NUMBA_ENABLE_CUDASIM=1")
    return None


_gpu = None


def _gpu_usable():
    """backend.gpu_available(), asked once: tier() runs before every kernel call."""
    global _gpu
    if _gpu is None:
        from .backend import gpu_available
        _gpu = gpu_available()
    return _gpu


def host_cache_mb():
    """AECORE_HOST_CACHE_MB as a number of MiB (DEFAULT_HOST_CACHE_MB when unset)."""
    value = _read("AECORE_HOST_CACHE_MB")
    if value is None:
        return DEFAULT_HOST_CACHE_MB
    return _number("AECORE_HOST_CACHE_MB", value, lambda megabytes: megabytes >= 0,
                   f"expected a finite number of MiB >= 0 (0 turns the host cache off; unset "
                   f"means {DEFAULT_HOST_CACHE_MB})")


def _number(variable, value, acceptable, accepted):
    """float(value) when it is finite and acceptable(it), else SettingsError saying `accepted`."""
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not (math.isfinite(number) and acceptable(number)):
        raise SettingsError(variable, value, accepted)
    return number


def dist_timeout():
    """AECORE_DIST_TIMEOUT in seconds (DEFAULT_DIST_TIMEOUT when unset)."""
    value = _read("AECORE_DIST_TIMEOUT")
    if value is None:
        return DEFAULT_DIST_TIMEOUT
    return _number("AECORE_DIST_TIMEOUT", value, lambda seconds: seconds > 0,
                   f"expected a positive number of seconds (unset means "
                   f"{DEFAULT_DIST_TIMEOUT:g})")


CUDA_CONV_VERSIONS = ("tiled", "naive")


def cuda_conv():
    """AECORE_CUDA_CONV: "tiled" (the default) or "naive"."""
    value = _read("AECORE_CUDA_CONV")
    if value is None:
        return CUDA_CONV_VERSIONS[0]
    if value not in CUDA_CONV_VERSIONS:
        raise SettingsError("AECORE_CUDA_CONV", value,
                            f"expected {' or '.join(CUDA_CONV_VERSIONS)} (unset means tiled)")
    return value


def host_cache_bytes():
    """AECORE_HOST_CACHE_MB in bytes."""
    return int(host_cache_mb() * (1 << 20))


def data_dir():
    """AECORE_DATA as a Path, or None when it is unset; it must be an existing directory."""
    value = _read("AECORE_DATA")
    if value is None:
        return None
    path = Path(value).expanduser()
    if not path.exists():
        raise SettingsError("AECORE_DATA", value, "no such directory; expected the directory "
                            "that holds your data sets (or leave AECORE_DATA unset)")
    if not path.is_dir():
        raise SettingsError("AECORE_DATA", value, "not a directory; expected the directory "
                            "that holds your data sets (or leave AECORE_DATA unset)")
    return path


def cache_dir():
    """AECORE_CACHE_DIR as a Path (~/.cache/aecore when unset); made when first written to, so it
    need not exist yet, but it must not be a file."""
    value = _read("AECORE_CACHE_DIR")
    path = Path(value).expanduser() if value else Path.home() / ".cache" / "aecore"
    if value is not None and path.exists() and not path.is_dir():
        raise SettingsError("AECORE_CACHE_DIR", value, "not a directory; expected a directory "
                            "for aecore's cached measurements (made if missing)")
    return path


def check_environment():
    """Check every AECORE_* variable; returns {variable: resolved value} or raises SettingsError."""
    return {"AECORE_TIER": tier(), "AECORE_HOST_CACHE_MB": host_cache_mb(),
            "AECORE_DATA": data_dir(), "AECORE_CACHE_DIR": cache_dir(),
            "AECORE_DIST_TIMEOUT": dist_timeout(), "AECORE_CUDA_CONV": cuda_conv()}
