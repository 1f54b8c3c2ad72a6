"""Held-out quality: evaluate(model, images) -> {metric: mean over the images}.

Metrics (means over images; per-pixel BCE is the mean over the pixels of each image):
    AE, CAE:  bce (per pixel), mse (per pixel, of the probabilities)
    DAE:      bce and mse of the reconstruction of the corrupted input against the clean image,
              psnr_noisy (corrupted input vs clean, dB) and psnr_denoised (reconstruction vs clean)
    VAE:      nelbo (negative ELBO in nats per image: summed BCE + KL, one sample of z),
              bce (per pixel), recon (the training reconstruction term), kl
Models with output='linear' (the decoder's output is the image) report no BCE (nor nelbo): the
AE and CAE give mse, the DAE mse and the PSNRs, the VAE mse, recon and kl.
Noise (the DAE's corruption, the VAE's z) is drawn with a fixed seed and the training generator
is restored afterwards, so the numbers repeat and a training run is not disturbed.
"""

import numpy as np

from ..tensor import Tensor, no_grad
from .base import fixed_noise


def iterate_batches(images, batch_size):
    data = images.data if isinstance(images, Tensor) else images
    if not hasattr(data, "shape"):
        data = np.asarray(data, dtype=np.float32)
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    for start in range(0, data.shape[0], batch_size):
        yield data[start:start + batch_size]


def evaluate(model, images, batch_size=256, seed=0):
    """{metric: float} averaged over `images` (N, C, H, W) in [0, 1]; see the module docstring."""
    images = getattr(images, "images", images)  # a Dataset is fine too
    was_training = model.training
    model.eval()
    sums, count = {}, 0
    try:
        with fixed_noise(seed), no_grad():
            for batch in iterate_batches(images, batch_size):
                terms = model.evaluation_terms(batch)
                for name, values in terms.items():
                    sums[name] = sums.get(name, 0.0) + float(np.sum(np.asarray(values, np.float64)))
                count += int(batch.shape[0])
    finally:
        model.train(was_training)
    if count == 0:
        raise ValueError("evaluate: no images")
    return {name: total / count for name, total in sums.items()}
