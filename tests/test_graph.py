"""The graph: topological backward, accumulation, freeing, no_grad, and the error messages."""

import numpy as np
import pytest

import aecore as ae


def test_backward_through_a_chain_of_ten_thousand_ops():
    x = ae.tensor([1.0], requires_grad=True, dtype=np.float64)
    y = x
    for _ in range(10_000):
        y = y * 1.0001
    y.backward()
    np.testing.assert_allclose(x.grad, [1.0001 ** 10_000], rtol=1e-9)


def test_tensor_used_twice_accumulates():
    x = ae.tensor([3.0], requires_grad=True)
    y = x * x + x  # dy/dx = 2x + 1 = 7
    y.backward()
    np.testing.assert_allclose(x.grad, [7.0])


def test_diamond_graph_visits_shared_node_once():
    x = ae.tensor([2.0], requires_grad=True, dtype=np.float64)
    shared = x.exp()
    y = shared * 3 + shared * shared  # d/dx = 3 e^x + 2 e^{2x}
    y.backward()
    np.testing.assert_allclose(x.grad, [3 * np.exp(2) + 2 * np.exp(4)], rtol=1e-12)


def test_grads_accumulate_across_backward_calls_until_zeroed():
    x = ae.tensor([1.0, 2.0], requires_grad=True)
    (x * 2).sum().backward()
    (x * 2).sum().backward()
    np.testing.assert_allclose(x.grad, [4.0, 4.0])
    x.zero_grad()
    assert x.grad is None


def test_graph_is_freed_after_backward_unless_retained():
    x = ae.tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_allclose(x.grad, [4.0, 8.0])
    with pytest.raises(RuntimeError, match="second time"):
        y.backward()
    assert y.creator.saved == ()


def test_no_grad_records_nothing():
    x = ae.tensor([1.0], requires_grad=True)
    with ae.no_grad():
        y = x * 2
    assert y.creator is None and not y.requires_grad
    with pytest.raises(RuntimeError, match="does not require gradients"):
        y.backward()


def test_backward_on_non_scalar_needs_a_gradient():
    x = ae.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match=r"shape \(2,\).*pass grad="):
        (x * 2).backward()
    (x * 2).backward(np.array([1.0, 10.0]))
    np.testing.assert_allclose(x.grad, [2.0, 20.0])
    with pytest.raises(ValueError, match="grad has shape"):
        (x * 2).backward(np.ones(3))


def test_only_needed_gradients_are_computed():
    x = ae.tensor([1.0, 2.0], requires_grad=True)
    c = ae.tensor([3.0, 4.0])
    (x * c).sum().backward()
    assert c.grad is None
    np.testing.assert_allclose(x.grad, [3.0, 4.0])


def test_retain_grad_keeps_intermediate_gradient():
    x = ae.tensor([1.0, 2.0], requires_grad=True)
    h = (x * 3).retain_grad()
    (h * h).sum().backward()
    np.testing.assert_allclose(h.grad, 2 * h.numpy())


def test_shape_errors_name_both_shapes():
    a, b = ae.tensor(np.ones((2, 3))), ae.tensor(np.ones((4, 5)))
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(4, 5\)"):
        a @ b
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(4, 5\)"):
        a + b


def test_mixing_dtypes_says_so():
    a = ae.tensor(np.ones(3, dtype=np.float32))
    b = ae.tensor(np.ones(3, dtype=np.float64))
    with pytest.raises(TypeError, match="float32.*float64"):
        a + b


def test_cuda_without_gpu_says_how_to_fix():
    if ae.gpu_available():
        pytest.skip("a GPU is present")
    with pytest.raises(RuntimeError, match="no GPU is usable.*aecore\\[cuda\\]"):
        ae.tensor([1.0], device="cuda")


def test_detach_item_numpy_and_dtype_rules():
    x = ae.tensor([[1.5]], requires_grad=True)
    assert x.item() == 1.5
    assert x.detach().creator is None and not x.detach().requires_grad
    assert ae.tensor(np.zeros(2, dtype=np.float64)).dtype == np.float64
    assert ae.tensor([1, 2]).dtype == np.float32
    assert ae.tensor([1.0], dtype=np.float64).double().dtype == np.float64
    with pytest.raises(ValueError, match="one element"):
        ae.tensor([1.0, 2.0]).item()
    with pytest.raises(TypeError, match="float32 or float64"):
        ae.tensor([1.0], dtype=np.int32)


def test_cast_is_differentiable():
    x = ae.tensor([1.0, 2.0], requires_grad=True)
    y = x.double() * 2
    assert y.dtype == np.float64
    y.sum().backward()
    assert x.grad.dtype == np.float32
    np.testing.assert_allclose(x.grad, [2.0, 2.0])


def test_manual_seed_repeats_draws():
    ae.manual_seed(123)
    first = ae.randn(3, 4).numpy()
    ae.manual_seed(123)
    np.testing.assert_array_equal(first, ae.randn(3, 4).numpy())
    with pytest.raises(ValueError, match="seed"):
        ae.manual_seed(-1)


def test_gradcheck_refuses_float32_and_reports_the_element():
    x32 = ae.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(TypeError, match="input 0 is float32"):
        ae.gradcheck(lambda t: t * 2, [x32])

    class WrongSquare(ae.Function):  # backward off by a factor of 2 on purpose
        def forward(self, a):
            self.save_for_backward(a)
            return a * a

        def backward(self, grad):
            return (grad * self.saved[0],)

    x = ae.tensor([1.0, 2.0], requires_grad=True, dtype=np.float64)
    with pytest.raises(ae.GradcheckError, match=r"input 0.*element \(0,\).*analytic 1.*numeric 2"):
        ae.gradcheck(lambda t: WrongSquare.apply(t), [x])
    big = ae.tensor(np.linspace(0.5, 1.5, 3000), requires_grad=True, dtype=np.float64)
    with pytest.raises(ae.GradcheckError, match="random direction"):
        ae.gradcheck(lambda t: WrongSquare.apply(t).sum(), [big])
    assert ae.gradcheck(lambda t: (t * t).sum(), [big])
