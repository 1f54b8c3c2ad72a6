"""Pictures of a model: reconstructions, samples, interpolations, the latent space, loss curves.

    reconstruction_grid(model, images, path)   rows: inputs / (noisy inputs, DAE) / outputs
    sample_grid(model, path, n=64)             VAE: decoded draws from the prior N(0, I);
                                               others: from a Gaussian fitted to the codes of
                                               `images` (pass them)
    interpolation_strip(model, images, path)   each row: x_a, decode((1-t) z_a + t z_b), x_b
    latent_scatter(model, images, labels, path)  codes coloured by label (a PCA projection when
                                               the code has more than 2 numbers)
    loss_curves(history, path)                 train and validation loss per epoch
    write_run_pictures(model, run_dir, images, labels, history)   all of the above that apply
    write_projector(out_dir, codes, labels, images)   files for TensorBoard's embedding
                                               projector (projector.py)

This module runs the model and reads what it declares it can do (`model.can_sample`: the VAE
draws from its prior; `model.corrupts_input`: the DAE is shown its corrupted inputs; see
aecore/models/base.py). Laying the pictures out is grids.py's (tiles enlarged so a 28x28 digit
is 84x84, rows and columns named in a 3x5 pixel font; `annotate=False` for the bare grid);
drawing the plots is plots.py's (matplotlib when installed, else a small NumPy Canvas). Grids
are PNGs written with aecore.io.png (NumPy + zlib only).
"""

from __future__ import annotations

import os

import numpy as np

from ..io.png import write_png
from ..tensor import Tensor, no_grad, tensor
from .grids import draw_text, labelled_grid, text_width, tile_scale
from .plots import PALETTE, Canvas, have_matplotlib, loss_curves, plot_codes
from .projector import write_projector

__all__ = ["reconstruction_grid", "sample_grid", "interpolation_strip", "latent_scatter",
           "loss_curves", "write_run_pictures", "labelled_grid", "tile_scale", "draw_text",
           "text_width", "Canvas", "have_matplotlib", "encode_codes", "decode_probabilities",
           "PALETTE", "plot_codes", "write_projector"]


# ---------------------------------------------------------------------------------------------
# running the model
# ---------------------------------------------------------------------------------------------

def _numpy(x):
    if isinstance(x, Tensor):
        return np.asarray(x.numpy())
    if hasattr(x, "get"):  # CuPy
        return x.get()
    return np.asarray(x)


def _input(model, images):
    return tensor(np.asarray(images, dtype=np.float32), device=model.device)


def encode_codes(model, images, batch_size=256):
    """The codes of `images` as a NumPy array (N, D) (model.code: a VAE's means; flattened for
    conv codes)."""
    model.eval()
    out = []
    with no_grad():
        for start in range(0, len(images), batch_size):
            c = _numpy(model.code(_input(model, images[start:start + batch_size])))
            out.append(c.reshape(len(c), -1))
    return np.concatenate(out)


def decode_probabilities(model, codes, batch_size=256, code_shape=None):
    """The images decode(codes) stands for (model.to_images: sigmoid of logits, or a linear
    output as it is), clipped to [0, 1], as NumPy (N, C, H, W); codes (N, D) are reshaped to
    code_shape."""
    model.eval()
    out = []
    with no_grad():
        for start in range(0, len(codes), batch_size):
            z = np.asarray(codes[start:start + batch_size], dtype=np.float32)
            if code_shape is not None:
                z = z.reshape((len(z),) + tuple(code_shape))
            out.append(_numpy(model.to_images(model.decode(tensor(z, device=model.device)))))
    return np.clip(np.concatenate(out), 0.0, 1.0)


def _code_shape(model, images):
    """The shape of one image's code, e.g. (16, 4, 4) for the classic CAE, (2,) for a 2-d VAE."""
    with no_grad():
        code = model.code(_input(model, images[:1]))
    return tuple(code.shape[1:])


def _reconstruct(model, x):
    model.eval()
    with no_grad():
        out = model.reconstruct(_input(model, x))
    return np.clip(_numpy(out), 0.0, 1.0)


def _written(picture, path):
    if path is not None:
        write_png(path, picture)
    return picture


# ---------------------------------------------------------------------------------------------
# the pictures
# ---------------------------------------------------------------------------------------------

def reconstruction_grid(model, images, path=None, n=8, blocks=2, noisy=None, scale=None,
                        annotate=True):
    """Inputs vs reconstructions: for each block of n images, a row of inputs, (for a DAE a
    row of the corrupted inputs the model sees), and a row of reconstructions.

    For a DAE the reconstruction is of the corrupted input (that is what it is trained for);
    `noisy` overrides the corruption (other models ignore it). `scale`: the tiles' enlargement
    (None: tile_scale); `annotate`: name each row on the left. Returns the picture (float array)
    and writes it if `path`.
    """
    images = np.asarray(images[:n * blocks], dtype=np.float32)
    shows_noisy = model.corrupts_input
    if shows_noisy:
        if noisy is None:
            noisy = _numpy(model.corrupt(images.copy()))
        noisy = np.clip(np.asarray(noisy, dtype=np.float32), 0, 1)
        recon = _reconstruct(model, noisy)
    else:
        recon = _reconstruct(model, images)
    rows, names = [], []
    for b in range(0, len(images), n):
        rows.append(images[b:b + n])
        if shows_noisy:
            rows.append(noisy[b:b + n])
        rows.append(recon[b:b + n])
        names += (["input", "noisy input", "reconstruction"] if shows_noisy
                  else ["input", "reconstruction"])
    width = min(n, len(images))
    rows = [np.concatenate([r, np.ones((width - len(r),) + r.shape[1:], np.float32)])
            if len(r) < width else r for r in rows]
    picture = labelled_grid(np.concatenate(rows), nrow=width, scale=scale,
                            row_labels=names if annotate else ())
    return _written(picture, path)


def sample_grid(model, path=None, n=64, nrow=8, images=None, seed=0, scale=None,
                annotate=True):
    """n generated images. A model that can sample (the VAE) decodes draws from its prior
    (model.sample, seeded); other models decode draws from a Gaussian (mean, covariance) fitted
    to the codes of `images`. `annotate`: a title line saying which."""
    model.eval()
    if model.can_sample:
        samples = _numpy(model.sample(n, seed=seed))
        title = "samples from the prior N(0, I)"
    else:
        if images is None:
            raise ValueError("sample_grid: this model has no prior; pass images to fit a "
                             "Gaussian to their codes")
        images = np.asarray(images, dtype=np.float32)
        codes = encode_codes(model, images[:2000])
        mean = codes.mean(axis=0)
        cov = np.cov(codes, rowvar=False).reshape(codes.shape[1], codes.shape[1])
        rng = np.random.default_rng(seed)
        z = rng.multivariate_normal(mean, cov, size=n, method="eigh").astype(np.float32)
        samples = decode_probabilities(model, z, code_shape=_code_shape(model, images))
        title = "samples from a Gaussian fitted to the codes"
    picture = labelled_grid(np.clip(samples, 0, 1), nrow=nrow, scale=scale,
                            title=title if annotate else None)
    return _written(picture, path)


def _pick_pairs(images, labels, pairs, seed):
    """`pairs` (a, b) index pairs drawn with `seed`, b of another label than a when known."""
    rng = np.random.default_rng(seed)
    n = len(images)
    out = []
    for _ in range(pairs):
        a = int(rng.integers(n))
        candidates = np.arange(n)
        if labels is not None:
            other = np.flatnonzero(labels != labels[a])
            if len(other):
                candidates = other
        b = int(candidates[rng.integers(len(candidates))])
        out.append((a, b))
    return out


def interpolation_strip(model, images, path=None, labels=None, pairs=4, steps=10, seed=0,
                        scale=None, annotate=True):
    """Rows of: x_a, sigmoid(decode((1 - t) z_a + t z_b)) for t in linspace(0, 1, steps), x_b.
    z is the code (a VAE's mean). Pairs are drawn with `seed`, of different labels when known.
    `annotate`: the columns named a, t=0 ... t=1, b; the rows by their labels ("3 to 7")."""
    images = np.asarray(images, dtype=np.float32)
    chosen = _pick_pairs(images, labels, pairs, seed)
    a_idx = [a for a, _ in chosen]
    b_idx = [b for _, b in chosen]
    za = encode_codes(model, images[a_idx])
    zb = encode_codes(model, images[b_idx])
    t = np.linspace(0.0, 1.0, steps, dtype=np.float32)
    z = ((1 - t[None, :, None]) * za[:, None, :] + t[None, :, None] * zb[:, None, :])
    decoded = decode_probabilities(model, z.reshape(-1, za.shape[1]),
                                   code_shape=_code_shape(model, images))
    decoded = decoded.reshape((pairs, steps) + decoded.shape[1:])
    rows = np.concatenate([images[a_idx][:, None], decoded, images[b_idx][:, None]], axis=1)
    col_labels, row_labels = (), ()
    if annotate:
        col_labels = ["a"] + [f"t={v:.2g}" for v in t] + ["b"]
        if labels is not None:
            row_labels = [f"{labels[a]} to {labels[b]}" for a, b in chosen]
    picture = labelled_grid(rows.reshape((-1,) + rows.shape[2:]), nrow=steps + 2, scale=scale,
                            row_labels=row_labels, col_labels=col_labels)
    return _written(picture, path)


def latent_scatter(model, images, labels=None, path=None, max_points=2000, backend=None):
    """Codes of `images` as points coloured by label (plots.plot_codes). A 2-D code is plotted
    as it is; longer codes are projected on their first two principal components (said in the
    title). backend: None (matplotlib if installed, else numpy), "matplotlib" or "numpy"."""
    images = np.asarray(images[:max_points], dtype=np.float32)
    labels = None if labels is None else np.asarray(labels[:max_points])
    return plot_codes(encode_codes(model, images), labels, path, backend=backend)


# ---------------------------------------------------------------------------------------------
# everything for a run
# ---------------------------------------------------------------------------------------------

def write_run_pictures(model, run_dir, images, labels=None, history=None, n=8):
    """Write the pictures that apply to `model` into run_dir; returns the paths written.

    reconstructions.png always; samples.png (VAE: from the prior; others: from a Gaussian
    fitted to the codes); interpolation.png; latent_scatter.png; loss_curves.png (history).
    """
    os.makedirs(run_dir, exist_ok=True)
    images = np.asarray(images, dtype=np.float32)
    written = []

    def out(name):
        p = os.path.join(run_dir, name)
        written.append(p)
        return p

    reconstruction_grid(model, images, out("reconstructions.png"), n=n)
    sample_grid(model, out("samples.png"), n=64, images=images)
    if len(images) >= 2:
        interpolation_strip(model, images, out("interpolation.png"), labels=labels)
    if len(images) >= 3:
        latent_scatter(model, images, labels, out("latent_scatter.png"))
    if history:
        loss_curves(history, out("loss_curves.png"))
    return written
