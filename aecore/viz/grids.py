"""Image grids with labels, and the 3x5 pixel font that writes them.

`labelled_grid` lays images out in rows (aecore.io.png.image_grid), enlarges the tiles until a
28x28 digit is 84x84 (nearest-neighbour, by a whole factor), and names rows and columns in the
font; `draw_text` and `text_width` are the font, used by the NumPy-drawn plots too (plots.py).
Nothing here knows about models: the pictures of a model are made in aecore/viz/__init__.py.
"""

from __future__ import annotations

import numpy as np

from ..io.png import image_grid

__all__ = ["labelled_grid", "tile_scale", "draw_text", "text_width", "MIN_TILE_PIXELS"]


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
