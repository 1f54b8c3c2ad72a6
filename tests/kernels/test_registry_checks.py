"""The registry checks every kernel call against its geometry before any tier runs: each array's
shape, its dtype (float32 or float64, one for the whole call; argmax int64) and C-contiguity, and
that the geometry itself holds together, so no tier can read or write outside its arrays."""

import numpy as np
import pytest

from aecore import kernels
from aecore.kernels import geometry
from sample_calls import sample_calls
from tiers import on_tier, skip_if_none, tier_params, tiers_to_test

CALLS = dict(sample_calls(np.float32))
CASES = [(op, tier) for op in sorted(CALLS) for tier in tiers_to_test(op)]
NO_SHAPE_RULE = {"relu_forward"}                  # any shape will do
ANY_4D = {"conv2d_backward_bias"}                 # any (N, C, H, W)


def test_every_registered_op_has_a_sample_call():
    assert set(kernels.ops()) == set(CALLS)


def _arrays(args, xp):
    return [i for i, a in enumerate(args) if isinstance(a, xp.ndarray)]


def _replaced(args, i, value):
    return args[:i] + [value] + args[i + 1:]


def _refused(op, tier, args, *words):
    with pytest.raises(ValueError) as caught:
        kernels.implementations(op)[tier](*args)
    message = str(caught.value)
    assert "\n" not in message and message.startswith(op), message
    for word in words:
        assert word in message, message
    return message


@pytest.mark.parametrize("op, tier", skip_if_none(CASES))
def test_a_valid_call_passes(op, tier):
    args, _ = on_tier(tier, CALLS[op])
    kernels.implementations(op)[tier](*args)


@pytest.mark.parametrize("op, tier", skip_if_none(CASES))
def test_a_wrong_shape_is_refused(op, tier):
    if op in NO_SHAPE_RULE:
        pytest.skip(f"{op} takes any shape")
    args, xp = on_tier(tier, CALLS[op])
    for i in _arrays(args, xp):
        a = args[i]
        if op in ANY_4D:
            bad = a[:, :, 0]
        else:
            bad = xp.zeros(a.shape[:-1] + (a.shape[-1] + 1,), a.dtype)
        _refused(op, tier, _replaced(args, i, bad), "expected", str(bad.shape))


@pytest.mark.parametrize("op, tier", skip_if_none(CASES))
def test_a_wrong_dtype_is_refused(op, tier):
    args, xp = on_tier(tier, CALLS[op])
    floats = [i for i in _arrays(args, xp) if args[i].dtype.kind == "f"]
    for i in _arrays(args, xp):
        a = args[i]
        wrong = [np.float16, np.int32] if a.dtype.kind == "f" else [np.float32, np.int32]
        if len(floats) > 1 and i in floats:
            wrong.append(np.float64)              # one float64 among float32 arrays
        for dtype in wrong:
            _refused(op, tier, _replaced(args, i, a.astype(dtype)), np.dtype(dtype).name)


@pytest.mark.parametrize("op, tier", skip_if_none(CASES))
def test_a_non_contiguous_array_is_refused(op, tier):
    args, xp = on_tier(tier, CALLS[op])
    for i in _arrays(args, xp):
        a = args[i]
        bad = xp.asfortranarray(a) if a.ndim > 1 else xp.repeat(a, 2)[::2]
        assert not bad.flags.c_contiguous and bad.shape == a.shape
        _refused(op, tier, _replaced(args, i, bad), "C-contiguous")


@pytest.mark.parametrize("op, tier", skip_if_none(CASES))
def test_dispatch_returns_the_checked_kernel(op, tier):
    args, xp = on_tier(tier, CALLS[op])
    with kernels.use_tier(tier):
        _, function = kernels.dispatch(op, args[0])
    with pytest.raises(ValueError, match=op):
        function(*_replaced(args, 0, args[0].astype(np.float16)))


POOL_TIERS = tier_params("max_pool2d_forward")


@pytest.mark.parametrize("tier", POOL_TIERS)
def test_max_pool_with_the_geometry_of_another_shape_is_refused(tier):
    """The reported case: numba's max-pool read far outside x (values up to 3.5e36)."""
    geom = geometry.max_pool2d_geometry((1, 1, 8, 8), 2)
    (x,), _ = on_tier(tier, [np.ones((1, 1, 4, 4), np.float32)])
    _refused("max_pool2d_forward", tier, [x, geom], "x", "(1, 1, 8, 8)", "(1, 1, 4, 4)")


@pytest.mark.parametrize("tier", POOL_TIERS)
def test_a_geometry_that_does_not_hold_together_is_refused(tier):
    (x,), _ = on_tier(tier, [np.ones((1, 1, 4, 4), np.float32)])
    geom = geometry.max_pool2d_geometry(x.shape, 2).replace(out_h=5)    # windows past the input
    _refused("max_pool2d_forward", tier, [x, geom], "geom", "out_h")
    geom = geometry.max_pool2d_geometry(x.shape, 2).replace(stride_w=0)
    _refused("max_pool2d_forward", tier, [x, geom], "geom", "stride_w")
    _refused("max_pool2d_forward", tier, [x, {"n": 1}], "geom")


@pytest.mark.parametrize("op", ["conv2d_forward", "conv_transpose2d_forward"])
def test_a_conv_geometry_with_another_output_size_is_refused(op):
    x, w, b, geom = CALLS[op]
    _refused(op, "ref", [x, w, b, geom.replace(out_w=geom.out_w + 1)], "geom", "out_w")


@pytest.mark.parametrize("scale", [-1.0, float("nan"), float("inf")])
def test_an_upsample_geometry_with_a_bad_scale_is_refused(scale):
    x, geom = CALLS["upsample_nearest_forward"]
    _refused("upsample_nearest_forward", "ref", [x, geom.replace(scale_h=scale)], "geom", "scale_h")


@pytest.mark.parametrize("tier", POOL_TIERS)
@pytest.mark.parametrize("bad_index", [-1, 64, 10**12])
def test_max_pool_backward_never_follows_an_argmax_outside_the_plane(tier, bad_index):
    """The shapes fit, the values lie: every tier refuses or ignores them, none writes outside
    grad_x (the numba tier's scatter checks each index and raises)."""
    geom = geometry.max_pool2d_geometry((1, 2, 8, 8), 2)
    grad_y = np.ones((1, 2, 4, 4), np.float32)
    x = np.random.default_rng(0).standard_normal((1, 2, 8, 8)).astype(np.float32)
    _, argmax = kernels.implementations("max_pool2d_forward")["ref"](x, geom)
    argmax = np.array(argmax)
    argmax[0, 1, 2, 3] = bad_index
    (grad_y, argmax), xp = on_tier(tier, [grad_y, argmax])
    run = kernels.implementations("max_pool2d_backward")[tier]
    try:
        grad_x = run(grad_y, argmax, geom)
    except ValueError as error:
        assert "argmax" in str(error) and "outside" in str(error)
        return
    grad_x = np.asarray(grad_x.get() if hasattr(grad_x, "get") else grad_x)
    assert grad_x.shape == (1, 2, 8, 8)
    assert grad_x[0, 0].sum() == 16 and grad_x[0, 1].sum() == 15   # the bad entry went nowhere


def test_a_forced_cuda_tier_refuses_host_arrays_outside_the_simulator():
    from aecore.kernels import compile as kernel_compile
    if kernel_compile.CUDA_SIMULATOR or "cuda" not in kernels.tiers_of("relu_forward"):
        pytest.skip("needs numba.cuda outside the simulator")
    with kernels.use_tier("cuda"), pytest.raises(RuntimeError, match="NumPy \\(host\\) array"):
        kernels.dispatch("relu_forward", np.zeros(4, np.float32))
