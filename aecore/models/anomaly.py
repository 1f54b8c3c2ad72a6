"""Anomaly scoring by reconstruction error.

    errors = reconstruction_errors(model, val_images)          # per example, numpy (N,)
    threshold = pick_threshold(errors, quantile=0.99)          # on normal validation data
    flagged = reconstruction_errors(model, new_images) > threshold
    roc_auc(scores, is_anomaly)                                # how well the score separates

The error of an image is the mean over its pixels of the squared difference between the
image and its reconstruction (model.to_images: probabilities, or the outputs themselves for
output='linear'; the VAE reconstructs from mu, a DAE from the image as given, without
corruption), or the per-pixel BCE with metric='bce' (models with output='sigmoid' only).
"""

import numpy as np

from ..tensor import no_grad
from .base import bce_per_pixel_array, mse_per_pixel_array, to_numpy
from .evaluation import iterate_batches

METRICS = ("mse", "bce")


def reconstruction_errors(model, images, batch_size=256, metric="mse"):
    """Per-example reconstruction error, float64 numpy (N,)."""
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
    if metric == "bce" and model.output != "sigmoid":
        raise ValueError(f"metric='bce' needs a model with output='sigmoid' (logits); this one "
                         f"has output={model.output!r}: use metric='mse'")
    images = getattr(images, "images", images)
    was_training = model.training
    model.eval()
    errors = []
    try:
        with no_grad():
            for batch in iterate_batches(images, batch_size):
                x = model.as_input(batch)
                outputs = model.decode(model.code(x))
                if metric == "bce":
                    errors.append(to_numpy(bce_per_pixel_array(outputs, x)))
                else:  # float64 scores
                    reconstructed = to_numpy(model.to_images(outputs)).astype(np.float64)
                    errors.append(mse_per_pixel_array(reconstructed,
                                                      to_numpy(x).astype(np.float64)))
    finally:
        model.train(was_training)
    return np.concatenate(errors).astype(np.float64) if errors else np.zeros(0)


def pick_threshold(errors, quantile=0.99):
    """The `quantile` of errors on normal (validation) data: above it, an example is flagged."""
    errors = np.asarray(errors, dtype=np.float64).reshape(-1)
    if errors.size == 0:
        raise ValueError("pick_threshold: no errors given")
    if not np.all(np.isfinite(errors)):
        raise ValueError("pick_threshold: errors contain NaN or infinity")
    if not 0 <= quantile <= 1:
        raise ValueError(f"quantile must be in [0, 1], got {quantile!r}")
    return float(np.quantile(errors, quantile))


def flag(errors, threshold):
    """Boolean array: errors above the threshold."""
    return np.asarray(errors) > threshold


def roc_auc(scores, is_anomaly):
    """Area under the ROC curve of `scores` for binary labels (ties count one half)."""
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    labels = np.asarray(is_anomaly).astype(bool).reshape(-1)
    if scores.shape != labels.shape:
        raise ValueError(f"roc_auc: {scores.shape[0]} scores but {labels.shape[0]} labels")
    positives, negatives = scores[labels], scores[~labels]
    if positives.size == 0 or negatives.size == 0:
        raise ValueError("roc_auc: needs both anomalous and normal examples")
    order = np.argsort(np.concatenate([negatives, positives]), kind="mergesort")
    ranks = np.empty(order.size, dtype=np.float64)
    ranks[order] = np.arange(1, order.size + 1)
    # average ranks over ties
    values = np.concatenate([negatives, positives])
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    sums = np.bincount(inverse, weights=ranks)
    ranks = (sums / counts)[inverse]
    positive_ranks = ranks[negatives.size:].sum()
    return float((positive_ranks - positives.size * (positives.size + 1) / 2)
                 / (positives.size * negatives.size))
