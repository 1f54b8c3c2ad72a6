"""aecore.models: the autoencoder family, AE, CAE, DAE and VAE, built on aecore.nn.

    from aecore.models import build_model, from_config, evaluate
    model = build_model("cae")                       # the classic Keras CAE, 1 x 28 x 28
    loss, metrics = model.loss(x)                    # x: (N, 1, 28, 28) in [0, 1]
    loss.backward()
    evaluate(model, held_out)                        # {"bce": ..., "mse": ...}

Every model has config, input_shape, latent_dim, encode, decode, forward, to_images, loss,
reconstruct, interpolate and evaluation_terms (see models/base.py), and the loss options
reconstruction ("bce", "mse", "bce-keras"), output ("sigmoid", "linear") and reduction ("mean",
"sum"), so that a ported Keras tutorial trains the loss it chose. The VAE adds sample(n) and the
DAE corrupt(x) / noisy_and_clean(x), which they declare with can_sample and corrupts_input.
Modules: base (the interface, checks, shared losses), dense (AE), conv (CAE and the conv
pyramids), dae (DAE), corruption (the DAE's noise), vae (VAE), regularizers (sparse and
contractive penalties), build (build_model, from_config), evaluation (evaluate), anomaly.
"""

from . import anomaly  # noqa: F401
from .anomaly import pick_threshold, reconstruction_errors, roc_auc  # noqa: F401
from .base import (LOSS_REDUCTIONS, OUTPUTS, RECONSTRUCTIONS, Autoencoder,  # noqa: F401
                   ModelConfigError, psnr_array)
from .build import ALIASES, MODELS, build_model, from_config, model_options  # noqa: F401
from .conv import CAE, ConvDecoder, ConvEncoder  # noqa: F401
from .corruption import NOISE_KINDS, OCCLUSIONS, corrupt  # noqa: F401
from .dae import DAE  # noqa: F401
from .dense import AE, DenseStack  # noqa: F401
from .evaluation import evaluate  # noqa: F401
from .regularizers import dense_jacobian_frobenius, sparse_penalty  # noqa: F401
from .vae import VAE  # noqa: F401

__all__ = ["AE", "CAE", "DAE", "VAE", "Autoencoder", "ModelConfigError", "build_model",
           "from_config", "model_options", "evaluate", "reconstruction_errors", "pick_threshold",
           "roc_auc", "corrupt", "psnr_array", "NOISE_KINDS", "OCCLUSIONS", "MODELS", "anomaly",
           "RECONSTRUCTIONS", "OUTPUTS", "LOSS_REDUCTIONS"]
