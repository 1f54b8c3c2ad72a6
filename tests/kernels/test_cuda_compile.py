"""Every CUDA kernel compiles for real, for float32 and float64, without a GPU.

The simulator runs kernels as Python and checks no types, so this test compiles each kernel that
a cuda-tier op launches to PTX (numba.cuda.compile_ptx with NVRTC; no driver needed) for the
argument types of a real launch. Skipped in the simulator process and where numba.cuda or NVRTC is
missing.
"""

import numpy as np
import pytest

from aecore import kernels
from aecore.kernels import compile as kernel_compile
from aecore.kernels import geometry

pytestmark = pytest.mark.skipif(
    kernel_compile.cuda is None or kernel_compile.CUDA_SIMULATOR,
    reason="needs numba.cuda (numba-cuda) outside the CUDA simulator")


# cuda-tier ops that run a CuPy reduction instead of a numba.cuda kernel (see their docstrings)
CUPY_REDUCTIONS = {"conv2d_backward_bias"}


def sample_calls(dtype):
    """(op name, args) for one launch of every cuda-tier op, on small arrays of `dtype`."""
    rng = np.random.default_rng(0)

    def rand(*shape):
        return rng.standard_normal(shape).astype(dtype)

    x = rand(2, 3, 5, 5)
    conv = geometry.conv2d_geometry(x.shape, (4, 3, 3, 3), stride=2, padding="same", b_shape=(4,))
    conv_out = rand(2, 4, conv["out_h"], conv["out_w"])
    convt = geometry.conv_transpose2d_geometry(x.shape, (3, 4, 3, 3), stride=2, padding=1,
                                               output_padding=1, b_shape=(4,))
    convt_out = rand(2, 4, convt["out_h"], convt["out_w"])
    pool = geometry.max_pool2d_geometry(x.shape, 2, 2, "same")
    pool_out = rand(2, 3, pool["out_h"], pool["out_w"])
    argmax = np.zeros(pool_out.shape, dtype=np.int64)
    near = geometry.interpolate_geometry(x.shape, size=(7, 9), mode="nearest")
    bil = geometry.interpolate_geometry(x.shape, scale_factor=1.5, mode="bilinear", align_corners=False)
    return [
        ("conv2d_forward", (x, rand(4, 3, 3, 3), rand(4), conv)),
        ("conv2d_backward_input", (conv_out, rand(4, 3, 3, 3), conv)),
        ("conv2d_backward_weight", (conv_out, x, conv)),
        ("conv_transpose2d_forward", (x, rand(3, 4, 3, 3), rand(4), convt)),
        ("conv_transpose2d_backward_input", (convt_out, rand(3, 4, 3, 3), convt)),
        ("conv_transpose2d_backward_weight", (convt_out, x, convt)),
        ("max_pool2d_forward", (x, pool)),
        ("max_pool2d_backward", (pool_out, argmax, pool)),
        ("upsample_nearest_forward", (x, near)),
        ("upsample_nearest_backward", (rand(2, 3, 7, 9), near)),
        ("upsample_bilinear_forward", (x, bil)),
        ("upsample_bilinear_backward", (rand(2, 3, bil["out_h"], bil["out_w"]), bil)),
        ("relu_forward", (x,)),
        ("relu_backward", (rand(2, 3, 5, 5), x)),
        ("conv2d_backward_bias", (conv_out,)),
    ]


def test_every_cuda_op_is_covered():
    cuda_ops = {op for op in kernels.ops() if "cuda" in kernels.tiers_of(op)}
    covered = {op for op, _ in sample_calls(np.float32)}
    assert cuda_ops <= covered, f"add sample calls for {sorted(cuda_ops - covered)}"


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("op", [op for op, _ in sample_calls(np.float32)])
def test_cuda_kernels_compile_to_ptx(op, dtype):
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
