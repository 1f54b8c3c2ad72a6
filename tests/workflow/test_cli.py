"""The `aecore` command: every subcommand on tiny settings, exit statuses, and the real
console script in a subprocess."""

import csv
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import aecore
from aecore.cli import main
from aecore.io.checkpoint import load_checkpoint
from aecore.io.png import read_png

from conftest import TINY_AE_ARGS


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """One tiny trained run shared by the commands that read a run."""
    out = tmp_path_factory.mktemp("cli") / "run"
    aecore.manual_seed(0)
    assert main(["train", *TINY_AE_ARGS, "--epochs", "5", "--lr", "0.01",
                 "--out", str(out)]) == 0
    return out


def _png(path):
    image = read_png(path)
    assert image.ndim in (2, 3) and min(image.shape[:2]) > 20
    return image


def test_train_writes_a_complete_run(run_dir, capsys):
    names = set(os.listdir(run_dir))
    assert {"config.json", "checkpoint.npz", "checkpoint.json", "checkpoint.prev.npz",
            "checkpoint.prev.json", "metrics.json", "metrics.csv", "reconstructions.png",
            "samples.png", "interpolation.png", "latent_scatter.png", "loss_curves.png"} <= names
    for name in names:
        if name.endswith(".png"):
            _png(run_dir / name)
    config = json.loads((run_dir / "config.json").read_text())
    assert config["model_options"] == {"hidden": [32], "latent_dim": 2}
    assert config["limit"] == 160 and config["epochs"] == 5 and config["lr"] == 0.01


def test_train_prints_the_run_directory(tmp_path, capsys):
    assert main(["train", *TINY_AE_ARGS, "--epochs", "1", "--no-pictures",
                 "--out", str(tmp_path / "r")]) == 0
    out = capsys.readouterr().out
    assert f"run directory: {tmp_path / 'r'}" in out
    assert not [n for n in os.listdir(tmp_path / "r") if n.endswith(".png")]


@pytest.mark.parametrize("model_args", [
    ["--model", "dae", "--base", "ae", "--hidden", "16", "--latent-dim", "2",
     "--noise", "salt_and_pepper:0.2"],
    ["--model", "vae", "--hidden", "16", "--latent-dim", "2", "--beta", "0.5"],
], ids=["dae", "vae"])
def test_train_other_families_then_sample(tmp_path, model_args):
    out = tmp_path / "run"
    args = ["train", *model_args, "--limit", "96", "--batch-size", "32", "--epochs", "1",
            "--quiet", "--out", str(out)]
    assert main(args) == 0
    assert load_checkpoint(out).config["model_config"]["kind"] == model_args[1]
    assert main(["sample", str(out), "--n", "16", "--out", str(tmp_path / "s")]) == 0
    _png(tmp_path / "s" / "samples.png")
    if model_args[1] == "dae":  # three rows per block: clean, noisy, reconstructed
        grid = _png(out / "reconstructions.png")
        assert grid.shape[0] == 3 * (2 * 3 * 30 + 2)          # tiles enlarged 3x


def test_reconstruct_sample_interpolate(run_dir, tmp_path, capsys):
    out = tmp_path / "pictures"
    assert main(["reconstruct", str(run_dir), "--n", "8", "--out", str(out)]) == 0
    assert main(["sample", str(run_dir), "--n", "9", "--out", str(out)]) == 0
    assert main(["interpolate", str(run_dir), "--pairs", "2", "--steps", "5",
                 "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert text.count("wrote ") == 3
    recon = _png(out / "reconstructions.png")      # 2 rows of 8 images, scaled 3x, labelled
    assert recon.shape[0] == 3 * (2 * 30 + 2) and recon.shape[1] > 3 * (8 * 30 + 2)
    strip = _png(out / "interpolation.png")        # 2 rows of 5 steps + the two ends, labelled
    assert strip.shape[0] > 3 * (2 * 30 + 2) and strip.shape[1] > 3 * (7 * 30 + 2)
    _png(out / "samples.png")


def test_score_writes_csv_and_json(run_dir, tmp_path, capsys):
    out = tmp_path / "scores"
    assert main(["score", str(run_dir), "--data", "synthetic", "--limit", "50",
                 "--out", str(out)]) == 0
    summary = json.loads((out / "scores.json").read_text())
    assert summary["count"] == 50 and summary["quantile"] == 0.99
    assert summary["threshold"] > 0 and 0 <= summary["flagged"] <= 50
    assert "validation" in summary["threshold_from"]
    with open(out / "scores.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 50 and set(rows[0]) == {"index", "label", "score", "anomaly"}
    scores = np.array([float(r["score"]) for r in rows])
    flagged = np.array([int(r["anomaly"]) for r in rows])
    np.testing.assert_array_equal(flagged, (scores > summary["threshold"]).astype(int))
    # noise images are far from the digits the (trained) model saw: all of them are flagged
    noise = np.random.default_rng(0).integers(0, 256, (20, 28, 28), dtype=np.uint8)
    np.savez(tmp_path / "noise.npz", x_test=noise)
    assert main(["score", str(run_dir), "--data", str(tmp_path / "noise.npz"),
                 "--out", str(out)]) == 0
    assert json.loads((out / "scores.json").read_text())["flagged"] == 20


def test_resume_via_cli(tmp_path):
    out = tmp_path / "run"
    assert main(["train", *TINY_AE_ARGS, "--epochs", "1", "--no-pictures",
                 "--out", str(out)]) == 0
    assert main(["train", "--resume", str(out), "--epochs", "2", "--quiet"]) == 0
    assert load_checkpoint(out).epoch == 2
    assert main(["train", "--resume", str(out), "--lr", "0.1"]) == 2


def test_nan_loss_exits_nonzero_naming_the_step(tmp_path, capsys, monkeypatch):
    from aecore.models import dense
    real = dense.AE.loss
    calls = [0]

    def loss(self, x, target=None):
        value, metrics = real(self, x, target)
        if self.training:
            calls[0] += 1
            if calls[0] == 7:           # epoch 2 (5 batches per epoch), batch 2
                value = value * aecore.tensor(float("inf"))
        return value, metrics

    monkeypatch.setattr(dense.AE, "loss", loss)
    out = tmp_path / "run"
    status = main(["train", *TINY_AE_ARGS, "--epochs", "3", "--out", str(out)])
    err = capsys.readouterr().err
    assert status == 1
    assert "epoch 2, batch 2" in err and "inf" in err and "Traceback" not in err
    assert load_checkpoint(out, fallback=False).epoch == 1


def test_missing_data_set_exits_2_with_where_it_looked(tmp_path, capsys, monkeypatch):
    status = main(["train", "--data", "nosuchset", "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert status == 2 and "Traceback" not in err
    assert "nosuchset" in err and os.path.abspath("nosuchset") in err
    # a known name that is not on disk: the message lists every place searched
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv("AECORE_DATA", str(tmp_path / "empty"))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.chdir(tmp_path)
    status = main(["train", "--data", "kmnist", "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert status == 2 and "Looked in:" in err and str(tmp_path / "empty") in err
    assert "Traceback" not in err


def test_bad_input_exits_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        main(["train", "--epochs", "zero"])
    assert info.value.code == 2
    with pytest.raises(SystemExit) as info:
        main(["train", "--model", "gan"])
    assert info.value.code == 2
    assert main(["train", *TINY_AE_ARGS, "--noise", "gaussian", "--out",
                 str(tmp_path / "r")]) == 2       # noise is a DAE option
    assert "noise" in capsys.readouterr().err
    assert main(["reconstruct", str(tmp_path / "nothing")]) == 2
    assert "no such run directory" in capsys.readouterr().err
    if not aecore.gpu_available():
        assert main(["train", *TINY_AE_ARGS, "--device", "cuda"]) == 2
        assert "no GPU" in capsys.readouterr().err
    assert main([]) == 2


def test_console_script_in_a_subprocess(tmp_path):
    exe = shutil.which("aecore", path=os.path.dirname(sys.executable))
    command = [exe] if exe else [sys.executable, "-m", "aecore"]
    env = dict(os.environ)
    out = tmp_path / "run"
    proc = subprocess.run(command + ["train", *TINY_AE_ARGS, "--epochs", "1", "--no-pictures",
                                     "--out", str(out)],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert f"run directory: {out}" in proc.stdout
    proc = subprocess.run(command + ["train", "--data", "nosuchset"], capture_output=True,
                          text=True, env=env, timeout=300, cwd=tmp_path)
    assert proc.returncode == 2
    assert "nosuchset" in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
