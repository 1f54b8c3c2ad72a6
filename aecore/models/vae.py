"""VAE: the variational autoencoder, dense or conv encoder, Gaussian posterior, Bernoulli decoder.

    encoder: x -> h -> (mu, logvar) heads, logvar = log sigma^2 clamped to [-30, 20]
    sample:  z = mu + exp(0.5 * logvar) * eps,  eps ~ N(0, I) from aecore.random (seeded)
    decoder: z -> logits (N, C, H, W)  (the images themselves with output='linear')

    loss = mean_n [ recon_n + beta * KL_n ]          beta: the weight of the KL term
      recon_n = sum over the pixels of BCE-with-logits (or squared error of sigmoid(logits), or
                Keras' clipped BCE: the loss options of base.py); with reduction='mean' the
                per-pixel mean instead: the tutorials' "mean pixel BCE + weighted KL"
      KL_n    = -0.5 sum_j (1 + logvar_j - mu_j^2 - exp(logvar_j))      (losses.gaussian_kl)
Negative ELBO in nats per image (metric "nelbo") = summed BCE + KL, at beta = 1, one sample of z,
whatever the training loss; with output='linear' (no Bernoulli decoder, so no BCE and no nelbo)
the metrics are the per-pixel "mse", "recon" and "kl".
The clamp keeps exp(logvar) finite; the BCE is the logits form, so no log of 0 anywhere.

encoder='dense': D -> hidden (default (400,)) -> heads; decoder latent -> reversed(hidden) -> D.
encoder='conv':  the CAE's conv pyramid (default filters (32, 64), stride-2 convs, 28 -> 14 -> 7)
                 -> flatten -> [hidden (default none)] -> heads; decoder latent -> [hidden] ->
                 Linear -> (64, 7, 7) -> transposed convs (7 -> 14 -> 28) -> conv to logits.
Default latent_dim 20 (PyTorch's VAE example is 784-400-20). Init: PyTorch's layer defaults
(glorot measured no better here, see base.apply_init).
"""

import math

import numpy as np

from .. import losses, nn, ops
from .. import random as ae_random
from ..tensor import Tensor, no_grad
from .base import (ACTIVATIONS, Autoencoder, ModelConfigError, apply_init, bce_per_pixel_array,
                   check_choice, check_input_shape, check_nonnegative, check_positive_int,
                   as_metric, int_tuple, per_example_reconstruction, to_numpy)
from .conv import DOWNSAMPLES, UPSAMPLES, ConvDecoder, ConvEncoder
from .dense import DenseStack

ENCODERS = ("dense", "conv")
LOGVAR_CLAMP = (-30.0, 20.0)
# the training metrics, in the order of the training log's columns (fit_terms gives them)
TRAINING_METRICS = ("recon", "kl", "bce", "nelbo", "mse")


class VAE(Autoencoder):
    kind = "vae"
    can_sample = True        # sample(n): decoded draws from the prior N(0, I)

    def __init__(self, input_shape=(1, 28, 28), encoder="dense", hidden=None, latent_dim=20,
                 filters=None, kernel_size=3, downsample=None, upsample=None, activation="relu",
                 beta=1.0, reconstruction="bce", output="sigmoid", reduction="sum",
                 logvar_clamp=LOGVAR_CLAMP, init="default"):
        super().__init__()
        self.input_shape = check_input_shape(input_shape)
        self.encoder_kind = check_choice("encoder", encoder, ENCODERS)
        self.latent_dim = check_positive_int("latent_dim", latent_dim)
        check_choice("activation", activation, ACTIVATIONS)
        self.activation = activation
        self.beta = check_nonnegative("beta", beta)
        loss_config = self.set_loss_options(reconstruction, output, reduction)
        clamp = tuple(float(v) for v in logvar_clamp) if isinstance(logvar_clamp, (list, tuple)) else ()
        if len(clamp) != 2 or not clamp[0] < clamp[1] or not all(map(math.isfinite, clamp)):
            raise ModelConfigError(f"logvar_clamp must be a pair (low, high) with low < high, "
                                   f"got {logvar_clamp!r}")
        self.logvar_clamp = clamp
        c, h, w = self.input_shape
        features = c * h * w
        if encoder == "dense":
            for name, value in (("filters", filters), ("downsample", downsample),
                                ("upsample", upsample),
                                ("kernel_size", None if kernel_size in (None, 3) else kernel_size)):
                if value is not None:
                    raise ModelConfigError(f"{name} applies to encoder='conv' only")
            hidden = (400,) if hidden is None else int_tuple("hidden", hidden, allow_empty=True)
            self.body = DenseStack((features,) + hidden, activation, activation) if hidden else None
            head_in = hidden[-1] if hidden else features
            self.decoder = DenseStack((self.latent_dim,) + tuple(reversed(hidden)) + (features,),
                                      activation, "linear")
            kernel_size = None
        else:
            hidden = () if hidden is None else int_tuple("hidden", hidden, allow_empty=True)
            filters = (32, 64) if filters is None else int_tuple("filters", filters)
            downsample = check_choice("downsample", "stride" if downsample is None else downsample,
                                      DOWNSAMPLES)
            upsample = check_choice("upsample", "transpose" if upsample is None else upsample,
                                    UPSAMPLES)
            kernel_size = check_positive_int("kernel_size", kernel_size)
            self.conv = ConvEncoder(c, (h, w), filters, kernel_size, downsample, activation)
            self.conv_shape = self.conv.out_shape
            flat = math.prod(self.conv_shape)
            self.body = DenseStack((flat,) + hidden, activation, activation) if hidden else None
            head_in = hidden[-1] if hidden else flat
            self.expand = DenseStack((self.latent_dim,) + tuple(reversed(hidden)) + (flat,),
                                     activation, activation)
            self.decoder = ConvDecoder(self.conv_shape[0], list(reversed(self.conv.sizes)),
                                       tuple(reversed(filters)), c, kernel_size, upsample,
                                       activation)
        self.mu = nn.Linear(head_in, self.latent_dim)
        self.logvar = nn.Linear(head_in, self.latent_dim)
        apply_init(self, init)
        self.config = dict(kind=self.kind, input_shape=list(self.input_shape), encoder=encoder,
                           hidden=list(hidden), latent_dim=self.latent_dim,
                           filters=None if filters is None else list(filters),
                           kernel_size=kernel_size, downsample=downsample, upsample=upsample,
                           activation=activation, beta=self.beta, **loss_config,
                           logvar_clamp=list(clamp), init=init)

    # ------------------------------------------------------------------ the model
    def encode(self, x):
        """(mu, logvar) Tensors, (N, latent_dim) each; logvar clamped."""
        x = self.as_input(x)
        if self.encoder_kind == "conv":
            h = self.conv(x)
            h = h.reshape(h.shape[0], -1)
        else:
            h = x.reshape(x.shape[0], -1)
        if self.body is not None:
            h = self.body(h)
        return self.mu(h), ops.clip(self.logvar(h), *self.logvar_clamp)

    def reparameterize(self, mu, logvar):
        """z = mu + exp(0.5 logvar) * eps, eps ~ N(0, I) drawn from aecore.random."""
        eps = Tensor(ae_random.randn(mu.shape, mu.dtype, like=mu.data), _copy=False)
        return mu + (logvar * 0.5).exp() * eps

    def decode(self, z):
        if self.encoder_kind == "conv":
            h = self.expand(z)
            return self.decoder(h.reshape((h.shape[0],) + tuple(self.conv_shape)))
        return self.decoder(z).reshape((z.shape[0],) + tuple(self.input_shape))

    def forward(self, x, sample=None):
        """(logits, mu, logvar); z is sampled in training mode (or sample=True), else z = mu."""
        mu, logvar = self.encode(x)
        sample = self.training if sample is None else sample
        z = self.reparameterize(mu, logvar) if sample else mu
        return self.decode(z), mu, logvar

    def code(self, x):
        return self.encode(x)[0]

    def loss_terms(self, x, target=None):
        """(loss, per-example recon Tensor, per-example KL Tensor, decoder outputs, target), one
        sample of z."""
        x = self.as_input(x)
        target = x if target is None else self.as_input(target, "target")
        mu, logvar = self.encode(x)
        outputs = self.decode(self.reparameterize(mu, logvar))
        recon = per_example_reconstruction(outputs, target, self.reconstruction, self.output,
                                           self.reduction)
        kl = losses.gaussian_kl(mu, logvar, reduction="none")
        return (recon + kl * self.beta).mean(), recon, kl, outputs, target

    def fit_terms(self, recon, kl, outputs, target):
        """Per example, numpy (N,): for sigmoid outputs "nelbo" (summed BCE + KL) and per-pixel
        "bce"; for linear outputs per-pixel "mse"; then "recon" and "kl" as trained."""
        return {name: to_numpy(values) for name, values in
                self.fit_terms_on_device(recon, kl, outputs, target).items()}

    def fit_terms_on_device(self, recon, kl, outputs, target):
        """fit_terms as arrays where the model's arrays live (nothing read back from a GPU)."""
        kl = (kl.data if isinstance(kl, Tensor) else kl).astype(np.float64)
        recon = recon.data if isinstance(recon, Tensor) else recon
        if self.output == "sigmoid":
            if self.reconstruction == "bce":         # recon is that BCE, averaged or summed
                bce = recon if self.reduction == "mean" else recon / math.prod(self.input_shape)
            else:
                bce = bce_per_pixel_array(outputs, target)
            terms = {"nelbo": bce * math.prod(self.input_shape) + kl, "bce": bce}
        else:
            a = outputs.data if isinstance(outputs, Tensor) else outputs
            b = target.data if isinstance(target, Tensor) else target
            terms = {"mse": ((a - b) ** 2).reshape(a.shape[0], -1).mean(axis=1)}
        return dict(terms, recon=recon, kl=kl)

    def loss(self, x, target=None):
        total, recon, kl, outputs, target = self.loss_terms(x, target)
        terms = self.fit_terms_on_device(recon, kl, outputs, target)
        return total, {name: as_metric(terms[name].mean()) for name in TRAINING_METRICS
                       if name in terms}

    def evaluation_terms(self, x):
        """Per example: fit_terms of one z sample (nelbo, bce, recon, kl for sigmoid outputs)."""
        with no_grad():
            _, recon, kl, outputs, target = self.loss_terms(x)
        return self.fit_terms(recon, kl, outputs, target)

    def sample(self, n, seed=None):
        """n images from the prior: to_images(decode(z)), z ~ N(0, I); (n, C, H, W).
        seed: draw from a fixed seed without disturbing aecore.random's stream."""
        from .base import fixed_noise
        n = check_positive_int("n", n)
        reference = self._reference_parameter()
        with fixed_noise(seed):
            z = ae_random.randn((n, self.latent_dim), reference.dtype, like=reference.data)
        with no_grad():
            return self.to_images(self.decode(Tensor(z, _copy=False)))

    def extra_repr(self):
        return (f"input_shape={tuple(self.input_shape)}, encoder={self.encoder_kind!r}, "
                f"latent_dim={self.latent_dim}, beta={self.beta}")

