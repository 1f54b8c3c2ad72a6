"""PNG files with nothing but zlib, struct and NumPy.

Why our own: the engine writes sample grids and reconstructions during training, and reads
small image folders, without requiring Pillow. The format is simple enough to show in full:

    file   = 8-byte signature, then chunks
    chunk  = length (uint32 BE) | type (4 ASCII bytes) | data | CRC-32 of type+data (uint32 BE)
    IHDR   = width, height (uint32 BE), bit depth, color type, compression=0, filter=0, interlace
    IDAT   = one zlib stream (possibly split over several IDAT chunks) holding, for each row,
             one filter-type byte followed by the row's filtered bytes
    IEND   = end marker

Color types: 0 gray, 2 RGB, 3 palette (PLTE chunk, optional tRNS alpha), 4 gray+alpha, 6 RGBA.
Row filters (applied per byte, `a` = byte one pixel to the left, `b` = byte above,
`c` = above-left): 0 None, 1 Sub (x + a), 2 Up (x + b), 3 Average (x + (a + b) // 2),
4 Paeth (x + whichever of a, b, c is closest to a + b - c). All arithmetic is modulo 256.

Public functions:
    write_png(path, array)       uint8 or float [0, 1] arrays of shape (H, W), (H, W, 1),
                                 (H, W, 3), (H, W, 4); written atomically (temp file, os.replace)
    read_png(path, max_pixels=None) -> ndarray
                                 8/16-bit gray, gray+alpha, RGB, RGBA; palette and 1/2/4-bit gray
                                 too; non-interlaced only. Returns (H, W) for gray, else (H, W, C)
                                 with C = 2 (gray+alpha), 3 (RGB) or 4 (RGBA); dtype uint8
                                 (uint16 for 16-bit files). Regular files only; images over
                                 MAX_IMAGE_PIXELS are refused from the header
    image_grid(images, nrow=8, padding=2, pad_value=1.0) -> (H, W) or (H, W, 3) float array,
                                 tiles (N, C, H, W) images like torchvision.utils.make_grid

Reading is bounded: IHDR must come first and is checked (pixel limit included) before any
image data is touched; every chunk length is checked against the bytes left in the file; the
IDAT stream is inflated into at most the bytes the header implies (data beyond that is
ignored, as Pillow does), so a small file cannot expand into gigabytes.
"""

from __future__ import annotations

import io
import os
import struct
import zlib

import numpy as np

from .atomic import atomic_write
from .files import open_regular

__all__ = ["write_png", "read_png", "image_grid", "PNGFormatError", "MAX_IMAGE_PIXELS"]

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# color type -> channels per pixel
_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
_COLOR_TYPE_FOR_CHANNELS = {1: 0, 2: 4, 3: 2, 4: 6}
_ALLOWED_DEPTHS = {0: (1, 2, 4, 8, 16), 2: (8, 16), 3: (1, 2, 4, 8), 4: (8, 16), 6: (8, 16)}

# Refuse images with more pixels than this (Pillow's MAX_IMAGE_PIXELS): a few KiB of zlib data
# can declare gigabytes of pixels. read_png(max_pixels=N) overrides it per call; None: no limit.
MAX_IMAGE_PIXELS = 89_478_485
# The chunks kept in memory, with the lengths the spec allows them.
_CHUNK_LENGTHS = {
    b"IHDR": (lambda n: n == 13, "expected 13"),
    b"PLTE": (lambda n: n % 3 == 0 and 3 <= n <= 768,
              "a palette is 1 to 256 RGB entries, a multiple of 3 from 3 to 768 bytes"),
    b"tRNS": (lambda n: n <= 256, "expected at most 256 (one alpha byte per palette entry)"),
}
_PIECE = 1 << 16  # chunks are read in pieces of 64 KiB


class PNGFormatError(ValueError):
    """A PNG file is malformed, or uses a feature this reader does not handle."""


# ---------------------------------------------------------------------------------------------
# writing
# ---------------------------------------------------------------------------------------------

def _to_uint8(array) -> np.ndarray:
    a = np.asarray(array)
    if a.dtype == np.uint8:
        return a
    if a.dtype == np.bool_:
        return a.astype(np.uint8) * 255
    if np.issubdtype(a.dtype, np.floating):
        if a.size and not np.all(np.isfinite(a)):
            raise ValueError("write_png: array contains NaN or infinite values")
        return (np.clip(a, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    if np.issubdtype(a.dtype, np.integer):
        if a.size and (a.min() < 0 or a.max() > 255):
            raise ValueError(
                f"write_png: integer array of dtype {a.dtype} must hold values in [0, 255], "
                f"found [{a.min()}, {a.max()}]")
        return a.astype(np.uint8)
    raise TypeError(f"write_png: unsupported dtype {a.dtype} (use uint8, or float in [0, 1])")


def _chunk(kind: bytes, data: bytes) -> bytes:
    return (struct.pack(">I", len(data)) + kind + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))


def encode_png(array, compress_level: int = 6) -> bytes:
    """The bytes of a PNG file holding `array` (see write_png for the accepted shapes)."""
    a = _to_uint8(array)
    if a.ndim == 2:
        a = a[:, :, None]
    if a.ndim != 3 or a.shape[2] not in _COLOR_TYPE_FOR_CHANNELS:
        raise ValueError(
            f"write_png: expected shape (H, W), (H, W, 1), (H, W, 3) or (H, W, 4), got {a.shape}")
    h, w, c = a.shape
    if h < 1 or w < 1:
        raise ValueError(f"write_png: image must be at least 1x1, got {h}x{w}")
    ihdr = struct.pack(">IIBBBBB", w, h, 8, _COLOR_TYPE_FOR_CHANNELS[c], 0, 0, 0)
    # filter type 0 (None) on every row: a zero byte in front of each row
    raw = np.zeros((h, 1 + w * c), dtype=np.uint8)
    raw[:, 1:] = np.ascontiguousarray(a).reshape(h, w * c)
    idat = zlib.compress(raw.tobytes(), compress_level)
    return (PNG_SIGNATURE + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat)
            + _chunk(b"IEND", b""))


def write_png(path, array, compress_level: int = 6) -> None:
    """Write `array` as an 8-bit PNG at `path`, atomically.

    array: uint8 (0-255), bool, integer in [0, 255], or float in [0, 1] (clipped, rounded);
    shape (H, W) or (H, W, 1) -> gray, (H, W, 3) -> RGB, (H, W, 4) -> RGBA.
    The bytes go to a temporary file in the same directory, then os.replace() moves it into
    place, so a reader never sees a half-written file.
    """
    atomic_write(path, encode_png(array, compress_level))


# ---------------------------------------------------------------------------------------------
# reading
# ---------------------------------------------------------------------------------------------

def _unfilter(data: bytes, height: int, row_bytes: int, bpp: int, name: str) -> np.ndarray:
    """Undo the per-row filters; returns the raw bytes as (height, row_bytes) uint8."""
    expected = height * (row_bytes + 1)
    if len(data) < expected:
        raise PNGFormatError(
            f"{name}: image data too short: expected {expected} bytes after decompression, "
            f"found {len(data)}")
    rows = np.frombuffer(data, dtype=np.uint8, count=expected).reshape(height, row_bytes + 1)
    filters = rows[:, 0]
    bad = filters[filters > 4]
    if bad.size:
        raise PNGFormatError(f"{name}: unknown row filter type {int(bad[0])}")
    out = np.zeros((height, row_bytes), dtype=np.uint8)
    prev = np.zeros(row_bytes, dtype=np.uint8)
    for y in range(height):
        line = rows[y, 1:]
        ft = filters[y]
        if ft == 0:
            cur = line.copy()
        elif ft == 1:  # Sub: running sum along each of the bpp byte lanes, modulo 256
            n_pix = -(-row_bytes // bpp)
            padded = np.zeros(n_pix * bpp, dtype=np.uint8)
            padded[:row_bytes] = line
            cur = np.cumsum(padded.reshape(n_pix, bpp), axis=0, dtype=np.uint8)
            cur = cur.reshape(-1)[:row_bytes]
        elif ft == 2:  # Up
            cur = line + prev  # uint8 arithmetic wraps modulo 256
        else:  # Average and Paeth depend on the byte just decoded: a plain loop over the row
            cur_b = bytearray(row_bytes)
            lb = line.tobytes()
            pb = prev.tobytes()
            if ft == 3:
                for i in range(row_bytes):
                    a = cur_b[i - bpp] if i >= bpp else 0
                    cur_b[i] = (lb[i] + ((a + pb[i]) >> 1)) & 0xFF
            else:
                for i in range(row_bytes):
                    if i >= bpp:
                        a = cur_b[i - bpp]
                        c = pb[i - bpp]
                    else:
                        a = c = 0
                    b = pb[i]
                    p = a + b - c
                    pa, pbb, pc = abs(p - a), abs(p - b), abs(p - c)
                    if pa <= pbb and pa <= pc:
                        pred = a
                    elif pbb <= pc:
                        pred = b
                    else:
                        pred = c
                    cur_b[i] = (lb[i] + pred) & 0xFF
            cur = np.frombuffer(bytes(cur_b), dtype=np.uint8)
        out[y] = cur
        prev = out[y]
    return out


def too_many_pixels(name, width: int, height: int, limit: int) -> str:
    """The message for an image over the pixel limit (shared with the Pillow path)."""
    return (f"{name}: image is {width}x{height} ({width * height:,} pixels), more than the "
            f"limit of {limit:,} pixels (a decompression bomb?); refused before decoding. "
            "Pass max_pixels=N to allow it, or set aecore.io.png.MAX_IMAGE_PIXELS")


def _check_header(body: bytes, name, max_pixels):
    """Validate IHDR -> (width, height, depth, color type); refuses oversized images here,
    before any image data is decompressed."""
    width, height, depth, ctype, comp, filt, interlace = struct.unpack(">IIBBBBB", body)
    if ctype not in _CHANNELS:
        raise PNGFormatError(f"{name}: unknown color type {ctype}")
    if depth not in _ALLOWED_DEPTHS[ctype]:
        raise PNGFormatError(f"{name}: bit depth {depth} is not valid for color type {ctype}")
    if comp != 0 or filt != 0:
        raise PNGFormatError(f"{name}: unknown compression ({comp}) or filter method ({filt})")
    if interlace != 0:
        raise PNGFormatError(
            f"{name}: interlaced (Adam7) PNGs are not supported by the built-in reader; "
            "install Pillow (pip install aecore[images]) or save the image non-interlaced")
    if width == 0 or height == 0:
        raise PNGFormatError(f"{name}: zero image size {width}x{height}")
    limit = MAX_IMAGE_PIXELS if max_pixels is None else max_pixels
    if limit is not None and width * height > limit:
        raise PNGFormatError(too_many_pixels(name, width, height, limit))
    return width, height, depth, ctype


def _pieces(f, length: int, kind: bytes, pos: int, name):
    """A chunk's body in pieces of at most _PIECE bytes, so no chunk is held whole."""
    left = length
    while left:
        piece = f.read(min(left, _PIECE))
        if not piece:
            raise PNGFormatError(f"{name}: truncated {kind.decode('latin-1')} chunk at byte {pos}")
        left -= len(piece)
        yield piece


def _read_chunks(f, size: int, name, max_pixels):
    """Walk the chunks of a PNG file -> (header, palette, trns, inflated image data).

    Reads are bounded by the chunk lengths, each checked against the bytes left in the file,
    and the IDAT stream is inflated into at most the number of bytes the header implies
    (zlib's max_length), so neither a huge declared size nor a lying header can exhaust memory.
    """
    header = palette = trns = inflater = None
    raw = bytearray()
    expected = 0
    pos = 8
    while True:
        head = f.read(8)
        if not head:
            if header is None:
                raise PNGFormatError(f"{name}: no IHDR chunk")
            if inflater is None:
                raise PNGFormatError(f"{name}: no IDAT chunk (no image data)")
            raise PNGFormatError(f"{name}: no IEND chunk (truncated file?)")
        if len(head) < 8:
            raise PNGFormatError(f"{name}: truncated chunk header at byte {pos}")
        length, kind = struct.unpack(">I4s", head)
        label = kind.decode("latin-1")
        left = size - pos - 12
        if length > left:
            raise PNGFormatError(f"{name}: truncated {label} chunk at byte {pos}: it declares "
                                 f"{length} bytes, the file has {max(left, 0)} left")
        if header is None and kind != b"IHDR":
            raise PNGFormatError(f"{name}: the first chunk is {label}, expected IHDR")
        if kind in _CHUNK_LENGTHS:
            ok, rule = _CHUNK_LENGTHS[kind]
            if not ok(length):
                raise PNGFormatError(f"{name}: {label} chunk has length {length}; {rule}")
        crc = zlib.crc32(kind)
        body = b""
        broken = None  # a zlib error, reported after the CRC check (a bad CRC explains it)
        if kind == b"IDAT":
            if inflater is None:
                inflater = zlib.decompressobj()
                width, height, depth, ctype = header
                row_bytes = (width * _CHANNELS[ctype] * depth + 7) // 8
                expected = height * (row_bytes + 1)
            for piece in _pieces(f, length, kind, pos, name):
                crc = zlib.crc32(piece, crc)
                try:
                    while piece and not broken and len(raw) < expected and not inflater.eof:
                        raw += inflater.decompress(piece, expected - len(raw))
                        piece = inflater.unconsumed_tail
                except zlib.error as e:
                    broken = e
        else:  # small known chunks are kept; any other is only checked, piece by piece
            keep = kind in _CHUNK_LENGTHS
            for piece in _pieces(f, length, kind, pos, name):
                crc = zlib.crc32(piece, crc)
                if keep:
                    body += piece
        crc_bytes = f.read(4)
        if len(crc_bytes) != 4:
            raise PNGFormatError(f"{name}: truncated {label} chunk at byte {pos}")
        if struct.unpack(">I", crc_bytes)[0] != crc & 0xFFFFFFFF:
            raise PNGFormatError(f"{name}: CRC mismatch in {label} chunk")
        if broken:
            raise PNGFormatError(f"{name}: corrupt zlib stream in IDAT: {broken}")
        pos += 12 + length
        if kind == b"IHDR":
            if header is not None:
                raise PNGFormatError(f"{name}: more than one IHDR chunk")
            header = _check_header(body, name, max_pixels)
        elif kind == b"PLTE":
            palette = np.frombuffer(body, dtype=np.uint8).reshape(-1, 3)
        elif kind == b"tRNS":
            trns = body
        elif kind == b"IEND":
            if inflater is None:
                raise PNGFormatError(f"{name}: no IDAT chunk (no image data)")
            return header, palette, trns, raw


def _decode(f, size: int, name, max_pixels) -> np.ndarray:
    signature = f.read(8)
    if signature != PNG_SIGNATURE:
        raise PNGFormatError(f"{name}: not a PNG file (bad signature {signature!r})")
    (width, height, depth, ctype), palette, trns, raw = _read_chunks(f, size, name, max_pixels)
    channels = _CHANNELS[ctype]
    bits_per_pixel = channels * depth
    row_bytes = (width * bits_per_pixel + 7) // 8
    bpp = max(1, bits_per_pixel // 8)
    rows = _unfilter(raw, height, row_bytes, bpp, name)

    if depth == 16:
        pix = rows.view(">u2").astype(np.uint16).reshape(height, width, channels)
    elif depth == 8:
        pix = rows.reshape(height, width, channels)
    else:  # 1, 2 or 4 bits per sample, one channel (gray or palette index), MSB first
        bits = np.unpackbits(rows, axis=1)[:, :width * depth].reshape(height, width, depth)
        weights = (1 << np.arange(depth - 1, -1, -1)).astype(np.uint8)
        pix = (bits * weights).sum(axis=2, dtype=np.uint8)[:, :, None]
        if ctype == 0:  # scale gray to 0-255 like every viewer does
            pix = (pix.astype(np.uint16) * 255 // ((1 << depth) - 1)).astype(np.uint8)

    if ctype == 3:
        if palette is None:
            raise PNGFormatError(f"{name}: palette image without a PLTE chunk")
        idx = pix[:, :, 0]
        if idx.max() >= len(palette):
            raise PNGFormatError(f"{name}: palette index {int(idx.max())} out of range "
                                 f"({len(palette)} entries)")
        rgb = palette[idx]
        if trns is not None:
            alpha = np.full(len(palette), 255, dtype=np.uint8)
            t = np.frombuffer(trns, dtype=np.uint8)[:len(palette)]
            alpha[:len(t)] = t
            return np.concatenate([rgb, alpha[idx][:, :, None]], axis=2)
        return rgb
    if channels == 1:
        return np.ascontiguousarray(pix[:, :, 0])
    return np.ascontiguousarray(pix)


def decode_png(data: bytes, name: str = "<bytes>", max_pixels=None) -> np.ndarray:
    """Decode the bytes of a PNG file (see read_png)."""
    return _decode(io.BytesIO(data), len(data), name, max_pixels)


def read_png(path, max_pixels=None) -> np.ndarray:
    """Read a PNG file into a uint8 array (uint16 for 16-bit files).

    Returns (H, W) for gray, (H, W, 2) gray+alpha, (H, W, 3) RGB, (H, W, 4) RGBA; palette
    images come back as RGB (RGBA when they carry transparency). Interlaced files raise
    PNGFormatError (use Pillow for those).
    max_pixels: an image with more pixels is refused from its header, before decompressing
    (a decompression bomb guard); None: the module's MAX_IMAGE_PIXELS (None there: no limit).
    Only regular files are read: a FIFO, a device or a directory raises PNGFormatError.
    """
    path = os.fspath(path)
    with open_regular(path, PNGFormatError) as f:
        return _decode(f, os.fstat(f.fileno()).st_size, path, max_pixels)


# ---------------------------------------------------------------------------------------------
# grids
# ---------------------------------------------------------------------------------------------

def image_grid(images, nrow: int = 8, padding: int = 2, pad_value: float = 1.0) -> np.ndarray:
    """Tile a batch of images into one picture, like torchvision.utils.make_grid.

    images: (N, C, H, W) with C = 1 or 3 (or (N, H, W), taken as C = 1); NumPy, or anything
    np.asarray accepts (call .get() on CuPy arrays first). `nrow` images per row; rows of the
    grid = ceil(N / nrow). `padding` pixels of `pad_value` around and between images.
    Returns float32 (H', W') for one channel, (H', W', 3) for three, with
    H' = rows * (H + padding) + padding and W' = min(N, nrow) * (W + padding) + padding,
    ready for write_png.
    """
    x = np.asarray(images)
    if x.ndim == 3:
        x = x[:, None]
    if x.ndim != 4 or x.shape[1] not in (1, 3):
        raise ValueError(f"image_grid: images must be (N, C, H, W) with C in (1, 3) or "
                         f"(N, H, W); got shape {x.shape}")
    if not isinstance(nrow, (int, np.integer)) or nrow < 1:
        raise ValueError(f"image_grid: nrow must be an integer >= 1, got {nrow!r}")
    if not isinstance(padding, (int, np.integer)) or padding < 0:
        raise ValueError(f"image_grid: padding must be an integer >= 0, got {padding!r}")
    n, c, h, w = x.shape
    if n == 0:
        raise ValueError("image_grid: no images to tile (N == 0)")
    if x.dtype == np.uint8:
        x = x.astype(np.float32) / 255.0
    cols = min(nrow, n)
    rows = -(-n // cols)
    grid = np.full((c, rows * (h + padding) + padding, cols * (w + padding) + padding),
                   pad_value, dtype=np.float32)
    for k in range(n):
        r, q = divmod(k, cols)
        top = padding + r * (h + padding)
        left = padding + q * (w + padding)
        grid[:, top:top + h, left:left + w] = x[k]
    if c == 1:
        return grid[0]
    return np.ascontiguousarray(grid.transpose(1, 2, 0))
