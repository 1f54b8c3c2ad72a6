"""Two plots, latent scatter and loss curves, and the small raster plotter behind them.

The plots use matplotlib when it is installed (`pip install 'aecore[viz]'`); otherwise they are
drawn straight into a NumPy image by `Canvas` (points, lines, rectangles, text in the pixel font
of grids.py) inside `_Axes` (a frame, ticks, labels), so every picture exists without extras.
Nothing here runs a model: `plot_codes` takes the codes already computed (aecore.viz's
latent_scatter computes them).
"""

from __future__ import annotations

import numpy as np

from ..io.png import write_png
from .grids import draw_text

__all__ = ["plot_codes", "loss_curves", "Canvas", "have_matplotlib", "PALETTE"]

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
    """(xy, x label, y label, D or None): the codes themselves when 2-D, else their PCA."""
    if codes.shape[1] == 2:
        return codes, "latent z1", "latent z2", None
    centered = codes - codes.mean(axis=0)
    if codes.shape[1] == 1:
        return np.column_stack([codes[:, 0], np.zeros(len(codes))]), "latent z1", "", None
    _, _, vt = np.linalg.svd(centered, full_matrices=False)
    return centered @ vt[:2].T, "PC 1", "PC 2", codes.shape[1]


def plot_codes(codes, labels=None, path=None, backend=None):
    """Codes (N, D) as points coloured by label; returns the plotted (N, 2) points. A 2-D code
    is plotted as it is; longer codes are projected on their first two principal components
    (said in the title). backend: None (matplotlib if installed, else numpy), "matplotlib" or
    "numpy"."""
    labels = None if labels is None else np.asarray(labels)
    xy, xlabel, ylabel, projected = _project_2d(np.asarray(codes))
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
