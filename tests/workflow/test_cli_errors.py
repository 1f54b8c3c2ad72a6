"""The command line met as a new user meets it: a mistyped flag, bad settings, bad files, the
data flags of every subcommand, and what it says after a resume."""

import os
import subprocess
import sys

import numpy as np
import pytest

import aecore
from aecore.cli import build_parser, main
from aecore.models.corruption import describe_noise_kinds

from conftest import TINY_AE_ARGS


def _one_line(err):
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_a_mistyped_flag_shows_the_subcommands_usage_and_the_closest_flag(capsys):
    with pytest.raises(SystemExit) as info:
        main(["train", "--epocs", "1"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "usage: aecore train" in err
    assert "--epocs: did you mean --epochs?" in err
    with pytest.raises(SystemExit):
        main(["score", "runs/x", "--quantle", "0.9"])
    err = capsys.readouterr().err
    assert "usage: aecore score" in err and "did you mean --quantile?" in err


@pytest.mark.parametrize("command", ["reconstruct", "interpolate", "score", "embed"])
def test_every_subcommand_that_reads_data_takes_the_same_data_flags(command):
    parser = build_parser()
    args = parser.parse_args([command, "RUN", "--data", "mnist", "--data-root", "ROOT",
                              "--image-size", "28"])
    assert (args.data, args.data_root, args.image_size) == ("mnist", "ROOT", 28)


def test_score_looks_in_data_root(tmp_path, capsys):
    from aecore.data.idx import write_idx
    out = tmp_path / "run"
    assert main(["train", *TINY_AE_ARGS, "--epochs", "1", "--no-pictures", "--out", str(out)]) == 0
    root = tmp_path / "root"
    root.mkdir()
    images = (np.random.default_rng(0).random((40, 28, 28)) * 255).astype(np.uint8)
    write_idx(root / "t10k-images-idx3-ubyte", images)     # a named set ("mnist") under ROOT
    capsys.readouterr()
    status = main(["score", str(out), "--data", "mnist", "--data-root", str(root),
                   "--out", str(tmp_path / "s")])
    assert status == 0, capsys.readouterr().err
    rows = (tmp_path / "s" / "scores.csv").read_text().splitlines()
    assert len(rows) == 1 + 40


def test_the_noise_kinds_are_one_list(capsys):
    parser = build_parser()
    train_parser = parser.subcommands["train"]
    noise_help = next(a.help for a in train_parser._actions if "--noise" in a.option_strings)
    assert describe_noise_kinds() in noise_help
    for kind in ("gaussian", "salt_and_pepper", "masking", "occlusion", "block", "crosshair"):
        assert kind in noise_help
    assert main(["train", "--model", "dae", "--noise", "fog", "--limit", "64", "--quiet"]) == 2
    assert describe_noise_kinds() in capsys.readouterr().err


def test_after_a_resume_the_summary_counts_this_process_and_the_total(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", *TINY_AE_ARGS, "--epochs", "2", "--no-pictures", "--out", str(out)]) == 0
    assert "2 epochs in" in capsys.readouterr().out
    assert main(["train", "--resume", str(out), "--epochs", "4", "--quiet"]) == 0
    text = capsys.readouterr().out
    assert "2 epochs in" in text and "(4 in total)" in text
    assert main(["train", "--resume", str(out), "--quiet"]) == 0
    assert "0 epochs run (the run had finished)" in capsys.readouterr().out


def _cli(args, env_extra, cwd):
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    env.update(env_extra)
    return subprocess.run([sys.executable, "-m", "aecore", *args], capture_output=True,
                          text=True, env=env, cwd=cwd, timeout=300)


@pytest.mark.parametrize("variable, value", [
    ("AECORE_TIER", "bogus"), ("AECORE_HOST_CACHE_MB", "abc"), ("AECORE_HOST_CACHE_MB", "nan"),
    ("AECORE_HOST_CACHE_MB", "inf"), ("AECORE_HOST_CACHE_MB", "1e400"),
    ("AECORE_HOST_CACHE_MB", "-5"),
])
def test_a_bad_setting_is_one_line_and_creates_nothing(tmp_path, variable, value):
    proc = _cli(["train", *TINY_AE_ARGS, "--epochs", "1", "--out", "run"], {variable: value},
                tmp_path)
    assert proc.returncode == 2
    line = _one_line(proc.stderr)
    assert variable in line and repr(value) in line
    assert not (tmp_path / "run").exists()


def test_tier_cuda_without_a_gpu_is_one_line(tmp_path):
    if aecore.gpu_available():
        pytest.skip("a GPU is available here")
    proc = _cli(["train", *TINY_AE_ARGS, "--epochs", "1", "--out", "run"],
                {"AECORE_TIER": "cuda"}, tmp_path)
    assert proc.returncode == 2
    assert "AECORE_TIER" in _one_line(proc.stderr)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("content, words", [
    (b"", "empty"),
    (b"PK\x03\x04" + b"\x00" * 40, "npz"),
])
def test_a_damaged_npz_is_one_line_exit_2(tmp_path, capsys, content, words):
    path = tmp_path / "bad.npz"
    path.write_bytes(content)
    assert main(["train", "--data", str(path), "--out", str(tmp_path / "run"), "--quiet"]) == 2
    line = _one_line(capsys.readouterr().err)
    assert "bad.npz" in line and words in line
    assert not (tmp_path / "run").exists()


def test_a_data_set_of_zero_images_is_one_line_exit_2(tmp_path, capsys):
    path = tmp_path / "none.npz"
    np.savez(path, x_train=np.zeros((0, 28, 28), np.uint8))
    assert main(["train", "--data", str(path), "--out", str(tmp_path / "run"), "--quiet"]) == 2
    line = _one_line(capsys.readouterr().err)
    assert "none.npz" in line and "0 images" in line
