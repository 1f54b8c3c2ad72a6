"""The numba tier's Winograd F(2x2, 3x3) path for 3x3 stride-1 convs with many channels.

The tier-vs-reference tests in test_conv.py draw few channels, so they mostly run the direct
loops; here the Winograd path is checked on its own against the reference, over drawn geometry
(odd output sizes, every padding, batches across the 16-image blocks), and through the
registered ops with the channel threshold lowered, so conv2d's input gradient and the stride-1
transposed conv (which reach it through the scatter core) are covered too.
"""

from unittest import mock

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from aecore import kernels
from aecore.kernels import conv2d, geometry
from aecore.kernels.conv2d import winograd
from tiers import require_tier, run_tier

# A CPU path: skipped without Numba and in the CUDA simulator's process (which checks only cuda).
require_tier("numba", "conv2d_forward", reason="the Winograd path is part of the numba tier")

TOL = {np.float32: dict(rtol=1e-4, atol=1e-4), np.float64: dict(rtol=1e-10, atol=1e-10)}
examples = settings(deadline=None)


@st.composite
def winograd_cases(draw):
    """(x shape, w shape, (top, left), (out_h, out_w)) of a 3x3 stride-1 conv, any padding."""
    n = draw(st.integers(1, 40))
    c_in, c_out = draw(st.integers(1, 12)), draw(st.integers(1, 12))
    top, bottom, left, right = (draw(st.integers(0, 3)) for _ in range(4))
    h = draw(st.integers(max(1, 3 - top - bottom), 13))
    w = draw(st.integers(max(1, 3 - left - right), 13))
    return (n, c_in, h, w), (c_out, c_in, 3, 3), (top, left), (h + top + bottom - 2, w + left + right - 2)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@examples
@given(case=winograd_cases(), seed=st.integers(0, 2**32 - 1), with_bias=st.booleans())
def test_winograd_matches_reference(dtype, case, seed, with_bias):
    x_shape, w_shape, pads, out_hw = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal(w_shape).astype(dtype)
    b = rng.standard_normal(w_shape[0]).astype(dtype) if with_bias else None
    got = conv2d.gather_winograd(x, w, b, pads, out_hw)
    expected = conv2d.gather_ref(x, w, b, (1, 1), pads, out_hw)
    assert got.shape == expected.shape and got.dtype == dtype
    np.testing.assert_allclose(got, expected, **TOL[dtype])


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@examples
@given(n=st.integers(1, 40), c_in=st.integers(1, 12), c_out=st.integers(1, 12),
       h=st.integers(1, 13), w=st.integers(1, 13), padding=st.sampled_from([0, 1, 2, "same", "valid"]),
       seed=st.integers(0, 2**32 - 1))
def test_registered_ops_take_winograd_and_match_reference(dtype, n, c_in, c_out, h, w, padding, seed):
    """conv2d forward and input gradient through the registry (the input gradient reaches
    Winograd through the scatter core), with the thresholds lowered so every case takes it."""
    pad = {"same": 1, "valid": 0}.get(padding, padding)
    assume(min(h, w) + 2 * pad >= 3)
    x_shape, w_shape = (n, c_in, h, w), (c_out, c_in, 3, 3)
    geom = geometry.conv2d_geometry(x_shape, w_shape, 1, padding)
    out_h, out_w = geom.out_h, geom.out_w
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal(w_shape).astype(dtype)
    grad_y = rng.standard_normal((x_shape[0], w_shape[0], out_h, out_w)).astype(dtype)
    calls = []
    real = conv2d.gather_winograd
    with mock.patch.object(conv2d, "WINOGRAD_MIN_CHANNELS", 1), \
            mock.patch.object(conv2d, "WINOGRAD_MIN_OUTPUT", 1), \
            mock.patch.object(conv2d, "gather_winograd", lambda *a, **k: calls.append(1) or real(*a, **k)):
        for op, args in [("conv2d_forward", (x, w, None, geom)),
                         ("conv2d_backward_input", (grad_y, w, geom))]:
            np.testing.assert_allclose(run_tier(op, "numba", *args), run_tier(op, "ref", *args),
                                       **TOL[dtype], err_msg=op)
    assert len(calls) == 2


def test_dispatch_rule():
    """Winograd for 3x3 stride-1 convs with enough channels and outputs of 8x8 or more; the
    direct loops otherwise (the CAE's 7x7 layers among them)."""
    enough = conv2d.WINOGRAD_MIN_CHANNELS
    assert conv2d.WINOGRAD_MIN_OUTPUT == 8
    assert conv2d.uses_winograd((32, 32, 3, 3), (1, 1), out_hw=(14, 14))
    assert conv2d.uses_winograd((32, 32, 3, 3), (1, 1), out_hw=(8, 8))
    assert not conv2d.uses_winograd((16, 32, 3, 3), (1, 1), out_hw=(7, 7))
    assert not conv2d.uses_winograd((32, 32, 3, 3), (1, 1), out_hw=(28, 7))
    assert conv2d.uses_winograd((enough, enough, 3, 3), (1, 1), out_hw=(14, 14))
    assert not conv2d.uses_winograd((32, 1, 3, 3), (1, 1), out_hw=(14, 14))      # the CAE's first conv
    assert not conv2d.uses_winograd((1, 32, 3, 3), (1, 1), out_hw=(14, 14))      # and its last
    assert not conv2d.uses_winograd((32, 32, 3, 3), (2, 2), out_hw=(14, 14))
    assert not conv2d.uses_winograd((32, 32, 5, 5), (1, 1), out_hw=(14, 14))


def test_classic_cae_layer_both_paths_agree():
    """32->32 on 14x14, 'same', float32: the Winograd result vs the direct loops' result."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((20, 32, 14, 14)).astype(np.float32)
    w = rng.standard_normal((32, 32, 3, 3)).astype(np.float32)
    b = rng.standard_normal(32).astype(np.float32)
    winograd = conv2d.gather_winograd(x, w, b, (1, 1), (14, 14))
    with mock.patch.object(conv2d, "WINOGRAD_MIN_CHANNELS", 10**9):
        direct = conv2d.gather_numba(x, w, b, (1, 1), (1, 1), (14, 14))
    exact = conv2d.gather_ref(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64),
                              (1, 1), (1, 1), (14, 14))
    scale = np.abs(exact).max()
    # Winograd's float32 rounding is within a small factor of the direct sum's
    assert np.abs(winograd - exact).max() / scale < 1e-5
    assert np.abs(direct - exact).max() / scale < 1e-5
    assert "numba" in kernels.tiers_of("conv2d_forward")


@pytest.mark.parametrize("n, c, h, w, top, left", [
    (37, 3, 9, 9, 1, 1),       # a partial last block of images (37 = 2*16 + 5), 'same'
    (16, 2, 7, 6, 0, 2),       # exactly one block; padding on the left only
    (5, 1, 4, 11, 3, 0),       # padding above only; odd width
    (2, 2, 1, 1, 2, 2),        # a 1x1 image inside a large padded frame
])
def test_pack_writes_every_value(n, c, h, w, top, left):
    """The Winograd pack zeroes only what x does not cover: every value of the packed buffer
    must be written (the buffer starts as NaN) and equal the padded input, by phase."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, c, h, w)).astype(np.float32)
    tile_rows, tile_cols = -(-(h + 2 * top - 2) // 2), -(-(w + 2 * left - 2) // 2)
    nb = winograd._WINO_IMAGES
    blocks = -(-n // nb)
    xq = np.full((blocks, c, 2 * tile_rows + 2, 2, tile_cols + 1, nb), np.nan, np.float32)
    winograd.wino_pack(x, xq, top, left)
    # expected[blk, c, r, k, q, j] = padded x[blk*NB + j, c, r, 2q + k] (0 outside x)
    rows, cols = xq.shape[2], 2 * xq.shape[4]
    padded = np.zeros((blocks * nb, c, rows, cols), np.float32)
    r1, c1 = min(top + h, rows), min(left + w, cols)
    padded[:n, :, top:r1, left:c1] = x[:, :, :r1 - top, :c1 - left]
    expected = padded.reshape(blocks, nb, c, rows, tile_cols + 1, 2).transpose(0, 2, 3, 5, 4, 1)
    np.testing.assert_array_equal(xq, expected)
