"""What every autoencoder here shares: the interface, input handling, option checks, losses.

Every model is an `aecore.nn.Module` with
    config                 JSON-safe dict: "kind" and every constructor argument (from_config rebuilds it)
    input_shape, latent_dim
    encode(x) -> code      (the VAE returns (mu, logvar))
    decode(z) -> outputs   (N, C, H, W): logits, or the images themselves with output='linear'
    forward(x) -> outputs  (the VAE returns (outputs, mu, logvar))
    to_images(outputs)     sigmoid(logits), or the outputs as they are (output='linear')
    loss(x, target=None) -> (scalar loss Tensor, {name: float})
    reconstruct(x) -> images (probabilities in [0, 1] for output='sigmoid'), no graph
    evaluation_terms(x) -> {name: per-example numpy array} (what `evaluate` averages)
and declares what it can do beyond that (read by aecore.viz and the CLI, never probed with
hasattr):
    can_sample             True for the VAE: sample(n, seed=None) draws images from its prior
    corrupts_input         True for the DAE: corrupt(x) makes the noisy inputs it trains on

The loss options every model takes: reconstruction, output, reduction (see the losses section).

Inputs may be NumPy arrays or Tensors, (N, C, H, W) or a single (C, H, W) image; they are moved
to the model's device and dtype.
"""

import contextlib
import math
import numbers

import numpy as np

from .. import losses, ops
from .. import random as ae_random
from ..backend import device_of, to_device
from ..nn import Module
from ..tensor import Tensor, no_grad


class ModelConfigError(ValueError):
    """A model option has a bad value or is unknown; the message names the option."""


# ---------------------------------------------------------------------------- option checks
def check_choice(name, value, choices):
    if value not in choices:
        raise ModelConfigError(f"{name} must be one of {', '.join(repr(c) for c in choices)}; "
                               f"got {value!r}")
    return value


def check_positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ModelConfigError(f"{name} must be a positive int, got {value!r}")
    return int(value)


def check_nonnegative(name, value, upper=None):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) \
            or value < 0 or (upper is not None and value > upper):
        bound = f" and at most {upper}" if upper is not None else ""
        raise ModelConfigError(f"{name} must be a finite number >= 0{bound}, got {value!r}")
    return float(value)


def int_tuple(name, value, allow_empty=False):
    """A tuple of positive ints from a sequence, an int, or a string like '32,32,16'."""
    if isinstance(value, str):
        parts = [p.strip() for p in value.replace("x", ",").split(",") if p.strip()]
        try:
            value = [int(p) for p in parts]
        except ValueError:
            raise ModelConfigError(f"{name} must be a list of positive ints like '32,32,16', "
                                   f"got {value!r}") from None
    elif isinstance(value, numbers.Integral) and not isinstance(value, bool):
        value = [value]
    if not isinstance(value, (list, tuple)):
        raise ModelConfigError(f"{name} must be a list of positive ints, got {value!r}")
    result = tuple(check_positive_int(f"{name}[{i}]", v) for i, v in enumerate(value))
    if not result and not allow_empty:
        raise ModelConfigError(f"{name} must not be empty")
    return result


def check_input_shape(value):
    shape = int_tuple("input_shape", value)
    if len(shape) != 3:
        raise ModelConfigError(f"input_shape must be (channels, height, width), got {value!r}")
    return shape


INITS = ("default", "glorot")


def apply_init(module, scheme):
    """'default': PyTorch's layer defaults (already applied by the layers); 'glorot': Keras'
    defaults (glorot-uniform weights, zero biases).

    Measured on MNIST (t10k: first 8,000 images to train, last 2,000 held out; Adam 1e-3,
    batch 128; held-out per-pixel BCE, 2 seeds unless said):
        AE  784-64-32-16, 10 epochs:        default 0.210 / 0.218    glorot 0.169 / 0.168
        DAE over that AE (gaussian 0.5):    default 0.243 / 0.245    glorot 0.214 / 0.194
        CAE (classic), 3 epochs:            default 0.151 / 0.145    glorot 0.137 / 0.133
        VAE 784-400-20, 10 epochs, nelbo:   default 124.9 / 125.6    glorot 126.7 / 126.1
    so AE, CAE (and the DAE over them) default to 'glorot', the VAE to 'default'."""
    check_choice("init", scheme, INITS)
    if scheme == "glorot":
        from ..nn import init
        for name, parameter in module.named_parameters():
            if name.endswith("bias"):
                init.zeros_(parameter)
            else:
                init.xavier_uniform_(parameter)


# ---------------------------------------------------------------------------- activations
ACTIVATIONS = ("relu", "sigmoid", "tanh", "leaky_relu", "softplus", "linear")


def activate(name, x):
    if name == "relu":
        return ops.relu(x)
    if name == "sigmoid":
        return ops.sigmoid(x)
    if name == "tanh":
        return ops.tanh(x)
    if name == "leaky_relu":
        return ops.leaky_relu(x, 0.01)
    if name == "softplus":
        return ops.softplus(x)
    if name == "linear":
        return x
    raise ModelConfigError(f"activation must be one of {ACTIVATIONS}, got {name!r}")


# ---------------------------------------------------------------------------- losses
# The loss options, chosen as a (ported Keras) tutorial chooses them:
#   reconstruction  "bce": BCE on logits, the stable form; "mse": squared error of the images;
#                   "bce-keras": Keras' binary_crossentropy on clip(sigmoid(logits), 1e-7,
#                   1 - 1e-7), whose gradient is zero where the clip acts
#   output          "sigmoid": the decoder emits logits and the images are sigmoid(logits);
#                   "linear": the decoder's output is the image (Keras' MSE on a linear layer)
#   reduction       "mean": per-pixel mean of each image; "sum": summed over the pixels of each
#                   image; then, either way, the mean over the batch
RECONSTRUCTIONS = ("bce", "mse", "bce-keras")
OUTPUTS = ("sigmoid", "linear")
LOSS_REDUCTIONS = ("mean", "sum")


def check_loss_options(reconstruction, output, reduction):
    """The three loss options checked; a BCE needs probabilities, so not output='linear'."""
    check_choice("reconstruction", reconstruction, RECONSTRUCTIONS)
    check_choice("output", output, OUTPUTS)
    check_choice("reduction", reduction, LOSS_REDUCTIONS)
    if output == "linear" and reconstruction != "mse":
        raise ModelConfigError(f"output='linear' cannot be trained with reconstruction="
                               f"{reconstruction!r} (a BCE needs probabilities): use "
                               f"reconstruction='mse' or output='sigmoid'")
    return reconstruction, output, reduction


def reconstruction_elementwise(outputs, target, kind, output="sigmoid"):
    """Per-pixel reconstruction loss, (N, C, H, W), of the decoder's outputs against target."""
    if kind == "bce":
        return losses.binary_cross_entropy_with_logits(outputs, target, reduction="none")
    images = ops.sigmoid(outputs) if output == "sigmoid" else outputs
    if kind == "bce-keras":
        return losses.keras_binary_crossentropy(target, images, reduction="none")
    diff = images - target
    return diff * diff


def per_example_reconstruction(outputs, target, kind, output="sigmoid", reduction="mean"):
    """The reconstruction loss of each image, (N,): its per-pixel losses averaged or summed."""
    if kind == "bce":           # one fused op on the CPU (losses.BinaryCrossEntropyWithLogitsSummed)
        return losses.binary_cross_entropy_with_logits_per_example(outputs, target, reduction)
    elementwise = reconstruction_elementwise(outputs, target, kind, output)
    pixel_axes = tuple(range(1, elementwise.ndim))
    return elementwise.mean(axis=pixel_axes) if reduction == "mean" else \
        elementwise.sum(axis=pixel_axes)


def reconstruction_total(outputs, target, kind, output="sigmoid", reduction="mean"):
    """The batch's reconstruction loss, 0-d: the batch mean of per_example_reconstruction."""
    if kind == "bce":           # one fused op on the CPU (losses.BinaryCrossEntropyWithLogitsSummed)
        if reduction == "mean":                  # the mean of the per-image means: every pixel's
            return losses.binary_cross_entropy_with_logits(outputs, target)
        return losses.binary_cross_entropy_with_logits_per_example(outputs, target, "sum").mean()
    elementwise = reconstruction_elementwise(outputs, target, kind, output)
    return elementwise.mean() if reduction == "mean" else per_example_sum(elementwise).mean()


def per_example_sum(t):
    return t.sum(axis=tuple(range(1, t.ndim)))


def bce_per_pixel_array(logits, target):
    """Mean BCE-with-logits per pixel, per example, on raw arrays (no graph): (N,)."""
    z = logits.data if isinstance(logits, Tensor) else logits
    y = target.data if isinstance(target, Tensor) else target
    xp = _xp(z)
    elementwise = xp.maximum(z, 0) - z * y + xp.log1p(xp.exp(-xp.abs(z)))
    return elementwise.reshape(z.shape[0], -1).mean(axis=1)


def mse_per_pixel_array(images, target):
    """Mean squared error per pixel, per example, as host NumPy (no graph): (N,)."""
    a, b = to_numpy(images), to_numpy(target)
    return ((a - b) ** 2).reshape(a.shape[0], -1).mean(axis=1)


def psnr_array(a, b, max_value=1.0):
    """Peak signal-to-noise ratio per example in dB, 10 log10(max^2 / mse); (N,) float64."""
    a = a.data if isinstance(a, Tensor) else a
    b = b.data if isinstance(b, Tensor) else b
    mse = to_numpy(((a - b) ** 2).reshape(a.shape[0], -1).mean(axis=1)).astype(np.float64)
    return 10.0 * np.log10(max_value ** 2 / np.maximum(mse, 1e-10))


def _xp(array):
    from ..backend import get_array_module
    return get_array_module(array)


def to_numpy(array):
    if isinstance(array, Tensor):
        array = array.data
    return np.asarray(to_device(array, "cpu"))


def as_metric(value):
    """A training metric from a 0-d Tensor / array: a Python float on the CPU; on a GPU the 0-d
    device array itself, so a training step never waits for the device to report a number
    (the Trainer reads its sums back every few steps)."""
    if isinstance(value, Tensor):
        value = value.data
    if hasattr(value, "__cuda_array_interface__"):
        return value.reshape(()).astype("float64")    # sums of steps are kept in float64
    return float(to_numpy(value).reshape(()))


@contextlib.contextmanager
def fixed_noise(seed):
    """Draw from aecore.random with a fixed seed inside the block, then restore the previous
    state (so evaluation is repeatable and does not disturb a training run's stream)."""
    if seed is None:
        yield
        return
    state = ae_random.get_rng_state()
    generator = ae_random.generator()
    generator.bit_generator.state = np.random.default_rng(seed).bit_generator.state
    try:
        yield
    finally:
        ae_random.set_rng_state(state)


# ---------------------------------------------------------------------------- the base class
class Autoencoder(Module):
    """Base of AE, CAE, DAE and VAE (see the module docstring for the interface)."""

    kind = None
    output = "sigmoid"       # what decode emits: "sigmoid" logits, or "linear" images
    reconstruction = "bce"   # the loss options, set by set_loss_options
    reduction = "mean"
    can_sample = False       # has sample(n, seed=None): images from a prior (the VAE)
    corrupts_input = False   # has corrupt(x): trained on corrupted inputs (the DAE)

    # -- device / dtype of the parameters
    def _reference_parameter(self):
        return next(self.parameters(), None)

    @property
    def device(self):
        p = self._reference_parameter()
        return "cpu" if p is None else p.device

    @property
    def dtype(self):
        p = self._reference_parameter()
        return np.dtype(np.float32) if p is None else p.dtype

    def as_input(self, x, name="x"):
        """A Tensor (N, C, H, W) on the model's device and dtype; a (C, H, W) image gets a batch
        axis; a flat (N, C*H*W) batch is reshaped."""
        data = x.data if isinstance(x, Tensor) else x
        if not hasattr(data, "shape"):
            data = np.asarray(data)
        shape = tuple(data.shape)
        c, h, w = self.input_shape
        if shape == (c, h, w):
            data = data.reshape((1, c, h, w))
        elif len(shape) == 2 and shape[1] == c * h * w:
            data = data.reshape((shape[0], c, h, w))
        elif len(shape) != 4 or shape[1:] != (c, h, w):
            raise ValueError(f"{type(self).__name__}: {name} must have shape (N, {c}, {h}, {w}) "
                             f"(the model's input_shape), got {shape}")
        p = self._reference_parameter()
        if p is not None:
            xp = p.xp
            if device_of(data) != p.device:
                data = to_device(data, p.device)
            if data.dtype != p.dtype:
                data = xp.asarray(data, dtype=p.dtype)
        if isinstance(x, Tensor) and data is x.data:
            return x
        return Tensor(data, _copy=False)

    # -- the interface
    def encode(self, x):  # pragma: no cover - abstract
        raise NotImplementedError

    def decode(self, z):  # pragma: no cover - abstract
        raise NotImplementedError

    def forward(self, x):
        return self.decode(self.encode(self.as_input(x)))

    def loss(self, x, target=None):  # pragma: no cover - abstract
        raise NotImplementedError

    def set_loss_options(self, reconstruction, output, reduction):
        """Check and keep the three loss options (see the losses section above)."""
        self.reconstruction, self.output, self.reduction = check_loss_options(
            reconstruction, output, reduction)
        return dict(reconstruction=reconstruction, output=output, reduction=reduction)

    def code(self, x):
        """The deterministic code used for pictures and interpolation (the VAE's mu)."""
        return self.encode(self.as_input(x))

    def to_images(self, outputs):
        """The images that decoder outputs stand for: sigmoid(logits) for output='sigmoid',
        the outputs as they are for output='linear' (not clipped to [0, 1])."""
        return ops.sigmoid(outputs) if self.output == "sigmoid" else outputs

    def reconstruct(self, x, batch_size=None):
        """to_images(decode(code(x))) with no graph: (N, C, H, W) images (for output='sigmoid',
        probabilities in [0, 1])."""
        x = self.as_input(x)
        with no_grad():
            if batch_size is None or batch_size >= x.shape[0]:
                return self.to_images(self.decode(self.code(x)))
            parts = [self.to_images(self.decode(self.code(x[i:i + batch_size])))
                     for i in range(0, x.shape[0], batch_size)]
            return ops.concat(parts, axis=0)

    def interpolate(self, x_a, x_b, steps=8):
        """Decode `steps` points on the line between the codes of x_a and x_b (endpoints included).

        x_a, x_b: one image (C, H, W) or (1, C, H, W) -> (steps, C, H, W) images;
        batches of N > 1 images -> (N, steps, C, H, W).
        """
        steps = check_positive_int("steps", steps)
        a, b = self.as_input(x_a, "x_a"), self.as_input(x_b, "x_b")
        if a.shape != b.shape:
            raise ValueError(f"interpolate: x_a {a.shape} and x_b {b.shape} must have one shape")
        n = a.shape[0]
        with no_grad():
            za, zb = self.code(a), self.code(b)
            t = np.linspace(0.0, 1.0, steps) if steps > 1 else np.zeros(1)
            xp = za.xp
            weights = xp.asarray(t, dtype=za.dtype).reshape((steps, 1) + (1,) * (za.ndim - 1))
            z = za.data[None] * (1 - weights) + zb.data[None] * weights  # (steps, N, ...)
            z = z.transpose((1, 0) + tuple(range(2, z.ndim))).reshape((n * steps,) + za.shape[1:])
            images = self.to_images(self.decode(Tensor(xp.ascontiguousarray(z), _copy=False)))
        if n == 1:
            return images
        return images.reshape((n, steps) + tuple(self.input_shape))

    def evaluation_terms(self, x):  # pragma: no cover - abstract
        raise NotImplementedError

    def extra_repr(self):
        return f"input_shape={tuple(self.input_shape)}, latent_dim={self.latent_dim}"


class DeterministicAutoencoder(Autoencoder):
    """AE and CAE: loss = mean over the batch of each image's reconstruction loss (its per-pixel
    mean, or sum with reduction='sum') + weighted penalties on the code.

    Training metrics: the reconstruction per pixel under its own name ("bce", "mse" or
    "bce-keras"; the value trained on with reduction='mean'), "bce" per pixel (logits form) beside
    it for sigmoid outputs, "recon" (the trained term, summed per image) with reduction='sum', and
    each penalty. evaluation_terms: per-pixel "bce" and "mse" of the images; with
    output='linear' only "mse" (a BCE of unbounded outputs means nothing)."""

    sparse = 0.0

    def code_and_penalties(self, x):
        """(code, {name: per-batch penalty Tensor}) for the weighted penalties (not sparse)."""
        return self.encode(x), {}

    def reconstruction_metrics(self, recon, outputs, target):
        """The training metrics of the reconstruction term `recon` (a 0-d Tensor)."""
        value = as_metric(recon)
        if self.reduction == "mean":
            metrics = {self.reconstruction: value}
        else:
            metrics = {"recon": value, self.reconstruction: value / math.prod(self.input_shape)}
        if self.output == "sigmoid" and "bce" not in metrics:
            metrics["bce"] = as_metric(bce_per_pixel_array(outputs, target).mean())
        return metrics

    def loss(self, x, target=None):
        x = self.as_input(x)
        target = x if target is None else self.as_input(target, "target")
        code, penalties = self.code_and_penalties(x)
        outputs = self.decode(code)
        total = reconstruction_total(outputs, target, self.reconstruction, self.output,
                                     self.reduction)
        metrics = self.reconstruction_metrics(total, outputs, target)
        if self.sparse > 0:
            from .regularizers import sparse_penalty
            penalties = dict(penalties, sparse=sparse_penalty(code))
        for name, penalty in penalties.items():
            total = total + penalty * getattr(self, name)
            metrics[name] = as_metric(penalty)
        return total, metrics

    def image_terms(self, outputs, target):
        """Per example, of decoder outputs against target: per-pixel "bce" (sigmoid outputs
        only) and "mse" of the images; numpy (N,) each."""
        terms = {"bce": to_numpy(bce_per_pixel_array(outputs, target))} \
            if self.output == "sigmoid" else {}
        terms["mse"] = mse_per_pixel_array(self.to_images(outputs), target)
        return terms

    def evaluation_terms(self, x):
        """Per example: image_terms of the reconstruction of x against x."""
        x = self.as_input(x)
        with no_grad():
            outputs = self.forward(x)
        return self.image_terms(outputs, x)
