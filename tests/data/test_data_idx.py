"""IDX files: round trips for every dtype, raw and gzip, and every malformed-file error."""

import gzip
import struct

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

from aecore.data import IDXFormatError, load_idx_pair, read_idx, write_idx
from aecore.data.idx import encode_idx, parse_idx

DTYPES = [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64]


@settings(max_examples=30, deadline=None)
@given(data=st.data(), dtype=st.sampled_from(DTYPES), gz=st.booleans())
def test_round_trip(tmp_path_factory, data, dtype, gz):
    shape = data.draw(hnp.array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=6))
    elements = None
    if np.dtype(dtype).kind == "f":
        elements = st.floats(-1e6, 1e6, width=np.dtype(dtype).itemsize * 8)
    arr = data.draw(hnp.arrays(dtype, shape, elements=elements))
    path = tmp_path_factory.mktemp("idx") / ("a.idx.gz" if gz else "a.idx")
    write_idx(path, arr)
    raw = path.read_bytes()
    assert (raw[:2] == b"\x1f\x8b") == gz
    back = read_idx(path)
    assert back.dtype == np.dtype(dtype)
    assert back.dtype.isnative
    assert back.shape == arr.shape
    np.testing.assert_array_equal(back, arr)
    back[...] = 0  # writable


def test_header_layout_is_big_endian():
    raw = encode_idx(np.array([[1, 2, 3]], dtype=np.int16))
    assert raw[:4] == bytes([0, 0, 0x0B, 2])
    assert struct.unpack(">II", raw[4:12]) == (1, 3)
    assert raw[12:] == b"\x00\x01\x00\x02\x00\x03"


def test_gzip_detected_by_magic_not_name(tmp_path):
    arr = np.arange(12, dtype=np.uint8).reshape(3, 4)
    p = tmp_path / "renamed-without-gz-suffix"
    p.write_bytes(gzip.compress(encode_idx(arr)))
    np.testing.assert_array_equal(read_idx(p), arr)
    q = tmp_path / "not-really.gz"
    q.write_bytes(encode_idx(arr))
    np.testing.assert_array_equal(read_idx(q), arr)


def _write(tmp_path, name, raw):
    p = tmp_path / name
    p.write_bytes(raw)
    return p


def test_bad_magic(tmp_path):
    p = _write(tmp_path, "bad-magic", b"\x01\x02\x08\x01" + struct.pack(">I", 0))
    with pytest.raises(IDXFormatError, match=r"bad-magic: bad magic number.*0x01 0x02"):
        read_idx(p)


def test_bad_type_code(tmp_path):
    p = _write(tmp_path, "bad-type", b"\x00\x00\x07\x01" + struct.pack(">I", 0))
    with pytest.raises(IDXFormatError, match=r"bad-type: unknown IDX type code 0x07"):
        read_idx(p)


def test_zero_dims_and_short_header(tmp_path):
    with pytest.raises(IDXFormatError, match="0 dimensions"):
        read_idx(_write(tmp_path, "zero", b"\x00\x00\x08\x00"))
    with pytest.raises(IDXFormatError, match="too short"):
        read_idx(_write(tmp_path, "tiny", b"\x00\x00"))
    with pytest.raises(IDXFormatError, match="truncated header"):
        read_idx(_write(tmp_path, "hdr", b"\x00\x00\x08\x03" + struct.pack(">I", 5)))


def test_truncated_data(tmp_path):
    raw = encode_idx(np.zeros((10, 28, 28), dtype=np.uint8))
    p = _write(tmp_path, "t10k.gz", gzip.compress(raw[:16 + 1234]))
    msg = r"t10k.gz: expected 7840 bytes of uint8 data for shape \(10, 28, 28\), found 1234"
    with pytest.raises(IDXFormatError, match=msg):
        read_idx(p)


def test_trailing_bytes(tmp_path):
    raw = encode_idx(np.zeros((2, 3), dtype=np.float32)) + b"\x00" * 5
    p = _write(tmp_path, "trail", raw)
    with pytest.raises(IDXFormatError,
                       match=r"trail: expected 24 bytes of float32 data for shape \(2, 3\), "
                             r"found 29 \(trailing bytes"):
        read_idx(p)


def test_corrupt_gzip(tmp_path):
    good = gzip.compress(encode_idx(np.arange(1000, dtype=np.int32)))
    truncated = _write(tmp_path, "cut.gz", good[: len(good) // 2])
    with pytest.raises(IDXFormatError, match=r"cut.gz: corrupt or truncated gzip stream"):
        read_idx(truncated)
    flipped = bytearray(good)
    flipped[len(flipped) // 2] ^= 0xFF
    p = _write(tmp_path, "flip.gz", bytes(flipped))
    with pytest.raises(IDXFormatError, match=r"flip.gz: corrupt or truncated gzip stream"):
        read_idx(p)


def test_error_is_a_value_error():
    with pytest.raises(ValueError):
        parse_idx(b"\xff\xff\x08\x01")


def test_write_rejects_unsupported_dtype(tmp_path):
    with pytest.raises(ValueError, match="no IDX type code"):
        write_idx(tmp_path / "x", np.zeros(3, dtype=np.uint16))


def test_load_idx_pair(tmp_path):
    x = np.random.default_rng(0).integers(0, 256, (5, 28, 28), dtype=np.uint8)
    y = np.arange(5, dtype=np.uint8)
    write_idx(tmp_path / "img.gz", x)
    write_idx(tmp_path / "lab.gz", y)
    xi, yi = load_idx_pair(tmp_path / "img.gz", tmp_path / "lab.gz")
    np.testing.assert_array_equal(xi, x)
    np.testing.assert_array_equal(yi, y)
    write_idx(tmp_path / "lab4", y[:4])
    with pytest.raises(IDXFormatError, match="holds 5 images but .*lab4 holds 4 labels"):
        load_idx_pair(tmp_path / "img.gz", tmp_path / "lab4")
    with pytest.raises(IDXFormatError, match="must be 3-D"):
        load_idx_pair(tmp_path / "lab4", tmp_path / "lab4")
