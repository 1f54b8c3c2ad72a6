"""F.pad, the Keras layers PyTorch has no module for (ZeroPadding2D, Cropping2D, Reshape, Lambda),
PyTorch's ZeroPad2d, Keras' initializers and the layers' weight_init / bias_init."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import aecore as ae
import aecore.functional as F
from aecore import nn
from aecore.models.base import apply_init
from aecore.nn import init
from strategies import arrays


def t64(array, grad=True):
    return ae.tensor(np.asarray(array, np.float64), requires_grad=grad)


# ---------------------------------------------------------------------------- F.pad
def padded_by_index(x, pad, value):
    """F.pad's definition, element by element: out[o] = x[o - before] where that index exists
    in x, else `value` (before, after per axis; `pad` lists the last axis first)."""
    widths = [(0, 0)] * x.ndim
    for i in range(len(pad) // 2):
        widths[x.ndim - 1 - i] = (pad[2 * i], pad[2 * i + 1])
    out_shape = [size + before + after for size, (before, after) in zip(x.shape, widths)]
    out = np.full(out_shape, value, dtype=x.dtype)
    kept_out, kept_in = [], []
    for size, out_size, (before, _) in zip(x.shape, out_shape, widths):
        source = np.arange(out_size) - before
        inside = (source >= 0) & (source < size)
        kept_out.append(np.flatnonzero(inside))
        kept_in.append(source[inside])
    out[np.ix_(*kept_out)] = x[np.ix_(*kept_in)]
    return out


@st.composite
def pad_cases(draw):
    """(x, pad) with 2 or 4 amounts in [-2, 3] on a 4-D x, the crops never more than a side."""
    shape = draw(st.tuples(st.integers(1, 2), st.integers(1, 2), st.integers(1, 5), st.integers(1, 5)))
    x = draw(arrays(shape))
    pad = []
    for size in reversed(shape[-draw(st.sampled_from([1, 2])):]):
        before = draw(st.integers(-min(2, size), 3))
        after = draw(st.integers(-min(2, size - max(-before, 0)), 3))
        pad += [before, after]
    return x, tuple(pad)


@given(case=pad_cases(), value=st.sampled_from([0.0, -1.5]))
def test_pad_matches_its_definition_and_gradchecks(case, value):
    x, pad = case
    out = F.pad(t64(x), pad, value=value)
    np.testing.assert_array_equal(out.numpy(), padded_by_index(x, pad, value))
    assert ae.gradcheck(lambda a: F.pad(a, pad, value=value), [t64(x)])


def test_pad_positive_is_np_pad_and_negative_is_a_slice():
    x = np.random.rand(2, 3, 5, 6)
    np.testing.assert_array_equal(F.pad(t64(x), (1, 2, 3, 0)).numpy(),
                                  np.pad(x, [(0, 0), (0, 0), (3, 0), (1, 2)]))
    np.testing.assert_array_equal(F.pad(t64(x), (-1, -2, 0, -4)).numpy(), x[:, :, :1, 1:4])
    np.testing.assert_array_equal(F.pad(t64(x), (1, 1, 1, 1, 1, 1)).numpy(),
                                  np.pad(x, [(0, 0), (1, 1), (1, 1), (1, 1)]))
    assert F.pad(t64(x), (-3, -3)).shape == (2, 3, 5, 0)  # as PyTorch: an empty axis is allowed


def test_pad_backward_slices_the_gradient():
    x = t64(np.random.rand(1, 2, 3, 3))
    weights = np.random.rand(1, 2, 5, 2)
    (F.pad(x, (-1, 0, 1, 1)) * ae.tensor(weights)).sum().backward()
    expected = np.zeros((1, 2, 3, 3))
    expected[:, :, :, 1:] = weights[:, :, 1:4, :]
    np.testing.assert_array_equal(x.grad, expected)


@pytest.mark.parametrize("pad,error,match", [
    ((1,), ValueError, "even number"),
    ((1, 1) * 5, ValueError, "at most 2 per dimension"),
    ((-2, -2), ValueError, r"crop more than the 3 elements of dimension 3"),
    ((1.0, 1), TypeError, "tuple of ints"),
    (2, TypeError, "tuple of ints"),
])
def test_pad_refuses_bad_pads(pad, error, match):
    with pytest.raises(error, match=match):
        F.pad(t64(np.zeros((1, 1, 3, 3))), pad)


def test_pad_refuses_other_modes_and_bad_values():
    x = t64(np.zeros((1, 1, 3, 3)))
    with pytest.raises(ValueError, match=r"pad: mode must be one of 'constant'.*got 'reflect'"):
        F.pad(x, (1, 1), mode="reflect")
    with pytest.raises(TypeError, match="value must be a real number"):
        F.pad(x, (1, 1), value="0")


def test_pad_agrees_with_torch():
    torch = pytest.importorskip("torch")
    x = np.random.rand(2, 3, 4, 5)
    for pad in [(1, 2), (0, 1, 2, 3), (-1, 2, 1, -3), (-2, -3, -1, 0), (1, 0, 0, 1, 2, 0)]:
        expected = torch.nn.functional.pad(torch.from_numpy(x), pad, value=0.5).numpy()
        np.testing.assert_array_equal(F.pad(t64(x), pad, value=0.5).numpy(), expected)
    np.testing.assert_array_equal(nn.ZeroPad2d((1, -1, 2, 0))(t64(x)).numpy(),
                                  torch.nn.ZeroPad2d((1, -1, 2, 0))(torch.from_numpy(x)).numpy())


# ---------------------------------------------------------------------------- padding / cropping modules
def test_zero_pad2d_takes_pytorchs_forms():
    x = np.random.rand(1, 2, 3, 4)
    np.testing.assert_array_equal(nn.ZeroPad2d(2)(t64(x)).numpy(),
                                  np.pad(x, [(0, 0), (0, 0), (2, 2), (2, 2)]))
    np.testing.assert_array_equal(nn.ZeroPad2d((1, 0, -1, 2))(t64(x)).numpy(),
                                  np.pad(x[:, :, 1:], [(0, 0), (0, 0), (0, 2), (1, 0)]))
    assert repr(nn.ZeroPad2d((1, 0, -1, 2))) == "ZeroPad2d((1, 0, -1, 2))"
    with pytest.raises(ValueError, match=r"ZeroPad2d: padding must be an int or \(left, right, top, bottom\)"):
        nn.ZeroPad2d((1, 2))


# Keras' argument forms -> ((top, bottom), (left, right))
KERAS_FORMS = [
    (1, ((1, 1), (1, 1))),
    ((1, 2), ((1, 1), (2, 2))),
    (((0, 1), (2, 0)), ((0, 1), (2, 0))),
    (((1, 0), 2), ((1, 0), (2, 2))),
]


@pytest.mark.parametrize("form,sides", KERAS_FORMS)
def test_zero_padding2d_and_cropping2d_read_keras_forms(form, sides):
    (top, bottom), (left, right) = sides
    x = np.random.rand(2, 3, 5, 6)
    padding = nn.ZeroPadding2D(form)
    assert padding.padding == sides
    np.testing.assert_array_equal(padding(t64(x)).numpy(),
                                  np.pad(x, [(0, 0), (0, 0), (top, bottom), (left, right)]))
    cropping = nn.Cropping2D(form)
    assert cropping.cropping == sides
    np.testing.assert_array_equal(cropping(t64(x)).numpy(),
                                  x[:, :, top:5 - bottom, left:6 - right])


def test_keras_padding_defaults_are_keras():
    assert nn.ZeroPadding2D().padding == ((1, 1), (1, 1))
    x = np.random.rand(1, 1, 2, 2)
    np.testing.assert_array_equal(nn.Cropping2D()(t64(x)).numpy(), x)


@pytest.mark.parametrize("form", [-1, (1, 2, 3), ((1, 2, 3), 1), (1.5, 1), "same", ((1, -1), 0)])
def test_keras_forms_refuse_bad_amounts(form):
    with pytest.raises(ValueError, match=r"Cropping2D: cropping must be an int >= 0"):
        nn.Cropping2D(form)
    with pytest.raises(ValueError, match=r"ZeroPadding2D: padding must be an int >= 0"):
        nn.ZeroPadding2D(form)


def test_cropping2d_refuses_to_remove_a_whole_axis_and_non_images():
    with pytest.raises(ValueError, match=r"removes all of an input of height 4 and width 6"):
        nn.Cropping2D(((2, 2), (0, 0)))(t64(np.zeros((1, 1, 4, 6))))
    with pytest.raises(ValueError, match=r"removes all of an input of height 4 and width 6"):
        nn.Cropping2D((0, 3))(t64(np.zeros((1, 1, 4, 6))))
    with pytest.raises(ValueError, match=r"Cropping2D: expects \(N, C, H, W\) input, got shape \(4, 6\)"):
        nn.Cropping2D(1)(t64(np.zeros((4, 6))))


def test_cropping2d_and_zero_padding2d_gradcheck():
    x = t64(np.random.rand(2, 2, 5, 4))
    assert ae.gradcheck(nn.Cropping2D(((1, 2), (0, 1))), [x])
    assert ae.gradcheck(nn.ZeroPadding2D(((0, 1), 2)), [x])


# ---------------------------------------------------------------------------- Reshape
def test_reshape_is_per_example_and_in_nchw_order():
    flat = np.arange(2 * 24, dtype=np.float64).reshape(2, 24)
    out = nn.Reshape(2, 3, 4)(t64(flat))
    np.testing.assert_array_equal(out.numpy(), flat.reshape(2, 2, 3, 4))
    assert nn.Reshape((2, -1, 4))(t64(flat)).shape == (2, 2, 3, 4)
    assert nn.Reshape(-1)(t64(flat.reshape(2, 2, 3, 4))).shape == (2, 24)
    assert repr(nn.Reshape(32, 7, 7)) == "Reshape(32, 7, 7)"
    assert ae.gradcheck(nn.Reshape(4, -1), [t64(np.random.rand(3, 2, 6))])


@pytest.mark.parametrize("target", [(), (2, -1, -1), (0, 4), (2.0, 3), ((2, 3), 4)])
def test_reshape_refuses_bad_targets(target):
    with pytest.raises(ValueError, match="Reshape: target_shape must be positive ints with at most one -1"):
        nn.Reshape(*target)


def test_reshape_names_a_target_the_input_does_not_fit():
    with pytest.raises(ValueError, match=r"has 24 values per example, which do not fit target_shape \(5, 5\)"):
        nn.Reshape(5, 5)(t64(np.zeros((2, 24))))
    with pytest.raises(ValueError, match=r"do not fit target_shape \(5, -1\)"):
        nn.Reshape(5, -1)(t64(np.zeros((2, 24))))


# ---------------------------------------------------------------------------- Lambda
def double(x):
    return x * 2


def test_lambda_runs_inside_sequential_and_keeps_state_dict_of_the_others():
    def build():
        return nn.Sequential(nn.Linear(4, 3), nn.Lambda(double), nn.Linear(3, 2), nn.Lambda(F.relu))
    model = build()
    assert list(model.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    other = build()
    other.load_state_dict(model.state_dict())
    x = ae.tensor(np.random.rand(5, 4).astype(np.float32))
    np.testing.assert_array_equal(model(x).numpy(), other(x).numpy())
    hidden = 2 * (x.numpy() @ model[0].weight.numpy().T + model[0].bias.numpy())
    expected = np.maximum(hidden @ model[2].weight.numpy().T + model[2].bias.numpy(), 0)
    np.testing.assert_allclose(model(x).numpy(), expected, rtol=1e-6)


def test_lambda_repr_and_errors():
    assert repr(nn.Lambda(double)) == "Lambda(double)"
    assert repr(nn.Lambda(lambda x: x + 1, name="shift")) == "Lambda(shift)"
    with pytest.raises(TypeError, match="Lambda: function must be callable, got int 3"):
        nn.Lambda(3)
    with pytest.raises(TypeError, match="Lambda: name must be a str or None"):
        nn.Lambda(double, name=1)


# ---------------------------------------------------------------------------- fans
def keras_fans(kernel_shape):
    """Keras' compute_fans for a kernel: its last two axes times the receptive field."""
    receptive = math.prod(kernel_shape[:-2])
    return kernel_shape[-2] * receptive, kernel_shape[-1] * receptive


@pytest.mark.parametrize("layer,keras_kernel_shape", [
    (nn.Linear(5, 7), (5, 7)),                                   # Dense (in, out)
    (nn.Conv2d(3, 8, (2, 4)), (2, 4, 3, 8)),                     # Conv2D (kH, kW, in, out)
    (nn.ConvTranspose2d(3, 8, (2, 4)), (2, 4, 8, 3)),            # Conv2DTranspose (kH, kW, out, in)
])
def test_fans_agree_with_keras_for_the_same_layer(layer, keras_kernel_shape):
    assert init.fans(layer.weight.shape) == keras_fans(keras_kernel_shape)


# ---------------------------------------------------------------------------- initializer statistics
CONV_WEIGHT = (64, 32, 3, 3)              # fan_in 288, fan_out 576, fan_avg 432
CONV_FANS = {"fan_in": 288, "fan_out": 576, "fan_avg": 432}


@pytest.mark.parametrize("mode", ["fan_in", "fan_out", "fan_avg"])
@pytest.mark.parametrize("distribution", ["truncated_normal", "untruncated_normal", "uniform"])
def test_variance_scaling_has_kerass_spread_and_bounds(mode, distribution):
    scale = 2.0
    values = init.variance_scaling_(nn.Parameter(np.zeros(CONV_WEIGHT, np.float32)), scale, mode,
                                    distribution).numpy().astype(np.float64)
    std = math.sqrt(scale / CONV_FANS[mode])
    assert abs(values.mean()) < 0.03 * std
    assert abs(values.std() / std - 1) < 0.03
    largest = np.abs(values).max()
    if distribution == "truncated_normal":
        cut = 2 * std / 0.87962566103423978           # 2 stddevs of the untruncated draws
        assert largest <= cut * (1 + 1e-6) and largest > 0.99 * cut
    elif distribution == "uniform":
        limit = math.sqrt(3 * scale / CONV_FANS[mode])
        assert largest <= limit and largest > 0.99 * limit
    else:
        assert largest > 3.5 * std                    # tails, which the truncated draws lack


@pytest.mark.parametrize("initializer,scale,mode,distribution", [
    (init.glorot_uniform_, 1.0, "fan_avg", "uniform"),
    (init.glorot_normal_, 1.0, "fan_avg", "truncated_normal"),
    (init.he_uniform_, 2.0, "fan_in", "uniform"),
    (init.he_normal_, 2.0, "fan_in", "truncated_normal"),
    (init.lecun_uniform_, 1.0, "fan_in", "uniform"),
    (init.lecun_normal_, 1.0, "fan_in", "truncated_normal"),
])
def test_keras_initializers_are_their_variance_scaling(initializer, scale, mode, distribution):
    ae.manual_seed(11)
    named = initializer(nn.Parameter(np.zeros((6, 5, 3, 3), np.float32))).numpy()
    ae.manual_seed(11)
    scaled = init.variance_scaling_(nn.Parameter(np.zeros((6, 5, 3, 3), np.float32)), scale, mode,
                                    distribution).numpy()
    np.testing.assert_array_equal(named, scaled)


def test_glorot_uniform_is_xavier_uniforms_bound_and_he_normal_is_truncated():
    weight = init.glorot_uniform_(nn.Parameter(np.zeros((300, 200), np.float32))).numpy()
    bound = math.sqrt(6 / (300 + 200))
    assert weight.max() <= bound and weight.max() > 0.99 * bound
    weight = init.he_normal_(nn.Parameter(np.zeros((300, 200), np.float32))).numpy()
    assert abs(weight.std() / math.sqrt(2 / 200) - 1) < 0.03
    assert np.abs(weight).max() <= 2 * math.sqrt(2 / 200) / 0.87962566103423978 * (1 + 1e-6)


def test_variance_scaling_uses_a_bias_length_as_its_fans():
    bias = init.he_uniform_(nn.Parameter(np.zeros(1000, np.float32))).numpy()
    limit = math.sqrt(6 / 1000)
    assert bias.max() <= limit and bias.max() > 0.98 * limit


@pytest.mark.parametrize("kwargs,match", [
    (dict(scale=0.0), "scale must be a positive number"),
    (dict(mode="fan_sum"), r"mode must be one of 'fan_in', 'fan_out', 'fan_avg', got 'fan_sum'"),
    (dict(distribution="normal"), r"distribution must be one of 'truncated_normal'"),
])
def test_variance_scaling_refuses_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        init.variance_scaling_(nn.Parameter(np.zeros((3, 3), np.float32)), **kwargs)


def truncated_normal_moments(mean, std, a, b):
    """Mean and std of N(mean, std) conditioned on [a, b] (the textbook formulas)."""
    alpha, beta = (a - mean) / std, (b - mean) / std
    pdf = [math.exp(-z * z / 2) / math.sqrt(2 * math.pi) for z in (alpha, beta)]
    mass = 0.5 * (math.erf(beta / math.sqrt(2)) - math.erf(alpha / math.sqrt(2)))
    shift = (pdf[0] - pdf[1]) / mass
    variance = 1 + (alpha * pdf[0] - beta * pdf[1]) / mass - shift ** 2
    return mean + std * shift, std * math.sqrt(variance)


@pytest.mark.parametrize("mean,std,a,b", [(0.0, 1.0, -2.0, 2.0), (1.0, 2.0, 0.0, 3.0),
                                          (0.0, 0.5, -0.2, 1.5)])
def test_trunc_normal_is_pytorchs_bounded_normal(mean, std, a, b):
    values = init.trunc_normal_(nn.Parameter(np.zeros((200, 100), np.float64)), mean, std, a, b).numpy()
    expected_mean, expected_std = truncated_normal_moments(mean, std, a, b)
    assert values.min() >= a and values.max() <= b
    assert abs(values.mean() - expected_mean) < 0.03 * expected_std
    assert abs(values.std() / expected_std - 1) < 0.03


def test_trunc_normal_matches_torchs_distribution():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    reference = torch.nn.init.trunc_normal_(torch.empty(200, 100, dtype=torch.float64),
                                            mean=1.0, std=2.0, a=0.0, b=3.0).numpy()
    ours = init.trunc_normal_(nn.Parameter(np.zeros((200, 100), np.float64)), 1.0, 2.0, 0.0, 3.0).numpy()
    assert ours.min() >= 0 and ours.max() <= 3
    assert abs(ours.mean() - reference.mean()) < 0.03 and abs(ours.std() / reference.std() - 1) < 0.03


@pytest.mark.parametrize("kwargs,match", [
    (dict(std=0.0), "std must be > 0"),
    (dict(a=1.0, b=1.0), "need a < b"),
    (dict(a=9.0, b=10.0), r"holds less than"),
])
def test_trunc_normal_refuses_bad_intervals(kwargs, match):
    with pytest.raises(ValueError, match=match):
        init.trunc_normal_(nn.Parameter(np.zeros(4, np.float32)), **kwargs)


# ---------------------------------------------------------------------------- reproducibility
@pytest.mark.parametrize("name", ["glorot_uniform", "glorot_normal", "he_normal", "he_uniform",
                                  "lecun_normal", "truncated_normal"])
def test_named_initializers_repeat_under_a_seed(name):
    def draw(seed):
        ae.manual_seed(seed)
        return nn.Conv2d(3, 4, 3, weight_init=name, bias_init=name).state_dict()
    first, again, other = draw(7), draw(7), draw(8)
    for key in first:
        np.testing.assert_array_equal(first[key], again[key])
        assert not np.array_equal(first[key], other[key])


# ---------------------------------------------------------------------------- weight_init / bias_init
LAYERS = [
    lambda **kw: nn.Linear(6, 4, **kw),
    lambda **kw: nn.Conv2d(3, 4, 3, **kw),
    lambda **kw: nn.ConvTranspose2d(3, 4, 3, **kw),
    lambda **kw: nn.UpsampleConv2d(3, 4, 3, size=8, **kw),
]


@pytest.mark.parametrize("make", LAYERS)
def test_layers_take_named_and_callable_initializers(make):
    layer = make(weight_init="ones", bias_init="zeros")
    assert np.all(layer.weight.numpy() == 1) and np.all(layer.bias.numpy() == 0)
    seen = []

    def halves(parameter):
        seen.append(parameter)
        init.constant_(parameter, 0.5)

    layer = make(weight_init=halves, bias_init="ones")
    assert len(seen) == 1 and seen[0] is layer.weight and isinstance(seen[0], nn.Parameter)
    assert np.all(layer.weight.numpy() == 0.5) and np.all(layer.bias.numpy() == 1)
    ae.manual_seed(3)
    layer = make(weight_init="he_normal")
    ae.manual_seed(3)
    expected = init.he_normal_(nn.Parameter(np.zeros(layer.weight.shape, np.float32)))
    np.testing.assert_array_equal(layer.weight.numpy(), expected.numpy())


@pytest.mark.parametrize("make", LAYERS)
def test_no_init_arguments_keep_pytorchs_defaults(make):
    ae.manual_seed(4)
    layer = make()
    ae.manual_seed(4)
    weight = init.kaiming_uniform_(nn.Parameter(np.zeros(layer.weight.shape, np.float32)), a=math.sqrt(5))
    bound = 1 / math.sqrt(init.fans(weight.shape)[0])
    bias = init.uniform_(nn.Parameter(np.zeros(layer.bias.shape, np.float32)), -bound, bound)
    np.testing.assert_array_equal(layer.weight.numpy(), weight.numpy())
    np.testing.assert_array_equal(layer.bias.numpy(), bias.numpy())


def test_transposed_conv_init_uses_its_output_channels_as_fan_in():
    layer = nn.ConvTranspose2d(50, 2, 3, weight_init="he_uniform")    # weight (50, 2, 3, 3)
    limit = math.sqrt(6 / (2 * 9))
    assert np.abs(layer.weight.numpy()).max() <= limit
    assert np.abs(layer.weight.numpy()).max() > 0.95 * limit


def test_layer_init_errors_name_the_argument():
    with pytest.raises(ValueError, match=r"weight_init must be one of zeros, ones, glorot_uniform.* got 'glorot'"):
        nn.Linear(2, 3, weight_init="glorot")
    with pytest.raises(TypeError, match="bias_init must be an initializer name or a callable, got int 0"):
        nn.Conv2d(2, 3, 1, bias_init=0)
    with pytest.raises(ValueError, match=r"bias_init is 'zeros' but the layer has no bias"):
        nn.ConvTranspose2d(2, 3, 1, bias=False, bias_init="zeros")


# ---------------------------------------------------------------------------- keras_defaults_
def small_model():
    shared = nn.Linear(8, 8)
    return nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.ConvTranspose2d(2, 2, 2, stride=2),
                         nn.UpsampleConv2d(2, 2, 3, size=8, padding=1), nn.Flatten(),
                         nn.Linear(128, 8, bias=False), shared, nn.Lambda(F.relu), shared)


def test_keras_defaults_give_glorot_weights_and_zero_biases():
    model = small_model()
    assert init.keras_defaults_(model) is model
    for name, parameter in model.named_parameters():
        values = parameter.numpy()
        if name.endswith("bias"):
            assert np.all(values == 0)
        else:
            fan_in, fan_out = init.fans(values.shape)
            bound = math.sqrt(6 / (fan_in + fan_out))
            assert np.abs(values).max() <= bound and values.std() > 0.3 * bound


def test_keras_defaults_are_the_models_glorot_init():
    ae.manual_seed(9)
    ours = init.keras_defaults_(small_model()).state_dict()
    ae.manual_seed(9)
    theirs = small_model()
    apply_init(theirs, "glorot")
    theirs = theirs.state_dict()
    assert list(ours) == list(theirs)
    for key in ours:
        np.testing.assert_array_equal(ours[key], theirs[key])
