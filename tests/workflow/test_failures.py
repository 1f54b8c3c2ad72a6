"""How a run stops when something goes wrong: a diverged optimizer state, a full disk. Each stop
is one line with its own exit status, the last good checkpoint stays intact, and metrics.json
records why."""

import errno
import json
import os
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest

import aecore
from aecore.cli import main
from aecore.io import atomic
from aecore.io.checkpoint import load_checkpoint
from aecore.train import NonFiniteStateError, train

from conftest import TINY_AE, TINY_AE_ARGS


def _temp_files(directory):
    return sorted(name for name in os.listdir(directory) if name.startswith(".tmp-"))


def _inf_into_adam_at(monkeypatch, step):
    """Make Adam's second moment overflow at its `step`-th update (the loss stays finite)."""
    real = aecore.optim.Adam.step

    def step_then_overflow(self):
        real(self)
        if self.step_count == step:
            self.state[1]["exp_avg_sq"][0] = np.inf

    monkeypatch.setattr(aecore.optim.Adam, "step", step_then_overflow)


def test_a_non_finite_optimizer_buffer_stops_the_run(tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    batches = 5                                    # 160 images, 10% validation, batch 32
    _inf_into_adam_at(monkeypatch, batches + 2)    # epoch 2, batch 2
    assert main(["train", *TINY_AE_ARGS, "--epochs", "3", "--no-pictures",
                 "--out", str(out)]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert "exp_avg_sq" in err and "epoch 2, batch 2" in err and "epoch 1" in err
    checkpoint = load_checkpoint(out, fallback=False)
    assert checkpoint.epoch == 1
    for group in checkpoint.arrays.values():
        assert all(np.isfinite(a).all() for a in group.values())
    doc = json.loads((out / "metrics.json").read_text())
    assert doc["status"] == "failed" and "exp_avg_sq" in doc["stop_reason"]


def test_the_non_finite_check_names_the_parameter(tmp_path, monkeypatch):
    real = aecore.optim.Adam.step

    def step_then_nan(self):
        real(self)
        self.params[0].data[0, 0] = np.nan

    monkeypatch.setattr(aecore.optim.Adam, "step", step_then_nan)
    with pytest.raises(NonFiniteStateError) as info:
        train(dict(TINY_AE, epochs=1), quiet=True)
    assert info.value.tensor.startswith("parameter ") and info.value.batch == 1


def test_a_huge_learning_rate_on_the_cae_stops_as_diverged(tmp_path, capsys):
    """The issue's case: Adam at lr 1e3 on the CAE 'completed' with exit 0 and inf in nine
    optimizer buffers of its checkpoint; the loss alone never showed it."""
    out = tmp_path / "run"
    status = main(["train", "--model", "cae", "--lr", "1000", "--epochs", "2", "--limit", "200",
                   "--seed", "0", "--no-pictures", "--out", str(out)])
    err = capsys.readouterr().err
    assert status == 1, err
    line = [x for x in err.splitlines() if "training stopped" in x]
    assert len(line) == 1 and "holds NaN or Inf" in line[0] and "Traceback" not in err
    if (out / "checkpoint.json").exists():
        for group in load_checkpoint(out).arrays.values():
            assert all(np.isfinite(a).all() for a in group.values())


def test_numpy_warnings_are_silenced_inside_the_guarded_step(tmp_path, monkeypatch, capsys):
    from aecore.models import dense
    real = dense.AE.loss

    def overflowing_loss(self, x, target=None):
        value, metrics = real(self, x, target)
        big = np.float32(3e38) * np.float32(10)            # overflow: a RuntimeWarning
        return value * aecore.tensor(big), metrics

    monkeypatch.setattr(dense.AE, "loss", overflowing_loss)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        status = main(["train", *TINY_AE_ARGS, "--epochs", "1", "--out", str(tmp_path / "r")])
    assert status == 1
    err = capsys.readouterr().err
    assert "RuntimeWarning" not in err and "inf" in err


def _fill_disk_at(monkeypatch, target_name, call):
    """The `call`-th write of a temporary file for `target_name` fails with ENOSPC after
    writing part of it, as a full disk does."""
    real = atomic._write_temp_file
    count = [0]

    def write(directory, data, suffix, prefix):
        if target_name in suffix or target_name.endswith(suffix):
            count[0] += 1
            if count[0] == call:
                path = real(directory, data[: len(data) // 3], suffix, prefix)
                os.unlink(path)      # the real writer removes its partial file; so do we
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(directory, data, suffix, prefix)

    monkeypatch.setattr(atomic, "_write_temp_file", write)


def test_disk_full_during_a_save_exits_3_and_keeps_the_last_good_checkpoint(
        tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    _fill_disk_at(monkeypatch, ".npz", call=2)           # the checkpoint of epoch 2
    status = main(["train", *TINY_AE_ARGS, "--epochs", "3", "--no-pictures", "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert status == 3, err
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert "checkpoint.npz" in err and "bytes needed" in err and "free" in err
    assert "last good checkpoint" in err and "epoch 1" in err
    assert load_checkpoint(out, fallback=False).epoch == 1
    doc = json.loads((out / "metrics.json").read_text())
    assert doc["status"] == "stopped: disk full" and "checkpoint.npz" in doc["stop_reason"]
    assert _temp_files(out) == []
    # space is back: the run continues from its last good checkpoint
    monkeypatch.undo()
    assert main(["train", "--resume", str(out), "--quiet"]) == 0
    assert load_checkpoint(out, fallback=False).epoch == 3


FILE_SIZE_LIMIT = textwrap.dedent("""
    import resource, signal, sys
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)   # a write past the limit fails with EFBIG
    limit = int(sys.argv[1])
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    from aecore.cli import main
    sys.exit(main(sys.argv[2:]))
""")


@pytest.mark.skipif(not hasattr(os, "fork") or sys.platform == "darwin",
                    reason="RLIMIT_FSIZE as a small disk needs Linux")
def test_a_real_write_limit_in_a_subprocess(tmp_path):
    """A real failed write from the kernel (EFBIG under a file size limit): the checkpoint is
    too big, the small JSON files are not."""
    out = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-c", FILE_SIZE_LIMIT, "60000", "train",
                           *TINY_AE_ARGS, "--epochs", "2", "--no-pictures", "--out", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 3, proc.stderr
    err = proc.stderr.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert "checkpoint.npz" in err and "no checkpoint was written yet" in err
    doc = json.loads((out / "metrics.json").read_text())
    assert doc["status"] == "stopped: disk full"
    assert _temp_files(out) == []
