"""The cuda tier's two conv versions (AECORE_CUDA_CONV): tiled (version 2, the default) and
naive (version 1), each against the reference on drawn geometry, through the 32-bit and the
64-bit index paths and both tile heights; the tiled launch configuration (every output covered, the CAE's shapes
filling a GPU); the split weight gradient's chunk sum, bit-identical run after run."""

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aecore import kernels
from aecore.kernels import compile as kernel_compile
from aecore.kernels import geometry
from aecore.kernels.conv2d import cuda_tiled
from aecore.kernels.conv2d.cuda_tiled import (TILE_K, TILE_M, TILE_N, TARGET_BLOCKS,
                                              choose_tile_m, tiled_grid, weight_chunks)
from strategies import conv2d_cases, conv_transpose2d_cases
from tiers import run_tier, run_twice, skip_if_none, tier_params, tiny_shapes

CONV = ("conv2d_forward", "conv2d_backward_input", "conv2d_backward_weight")
CONVT = ("conv_transpose2d_forward", "conv_transpose2d_backward_input",
         "conv_transpose2d_backward_weight")
CUDA = skip_if_none([t for t in tier_params(*CONV, *CONVT) if t == "cuda"])
VERSIONS = ["tiled", "naive"]
TOL = dict(rtol=1e-4, atol=1e-4)
# the fixtures only set the environment, the same for every example
# (2 examples under the simulator, where a tiled launch runs 256 Python threads a block)
few = settings(deadline=None, max_examples=2 if tiny_shapes() else 10,
               suppress_health_check=[HealthCheck.function_scoped_fixture])
small = dict(max_n=2, max_c=4, max_hw=6)

# an H100 / H200 has 132 SMs; "several blocks per SM" is at least this many blocks in all
SMS = 132


@pytest.fixture(params=VERSIONS)
def version(request, monkeypatch):
    monkeypatch.setenv("AECORE_CUDA_CONV", request.param)
    return request.param


@pytest.fixture(params=["32-bit index, 64-row tile", "64-bit index, 32-row tile"])
def index_width(request, monkeypatch):
    """The narrow (unsigned 32-bit) index path with the big tile, or the wide path (forced for
    tiny shapes) with the small tile (which tiny shapes would always take)."""
    if request.param.startswith("64-bit"):
        monkeypatch.setattr(kernel_compile, "WIDE_INDEX_LIMIT", 0)
        monkeypatch.setattr(cuda_tiled, "MIN_BLOCKS", 10**9)
    else:
        monkeypatch.setattr(cuda_tiled, "MIN_BLOCKS", 0)
    return request.param


def arrays(x_shape, w_shape, c_out, geom, seed):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(x_shape).astype(np.float32),
            rng.standard_normal(w_shape).astype(np.float32),
            rng.standard_normal(c_out).astype(np.float32),
            rng.standard_normal((x_shape[0], c_out, geom.out_h, geom.out_w)).astype(np.float32))


def check_against_reference(ops, tier, x, w, b, grad_y, geom):
    forward, backward_input, backward_weight = ops
    for op, args in ((forward, (x, w, b, geom)), (forward, (x, w, None, geom)),
                     (backward_input, (grad_y, w, geom)), (backward_weight, (grad_y, x, geom))):
        np.testing.assert_allclose(run_tier(op, tier, *args), run_tier(op, "ref", *args),
                                   err_msg=op, **TOL)


@pytest.mark.parametrize("tier", CUDA)
@few
@given(case=conv2d_cases(dilation_groups=True, **small), seed=st.integers(0, 2**32 - 1))
def test_conv2d_both_versions_match_the_reference(tier, version, index_width, case, seed):
    x_shape, w_shape, stride, padding, dilation, groups = case
    geom = geometry.conv2d_geometry(x_shape, w_shape, stride, padding, b_shape=(w_shape[0],),
                                    dilation=dilation, groups=groups)
    check_against_reference(CONV, tier, *arrays(x_shape, w_shape, w_shape[0], geom, seed), geom)


@pytest.mark.parametrize("tier", CUDA)
@few
@given(case=conv_transpose2d_cases(dilation_groups=True, **small), seed=st.integers(0, 2**32 - 1))
def test_conv_transpose2d_both_versions_match_the_reference(tier, version, index_width, case,
                                                            seed):
    x_shape, w_shape, stride, padding, output_padding, dilation, groups = case
    c_out = w_shape[1] * groups
    geom = geometry.conv_transpose2d_geometry(x_shape, w_shape, stride, padding, output_padding,
                                              b_shape=(c_out,), dilation=dilation, groups=groups)
    check_against_reference(CONVT, tier, *arrays(x_shape, w_shape, c_out, geom, seed), geom)


@pytest.mark.parametrize("tier", CUDA)
def test_split_weight_gradient_is_bit_identical_run_after_run(tier, monkeypatch):
    """Several chunks of K (small chunks forced), summed in chunk order by the second kernel."""
    monkeypatch.setattr(cuda_tiled, "MIN_CHUNK_STEPS", 1)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 2, 9, 9)).astype(np.float32)          # K = 2 * 81 = 162
    w = rng.standard_normal((3, 2, 3, 3)).astype(np.float32)
    geom = geometry.conv2d_geometry(x.shape, w.shape, stride=1, padding=1)
    grad_y = rng.standard_normal((2, 3, 9, 9)).astype(np.float32)
    assert weight_chunks(18, 3, 1, 162)[0] > 1
    first, second = run_twice("conv2d_backward_weight", tier, grad_y, x, geom)
    assert first.tobytes() == second.tobytes()
    np.testing.assert_allclose(first, run_tier("conv2d_backward_weight", "ref", grad_y, x, geom),
                               **TOL)


@pytest.mark.parametrize("tier", CUDA)
def test_cuda_tier_refuses_host_arrays_on_a_real_gpu(tier):
    if kernel_compile.CUDA_SIMULATOR:
        pytest.skip("the simulator runs the cuda tier on NumPy arrays")
    x = np.zeros((1, 1, 4, 4), np.float32)
    w = np.zeros((1, 1, 3, 3), np.float32)
    geom = geometry.conv2d_geometry(x.shape, w.shape)
    with pytest.raises(TypeError, match="CuPy arrays only"):
        kernels.implementations("conv2d_forward")["cuda"](x, w, None, geom)


# ------------------------------------------------------------------------------------------------
# the launch configuration (plain Python: runs in every test process)
# ------------------------------------------------------------------------------------------------

@given(rows=st.integers(1, 10**6), columns=st.integers(1, 600), planes=st.integers(1, 8))
def test_tiled_grid_covers_every_output_with_no_idle_tile(rows, columns, planes):
    tile_m = choose_tile_m(rows, columns, planes)
    bx, by, bz = tiled_grid(rows, columns, planes, tile_m)
    assert bx * tile_m >= rows > (bx - 1) * tile_m
    assert by * TILE_N >= columns > (by - 1) * TILE_N
    assert bz == planes


@given(rows=st.integers(1, 5000), columns=st.integers(1, 300), groups=st.integers(1, 4),
       k_total=st.integers(1, 10**7))
def test_weight_chunks_cover_k_exactly_once(rows, columns, groups, k_total):
    chunks, length = weight_chunks(rows, columns, groups, k_total)
    assert length % TILE_K == 0
    assert chunks * length >= k_total > (chunks - 1) * length      # no empty chunk
    tiles = math.ceil(rows / TILE_M) * math.ceil(columns / TILE_N) * groups
    assert chunks == 1 or tiles * (chunks - 1) < TARGET_BLOCKS      # no more than it needs


# every conv pass of the CAE's training step at batch 200 (conv2d: (Cin, Cout, H, k, stride);
# the decoder's 2x nearest upsample + 3x3 conv runs as a 4x4 stride-2 transposed conv)
CAE_CONVS = [(1, 32, 28, 3, 1), (32, 32, 14, 3, 1), (32, 16, 7, 3, 1), (16, 16, 7, 3, 1),
             (32, 1, 28, 3, 1)]
CAE_TRANSPOSED = [(16, 32, 7, 4, 2), (32, 32, 14, 4, 2)]


def blocks(rows, columns, planes):
    """The blocks of a launch of the tiled kernel, with the tile it chooses."""
    grid = tiled_grid(rows, columns, planes, choose_tile_m(rows, columns, planes))
    return grid[0] * grid[1] * grid[2]


@pytest.mark.parametrize("c_in, c_out, size, k, stride", CAE_CONVS)
def test_cae_convs_give_every_sm_several_blocks(c_in, c_out, size, k, stride):
    n = 200
    rows = n * size * size
    assert blocks(rows, c_out, 1) >= 2 * SMS                 # forward
    assert blocks(rows, c_in, 1) >= 2 * SMS                  # input gradient
    weight_rows = c_in * k * k
    chunks, _ = weight_chunks(weight_rows, c_out, 1, rows)
    assert blocks(weight_rows, c_out, chunks) >= 2 * SMS     # weight gradient


@pytest.mark.parametrize("c_in, c_out, size, k, stride", CAE_TRANSPOSED)
def test_cae_transposed_convs_give_every_sm_several_blocks(c_in, c_out, size, k, stride):
    n, out = 200, size * stride
    phase_rows = n * math.ceil(out / stride) ** 2
    assert blocks(phase_rows, c_out, stride * stride) >= 2 * SMS   # forward
    assert blocks(n * size * size, c_in, 1) >= 2 * SMS             # input gradient
    chunks, _ = weight_chunks(c_out * k * k, c_in, 1, n * size * size)
    assert blocks(c_out * k * k, c_in, chunks) >= 2 * SMS
