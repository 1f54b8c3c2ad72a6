"""Checkpoint files: exact round trip without pickle, atomic replacement, and clear errors for
truncated / corrupted / mismatched files with the previous good checkpoint kept."""

import json
import os

import numpy as np
import pytest

import aecore.io.checkpoint as ckpt_module
from aecore.io.checkpoint import (CheckpointError, load_checkpoint, save_checkpoint,
                                  verify_checkpoint)


def _arrays(seed):
    rng = np.random.default_rng(seed)
    return {"model": {"enc.0.weight": rng.standard_normal((4, 3)).astype(np.float32),
                      "enc.0.bias": rng.standard_normal(4).astype(np.float32)},
            "optim": {"0:exp_avg": rng.standard_normal((4, 3)),
                      "1:step": np.array(7, dtype=np.int64)}}


def _meta(epoch):
    rng_state = np.random.default_rng(epoch).bit_generator.state  # 128-bit ints
    return {"epoch": epoch, "config": {"model": "ae", "lr": 1e-3, "shape": (1, 28, 28)},
            "metrics": [{"epoch": epoch, "train_loss": 0.5, "val_loss": float("nan")}],
            "rng": {"aecore": rng_state}}


def _bytes(path):
    with open(path, "rb") as f:
        return f.read()


def _two_epochs(directory):
    save_checkpoint(directory, _arrays(1), _meta(1))
    save_checkpoint(directory, _arrays(2), _meta(2))


def test_round_trip_is_exact_and_pickle_free(tmp_path):
    save_checkpoint(tmp_path, _arrays(0), _meta(5))
    # the npz opens without pickle, the JSON is plain JSON
    with np.load(tmp_path / "checkpoint.npz", allow_pickle=False) as npz:
        assert sorted(npz.files) == ["model:enc.0.bias", "model:enc.0.weight", "optim:0:exp_avg",
                                     "optim:1:step"]
    doc = json.loads((tmp_path / "checkpoint.json").read_text())
    assert doc["format"] == "aecore-checkpoint" and len(doc["npz"]["sha256"]) == 64
    c = load_checkpoint(tmp_path, fallback=False)
    expected = _arrays(0)
    for group in expected:
        for name, a in expected[group].items():
            b = c.arrays[group][name]
            assert b.dtype == a.dtype and b.shape == a.shape
            np.testing.assert_array_equal(a, b)
    assert c.epoch == 5 and c.fallback_reason is None
    assert c.config["shape"] == [1, 28, 28]
    assert c.meta["metrics"][0]["val_loss"] is None  # NaN is stored as null
    assert c.meta["rng"]["aecore"] == np.random.default_rng(5).bit_generator.state
    # the files get ordinary permissions, not mkstemp's private 0600
    mask = os.umask(0)
    os.umask(mask)
    assert (os.stat(tmp_path / "checkpoint.npz").st_mode & 0o777) == (0o666 & ~mask)


def test_previous_pair_is_kept(tmp_path):
    _two_epochs(tmp_path)
    assert load_checkpoint(tmp_path).epoch == 2
    verify_checkpoint(tmp_path, "checkpoint.prev")
    prev = ckpt_module._load_pair(str(tmp_path), "checkpoint.prev")
    assert prev.epoch == 1
    np.testing.assert_array_equal(prev.arrays["model"]["enc.0.weight"],
                                  _arrays(1)["model"]["enc.0.weight"])
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".tmp")]


def _truncate(path):
    data = _bytes(path)
    with open(path, "wb") as f:
        f.write(data[: len(data) // 2])


def _garbage_json(path):
    with open(path, "w") as f:
        f.write('{"format": "aecore-checkpoint", "epoch": 2, "npz": {"byt')


def _flip_byte(path):
    data = bytearray(_bytes(path))
    data[len(data) // 2] ^= 0xFF
    with open(path, "wb") as f:
        f.write(bytes(data))


@pytest.mark.parametrize("damage, filename, words", [
    (_truncate, "checkpoint.npz", "truncated"),
    (_garbage_json, "checkpoint.json", "not valid JSON"),
    (lambda p: open(p, "w").write("this is not json"), "checkpoint.json", "not valid JSON"),
    (_flip_byte, "checkpoint.npz", "SHA-256 mismatch"),
    (os.unlink, "checkpoint.npz", "no such file"),
])
def test_damaged_checkpoint_gives_clear_error_and_previous_is_kept(tmp_path, damage, filename,
                                                                   words):
    _two_epochs(tmp_path)
    prev_before = {n: _bytes(tmp_path / n) for n in ("checkpoint.prev.npz",
                                                     "checkpoint.prev.json")}
    damage(tmp_path / filename)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(tmp_path, fallback=False)
    message = str(info.value)
    assert filename in message and words in message
    # the default falls back to the previous good checkpoint, and says why
    c = load_checkpoint(tmp_path)
    assert c.epoch == 1 and filename in c.fallback_reason
    assert c.path.endswith("checkpoint.prev.json")
    # nothing was modified by loading
    for name, data in prev_before.items():
        assert _bytes(tmp_path / name) == data
    # the next save does not rotate the damaged pair over the good previous one
    save_checkpoint(tmp_path, _arrays(3), _meta(3))
    assert load_checkpoint(tmp_path, fallback=False).epoch == 3
    assert ckpt_module._load_pair(str(tmp_path), "checkpoint.prev").epoch == 1


def test_both_damaged_names_both(tmp_path):
    _two_epochs(tmp_path)
    _flip_byte(tmp_path / "checkpoint.npz")
    _truncate(tmp_path / "checkpoint.prev.npz")
    with pytest.raises(CheckpointError, match="previous checkpoint is unusable too") as info:
        load_checkpoint(tmp_path)
    assert "checkpoint.npz" in str(info.value) and "checkpoint.prev.npz" in str(info.value)


def test_not_a_checkpoint_and_missing(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint here"):
        load_checkpoint(tmp_path)
    with pytest.raises(CheckpointError, match="no such run directory"):
        load_checkpoint(tmp_path / "nope")
    (tmp_path / "checkpoint.json").write_text('{"hello": 1}')
    with pytest.raises(CheckpointError, match="not an aecore checkpoint"):
        load_checkpoint(tmp_path, fallback=False)


@pytest.mark.parametrize("fail_at", [1, 2, 3, 4])
def test_crash_during_write_keeps_a_good_checkpoint(tmp_path, monkeypatch, fail_at):
    """Simulate a crash at each os.replace of a save: a good checkpoint survives every one,
    and it is the newest whose save got past its commit point (the JSON rename)."""
    _two_epochs(tmp_path)
    real_replace = os.replace
    calls = []

    def crashing_replace(src, dst):
        calls.append(dst)
        if len(calls) == fail_at:
            raise OSError("simulated crash")
        return real_replace(src, dst)

    monkeypatch.setattr(ckpt_module.os, "replace", crashing_replace)
    with pytest.raises(OSError, match="simulated crash"):
        save_checkpoint(tmp_path, _arrays(3), _meta(3))
    monkeypatch.setattr(ckpt_module.os, "replace", real_replace)
    # replaces: 1 prev.npz, 2 prev.json, 3 checkpoint.npz, 4 checkpoint.json (the commit)
    c = load_checkpoint(tmp_path)
    assert c.epoch == 2
    np.testing.assert_array_equal(c.arrays["model"]["enc.0.weight"],
                                  _arrays(2)["model"]["enc.0.weight"])
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".tmp")]


# ---------------------------------------------------------------------------------------------
# the JSON half is covered by its own checksum
# ---------------------------------------------------------------------------------------------

def _edit_json(path, edit, rehash=False):
    """Change a checkpoint JSON in place (and, with rehash, give it a matching checksum, as a
    writer with a bug would: then only the contents can show it is wrong)."""
    document = json.loads(path.read_text())
    edit(document)
    if rehash:
        document["sha256"] = ckpt_module.document_sha256(document)
    path.write_text(json.dumps(document, indent=1))


def test_a_flipped_digit_in_the_json_is_detected(tmp_path):
    _two_epochs(tmp_path)
    path = tmp_path / "checkpoint.json"
    text = path.read_text()
    state = str(_meta(2)["rng"]["aecore"]["state"]["state"])
    flipped = state[:-1] + ("1" if state[-1] != "1" else "2")
    path.write_text(text.replace(state, flipped))
    with pytest.raises(CheckpointError, match="SHA-256 mismatch.*changed after it was written"):
        load_checkpoint(tmp_path, fallback=False)
    loaded = load_checkpoint(tmp_path)
    assert loaded.epoch == 1 and "checkpoint.json" in loaded.fallback_reason


def test_an_edited_epoch_is_detected(tmp_path):
    _two_epochs(tmp_path)
    _edit_json(tmp_path / "checkpoint.json", lambda d: d.update(epoch=99))
    with pytest.raises(CheckpointError, match="SHA-256 mismatch"):
        verify_checkpoint(tmp_path)
    assert load_checkpoint(tmp_path).epoch == 1


def test_deep_nesting_is_a_checkpoint_error(tmp_path):
    _two_epochs(tmp_path)
    (tmp_path / "checkpoint.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(CheckpointError, match="checkpoint.json"):
        load_checkpoint(tmp_path, fallback=False)
    assert load_checkpoint(tmp_path).epoch == 1


def test_a_malformed_npz_entry_is_a_checkpoint_error(tmp_path):
    _two_epochs(tmp_path)
    _edit_json(tmp_path / "checkpoint.json",
               lambda d: d["npz"].update(arrays={"model": [["w", 3]]}), rehash=True)
    with pytest.raises(CheckpointError, match="malformed"):
        load_checkpoint(tmp_path, fallback=False)


def test_validate_failure_falls_back_and_both_bad_names_both_files(tmp_path):
    _two_epochs(tmp_path)

    def only_epoch_1(checkpoint):
        if checkpoint.epoch != 1:
            raise CheckpointError(f"{checkpoint.path}: not epoch 1")
        return "ok"

    loaded = load_checkpoint(tmp_path, validate=only_epoch_1)
    assert loaded.epoch == 1 and loaded.extra["validated"] == "ok"
    assert "not epoch 1" in loaded.fallback_reason

    def never(checkpoint):
        raise CheckpointError(f"{checkpoint.path}: never good")

    with pytest.raises(CheckpointError) as info:
        load_checkpoint(tmp_path, validate=never)
    message = str(info.value)
    assert "checkpoint.json: never good" in message
    assert "checkpoint.prev.json: never good" in message


def test_non_finite_arrays_are_never_written_as_the_good_checkpoint(tmp_path):
    save_checkpoint(tmp_path, _arrays(1), _meta(1))
    good = _bytes(tmp_path / "checkpoint.npz")
    arrays = _arrays(2)
    arrays["optim"]["0:exp_avg"][1, 2] = np.inf
    with pytest.raises(ckpt_module.NonFiniteCheckpointError, match="optim:0:exp_avg"):
        save_checkpoint(tmp_path, arrays, _meta(2))
    assert _bytes(tmp_path / "checkpoint.npz") == good
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".tmp-")]
