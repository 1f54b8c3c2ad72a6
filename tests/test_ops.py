"""Every differentiable tensor op: forward vs plain NumPy, gradient vs finite differences (float64)."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import aecore as ae
from strategies import array_pair, arrays, away_from, shapes


def t64(array):
    return ae.tensor(np.asarray(array, dtype=np.float64), requires_grad=True)


def check_binary(op, reference, a, b):
    x, y = t64(a), t64(b)
    np.testing.assert_allclose(op(x, y).numpy(), reference(a, b), rtol=1e-12, atol=1e-12)
    assert ae.gradcheck(op, [x, y])


BINARY = {
    "add": (lambda x, y: x + y, np.add),
    "sub": (lambda x, y: x - y, np.subtract),
    "mul": (lambda x, y: x * y, np.multiply),
}


@pytest.mark.parametrize("name", sorted(BINARY))
@given(pair=array_pair())
def test_binary_broadcasting(name, pair):
    op, reference = BINARY[name]
    check_binary(op, reference, *pair)


@given(pair=array_pair())
def test_div_broadcasting(pair):
    a, b = pair
    b = np.where(np.abs(b) < 0.5, 0.5 + np.abs(b), b)  # keep the divisor away from 0
    check_binary(lambda x, y: x / y, np.divide, a, b)


@given(a=arrays(shapes()), scalar=st.floats(-3, 3).filter(lambda v: abs(v) > 0.1))
def test_scalar_operands_on_both_sides(a, scalar):
    x = t64(a)
    for op, reference in [(lambda t: t + scalar, a + scalar), (lambda t: scalar - t, scalar - a),
                          (lambda t: scalar * t, scalar * a), (lambda t: t / scalar, a / scalar),
                          (lambda t: -t, -a)]:
        np.testing.assert_allclose(op(x).numpy(), reference, rtol=1e-12)
        assert ae.gradcheck(op, [x])


@given(a=arrays(shapes(), low=0.3, high=2.0), exponent=st.sampled_from([2, 3, 0.5, -1, 1.5, -2.5]))
def test_power(a, exponent):
    x = t64(a)
    np.testing.assert_allclose((x ** exponent).numpy(), a ** exponent, rtol=1e-12)
    assert ae.gradcheck(lambda t: t ** exponent, [x])


@st.composite
def matmul_operands(draw):
    n, k, m = draw(st.integers(1, 4)), draw(st.integers(1, 4)), draw(st.integers(1, 4))
    batch_a = draw(st.sampled_from([(), (2,), (1,), (3, 1)]))
    batch_b = draw(st.sampled_from([(), (2,), (1,)])) if batch_a != (3, 1) else (2,)
    a_shape = draw(st.sampled_from([batch_a + (n, k), (k,)]))
    b_shape = draw(st.sampled_from([batch_b + (k, m), (k,)]))
    return draw(arrays(a_shape)), draw(arrays(b_shape))


@given(operands=matmul_operands())
def test_matmul(operands):
    check_binary(lambda x, y: x @ y, np.matmul, *operands)


REDUCTIONS = {"sum": (lambda t, **k: t.sum(**k), np.sum), "mean": (lambda t, **k: t.mean(**k), np.mean)}


@pytest.mark.parametrize("name", sorted(REDUCTIONS))
@given(data=st.data())
def test_reductions(name, data):
    a = data.draw(arrays(shapes(max_dims=3)))
    axis = data.draw(st.one_of(st.none(), st.integers(-a.ndim, a.ndim - 1),
                               st.sets(st.integers(0, a.ndim - 1), min_size=1).map(tuple)))
    keepdims = data.draw(st.booleans())
    op, reference = REDUCTIONS[name]
    x = t64(a)
    np.testing.assert_allclose(op(x, axis=axis, keepdims=keepdims).numpy(),
                               reference(a, axis=axis, keepdims=keepdims), rtol=1e-12)
    assert ae.gradcheck(lambda t: op(t, axis=axis, keepdims=keepdims), [x])


@given(data=st.data())
def test_reshape_transpose_flatten(data):
    a = data.draw(arrays(shapes(min_dims=2, max_dims=4)))
    x = t64(a)
    permutation = tuple(data.draw(st.permutations(range(a.ndim))))
    np.testing.assert_array_equal(x.permute(*permutation).numpy(), a.transpose(permutation))
    assert ae.gradcheck(lambda t: t.permute(*permutation) * 2, [x])
    np.testing.assert_array_equal(x.reshape(-1, a.shape[-1]).numpy(), a.reshape(-1, a.shape[-1]))
    assert ae.gradcheck(lambda t: t.reshape(a.shape[-1], -1) * 3, [x])
    np.testing.assert_array_equal(x.flatten(1).numpy(), a.reshape(a.shape[0], -1))
    np.testing.assert_array_equal(x.T.numpy(), a.T)
    assert ae.gradcheck(lambda t: t.flatten() * 1.5, [x])


@given(data=st.data())
def test_getitem(data):
    a = data.draw(arrays(shapes(min_dims=2, max_dims=3, max_side=5)))
    x = t64(a)
    start = data.draw(st.integers(0, a.shape[0] - 1))
    step = data.draw(st.integers(1, 2))
    basic = (slice(start, None, step), Ellipsis, 0)
    np.testing.assert_array_equal(x[basic].numpy(), a[basic])
    assert ae.gradcheck(lambda t: t[basic], [x])
    # fancy indexing with repeated rows: gradients must accumulate
    rows = np.array(data.draw(st.lists(st.integers(0, a.shape[0] - 1), min_size=1, max_size=5)))
    np.testing.assert_array_equal(x[rows].numpy(), a[rows])
    assert ae.gradcheck(lambda t: t[rows] * 1.0, [x])


@given(data=st.data())
def test_concat(data):
    base = data.draw(shapes(min_dims=1, max_dims=3))
    axis = data.draw(st.integers(0, len(base) - 1))
    sizes = data.draw(st.lists(st.integers(1, 3), min_size=1, max_size=3))
    parts = [data.draw(arrays(base[:axis] + (s,) + base[axis + 1:])) for s in sizes]
    tensors = [t64(p) for p in parts]
    np.testing.assert_array_equal(ae.concat(tensors, axis).numpy(), np.concatenate(parts, axis))
    assert ae.gradcheck(lambda *ts: ae.concat(list(ts), axis) * 2, tensors)


def np_sigmoid(a):
    return 1 / (1 + np.exp(-a))


UNARY = {
    # name: (op, reference, input strategy)
    "exp": (lambda t: t.exp(), np.exp, arrays(shapes())),
    "log": (lambda t: t.log(), np.log, arrays(shapes(), low=0.2, high=3.0)),
    "sqrt": (lambda t: t.sqrt(), np.sqrt, arrays(shapes(), low=0.2, high=3.0)),
    "abs": (lambda t: t.abs(), np.abs, away_from((3, 4))),
    "relu": (lambda t: t.relu(), lambda a: np.maximum(a, 0), away_from((2, 3, 4))),
    "leaky_relu": (lambda t: t.leaky_relu(0.1), lambda a: np.where(a > 0, a, 0.1 * a), away_from((4, 5))),
    "sigmoid": (lambda t: t.sigmoid(), np_sigmoid, arrays(shapes(), low=-6, high=6)),
    "tanh": (lambda t: t.tanh(), np.tanh, arrays(shapes(), low=-3, high=3)),
    "softplus": (lambda t: t.softplus(), lambda a: np.log1p(np.exp(a)), arrays(shapes(), low=-6, high=6)),
    "clip": (lambda t: t.clip(-0.5, 0.7), lambda a: np.clip(a, -0.5, 0.7),
             away_from((3, 5), points=(-0.5, 0.7))),
}


@pytest.mark.parametrize("name", sorted(UNARY))
@given(data=st.data())
def test_unary(name, data):
    op, reference, strategy = UNARY[name]
    a = data.draw(strategy)
    x = t64(a)
    np.testing.assert_allclose(op(x).numpy(), reference(a), rtol=1e-12, atol=1e-15)
    assert ae.gradcheck(op, [x])


def test_sigmoid_and_softplus_are_finite_at_extremes():
    x = ae.tensor([-1e4, -50.0, 0.0, 50.0, 1e4], requires_grad=True)
    for op in (ae.sigmoid, ae.softplus):
        y = op(x)
        assert np.all(np.isfinite(y.numpy()))
        x.grad = None
        y.sum().backward()
        assert np.all(np.isfinite(x.grad))
    np.testing.assert_allclose(ae.sigmoid(x).numpy(), [0, 0, 0.5, 1, 1], atol=1e-12)


def test_float32_ops_stay_float32():
    x = ae.tensor([[1.0, 2.0]])
    assert x.dtype == np.float32
    for y in (x + 1, x * 2.5, x / 3, x ** 2, x.exp(), x @ x.T, x.mean(), x.sigmoid()):
        assert y.dtype == np.float32
