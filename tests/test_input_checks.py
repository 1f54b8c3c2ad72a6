"""Bad inputs get one clear line before any kernel runs: unsupported dtypes, outputs too large to
allocate, and arguments of the wrong kind, each naming the argument."""

import numpy as np
import pytest

import aecore as ae
import aecore.functional as F
from aecore import nn
from aecore.kernels import geometry

REFUSED = {
    "float16": np.ones(3, np.float16),
    "complex128": np.array([1 + 2j, 3.0]),
    "<U1": np.array(["1", "2"]),
    "|S1": np.array([b"1"]),
    "object": np.array([1.0, None], dtype=object),
}


def _one_line(error):
    message = str(error.value)
    assert "\n" not in message, message
    return message


# ---------------------------------------------------------------------------- dtypes
@pytest.mark.parametrize("name", REFUSED)
def test_tensor_refuses_dtypes_it_does_not_compute_in(name):
    with pytest.raises(TypeError) as caught:
        ae.tensor(REFUSED[name])
    message = _one_line(caught)
    assert np.dtype(REFUSED[name].dtype).name in message or name in message
    assert "float32 or float64" in message


@pytest.mark.parametrize("data", [["1", "2"], 1 + 2j, [1 + 1j], "3", [None]])
def test_tensor_refuses_python_data_that_is_not_real_numbers(data):
    with pytest.raises(TypeError, match="float32 or float64"):
        ae.tensor(data)


def test_tensor_refuses_an_explicit_dtype_that_loses_the_imaginary_part():
    with pytest.raises(TypeError, match="complex128"):
        ae.tensor(np.array([1 + 2j]), dtype=np.float32)


@pytest.mark.parametrize("data, dtype", [([1, 2], np.float32), ([True, False], np.float32),
                                         (np.arange(3), np.float32),
                                         (np.arange(3, dtype=np.uint8), np.float32),
                                         (np.ones(2), np.float64), ([0.5], np.float32)])
def test_tensor_keeps_converting_real_numbers(data, dtype):
    assert ae.tensor(data).dtype == dtype


def test_to_refuses_a_dtype_it_does_not_compute_in():
    with pytest.raises(TypeError, match="float16"):
        ae.tensor([1.0]).to(dtype=np.float16)


def _conv_calls(x=None, w=None, b=None):
    """Each functional op with its arrays (defaults: valid float32 ones)."""
    x = np.ones((1, 2, 6, 6), np.float32) if x is None else x
    w = np.ones((3, 2, 3, 3), np.float32) if w is None else w
    b = np.ones(3, np.float32) if b is None else b
    return {
        "conv2d": lambda: F.conv2d(x, w, b),
        "conv_transpose2d": lambda: F.conv_transpose2d(x, w.transpose(1, 0, 2, 3).copy(), b),
        "upsample_conv2d": lambda: F.upsample_conv2d(x, w, b, scale_factor=2, padding=1),
    }


@pytest.mark.parametrize("name", ["float16", "complex128", "<U1", "object"])
@pytest.mark.parametrize("argument", ["input x", "weight", "bias"])
def test_conv_ops_name_the_argument_with_a_refused_dtype(name, argument):
    def bad(shape):
        return np.ones(shape).astype(REFUSED[name].dtype)

    arrays = {"input x": dict(x=bad((1, 2, 6, 6))), "weight": dict(w=bad((3, 2, 3, 3))),
              "bias": dict(b=bad(3))}[argument]
    for op, call in _conv_calls(**arrays).items():
        with pytest.raises(TypeError) as caught:
            call()
        message = _one_line(caught)
        assert message.startswith(f"{op}: {argument} has dtype "), message
        assert "float32 or float64" in message and ".astype(np.float32)" in message


@pytest.mark.parametrize("call, op", [
    (lambda x: F.max_pool2d(x, 2), "max_pool2d"),
    (lambda x: F.interpolate(x, scale_factor=2), "interpolate"),
    (lambda x: F.linear(x.reshape(1, -1), np.ones((2, 4), np.float32)), "linear"),
    (lambda x: F.relu(x), "relu"),
    (lambda x: F.sigmoid(x), "sigmoid"),
])
def test_other_ops_refuse_float16_and_complex(call, op):
    for dtype in (np.float16, np.complex64):
        with pytest.raises(TypeError) as caught:
            call(np.ones((1, 1, 2, 2), dtype))
        message = _one_line(caught)
        assert np.dtype(dtype).name in message and op in message.lower(), message


def test_a_float16_tensor_made_inside_the_engine_never_reaches_a_kernel():
    half = ae.Tensor(np.ones((1, 1, 4, 4), np.float16), _copy=False)
    with pytest.raises(TypeError, match="max_pool2d: input x has dtype float16"):
        F.max_pool2d(half, 2)


def test_tensor_docstring_names_the_supported_dtypes():
    assert "float32 and float64" in ae.tensor.__doc__


# ---------------------------------------------------------------------------- output size
def test_interpolate_refuses_an_output_too_large_to_allocate():
    x = ae.tensor(np.ones((1, 1, 28, 28), np.float32))
    with pytest.raises(ValueError) as caught:
        F.interpolate(x, scale_factor=100000)
    assert _one_line(caught) == (
        "interpolate: scale_factor=100000 gives an output of (1, 1, 2800000, 2800000) = 7.8e+12 "
        "elements, above the limit of 2,147,483,647")
    with pytest.raises(ValueError, match=r"interpolate: size=\(100000, 100000\) gives"):
        F.interpolate(x, size=(100000, 100000))


def test_conv_ops_refuse_an_output_too_large_to_allocate():
    x = ae.tensor(np.ones((1, 1, 4, 4), np.float32))
    w = ae.tensor(np.ones((1, 1, 3, 3), np.float32))
    with pytest.raises(ValueError, match="conv2d: padding=100000 .*above the limit"):
        F.conv2d(x, w, padding=100000)
    with pytest.raises(ValueError, match="conv_transpose2d: stride=100000 .*above the limit"):
        F.conv_transpose2d(x, w, stride=100000)


def test_the_output_limit_is_configurable(monkeypatch):
    monkeypatch.setattr(geometry, "MAX_OUTPUT_ELEMENTS", 100)
    with pytest.raises(ValueError, match="above the limit of 100"):
        geometry.interpolate_geometry((1, 1, 4, 4), scale_factor=4)
    assert geometry.interpolate_geometry((1, 1, 4, 4), scale_factor=2).out_h == 8


# ---------------------------------------------------------------------------- argument kinds
@pytest.mark.parametrize("scale_factor", ["abc", [1, "a"], True, b"2",
                                          np.array([2.0, 2.0, 2.0])])
def test_interpolate_names_a_scale_factor_of_the_wrong_kind(scale_factor):
    x = ae.tensor(np.ones((1, 1, 4, 4), np.float32))
    with pytest.raises(TypeError) as caught:
        F.interpolate(x, scale_factor=scale_factor)
    message = _one_line(caught)
    assert message.startswith("scale_factor must be a positive number or a pair of numbers, got")


@pytest.mark.parametrize("padding", [0, 1, "same"])
def test_conv_transpose2d_names_an_array_output_padding(padding):
    x = ae.tensor(np.ones((1, 2, 4, 4), np.float32))
    w = ae.tensor(np.ones((2, 3, 3, 3), np.float32))
    with pytest.raises(TypeError) as caught:
        F.conv_transpose2d(x, w, stride=2, padding=padding, output_padding=np.array([1, 1]))
    message = _one_line(caught)
    assert message.startswith("output_padding must be an int or a pair of ints"), message
    assert "array([1, 1])" in message


@pytest.mark.parametrize("padding", [0, "same"])
def test_conv_transpose2d_layer_names_an_array_output_padding(padding):
    with pytest.raises(TypeError) as caught:
        nn.ConvTranspose2d(2, 3, 3, stride=2, padding=padding, output_padding=np.array([1, 1]))
    assert _one_line(caught).startswith("output_padding must be an int or a pair of ints")


def test_conv_transpose2d_string_padding_refuses_output_padding_not_below_stride():
    x = ae.tensor(np.ones((1, 2, 4, 4), np.float32))
    w = ae.tensor(np.ones((2, 3, 3, 3), np.float32))
    with pytest.raises(ValueError, match=r"output_padding must be smaller than stride \(2, 2\), got \(2, 2\)"):
        F.conv_transpose2d(x, w, stride=2, padding="same", output_padding=(2, 2))
    assert F.conv_transpose2d(x, w, stride=2, padding="same", output_padding=[0, 0]).shape == (1, 3, 8, 8)
    # Keras' rule: (4 - 1) * 2 + 3 - 2 * 1 + 1 = 8
    assert F.conv_transpose2d(x, w, stride=2, padding="same", output_padding=1).shape == (1, 3, 8, 8)


# ---------------------------------------------------------------------------- non-contiguous data
def test_ops_take_non_contiguous_tensors_and_gradients():
    """The registry refuses non-contiguous arrays; the graph hands the kernels contiguous ones."""
    rng = np.random.default_rng(0)
    base = rng.standard_normal((2, 3, 6, 6)).astype(np.float32)
    w = ae.tensor(rng.standard_normal((4, 3, 3, 3)).astype(np.float32))

    def run(x):
        y = F.conv2d(x, w, padding=1)
        y = F.max_pool2d(ae.relu(y), 2)
        y = F.interpolate(y, scale_factor=2, mode="bilinear")
        return y.transpose(0, 1, 3, 2)                      # a non-contiguous gradient upstream

    plain = ae.tensor(base.transpose(0, 1, 3, 2).copy(), requires_grad=True)
    strided = ae.tensor(base, requires_grad=True)
    expected = run(plain)
    got = run(strided.transpose(0, 1, 3, 2))
    np.testing.assert_allclose(got.numpy(), expected.numpy(), rtol=1e-5, atol=1e-6)
    (expected * expected).sum().backward()
    (got * got).sum().backward()
    np.testing.assert_allclose(strided.grad.transpose(0, 1, 3, 2), plain.grad, rtol=1e-4, atol=1e-5)
