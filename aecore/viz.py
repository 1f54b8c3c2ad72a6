"""Pictures of a model: reconstructions, samples, interpolations, the latent space, loss curves.

Image grids are PNGs written with aecore.io.png (NumPy + zlib only). The two plots (latent
scatter, loss curves) use matplotlib when it is installed (`pip install 'aecore[viz]'`), and
otherwise are drawn straight into a NumPy image by the small `Canvas` below (points, lines,
axes, and a 3x5 pixel font for the tick labels), so every picture exists without extras.
The grids enlarge their tiles (a 28x28 digit to 84x84, nearest-neighbour) and name their rows
and columns in that font (`annotate=False` for the bare grid).

    reconstruction_grid(model, images, path)   rows: inputs / (noisy inputs, DAE) / outputs
    sample_grid(model, path, n=64)             VAE: decoded draws from the prior N(0, I);
                                               others: from a Gaussian fitted to the codes of
                                               `images` (pass them)
    interpolation_strip(model, images, path)   each row: x_a, decode((1-t) z_a + t z_b), x_b
    latent_scatter(model, images, labels, path)  codes coloured by label (a PCA projection when
                                               the code has more than 2 numbers)
    loss_curves(history, path)                 train and validation loss per epoch
    write_run_pictures(model, run_dir, images, labels, history)   all of the above that apply
"""

from __future__ import annotations

import os

import numpy as np

from .io.png import image_grid, write_png
from .tensor import Tensor, no_grad, tensor

__all__ = ["reconstruction_grid", "sample_grid", "interpolation_strip", "latent_scatter",
           "loss_curves", "write_run_pictures", "labelled_grid", "tile_scale", "draw_text",
           "text_width", "Canvas", "have_matplotlib", "encode_codes", "decode_probabilities",
           "PALETTE"]

# matplotlib's tab10, as RGB in [0, 1]
PALETTE = np.array([[31, 119, 180], [255, 127, 14], [44, 160, 44], [214, 39, 40],
                    [148, 103, 189], [140, 86, 75], [227, 119, 194], [127, 127, 127],
                    [188, 189, 34], [23, 190, 207]], dtype=np.float32) / 255.0


def have_matplotlib():
    try:
        import matplotlib  # noqa: F401
        return True
    except Exception:
        return False


# ---------------------------------------------------------------------------------------------
# running the model
# ---------------------------------------------------------------------------------------------

def _numpy(x):
    if isinstance(x, Tensor):
        return np.asarray(x.numpy())
    if hasattr(x, "get"):  # CuPy
        return x.get()
    return np.asarray(x)


def _device(model):
    for p in model.parameters():
        return p.device
    return "cpu"


def _input(model, images):
    return tensor(np.asarray(images, dtype=np.float32), device=_device(model))


def _sigmoid(z):
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # stable for any z


def encode_codes(model, images, batch_size=256):
    """The codes of `images` as a NumPy array (N, D) (a VAE's means; flattened for conv codes)."""
    model.eval()
    out = []
    with no_grad():
        for start in range(0, len(images), batch_size):
            code = model.encode(_input(model, images[start:start + batch_size]))
            if isinstance(code, (tuple, list)):
                code = code[0]
            c = _numpy(code)
            out.append(c.reshape(len(c), -1))
    return np.concatenate(out)


def decode_probabilities(model, codes, batch_size=256, code_shape=None):
    """sigmoid(decode(codes)) as NumPy (N, C, H, W); codes (N, D) are reshaped to code_shape."""
    model.eval()
    out = []
    with no_grad():
        for start in range(0, len(codes), batch_size):
            z = np.asarray(codes[start:start + batch_size], dtype=np.float32)
            if code_shape is not None:
                z = z.reshape((len(z),) + tuple(code_shape))
            out.append(_sigmoid(_numpy(model.decode(tensor(z, device=_device(model))))))
    return np.concatenate(out)


def _code_shape(model, images):
    with no_grad():
        code = model.encode(_input(model, images[:1]))
    if isinstance(code, (tuple, list)):
        code = code[0]
    return tuple(code.shape[1:])


def _reconstruct(model, x):
    model.eval()
    with no_grad():
        out = model.reconstruct(_input(model, x))
    return np.clip(_numpy(out), 0.0, 1.0)


def _is_dae(model):
    return getattr(model, "kind", None) == "dae" or hasattr(model, "corrupt")


def _is_vae(model):
    return hasattr(model, "sample")


# ---------------------------------------------------------------------------------------------
# a 3x5 pixel font (labels of the grids, ticks of the NumPy-drawn plots)
# ---------------------------------------------------------------------------------------------

# 3x5 pixel glyphs, rows top to bottom, '#' = ink
_GLYPHS = {
    "0": "###|#.#|#.#|#.#|###", "1": ".#.|##.|.#.|.#.|###", "2": "###|..#|###|#..|###",
    "3": "###|..#|###|..#|###", "4": "#.#|#.#|###|..#|..#", "5": "###|#..|###|..#|###",
    "6": "###|#..|###|#.#|###", "7": "###|..#|.#.|.#.|.#.", "8": "###|#.#|###|#.#|###",
    "9": "###|#.#|###|..#|###", ".": "...|...|...|...|.#.", "-": "...|...|###|...|...",
    "+": "...|.#.|###|.#.|...", ":": "...|.#.|...|.#.|...", "/": "..#|..#|.#.|#..|#..",
    "(": ".#.|#..|#..|#..|.#.", ")": ".#.|..#|..#|..#|.#.", "=": "...|###|...|###|...",
    ",": "...|...|...|.#.|#..", "_": "...|...|...|...|###", " ": "...|...|...|...|...",
    "A": ".#.|#.#|###|#.#|#.#", "B": "##.|#.#|##.|#.#|##.", "C": ".##|#..|#..|#..|.##",
    "D": "##.|#.#|#.#|#.#|##.", "E": "###|#..|##.|#..|###", "F": "###|#..|##.|#..|#..",
    "G": ".##|#..|#.#|#.#|.##", "H": "#.#|#.#|###|#.#|#.#", "I": "###|.#.|.#.|.#.|###",
    "J": "..#|..#|..#|#.#|.#.", "K": "#.#|#.#|##.|#.#|#.#", "L": "#..|#..|#..|#..|###",
    "M": "#.#|###|###|#.#|#.#", "N": "##.|#.#|#.#|#.#|#.#", "O": ".#.|#.#|#.#|#.#|.#.",
    "P": "##.|#.#|##.|#..|#..", "Q": ".#.|#.#|#.#|##.|.##", "R": "##.|#.#|##.|#.#|#.#",
    "S": ".##|#..|.#.|..#|##.", "T": "###|.#.|.#.|.#.|.#.", "U": "#.#|#.#|#.#|#.#|###",
    "V": "#.#|#.#|#.#|#.#|.#.", "W": "#.#|#.#|###|###|#.#", "X": "#.#|#.#|.#.|#.#|#.#",
    "Y": "#.#|#.#|.#.|.#.|.#.", "Z": "###|..#|.#.|#..|###",
}
_GLYPH_BITS = {ch: np.array([[c == "#" for c in row] for row in g.split("|")])
               for ch, g in _GLYPHS.items()}


def text_width(string, scale=2):
    """Width in pixels of `string` in the 3x5 font (3 columns and a 1-column gap per letter)."""
    return max(len(str(string)) * 4 * scale - scale, 0)


def draw_text(pixels, x, y, string, color=0.0, scale=2, anchor="left"):
    """Stamp `string` into `pixels` ((H, W) grey or (H, W, 3) RGB) in the 3x5 font, each font
    pixel a scale x scale square, its top at y; anchor left / center / right at x. Letters are
    drawn as capitals; what falls outside the image is clipped."""
    string = str(string).upper()
    width = text_width(string, scale)
    if anchor == "center":
        x -= width / 2
    elif anchor == "right":
        x -= width
    x, y = int(round(x)), int(round(y))
    h, w = pixels.shape[:2]
    for k, ch in enumerate(string):
        bits = _GLYPH_BITS.get(ch, _GLYPH_BITS[" "])
        ys, xs = np.nonzero(np.repeat(np.repeat(bits, scale, axis=0), scale, axis=1))
        px, py = x + k * 4 * scale + xs, y + ys
        keep = (px >= 0) & (px < w) & (py >= 0) & (py < h)
        pixels[py[keep], px[keep]] = color


# ---------------------------------------------------------------------------------------------
# image grids
# ---------------------------------------------------------------------------------------------

# Tiles are enlarged (nearest-neighbour, by an integer factor) until their longer side is at least
# this many pixels: a 28x28 digit becomes 84x84, large enough to judge a reconstruction by eye.
MIN_TILE_PIXELS = 84
LABEL_FONT_SCALE = 3   # labels in the 3x5 font with each font pixel 3x3: capitals 15 pixels tall
LABEL_GAP = 8          # pixels around a label


def tile_scale(image_shape):
    """The integer enlargement that makes tiles of `image_shape` (..., H, W) at least
    MIN_TILE_PIXELS on their longer side (1 for images that are that large already)."""
    return max(1, -(-MIN_TILE_PIXELS // max(image_shape[-2:])))


def _upscale(grid, scale):
    """Nearest-neighbour enlargement by an integer factor (28-pixel digits are small on screen)."""
    if scale == 1:
        return grid
    return np.repeat(np.repeat(grid, scale, axis=0), scale, axis=1)


def _font_that_fits(texts, width, largest=LABEL_FONT_SCALE):
    """The largest font scale (down to 1) at which every one of `texts` is at most `width` wide."""
    longest = max(texts, key=len)
    for scale in range(largest, 1, -1):
        if text_width(longest, scale) <= width:
            return scale
    return 1


def labelled_grid(images, nrow=8, row_labels=(), col_labels=(), title=None, scale=None,
                  padding=2):
    """image_grid(images, nrow) enlarged `scale` times (None: tile_scale), with labels.

    row_labels: one per row of the grid, right-aligned in a margin on the left; col_labels: one
    per column, centred above it; title: one line above everything. The tiles take the bottom
    right of the picture, so with no labels and no title this is just the enlarged grid. Returns
    float32 (H, W) for one-channel images, (H, W, 3) for three, ready for write_png.
    """
    images = np.asarray(images, dtype=np.float32)
    scale = tile_scale(images.shape) if scale is None else int(scale)
    grid = _upscale(image_grid(images, nrow=nrow, padding=padding, pad_value=1.0), scale)
    row_labels, col_labels = list(row_labels), list(col_labels)
    if not (row_labels or col_labels or title):
        return grid
    tile_h, tile_w = images.shape[-2] * scale, images.shape[-1] * scale
    pad = padding * scale
    left = 0
    if row_labels:
        left = 2 * LABEL_GAP + max(text_width(label, LABEL_FONT_SCALE) for label in row_labels)
    width = left + grid.shape[1]
    lines = []   # the text lines above the tiles, each a list of (text, font scale, centre x)
    if title:
        font = _font_that_fits([title], width - 2 * LABEL_GAP)
        lines.append([(title, font, width / 2)])
    if col_labels:
        font = _font_that_fits(col_labels, tile_w + pad)
        lines.append([(label, font, left + pad + c * (tile_w + pad) + tile_w / 2)
                      for c, label in enumerate(col_labels)])
    top = sum(LABEL_GAP + 5 * line[0][1] for line in lines)
    picture = np.ones((top + grid.shape[0], width) + grid.shape[2:], np.float32)
    picture[top:, left:] = grid
    y = LABEL_GAP
    for line in lines:
        for text, font, x in line:
            draw_text(picture, x, y, text, 0.0, font, anchor="center")
        y += LABEL_GAP + 5 * line[0][1]
    for r, label in enumerate(row_labels):
        middle = top + pad + r * (tile_h + pad) + tile_h / 2
        draw_text(picture, left - LABEL_GAP, middle - 5 * LABEL_FONT_SCALE / 2, label, 0.0,
                  LABEL_FONT_SCALE, anchor="right")
    return picture


def _written(picture, path):
    if path is not None:
        write_png(path, picture)
    return picture


def reconstruction_grid(model, images, path=None, n=8, blocks=2, noisy=None, scale=None,
                        annotate=True):
    """Inputs vs reconstructions: for each block of n images, a row of inputs, (for a DAE a
    row of the corrupted inputs the model sees), and a row of reconstructions.

    For a DAE the reconstruction is of the corrupted input (that is what it is trained for);
    `noisy` overrides the corruption. `scale`: the tiles' enlargement (None: tile_scale);
    `annotate`: name each row on the left. Returns the picture (float array) and writes it if
    `path`.
    """
    images = np.asarray(images[:n * blocks], dtype=np.float32)
    dae = _is_dae(model)
    if dae:
        if noisy is None:
            noisy = _numpy(model.corrupt(images.copy()))
        noisy = np.clip(np.asarray(noisy, dtype=np.float32), 0, 1)
        recon = _reconstruct(model, noisy)
    else:
        recon = _reconstruct(model, images)
    rows, names = [], []
    for b in range(0, len(images), n):
        rows.append(images[b:b + n])
        if dae:
            rows.append(noisy[b:b + n])
        rows.append(recon[b:b + n])
        names += ["input", "noisy input", "reconstruction"] if dae else ["input", "reconstruction"]
    width = min(n, len(images))
    rows = [np.concatenate([r, np.ones((width - len(r),) + r.shape[1:], np.float32)])
            if len(r) < width else r for r in rows]
    picture = labelled_grid(np.concatenate(rows), nrow=width, scale=scale,
                            row_labels=names if annotate else ())
    return _written(picture, path)


def sample_grid(model, path=None, n=64, nrow=8, images=None, seed=0, scale=None,
                annotate=True):
    """n generated images. A VAE decodes draws from its prior (model.sample); other models
    decode draws from a Gaussian (mean, covariance) fitted to the codes of `images`.
    `annotate`: a title line saying which."""
    from . import random as ae_random
    state = ae_random.get_rng_state()
    ae_random.set_rng_state(np.random.PCG64(seed).state)
    try:
        model.eval()
        if _is_vae(model):
            with no_grad():
                samples = _numpy(model.sample(n))
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
    finally:
        ae_random.set_rng_state(state)
    picture = labelled_grid(np.clip(samples, 0, 1), nrow=nrow, scale=scale,
                            title=title if annotate else None)
    return _written(picture, path)


def _pick_pairs(images, labels, pairs, seed):
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


# ---------------------------------------------------------------------------------------------
# a tiny raster plotter (used when matplotlib is absent)
# ---------------------------------------------------------------------------------------------

class Canvas:
    """An RGB float image (H, W, 3) with y pointing down, and a few drawing primitives."""

    def __init__(self, width, height, background=(1.0, 1.0, 1.0)):
        self.w, self.h = int(width), int(height)
        self.pixels = np.empty((self.h, self.w, 3), np.float32)
        self.pixels[:] = background

    def rect(self, x0, y0, x1, y1, color):
        x0, x1 = sorted((int(round(x0)), int(round(x1))))
        y0, y1 = sorted((int(round(y0)), int(round(y1))))
        x0, y0 = max(x0, 0), max(y0, 0)
        x1, y1 = min(x1, self.w - 1), min(y1, self.h - 1)
        if x0 <= x1 and y0 <= y1:
            self.pixels[y0:y1 + 1, x0:x1 + 1] = color

    def points(self, xs, ys, colors, radius=1):
        """Squares of side 2*radius+1 at (xs, ys); colors (N, 3) or one color."""
        xs = np.round(np.asarray(xs)).astype(int)
        ys = np.round(np.asarray(ys)).astype(int)
        colors = np.broadcast_to(np.asarray(colors, np.float32), (len(xs), 3))
        for dy in range(-radius, radius + 1):
            for dx in range(-radius, radius + 1):
                x, y = xs + dx, ys + dy
                keep = (x >= 0) & (x < self.w) & (y >= 0) & (y < self.h)
                self.pixels[y[keep], x[keep]] = colors[keep]

    def line(self, x0, y0, x1, y1, color, width=1):
        steps = int(max(abs(x1 - x0), abs(y1 - y0)) * 2) + 2
        t = np.linspace(0.0, 1.0, steps)
        self.points(x0 + (x1 - x0) * t, y0 + (y1 - y0) * t, color, radius=width // 2)

    def polyline(self, xs, ys, color, width=2):
        for k in range(len(xs) - 1):
            self.line(xs[k], ys[k], xs[k + 1], ys[k + 1], color, width)

    def text(self, x, y, string, color=(0.0, 0.0, 0.0), scale=2, anchor="left"):
        """Draw `string` with its top at y; anchor left / center / right at x."""
        draw_text(self.pixels, x, y, string, color, scale, anchor)

    def save(self, path):
        write_png(path, self.pixels)


def _nice_ticks(lo, hi, count=5):
    if not np.isfinite(lo) or not np.isfinite(hi):
        return np.array([0.0])
    if hi <= lo:
        hi = lo + 1.0
    raw = (hi - lo) / max(count, 1)
    magnitude = 10 ** np.floor(np.log10(raw))
    step = magnitude * min((m for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw),
                           default=10)
    start = np.ceil(lo / step) * step
    ticks = np.arange(start, hi + step * 0.5, step)
    return ticks[ticks <= hi + 1e-9 * step]


def _fmt(v):
    if v == 0:
        return "0"
    if abs(v) >= 1e4 or abs(v) < 1e-3:
        return f"{v:.1e}".replace("e-0", "e-").replace("e+0", "e")
    return f"{v:.4g}"


class _Axes:
    """Data -> pixel mapping inside a Canvas, with a frame, ticks and labels."""

    def __init__(self, canvas, xlim, ylim, left=70, right=20, top=40, bottom=50):
        self.c = canvas
        self.x0, self.x1 = left, canvas.w - right
        self.y0, self.y1 = top, canvas.h - bottom
        self.xlim, self.ylim = xlim, ylim

    def px(self, x):
        lo, hi = self.xlim
        return self.x0 + (np.asarray(x, float) - lo) / (hi - lo) * (self.x1 - self.x0)

    def py(self, y):
        lo, hi = self.ylim
        return self.y1 - (np.asarray(y, float) - lo) / (hi - lo) * (self.y1 - self.y0)

    def frame(self, title="", xlabel="", ylabel="", xticks=None, yticks=None):
        c, black, grey = self.c, (0, 0, 0), (0.88, 0.88, 0.88)
        xticks = _nice_ticks(*self.xlim) if xticks is None else xticks
        yticks = _nice_ticks(*self.ylim) if yticks is None else yticks
        for t in xticks:
            if self.xlim[0] <= t <= self.xlim[1]:
                x = self.px(t)
                c.line(x, self.y0, x, self.y1, grey)
                c.line(x, self.y1, x, self.y1 + 4, black)
                c.text(x, self.y1 + 8, _fmt(t), anchor="center")
        for t in yticks:
            if self.ylim[0] <= t <= self.ylim[1]:
                y = self.py(t)
                c.line(self.x0, y, self.x1, y, grey)
                c.line(self.x0 - 4, y, self.x0, y, black)
                c.text(self.x0 - 8, y - 5, _fmt(t), anchor="right")
        x0, y0, x1, y1 = self.x0, self.y0, self.x1, self.y1
        for a, b, d, e in ((x0, y0, x1, y0), (x0, y1, x1, y1), (x0, y0, x0, y1), (x1, y0, x1, y1)):
            c.line(a, b, d, e, black)
        c.text((self.x0 + self.x1) / 2, 12, title, anchor="center")
        c.text((self.x0 + self.x1) / 2, c.h - 18, xlabel, anchor="center")
        c.text(6, 12, ylabel, anchor="left")


def _limits(values, pad=0.05):
    values = np.asarray(values, float)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return (0.0, 1.0)
    lo, hi = float(values.min()), float(values.max())
    if hi - lo < 1e-12:
        lo, hi = lo - 0.5, hi + 0.5
    span = hi - lo
    return (lo - pad * span, hi + pad * span)


# ---------------------------------------------------------------------------------------------
# plots
# ---------------------------------------------------------------------------------------------

def _project_2d(codes):
    if codes.shape[1] == 2:
        return codes, "latent z1", "latent z2", None
    centered = codes - codes.mean(axis=0)
    if codes.shape[1] == 1:
        return np.column_stack([codes[:, 0], np.zeros(len(codes))]), "latent z1", "", None
    _, _, vt = np.linalg.svd(centered, full_matrices=False)
    return centered @ vt[:2].T, "PC 1", "PC 2", codes.shape[1]


def latent_scatter(model, images, labels=None, path=None, max_points=2000, backend=None):
    """Codes of `images` as points coloured by label. A 2-D code is plotted as it is; longer
    codes are projected on their first two principal components (said in the title).
    backend: None (matplotlib if installed, else numpy), "matplotlib" or "numpy"."""
    images = np.asarray(images[:max_points], dtype=np.float32)
    labels = None if labels is None else np.asarray(labels[:max_points])
    xy, xlabel, ylabel, projected = _project_2d(encode_codes(model, images))
    title = ("latent space" if projected is None
             else f"latent space (PCA of the {projected}-d code)")
    backend = backend or ("matplotlib" if have_matplotlib() else "numpy")
    if backend == "matplotlib":
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, ax = plt.subplots(figsize=(6, 5.5), dpi=100)
        if labels is None:
            ax.scatter(xy[:, 0], xy[:, 1], s=4)
        else:
            for k in np.unique(labels):
                sel = labels == k
                ax.scatter(xy[sel, 0], xy[sel, 1], s=4, color=PALETTE[int(k) % 10],
                           label=str(k))
            ax.legend(markerscale=3, fontsize=8, loc="best")
        ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
        if path is not None:
            fig.savefig(path)
        plt.close(fig)
        return xy
    canvas = Canvas(560, 520)
    axes = _Axes(canvas, _limits(xy[:, 0]), _limits(xy[:, 1]), right=70)
    axes.frame(title=title, xlabel=xlabel, ylabel=ylabel)
    colors = (np.broadcast_to(PALETTE[0], (len(xy), 3)) if labels is None
              else PALETTE[np.asarray(labels, int) % 10])
    canvas.points(axes.px(xy[:, 0]), axes.py(xy[:, 1]), colors, radius=1)
    if labels is not None:  # legend: a swatch and the label, right of the plot
        for row, k in enumerate(np.unique(labels)[:20]):
            y = axes.y0 + 4 + row * 16
            canvas.rect(axes.x1 + 10, y, axes.x1 + 20, y + 9, PALETTE[int(k) % 10])
            canvas.text(axes.x1 + 26, y, str(k))
    if path is not None:
        canvas.save(path)
    return xy


def loss_curves(history, path=None, backend=None):
    """Training and validation loss per epoch (from Trainer.history / metrics.json)."""
    epochs = [r["epoch"] for r in history]
    series = [("train", [r.get("train_loss") for r in history], PALETTE[0]),
              ("validation", [r.get("val_loss") for r in history], PALETTE[1])]
    series = [(name, np.array([np.nan if v is None else v for v in ys], float), color)
              for name, ys, color in series if any(v is not None for v in ys)]
    backend = backend or ("matplotlib" if have_matplotlib() else "numpy")
    if backend == "matplotlib":
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
        for name, ys, color in series:
            ax.plot(epochs, ys, marker="o", color=color, label=name)
        ax.set(title="loss", xlabel="epoch", ylabel="loss")
        from matplotlib.ticker import MaxNLocator
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend()
        if path is not None:
            fig.tight_layout()
            fig.savefig(path)
        plt.close(fig)
        return None
    canvas = Canvas(600, 400)
    xlim = (min(epochs) - 0.5, max(epochs) + 0.5) if epochs else (0, 1)
    ylim = _limits(np.concatenate([ys for _, ys, _ in series]) if series else [0, 1], pad=0.08)
    axes = _Axes(canvas, xlim, ylim, left=80)
    xticks = _nice_ticks(xlim[0], xlim[1], count=min(len(epochs), 10) or 1)
    xticks = xticks[np.isclose(xticks, np.round(xticks))]
    axes.frame(title="loss", xlabel="epoch", ylabel="loss", xticks=xticks)
    for row, (name, ys, color) in enumerate(series):
        ok = np.isfinite(ys)
        xs, vs = np.asarray(epochs, float)[ok], ys[ok]
        canvas.polyline(axes.px(xs), axes.py(vs), color, width=3)
        canvas.points(axes.px(xs), axes.py(vs), color, radius=3)
        y = axes.y0 + 8 + row * 18
        canvas.rect(axes.x1 - 130, y + 3, axes.x1 - 112, y + 6, color)
        canvas.text(axes.x1 - 104, y, name)
    if path is not None:
        canvas.save(path)
    return canvas.pixels


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
