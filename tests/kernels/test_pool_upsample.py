"""max_pool2d and upsample (nearest, bilinear) kernels: every tier against the reference, the
reference against slow per-element definitions, gradients against finite differences, PyTorch's
tie-breaking and NaN rules, deterministic backward passes, and geometry errors."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aecore.functional import UPSAMPLE_KERNELS
from aecore.kernels import geometry, implementations
from strategies import pool_cases, upsample_cases
from tiers import run_tier as call, run_twice, tier_params, tiny_shapes

TINY = tiny_shapes()
DTYPES = [np.float32, np.float64]
TOL = {np.float32: dict(rtol=1e-4, atol=1e-5), np.float64: dict(rtol=1e-10, atol=1e-12)}

POOL_OPS = ("max_pool2d_forward", "max_pool2d_backward")
UPSAMPLE_OPS = tuple(f"upsample_{mode}_{kind}" for mode in ("nearest", "bilinear")
                     for kind in ("forward", "backward"))


# ------------------------------------------------------------------------------------------------
# strategies
# ------------------------------------------------------------------------------------------------

seeds = st.integers(0, 2**32 - 1)
# The loaded profile (tests/conftest.py: ci 25, cudasim 6, thorough 300) sets the example counts;
# the finite-difference tests, which call the forward several times per example, use fewer.
examples = settings(deadline=None)
few_examples = settings(deadline=None, max_examples=max(1, min(15, settings.default.max_examples // 2)))


def pool_input(rng, shape, dtype, ties=False):
    if ties:  # few distinct values: many ties, to pin down the tie-breaking rule
        return rng.integers(-2, 3, size=shape).astype(dtype)
    return rng.standard_normal(shape).astype(dtype)


def distinct_input(rng, shape):
    """float64 values with no ties and gaps of 1 / size (for finite differences through max)."""
    size = int(np.prod(shape))
    return (rng.permutation(size).reshape(shape) - size / 2) / size


# ------------------------------------------------------------------------------------------------
# slow, obviously correct definitions
# ------------------------------------------------------------------------------------------------

def pool_output_size(size, k, s, pad, ceil_mode, padding):
    """PyTorch's (or TF's 'same' / 'valid') output size, written out independently."""
    if padding == "same":
        return -(-size // s)
    if padding == "valid":
        return (size - k) // s + 1
    out = (math.ceil if ceil_mode else math.floor)((size + 2 * pad - k) / s) + 1
    if ceil_mode and (out - 1) * s >= size + pad:
        out -= 1
    return out


def brute_max_pool(x, geom):
    """Per-window scan exactly as PyTorch's CPU loop: maxval = -inf, index = first in range,
    update when val > maxval or val is NaN."""
    n, c, h, w = x.shape
    y = np.empty((n, c, geom.out_h, geom.out_w), x.dtype)
    argmax = np.empty(y.shape, np.int64)
    for b in range(n):
        for ch in range(c):
            for oy in range(geom.out_h):
                for ox in range(geom.out_w):
                    r0 = oy * geom.stride_h - geom.pad_top
                    c0 = ox * geom.stride_w - geom.pad_left
                    rows = [r for r in range(r0, r0 + geom.k_h) if 0 <= r < h]
                    cols = [q for q in range(c0, c0 + geom.k_w) if 0 <= q < w]
                    best, index = -np.inf, rows[0] * w + cols[0]
                    for r in rows:
                        for q in cols:
                            if x[b, ch, r, q] > best or np.isnan(x[b, ch, r, q]):
                                best, index = x[b, ch, r, q], r * w + q
                    y[b, ch, oy, ox], argmax[b, ch, oy, ox] = best, index
    return y, argmax


def brute_max_pool_backward(grad_y, argmax, geom):
    n, c = grad_y.shape[:2]
    grad_x = np.zeros((n, c, geom.h * geom.w), grad_y.dtype)
    for b in range(n):
        for ch in range(c):
            for o, index in enumerate(argmax[b, ch].ravel()):
                grad_x[b, ch, index] += grad_y[b, ch].ravel()[o]
    return grad_x.reshape(n, c, geom.h, geom.w)


def brute_sources(in_size, out_size, geom, axis):
    """[(source index, weight), ...] per output position, straight from PyTorch's rules (plain
    Python floats, float32 for nearest as PyTorch does)."""
    scale = getattr(geom, "scale_" + axis)
    taps = []
    for dst in range(out_size):
        if geom.mode == "nearest-exact":     # pixel centres; float32 scale, double product
            product = np.float32((dst + 0.5) * float(np.float32(scale)))
            taps.append([(min(int(math.floor(product)), in_size - 1), 1.0)])
            continue
        if geom.mode == "nearest":
            if out_size == in_size:
                src = dst
            elif out_size == 2 * in_size:
                src = dst // 2
            else:
                src = min(int(math.floor(np.float32(dst) * np.float32(scale))), in_size - 1)
            taps.append([(src, 1.0)])
            continue
        if out_size == in_size:
            taps.append([(dst, 1.0), (dst, 0.0)])
            continue
        if geom.align_corners:
            real = (in_size - 1) / (out_size - 1) * dst if out_size > 1 else 0.0
        else:
            real = max(scale * (dst + 0.5) - 0.5, 0.0)
        i0 = min(int(real), in_size - 1)
        lam = min(max(real - i0, 0.0), 1.0)
        i1 = i0 + (1 if i0 < in_size - 1 else 0)
        taps.append([(i0, 1.0 - lam), (i1, lam)])
    return taps


def brute_taps(geom):
    """Every (output pixel, source pixel, weight) of the resize: (oy, ox, r, q, a * b)."""
    rows = brute_sources(geom.h, geom.out_h, geom, "h")
    cols = brute_sources(geom.w, geom.out_w, geom, "w")
    for oy in range(geom.out_h):
        for ox in range(geom.out_w):
            for r, a in rows[oy]:
                for q, b in cols[ox]:
                    yield oy, ox, r, q, a * b


def brute_upsample(x, geom):
    y = np.zeros(x.shape[:2] + (geom.out_h, geom.out_w))
    for oy, ox, r, q, weight in brute_taps(geom):
        y[:, :, oy, ox] += weight * x[:, :, r, q]
    return y


def brute_upsample_backward(grad_y, geom):
    # the adjoint: each tap sends the output's gradient back to its source pixel
    grad_x = np.zeros(grad_y.shape[:2] + (geom.h, geom.w))
    for oy, ox, r, q, weight in brute_taps(geom):
        grad_x[:, :, r, q] += weight * grad_y[:, :, oy, ox]
    return grad_x


# ------------------------------------------------------------------------------------------------
# max_pool2d
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("tier", tier_params(*POOL_OPS, compiled_only=True))
@examples
@given(case=pool_cases(), seed=seeds, ties=st.booleans())
def test_max_pool_tier_matches_reference(tier, dtype, case, seed, ties):
    shape, kwargs = case
    rng = np.random.default_rng(seed)
    geom = geometry.max_pool2d_geometry(shape, **kwargs)
    x = pool_input(rng, shape, dtype, ties)
    y_ref, argmax_ref = call("max_pool2d_forward", "ref", x, geom)
    y, argmax = call("max_pool2d_forward", tier, x, geom)
    assert y.dtype == x.dtype and y.shape == y_ref.shape and argmax.dtype == np.int64
    np.testing.assert_array_equal(y, y_ref)  # a max is a selection: exact
    np.testing.assert_array_equal(argmax, argmax_ref)
    grad_y = rng.standard_normal(y.shape).astype(dtype)
    np.testing.assert_allclose(call("max_pool2d_backward", tier, grad_y, argmax, geom),
                               call("max_pool2d_backward", "ref", grad_y, argmax, geom), **TOL[dtype])


@examples
@given(case=pool_cases(), seed=seeds, ties=st.booleans())
def test_max_pool_reference_matches_brute_force(case, seed, ties):
    shape, kwargs = case
    rng = np.random.default_rng(seed)
    geom = geometry.max_pool2d_geometry(shape, **kwargs)
    k_h, k_w = geometry.pair(kwargs["kernel_size"], "kernel_size")
    s_h, s_w = geometry.pair(kwargs["stride"] or kwargs["kernel_size"], "stride")
    padding = kwargs["padding"]
    p_h, p_w = (0, 0) if isinstance(padding, str) else geometry.pair(padding, "padding", 0)
    ceil_mode = kwargs.get("ceil_mode", False)
    assert geom.out_h == pool_output_size(shape[2], k_h, s_h, p_h, ceil_mode, padding)
    assert geom.out_w == pool_output_size(shape[3], k_w, s_w, p_w, ceil_mode, padding)

    x = pool_input(rng, shape, np.float64, ties)
    y, argmax = implementations("max_pool2d_forward")["ref"](x, geom)
    y_brute, argmax_brute = brute_max_pool(x, geom)
    np.testing.assert_array_equal(y, y_brute)
    np.testing.assert_array_equal(argmax, argmax_brute)
    grad_y = rng.standard_normal(y.shape)
    np.testing.assert_allclose(implementations("max_pool2d_backward")["ref"](grad_y, argmax, geom),
                               brute_max_pool_backward(grad_y, argmax, geom), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("tier", tier_params(*POOL_OPS))
@few_examples
@given(case=pool_cases(), seed=seeds)
def test_max_pool_backward_finite_differences(tier, case, seed):
    """Directional central differences of L(x) = <grad_y, max_pool(x)> in float64, on inputs
    without ties (gaps of 1/size >> eps, so no window changes its winner)."""
    shape, kwargs = case
    rng = np.random.default_rng(seed)
    geom = geometry.max_pool2d_geometry(shape, **kwargs)
    x = distinct_input(rng, shape)
    _, argmax = call("max_pool2d_forward", tier, x, geom)
    grad_y = rng.standard_normal(argmax.shape)
    grad_x = call("max_pool2d_backward", tier, grad_y, argmax, geom)
    eps = 1e-6
    for _ in range(3):
        direction = rng.standard_normal(shape)
        plus = call("max_pool2d_forward", tier, x + eps * direction, geom)[0]
        minus = call("max_pool2d_forward", tier, x - eps * direction, geom)[0]
        numeric = np.sum(grad_y * (plus - minus)) / (2 * eps)
        assert abs(numeric - np.sum(grad_x * direction)) <= 1e-7 * (1 + abs(numeric))


@pytest.mark.parametrize("tier", tier_params(*POOL_OPS))
@pytest.mark.parametrize("kwargs", [
    dict(kernel_size=2), dict(kernel_size=3, stride=1, padding=1), dict(kernel_size=3, stride=2, padding=1, ceil_mode=True),
    dict(kernel_size=(2, 3), stride=(1, 2), padding="same"), dict(kernel_size=2, padding=1)],
    ids=["2x2", "3x3s1p1", "3x3s2p1ceil", "same", "2x2p1"])
def test_max_pool_ties_go_to_first_element(tier, kwargs):
    shape = (1, 2, 5, 5)
    geom = geometry.max_pool2d_geometry(shape, **kwargs)
    x = np.full(shape, 0.5)
    y, argmax = call("max_pool2d_forward", tier, x, geom)
    np.testing.assert_array_equal(y, 0.5)
    expected = np.zeros(shape)
    for oy in range(geom.out_h):
        for ox in range(geom.out_w):
            r = max(oy * geom.stride_h - geom.pad_top, 0)
            q = max(ox * geom.stride_w - geom.pad_left, 0)
            assert (argmax[:, :, oy, ox] == r * 5 + q).all()
            expected[:, :, r, q] += 1
    grad_x = call("max_pool2d_backward", tier, np.ones(y.shape), argmax, geom)
    np.testing.assert_array_equal(grad_x, expected)


@pytest.mark.parametrize("tier", tier_params("max_pool2d_forward"))
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_max_pool_nan_propagates(tier, dtype):
    x = np.arange(16, dtype=dtype).reshape(1, 1, 4, 4)
    x[0, 0, 0, 1] = np.nan   # window (0, 0): a NaN before larger values -> NaN wins
    x[0, 0, 2, 2] = np.nan   # window (1, 1): two NaNs -> the last one scanned is the argmax
    x[0, 0, 3, 3] = np.nan
    geom = geometry.max_pool2d_geometry(x.shape, 2)
    y, argmax = call("max_pool2d_forward", tier, x, geom)
    assert np.isnan(y[0, 0, 0, 0]) and argmax[0, 0, 0, 0] == 1
    assert np.isnan(y[0, 0, 1, 1]) and argmax[0, 0, 1, 1] == 15
    assert y[0, 0, 0, 1] == 7 and argmax[0, 0, 0, 1] == 7
    assert y[0, 0, 1, 0] == 13 and argmax[0, 0, 1, 0] == 13


@pytest.mark.parametrize("tier", tier_params("max_pool2d_forward", compiled_only=True))
@pytest.mark.parametrize("size, padding", [(28, "same"), (7, "same"), (11, 1), (10, 0)])
def test_max_pool_2x2_fast_rows_match_reference(tier, size, padding):
    """2x2 / stride-2 pooling, which the numba tier runs through its vectorized inner-window
    loop, on sizes the Hypothesis draws (<= 9) do not reach, with ties and NaNs sprinkled in."""
    if TINY:
        pytest.skip("too large for the CUDA simulator")
    rng = np.random.default_rng(size)
    x = rng.integers(0, 4, (3, 2, size, size)).astype(np.float32)   # many ties
    x[rng.random(x.shape) < 0.02] = np.nan
    geom = geometry.max_pool2d_geometry(x.shape, 2, padding=padding)
    y, argmax = call("max_pool2d_forward", tier, x, geom)
    y_ref, argmax_ref = call("max_pool2d_forward", "ref", x, geom)
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(argmax, argmax_ref)


@pytest.mark.parametrize("tier", tier_params("max_pool2d_backward", compiled_only=True))
def test_max_pool_backward_in_blocks_of_planes(tier):
    """The numba tier scatters several small planes per task (compile.run_planes): planes of
    one per task up to dozens, plane counts that do not split evenly into the blocks, against
    the reference; and a bad argmax refused wherever it is."""
    if TINY:
        pytest.skip("too large for the CUDA simulator")
    from aecore.kernels.compile import PLANE_BLOCK_VALUES
    rng = np.random.default_rng(4)
    for shape in [(3, 5, 7, 6), (41, 7, 30, 31), (50, 3, 6, 6), (13, 3, 5, 5)]:
        geom = geometry.max_pool2d_geometry(shape, 2, stride=2, padding="same")
        x = rng.standard_normal(shape).astype(np.float32)
        _, argmax = call("max_pool2d_forward", "ref", x, geom)
        grad_y = rng.standard_normal(argmax.shape).astype(np.float32)
        planes_per_task = max(1, PLANE_BLOCK_VALUES // (shape[2] * shape[3]))
        assert (shape[0] * shape[1]) % planes_per_task != 0 or planes_per_task == 1
        np.testing.assert_array_equal(call("max_pool2d_backward", tier, grad_y, argmax, geom),
                                      call("max_pool2d_backward", "ref", grad_y, argmax, geom))
    argmax = np.array(argmax)
    argmax[-1, -1, 0, 0] = -1
    with pytest.raises(ValueError, match="outside"):
        call("max_pool2d_backward", tier, grad_y, argmax, geom)
    big = (41, 7, 30, 31)
    geom = geometry.max_pool2d_geometry(big, 2, stride=2, padding="same")
    x = rng.standard_normal(big).astype(np.float32)
    _, argmax = call("max_pool2d_forward", "ref", x, geom)
    argmax = np.array(argmax)
    argmax[-1, -1, -1, -1] = 10 ** 6
    with pytest.raises(ValueError, match="outside"):
        call("max_pool2d_backward", tier, np.ones(argmax.shape, np.float32), argmax, geom)


@pytest.mark.parametrize("tier", tier_params(*POOL_OPS))
def test_max_pool_backward_is_deterministic(tier):
    rng = np.random.default_rng(0)
    shape = (2, 2, 5, 5) if TINY else (3, 4, 9, 9)
    geom = geometry.max_pool2d_geometry(shape, 3, stride=1, padding=1)  # heavily overlapping
    x = rng.integers(-1, 2, size=shape).astype(np.float32)  # many ties: shared winners
    _, argmax = call("max_pool2d_forward", tier, x, geom)
    grad_y = rng.standard_normal(argmax.shape).astype(np.float32)
    first, second = run_twice("max_pool2d_backward", tier, grad_y, argmax, geom)
    assert first.tobytes() == second.tobytes()


def test_max_pool_tf_same_chain():
    """TF 'same' pooling 28 -> 14 -> 7 -> 4 (the last one padded at the bottom/right)."""
    shape = (1, 1, 28, 28)
    for expected in (14, 7, 4):
        geom = geometry.max_pool2d_geometry(shape, 2, 2, "same")
        assert (geom.out_h, geom.out_w) == (expected, expected)
        assert geom.pad_top == geom.pad_left == 0
        shape = (1, 1, expected, expected)


@pytest.mark.parametrize("kwargs, name", [
    (dict(x_shape=(1, 1, 3, 3), kernel_size=5), "kernel_size"),        # larger than padded input
    (dict(x_shape=(1, 1, 3, 3), kernel_size=(2, 6), padding=1), "kernel_size"),
    (dict(x_shape=(1, 1, 3, 3), kernel_size=4, padding="valid"), "kernel_size"),
    (dict(x_shape=(1, 1, 8, 8), kernel_size=2, padding=2), "padding"),  # > kernel / 2
    (dict(x_shape=(1, 1, 8, 8), kernel_size=3, padding=(1, 2)), "padding"),
    (dict(x_shape=(1, 1, 8, 8), kernel_size=2, padding=-1), "padding"),
    (dict(x_shape=(1, 1, 8, 8), kernel_size=2, padding="full"), "padding"),
    (dict(x_shape=(1, 1, 8, 8), kernel_size=0), "kernel_size"),
    (dict(x_shape=(1, 1, 8, 8), kernel_size=2, stride=0), "stride"),
    (dict(x_shape=(1, 0, 8, 8), kernel_size=2), "input"),
    (dict(x_shape=(1, 1, 0, 8), kernel_size=2), "input"),
    (dict(x_shape=(1, 8, 8), kernel_size=2), "input"),
    (dict(x_shape=(1, 1, 8, 8), kernel_size=2, padding="same", ceil_mode=True), "ceil_mode"),
])
def test_max_pool_geometry_errors(kwargs, name):
    with pytest.raises(ValueError, match=name):
        geometry.max_pool2d_geometry(**kwargs)


# ------------------------------------------------------------------------------------------------
# upsample (nearest, bilinear)
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("tier", tier_params(*UPSAMPLE_OPS, compiled_only=True))
@examples
@given(case=upsample_cases(), seed=seeds)
def test_upsample_tier_matches_reference(tier, dtype, case, seed):
    shape, kwargs = case
    mode = kwargs["mode"]
    rng = np.random.default_rng(seed)
    geom = geometry.interpolate_geometry(shape, **kwargs)
    x = rng.standard_normal(shape).astype(dtype)
    y_ref = call(UPSAMPLE_KERNELS[mode][0], "ref", x, geom)
    y = call(UPSAMPLE_KERNELS[mode][0], tier, x, geom)
    assert y.dtype == x.dtype and y.shape == (shape[0], shape[1], geom.out_h, geom.out_w)
    np.testing.assert_allclose(y, y_ref, **TOL[dtype])
    grad_y = rng.standard_normal(y.shape).astype(dtype)
    grad_x = call(UPSAMPLE_KERNELS[mode][1], tier, grad_y, geom)
    assert grad_x.dtype == x.dtype and grad_x.shape == shape
    np.testing.assert_allclose(grad_x, call(UPSAMPLE_KERNELS[mode][1], "ref", grad_y, geom), **TOL[dtype])


@examples
@given(case=upsample_cases(), seed=seeds)
def test_upsample_reference_matches_brute_force(case, seed):
    shape, kwargs = case
    mode = kwargs["mode"]
    rng = np.random.default_rng(seed)
    geom = geometry.interpolate_geometry(shape, **kwargs)
    if "scale_factor" in kwargs:  # out = floor(in * factor), written out independently
        f_h, f_w = kwargs["scale_factor"] if isinstance(kwargs["scale_factor"], tuple) else (kwargs["scale_factor"],) * 2
        assert (geom.out_h, geom.out_w) == (math.floor(shape[2] * f_h), math.floor(shape[3] * f_w))
    else:
        assert (geom.out_h, geom.out_w) == geometry.pair(kwargs["size"], "size")
    x = rng.standard_normal(shape)
    np.testing.assert_allclose(implementations(UPSAMPLE_KERNELS[mode][0])["ref"](x, geom),
                               brute_upsample(x, geom), rtol=1e-10, atol=1e-12)
    grad_y = rng.standard_normal((shape[0], shape[1], geom.out_h, geom.out_w))
    np.testing.assert_allclose(implementations(UPSAMPLE_KERNELS[mode][1])["ref"](grad_y, geom),
                               brute_upsample_backward(grad_y, geom), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("tier", tier_params(*UPSAMPLE_OPS))
@few_examples
@given(case=upsample_cases(), seed=seeds)
def test_upsample_backward_finite_differences(tier, case, seed):
    """The op is linear, so the central difference of L(x) = <grad_y, up(x)> along any direction
    is exact up to rounding, and backward must be the adjoint: <up(d), g> == <d, up^T(g)>."""
    shape, kwargs = case
    mode = kwargs["mode"]
    rng = np.random.default_rng(seed)
    geom = geometry.interpolate_geometry(shape, **kwargs)
    x = rng.standard_normal(shape)
    grad_y = rng.standard_normal((shape[0], shape[1], geom.out_h, geom.out_w))
    grad_x = call(UPSAMPLE_KERNELS[mode][1], tier, grad_y, geom)
    eps = 1e-6
    for _ in range(2):
        direction = rng.standard_normal(shape)
        plus = call(UPSAMPLE_KERNELS[mode][0], tier, x + eps * direction, geom)
        minus = call(UPSAMPLE_KERNELS[mode][0], tier, x - eps * direction, geom)
        numeric = np.sum(grad_y * (plus - minus)) / (2 * eps)
        analytic = np.sum(grad_x * direction)
        assert abs(numeric - analytic) <= 1e-7 * (1 + abs(analytic))
        adjoint = np.sum(call(UPSAMPLE_KERNELS[mode][0], tier, direction, geom) * grad_y)
        assert abs(adjoint - analytic) <= 1e-10 * (1 + abs(analytic))


@pytest.mark.parametrize("tier", tier_params(*UPSAMPLE_OPS))
@pytest.mark.parametrize("mode, kwargs", [
    ("nearest", dict(scale_factor=0.4)), ("nearest", dict(size=(9, 4))),
    ("nearest-exact", dict(size=(13, 7))),
    ("bilinear", dict(scale_factor=0.3, align_corners=False)), ("bilinear", dict(size=(11, 3), align_corners=True)),
])
def test_upsample_backward_is_deterministic(tier, mode, kwargs):
    rng = np.random.default_rng(1)
    shape = (2, 2, 5, 5) if TINY else (3, 4, 9, 9)
    geom = geometry.interpolate_geometry(shape, mode=mode, **kwargs)
    grad_y = rng.standard_normal((shape[0], shape[1], geom.out_h, geom.out_w)).astype(np.float32)
    first, second = run_twice(UPSAMPLE_KERNELS[mode][1], tier, grad_y, geom)
    assert first.tobytes() == second.tobytes()


@pytest.mark.parametrize("tier", tier_params(*UPSAMPLE_OPS))
def test_upsample_known_values(tier):
    x = np.array([[[[1.0, 2.0], [3.0, 4.0]]]])
    near = geometry.interpolate_geometry(x.shape, scale_factor=2, mode="nearest")
    np.testing.assert_array_equal(call("upsample_nearest_forward", tier, x, near),
                                  np.repeat(np.repeat(x, 2, axis=2), 2, axis=3))
    np.testing.assert_array_equal(call("upsample_nearest_backward", tier, np.ones((1, 1, 4, 4)), near),
                                  np.full(x.shape, 4.0))
    corners = geometry.interpolate_geometry(x.shape, size=3, mode="bilinear", align_corners=True)
    np.testing.assert_allclose(call("upsample_bilinear_forward", tier, x, corners)[0, 0],
                               [[1.0, 1.5, 2.0], [2.0, 2.5, 3.0], [3.0, 3.5, 4.0]], rtol=0, atol=1e-15)
    half = geometry.interpolate_geometry(x.shape, scale_factor=2, mode="bilinear", align_corners=False)
    np.testing.assert_allclose(call("upsample_bilinear_forward", tier, x, half)[0, 0, 0],
                               [1.0, 1.25, 1.75, 2.0], rtol=0, atol=1e-15)
    # PyTorch copies when the output size equals the input size, whatever the factor.
    same = geometry.interpolate_geometry((1, 1, 9, 9), scale_factor=1.05, mode="nearest")
    x9 = np.arange(81.0).reshape(1, 1, 9, 9)
    np.testing.assert_array_equal(call("upsample_nearest_forward", tier, x9, same), x9)
    # 4 -> 7 nearest: src = floor(dst * 4/7) in float32
    up = geometry.interpolate_geometry((1, 1, 4, 4), size=7, mode="nearest")
    x4 = np.arange(16.0).reshape(1, 1, 4, 4)
    np.testing.assert_array_equal(call("upsample_nearest_forward", tier, x4, up)[0, 0, 0],
                                  [0, 0, 1, 1, 2, 2, 3])


@pytest.mark.parametrize("kwargs, name", [
    (dict(x_shape=(1, 1, 4, 4), size=0), "size"),
    (dict(x_shape=(1, 1, 4, 4), size=(3, 0)), "size"),
    (dict(x_shape=(1, 1, 4, 4), scale_factor=0), "scale_factor"),
    (dict(x_shape=(1, 1, 4, 4), scale_factor=-2.0), "scale_factor"),
    (dict(x_shape=(1, 1, 4, 4), scale_factor=float("inf")), "scale_factor"),
    (dict(x_shape=(1, 1, 4, 4), scale_factor=0.1), "scale_factor"),   # empty output
    (dict(x_shape=(1, 1, 4, 4), size=8, scale_factor=2), "size"),      # both
    (dict(x_shape=(1, 1, 4, 4)), "scale_factor"),                      # neither
    (dict(x_shape=(1, 1, 4, 4), size=8, mode="nearest", align_corners=False), "align_corners"),
    (dict(x_shape=(1, 1, 4, 4), size=8, mode="bicubic"), "mode"),
    (dict(x_shape=(1, 0, 4, 4), size=8), "input"),
    (dict(x_shape=(4, 4), size=8), "input"),
])
def test_interpolate_geometry_errors(kwargs, name):
    with pytest.raises(ValueError, match=name):
        geometry.interpolate_geometry(**kwargs)


def test_upsample_kernel_rejects_wrong_mode_geometry():
    geom = geometry.interpolate_geometry((1, 1, 2, 2), size=4, mode="nearest")
    with pytest.raises(ValueError, match="mode"):
        implementations("upsample_bilinear_forward")["ref"](np.zeros((1, 1, 2, 2)), geom)


# ------------------------------------------------------------------------------------------------
# nearest-exact against PyTorch itself: stored cases (tests/kernels/fixtures/make_nearest_exact.py)
# ------------------------------------------------------------------------------------------------

def _torch_nearest_exact_cases():
    import json
    import os
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures",
                        "nearest_exact_torch.json")
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)["cases"]


@pytest.mark.parametrize("tier", tier_params(*UPSAMPLE_OPS[:2]))
def test_nearest_exact_picks_the_sources_pytorch_picks(tier):
    """Every output position of PyTorch's F.interpolate(mode='nearest-exact') (TensorFlow 2's
    nearest resize: 4 -> 7, 5 -> 13, 8 -> 5 among them), forward on every tier, and the backward
    sends each output's gradient to that source."""
    forward, backward = UPSAMPLE_KERNELS["nearest-exact"]
    for case in _torch_nearest_exact_cases():
        size = None if case["size"] is None else (1, case["size"])
        factor = None if case["scale_factor"] is None else (1, case["scale_factor"])
        geom = geometry.interpolate_geometry((1, 1, 1, case["in"]), size=size,
                                             scale_factor=factor, mode="nearest-exact")
        x = np.arange(case["in"], dtype=np.float64).reshape(1, 1, 1, -1)
        picked = call(forward, tier, x, geom).reshape(-1).astype(np.int64)
        assert picked.tolist() == case["sources"], case
        counts = call(backward, tier, np.ones((1, 1, 1, geom.out_w)), geom).reshape(-1)
        assert counts.tolist() == np.bincount(case["sources"], minlength=case["in"]).tolist()


def test_nearest_exact_differs_from_legacy_nearest_where_tensorflow_does():
    """The two nearest rules differ at 4 -> 7 (the issue's case); both agree on whole factors."""
    legacy = geometry.interpolate_geometry((1, 1, 4, 4), size=7, mode="nearest")
    exact = geometry.interpolate_geometry((1, 1, 4, 4), size=7, mode="nearest-exact")
    x = np.arange(16, dtype=np.float64).reshape(1, 1, 4, 4)
    forward = UPSAMPLE_KERNELS["nearest"][0]
    assert not np.array_equal(call(forward, "ref", x, legacy), call(forward, "ref", x, exact))
    for factor in (2, 3):
        legacy, exact = (geometry.interpolate_geometry((1, 1, 4, 4), scale_factor=factor, mode=m)
                         for m in ("nearest", "nearest-exact"))
        assert np.array_equal(call(forward, "ref", x, legacy), call(forward, "ref", x, exact))
