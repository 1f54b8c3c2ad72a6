"""OpenBLAS's idle threads, settled before NumPy loads OpenBLAS (`import aecore` does it first).

After each matmul, OpenBLAS's worker threads keep spinning, waiting for the next one, for 2**28
CPU cycles (about a tenth of a second) before they sleep. On a machine whose cores Numba's
kernels use too, the spinning threads take cores from every kernel in that tenth of a second:
the conv VAE's step, whose Linear layers sit between its convs, took 244 ms instead of 161
(kernels/NOTES.md, "thread pools"). 2**22 cycles (a millisecond or two) still covers the gaps
between a dense model's matmuls. OpenBLAS reads OPENBLAS_THREAD_TIMEOUT (log2 of the cycles)
once, when NumPy loads it; so aecore sets it for that moment only, when NumPy is not loaded yet
and the user has not chosen a value, and then takes it out of the environment again, so that
child processes start with the user's own environment. A program that imports NumPy before
aecore keeps OpenBLAS's default, unless it sets OPENBLAS_THREAD_TIMEOUT=22 itself.
"""

import os
import sys

OPENBLAS_THREAD_TIMEOUT = "22"
_USER_SETTINGS = ("OPENBLAS_THREAD_TIMEOUT", "GOTO_THREAD_TIMEOUT")


def import_numpy():
    """Import NumPy, with aecore's OpenBLAS spin when this loads it; True when that applied."""
    if "numpy" in sys.modules or any(name in os.environ for name in _USER_SETTINGS):
        import numpy  # noqa: F401
        return False
    os.environ["OPENBLAS_THREAD_TIMEOUT"] = OPENBLAS_THREAD_TIMEOUT
    try:
        import numpy  # noqa: F401,F811  (loads OpenBLAS, which reads the variable)
    finally:
        del os.environ["OPENBLAS_THREAD_TIMEOUT"]
    return True
