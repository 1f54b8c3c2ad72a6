"""conv2d and conv_transpose2d kernels: every tier against the reference (forward and both
backward outputs), the reference against slow per-element definitions and against PyTorch, the
backward kernels against finite differences (the adjoint identity), and geometry errors; all on
drawn geometry with dilation 1-3 and groups 1, 2 or Cin (depthwise)."""

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
    """(x, w, b, grad_y, geom) of `dtype` for a conv2d case (conv2d_cases(dilation_groups=True))."""
    x_shape, w_shape, stride, padding, dilation, groups = case
    geom = geometry.conv2d_geometry(x_shape, w_shape, stride, padding, b_shape=(w_shape[0],),
                                    dilation=dilation, groups=groups)
    return _arrays(x_shape, w_shape, w_shape[0], geom, seed, dtype, with_bias)


def convt_arrays(case, seed, dtype, with_bias=True):
    x_shape, w_shape, stride, padding, output_padding, dilation, groups = case
    geom = geometry.conv_transpose2d_geometry(x_shape, w_shape, stride, padding, output_padding,
                                              b_shape=(w_shape[1] * groups,), dilation=dilation,
                                              groups=groups)
    return _arrays(x_shape, w_shape, w_shape[1] * groups, geom, seed, dtype, with_bias)


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
    """Textbook conv2d: y[n, co, oy, ox] = b[co] + sum x[n, c0 + ci, oy*s + ky*d - top, ...]
    w[co, ci, ky, kx], c0 the first input channel of co's group; grad_x and grad_w accumulate
    grad_y times the other factor of every product."""
    n_, _, h, w_in = x.shape
    c_out, c_in_group, k_h, k_w = w.shape
    sh, sw, top, left = geom.stride_h, geom.stride_w, geom.pad_top, geom.pad_left
    dh, dw = geom.dilation
    y = np.zeros((n_, c_out, geom.out_h, geom.out_w))
    grad_x, grad_w = np.zeros(x.shape), np.zeros(w.shape)
    for n in range(n_):
        for co in range(c_out):
            c0 = co // (c_out // geom.groups) * c_in_group
            for oy in range(geom.out_h):
                for ox in range(geom.out_w):
                    y[n, co, oy, ox] = 0.0 if b is None else b[co]
                    for ci in range(c_in_group):
                        for ky in range(k_h):
                            for kx in range(k_w):
                                iy, ix = oy * sh + ky * dh - top, ox * sw + kx * dw - left
                                if 0 <= iy < h and 0 <= ix < w_in:
                                    y[n, co, oy, ox] += x[n, c0 + ci, iy, ix] * w[co, ci, ky, kx]
                                    grad_x[n, c0 + ci, iy, ix] += grad_y[n, co, oy, ox] * w[co, ci, ky, kx]
                                    grad_w[co, ci, ky, kx] += grad_y[n, co, oy, ox] * x[n, c0 + ci, iy, ix]
    return y, grad_x, grad_w


def brute_conv_transpose2d(x, w, b, grad_y, geom):
    """Scatter each input pixel times every tap of the kernel into the full
    ((H-1)*s + d*(k-1) + 1) result, tap (ky, kx) (ky*d, kx*d) away, into the output channels
    of the pixel's group; then take the window at (pad_top, pad_left) of the output size (zeros
    past the end), plus the bias."""
    n_, c_in, h, w_in = x.shape
    _, c_out_group, k_h, k_w = w.shape
    c_out = c_out_group * geom.groups
    sh, sw, top, left = geom.stride_h, geom.stride_w, geom.pad_top, geom.pad_left
    dh, dw = geom.dilation
    out_h, out_w = geom.out_h, geom.out_w

    def taps(ci, iy, ix):
        """(output channels of ci's group, full row, full column, ky, kx) of every tap."""
        group = ci // (c_in // geom.groups)
        channels = slice(group * c_out_group, (group + 1) * c_out_group)
        return [(channels, iy * sh + ky * dh, ix * sw + kx * dw, ky, kx)
                for ky in range(k_h) for kx in range(k_w)]

    full = np.zeros((n_, c_out, (h - 1) * sh + geom.span_h, (w_in - 1) * sw + geom.span_w))
    for n in range(n_):
        for ci in range(c_in):
            for iy in range(h):
                for ix in range(w_in):
                    for channels, fy, fx, ky, kx in taps(ci, iy, ix):
                        full[n, channels, fy, fx] += x[n, ci, iy, ix] * w[ci, :, ky, kx]
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
                    for channels, fy, fx, ky, kx in taps(ci, iy, ix):
                        grad_x[n, ci, iy, ix] += np.sum(grad_full[n, channels, fy, fx] * w[ci, :, ky, kx])
                        grad_w[ci, :, ky, kx] += x[n, ci, iy, ix] * grad_full[n, channels, fy, fx]
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
FAMILIES = {"conv2d": (CONV, conv2d_cases(dilation_groups=True), conv_arrays),
            "conv_transpose2d": (CONVT, conv_transpose2d_cases(dilation_groups=True), convt_arrays)}


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


def test_stride1_planes_share_their_padding():
    """At stride 1 the packed planes hold max(pad before, pad after) zeros between two images,
    not their sum; a stride phase's plane keeps both."""
    from aecore.kernels.conv2d import direct
    same3 = dict(pads=(1, 1), kernel_hw=(3, 3), stride=(1, 1), dilation=(1, 1))
    assert direct.plane_hw((7, 7), out_hw=(7, 7), **same3) == (8, 8)
    assert direct.plane_hw((28, 14), out_hw=(28, 14), **same3) == (29, 15)
    assert direct.plane_hw((7, 7), (0, 0), (5, 5), (3, 3), (1, 1), (1, 1)) == (7, 7)  # 'valid'
    assert direct.plane_hw((1, 1), (3, 3), (7, 7), (3, 3), (1, 1), (1, 1)) == (7, 7)  # the outputs
    assert direct.plane_hw((14, 14), (0, 0), (7, 7), (3, 3), (2, 2), (1, 1)) == (8, 8)


def test_pack_matches_its_definition():
    """direct.pack against its definition written in NumPy, buf[c, ry, rx, n, a, q] =
    x[n, c, a*sH + ry - top, q*sW + rx - left] (0 outside x), and zero slack: strides 1-3,
    pads wider than the image, planes shorter or longer than the padded image."""
    from aecore.kernels.compile import NUMBA_AVAILABLE
    from aecore.kernels.conv2d import direct
    if not NUMBA_AVAILABLE or TINY:
        pytest.skip("the numba tier's loops")
    rng = np.random.default_rng(5)
    for _ in range(120):
        n, c, h, w = (int(v) for v in rng.integers(1, 7, 4))
        sh, sw, top, left = (int(v) for v in rng.integers(1, 4, 4))
        hq, wq = (int(v) for v in rng.integers(1, 10, 2))
        x = rng.standard_normal((n, c, h, w)).astype(np.float32)
        padded = np.zeros((n, c, hq * sh + top + h, wq * sw + left + w), np.float32)
        padded[:, :, top:top + h, left:left + w] = x
        expected = np.stack([np.stack([padded[:, :, ry:ry + hq * sh:sh, rx:rx + wq * sw:sw]
                                       for rx in range(sw)], axis=1) for ry in range(sh)], axis=1)
        expected = expected.transpose(3, 1, 2, 0, 4, 5).reshape(-1)  # (C, sH, sW, N, Hq, Wq)
        buf = direct.pack(x, top, left, (sh, sw), hq, wq, 3)
        np.testing.assert_array_equal(buf[:expected.size], expected)
        assert buf.size > expected.size and not buf[expected.size:].any()


@pytest.mark.parametrize("tier", tier_params(*CONVT, compiled_only=True))
def test_column_phase_pairs_match_reference(tier):
    """At stride 2 the numba tier writes a transposed conv's two column phases in one loop
    (direct.column_pairs): output widths even and odd (phases of equal width, and the second
    one column short), a crop that starts y on the second phase, stride 3 (never paired)."""
    if TINY:
        pytest.skip("too large for the CUDA simulator")
    from aecore.kernels.conv2d import direct
    table = np.array([[2, 2, 4, 6, 0, 0, 0, 0, 0], [2, 1, 4, 5, 0, 1, 0, 0, 0],
                      [1, 2, 3, 6, 1, 0, 0, 0, 0], [1, 1, 3, 6, 1, 1, 0, 0, 0]], np.int64)
    assert list(direct.column_pairs(table, (2, 2))) == [1, 0, 1, 0]
    assert list(direct.column_pairs(table, (2, 3))) == [0, 0, 0, 0]
    table[1, 3] = 7                                       # the second one wider: not a pair
    assert list(direct.column_pairs(table, (2, 2))) == [0, 0, 1, 0]
    for x_shape, w_shape, stride, padding, output_padding in [
            ((3, 4, 5, 5), (4, 6, 3, 3), 2, 0, 0), ((3, 4, 5, 6), (4, 5, 3, 3), 2, 1, 1),
            ((2, 3, 4, 5), (3, 4, 4, 4), 2, 1, 0), ((2, 3, 4, 4), (3, 2, 3, 3), 3, 1, 2)]:
        geom = geometry.conv_transpose2d_geometry(x_shape, w_shape, stride, padding,
                                                  output_padding, b_shape=(w_shape[1],))
        x, w, b, grad_y, geom = _arrays(x_shape, w_shape, w_shape[1], geom, 1, np.float32, True)
        check_tier(CONVT, tier, x, w, b, grad_y, geom, np.float32)


def test_sharing_packs_makes_each_copy_once(monkeypatch):
    """Inside direct.sharing_packs() the same array packed the same way is packed once (another
    array, another geometry or more slack is packed anew; outside the scope, every call packs);
    and a strided transposed conv's backward packs grad_y once for both of its gradients, with
    the reference's results."""
    from aecore.kernels.compile import NUMBA_AVAILABLE
    from aecore.kernels.conv2d import direct
    if not NUMBA_AVAILABLE or TINY:
        pytest.skip("the numba tier's loops")
    import aecore as ae
    rng = np.random.default_rng(11)
    x = rng.standard_normal((3, 2, 6, 5)).astype(np.float32)
    packed = []
    real_task = direct._pack_task
    original_parallel_for = direct.parallel_for

    def counting_parallel_for(task, *args):
        if task is real_task:
            packed.append(args[1])                      # the array packed
        return original_parallel_for(task, *args)

    monkeypatch.setattr(direct, "parallel_for", counting_parallel_for)
    with direct.sharing_packs():
        first = direct.pack(x, 1, 1, (2, 2), 4, 4, 3)
        assert direct.pack(x, 1, 1, (2, 2), 4, 4, 3) is first
        assert direct.pack(x, 1, 1, (2, 2), 4, 4, 2) is first          # less slack: the same
        assert direct.pack(x, 1, 1, (2, 2), 4, 4, 40) is not first     # more slack: anew
        assert direct.pack(x.copy(), 1, 1, (2, 2), 4, 4, 3) is not first
        assert direct.pack(x, 0, 1, (2, 2), 4, 4, 3) is not first
    assert len(packed) == 4
    direct.pack(x, 1, 1, (2, 2), 4, 4, 3)
    direct.pack(x, 1, 1, (2, 2), 4, 4, 3)
    assert len(packed) == 6

    x_np = rng.standard_normal((4, 3, 5, 5)).astype(np.float32)
    w_np = rng.standard_normal((3, 2, 3, 3)).astype(np.float32)
    x_t, w_t = ae.tensor(x_np, requires_grad=True), ae.tensor(w_np, requires_grad=True)
    y = ae.functional.conv_transpose2d(x_t, w_t, stride=2, padding=1, output_padding=1)
    grad_y = rng.standard_normal(y.shape).astype(np.float32)
    del packed[:]
    y.backward(ae.tensor(grad_y))
    assert sum(a is not None and a.shape == grad_y.shape for a in packed) == 1
    geom = geometry.conv_transpose2d_geometry(x_t.shape, w_t.shape, 2, 1, 1)
    np.testing.assert_allclose(x_t.grad, call("conv_transpose2d_backward_input", "ref", grad_y,
                                              w_np, geom), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(w_t.grad, call("conv_transpose2d_backward_weight", "ref", grad_y,
                                              x_np, geom), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("tier", tier_params(*CONV, *CONVT, compiled_only=True))
def test_shared_padding_edge_geometry_matches_reference(tier):
    """Where the shared padding is easiest to get wrong: padding wider than the kernel reaches,
    uneven pads (a 4x4 'same' kernel), dilation, one-pixel images, transposed convs that crop,
    and batches of several image blocks (70 images of 5x5)."""
    if TINY:
        pytest.skip("too large for the CUDA simulator")
    rng = np.random.default_rng(7)
    conv_cases = [((70, 3, 5, 5), (5, 3, 3, 3), 1, "same", 1), ((4, 2, 1, 1), (3, 2, 3, 3), 1, 3, 1),
                  ((5, 6, 7, 6), (9, 6, 4, 4), 1, "same", 1), ((3, 2, 9, 8), (4, 2, 3, 2), 1, (4, 1), 2),
                  ((3, 5, 6, 7), (4, 5, 3, 3), 1, "valid", (2, 1))]
    for x_shape, w_shape, stride, padding, dilation in conv_cases:
        geom = geometry.conv2d_geometry(x_shape, w_shape, stride, padding, b_shape=(w_shape[0],),
                                        dilation=dilation)
        x, w, b, grad_y, geom = _arrays(x_shape, w_shape, w_shape[0], geom, 1, np.float32, True)
        check_tier(CONV, tier, x, w, b, grad_y, geom, np.float32)
    convt_cases = [((6, 4, 5, 5), (4, 3, 3, 3), 1, 2, 0), ((40, 3, 4, 4), (3, 5, 4, 4), 2, 2, 1),
                   ((3, 2, 3, 5), (2, 4, 5, 3), 3, 1, 2), ((5, 6, 7, 7), (6, 6, 3, 3), 2, "same", 0)]
    for x_shape, w_shape, stride, padding, output_padding in convt_cases:
        geom = geometry.conv_transpose2d_geometry(x_shape, w_shape, stride, padding, output_padding,
                                                  b_shape=(w_shape[1],))
        x, w, b, grad_y, geom = _arrays(x_shape, w_shape, w_shape[1], geom, 2, np.float32, True)
        check_tier(CONVT, tier, x, w, b, grad_y, geom, np.float32)


@pytest.mark.parametrize("stride, kernel, dilation, out_hw", [
    ((2, 2), (3, 3), (1, 1), (13, 12)),     # phases of 2x2, 2x1, 1x2, 1x1 taps, 7 / 6 outputs
    ((3, 2), (4, 3), (1, 2), (17, 14)),     # six phases, dilated columns
    ((2, 3), (1, 2), (1, 1), (11, 15)),     # kernel below the stride: phases with only the bias
])
def test_transposed_phases_run_in_one_set_of_tasks(stride, kernel, dilation, out_hw, monkeypatch):
    """A strided transposed conv runs all its phase convs in one launch (each task writes every
    phase of its images and channels), with results equal to the reference: 45 images (several
    image blocks) and 6 output channels (a block of 4 and one of 2)."""
    from aecore.kernels.compile import NUMBA_AVAILABLE
    from aecore.kernels.conv2d import direct, reference
    if not NUMBA_AVAILABLE or TINY:
        pytest.skip("the numba tier's loops")
    rng = np.random.default_rng(sum(out_hw))
    x = rng.standard_normal((45, 5, 6, 7)).astype(np.float32)
    w = rng.standard_normal((5, 6) + kernel).astype(np.float32)
    b = rng.standard_normal(6).astype(np.float32)
    launches = []
    original = direct.parallel_for

    def counting(task, *args):
        launches.append(task)
        return original(task, *args)

    monkeypatch.setattr(direct, "parallel_for", counting)
    got = direct.scatter_by_phases(x, w, b, stride, (1, 0), out_hw, dilation=dilation)
    expected = reference.scatter_ref(x, w, b, stride, (1, 0), out_hw, dilation=dilation)
    np.testing.assert_allclose(got, expected, **TOL[np.float32])
    assert launches.count(direct._gather_task) == 1


@pytest.mark.parametrize("g_rows", [4, 8])
@pytest.mark.parametrize("stride", [1, 2])
def test_both_weight_gradient_blockings_match_reference(g_rows, stride):
    """The numba weight gradient's two register blockings (8 or 4 rows of g per pass; which one
    runs depends on the machine's vector registers), each forced, against the reference; 13
    output channels take 8 + 4 + 1 rows, or 4 + 4 + 4 + 1."""
    from aecore.kernels.compile import NUMBA_AVAILABLE
    from aecore.kernels.conv2d import direct, reference
    if not NUMBA_AVAILABLE or TINY:
        pytest.skip("the numba tier's loops")
    rng = np.random.default_rng(g_rows)
    x = rng.standard_normal((6, 5, 9, 8)).astype(np.float32)
    geom = geometry.conv2d_geometry(x.shape, (13, 5, 3, 4), stride, "same")
    g = rng.standard_normal((6, 13, geom.out_h, geom.out_w)).astype(np.float32)
    expected = reference.weight_ref(g, x, geom.stride, geom.pads, (3, 4))
    got = direct.weight_numba(g, x, geom.stride, geom.pads, (3, 4), g_rows=g_rows)
    np.testing.assert_allclose(got, expected, **TOL[np.float32])
    with pytest.raises(ValueError, match="g_rows must be 4 or 8, got 6"):
        direct.weight_numba(g, x, geom.stride, geom.pads, (3, 4), g_rows=6)


@pytest.mark.parametrize("features, rows", [("+avx2,+fma,-avx512f,-avx512vl", 4),
                                            ("+avx2,+avx512f,+avx512vl", 8), ("", 4),
                                            ("+neon,+fp-armv8", 4)])
def test_weight_gradient_rows_follow_the_vector_registers(monkeypatch, features, rows):
    """8 rows of g per pass only where Numba's code has AVX-512's 32 vector registers."""
    from aecore.kernels import compile as compiled
    from aecore.kernels.conv2d import direct
    monkeypatch.setattr(compiled, "NUMBA_AVAILABLE", True)
    monkeypatch.setattr(compiled, "target_features", lambda: features)
    assert direct.weight_g_rows.__wrapped__() == rows


def test_weight_gradient_rows_for_an_avx2_target_in_a_fresh_process():
    """NUMBA_CPU_NAME=haswell with no features (AVX2's code, on any x86 CPU) gives 4 rows."""
    import subprocess
    import sys
    from aecore.kernels.compile import NUMBA_AVAILABLE
    if not NUMBA_AVAILABLE or __import__("platform").machine().lower() not in ("x86_64", "amd64"):
        pytest.skip("needs Numba on an x86 CPU")
    env = dict(__import__("os").environ, NUMBA_CPU_NAME="haswell", NUMBA_CPU_FEATURES="")
    out = subprocess.run([sys.executable, "-c", "from aecore.kernels.conv2d import direct; "
                          "print(direct.weight_g_rows())"], env=env, capture_output=True,
                         text=True, timeout=120, check=True)
    assert out.stdout.strip() == "4"


@pytest.mark.parametrize("tier", tier_params("conv2d_backward_bias", compiled_only=True))
def test_bias_gradient_on_both_sides_of_the_serial_limit(tier):
    """The numba tier sums small gradients on the calling thread and large ones in parallel
    image blocks: both paths, with a batch that does not split evenly into the blocks."""
    if TINY:
        pytest.skip("too large for the CUDA simulator")
    from aecore.kernels.compile import SERIAL_MAX_VALUES
    rng = np.random.default_rng(0)
    for n, c, h, w in [(3, 5, 7, 6), (13, 7, 60, 61), (1, 3, 1, 1)]:
        grad_y = rng.standard_normal((n, c, h, w)).astype(np.float32)
        assert (grad_y.size > SERIAL_MAX_VALUES) == (n == 13)
        np.testing.assert_allclose(call("conv2d_backward_bias", tier, grad_y),
                                   grad_y.astype(np.float64).sum(axis=(0, 2, 3)), rtol=1e-5, atol=1e-4)


# ------------------------------------------------------------------------------------------------
# the reference against the slow definitions
# ------------------------------------------------------------------------------------------------

BRUTE_FORCE = {
    "conv2d": (CONV, conv2d_cases(max_n=2, max_c=2, max_hw=7, dilation_groups=True), conv_arrays,
               brute_conv2d),
    "conv_transpose2d": (CONVT, conv_transpose2d_cases(max_n=2, max_c=2, max_hw=7,
                                                       dilation_groups=True),
                         convt_arrays, brute_conv_transpose2d),
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
# backward kernels against finite differences: forward is affine in x, in w and in b, so a
# difference quotient along a random direction is exact up to rounding (one step from the
# unperturbed forward is enough), and the backward kernels must be its adjoints:
# <grad_y, dy/dt> == <backward(grad_y), direction>
# ------------------------------------------------------------------------------------------------

def check_finite_differences(ops, tier, x, w, b, grad_y, geom, seed):
    forward, backward_input, backward_weight = ops
    rng = np.random.default_rng(seed + 1)
    dx, dw, db = rng.standard_normal(x.shape), rng.standard_normal(w.shape), rng.standard_normal(b.shape)
    t = 1e-3

    def loss(xx, ww, bb):
        return np.sum(grad_y * call(forward, tier, xx, ww, bb, geom))

    at_start = loss(x, w, b)      # four forward calls in all: each one is slow in the CUDA simulator
    for name, numeric, analytic in [
        ("input", (loss(x + t * dx, w, b) - at_start) / t,
         np.sum(call(backward_input, tier, grad_y, w, geom) * dx)),
        ("weight", (loss(x, w + t * dw, b) - at_start) / t,
         np.sum(call(backward_weight, tier, grad_y, x, geom) * dw)),
        ("bias", (loss(x, w, b + t * db) - at_start) / t,
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


# ------------------------------------------------------------------------------------------------
# dilation and groups: sizes, errors, the numba tier's choice of path, PyTorch, gradcheck, layers
# ------------------------------------------------------------------------------------------------

def test_dilated_output_sizes_and_grouped_weight_shapes():
    """out = (in + pads - d*(k-1) - 1) // s + 1; TF's 'same' pads for the dilated kernel; the
    weight is (Cout, Cin/groups, ..) for conv2d and (Cin, Cout/groups, ..) transposed."""
    g = geometry.conv2d_geometry((1, 4, 9, 8), (6, 2, 3, 2), 1, 0, dilation=(2, 3), groups=2)
    assert (g.out_h, g.out_w, g.span_h, g.span_w) == (5, 5, 5, 4)
    assert geometry.conv2d_arrays(g)["weight"] == (6, 2, 3, 2)
    g = geometry.conv2d_geometry((1, 3, 9, 9), (3, 1, 3, 3), 2, "same", dilation=2, groups=3)
    assert (g.out_h, g.pad_top, g.pad_bottom) == (5, 2, 2)        # total (5-1)*2 + 5 - 9 = 4
    g = geometry.conv_transpose2d_geometry((1, 4, 5, 5), (4, 3, 3, 3), 2, 1, 1, dilation=2,
                                           groups=2)
    assert (g.c_out, g.out_h) == (6, (5 - 1) * 2 - 2 + 2 * 2 + 1 + 1)
    assert geometry.conv_transpose2d_arrays(g)["weight"] == (4, 3, 3, 3)
    g = geometry.conv_transpose2d_geometry((1, 1, 7, 5), (1, 1, 3, 3), 2, "valid", dilation=2)
    assert (g.out_h, g.out_w) == (6 * 2 + 5, 4 * 2 + 5)          # Keras: (H-1)*s + span


@pytest.mark.parametrize("make, error, message", [
    (lambda: geometry.conv2d_geometry((1, 3, 5, 5), (2, 1, 3, 3), groups=3), ValueError,
     "groups=3 must divide the output channels"),
    (lambda: geometry.conv2d_geometry((1, 3, 5, 5), (2, 1, 3, 3), groups=2), ValueError,
     "groups=2 must divide the input channels"),
    (lambda: geometry.conv2d_geometry((1, 4, 5, 5), (2, 4, 3, 3), groups=2), ValueError,
     "weight expects 4 input channels per group"),
    (lambda: geometry.conv2d_geometry((1, 1, 5, 5), (1, 1, 3, 3), dilation=0), ValueError,
     "dilation must be >= 1"),
    (lambda: geometry.conv2d_geometry((1, 1, 5, 5), (1, 1, 3, 3), dilation=(1, -2)), ValueError,
     "dilation must be >= 1"),
    (lambda: geometry.conv2d_geometry((1, 1, 5, 5), (1, 1, 3, 3), dilation=1.5), TypeError,
     "dilation must be an int"),
    (lambda: geometry.conv2d_geometry((1, 1, 5, 5), (1, 1, 3, 3), groups=0), ValueError,
     "groups must be >= 1"),
    (lambda: geometry.conv2d_geometry((1, 1, 5, 5), (1, 1, 3, 3), groups=True), TypeError,
     "groups must be an int"),
    (lambda: geometry.conv2d_geometry((1, 1, 5, 5), (1, 1, 3, 3), dilation=3), ValueError,
     r"kernel size \(3, 3\) dilated by \(3, 3\) to \(7, 7\) is larger"),
    (lambda: geometry.conv_transpose2d_geometry((1, 3, 5, 5), (3, 1, 3, 3), groups=2), ValueError,
     "groups=2 must divide the input channels"),
    (lambda: geometry.conv_transpose2d_geometry((1, 2, 5, 5), (2, 1, 3, 3), dilation=0),
     ValueError, "dilation must be >= 1"),
])
def test_dilation_and_groups_errors(make, error, message):
    with pytest.raises(error, match=message):
        make()


def test_a_geometry_with_groups_that_do_not_divide_is_refused():
    geom = geometry.conv2d_geometry((1, 4, 5, 5), (4, 2, 3, 3), groups=2).replace(groups=3)
    with pytest.raises(ValueError, match="geom.groups is 3"):
        geometry.conv2d_arrays(geom)
    geom = geometry.conv2d_geometry((1, 4, 5, 5), (4, 2, 3, 3), groups=2).replace(dilation_h=0)
    with pytest.raises(ValueError, match="geom.dilation_h"):
        geometry.conv2d_arrays(geom)


def test_winograd_takes_only_undilated_convs():
    from aecore.kernels import conv2d
    assert conv2d.uses_winograd((32, 32, 3, 3), (1, 1), (1, 1), out_hw=(14, 14))
    assert not conv2d.uses_winograd((32, 32, 3, 3), (1, 1), (2, 2), out_hw=(14, 14))
    assert not conv2d.uses_winograd((32, 32, 3, 3), (1, 1), (1, 2), out_hw=(14, 14))


@pytest.mark.parametrize("tier", tier_params(*CONV, compiled_only=True))
@pytest.mark.parametrize("dilation, groups", [((2, 2), 1), ((1, 1), 2), ((3, 1), 2), ((1, 1), 16)])
def test_winograd_shaped_convs_with_dilation_or_groups_match_reference(tier, dilation, groups):
    """3x3 stride-1 convs with many channels, the shape the numba tier sends to Winograd: a
    dilated one must take the direct loops, a grouped one runs per group (Winograd for groups
    of 8+ channels, the direct loops for the 1-channel groups of the depthwise conv)."""
    if TINY:
        pytest.skip("too large for the CUDA simulator")
    rng = np.random.default_rng(groups)
    x = rng.standard_normal((3, 16, 11, 10)).astype(np.float32)
    w = rng.standard_normal((16, 16 // groups, 3, 3)).astype(np.float32)
    geom = geometry.conv2d_geometry(x.shape, w.shape, 1, "same", dilation=dilation, groups=groups)
    grad_y = rng.standard_normal((3, 16, geom.out_h, geom.out_w)).astype(np.float32)
    check_tier(CONV, tier, x, w, rng.standard_normal(16).astype(np.float32), grad_y, geom,
               np.float32)


@pytest.mark.parametrize("family", FAMILIES)
@few_examples
@given(data=st.data(), seed=seeds, with_bias=st.booleans())
def test_reference_matches_torch(family, data, seed, with_bias):
    """The reference's forward and both gradients against PyTorch's F.conv2d /
    F.conv_transpose2d and autograd, float64, with PyTorch's dilation and groups."""
    torch = pytest.importorskip("torch")
    ops, cases, arrays = FAMILIES[family]
    x, w, b, grad_y, geom = arrays(data.draw(cases, label="case"), seed, np.float64, with_bias)
    transposed = family == "conv_transpose2d"
    output_padding = (geom.pad_top - geom.pad_bottom, geom.pad_left - geom.pad_right)
    if (geom.pad_top, geom.pad_left) != (geom.pad_bottom, geom.pad_right) and not transposed or \
            transposed and not all(0 <= p < s for p, s in zip(output_padding, geom.stride)):
        return                                       # a padding PyTorch cannot express
    xt, wt = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    bt = None if b is None else torch.tensor(b)
    pads = (geom.pad_top, geom.pad_left)
    if transposed:
        y = torch.nn.functional.conv_transpose2d(xt, wt, bt, geom.stride, pads, output_padding,
                                                 geom.groups, geom.dilation)
    else:
        y = torch.nn.functional.conv2d(xt, wt, bt, geom.stride, pads, geom.dilation, geom.groups)
    y.backward(torch.tensor(grad_y))
    forward, backward_input, backward_weight = ops
    tol = TOL[np.float64]
    np.testing.assert_allclose(call(forward, "ref", x, w, b, geom), y.detach().numpy(), **tol)
    np.testing.assert_allclose(call(backward_input, "ref", grad_y, w, geom), xt.grad.numpy(), **tol)
    np.testing.assert_allclose(call(backward_weight, "ref", grad_y, x, geom), wt.grad.numpy(), **tol)


@pytest.mark.parametrize("family", FAMILIES)
@few_examples
@given(data=st.data(), seed=seeds)
def test_reference_gradcheck_with_dilation_and_groups(family, data, seed):
    """aecore.gradcheck (float64, central differences) of F.conv2d / F.conv_transpose2d on the
    reference tier, over drawn dilation and groups."""
    import aecore as ae
    import aecore.functional as F
    case = data.draw(FAMILIES[family][1], label="case")
    rng = np.random.default_rng(seed)
    x_shape, w_shape = case[0], case[1]
    *geometry_args, dilation, groups = case[2:]
    c_out = w_shape[1] * groups if family == "conv_transpose2d" else w_shape[0]
    inputs = [ae.tensor(rng.standard_normal(shape), dtype=np.float64, requires_grad=True)
              for shape in (x_shape, w_shape, (c_out,))]
    if family == "conv2d":
        def run(x, w, b):
            return F.conv2d(x, w, b, *geometry_args, dilation=dilation, groups=groups)
    else:
        def run(x, w, b):
            return F.conv_transpose2d(x, w, b, *geometry_args, groups=groups, dilation=dilation)
    with ae.use_tier("ref"):
        assert ae.gradcheck(run, inputs)


def test_conv_layers_take_dilation_and_groups():
    """nn.Conv2d / nn.ConvTranspose2d: PyTorch's argument order and weight shapes, the same
    values as the functional call, and channel counts that groups must divide."""
    import aecore as ae
    import aecore.functional as F
    from aecore import nn
    x = ae.tensor(np.random.default_rng(0).standard_normal((2, 4, 9, 9)), dtype=np.float32)
    conv = nn.Conv2d(4, 6, 3, 1, 2, 2, 2)              # stride, padding, dilation, groups
    assert conv.weight.shape == (6, 2, 3, 3) and (conv.dilation, conv.groups) == ((2, 2), 2)
    assert "dilation=(2, 2), groups=2" in conv.extra_repr()
    np.testing.assert_array_equal(conv(x).numpy(), F.conv2d(x, conv.weight, conv.bias, 1, 2,
                                                            dilation=2, groups=2).numpy())
    depthwise = nn.ConvTranspose2d(4, 8, 3, 2, 1, 1, 4, True, 2)   # ..., groups, bias, dilation
    assert depthwise.weight.shape == (4, 2, 3, 3)
    y = depthwise(x)
    assert y.shape == (2, 8, (9 - 1) * 2 - 2 + 2 * 2 + 1 + 1, 20)
    np.testing.assert_array_equal(y.numpy(), F.conv_transpose2d(
        x, depthwise.weight, depthwise.bias, 2, 1, 1, groups=4, dilation=2).numpy())
    with pytest.raises(ValueError, match="out_channels must be divisible by groups=4, got 6"):
        nn.Conv2d(4, 6, 3, groups=4)
    with pytest.raises(ValueError, match="in_channels must be divisible by groups=2, got 3"):
        nn.ConvTranspose2d(3, 4, 3, groups=2)
    with pytest.raises(ValueError, match="dilation must be >= 1"):
        nn.Conv2d(4, 4, 3, dilation=0)


def test_grouped_conv_flops_and_bytes():
    """Each output meets Cin/groups channels: groups divide the multiply-adds and the weight;
    dilation spreads the taps without adding any."""
    from aecore.inspect.costs import op_cost
    plain = geometry.conv2d_geometry((2, 8, 9, 9), (8, 8, 3, 3), 1, "same")
    depthwise = geometry.conv2d_geometry((2, 8, 9, 9), (8, 1, 3, 3), 1, "same", groups=8,
                                         dilation=2)
    for op in CONV:
        flops, moved = op_cost(op, plain)
        assert flops == 2 * 2 * 81 * 8 * 8 * 9
        assert op_cost(op, depthwise) == (flops // 8, moved - 4 * (8 * 8 * 9 - 8 * 9))
    transposed = geometry.conv_transpose2d_geometry((2, 8, 5, 5), (8, 2, 3, 3), 2, 1, groups=4)
    assert op_cost("conv_transpose2d_forward", transposed)[0] == 2 * 2 * 25 * 8 * 2 * 9
