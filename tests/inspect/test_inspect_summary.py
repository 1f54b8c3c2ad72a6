"""Model summary: parameter and FLOP totals of the classic CAE, computed by hand."""

import numpy as np
import pytest

import aecore
from aecore import nn
from aecore.inspect import summary

# The classic Keras CAE (issue 4): conv 32, 32, 16 (3x3 'same', ReLU) each followed by a 2x2
# 'same' max-pool (28 -> 14 -> 7 -> 4), then resize to 7, 14, 28 each followed by a conv
# (16, 32, 32) with ReLU, and a final 1-channel conv giving logits.
# (spatial size of the conv, Cin, Cout)
ENCODER_CONVS = [(28, 1, 32), (14, 32, 32), (7, 32, 16)]
DECODER_CONVS = [(7, 16, 16), (14, 16, 32), (28, 32, 32), (28, 32, 1)]
POOL_OUTPUTS = [(14, 32), (7, 32), (4, 16)]      # (output size, channels) of each pool


def hand_params():
    return sum((cin * 9 + 1) * cout for _, cin, cout in ENCODER_CONVS + DECODER_CONVS)


def hand_flops(batch):
    convs = sum(2 * s * s * cin * cout * 9 for s, cin, cout in ENCODER_CONVS + DECODER_CONVS)
    relus = sum(s * s * cout for s, _, cout in ENCODER_CONVS + DECODER_CONVS[:-1])  # 1 per element
    pools = sum(s * s * c * 4 for s, c in POOL_OUTPUTS)                            # 4 comparisons
    upsampling = 0                                                                  # nearest: copies
    return batch * (convs + relus + pools + upsampling)


class ExplicitCAE(nn.Module):
    """The same architecture written out with layers only (a Sequential of leaf modules)."""

    def __init__(self):
        super().__init__()
        layers = []
        for size, cin, cout in ENCODER_CONVS:
            layers += [nn.Conv2d(cin, cout, 3, padding="same"), nn.ReLU(),
                       nn.MaxPool2d(2, padding="same")]
        for (size, cin, cout), last in zip(DECODER_CONVS[:-1], (7, 14, 28)):
            layers += [nn.Upsample(size=last, mode="nearest"), nn.Conv2d(cin, cout, 3, padding="same"),
                       nn.ReLU()]
        size, cin, cout = DECODER_CONVS[-1]
        layers.append(nn.Conv2d(cin, cout, 3, padding="same"))
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x)


def test_hand_numbers_are_the_known_ones():
    # the well-known totals of the Keras tutorial's model, as a check on the test itself
    assert hand_params() == 30689
    assert hand_flops(1) == 21_546_912


@pytest.mark.parametrize("batch", [1, 3])
def test_explicit_cae_totals_and_rows(batch):
    model = ExplicitCAE()
    result = summary(model, (1, 28, 28), batch_size=batch)
    assert result.total_params == hand_params() == model.num_parameters()
    assert result.total_flops == hand_flops(batch)
    # one row per layer, in order, each with its own count
    assert len(result.rows) == len(list(model.net.children()))
    convs = [r for r in result.rows if r.type == "Conv2d"]
    for row, (size, cin, cout) in zip(convs, ENCODER_CONVS + DECODER_CONVS):
        assert row.output_shape == (batch, cout, size, size)
        assert row.params == (cin * 9 + 1) * cout
        assert row.flops == batch * 2 * size * size * cin * cout * 9
        assert row.activation_bytes == batch * cout * size * size * 4
    pools = [r for r in result.rows if r.type == "MaxPool2d"]
    assert [r.output_shape for r in pools] == [(batch, c, s, s) for s, c in POOL_OUTPUTS]
    assert all(r.flops == 0 for r in result.rows if r.type == "Upsample")
    assert result.output_shape == (batch, 1, 28, 28)
    assert result.total_activation_bytes == sum(r.activation_bytes for r in result.rows)


def set_fold(model, fold):
    for module in model.modules():
        if isinstance(module, nn.UpsampleConv2d):
            module.fold = fold


# The decoder's 7 -> 14 and 14 -> 28 resizes are folded into their convs (F.upsample_conv2d):
# 16 multiply-adds per (input pixel, channel pair) at the small size instead of 9 per output
# pixel at the large one. The summary counts the FLOPs that run.
FOLDED_CONVS = [(14, 16, 32), (28, 32, 32)]
FOLD_SAVES = sum(2 * cin * cout * (9 * s * s - 16 * (s // 2) ** 2) for s, cin, cout in FOLDED_CONVS)


@pytest.mark.parametrize("fold", [False, True])
def test_classic_cae_from_models(fold):
    models = pytest.importorskip("aecore.models")
    model = models.build_model("cae")
    set_fold(model, fold)
    result = model.summary((1, 28, 28))           # the method on Module
    assert result.total_params == hand_params()
    assert result.total_flops == hand_flops(1) - (FOLD_SAVES if fold else 0)
    conv_rows = [r for r in result.rows if r.type in ("Conv2d", "UpsampleConv2d")]
    assert [r.params for r in conv_rows] == [(cin * 9 + 1) * cout
                                             for _, cin, cout in ENCODER_CONVS + DECODER_CONVS]
    # the model applies ReLU / pooling functionally: they get rows of their own
    assert sum(r.flops for r in result.rows if r not in conv_rows) == hand_flops(1) - sum(
        2 * s * s * cin * cout * 9 for s, cin, cout in ENCODER_CONVS + DECODER_CONVS)
    text = str(result)
    assert "encoder" in text and "30,689" in text
    assert f"{hand_flops(1) - (FOLD_SAVES if fold else 0):,}" in text


def test_summary_restores_forward_and_dense_model():
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 5), nn.ReLU(), nn.Linear(5, 3, bias=False))
    result = summary(model, (3, 4), batch_size=2)
    assert [r.type for r in result.rows] == ["Flatten", "Linear", "ReLU", "Linear"]
    # Linear: 2 * in * out per example, + out for the bias add
    assert result.rows[1].flops == 2 * (2 * 12 * 5 + 5)
    assert result.rows[2].flops == 2 * 5
    assert result.rows[3].flops == 2 * 2 * 5 * 3
    assert result.total_params == 12 * 5 + 5 + 5 * 3
    for module in model.modules():                  # the wrapped forwards are gone
        assert "forward" not in module.__dict__
    y = model(aecore.tensor(np.ones((2, 3, 4), np.float32)))
    assert y.shape == (2, 3)
