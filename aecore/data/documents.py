"""Scanned pages of text, dirty and clean, generated from a seed: the pairs of Kaggle's
"Denoising Dirty Documents" (540 pixels wide, 258 or 420 tall), made here since nothing is
downloaded. A denoising autoencoder learns dirty -> clean from them.

    dirty, clean = make_documents(64)      # each float32 (64, 1, 258, 540) in [0, 1]

Both are grey pages with white paper = 1 and dark ink; the dirty page is the clean one as a
worn-out scan shows it. What is simulated, and why:

Clean page (the target: what the text is, nothing else)
1. Layout. A text block inside margins: lines of words at a fixed line pitch, ragged on the
   right; some lines end a paragraph early and the next is indented. Word lengths follow
   English (mostly 2-5 letters), letters English letter frequencies, a few words end with a
   full stop: at a glance the page reads as text, with the row structure an autoencoder must
   keep (ink rows, white gaps between them).
2. Glyphs. Lower-case-like letters drawn with the stroke language of synthetic.py (lines,
   elliptical arcs, Bezier curves) in x-height units: stems, bowls, arches, ascenders and
   descenders. Each page draws its font: x-height, slant, stroke weight; the whole block is
   skewed by up to half a degree, as a page lies on a scanner.
3. Ink. The glyphs' points are splatted onto the page and blurred by a small Gaussian, then
   saturated (as the digits of synthetic.py): anti-aliased strokes of the page's weight.

Dirty page (the input: the same text under what happens to paper and scanners)
4. Paper: a grey tone, uneven lighting (a linear gradient across the page) and mottling (coarse
   noise smoothly interpolated): the background is never flat white.
5. Coffee stains: large soft blobs with ragged edges (a radius modulated by random harmonics of
   the angle), a darker tide-mark ring at the rim and a paler inside.
6. Creases and folds: thin dark lines across the page, with shading on each side of them (one
   side lit, the other shadowed: a brightness gradient across the fold).
7. The ink is laid over all that a little lighter than pure black, the scan blurs the page
   slightly, and sensor grain (fine Gaussian noise) is added last.

Determinism: page k depends only on (seed, k) (its generator is the k-th child of
numpy.random.SeedSequence(seed)), so the same seed gives bitwise the same arrays and a longer
call begins with the pages of a shorter one; every page draws its own degradation. Each page is
made with array operations over its pixels and glyph points (no per-pixel Python loops).
"""

from __future__ import annotations

import math

import numpy as np

from .synthetic import _arc, _bez, _line, _resample, _sample_stroke

__all__ = ["make_documents", "GLYPHS", "LETTER_FREQUENCIES", "WORD_LENGTH_FREQUENCIES"]

# ---------------------------------------------------------------------------------------------
# glyphs: strokes in x-height units, x right, y down; y = 0 is the top of the x-height band,
# y = 1 the baseline, ascenders reach up to -0.75 and descenders down to 1.6
# ---------------------------------------------------------------------------------------------

_BOWL = _arc(0.4, 0.5, 0.38, 0.5, 0, 360)                  # the round part of o, a, b, d, ...
_ARCH = _arc(0.42, 0.45, 0.36, 0.45, 180, 0)               # the top of n, h, m
_DOT = _line((0.15, -0.42), (0.15, -0.3))                  # the dot of i and j

# letter -> (advance width, strokes)
GLYPHS = {
    "a": (0.85, [_arc(0.38, 0.6, 0.34, 0.4, 0, 360), _line((0.72, 0.15), (0.72, 1.0)),
                 _arc(0.4, 0.28, 0.32, 0.28, 160, 15)]),
    "b": (0.85, [_line((0.05, -0.75), (0.05, 1.0)), _arc(0.43, 0.5, 0.38, 0.5, 0, 360)]),
    "c": (0.75, [_arc(0.4, 0.5, 0.38, 0.5, 45, 315)]),
    "d": (0.85, [_BOWL, _line((0.78, -0.75), (0.78, 1.0))]),
    "e": (0.8, [_line((0.03, 0.5), (0.78, 0.5)), _arc(0.4, 0.5, 0.38, 0.5, 0, 320)]),
    "f": (0.5, [_bez((0.55, -0.65), (0.25, -0.85), (0.15, -0.6), (0.15, -0.2)),
                _line((0.15, -0.2), (0.15, 1.0)), _line((0.0, 0.05), (0.45, 0.05))]),
    "g": (0.85, [_BOWL, _line((0.78, 0.0), (0.78, 1.3)),
                 _arc(0.45, 1.3, 0.33, 0.3, 0, -160)]),
    "h": (0.85, [_line((0.06, -0.75), (0.06, 1.0)), _ARCH, _line((0.78, 0.45), (0.78, 1.0))]),
    "i": (0.3, [_line((0.15, 0.0), (0.15, 1.0)), _DOT]),
    "j": (0.35, [_line((0.2, 0.0), (0.2, 1.35)), _arc(0.0, 1.35, 0.2, 0.25, 0, -120),
                 _line((0.2, -0.42), (0.2, -0.3))]),
    "k": (0.75, [_line((0.06, -0.75), (0.06, 1.0)), _line((0.7, 0.0), (0.06, 0.6)),
                 _line((0.3, 0.4), (0.72, 1.0))]),
    "l": (0.3, [_line((0.15, -0.75), (0.15, 1.0))]),
    "m": (1.25, [_line((0.06, 0.0), (0.06, 1.0)), _arc(0.33, 0.45, 0.27, 0.45, 180, 0),
                 _line((0.6, 0.45), (0.6, 1.0)), _arc(0.87, 0.45, 0.27, 0.45, 180, 0),
                 _line((1.14, 0.45), (1.14, 1.0))]),
    "n": (0.85, [_line((0.06, 0.0), (0.06, 1.0)), _ARCH, _line((0.78, 0.45), (0.78, 1.0))]),
    "o": (0.8, [_BOWL]),
    "p": (0.85, [_line((0.05, 0.0), (0.05, 1.6)), _arc(0.43, 0.5, 0.38, 0.5, 0, 360)]),
    "q": (0.85, [_BOWL, _line((0.78, 0.0), (0.78, 1.6))]),
    "r": (0.55, [_line((0.06, 0.0), (0.06, 1.0)), _arc(0.4, 0.45, 0.34, 0.45, 180, 60)]),
    "s": (0.7, [_bez((0.62, 0.12), (0.35, -0.1), (0.0, 0.1), (0.12, 0.35)),
                _bez((0.12, 0.35), (0.25, 0.6), (0.72, 0.5), (0.62, 0.85)),
                _bez((0.62, 0.85), (0.5, 1.1), (0.15, 1.0), (0.04, 0.85))]),
    "t": (0.5, [_line((0.18, -0.5), (0.18, 0.8)), _arc(0.38, 0.8, 0.2, 0.2, 180, 330),
                _line((0.0, 0.05), (0.45, 0.05))]),
    "u": (0.85, [_line((0.06, 0.0), (0.06, 0.55)), _arc(0.42, 0.55, 0.36, 0.45, 180, 360),
                 _line((0.78, 0.0), (0.78, 1.0))]),
    "v": (0.8, [_line((0.0, 0.0), (0.4, 1.0)), _line((0.4, 1.0), (0.8, 0.0))]),
    "w": (1.15, [_line((0.0, 0.0), (0.28, 1.0)), _line((0.28, 1.0), (0.57, 0.2)),
                 _line((0.57, 0.2), (0.86, 1.0)), _line((0.86, 1.0), (1.14, 0.0))]),
    "x": (0.75, [_line((0.02, 0.0), (0.73, 1.0)), _line((0.73, 0.0), (0.02, 1.0))]),
    "y": (0.8, [_line((0.0, 0.0), (0.42, 1.0)), _line((0.8, 0.0), (0.25, 1.6))]),
    "z": (0.75, [_line((0.05, 0.0), (0.7, 0.0)), _line((0.7, 0.0), (0.05, 1.0)),
                 _line((0.05, 1.0), (0.72, 1.0))]),
    ".": (0.3, [_line((0.12, 0.88), (0.12, 1.0))]),
}
# English letter frequencies (per cent)
LETTER_FREQUENCIES = {
    "a": 8.2, "b": 1.5, "c": 2.8, "d": 4.3, "e": 12.7, "f": 2.2, "g": 2.0, "h": 6.1, "i": 7.0,
    "j": 0.15, "k": 0.8, "l": 4.0, "m": 2.4, "n": 6.7, "o": 7.5, "p": 1.9, "q": 0.1, "r": 6.0,
    "s": 6.3, "t": 9.1, "u": 2.8, "v": 1.0, "w": 2.4, "x": 0.15, "y": 2.0, "z": 0.07,
}
# how often an English word has 1, 2, ..., 12 letters (per cent)
WORD_LENGTH_FREQUENCIES = (3.0, 17.0, 21.0, 16.0, 11.0, 9.0, 8.0, 6.0, 4.0, 3.0, 1.5, 0.5)

_SPACE = 0.55            # advance of a space between words, in x-heights
_LETTER_GAP = 0.22       # extra advance after each glyph, in x-heights
_POINT_SPACING = 0.08    # distance between a glyph's skeleton points, in x-heights
_FULL_STOP = 0.08        # chance that a word ends with a full stop
_PARAGRAPH_END = 0.12    # chance that a line ends its paragraph early


def _glyph_table():
    """Every glyph's skeleton points in one array: (points (P, 2), first point of each glyph,
    number of points of each glyph, advance of each glyph), glyphs in the order of GLYPHS."""
    pieces = [np.concatenate([_resample(_sample_stroke(s), _POINT_SPACING) for s in strokes])
              for _, strokes in GLYPHS.values()]
    counts = np.array([len(p) for p in pieces])
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    advances = np.array([width for width, _ in GLYPHS.values()]) + _LETTER_GAP
    return np.concatenate(pieces).astype(np.float32), starts, counts, advances


_TABLE = None


def _table():
    global _TABLE
    if _TABLE is None:
        _TABLE = _glyph_table()
    return _TABLE


# ---------------------------------------------------------------------------------------------
# pixel helpers, for one page (H, W)
# ---------------------------------------------------------------------------------------------

def _blur(image, sigma):
    """A separable Gaussian blur of width `sigma` pixels, the edges extended: (H, W) -> (H, W)."""
    radius = max(1, int(np.ceil(3 * sigma)))
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2).astype(np.float32)
    taps /= taps.sum()
    h, w = image.shape
    padded = np.pad(image, radius, mode="edge")
    rows = sum(t * padded[:, k:k + w] for k, t in enumerate(taps))        # (H + 2r, W)
    return sum(t * rows[k:k + h] for k, t in enumerate(taps))             # (H, W)


def _splat(xs, ys, weight, height, width):
    """Points (xs, ys) in pixels spread bilinearly over their four pixels: (H, W) ink."""
    x0, y0 = np.floor(xs), np.floor(ys)
    fx, fy = (xs - x0).astype(np.float32), (ys - y0).astype(np.float32)
    x0, y0 = x0.astype(np.int64), y0.astype(np.int64)
    inside = (x0 >= 0) & (x0 < width - 1) & (y0 >= 0) & (y0 < height - 1)
    x0, y0, fx, fy = x0[inside], y0[inside], fx[inside], fy[inside]
    corner = y0 * width + x0
    index = np.concatenate([corner, corner + 1, corner + width, corner + width + 1])
    share = np.concatenate([(1 - fx) * (1 - fy), fx * (1 - fy), (1 - fx) * fy, fx * fy])
    ink = np.bincount(index, weights=share * weight, minlength=height * width)
    return ink.astype(np.float32).reshape(height, width)


def _smooth_noise(rng, height, width, cells):
    """Noise that varies over about `cells` cells along the longer side: a coarse grid of
    standard normal values, bilinearly interpolated to (H, W)."""
    grid_h = max(2, round(cells * height / max(height, width)) + 1)
    grid_w = max(2, round(cells * width / max(height, width)) + 1)
    coarse = rng.standard_normal((grid_h, grid_w)).astype(np.float32)

    def weights(n, size):  # (size, n): linear interpolation from n grid points to size pixels
        position = np.linspace(0.0, n - 1, size)
        left = np.minimum(np.floor(position).astype(int), n - 2)
        frac = (position - left).astype(np.float32)
        w = np.zeros((size, n), np.float32)
        w[np.arange(size), left] = 1 - frac
        w[np.arange(size), left + 1] = frac
        return w

    return weights(grid_h, height) @ coarse @ weights(grid_w, width).T


# ---------------------------------------------------------------------------------------------
# one page
# ---------------------------------------------------------------------------------------------

def _layout(rng, width_px, lines, em):
    """The glyphs of a page's text block: (glyph index, x, line) per glyph, x in pixels from
    the block's left edge, for `lines` lines of at most width_px pixels at x-height `em`."""
    _, _, _, advances = _table()
    letters = list(LETTER_FREQUENCIES)
    letter_p = np.array(list(LETTER_FREQUENCIES.values()))
    letter_p /= letter_p.sum()
    length_p = np.asarray(WORD_LENGTH_FREQUENCIES) / sum(WORD_LENGTH_FREQUENCIES)
    full_stop = list(GLYPHS).index(".")
    glyph_of_letter = np.array([list(GLYPHS).index(ch) for ch in letters])
    # enough words that every line overflows; the words past the right edge are dropped
    per_line = int(width_px / (em * (_SPACE + advances.min()))) + 2
    n_words = lines * per_line
    stop = rng.random(n_words) < _FULL_STOP
    lengths = rng.choice(np.arange(1, len(length_p) + 1), size=n_words, p=length_p) + stop
    word = np.repeat(np.arange(n_words), lengths)                         # each glyph's word
    first = np.cumsum(lengths) - lengths                                  # a word's first glyph
    glyph = glyph_of_letter[rng.choice(len(letters), size=len(word), p=letter_p)]
    glyph[(first + lengths - 1)[stop]] = full_stop                        # the stop: last glyph
    # x of each glyph: within its word, plus the word's x within its line
    advance = advances[glyph] * em                                        # (glyphs,) pixels
    before = np.cumsum(advance) - advance
    in_word = before - before[first][word]
    word_width = np.bincount(word, weights=advance, minlength=n_words)
    line_of_word = np.arange(n_words) // per_line
    word_x = np.cumsum(word_width + _SPACE * em) - (word_width + _SPACE * em)
    word_x -= word_x[np.arange(lines) * per_line][line_of_word]           # from the line's start
    # paragraphs: a line that ends early; the next line starts indented
    ends = rng.random(lines) < _PARAGRAPH_END
    limit = np.where(ends, rng.uniform(0.2, 0.9, lines), 1.0) * width_px
    indent = np.concatenate([[0.0], np.where(ends[:-1], 2.5 * em, 0.0)])
    word_x += indent[line_of_word]
    keep = (word_x + word_width <= limit[line_of_word])[word]
    glyph_x = word_x[word] + in_word
    return glyph[keep], glyph_x[keep], line_of_word[word[keep]]


def _clean_page(rng, height, width):
    """(ink (H, W) in [0, 1]: how much each pixel is covered by a stroke, clean page (H, W))."""
    points, starts, counts, _ = _table()
    scale = width / 540.0                                   # Kaggle's pages are 540 wide
    em = max(3.0, rng.uniform(5.5, 7.5) * scale)            # x-height in pixels
    pitch = em * rng.uniform(2.5, 3.3)                      # baseline to baseline
    left, right = rng.uniform(2.5, 6.0, 2) * em
    top = rng.uniform(2.0, 4.5) * em
    lines = max(1, int((height - top - 2.0 * em) // pitch))
    glyph, x, line = _layout(rng, width - left - right, lines, em)
    # every glyph's points, placed: repeat each glyph's row once per point of its skeleton
    n = counts[glyph]
    owner = np.repeat(np.arange(len(glyph)), n)
    point = starts[glyph][owner] + np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n)
    gx, gy = points[point, 0], points[point, 1]
    slant = rng.uniform(-0.05, 0.25) if rng.random() < 0.3 else 0.0
    wobble = rng.normal(0.0, 0.04, len(glyph))[owner]       # baselines are not perfect
    xs = left + x[owner] + em * (gx + slant * (1.0 - gy))
    ys = top + 0.75 * em + line[owner] * pitch + em * (gy + wobble)
    skew = np.deg2rad(rng.uniform(-0.5, 0.5))               # the page lies a bit askew
    cx, cy = width / 2.0, height / 2.0
    xs, ys = (cx + np.cos(skew) * (xs - cx) - np.sin(skew) * (ys - cy),
              cy + np.sin(skew) * (xs - cx) + np.cos(skew) * (ys - cy))
    # ink: a point weighs its spacing times the gain times sqrt(2 pi) sigma, so that after the
    # blur a straight stroke peaks at about `gain`; saturating it sets the stroke's weight
    sigma = rng.uniform(0.45, 0.65) * max(1.0, em / 6.5)
    gain = rng.uniform(0.8, 1.3)
    sigma_with_splat = np.sqrt(sigma ** 2 + 1.0 / 6.0)      # + the bilinear tent's variance
    weight = _POINT_SPACING * em * gain * np.sqrt(2 * np.pi) * sigma_with_splat
    ink = np.clip(_blur(_splat(xs, ys, weight, height, width), sigma), 0.0, 1.0)
    ink[ink < 0.5 / 255] = 0.0                              # under half a grey level: paper
    darkness = rng.uniform(0.0, 0.12)                       # the clean ink's grey level
    return ink, 1.0 - ink * (1.0 - darkness)


def _stains(rng, height, width, yy, xx):
    """Coffee stains: the factor (H, W) in (0, 1] that darkens the paper under them."""
    factor = np.ones((height, width), np.float32)
    size = min(height, width)
    for _ in range(rng.choice(4, p=[0.15, 0.4, 0.3, 0.15])):
        cy, cx = rng.uniform(-0.1, 1.1) * height, rng.uniform(-0.1, 1.1) * width
        radius = rng.uniform(0.15, 0.45) * size
        aspect = rng.uniform(0.75, 1.3)                     # an ellipse, wide or tall
        angle = np.arctan2(yy - cy, (xx - cx) * aspect)
        distance = np.hypot(yy - cy, (xx - cx) * aspect)
        # a ragged rim: the radius varies with the angle by harmonics 2 to 5, (4, 1, 1) each
        harmonics = np.arange(2, 6, dtype=np.float32)[:, None, None]
        amplitudes = rng.uniform(-0.08, 0.08, (4, 1, 1)).astype(np.float32)
        phases = rng.uniform(0, 2 * np.pi, (4, 1, 1)).astype(np.float32)
        rim = radius * (1 + (amplitudes * np.cos(harmonics * angle + phases)).sum(axis=0))
        edge = rng.uniform(0.02, 0.08) * radius             # softness of the rim
        inside = 0.5 * (1 + np.tanh((rim - distance) / edge))
        ring = np.exp(-0.5 * ((distance - rim + edge) / (1.5 * edge)) ** 2)   # the tide mark
        strength = rng.uniform(0.1, 0.4)
        factor *= 1 - strength * (rng.uniform(0.3, 0.7) * inside + ring)
    return np.clip(factor, 0.2, 1.0)


def _creases(rng, height, width, yy, xx):
    """Creases and folds: (H, W) brightness to add (a thin dark line, shading across it)."""
    shade = np.zeros((height, width), np.float32)
    for _ in range(rng.choice(3, p=[0.35, 0.45, 0.2])):
        # folds of a letter run along or across the page; wrinkles go any way
        angle = rng.choice([0.0, np.pi / 2]) + rng.normal(0, 0.08) if rng.random() < 0.6 \
            else rng.uniform(0, np.pi)
        py, px = rng.uniform(0.1, 0.9) * height, rng.uniform(0.1, 0.9) * width
        d = (xx - px) * -math.sin(angle) + (yy - py) * math.cos(angle)   # signed distance, px
        line_width = rng.uniform(0.5, 1.2)
        spread = rng.uniform(4.0, 25.0)
        shade -= rng.uniform(0.06, 0.25) * np.exp(-0.5 * (d / line_width) ** 2)
        # one side lit, the other shadowed: d exp(-d^2 / 2 s^2), peaking at +-amplitude
        shade += rng.uniform(0.02, 0.08) * (d / spread) * np.exp(0.5 - 0.5 * (d / spread) ** 2)
    return shade


def _dirty_page(rng, ink, height, width):
    """The clean page's ink on worn paper, scanned: (H, W) in [0, 1]."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    direction = rng.uniform(0, 2 * np.pi)
    lighting = rng.uniform(0.0, 0.12) * (math.cos(direction) * (xx / width - 0.5)
                                         + math.sin(direction) * (yy / height - 0.5))
    paper = (rng.uniform(0.78, 0.95) + lighting
             + rng.uniform(0.01, 0.04) * _smooth_noise(rng, height, width, 12))
    paper = paper * _stains(rng, height, width, yy, xx) + _creases(rng, height, width, yy, xx)
    ink_grey = rng.uniform(0.05, 0.3)                       # the scanned ink is not black
    page = paper * (1.0 - ink) + ink_grey * ink
    page = _blur(page, rng.uniform(0.4, 0.9))
    page += rng.uniform(0.01, 0.04) * rng.standard_normal((height, width), dtype=np.float32)
    return np.clip(page, 0.0, 1.0)


# ---------------------------------------------------------------------------------------------
# the pages
# ---------------------------------------------------------------------------------------------

def _positive_int(value, name, least):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < least:
        raise ValueError(f"{name}: expected an integer >= {least}, got {value!r}")
    return int(value)


def make_documents(n, height=258, width=540, seed=0, dtype=np.float32):
    """`n` scanned pages of text as (dirty, clean), each (n, 1, height, width) in [0, 1] with
    white paper = 1 and dark ink; dirty[k] is clean[k] stained, creased, textured and blurred.

    Deterministic: page k depends only on (seed, k). Kaggle's pages are 540 wide and 258 or 420
    tall; the font scales with the width. dtype: a float type (pages are computed in float32).
    See the module docstring for what is simulated.
    """
    n = _positive_int(n, "n", 0)
    height, width = _positive_int(height, "height", 32), _positive_int(width, "width", 32)
    seed = _positive_int(seed, "seed", 0)
    dtype = np.dtype(dtype)
    if not np.issubdtype(dtype, np.floating):
        raise TypeError(f"dtype: expected a floating-point type, got {dtype}")
    dirty = np.empty((n, 1, height, width), dtype)
    clean = np.empty((n, 1, height, width), dtype)
    for k, child in enumerate(np.random.SeedSequence(seed).spawn(n)):
        rng = np.random.default_rng(child)
        ink, clean[k, 0] = _clean_page(rng, height, width)
        dirty[k, 0] = _dirty_page(rng, ink, height, width)
    return dirty, clean
