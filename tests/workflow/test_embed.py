"""`aecore embed` and aecore.viz.projector: TensorBoard's projector files, parsed back as the
projector reads them (tensors.tsv, metadata.tsv, sprite.png, projector_config.pbtxt), from
arrays and from a tiny trained run."""

import math
import os

import numpy as np
import pytest
from hypothesis import given, strategies as st

import aecore
from aecore.cli import build_parser, main
from aecore.data import split_dataset
from aecore.data.idx import write_idx
from aecore.io.png import read_png
from aecore.train import load_data, load_run, train
from aecore.viz import encode_codes, write_projector
from aecore.viz.projector import MAX_SPRITE_IMAGES, sprite_image

from conftest import TINY_VAE


# ---------------------------------------------------------------------------------------------
# reading the files back
# ---------------------------------------------------------------------------------------------

def parse_pbtxt(text):
    """A protobuf text-format message as {field: [values]}: nested messages as dicts, strings
    unquoted, numbers as int. Enough of the format for projector_config.pbtxt."""
    stack = [{}]
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        if line.endswith("{"):
            child = {}
            stack[-1].setdefault(line[:-1].strip(), []).append(child)
            stack.append(child)
        elif line == "}":
            stack.pop()
        else:
            key, value = (part.strip() for part in line.split(":", 1))
            if value.startswith('"'):
                assert value.endswith('"'), line
                value = value[1:-1].replace('\\"', '"').replace("\\\\", "\\")
            else:
                value = int(value)
            stack[-1].setdefault(key, []).append(value)
    assert len(stack) == 1, "unbalanced braces"
    return stack[0]


def read_tsv(path):
    """Rows of tab-separated fields, as the projector splits them."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    assert text.endswith("\n") and "\r" not in text
    return [line.split("\t") for line in text.splitlines()]


def embedding(out_dir):
    config = parse_pbtxt((out_dir / "projector_config.pbtxt").read_text(encoding="utf-8"))
    assert set(config) == {"embeddings"} and len(config["embeddings"]) == 1
    return config["embeddings"][0]


def check_projector(out_dir, codes, labels, images):
    """Every file in out_dir says what write_projector was given."""
    n, d = codes.shape
    h, w = images.shape[-2:]
    rows = read_tsv(out_dir / "tensors.tsv")
    assert len(rows) == n and all(len(row) == d for row in rows)
    np.testing.assert_array_equal(np.array(rows, dtype=np.float32), codes.astype(np.float32))
    info = embedding(out_dir)
    assert info["tensor_path"] == ["tensors.tsv"] and info["tensor_shape"] == [n, d]
    sprite_info = info["sprite"][0]
    assert sprite_info == {"image_path": ["sprite.png"], "single_image_dim": [w, h]}
    side = math.isqrt(n - 1) + 1
    sprite = read_png(out_dir / "sprite.png")
    assert sprite.shape[:2] == (side * h, side * w)
    for k in (0, n // 2, n - 1):                          # image k in row k // side, column k % side
        r, c = divmod(k, side)
        tile = sprite[r * h:(r + 1) * h, c * w:(c + 1) * w]
        expected = images[k, 0] if images.shape[1] == 1 else np.moveaxis(images[k], 0, -1)
        np.testing.assert_allclose(tile / 255.0, expected, atol=0.5 / 255 + 1e-6)
    if labels is None:
        assert "metadata_path" not in info and not (out_dir / "metadata.tsv").exists()
    else:
        assert info["metadata_path"] == ["metadata.tsv"]
        metadata = read_tsv(out_dir / "metadata.tsv")   # one column: no header row
        assert metadata == [[str(int(v))] for v in labels]
    assert read_png(out_dir / "codes_pca.png").ndim == 3


# ---------------------------------------------------------------------------------------------
# write_projector from arrays
# ---------------------------------------------------------------------------------------------

def _arrays(n=10, d=5, channels=1, size=(12, 9), seed=0):
    rng = np.random.default_rng(seed)
    codes = rng.standard_normal((n, d)).astype(np.float32)
    labels = rng.integers(0, 4, n)
    images = rng.random((n, channels) + size).astype(np.float32)
    return codes, labels, images


@pytest.mark.parametrize("channels", [1, 3])
def test_write_projector_files_parse_back(tmp_path, channels):
    codes, labels, images = _arrays(n=10, channels=channels)
    paths = write_projector(tmp_path / "p", codes, labels, images, backend="numpy")
    assert set(paths) == {"tensors", "metadata", "sprite", "config", "scatter"}
    assert all(os.path.isfile(p) for p in paths.values())
    check_projector(tmp_path / "p", codes, labels, images)
    assert embedding(tmp_path / "p")["tensor_name"] == ["codes"]
    assert read_png(tmp_path / "p" / "sprite.png").ndim == (2 if channels == 1 else 3)


def test_without_labels_metadata_is_left_out_and_an_old_one_removed(tmp_path):
    codes, labels, images = _arrays(n=7)
    write_projector(tmp_path, codes, labels, images, backend="numpy")
    assert (tmp_path / "metadata.tsv").exists()
    paths = write_projector(tmp_path, codes, None, images, backend="numpy")
    assert "metadata" not in paths
    check_projector(tmp_path, codes, None, images)


def test_tensor_name_is_quoted(tmp_path):
    codes, labels, images = _arrays(n=4)
    write_projector(tmp_path, codes, labels, images, tensor_name='my "vae" \\ codes',
                    backend="numpy")
    assert embedding(tmp_path)["tensor_name"] == ['my "vae" \\ codes']
    with pytest.raises(ValueError, match="tensor_name"):
        write_projector(tmp_path, codes, labels, images, tensor_name="two\nlines")


@pytest.mark.parametrize("change, words", [
    (lambda c, l, i: (c[:, 0], l, i), "codes: expected"),
    (lambda c, l, i: (c[:1], l[:1], i[:1]), "N >= 2"),
    (lambda c, l, i: (np.where(c > 1, np.nan, c), l, i), "NaN"),
    (lambda c, l, i: (c, l[:-1], i), "labels: expected integers of shape"),
    (lambda c, l, i: (c, l.astype(float), i), "labels: expected integers"),
    (lambda c, l, i: (c, l, i[:-1]), "images: expected"),
    (lambda c, l, i: (c, l, np.repeat(i, 2, axis=1)), "C = 1 or 3"),
])
def test_bad_arrays_are_one_clear_error(tmp_path, change, words):
    codes, labels, images = change(*_arrays(n=6))
    with pytest.raises(ValueError, match=words):
        write_projector(tmp_path / "p", codes, labels, images, backend="numpy")
    assert not (tmp_path / "p" / "tensors.tsv").exists()


@given(n=st.integers(1, 40), channels=st.sampled_from([1, 3]), h=st.integers(1, 6),
       w=st.integers(1, 6))
def test_sprite_layout(n, channels, h, w):
    images = np.random.default_rng(n).random((n, channels, h, w)).astype(np.float32)
    sprite, size = sprite_image(images)
    side = math.isqrt(n - 1) + 1
    assert side * side >= n > (side - 1) ** 2 and size == (w, h)
    assert sprite.shape == (side * h, side * w) + (() if channels == 1 else (3,))
    cells = sprite.reshape(side, h, side, w, -1).transpose(0, 2, 4, 1, 3).reshape(
        side * side, channels, h, w)
    np.testing.assert_array_equal(cells[:n], images)
    assert np.all(cells[n:] == 1.0)                      # the cells past the last are white


def test_a_sprite_over_the_limit_is_shrunk_by_block_means():
    # 10 images -> a 4 x 4 sprite; at most 64 px a side leaves 16 px for each 40 x 30 image
    images = np.ones((10, 1, 40, 30), np.float32) * np.linspace(0, 1, 10)[:, None, None, None]
    images[:, :, :20] *= 0.5                             # the top half of each image darker
    sprite, (w, h) = sprite_image(images, max_pixels=64)
    assert (w, h) == (12, 16) and sprite.shape == (64, 48)
    tile = sprite[16:32, 12:24]                          # image 5: row 1, column 1
    np.testing.assert_allclose(tile[:8], images[5, 0, 0, 0], rtol=1e-6)
    np.testing.assert_allclose(tile[8:], images[5, 0, -1, 0], rtol=1e-6)
    too_many = np.broadcast_to(np.float32(0.5), (MAX_SPRITE_IMAGES + 1, 1, 1, 1))
    with pytest.raises(ValueError, match=f"at most {MAX_SPRITE_IMAGES}"):
        sprite_image(too_many)


# ---------------------------------------------------------------------------------------------
# `aecore embed` on a tiny trained run
# ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A dense VAE with a 2-number code, trained for one epoch (a few batches)."""
    out = tmp_path_factory.mktemp("embed") / "run"
    aecore.manual_seed(0)
    train(dict(TINY_VAE, epochs=1), out_dir=out, quiet=True)
    return out


def _validation(run_dir):
    """The run's validation images and labels, picked as the run commands pick them."""
    config = load_run(run_dir)[1]
    _, val = split_dataset(load_data(config), config["val_fraction"], seed=config["seed"])
    return val.images, val.labels


def test_embed_writes_the_codes_of_the_validation_images(run_dir, capsys):
    assert main(["embed", str(run_dir)]) == 0
    out = run_dir / "projector"                           # the default --out
    images, labels = _validation(run_dir)
    model = load_run(run_dir)[0]
    codes = encode_codes(model, images)                   # the VAE's mu
    assert codes.shape == (len(images), 2)
    check_projector(out, codes, labels, images)
    assert embedding(out)["tensor_name"] == ["vae codes (mu)"]
    stdout = capsys.readouterr().out
    assert f"embedded {len(images)} of the run's validation images" in stdout
    assert f"tensorboard --logdir {out}" in stdout


def test_embed_limit_and_other_data(run_dir, tmp_path):
    assert main(["embed", str(run_dir), "--out", str(tmp_path / "a"), "--limit", "10"]) == 0
    assert len(read_tsv(tmp_path / "a" / "tensors.tsv")) == 10
    assert read_png(tmp_path / "a" / "sprite.png").shape == (4 * 28, 4 * 28)
    assert main(["embed", str(run_dir), "--out", str(tmp_path / "b"), "--data", "synthetic",
                 "--limit", "50"]) == 0
    assert len(read_tsv(tmp_path / "b" / "metadata.tsv")) == 50


def test_embed_data_without_labels(run_dir, tmp_path, capsys):
    root = tmp_path / "root"
    root.mkdir()
    pixels = (np.random.default_rng(0).random((12, 28, 28)) * 255).astype(np.uint8)
    write_idx(root / "t10k-images-idx3-ubyte", pixels)  # images, no labels file beside them
    capsys.readouterr()
    assert main(["embed", str(run_dir), "--out", str(tmp_path / "p"), "--data", "mnist",
                 "--data-root", str(root)]) == 0
    assert "no labels" in capsys.readouterr().out
    assert not (tmp_path / "p" / "metadata.tsv").exists()
    assert "metadata_path" not in embedding(tmp_path / "p")
    assert len(read_tsv(tmp_path / "p" / "tensors.tsv")) == 12


def test_embed_takes_the_data_flags_of_the_other_run_commands():
    args = build_parser().parse_args(["embed", "RUN", "--data", "mnist", "--data-root", "ROOT",
                                      "--image-size", "28"])
    assert (args.data, args.data_root, args.image_size) == ("mnist", "ROOT", 28)
    assert (args.out, args.limit, args.which, args.overwrite) == (None, 1000, "best", False)


def _one_line_error(capsys):
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    return err


def test_embed_errors_are_one_line(run_dir, tmp_path, capsys):
    assert main(["embed", str(tmp_path / "nothing")]) == 2
    assert "no such run directory" in _one_line_error(capsys)
    assert not (tmp_path / "nothing").exists()            # nothing created for a missing run
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    assert main(["embed", str(run_dir), "--out", str(busy)]) == 2
    assert "not empty" in _one_line_error(capsys) and not (busy / "tensors.tsv").exists()
    assert main(["embed", str(run_dir), "--out", str(busy), "--overwrite", "--limit", "5"]) == 0
    assert (busy / "notes.txt").exists() and len(read_tsv(busy / "tensors.tsv")) == 5
    capsys.readouterr()
    assert main(["embed", str(run_dir), "--out", str(busy / "notes.txt")]) == 2
    assert "not a directory" in _one_line_error(capsys)
    with pytest.raises(SystemExit) as info:
        main(["embed", str(run_dir), "--limit", str(MAX_SPRITE_IMAGES + 1)])
    assert info.value.code == 2
    assert f"at most {MAX_SPRITE_IMAGES}" in capsys.readouterr().err
