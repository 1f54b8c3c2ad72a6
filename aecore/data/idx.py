"""IDX files: the format of MNIST, Fashion-MNIST and KMNIST.

    bytes 0-1   0x00 0x00                      magic
    byte  2     type code: 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32,
                0x0E float64 (multi-byte values are big-endian)
    byte  3     ndim
    then        ndim sizes, each a big-endian uint32
    then        prod(sizes) values, row-major (C order)

Files are often gzip-compressed (`train-images-idx3-ubyte.gz`); we detect that from the gzip
magic bytes 1f 8b, not from the file name, so a renamed file still loads.

Every check that fails raises IDXFormatError (a ValueError) naming the file and what is wrong.
"""

from __future__ import annotations

import gzip
import os
import struct
import tempfile
import zlib

import numpy as np

__all__ = ["IDXFormatError", "read_idx", "write_idx", "load_idx_pair", "IDX_TYPES"]

# type code -> big-endian dtype
IDX_TYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_CODE_FOR_DTYPE = {np.dtype(v).newbyteorder("="): k for k, v in IDX_TYPES.items()}
_GZIP_MAGIC = b"\x1f\x8b"


class IDXFormatError(ValueError):
    """An IDX file is malformed: bad magic, unknown type, wrong length, corrupt gzip..."""


def _type_name(dt: np.dtype) -> str:
    return np.dtype(dt).newbyteorder("=").name


def _decompress(raw: bytes, name: str) -> bytes:
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as e:  # BadGzipFile is an OSError
        raise IDXFormatError(
            f"{name}: corrupt or truncated gzip stream ({e}); re-download or re-extract "
            "the file") from None


def parse_idx(raw: bytes, name: str = "<bytes>") -> np.ndarray:
    """Parse the bytes of an IDX file (gzip-compressed or not) into a native-endian array."""
    if raw[:2] == _GZIP_MAGIC:
        raw = _decompress(raw, name)
    if len(raw) < 4:
        raise IDXFormatError(
            f"{name}: file too short for an IDX header ({len(raw)} bytes, need at least 4)")
    zero0, zero1, code, ndim = raw[0], raw[1], raw[2], raw[3]
    if zero0 != 0 or zero1 != 0:
        raise IDXFormatError(
            f"{name}: bad magic number: first two bytes are 0x{zero0:02x} 0x{zero1:02x}, "
            "expected 0x00 0x00 (not an IDX file?)")
    if code not in IDX_TYPES:
        known = ", ".join(f"0x{k:02X} {_type_name(v)}" for k, v in IDX_TYPES.items())
        raise IDXFormatError(f"{name}: unknown IDX type code 0x{code:02X} (known: {known})")
    if ndim == 0:
        raise IDXFormatError(f"{name}: IDX header declares 0 dimensions")
    header_len = 4 + 4 * ndim
    if len(raw) < header_len:
        raise IDXFormatError(
            f"{name}: truncated header: {ndim} dimensions need {header_len} header bytes, "
            f"file has {len(raw)}")
    shape = struct.unpack(">" + "I" * ndim, raw[4:header_len])
    dtype = IDX_TYPES[code]
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    found = len(raw) - header_len
    if found != expected:
        what = "truncated file" if found < expected else "trailing bytes after the data"
        raise IDXFormatError(
            f"{name}: expected {expected} bytes of {_type_name(dtype)} data for shape "
            f"{tuple(shape)}, found {found} ({what})")
    arr = np.frombuffer(raw, dtype=dtype, offset=header_len).reshape(shape)
    return arr.astype(dtype.newbyteorder("="))  # native byte order, writable copy


def read_idx(path) -> np.ndarray:
    """Read an IDX file (raw or gzip-compressed) into a NumPy array of its declared dtype."""
    path = os.fspath(path)
    with open(path, "rb") as f:
        raw = f.read()
    return parse_idx(raw, name=path)


def encode_idx(array) -> bytes:
    """The bytes of an (uncompressed) IDX file holding `array`."""
    a = np.asarray(array)
    native = a.dtype.newbyteorder("=")
    if native not in _CODE_FOR_DTYPE:
        raise ValueError(
            f"write_idx: dtype {a.dtype} has no IDX type code (use uint8, int8, int16, "
            "int32, float32 or float64)")
    if a.ndim == 0 or a.ndim > 255:
        raise ValueError(f"write_idx: array must have 1 to 255 dimensions, got {a.ndim}")
    code = _CODE_FOR_DTYPE[native]
    header = struct.pack(">BBBB", 0, 0, code, a.ndim) + struct.pack(">" + "I" * a.ndim, *a.shape)
    body = np.ascontiguousarray(a, dtype=IDX_TYPES[code]).tobytes()
    return header + body


def write_idx(path, array) -> None:
    """Write `array` as an IDX file; gzip-compressed when `path` ends with '.gz'.

    Written atomically (temporary file in the same directory, then os.replace).
    """
    path = os.fspath(path)
    data = encode_idx(array)
    if path.endswith(".gz"):
        data = gzip.compress(data, compresslevel=6, mtime=0)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def load_idx_pair(images_path, labels_path):
    """Load an images file and its labels file: -> (images (N, H, W), labels (N,)).

    For MNIST-like sets both are uint8: images (N, 28, 28) with values 0-255, labels 0-9.
    Checks that the images are 3-D, the labels 1-D, and that both hold the same N.
    """
    images = read_idx(images_path)
    labels = read_idx(labels_path)
    if images.ndim != 3:
        raise IDXFormatError(
            f"{os.fspath(images_path)}: an images file must be 3-D (N, H, W), "
            f"got shape {images.shape}")
    if labels.ndim != 1:
        raise IDXFormatError(
            f"{os.fspath(labels_path)}: a labels file must be 1-D (N,), got shape {labels.shape}")
    if images.shape[0] != labels.shape[0]:
        raise IDXFormatError(
            f"{os.fspath(images_path)} holds {images.shape[0]} images but "
            f"{os.fspath(labels_path)} holds {labels.shape[0]} labels")
    return images, labels
