"""Bad inputs: every one gets one clear line naming the file, nothing hangs, nothing blows up.

FIFOs are read in a thread with a timeout, and the /dev/zero link in a subprocess with a memory
cap, so a regression fails the test instead of hanging the suite or eating the machine.
"""

import gzip
import os
import struct
import subprocess
import sys
import threading
import tracemalloc
import zlib

import numpy as np
import pytest

from aecore.data import (DatasetNotFoundError, IDXFormatError, NPZFormatError, load_dataset,
                         load_image_folder, load_npz, read_idx, write_idx)
from aecore.io import png
from aecore.io.png import PNGFormatError, decode_png, read_png, write_png

needs_fifo = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this system")


def _one_line(excinfo):
    text = str(excinfo.value)
    assert "\n" not in text, text
    return text


def _chunk(kind, data):
    return (struct.pack(">I", len(data)) + kind + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))


def _png_bytes(width, height, idat, ctype=0, depth=8, extra=b""):
    ihdr = struct.pack(">IIBBBBB", width, height, depth, ctype, 0, 0, 0)
    return (png.PNG_SIGNATURE + _chunk(b"IHDR", ihdr) + extra + _chunk(b"IDAT", idat)
            + _chunk(b"IEND", b""))


def _deflate_zeros(n_bytes, wbits=15, piece=1 << 20):
    """zlib (or, with wbits=31, gzip) bytes of n_bytes zeros, made without holding them all."""
    c = zlib.compressobj(9, zlib.DEFLATED, wbits)
    zeros = bytes(piece)
    out = []
    while n_bytes > 0:
        out.append(c.compress(zeros[:min(piece, n_bytes)]))
        n_bytes -= piece
    out.append(c.flush())
    return b"".join(out)


def _peak_bytes(fn):
    """Peak memory traced while fn() runs (NumPy reports its buffers to tracemalloc too)."""
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


# ---------------------------------------------------------------------------------------------
# FIFOs: run the load in a daemon thread; on a timeout, open the write end to release it
# ---------------------------------------------------------------------------------------------

@pytest.fixture
def fifo(tmp_path):
    made = []

    def make(path):
        os.mkfifo(path)
        made.append(path)
        return path

    yield make
    for path in made:  # unblock a reader that a regression left waiting in open()
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
        except OSError:
            pass


def _without_hanging(fn, timeout=20):
    """fn()'s exception (or None), failing the test if fn is still running after `timeout` s."""
    box = {}

    def target():
        try:
            fn()
        except BaseException as e:  # handed back to the test
            box["error"] = e

    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(timeout)
    if t.is_alive():
        pytest.fail(f"still reading after {timeout} s: the FIFO was opened")
    return box.get("error")


@needs_fifo
@pytest.mark.parametrize("name, loader, error", [
    ("f.png", read_png, PNGFormatError),
    ("train-images-idx3-ubyte", read_idx, IDXFormatError),
    ("d.npz", load_npz, NPZFormatError),
    ("train-images-idx3-ubyte", load_dataset, IDXFormatError),
    ("d.npz", load_dataset, NPZFormatError),
])
def test_a_fifo_named_directly_is_refused(tmp_path, fifo, name, loader, error):
    path = fifo(tmp_path / name)
    e = _without_hanging(lambda: loader(path))
    assert isinstance(e, error), repr(e)
    assert str(path) in str(e) and "not a regular file" in str(e) and "FIFO" in str(e)
    assert "\n" not in str(e)


@needs_fifo
def test_a_fifo_inside_an_image_folder_is_refused(tmp_path, fifo):
    root = tmp_path / "pics"
    root.mkdir()
    write_png(root / "a.png", np.zeros((4, 4)))
    f = fifo(root / "f.png")
    for load in (load_image_folder, load_dataset):
        e = _without_hanging(lambda: load(root))
        assert isinstance(e, PNGFormatError), repr(e)
        assert str(f) in str(e) and "FIFO" in str(e) and "\n" not in str(e)


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="no /dev/zero")
@pytest.mark.skipif(not hasattr(os, "symlink"), reason="no symlinks")
@pytest.mark.parametrize("name", ["pics/z.png", "train-images-idx3-ubyte", "z.npz"])
def test_a_link_to_dev_zero_is_refused_without_reading_it(tmp_path, name):
    link = tmp_path / name
    link.parent.mkdir(exist_ok=True)
    if link.parent.name == "pics":
        write_png(link.parent / "a.png", np.zeros((4, 4)))
    os.symlink("/dev/zero", link)
    target = link.parent if link.parent.name == "pics" else link
    code = (
        "import resource, sys\n"
        "cap = 2 << 30\n"
        "resource.setrlimit(resource.RLIMIT_AS, (cap, cap))\n"
        "from aecore.data import load_dataset\n"
        "try:\n"
        "    load_dataset(sys.argv[1])\n"
        "except Exception as e:\n"
        "    print(type(e).__name__, e)\n"
    )
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    try:
        done = subprocess.run([sys.executable, "-c", code, str(target)], capture_output=True,
                              text=True, timeout=60, env=env)
    except subprocess.TimeoutExpired:
        pytest.fail("still reading /dev/zero after 60 s")
    out = done.stdout.strip()
    assert "not a regular file" in out and str(link) in out, (out, done.stderr[-2000:])
    assert "character device" in out and "/dev/zero" in out


# ---------------------------------------------------------------------------------------------
# PNG: decompression bombs, lying headers, palettes
# ---------------------------------------------------------------------------------------------

def test_png_bomb_is_refused_from_the_header(tmp_path):
    # 12000 x 12000 gray zeros: ~140 KiB of zlib data that would inflate to 144 MB
    rows = 12000 * (12000 + 1)
    path = tmp_path / "bomb.png"
    path.write_bytes(_png_bytes(12000, 12000, _deflate_zeros(rows)))
    assert path.stat().st_size < 200_000
    with pytest.raises(PNGFormatError) as info:
        read_png(path)
    text = _one_line(info)
    assert str(path) in text and "12000x12000" in text and "89,478,485" in text
    assert "max_pixels" in text


def test_png_bomb_refused_before_decompressing():
    data = _png_bytes(12000, 12000, _deflate_zeros(12000 * 12001))
    tracemalloc.start()
    try:
        with pytest.raises(PNGFormatError, match="more than the limit"):
            decode_png(data, name="bomb.png")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2 * len(data) + (1 << 20)


def test_png_pixel_limit_is_configurable(tmp_path, monkeypatch):
    root = tmp_path / "pics"
    root.mkdir()
    write_png(root / "a.png", np.zeros((4, 5)))
    assert read_png(root / "a.png", max_pixels=20).shape == (4, 5)
    with pytest.raises(PNGFormatError, match=r"a.png: image is 5x4 \(20 pixels\), more than "
                                             r"the limit of 19 pixels"):
        read_png(root / "a.png", max_pixels=19)
    with pytest.raises(PNGFormatError, match="limit of 10 pixels"):
        load_image_folder(root, max_pixels=10)
    with pytest.raises(PNGFormatError, match="limit of 10 pixels"):
        load_dataset(root, max_pixels=10)
    monkeypatch.setattr(png, "MAX_IMAGE_PIXELS", 12)
    with pytest.raises(PNGFormatError, match="limit of 12 pixels"):
        read_png(root / "a.png")
    assert load_dataset(root, max_pixels=20).images.shape == (1, 1, 4, 5)


def test_png_lying_header_inflates_only_what_it_declares():
    # the header says 1x1 (2 bytes of image data); the stream holds 64 MB of zeros
    data = _png_bytes(1, 1, _deflate_zeros(64 << 20))
    out = []
    peak = _peak_bytes(lambda: out.append(decode_png(data)))
    assert out[0].tolist() == [[0]]
    assert peak < 4 << 20


@pytest.mark.parametrize("length", [0, 5, 770])
def test_png_palette_length_is_checked(tmp_path, length):
    path = tmp_path / "p.png"
    plte = bytes(range(256)) * 4
    path.write_bytes(_png_bytes(2, 1, zlib.compress(b"\x00\x01\x00"), ctype=3,
                                extra=_chunk(b"PLTE", plte[:length])))
    with pytest.raises(PNGFormatError) as info:
        read_png(path)
    text = _one_line(info)
    assert str(path) in text and f"PLTE chunk has length {length}" in text
    assert "multiple of 3" in text


def test_png_chunk_longer_than_the_file(tmp_path):
    path = tmp_path / "long.png"
    good = _png_bytes(1, 1, zlib.compress(b"\x00\x00"))
    # declare a 2 GB text chunk right after IHDR
    bad = good[:33] + struct.pack(">I", 2 ** 31 - 1) + b"tEXt" + good[33:]
    path.write_bytes(bad)
    with pytest.raises(PNGFormatError) as info:
        read_png(path)
    text = _one_line(info)
    assert str(path) in text and "truncated" in text and "tEXt" in text


def test_png_damaged_idat_reports_the_crc_and_a_second_ihdr_is_refused(tmp_path):
    path = tmp_path / "d.png"
    good = _png_bytes(4, 4, zlib.compress(bytes(4 * 5)))
    bad = bytearray(good)
    bad[good.index(b"IDAT") + 6] ^= 0xFF  # inside the zlib stream
    path.write_bytes(bytes(bad))
    with pytest.raises(PNGFormatError, match="CRC mismatch in IDAT chunk") as info:
        read_png(path)
    assert str(path) in _one_line(info)
    ihdr = good[8:33]
    path.write_bytes(good[:33] + ihdr + good[33:])
    with pytest.raises(PNGFormatError, match="more than one IHDR"):
        read_png(path)
    path.write_bytes(good[:8] + _chunk(b"tEXt", b"a\x00b") + good[8:])
    with pytest.raises(PNGFormatError, match="first chunk is tEXt, expected IHDR"):
        read_png(path)


# ---------------------------------------------------------------------------------------------
# IDX: headers whose sizes overflow, too many dimensions, zero items, gzip bounded
# ---------------------------------------------------------------------------------------------

def test_idx_dimensions_whose_product_overflows(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(bytes([0, 0, 0x08, 4]) + struct.pack(">IIII", *[65536] * 4))
    for load in (read_idx, load_dataset):
        with pytest.raises(IDXFormatError) as info:
            load(path)
        text = _one_line(info)
        assert str(path) in text and "(65536, 65536, 65536, 65536)" in text
        assert "truncated" in text


def test_idx_with_255_dimensions(tmp_path):
    path = tmp_path / "many.idx"
    path.write_bytes(bytes([0, 0, 0x08, 255]) + struct.pack(">" + "I" * 255, *[1] * 255)
                     + b"\x00")
    with pytest.raises(IDXFormatError) as info:
        read_idx(path)
    text = _one_line(info)
    assert str(path) in text and "255 dimensions" in text and "at most 32" in text


def test_gzip_idx_inflates_only_what_the_header_declares(tmp_path):
    # header (1, 1, 1): one byte of data; the same gzip stream goes on with 64 MB of zeros
    c = zlib.compressobj(9, zlib.DEFLATED, 31)
    parts = [c.compress(bytes([0, 0, 0x08, 3]) + struct.pack(">III", 1, 1, 1))]
    zeros = bytes(1 << 20)
    parts += [c.compress(zeros) for _ in range(64)]
    parts.append(c.flush())
    path = tmp_path / "trail.gz"
    path.write_bytes(b"".join(parts))
    del zeros, parts
    tracemalloc.start()
    try:
        with pytest.raises(IDXFormatError, match="trailing bytes") as info:
            read_idx(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert str(path) in _one_line(info)
    assert peak < 4 << 20


def test_gzip_idx_declaring_more_than_it_can_hold(tmp_path):
    path = tmp_path / "big.gz"
    path.write_bytes(gzip.compress(bytes([0, 0, 0x08, 3]) + struct.pack(">III", 10 ** 6, 10 ** 4,
                                                                          10 ** 4)))
    with pytest.raises(IDXFormatError) as info:
        read_idx(path)
    text = _one_line(info)
    assert str(path) in text and "truncated" in text


@pytest.mark.parametrize("gz", ["", ".gz"])
def test_idx_with_zero_images(tmp_path, gz):
    img = tmp_path / f"train-images-idx3-ubyte{gz}"
    write_idx(img, np.zeros((0, 28, 28), np.uint8))
    write_idx(tmp_path / f"train-labels-idx1-ubyte{gz}", np.zeros(0, np.uint8))
    for target in (img, tmp_path):
        with pytest.raises(IDXFormatError) as info:
            load_dataset(target)
        text = _one_line(info)
        assert str(img) in text and "0 images" in text


# ---------------------------------------------------------------------------------------------
# npz: empty, corrupt, no images
# ---------------------------------------------------------------------------------------------

def test_empty_npz_file(tmp_path):
    path = tmp_path / "e.npz"
    path.write_bytes(b"")
    with pytest.raises(NPZFormatError) as info:
        load_dataset(path)
    text = _one_line(info)
    assert str(path) in text and "empty" in text and "0 bytes" in text


@pytest.mark.parametrize("compressed", [False, True])
def test_npz_with_a_flipped_byte(tmp_path, compressed):
    path = tmp_path / "mnist.npz"
    save = np.savez_compressed if compressed else np.savez
    x = np.random.default_rng(0).integers(0, 256, (2, 28, 28), dtype=np.uint8)  # no savings
    save(path, x_train=x, y_train=np.array([1, 2], np.uint8))
    good = path.read_bytes()
    start = good.index(b"x_train.npy") + len("x_train.npy")  # the local header's name
    for where in (start + 200, start + 700):  # inside the array's stored bytes
        bad = bytearray(good)
        bad[where] ^= 0xFF
        path.write_bytes(bytes(bad))
        with pytest.raises(NPZFormatError) as info:
            load_dataset(path)
        text = _one_line(info)
        assert str(path) in text and "corrupt" in text and "x_train" in text


def test_npz_that_is_not_a_zip(tmp_path):
    path = tmp_path / "x.npz"
    np.savez(path, x_train=np.zeros((2, 3, 3), np.uint8))
    bad = bytearray(path.read_bytes())
    bad[0] ^= 0xFF
    path.write_bytes(bytes(bad))
    with pytest.raises(NPZFormatError) as info:
        load_npz(path)
    text = _one_line(info)
    assert str(path) in text and "zip" in text and "pickle" not in text


def test_npz_with_zero_images(tmp_path):
    path = tmp_path / "none.npz"
    np.savez(path, x_train=np.zeros((0, 28, 28), np.uint8), y_train=np.zeros(0, np.uint8))
    with pytest.raises(NPZFormatError) as info:
        load_dataset(path)
    text = _one_line(info)
    assert str(path) in text and "x_train" in text and "0 images" in text


# ---------------------------------------------------------------------------------------------
# image folders and directories
# ---------------------------------------------------------------------------------------------

def test_empty_image_folder(tmp_path):
    root = tmp_path / "empty"
    root.mkdir()
    (root / "notes.txt").write_text("no pictures here")
    for load in (load_image_folder, load_dataset):
        with pytest.raises(DatasetNotFoundError) as info:
            load(root)
        assert str(root) in _one_line(info) and "no image files" in str(info.value)


def test_mixed_sizes_hint_names_the_real_option(tmp_path):
    root = tmp_path / "mixed"
    root.mkdir()
    write_png(root / "x.png", np.zeros((5, 5)))
    write_png(root / "y.png", np.zeros((6, 5)))
    with pytest.raises(ValueError) as info:
        load_dataset(root)
    text = _one_line(info)
    assert "image_size=N" in text and "--image-size N" in text and "size=(H, W)" not in text
    assert load_dataset(root, image_size=3).images.shape == (2, 1, 3, 3)


@pytest.mark.parametrize("folder, name", [("MNIST/raw", "mnist"),
                                          ("FashionMNIST/raw", "fashion-mnist"),
                                          ("KMNIST/raw", "kmnist")])
@pytest.mark.parametrize("gz", ["", ".gz"])
def test_torchvision_root_is_accepted(tmp_path, folder, name, gz):
    raw = tmp_path / "root" / folder
    raw.mkdir(parents=True)
    write_idx(raw / f"t10k-images-idx3-ubyte{gz}", np.zeros((3, 4, 4), np.uint8))
    write_idx(raw / f"t10k-labels-idx1-ubyte{gz}", np.array([1, 2, 3], np.uint8))
    write_idx(raw / f"train-images-idx3-ubyte{gz}", np.zeros((5, 4, 4), np.uint8))
    write_idx(raw / f"train-labels-idx1-ubyte{gz}", np.arange(5, dtype=np.uint8))
    ds = load_dataset(tmp_path / "root")
    assert len(ds) == 8 and ds.splits == {"train": 5, "test": 3} and ds.name == name
    assert len(load_dataset(tmp_path / "root", split="test")) == 3


def test_torchvision_root_with_several_sets_asks_which(tmp_path):
    for folder in ("MNIST/raw", "FashionMNIST/raw"):
        raw = tmp_path / folder
        raw.mkdir(parents=True)
        write_idx(raw / "t10k-images-idx3-ubyte", np.zeros((3, 4, 4), np.uint8))
    with pytest.raises(DatasetNotFoundError) as info:
        load_dataset(tmp_path)
    text = _one_line(info)
    assert str(tmp_path) in text and "MNIST/raw" in text and "FashionMNIST/raw" in text
    assert "--data-root" in text
