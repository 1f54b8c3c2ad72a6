"""CAE: the convolutional autoencoder, and the conv encoder/decoder pyramids the conv VAE shares.

Default (the classic Keras CAE), for 1 x 28 x 28 inputs:
    conv 32 3x3 'same' ReLU -> max-pool 2x2 'same'   28 -> 14
    conv 32 3x3 'same' ReLU -> max-pool 2x2 'same'   14 -> 7
    conv 16 3x3 'same' ReLU -> max-pool 2x2 'same'    7 -> 4        code: (16, 4, 4)
    resize to 7  (nearest) -> conv 16 3x3 'same' ReLU
    resize to 14 (nearest) -> conv 32 3x3 'same' ReLU
    resize to 28 (nearest) -> conv 32 3x3 'same' ReLU
    conv 1 3x3 'same'                                           logits (1, 28, 28)

loss = mean per-pixel reconstruction (+ sparse * mean_n sum |code|); the loss options
reconstruction, output and reduction are those of the AE (see base.py).

Init: glorot-uniform weights and zero biases (Keras' defaults; measured better than PyTorch's
layer defaults, see base.apply_init); init="default" gives PyTorch's.

Variants:
- downsample='pool': conv (stride 1) then 2x2 'same' max-pool; 'stride': one 3x3 conv of
  stride 2, 'same' padding. Both give ceil(size / 2) (TensorFlow's 'same' rule).
- upsample='nearest' | 'bilinear': resize to the size the encoder had at that depth, then conv;
  'transpose': a 3x3 transposed conv of stride 2 ('same': size * 2), cropped (a slice) to that
  size when it overshoots (4 -> 8 -> crop 7).
Each resize and the conv after it are one nn.UpsampleConv2d layer: a nearest resize by a whole
factor (7 -> 14 -> 28) folds into the conv (one transposed conv of the small image with a 4x4
folded kernel: 16 multiply-adds per input pixel instead of 36, the same values and gradients;
see F.upsample_conv2d); 4 -> 7 and bilinear run the resize, then the conv. Set `layer.fold =
False` to run the two ops everywhere.
The resize targets are the encoder's recorded sizes, computed from input_shape with the
same geometry the kernels use, so any input size round-trips (e.g. 28 -> 14 -> 7 -> 4 -> 7 -> 14 -> 28,
or 32 -> 16 -> 8 -> 4 -> 8 -> 16 -> 32).
- latent_dim (optional): a dense bottleneck, flatten -> Linear(latent_dim) -> Linear -> act
  -> unflatten, for a small code (a 2-D latent to scatter); None keeps the conv code.
"""

import math

from .. import functional as F
from .. import nn
from ..kernels import geometry
from .base import (ACTIVATIONS, DeterministicAutoencoder, ModelConfigError,
                   activate, apply_init, check_choice, check_input_shape, check_nonnegative,
                   check_positive_int, int_tuple)

DOWNSAMPLES = ("pool", "stride")
UPSAMPLES = ("nearest", "bilinear", "transpose")


class ConvEncoder(nn.Module):
    """Conv stages that each halve the image (ceil). Records `sizes`: the (H, W) entering each
    stage, and `out_shape`: (C, H, W) of the result."""

    def __init__(self, in_channels, image_size, filters, kernel_size=3, downsample="pool",
                 activation="relu"):
        super().__init__()
        self.downsample, self.activation = downsample, activation
        self.kernel_size = kernel_size
        self.sizes = []
        channels, size = in_channels, tuple(image_size)
        for index, out_channels in enumerate(filters):
            self.sizes.append(size)
            probe = (1, channels) + size
            if downsample == "pool":
                conv = nn.Conv2d(channels, out_channels, kernel_size, padding="same")
                g = geometry.max_pool2d_geometry((1, out_channels) + size, 2, 2, "same")
            else:
                conv = nn.Conv2d(channels, out_channels, kernel_size, stride=2, padding="same")
                g = geometry.conv2d_geometry(probe, (out_channels, channels, kernel_size,
                                                     kernel_size), 2, "same")
            self.add_module(f"conv{index}", conv)
            channels, size = out_channels, (g.out_h, g.out_w)
        self.out_shape = (channels,) + size

    def forward(self, x):
        for conv in self._modules.values():
            x = activate(self.activation, conv(x))
            if self.downsample == "pool":
                x = F.max_pool2d(x, 2, 2, padding="same")
        return x


class ConvDecoder(nn.Module):
    """Stages that grow the image to each of `targets` (H, W) in turn, then a final conv to
    `out_channels` logits."""

    def __init__(self, in_channels, targets, filters, out_channels, kernel_size=3,
                 upsample="nearest", activation="relu"):
        super().__init__()
        self.targets = [tuple(t) for t in targets]
        self.upsample, self.activation = upsample, activation
        channels = in_channels
        for index, (out, size) in enumerate(zip(filters, self.targets)):
            if upsample == "transpose":
                layer = nn.ConvTranspose2d(channels, out, kernel_size, stride=2, padding="same")
            else:
                # resize + conv as one layer: nearest by a whole factor (7 -> 14 -> 28) runs as
                # one transposed conv with a folded kernel (F.upsample_conv2d); 4 -> 7 does not fold
                layer = nn.UpsampleConv2d(channels, out, kernel_size, size, mode=upsample,
                                          padding="same")
            self.add_module(f"up{index}", layer)
            channels = out
        self.out = nn.Conv2d(channels, out_channels, kernel_size, padding="same")

    def forward(self, x):
        stages = [m for name, m in self._modules.items() if name != "out"]
        for layer, (h, w) in zip(stages, self.targets):
            if self.upsample == "transpose":
                x = layer(x)
                if x.shape[2] < h or x.shape[3] < w:
                    raise ValueError(f"transposed conv gave {x.shape[2:]} < target {(h, w)}")
                if x.shape[2:] != (h, w):
                    x = x[:, :, :h, :w]  # crop the overshoot (e.g. 8 -> 7)
            else:
                x = layer(x)  # an UpsampleConv2d: resize to (h, w), then conv
            x = activate(self.activation, x)
        return self.out(x)


class CAE(DeterministicAutoencoder):
    """Convolutional autoencoder (see the module docstring)."""

    kind = "cae"

    def __init__(self, input_shape=(1, 28, 28), filters=(32, 32, 16), decoder_filters=None,
                 kernel_size=3, downsample="pool", upsample="nearest", activation="relu",
                 latent_dim=None, reconstruction="bce", output="sigmoid", reduction="mean",
                 sparse=0.0, contractive=0.0, init="glorot"):
        super().__init__()
        self.input_shape = check_input_shape(input_shape)
        filters = int_tuple("filters", filters)
        decoder_filters = tuple(reversed(filters)) if decoder_filters is None else \
            int_tuple("decoder_filters", decoder_filters)
        if len(decoder_filters) != len(filters):
            raise ModelConfigError(f"decoder_filters must have one entry per encoder stage "
                                   f"({len(filters)}, like filters={list(filters)}), got "
                                   f"{list(decoder_filters)}")
        kernel_size = check_positive_int("kernel_size", kernel_size)
        check_choice("downsample", downsample, DOWNSAMPLES)
        check_choice("upsample", upsample, UPSAMPLES)
        check_choice("activation", activation, ACTIVATIONS)
        loss_config = self.set_loss_options(reconstruction, output, reduction)
        self.sparse = check_nonnegative("sparse", sparse)
        if check_nonnegative("contractive", contractive) > 0:
            raise ModelConfigError("contractive applies to dense encoders only (model 'ae'); "
                                   "the CAE has a conv encoder")
        c, h, w = self.input_shape
        self.encoder = ConvEncoder(c, (h, w), filters, kernel_size, downsample, activation)
        self.activation = activation
        self.conv_code_shape = self.encoder.out_shape
        flat = math.prod(self.conv_code_shape)
        if latent_dim is not None:
            latent_dim = check_positive_int("latent_dim", latent_dim)
            self.to_code = nn.Linear(flat, latent_dim)
            self.from_code = nn.Linear(latent_dim, flat)
            self.code_shape = (latent_dim,)
        else:
            self.code_shape = self.conv_code_shape
        self.latent_dim = math.prod(self.code_shape)
        self.decoder = ConvDecoder(self.conv_code_shape[0], list(reversed(self.encoder.sizes)),
                                   decoder_filters, c, kernel_size, upsample, activation)
        apply_init(self, init)
        self.config = dict(kind=self.kind, input_shape=list(self.input_shape),
                           filters=list(filters), decoder_filters=list(decoder_filters),
                           kernel_size=kernel_size, downsample=downsample, upsample=upsample,
                           activation=activation, latent_dim=latent_dim,
                           **loss_config, sparse=self.sparse, contractive=0.0,
                           init=init)

    @property
    def sizes(self):
        """Spatial sizes through the network: encoder inputs, the code, then decoder targets."""
        enc = list(self.encoder.sizes)
        return enc + [self.conv_code_shape[1:]] + list(reversed(enc))

    def encode(self, x):
        x = self.as_input(x)
        code = self.encoder(x)
        if self.code_shape != self.conv_code_shape:
            code = self.to_code(code.reshape(code.shape[0], -1))
        return code

    def decode(self, z):
        if self.code_shape != self.conv_code_shape:
            z = activate(self.activation, self.from_code(z))
            z = z.reshape((z.shape[0],) + tuple(self.conv_code_shape))
        elif tuple(z.shape[1:]) != tuple(self.code_shape):
            raise ValueError(f"CAE.decode: z must have shape (N, {', '.join(map(str, self.code_shape))})"
                             f", got {z.shape}")
        return self.decoder(z)
