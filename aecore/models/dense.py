"""AE: the dense autoencoder, with optional sparse (L1) and contractive penalties on the code.

    x (N, C, H, W) -> flatten (N, D) -> Linear/act ... -> code (N, latent_dim)
                   -> Linear/act ... -> Linear -> logits (N, D) -> (N, C, H, W)

Default: encoder 784-64-32-16 with ReLU (also on the code), decoder 16-32-64-784 with ReLU on
the hidden layers and logits out (the loss applies the sigmoid in its stable form).

Init: glorot-uniform weights and zero biases (Keras' defaults; measured better than PyTorch's
layer defaults for this model, see base.apply_init); init="default" gives PyTorch's.

loss = mean per-pixel reconstruction (BCE on logits, or MSE of the probabilities)
       + sparse * mean_n sum |code| + contractive * mean_n ||d code / d x||_F^2
The loss options reconstruction ("bce", "mse", "bce-keras"), output ("sigmoid"; "linear": the
decoder's output is the image, as in Keras' MSE on a linear layer) and reduction ("mean"; "sum"
over the pixels of each image) are described in base.py.
"""

from .. import nn
from .base import (ACTIVATIONS, DeterministicAutoencoder, activate, apply_init,
                   check_choice, check_input_shape, check_nonnegative, check_positive_int,
                   int_tuple)
from .regularizers import activation_derivative, dense_jacobian_frobenius


class DenseStack(nn.Module):
    """Linear layers sizes[0] -> sizes[1] -> ... with `activation` between them and
    `last_activation` after the last one."""

    def __init__(self, sizes, activation="relu", last_activation="linear"):
        super().__init__()
        self.sizes = tuple(sizes)
        self.activations = tuple([activation] * (len(sizes) - 2) + [last_activation])
        for index, (a, b) in enumerate(zip(self.sizes[:-1], self.sizes[1:])):
            self.add_module(str(index), nn.Linear(a, b))

    @property
    def layers(self):
        return list(self._modules.values())

    def forward(self, x, keep=False):
        """keep=True also returns [(pre-activation, output)] per layer (for the Jacobian)."""
        trace = []
        for layer, name in zip(self.layers, self.activations):
            pre = layer(x)
            x = activate(name, pre)
            trace.append((pre, x))
        return (x, trace) if keep else x

    def jacobian_frobenius(self, x):
        """(output, per-example ||d output / d x||_F^2) for x: (N, in_features)."""
        out, trace = self.forward(x, keep=True)
        derivatives = [activation_derivative(name, pre, post)
                       for name, (pre, post) in zip(self.activations, trace)]
        weights = [layer.weight for layer in self.layers]
        return out, dense_jacobian_frobenius(weights, derivatives, x.shape[0])


class AE(DeterministicAutoencoder):
    """Dense autoencoder (see the module docstring).

    hidden: encoder hidden sizes (default (64, 32)); decoder_hidden: default reversed(hidden).
    code_activation: activation of the code layer. sparse, contractive: penalty weights (0: off).
    """

    kind = "ae"

    def __init__(self, input_shape=(1, 28, 28), hidden=(64, 32), latent_dim=16,
                 activation="relu", code_activation="relu", decoder_hidden=None,
                 reconstruction="bce", output="sigmoid", reduction="mean",
                 sparse=0.0, contractive=0.0, init="glorot"):
        super().__init__()
        self.input_shape = check_input_shape(input_shape)
        hidden = int_tuple("hidden", hidden, allow_empty=True)
        decoder_hidden = tuple(reversed(hidden)) if decoder_hidden is None else \
            int_tuple("decoder_hidden", decoder_hidden, allow_empty=True)
        self.latent_dim = check_positive_int("latent_dim", latent_dim)
        check_choice("activation", activation, ACTIVATIONS)
        check_choice("code_activation", code_activation, ACTIVATIONS)
        loss_config = self.set_loss_options(reconstruction, output, reduction)
        self.sparse = check_nonnegative("sparse", sparse)
        self.contractive = check_nonnegative("contractive", contractive)
        c, h, w = self.input_shape
        features = c * h * w
        self.encoder = DenseStack((features,) + hidden + (self.latent_dim,), activation,
                                  code_activation)
        self.decoder = DenseStack((self.latent_dim,) + decoder_hidden + (features,), activation,
                                  "linear")
        apply_init(self, init)
        self.config = dict(kind=self.kind, input_shape=list(self.input_shape), hidden=list(hidden),
                           latent_dim=self.latent_dim, activation=activation,
                           code_activation=code_activation, decoder_hidden=list(decoder_hidden),
                           **loss_config, sparse=self.sparse,
                           contractive=self.contractive, init=init)

    def encode(self, x):
        x = self.as_input(x)
        return self.encoder(x.reshape(x.shape[0], -1))

    def decode(self, z):
        logits = self.decoder(z)
        return logits.reshape((z.shape[0],) + tuple(self.input_shape))

    def code_and_penalties(self, x):
        if self.contractive > 0:
            flat = x.reshape(x.shape[0], -1)
            code, jacobian_norms = self.encoder.jacobian_frobenius(flat)
            return code, {"contractive": jacobian_norms.mean()}
        return self.encode(x), {}
