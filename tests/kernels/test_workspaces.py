"""Large kernel workspaces come from the host buffer cache, not from an allocation inside a
task: there an np.empty of a megabyte is glibc's mmap, whose fresh pages fault on every call.
How much that costs depended on what else the process had imported: with numba-cuda loaded the
Winograd conv ran at half the time it took in a core install (kernels/NOTES.md, "conv2d")."""

import subprocess
import sys
import textwrap

import pytest

from aecore.kernels import compile as kernel_compile

pytestmark = pytest.mark.skipif(not kernel_compile.NUMBA_AVAILABLE, reason="needs Numba")

SCRIPT = textwrap.dedent("""
    import sys
    sys.modules["numba.cuda"] = None          # as a core install runs: no numba-cuda
    import resource
    import numpy as np
    from aecore.kernels import geometry, registry
    from aecore.kernels.conv2d import uses_winograd
    rng = np.random.default_rng(0)
    x = rng.standard_normal((200, 32, 28, 28)).astype(np.float32)
    w = rng.standard_normal((32, 32, 3, 3)).astype(np.float32)
    b = np.zeros(32, np.float32)
    geom = geometry.conv2d_geometry(x.shape, w.shape, stride=1, padding="same", b_shape=b.shape)
    assert uses_winograd(w.shape, (1, 1), out_hw=x.shape[2:])
    tier, conv = registry.dispatch("conv2d_forward", x)
    for _ in range(3):
        conv(x, w, b, geom)                   # compiled, and the host cache holds the buffers
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(5):
        conv(x, w, b, geom)
    print(tier, (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 5)
""")


def test_winograd_faults_in_no_fresh_pages_per_call():
    run = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                         timeout=600)
    assert run.returncode == 0, run.stderr
    tier, faults = run.stdout.split()
    assert tier == "numba"
    # V and M allocated in each task (1 MiB each): 19,136 faults a call at this batch; (a batch
    # of 32 showed none: glibc raised its mmap threshold there)
    assert float(faults) < 1000, f"{faults} page faults per Winograd call"
