"""The Tensor surface a PyTorch user reaches for: dim/keepdim reductions (NumPy's names kept as
aliases), size()/numel(), cat/stack, comparisons, unsqueeze/squeeze, max/min/argmax, var/std,
clone, the factories, from_numpy, and in-place ops with the version counter. Values against
NumPy, gradients with gradcheck in float64; the same calls against PyTorch when it is installed."""

import copy
import pickle
import warnings

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import aecore as ae
from strategies import arrays, shapes


def t64(array, requires_grad=True):
    return ae.tensor(np.asarray(array, dtype=np.float64), requires_grad=requires_grad)


@st.composite
def array_and_dims(draw, min_dims=1, max_dims=3):
    """An array and a dim argument for it: None, an int (maybe negative) or a tuple of ints."""
    a = draw(arrays(shapes(min_dims=min_dims, max_dims=max_dims)))
    dim = draw(st.one_of(st.none(), st.integers(-a.ndim, a.ndim - 1),
                         st.sets(st.integers(0, a.ndim - 1), min_size=1).map(tuple)))
    return a, dim


@st.composite
def distinct_values(draw, min_dims=1, max_dims=3):
    """An array without ties (max/min are differentiable there): a shuffled range, scaled."""
    shape = draw(shapes(min_dims=min_dims, max_dims=max_dims))
    order = draw(st.permutations(range(int(np.prod(shape)))))
    return (np.array(order, dtype=np.float64).reshape(shape) - len(order) / 2) * 0.25


# ---------------------------------------------------------------------------- reductions
@pytest.mark.parametrize("name", ["sum", "mean"])
@given(case=array_and_dims(), keepdim=st.booleans())
def test_sum_and_mean_take_pytorchs_names_and_numpys(name, case, keepdim):
    a, dim = case
    reference = getattr(np, name)(a, axis=dim, keepdims=keepdim)
    x = t64(a)
    method = getattr(x, name)
    for result in (method(dim, keepdim), method(dim=dim, keepdim=keepdim),
                   method(axis=dim, keepdims=keepdim), getattr(ae, name)(x, dim, keepdim=keepdim)):
        np.testing.assert_allclose(result.numpy(), reference, rtol=1e-12, atol=1e-15)
    assert ae.gradcheck(lambda t: getattr(t, name)(dim=dim, keepdim=keepdim), [x])


def test_an_empty_dim_reduces_everything_but_an_empty_axis_nothing():
    x = t64(np.arange(6.0).reshape(2, 3))
    assert x.sum(dim=()).item() == 15.0                     # PyTorch
    np.testing.assert_array_equal(x.sum(axis=()).numpy(), x.numpy())  # NumPy


def test_reduction_arguments_given_twice_or_out_of_range_are_refused():
    x = t64(np.ones((2, 3)))
    with pytest.raises(TypeError, match="dim or its NumPy alias axis"):
        x.sum(dim=0, axis=0)
    with pytest.raises(TypeError, match="keepdim or its NumPy alias keepdims"):
        x.mean(0, keepdim=True, keepdims=True)
    with pytest.raises(ValueError, match="dim 2 is out of range for a tensor with 2 dimensions"):
        x.sum(2)
    with pytest.raises(TypeError, match="dim must be an int"):
        x.mean(dim="rows")


# ---------------------------------------------------------------------------- size, cat, stack
def test_size_is_the_shape_and_numel_the_element_count():
    x = ae.zeros(2, 3, 4)
    assert x.size() == (2, 3, 4) and x.size(1) == 3 and x.size(-1) == 4
    assert x.numel() == 24 and x.dim() == 3
    with pytest.raises(ValueError, match="size: dim 3 is out of range"):
        x.size(3)


@given(data=st.data())
def test_cat_and_stack_along_any_dim(data):
    shape = data.draw(shapes(min_dims=1, max_dims=3))
    count = data.draw(st.integers(1, 3))
    parts = [data.draw(arrays(shape)) for _ in range(count)]
    tensors = [t64(p) for p in parts]
    cat_dim = data.draw(st.integers(-len(shape), len(shape) - 1))
    joined = np.concatenate(parts, cat_dim)
    np.testing.assert_array_equal(ae.cat(tensors, dim=cat_dim).numpy(), joined)
    np.testing.assert_array_equal(ae.cat(tensors, axis=cat_dim).numpy(), joined)
    stack_dim = data.draw(st.integers(-len(shape) - 1, len(shape)))
    stacked = np.stack(parts, stack_dim)
    np.testing.assert_array_equal(ae.stack(tensors, dim=stack_dim).numpy(), stacked)
    assert ae.gradcheck(lambda *ts: ae.stack(list(ts), dim=stack_dim) * 2, tensors)


def test_cat_and_stack_refuse_mismatched_shapes():
    with pytest.raises(ValueError, match="stack: every tensor must have the same shape"):
        ae.stack([ae.zeros(2, 3), ae.zeros(3, 2)])
    with pytest.raises(ValueError, match="cat: shapes .* differ outside dim 1"):
        ae.cat([ae.zeros(2, 3), ae.zeros(3, 3)], dim=1)
    with pytest.raises(ValueError, match="0-d tensors cannot be concatenated"):
        ae.cat([ae.tensor(1.0), ae.tensor(2.0)])
    with pytest.raises(TypeError, match="dim or its NumPy alias axis"):
        ae.cat([ae.zeros(2)], dim=0, axis=0)


# ---------------------------------------------------------------------------- comparisons
@given(a=arrays(shapes()), threshold=st.floats(-2, 2))
def test_comparisons_are_bool_tensors_without_a_graph(a, threshold):
    x = t64(a)
    other = t64(np.flip(a))
    flipped = np.flip(a)
    cases = [(x == threshold, a == threshold), (x != other, a != flipped),
             (x < threshold, a < threshold), (x <= other, a <= flipped),
             (threshold > x, threshold > a), (x >= 0, a >= 0), (a == x, a == a),
             (ae.gt(x, other), a > flipped)]
    for result, expected in cases:
        assert isinstance(result, ae.Tensor) and result.dtype == np.bool_
        assert not result.requires_grad and result.creator is None
        np.testing.assert_array_equal(result.numpy(), expected)


def test_tensors_hash_by_identity_and_bool_needs_one_element():
    a, b = ae.zeros(2), ae.zeros(2)
    assert {a: "a", b: "b"}[a] == "a" and len({a, b}) == 2
    assert (a == None) is False and (a != None) is True  # noqa: E711 - the operator is the point
    assert bool(ae.tensor([3.0]) > 2) and not bool(ae.tensor(1.0) > 2)
    with pytest.raises(RuntimeError, match=r"truth value of a tensor of shape \(2,\) is ambiguous"):
        bool(a == b)


def test_masks_and_indices_promote_to_the_float_operand():
    x = ae.tensor([1.0, -2.0, 3.0], requires_grad=True)
    mask = x > 0
    assert (mask * x).dtype == np.float32 and (x.argmax() * x).dtype == np.float32
    assert (mask * 2.5).dtype == np.float32
    (mask * x).sum().backward()
    np.testing.assert_array_equal(x.grad, [1.0, 0.0, 1.0])
    np.testing.assert_array_equal(x[x > 0].numpy(), [1.0, 3.0])


# ---------------------------------------------------------------------------- squeeze, clone
@given(a=arrays(shapes(min_dims=1, max_dims=3, max_side=2)), data=st.data())
def test_unsqueeze_and_squeeze(a, data):
    x = t64(a)
    dim = data.draw(st.integers(-a.ndim - 1, a.ndim))
    np.testing.assert_array_equal(x.unsqueeze(dim).numpy(), np.expand_dims(a, dim))
    assert ae.gradcheck(lambda t: t.unsqueeze(dim) * 2, [x])
    np.testing.assert_array_equal(x.squeeze().numpy(), np.squeeze(a))
    dims = data.draw(st.sets(st.integers(0, a.ndim - 1), min_size=1).map(tuple))
    kept = tuple(s for i, s in enumerate(a.shape) if not (i in dims and s == 1))
    assert x.squeeze(dims).shape == kept           # sizes other than 1 stay, as in PyTorch
    assert x.squeeze(dims[0]).shape == tuple(s for i, s in enumerate(a.shape)
                                             if not (i == dims[0] and s == 1))
    assert ae.gradcheck(lambda t: t.squeeze(dims) * 2, [x])


def test_clone_copies_the_data_and_passes_the_gradient():
    x = t64([1.0, 2.0])
    copy = x.clone()
    assert copy.requires_grad and copy.creator is not None
    copy.data[0] = 5.0
    assert x.data[0] == 1.0
    assert ae.gradcheck(lambda t: t.clone() * t, [x])


# ---------------------------------------------------------------------------- max, min, argmax
@pytest.mark.parametrize("name", ["max", "min"])
@given(a=distinct_values(), data=st.data())
def test_max_and_min(name, a, data):
    x = t64(a)
    find = np.argmax if name == "max" else np.argmin
    np.testing.assert_array_equal(getattr(x, name)().numpy(), getattr(np, name)(a))
    assert ae.gradcheck(lambda t: getattr(t, name)(), [x])
    dim = data.draw(st.integers(-a.ndim, a.ndim - 1))
    keepdim = data.draw(st.booleans())
    values, indices = getattr(x, name)(dim, keepdim=keepdim)
    pair = getattr(ae, name)(x, dim=dim, keepdim=keepdim)
    assert type(pair).__name__ == name and pair.values.shape == values.shape
    np.testing.assert_array_equal(values.numpy(), getattr(np, name)(a, axis=dim, keepdims=keepdim))
    np.testing.assert_array_equal(indices.numpy(), find(a, axis=dim, keepdims=keepdim))
    assert indices.dtype == np.int64 and not indices.requires_grad
    assert ae.gradcheck(lambda t: getattr(t, name)(dim, keepdim).values, [x])


def test_max_shares_the_gradient_among_ties_without_dim_and_picks_the_first_with_dim():
    x = t64([1.0, 3.0, 3.0])
    x.max().backward()
    np.testing.assert_array_equal(x.grad, [0.0, 0.5, 0.5])
    y = t64([[3.0, 3.0, 1.0]])
    y.max(1).values.sum().backward()
    np.testing.assert_array_equal(y.grad, [[1.0, 0.0, 0.0]])
    assert y.min(dim=1).indices.item() == 2


@given(a=arrays(shapes(min_dims=1)), data=st.data())
def test_argmax_and_argmin(a, data):
    x = t64(a)
    assert x.argmax().item() == np.argmax(a) and x.argmin().item() == np.argmin(a)
    assert x.argmax(keepdim=True).shape == (1,) * a.ndim
    dim = data.draw(st.integers(-a.ndim, a.ndim - 1))
    keepdim = data.draw(st.booleans())
    result = ae.argmin(x, dim, keepdim=keepdim)
    assert result.dtype == np.int64
    np.testing.assert_array_equal(result.numpy(), np.argmin(a, axis=dim, keepdims=keepdim))


def test_max_refuses_empty_tensors_keepdim_alone_and_a_tensor_dim():
    with pytest.raises(ValueError, match=r"max: the tensor of shape \(0,\) has no elements"):
        ae.zeros(0).max()
    with pytest.raises(ValueError, match=r"argmin: dim 1 of shape \(2, 0\) has no elements"):
        ae.zeros(2, 0).argmin(1)
    with pytest.raises(TypeError, match="keepdim needs dim"):
        ae.zeros(2).max(keepdim=True)
    with pytest.raises(TypeError, match="dim must be an int, got a Tensor"):
        ae.zeros(2).min(ae.zeros(2))


# ---------------------------------------------------------------------------- var, std
@pytest.mark.parametrize("name", ["var", "std"])
@given(case=array_and_dims(), correction=st.sampled_from([0, 1, 0.5]), keepdim=st.booleans())
def test_var_and_std(name, case, correction, keepdim):
    a, dim = case
    count = a.size // np.asarray(np.sum(a, axis=dim, keepdims=True)).size
    assume(count - correction > 0)  # else: test_var_with_no_degrees_of_freedom_warns...
    reference = getattr(np, name)(a, axis=dim, keepdims=keepdim, ddof=correction)

    def reduce(t):
        return getattr(t, name)(dim, correction=correction, keepdim=keepdim)
    x = t64(a)
    np.testing.assert_allclose(reduce(x).numpy(), reference, rtol=1e-10, atol=1e-12)
    aliased = getattr(x, name)(axis=dim, keepdims=keepdim, correction=correction)
    np.testing.assert_allclose(aliased.numpy(), reference, rtol=1e-10, atol=1e-12)
    if name == "var" or np.all(reference > 1e-3):  # std's gradient is infinite at 0
        assert ae.gradcheck(reduce, [x])


def test_var_takes_the_older_unbiased_argument_and_its_overloads():
    a = np.array([[1.0, 2.0, 4.0], [3.0, 4.0, 9.0]])
    x = t64(a)
    np.testing.assert_allclose(x.var().numpy(), np.var(a, ddof=1))                  # default 1
    np.testing.assert_allclose(x.var(1, True).numpy(), np.var(a, axis=1, ddof=1))  # dim, unbiased
    np.testing.assert_allclose(x.var(False).numpy(), np.var(a))                     # (unbiased)
    np.testing.assert_allclose(x.std(dim=0, unbiased=False).numpy(), np.std(a, axis=0))
    with pytest.raises(TypeError, match="correction or the older unbiased, not both"):
        x.var(1, unbiased=True, correction=0)


def test_var_with_no_degrees_of_freedom_warns_and_gives_nan_or_inf():
    with pytest.warns(RuntimeWarning, match="degrees of freedom <= 0"):
        assert np.isnan(ae.tensor([1.0]).var().item())
    with pytest.warns(RuntimeWarning, match="degrees of freedom <= 0"):
        assert np.isinf(ae.tensor([1.0, 2.0]).var(correction=3).item())


# ---------------------------------------------------------------------------- factories
def test_range_factories():
    np.testing.assert_array_equal(ae.arange(5).numpy(), [0, 1, 2, 3, 4])
    np.testing.assert_allclose(ae.arange(1, 2.5, 0.5).numpy(), [1.0, 1.5, 2.0])
    np.testing.assert_allclose(ae.arange(0, -3, -1).numpy(), [0, -1, -2])
    assert ae.arange(3).dtype == np.float32 and ae.arange(3, dtype=np.float64).dtype == np.float64
    assert ae.arange(2, 2).shape == (0,)
    np.testing.assert_allclose(ae.linspace(0, 1, 5).numpy(), [0, 0.25, 0.5, 0.75, 1])
    ends = ae.linspace(-3.3, 7.1, 17).numpy()[[0, -1]]
    assert ends.tolist() == [np.float32(-3.3), np.float32(7.1)]
    assert ae.linspace(2, 5, 1).tolist() == [2.0] and ae.linspace(0, 1, 0).shape == (0,)
    with pytest.raises(ValueError, match="arange: step must be nonzero"):
        ae.arange(0, 3, 0)
    with pytest.raises(ValueError, match="goes against step"):
        ae.arange(0, 3, -1)
    with pytest.raises(ValueError, match="linspace: steps must be >= 0"):
        ae.linspace(0, 1, -1)


def test_filled_and_like_factories():
    assert ae.full((2, 3), 1.5).tolist() == [[1.5] * 3] * 2 and ae.full([2], 7).dtype == np.float32
    assert ae.empty(2, 3).shape == (2, 3) and ae.empty((4,), dtype=np.float64).dtype == np.float64
    source = ae.tensor(np.zeros((2, 3)), dtype=np.float64)
    for made in (ae.zeros_like(source), ae.ones_like(source), ae.full_like(source, 4.0),
                 ae.rand_like(source), ae.randn_like(source)):
        assert made.shape == (2, 3) and made.dtype == np.float64 and made.is_leaf
    assert ae.ones_like(source).numpy().sum() == 6 and ae.full_like(source, 4.0).numpy().min() == 4
    assert ae.zeros_like(source > 0).dtype == np.float32          # aecore computes in floats
    assert ae.zeros_like(source, dtype=np.float32, requires_grad=True).requires_grad
    uniform = ae.rand_like(source).numpy()
    assert uniform.min() >= 0 and uniform.max() < 1
    ae.manual_seed(3)
    first = ae.randn_like(source).numpy()
    ae.manual_seed(3)
    np.testing.assert_array_equal(ae.randn_like(source).numpy(), first)
    with pytest.raises(TypeError, match="full: size must be a tuple or list"):
        ae.full(3, 1.0)
    with pytest.raises(ValueError, match="zeros: sizes must be >= 0"):
        ae.zeros(2, -1)
    with pytest.raises(TypeError, match="ones_like: input must be a Tensor, got ndarray"):
        ae.ones_like(np.zeros(2))


def test_from_numpy_shares_memory_both_ways():
    array = np.array([1.0, 2.0])
    t = ae.from_numpy(array)
    assert t.dtype == np.float64
    t.add_(1)
    t += 1
    np.testing.assert_array_equal(array, [3.0, 4.0])
    array[0] = 10.0
    assert t.tolist() == [10.0, 4.0]
    assert ae.from_numpy(np.arange(3)).dtype == np.int64
    with pytest.raises(TypeError, match="from_numpy: expected a numpy.ndarray, got list"):
        ae.from_numpy([1.0, 2.0])


# ---------------------------------------------------------------------------- in-place ops
IN_PLACE = {
    # name: (in-place call, the same on a NumPy array)
    "add_": (lambda t: t.add_(2.0), lambda a: a + 2.0),
    "add_ alpha": (lambda t: t.add_(ae.tensor([1.0, 2.0, 3.0]), alpha=-2),
                   lambda a: a - 2 * np.array([1.0, 2.0, 3.0])),
    "sub_": (lambda t: t.sub_(1.5), lambda a: a - 1.5),
    "mul_": (lambda t: t.mul_(ae.tensor([[2.0], [3.0]])), lambda a: a * np.array([[2.0], [3.0]])),
    "div_": (lambda t: t.div_(4.0), lambda a: a / 4.0),
    "clamp_": (lambda t: t.clamp_(min=-0.5, max=1.0), lambda a: np.clip(a, -0.5, 1.0)),
    "fill_": (lambda t: t.fill_(7.0), lambda a: np.full_like(a, 7.0)),
    "fill_ 0-d": (lambda t: t.fill_(ae.tensor(-1.0)), lambda a: np.full_like(a, -1.0)),
    "zero_": (lambda t: t.zero_(), np.zeros_like),
    "copy_": (lambda t: t.copy_(ae.tensor([1.0, 2.0, 3.0], dtype=np.float64)),
              lambda a: np.broadcast_to([1.0, 2.0, 3.0], a.shape)),
}
A = np.array([[1.0, -2.0, 3.0], [0.25, 4.0, -1.0]], dtype=np.float32)


@pytest.mark.parametrize("name", sorted(IN_PLACE))
def test_in_place_ops_change_the_tensor_itself_and_bump_its_version(name):
    call, reference = IN_PLACE[name]
    t = ae.tensor(A)
    memory = t.data
    assert call(t) is t and t.data is memory and t.dtype == np.float32
    np.testing.assert_allclose(t.numpy(), reference(A), rtol=1e-6)
    assert t._version == 1


def test_augmented_assignment_mutates_in_place_for_every_name():
    t = ae.tensor([1.0, 2.0])
    alias = t
    t += 1
    t -= 0.5
    t *= 4
    t /= 2
    assert t is alias and alias.tolist() == [3.0, 5.0] and t._version == 4


def test_in_place_ops_refuse_a_growing_shape_or_a_lossy_dtype():
    with pytest.raises(ValueError, match=r"add_: the result has shape \(2, 3\), .* shape \(3,\)"):
        ae.zeros(3).add_(ae.ones(2, 3))
    with pytest.raises(TypeError, match="div_: the result has dtype float32, .* bool tensor"):
        (ae.zeros(3) > 0).div_(2.0)
    with pytest.raises(ValueError, match=r"copy_: src of shape \(2,\) cannot be broadcast to"):
        ae.zeros(3).copy_(ae.zeros(2))
    with pytest.raises(ValueError, match="fill_: value must be a number or a 0-d tensor"):
        ae.zeros(3).fill_(ae.zeros(3))


def test_in_place_on_a_leaf_that_requires_grad_needs_no_grad():
    w = ae.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match=r"add_: a leaf tensor that requires grad \(shape \[2"):
        w.add_(1.0)
    with pytest.raises(RuntimeError, match="leaf tensor that requires grad"):
        w += 1
    with ae.no_grad():
        w.mul_(2.0)                           # as an optimizer step
    assert w.tolist() == [2.0, 4.0] and w.is_leaf and w._version == 1


def test_backward_refuses_arrays_changed_in_place_after_they_were_saved():
    x = t64([1.0, 2.0, 3.0])
    h = x * 2
    y = (h * h).sum()                        # Mul saved h for backward
    h.add_(1)
    with pytest.raises(RuntimeError, match=r"modified by an inplace operation: \[float64 \[3\]\], "
                                           r"saved by Mul for backward, is at version 1; "
                                           r"expected version 0"):
        y.backward()
    z = x.exp()                              # Exp saved its output
    z.mul_(2)
    with pytest.raises(RuntimeError, match="saved by Exp for backward"):
        z.sum().backward()


def test_the_counter_is_shared_by_views_and_detach():
    x = t64([1.0, 2.0, 3.0, 4.0])
    y = (x * x).sum()                        # saves x
    with ae.no_grad():
        x.reshape(2, 2).add_(1)              # a view of x: x's counter moves
    assert x._version == 1 and x.tolist() == [2.0, 3.0, 4.0, 5.0]
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.backward()
    x2 = t64([1.0, 2.0])
    y2 = (x2 * x2).sum()
    x2.detach().zero_()
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y2.backward()


def test_writes_through_data_stay_outside_the_counter():
    """Raw-array writes (optimizers, initializers, gradcheck) are not in-place ops of the graph,
    as PyTorch's `.data`: they neither bump the version nor invalidate a graph."""
    w = t64([1.0, 2.0])
    y = (w * w).sum()
    w.data -= 0.5
    assert w._version == 0
    y.backward()
    np.testing.assert_array_equal(w.grad, [1.0, 3.0])   # 2 * the values now in w.data


def _rebased(x):
    """In-place ops recorded on non-leaf tensors: each takes the old value's place in the graph."""
    h = x * 2
    before = h + 1                            # uses the value before the in-place ops
    h.mul_(x)
    h.add_(x, alpha=3)
    h.clamp_(min=-4.0, max=6.0)
    h -= before
    h /= 3
    return h * before


def test_in_place_ops_are_differentiable_on_non_leaf_tensors():
    x = t64([0.5, -1.2, 1.7, 2.5])
    assert ae.gradcheck(_rebased, [x])
    constant = ae.zeros(4, dtype=np.float64)
    constant += x                             # a constant takes a graph from its operand
    constant *= x
    assert constant.requires_grad and not constant.is_leaf
    assert ae.gradcheck(lambda t: ae.zeros(4, dtype=np.float64).add_(t).mul_(t), [x])
    assert ae.gradcheck(lambda t: (t * 1).fill_(t.sum()) * t, [x])
    assert ae.gradcheck(lambda t: (t * 1).copy_(t[:1] * 3) * t, [x])


def test_in_place_on_non_leaf_keeps_retain_grad_and_earlier_uses():
    x = t64([1.0, 2.0])
    h = x * 2
    h.retain_grad()
    earlier = h.sum()
    h.mul_(3)
    (earlier + h.sum()).backward()
    np.testing.assert_array_equal(h.grad, [1.0, 1.0])    # the gradient of the new value
    np.testing.assert_array_equal(x.grad, [8.0, 8.0])    # 2 (earlier) + 6 (after mul_)


def test_in_place_on_views_is_refused_while_autograd_records():
    x = t64([1.0, 2.0, 3.0, 4.0])
    h = x * 2
    view = h.reshape(2, 2)
    with pytest.raises(RuntimeError, match=r"add_: this tensor \(shape \[2, 2\]\) is a view"):
        view.add_(1)
    with pytest.raises(RuntimeError, match=r"mul_: views of this tensor \(shape \[4\]"):
        h.mul_(2)
    del view
    h.mul_(2)                                 # no live view any more
    assert h._version == 1


def test_a_tensor_with_views_pickles_and_copies():
    x = t64([1.0, 2.0, 3.0, 4.0])
    view = x.reshape(2, 2)
    for copied in (pickle.loads(pickle.dumps(x)), copy.deepcopy(x)):
        assert copied.tolist() == x.tolist() and copied._views == ()
    assert view._base is x


# ---------------------------------------------------------------------------- against PyTorch
TORCH_CASES = {
    # name: fn(t, lib) on a float64 tensor of shape (3, 4), differentiable
    "sum dim tuple keepdim": lambda t, lib: t.sum(dim=(0, 1), keepdim=True),
    "mean dim": lambda t, lib: t.mean(dim=-1),
    "var correction": lambda t, lib: t.var(dim=1, correction=0),
    "std unbiased": lambda t, lib: t.std(0, False, True),
    "max": lambda t, lib: t.max(),
    "min dim": lambda t, lib: t.min(1).values,
    "max dim keepdim": lambda t, lib: t.max(0, keepdim=True)[0],
    "unsqueeze squeeze": lambda t, lib: t.unsqueeze(1).squeeze(1) * t,
    "stack cat": lambda t, lib: lib.cat([lib.stack([t, t * 2], dim=-1).reshape(3, 8), t], dim=1),
    "clone": lambda t, lib: t.clone() * t,
    "in-place": lambda t, lib: (t * 2).mul_(t).add_(t, alpha=-1).clamp_(min=0.1) * t,
}


@pytest.mark.parametrize("name", sorted(TORCH_CASES))
def test_the_same_calls_give_pytorchs_values_and_gradients(name):
    torch = pytest.importorskip("torch")
    fn = TORCH_CASES[name]
    a = np.random.default_rng(1).standard_normal((3, 4))
    a[1, :2] = a.max() + 1                    # a tie for max()
    x, y = t64(a), torch.tensor(a, requires_grad=True)
    out_x, out_y = fn(x, ae), fn(y, torch)
    np.testing.assert_allclose(out_x.numpy(), out_y.detach().numpy(), rtol=1e-12, atol=1e-14)
    weights = np.random.default_rng(2).standard_normal(out_x.shape)
    out_x.backward(weights)
    out_y.backward(torch.tensor(weights))
    np.testing.assert_allclose(x.grad, y.grad.numpy(), rtol=1e-12, atol=1e-14)


def test_factories_indices_and_comparisons_match_pytorch():
    torch = pytest.importorskip("torch")
    a = np.random.default_rng(3).standard_normal((3, 4))
    x, y = ae.tensor(a), torch.tensor(a, dtype=torch.float32)
    for ours, theirs in [(x.argmax(1), y.argmax(1)), (x.argmin(), y.argmin()),
                         (x.max(1).indices, y.max(1).indices), (x > 0, y > 0),
                         (x == x[0], y == y[0])]:
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
        assert ours.dtype == theirs.numpy().dtype
    for args in [(5,), (1, 2.5, 0.5), (0, -3, -1), (-2.5, 3.3, 0.7)]:
        np.testing.assert_array_equal(ae.arange(*args).numpy(),
                                      torch.arange(*args, dtype=torch.float32).numpy())
    for args in [(0, 1, 5), (-3.3, 7.1, 17), (2, 5, 1), (0.1, 0.7, 100)]:
        # PyTorch's vectorized loop may round the last bit differently from its scalar loop
        np.testing.assert_allclose(ae.linspace(*args).numpy(), torch.linspace(*args).numpy(),
                                   rtol=1e-6, atol=1e-6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert np.isnan(ae.tensor([1.0]).var().item()) and torch.tensor([1.0]).var().isnan()
