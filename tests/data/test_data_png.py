"""The zlib + struct PNG writer and reader, and image_grid."""

import os
import struct
import zlib

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

from aecore.io.png import PNGFormatError, decode_png, encode_png, image_grid, read_png, write_png


@settings(max_examples=30, deadline=None)
@given(data=st.data(), channels=st.sampled_from([None, 1, 2, 3, 4]))
def test_round_trip_uint8(tmp_path_factory, data, channels):
    h = data.draw(st.integers(1, 9))
    w = data.draw(st.integers(1, 9))
    shape = (h, w) if channels is None else (h, w, channels)
    arr = data.draw(hnp.arrays(np.uint8, shape))
    path = tmp_path_factory.mktemp("png") / "a.png"
    write_png(path, arr)
    back = read_png(path)
    expected = arr[:, :, 0] if channels == 1 else arr
    np.testing.assert_array_equal(back, expected)


def test_float_input_is_scaled_and_clipped(tmp_path):
    arr = np.array([[0.0, 0.5, 1.0, 2.0, -1.0]], dtype=np.float32)
    write_png(tmp_path / "f.png", arr)
    np.testing.assert_array_equal(read_png(tmp_path / "f.png"), [[0, 128, 255, 255, 0]])


def test_write_is_atomic_and_leaves_no_temp_file(tmp_path):
    write_png(tmp_path / "a.png", np.zeros((2, 2)))
    assert os.listdir(tmp_path) == ["a.png"]


def test_bad_shapes_and_values(tmp_path):
    with pytest.raises(ValueError, match="expected shape"):
        write_png(tmp_path / "x.png", np.zeros((2, 2, 5)))
    with pytest.raises(ValueError, match="NaN"):
        write_png(tmp_path / "x.png", np.full((2, 2), np.nan))
    with pytest.raises(ValueError, match=r"\[0, 255\]"):
        write_png(tmp_path / "x.png", np.full((2, 2), 300, dtype=np.int32))


def _png(width, height, depth, ctype, rows, filters=None, extra=b"", interlace=0):
    """Build a PNG by hand: rows are raw (unfiltered) byte strings; filters per row."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(
            ">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    body = b"".join(bytes([f]) + r for f, r in zip(filters or [0] * len(rows), rows))
    ihdr = struct.pack(">IIBBBBB", width, height, depth, ctype, 0, 0, interlace)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + extra
            + chunk(b"IDAT", zlib.compress(body)) + chunk(b"IEND", b""))


def _filter_row(ft, row, prev, bpp):
    """Reference PNG filter (encoder side) for one row."""
    out = bytearray(len(row))
    for i in range(len(row)):
        a = row[i - bpp] if i >= bpp else 0
        b = prev[i]
        c = prev[i - bpp] if i >= bpp else 0
        if ft == 0:
            pred = 0
        elif ft == 1:
            pred = a
        elif ft == 2:
            pred = b
        elif ft == 3:
            pred = (a + b) // 2
        else:
            p = a + b - c
            pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
        out[i] = (row[i] - pred) & 0xFF
    return bytes(out)


@settings(max_examples=25, deadline=None)
@given(data=st.data(), ctype=st.sampled_from([0, 2, 4, 6]))
def test_all_row_filters(data, ctype):
    channels = {0: 1, 2: 3, 4: 2, 6: 4}[ctype]
    h, w = data.draw(st.integers(1, 6)), data.draw(st.integers(1, 7))
    img = data.draw(hnp.arrays(np.uint8, (h, w, channels)))
    filters = data.draw(st.lists(st.integers(0, 4), min_size=h, max_size=h))
    rows = [img[y].tobytes() for y in range(h)]
    prev = bytes(w * channels)
    filtered = []
    for ft, row in zip(filters, rows):
        filtered.append(_filter_row(ft, row, prev, channels))
        prev = row
    back = decode_png(_png(w, h, 8, ctype, filtered, filters))
    np.testing.assert_array_equal(back, img[:, :, 0] if channels == 1 else img)


def test_16_bit_palette_and_low_bit_depth():
    # 16-bit gray
    vals = np.array([[0, 1000, 65535]], dtype=">u2")
    out = decode_png(_png(3, 1, 16, 0, [vals.tobytes()]))
    assert out.dtype == np.uint16
    np.testing.assert_array_equal(out, [[0, 1000, 65535]])
    # 1-bit gray: 0b10110000 -> 1,0,1,1 -> 255,0,255,255
    out = decode_png(_png(4, 1, 1, 0, [bytes([0b10110000])]))
    np.testing.assert_array_equal(out, [[255, 0, 255, 255]])
    # palette with transparency
    plte = bytes([10, 20, 30, 40, 50, 60])
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(
            ">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    out = decode_png(_png(2, 1, 8, 3, [bytes([1, 0])], extra=chunk(b"PLTE", plte)))
    np.testing.assert_array_equal(out, [[[40, 50, 60], [10, 20, 30]]])
    out = decode_png(_png(2, 1, 8, 3, [bytes([1, 0])],
                          extra=chunk(b"PLTE", plte) + chunk(b"tRNS", bytes([7]))))
    np.testing.assert_array_equal(out, [[[40, 50, 60, 255], [10, 20, 30, 7]]])


def test_reader_errors():
    good = encode_png(np.zeros((2, 2), dtype=np.uint8))
    with pytest.raises(PNGFormatError, match="not a PNG"):
        decode_png(b"GIF89a" + good[6:])
    bad_crc = bytearray(good)
    bad_crc[20] ^= 1  # inside IHDR
    with pytest.raises(PNGFormatError, match="CRC mismatch in IHDR"):
        decode_png(bytes(bad_crc))
    with pytest.raises(PNGFormatError, match="interlaced"):
        decode_png(_png(1, 1, 8, 0, [b"\x00"], interlace=1))
    with pytest.raises(PNGFormatError, match="truncated|IEND"):
        decode_png(good[:-12])


def test_image_grid_layout():
    x = np.zeros((5, 1, 3, 4), dtype=np.float32)
    for k in range(5):
        x[k] = (k + 1) / 10
    g = image_grid(x, nrow=3, padding=1, pad_value=1.0)
    assert g.shape == (2 * (3 + 1) + 1, 3 * (4 + 1) + 1)
    assert g[1, 1] == pytest.approx(0.1) and g[1, 6] == pytest.approx(0.2)
    assert g[5, 1] == pytest.approx(0.4) and g[5, 6] == pytest.approx(0.5)
    assert g[5, 11] == 1.0  # the empty sixth cell is padding
    assert g[0].min() == 1.0
    rgb = image_grid(np.zeros((2, 3, 3, 3)), nrow=8)
    assert rgb.shape == (3 + 4, 2 * 5 + 2, 3)
    with pytest.raises(ValueError, match="C in"):
        image_grid(np.zeros((2, 2, 3, 3)))
