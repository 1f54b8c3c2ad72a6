"""relu kernels: every tier against the reference (NaN, signed zeros and ties at 0 included),
torch.relu's semantics pinned down on known values, and the graph's ReLU through the registry."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import aecore as ae
from aecore import kernels
from tiers import require_tier, run_tier as call, tier_params, tiny_shapes

TINY = tiny_shapes()
DTYPES = [np.float32, np.float64]
RELU = ("relu_forward", "relu_backward")


def special_values(dtype, shape, seed):
    """Random values with NaN, +-inf, +-0 and exact zeros mixed in."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(dtype)
    specials = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0], dtype=dtype)
    pick = rng.random(shape) < 0.2
    x[pick] = rng.choice(specials, size=int(pick.sum()))
    return x


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("tier", tier_params(*RELU, compiled_only=True))
@settings(deadline=None)
@given(shape=st.lists(st.integers(0, 4 if TINY else 40), min_size=0, max_size=4), seed=st.integers(0, 2**32 - 1))
def test_relu_tier_matches_reference(tier, dtype, shape, seed):
    x = special_values(dtype, tuple(shape), seed)
    grad_y = special_values(dtype, tuple(shape), seed + 1)
    for op, args in (("relu_forward", (x,)), ("relu_backward", (grad_y, x))):
        got, expected = call(op, tier, *args), call(op, "ref", *args)
        assert got.shape == expected.shape and got.dtype == expected.dtype == dtype, op
        np.testing.assert_array_equal(got, expected, err_msg=f"{tier} {op}")


@pytest.mark.parametrize("tier", tier_params(*RELU))
def test_relu_known_values(tier):
    """torch.relu: NaN stays NaN; the gradient is 0 at x <= 0 (x = 0 included) and at NaN."""
    x = np.array([-2.0, -0.0, 0.0, 3.0, np.nan, np.inf, -np.inf])
    y = call("relu_forward", tier, x)
    np.testing.assert_array_equal(y, [0, 0, 0, 3, np.nan, np.inf, 0])
    grad_x = call("relu_backward", tier, np.full(x.shape, 5.0), x)
    np.testing.assert_array_equal(grad_x, [0, 0, 0, 5, 0, 5, 0])


def test_relu_sizes_across_parallel_chunks():
    """Sizes around the numba tier's chunk length and its serial limit (last chunk partial,
    exactly full, one more; the serial path and the parallel one)."""
    require_tier("numba", *RELU)
    from aecore.kernels.activation import _CHUNK
    from aecore.kernels.compile import SERIAL_MAX_VALUES
    for size in (_CHUNK - 1, _CHUNK, 2 * _CHUNK + 1, SERIAL_MAX_VALUES, SERIAL_MAX_VALUES + 1,
                 2 * SERIAL_MAX_VALUES, SERIAL_MAX_VALUES + 5 * _CHUNK + 7):
        x = special_values(np.float32, (size,), size)
        np.testing.assert_array_equal(call("relu_forward", "numba", x), call("relu_forward", "ref", x))
        np.testing.assert_array_equal(call("relu_backward", "numba", x, x), call("relu_backward", "ref", x, x))


@pytest.mark.parametrize("tier", tier_params(*RELU, cpu_only=True))
def test_graph_relu_uses_the_registry(tier):
    """ae.relu runs the relu kernels (the forced tier is the one recorded), forward and backward."""
    x = ae.tensor(np.array([[-1.0, 2.0], [0.5, -3.0]]), requires_grad=True)
    with kernels.use_tier(tier):
        y = ae.relu(x)
        assert y.creator.tier == tier
        x.grad = None
        y.sum().backward()
    np.testing.assert_array_equal(y.data, [[0, 2], [0.5, 0]])
    np.testing.assert_array_equal(x.grad, [[0, 1], [1, 0]])
