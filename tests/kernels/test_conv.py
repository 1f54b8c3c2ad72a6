"""conv2d and conv_transpose2d kernels: every tier against the reference (forward and both
backward outputs), the reference against slow per-element definitions, the backward kernels
against finite differences (the adjoint identity), and geometry errors."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aecore.kernels import geometry
from strategies import conv2d_cases, conv_transpose2d_cases
from tiers import run_tier as call, run_twice, tier_params, tiny_shapes

TINY = tiny_shapes()
DTYPES = [np.float32, np.float64]
TOL = {np.float32: dict(rtol=1e-4, atol=1e-4), np.float64: dict(rtol=1e-10, atol=1e-10)}

CONV = ("conv2d_forward", "conv2d_backward_input", "conv2d_backward_weight")
CONVT = ("conv_transpose2d_forward", "conv_transpose2d_backward_input",
         "conv_transpose2d_backward_weight")

examples = settings(deadline=None)
few_examples = settings(deadline=None, max_examples=max(1, min(15, settings.default.max_examples // 2)))
seeds = st.integers(0, 2**32 - 1)


# ------------------------------------------------------------------------------------------------
# strategies: valid geometry is drawn directly (kernel sizes up to the padded input)
# ------------------------------------------------------------------------------------------------

def conv_arrays(case, seed, dtype, with_bias=True):
    """(x, w, b, grad_y, geom) of `dtype` for a conv2d case."""
    x_shape, w_shape, stride, padding = case
    geom = geometry.conv2d_geometry(x_shape, w_shape, stride, padding, b_shape=(w_shape[0],))
    return _arrays(x_shape, w_shape, w_shape[0], geom, seed, dtype, with_bias)


def convt_arrays(case, seed, dtype, with_bias=True):
    x_shape, w_shape, stride, padding, output_padding = case
    geom = geometry.conv_transpose2d_geometry(x_shape, w_shape, stride, padding, output_padding,
                                              b_shape=(w_shape[1],))
    return _arrays(x_shape, w_shape, w_shape[1], geom, seed, dtype, with_bias)


def _arrays(x_shape, w_shape, c_out, geom, seed, dtype, with_bias):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal(w_shape).astype(dtype)
    b = rng.standard_normal(c_out).astype(dtype) if with_bias else None
    grad_y = rng.standard_normal((x_shape[0], c_out, geom.out_h, geom.out_w)).astype(dtype)
    return x, w, b, grad_y, geom


# ------------------------------------------------------------------------------------------------
# slow, obviously correct definitions (one loop nest gives the output and both gradients)
# ------------------------------------------------------------------------------------------------

def brute_conv2d(x, w, b, grad_y, geom):
    """Textbook conv2d: y[n, co, oy, ox] = b[co] + sum x[n, ci, oy*s + ky - top, ...] w[co, ci, ky, kx];
    grad_x and grad_w accumulate grad_y times the other factor of every product."""
    n_, c_in, h, w_in = x.shape
    c_out, _, k_h, k_w = w.shape
    sh, sw, top, left = geom.stride_h, geom.stride_w, geom.pad_top, geom.pad_left
    y = np.zeros((n_, c_out, geom.out_h, geom.out_w))
    grad_x, grad_w = np.zeros(x.shape), np.zeros(w.shape)
    for n in range(n_):
        for co in range(c_out):
            for oy in range(geom.out_h):
                for ox in range(geom.out_w):
                    y[n, co, oy, ox] = 0.0 if b is None else b[co]
                    for ci in range(c_in):
                        for ky in range(k_h):
                            for kx in range(k_w):
                                iy, ix = oy * sh + ky - top, ox * sw + kx - left
                                if 0 <= iy < h and 0 <= ix < w_in:
                                    y[n, co, oy, ox] += x[n, ci, iy, ix] * w[co, ci, ky, kx]
                                    grad_x[n, ci, iy, ix] += grad_y[n, co, oy, ox] * w[co, ci, ky, kx]
                                    grad_w[co, ci, ky, kx] += grad_y[n, co, oy, ox] * x[n, ci, iy, ix]
    return y, grad_x, grad_w


def brute_conv_transpose2d(x, w, b, grad_y, geom):
    """Scatter each input pixel times the kernel into the full ((H-1)*s + k) result, then take
    the window at (pad_top, pad_left) of the output size (zeros past the end), plus the bias."""
    n_, c_in, h, w_in = x.shape
    _, c_out, k_h, k_w = w.shape
    sh, sw, top, left = geom.stride_h, geom.stride_w, geom.pad_top, geom.pad_left
    out_h, out_w = geom.out_h, geom.out_w
    full = np.zeros((n_, c_out, (h - 1) * sh + k_h, (w_in - 1) * sw + k_w))
    for n in range(n_):
        for ci in range(c_in):
            for iy in range(h):
                for ix in range(w_in):
                    full[n, :, iy * sh:iy * sh + k_h, ix * sw:ix * sw + k_w] += x[n, ci, iy, ix] * w[ci]
    y = np.zeros((n_, c_out, out_h, out_w)) + (0.0 if b is None else b.reshape(1, -1, 1, 1))
    for oy in range(out_h):
        for ox in range(out_w):
            fy, fx = oy + top, ox + left
            if fy < full.shape[2] and fx < full.shape[3]:
                y[:, :, oy, ox] += full[:, :, fy, fx]
    # gradients: the same scatter, read backwards (grad_y rows past the full result are dropped)
    grad_full = np.zeros(full.shape)
    rows, cols = min(out_h, full.shape[2] - top), min(out_w, full.shape[3] - left)
    grad_full[:, :, top:top + rows, left:left + cols] = grad_y[:, :, :rows, :cols]
    grad_x, grad_w = np.zeros(x.shape), np.zeros(w.shape)
    for n in range(n_):
        for ci in range(c_in):
            for iy in range(h):
                for ix in range(w_in):
                    patch = grad_full[n, :, iy * sh:iy * sh + k_h, ix * sw:ix * sw + k_w]
                    grad_x[n, ci, iy, ix] += np.sum(patch * w[ci])
                    grad_w[ci] += x[n, ci, iy, ix] * patch
    return y, grad_x, grad_w


# ------------------------------------------------------------------------------------------------
# every tier against the reference
# ------------------------------------------------------------------------------------------------

def check_tier(ops, tier, x, w, b, grad_y, geom, dtype):
    forward, backward_input, backward_weight = ops
    expected = [call(forward, "ref", x, w, b, geom), call(backward_input, "ref", grad_y, w, geom),
                call(backward_weight, "ref", grad_y, x, geom)]
    # (the registry refuses non-contiguous arrays, test_registry_checks.py; the graph layer
    # hands the kernels contiguous copies, test_input_checks.py)
    got = [call(forward, tier, x, w, b, geom), call(backward_input, tier, grad_y, w, geom),
           call(backward_weight, tier, grad_y, x, geom)]
    shapes = [(x.shape[0], grad_y.shape[1], geom.out_h, geom.out_w), x.shape, w.shape]
    # the bias gradient (one op for conv2d and the transposed conv)
    expected.append(call("conv2d_backward_bias", "ref", grad_y))
    got.append(call("conv2d_backward_bias", tier, grad_y))
    shapes.append((grad_y.shape[1],))
    for name, e, g, shape in zip(ops + ("conv2d_backward_bias",), expected, got, shapes):
        assert g.shape == shape, name
        assert e.dtype == dtype and g.dtype == dtype, name
        np.testing.assert_allclose(g, e, **TOL[dtype], err_msg=f"{tier} {name}")


# family -> (its three ops, the strategy that draws its geometry, the arrays for a drawn case)
FAMILIES = {"conv2d": (CONV, conv2d_cases(), conv_arrays),
            "conv_transpose2d": (CONVT, conv_transpose2d_cases(), convt_arrays)}


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("tier", tier_params(*CONV, *CONVT, compiled_only=True))
@examples
@given(data=st.data(), seed=seeds, with_bias=st.booleans())
def test_tier_matches_reference(tier, family, dtype, data, seed, with_bias):
    ops, cases, arrays = FAMILIES[family]
    x, w, b, grad_y, geom = arrays(data.draw(cases, label="case"), seed, dtype, with_bias)
    check_tier(ops, tier, x, w, b, grad_y, geom, dtype)


@pytest.mark.parametrize("tier", tier_params(*CONV, *CONVT, compiled_only=True))
def test_classic_cae_shapes_match_reference(tier):
    """The shapes the benchmarks time (smaller batch): 'same' 3x3 convs and a stride-2
    transposed conv, whose numba paths (4-channel blocks, image blocks) tiny draws miss."""
    if TINY:
        pytest.skip("too large for the CUDA simulator")
    rng = np.random.default_rng(0)
    n = 5
    for c_in, c_out, size in [(1, 32, 28), (32, 32, 14), (32, 1, 28)]:
        x = rng.standard_normal((n, c_in, size, size)).astype(np.float32)
        w = rng.standard_normal((c_out, c_in, 3, 3)).astype(np.float32)
        b = rng.standard_normal(c_out).astype(np.float32)
        geom = geometry.conv2d_geometry(x.shape, w.shape, 1, "same")
        check_tier(CONV, tier, x, w, b, rng.standard_normal(x.shape[:1] + (c_out, size, size))
                   .astype(np.float32), geom, np.float32)
    x = rng.standard_normal((n, 32, 7, 7)).astype(np.float32)
    w = rng.standard_normal((x.shape[1], 5, 3, 3)).astype(np.float32)
    geom = geometry.conv_transpose2d_geometry(x.shape, w.shape, 2, "same")
    assert (geom.out_h, geom.out_w) == (14, 14)
    check_tier(CONVT, tier, x, w, rng.standard_normal(5).astype(np.float32),
               rng.standard_normal((n, 5, 14, 14)).astype(np.float32), geom, np.float32)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("kernel", [3, 4])
@pytest.mark.parametrize("tier", tier_params(*CONV, compiled_only=True))
def test_channel_blocks_match_reference(tier, kernel, stride, dtype):
    """Channel counts that hit every register block of the compiled loops (8, 4 and 1 channels
    per pass: 13 = 8 + 4 + 1; 9 input channels fill one 9-wide Winograd group and spill into
    the next), which the small Hypothesis draws (<= 3 channels) never reach. A 4-wide kernel
    (the folded resizes' kernel) leaves one tap per row after the 3-tap passes."""
    if TINY:
        pytest.skip("too large for the CUDA simulator")
    rng = np.random.default_rng(stride)
    for c_in, c_out in [(9, 13), (13, 4), (8, 8)]:
        x = rng.standard_normal((3, c_in, 7, 6)).astype(dtype)
        w = rng.standard_normal((c_out, c_in, kernel, kernel)).astype(dtype)
        geom = geometry.conv2d_geometry(x.shape, w.shape, stride, "same")
        grad_y = rng.standard_normal((3, c_out, geom.out_h, geom.out_w)).astype(dtype)
        check_tier(CONV, tier, x, w, rng.standard_normal(c_out).astype(dtype), grad_y, geom, dtype)


@pytest.mark.parametrize("tier", tier_params("conv2d_backward_bias", compiled_only=True))
def test_bias_gradient_on_both_sides_of_the_serial_limit(tier):
    """The numba tier sums small gradients on the calling thread and large ones in parallel
    image blocks: both paths, with a batch that does not split evenly into the blocks."""
    if TINY:
        pytest.skip("too large for the CUDA simulator")
    from aecore.kernels.compile import SERIAL_MAX_VALUES
    rng = np.random.default_rng(0)
    for n, c, h, w in [(3, 5, 7, 6), (13, 7, 30, 31), (1, 3, 1, 1)]:
        grad_y = rng.standard_normal((n, c, h, w)).astype(np.float32)
        assert (grad_y.size > SERIAL_MAX_VALUES) == (n == 13)
        np.testing.assert_allclose(call("conv2d_backward_bias", tier, grad_y),
                                   grad_y.astype(np.float64).sum(axis=(0, 2, 3)), rtol=1e-5, atol=1e-4)


# ------------------------------------------------------------------------------------------------
# the reference against the slow definitions
# ------------------------------------------------------------------------------------------------

BRUTE_FORCE = {
    "conv2d": (CONV, conv2d_cases(max_n=2, max_c=2, max_hw=7), conv_arrays, brute_conv2d),
    "conv_transpose2d": (CONVT, conv_transpose2d_cases(max_n=2, max_c=2, max_hw=7), convt_arrays,
                         brute_conv_transpose2d),
}


@pytest.mark.parametrize("family", BRUTE_FORCE)
@examples
@given(data=st.data(), seed=seeds, with_bias=st.booleans())
def test_reference_matches_brute_force(family, data, seed, with_bias):
    (forward, backward_input, backward_weight), cases, arrays, brute = BRUTE_FORCE[family]
    x, w, b, grad_y, geom = arrays(data.draw(cases, label="case"), seed, np.float64, with_bias)
    y, grad_x, grad_w = brute(x, w, b, grad_y, geom)
    tol = TOL[np.float64]
    np.testing.assert_allclose(call(forward, "ref", x, w, b, geom), y, **tol)
    np.testing.assert_allclose(call(backward_input, "ref", grad_y, w, geom), grad_x, **tol)
    np.testing.assert_allclose(call(backward_weight, "ref", grad_y, x, geom), grad_w, **tol)
    # both families' bias gradient is this one op
    np.testing.assert_allclose(call("conv2d_backward_bias", "ref", grad_y), grad_y.sum(axis=(0, 2, 3)), **tol)


def test_conv_transpose2d_output_sizes():
    """PyTorch's size formula with output_padding, and TF's 'same' / 'valid'."""
    g = geometry.conv_transpose2d_geometry((1, 1, 7, 5), (1, 1, 3, 3), 2, 1, 1)
    assert (g.out_h, g.out_w) == (14, 10)
    g = geometry.conv_transpose2d_geometry((1, 1, 7, 5), (1, 1, 3, 3), (2, 3), "same")
    assert (g.out_h, g.out_w) == (14, 15)
    g = geometry.conv_transpose2d_geometry((1, 1, 7, 5), (1, 1, 1, 1), 3, "valid")
    assert (g.out_h, g.out_w) == (21, 15)


# ------------------------------------------------------------------------------------------------
# backward kernels against finite differences: forward is affine in x, in w and in b, so the
# central difference along a random direction is exact up to rounding, and the backward kernels
# must be its adjoints: <grad_y, dy/dt> == <backward(grad_y), direction>
# ------------------------------------------------------------------------------------------------

def check_finite_differences(ops, tier, x, w, b, grad_y, geom, seed):
    forward, backward_input, backward_weight = ops
    rng = np.random.default_rng(seed + 1)
    dx, dw, db = rng.standard_normal(x.shape), rng.standard_normal(w.shape), rng.standard_normal(b.shape)
    t = 1e-3

    def directional(xx, ww, bb, sign):
        return np.sum(grad_y * call(forward, tier, xx, ww, bb, geom)) * sign

    for name, numeric, analytic in [
        ("input", (directional(x + t * dx, w, b, 1) + directional(x - t * dx, w, b, -1)) / (2 * t),
         np.sum(call(backward_input, tier, grad_y, w, geom) * dx)),
        ("weight", (directional(x, w + t * dw, b, 1) + directional(x, w - t * dw, b, -1)) / (2 * t),
         np.sum(call(backward_weight, tier, grad_y, x, geom) * dw)),
        ("bias", (directional(x, w, b + t * db, 1) + directional(x, w, b - t * db, -1)) / (2 * t),
         np.sum(call("conv2d_backward_bias", tier, grad_y) * db)),
    ]:
        assert abs(numeric - analytic) <= 1e-7 * (1 + abs(analytic)), (name, numeric, analytic)


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("tier", tier_params(*CONV, *CONVT))
@few_examples
@given(data=st.data(), seed=st.integers(0, 2**31))
def test_backward_finite_differences(tier, family, data, seed):
    ops, cases, arrays = FAMILIES[family]
    x, w, b, grad_y, geom = arrays(data.draw(cases, label="case"), seed, np.float64)
    check_finite_differences(ops, tier, x, w, b, grad_y, geom, seed)


# ------------------------------------------------------------------------------------------------
# impossible geometry: ValueError / TypeError naming the argument, before any kernel runs
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("args, error, name", [
    (((1, 1, 3, 3), (1, 1, 4, 4), 1, 0), ValueError, "kernel size"),          # kernel > padded input
    (((1, 1, 3, 3), (1, 1, 6, 1), 1, 1), ValueError, "kernel size"),
    (((1, 1, 5, 5), (1, 1, 6, 6), 1, "valid"), ValueError, "kernel size"),
    (((0, 1, 5, 5), (1, 1, 3, 3), 1, 0), ValueError, "input"),                # zero sizes
    (((1, 1, 0, 5), (1, 1, 3, 3), 1, 0), ValueError, "input"),
    (((1, 1, 5, 5), (0, 1, 3, 3), 1, 0), ValueError, "weight"),
    (((1, 1, 5, 5), (1, 1, 0, 3), 1, 0), ValueError, "weight"),
    (((1, 5, 5), (1, 1, 3, 3), 1, 0), ValueError, "input"),                   # wrong ranks
    (((1, 1, 5, 5), (1, 3, 3), 1, 0), ValueError, "weight"),
    (((1, 2, 5, 5), (1, 3, 3, 3), 1, 0), ValueError, "channels"),             # channel mismatch
    (((1, 1, 5, 5), (1, 1, 3, 3), 0, 0), ValueError, "stride"),
    (((1, 1, 5, 5), (1, 1, 3, 3), (1, 2, 3), 0), TypeError, "stride"),
    (((1, 1, 5, 5), (1, 1, 3, 3), 1, -1), ValueError, "padding"),
    (((1, 1, 5, 5), (1, 1, 3, 3), 1, "full"), ValueError, "padding"),         # bad padding string
    (((1, 1, 5, 5), (1, 1, 3, 3), 1, 1.5), TypeError, "padding"),
    (((1, 1, 5, 5), (1, 1, 3, 3), 1, True), TypeError, "padding"),
])
def test_conv2d_geometry_errors(args, error, name):
    with pytest.raises(error, match=name):
        geometry.conv2d_geometry(*args)


def test_conv2d_geometry_bias_shape():
    with pytest.raises(ValueError, match="bias"):
        geometry.conv2d_geometry((1, 1, 5, 5), (2, 1, 3, 3), b_shape=(3,))
    with pytest.raises(ValueError, match="bias"):
        geometry.conv2d_geometry((1, 1, 5, 5), (2, 1, 3, 3), b_shape=(2, 1))


@pytest.mark.parametrize("kwargs, error, name", [
    (dict(stride=2, padding=0, output_padding=2), ValueError, "output_padding"),   # >= stride
    (dict(stride=(2, 1), padding=0, output_padding=(0, 1)), ValueError, "output_padding"),
    (dict(stride=2, padding="same", output_padding=2), ValueError, "output_padding"),  # >= stride
    (dict(stride=1, padding=5), ValueError, "padding"),                            # crops all
    (dict(stride=1, padding="full"), ValueError, "padding"),
    (dict(stride=1, padding=(1, 2, 3)), TypeError, "padding"),
    (dict(stride=0), ValueError, "stride"),
    (dict(output_padding=-1, stride=2), ValueError, "output_padding"),
])
def test_conv_transpose2d_geometry_errors(kwargs, error, name):
    with pytest.raises(error, match=name):
        geometry.conv_transpose2d_geometry((1, 2, 3, 3), (2, 4, 3, 3), **kwargs)


@pytest.mark.parametrize("x_shape, w_shape, b_shape, name", [
    ((1, 2, 3, 3), (3, 4, 3, 3), None, "channels"),
    ((1, 2, 3, 3), (2, 4, 3), None, "weight"),
    ((1, 2, 0, 3), (2, 4, 3, 3), None, "input"),
    ((1, 2, 3, 3), (2, 0, 3, 3), None, "weight"),
    ((1, 2, 3, 3), (2, 4, 3, 3), (3,), "bias"),
])
def test_conv_transpose2d_geometry_shape_errors(x_shape, w_shape, b_shape, name):
    with pytest.raises(ValueError, match=name):
        geometry.conv_transpose2d_geometry(x_shape, w_shape, b_shape=b_shape)


@pytest.mark.parametrize("tier", tier_params(*CONV, *CONVT))
def test_backward_passes_are_deterministic(tier):
    """The same inputs give bit-identical gradients run after run (no atomics, fixed order),
    whatever the thread count, the inputs' alignment and the scratch memory's old contents."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 5, 5) if TINY else (3, 4, 9, 9)).astype(np.float32)
    w = rng.standard_normal((4, 3, 3, 3) if TINY else (5, 4, 3, 3)).astype(np.float32)
    geom = geometry.conv2d_geometry(x.shape, w.shape, stride=2, padding=1)
    grad_y = rng.standard_normal((x.shape[0], w.shape[0], geom.out_h, geom.out_w)).astype(np.float32)
    for op, args in (("conv2d_backward_input", (grad_y, w, geom)),
                     ("conv2d_backward_weight", (grad_y, x, geom))):
        first, second = run_twice(op, tier, *args)
        assert first.tobytes() == second.tobytes(), op
    # the same arrays as a transposed conv: input grad_y (N, Cout, oh, ow), weight w read as (Cin_t, Cout_t, kH, kW)
    tgeom = geometry.conv_transpose2d_geometry(grad_y.shape, w.shape, stride=2, padding=1)
    out = rng.standard_normal((x.shape[0], w.shape[1], tgeom.out_h, tgeom.out_w)).astype(np.float32)
    for op, args in (("conv_transpose2d_backward_input", (out, w, tgeom)),
                     ("conv_transpose2d_backward_weight", (out, grad_y, tgeom))):
        first, second = run_twice(op, tier, *args)
        assert first.tobytes() == second.tobytes(), op
