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
Reads are bounded by the header: the declared size is checked against the file's size before
the data is read, and a gzip stream is inflated no further than the header says it holds.
"""

from __future__ import annotations

import gzip
import io
import math
import os
import struct
import tempfile
import zlib

import numpy as np

from ..io.files import open_regular

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
# NumPy 1 arrays have at most 32 dimensions (NumPy 2: 64); the writer allows up to 255.
_MAX_NDIM = 32
# Deflate never inflates one byte into more than 1032 bytes: a bound on what a gzip file holds.
_MAX_DEFLATE_RATIO = 1032


class IDXFormatError(ValueError):
    """An IDX file is malformed: bad magic, unknown type, wrong length, corrupt gzip..."""


def _type_name(dt: np.dtype) -> str:
    return np.dtype(dt).newbyteorder("=").name


def _corrupt_gzip(name, e):
    return IDXFormatError(f"{name}: corrupt or truncated gzip stream ({e}); re-download or "
                          "re-extract the file")


def _read_exactly(stream, n: int, name: str) -> bytes:
    """Up to n bytes from stream (fewer only at its end); gzip errors become IDXFormatError."""
    try:
        return stream.read(n)
    except (OSError, EOFError, zlib.error) as e:  # BadGzipFile is an OSError
        raise _corrupt_gzip(name, e) from None


def _read_idx(stream, size: int, compressed: bool, name: str) -> np.ndarray:
    """Read one IDX file from `stream`, which holds `size` bytes on disk.

    Every read is bounded by what the header declares, and the declared size is checked
    against what the file can hold before any data is read: exactly `size` bytes for a plain
    file, at most _MAX_DEFLATE_RATIO times `size` for a gzip file.
    """
    head = _read_exactly(stream, 4, name)
    if len(head) < 4:
        raise IDXFormatError(
            f"{name}: file too short for an IDX header ({len(head)} bytes, need at least 4)")
    zero0, zero1, code, ndim = head
    if zero0 != 0 or zero1 != 0:
        raise IDXFormatError(
            f"{name}: bad magic number: first two bytes are 0x{zero0:02x} 0x{zero1:02x}, "
            "expected 0x00 0x00 (not an IDX file?)")
    if code not in IDX_TYPES:
        known = ", ".join(f"0x{k:02X} {_type_name(v)}" for k, v in IDX_TYPES.items())
        raise IDXFormatError(f"{name}: unknown IDX type code 0x{code:02X} (known: {known})")
    if ndim == 0:
        raise IDXFormatError(f"{name}: IDX header declares 0 dimensions")
    if ndim > _MAX_NDIM:
        raise IDXFormatError(
            f"{name}: IDX header declares {ndim} dimensions; at most {_MAX_NDIM} are supported "
            "(MNIST-style files have 1 to 4)")
    header_len = 4 + 4 * ndim
    dims = _read_exactly(stream, 4 * ndim, name)
    if len(dims) < 4 * ndim:
        raise IDXFormatError(
            f"{name}: truncated header: {ndim} dimensions need {header_len} header bytes, "
            f"file has {4 + len(dims)}")
    shape = struct.unpack(">" + "I" * ndim, dims)
    dtype = IDX_TYPES[code]
    expected = math.prod(shape) * dtype.itemsize  # Python ints: no overflow
    what = f"{expected} bytes of {_type_name(dtype)} data for shape {tuple(shape)}"
    if not compressed:
        found = size - header_len
        if found != expected:
            problem = "truncated file" if found < expected else "trailing bytes after the data"
            raise IDXFormatError(f"{name}: expected {what}, found {found} ({problem})")
    elif expected > size * _MAX_DEFLATE_RATIO:
        raise IDXFormatError(
            f"{name}: expected {what}, but {size} bytes of gzip can hold at most "
            f"{size * _MAX_DEFLATE_RATIO} (truncated file or corrupt header)")
    data = _read_exactly(stream, expected, name)
    if len(data) < expected:
        raise IDXFormatError(f"{name}: expected {what}, found {len(data)} (truncated file)")
    if compressed and _read_exactly(stream, 1, name):  # also reads on to the gzip CRC check
        raise IDXFormatError(
            f"{name}: expected {what}, found more (trailing bytes after the data)")
    try:
        arr = np.frombuffer(data, dtype=dtype).reshape(shape)
    except ValueError:  # e.g. (0, 2**32 - 1, 2**32 - 1): empty, yet too big for NumPy
        raise IDXFormatError(f"{name}: shape {tuple(shape)} is too large for a NumPy "
                             "array") from None
    return arr.astype(dtype.newbyteorder("="))  # native byte order, writable copy


def _read_idx_file(f, size: int, name: str) -> np.ndarray:
    """Read an IDX file from the open binary file `f` of `size` bytes, gzip or not."""
    compressed = f.read(2) == _GZIP_MAGIC
    f.seek(0)
    if not compressed:
        return _read_idx(f, size, False, name)
    with gzip.GzipFile(fileobj=f, mode="rb") as stream:
        return _read_idx(stream, size, True, name)


def parse_idx(raw: bytes, name: str = "<bytes>") -> np.ndarray:
    """Parse the bytes of an IDX file (gzip-compressed or not) into a native-endian array."""
    return _read_idx_file(io.BytesIO(raw), len(raw), name)


def read_idx(path) -> np.ndarray:
    """Read an IDX file (raw or gzip-compressed) into a NumPy array of its declared dtype.

    Only regular files are read: a FIFO, a device or a directory raises IDXFormatError.
    """
    path = os.fspath(path)
    with open_regular(path, IDXFormatError) as f:
        return _read_idx_file(f, os.fstat(f.fileno()).st_size, path)


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
