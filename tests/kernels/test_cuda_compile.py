"""Every CUDA kernel compiles for real, for float32 and float64, without a GPU.

The simulator runs kernels as Python and checks no types, so this test compiles each kernel that
a cuda-tier op launches to PTX (numba.cuda.compile_ptx with NVRTC; no driver needed) for the
argument types of a real launch. Skipped in the simulator process and where numba.cuda or NVRTC is
missing.
"""

import re

import numpy as np
import pytest

from aecore import kernels
from aecore.kernels import compile as kernel_compile
from sample_calls import sample_calls

pytestmark = pytest.mark.skipif(
    kernel_compile.cuda is None or kernel_compile.CUDA_SIMULATOR,
    reason="needs numba.cuda (numba-cuda) outside the CUDA simulator")


# cuda-tier ops that run a CuPy reduction instead of a numba.cuda kernel (see their docstrings)
CUPY_REDUCTIONS = {"conv2d_backward_bias"}


def test_every_cuda_op_is_covered():
    cuda_ops = {op for op in kernels.ops() if "cuda" in kernels.tiers_of(op)}
    covered = {op for op, _ in sample_calls(np.float32)}
    assert cuda_ops <= covered, f"add sample calls for {sorted(cuda_ops - covered)}"


SIGNED_64_BIT_DIVISION = re.compile(r"\b(div|rem)\.s64\b")


@pytest.mark.parametrize("conv_version", ["tiled", "naive"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("op", [op for op, _ in sample_calls(np.float32)])
def test_cuda_kernels_compile_to_ptx(op, dtype, conv_version, monkeypatch):
    """... and divide their indices unsigned (32-bit where the sizes allow), never with Python's
    64-bit floor division."""
    if conv_version == "naive" and not op.startswith("conv"):
        pytest.skip("AECORE_CUDA_CONV chooses between conv kernels only")
    monkeypatch.setenv("AECORE_CUDA_CONV", conv_version)
    if "cuda" not in kernels.tiers_of(op):
        pytest.skip(f"{op} has no cuda tier")
    if op in CUPY_REDUCTIONS:
        pytest.skip(f"{op}'s cuda tier is CuPy's own reduction: no numba.cuda kernel to compile")
    args = dict(sample_calls(dtype))[op]
    try:
        with kernel_compile.compile_only() as compiled:
            kernels.implementations(op)["cuda"](*args)
    except Exception as error:  # NVRTC missing is an environment problem, not a kernel bug
        if "NVRTC" in str(error) or "nvrtc" in str(error):
            pytest.skip(f"NVRTC is not available: {error}")
        raise
    assert compiled, f"{op} launched no kernel through launch_1d"
    for name, types, ptx in compiled:
        assert ".entry" in ptx, f"{name}{types}: no kernel entry in the PTX"
        float_types = {str(t.dtype) for t in types if hasattr(t, "dtype") and str(t.dtype).startswith("float")}
        assert float_types <= {np.dtype(dtype).name}, f"{name}: mixed float types {float_types}"
        assert not SIGNED_64_BIT_DIVISION.search(ptx), f"{name}: signed 64-bit index division"
