"""Kill-and-resume: a run stopped after a checkpoint and resumed ends with bit-identical weights,
optimizer state and losses to one never interrupted (same seed)."""

import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from aecore.io.checkpoint import load_checkpoint
from aecore.train import ConfigError, resume, train

from conftest import TINY_AE, TINY_DAE, TINY_VAE

KILLER = textwrap.dedent("""
    import json, os, signal, sys
    from aecore.train import train

    config, out, kill_after = json.loads(sys.argv[1]), sys.argv[2], int(sys.argv[3])

    def kill(trainer, record):
        if record["epoch"] == kill_after:       # the checkpoint of this epoch is on disk
            os.kill(os.getpid(), signal.SIGKILL)

    train(config, out_dir=out, quiet=True, callbacks=[kill])
""")


def _assert_same_run(a_dir, b_dir):
    a, b = load_checkpoint(a_dir, fallback=False), load_checkpoint(b_dir, fallback=False)
    assert a.epoch == b.epoch
    for group in ("model", "optim", "best"):
        assert sorted(a.arrays[group]) == sorted(b.arrays[group])
        for name in a.arrays[group]:
            x, y = a.arrays[group][name], b.arrays[group][name]
            assert x.dtype == y.dtype and x.tobytes() == y.tobytes(), f"{group}:{name} differs"
    losses = lambda c: [(r["train_loss"], r["val_loss"]) for r in c.meta["metrics"]]  # noqa: E731
    assert losses(a) == losses(b)
    assert a.meta["rng"] == b.meta["rng"]
    assert a.meta["optimizer"] == b.meta["optimizer"]


def _env():
    """The subprocesses import the installed aecore (the same interpreter as the tests)."""
    return dict(os.environ)


def test_killed_subprocess_resumes_bit_identically(tmp_path):
    config = dict(TINY_VAE, epochs=4)
    killed, reference = tmp_path / "killed", tmp_path / "reference"
    script = tmp_path / "killer.py"
    script.write_text(KILLER)
    proc = subprocess.run([sys.executable, str(script), json.dumps(config), str(killed), "2"],
                          env=_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert load_checkpoint(killed, fallback=False).epoch == 2
    # resume through the command line, in a fresh process
    proc = subprocess.run([sys.executable, "-m", "aecore", "train", "--resume", str(killed),
                           "--quiet"], env=_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert load_checkpoint(killed).epoch == 4
    train(config, out_dir=reference, quiet=True)
    _assert_same_run(killed, reference)


class Interrupt(Exception):
    pass


def _interrupt_after(epoch):
    def callback(trainer, record):
        if record["epoch"] == epoch:
            raise Interrupt
    return callback


@pytest.mark.parametrize("config", [TINY_DAE, TINY_AE], ids=["dae", "ae"])
def test_interrupted_in_process_resumes_bit_identically(tmp_path, config):
    config = dict(config, epochs=3, patience=5)
    with pytest.raises(Interrupt):
        train(config, out_dir=tmp_path / "a", quiet=True, callbacks=[_interrupt_after(1)])
    resume(tmp_path / "a", quiet=True)
    train(config, out_dir=tmp_path / "b", quiet=True)
    _assert_same_run(tmp_path / "a", tmp_path / "b")


def test_resume_from_previous_checkpoint_when_current_is_corrupt(tmp_path, capsys):
    config = dict(TINY_VAE, epochs=3)
    with pytest.raises(Interrupt):
        train(config, out_dir=tmp_path / "a", quiet=True, callbacks=[_interrupt_after(2)])
    npz = tmp_path / "a" / "checkpoint.npz"
    npz.write_bytes(npz.read_bytes()[:100])       # truncated: epoch 2 is lost, epoch 1 is kept
    trainer = resume(tmp_path / "a")
    assert "truncated" in capsys.readouterr().err
    assert trainer.epoch == 3
    train(config, out_dir=tmp_path / "b", quiet=True)
    _assert_same_run(tmp_path / "a", tmp_path / "b")


def test_resume_with_more_epochs_equals_a_longer_run(tmp_path):
    train(dict(TINY_AE, epochs=2), out_dir=tmp_path / "a", quiet=True)
    resume(tmp_path / "a", overrides={"epochs": 3}, quiet=True)
    train(dict(TINY_AE, epochs=3), out_dir=tmp_path / "b", quiet=True)
    _assert_same_run(tmp_path / "a", tmp_path / "b")


def test_resume_refuses_changes_that_break_exactness(tmp_path):
    train(dict(TINY_AE, epochs=1), out_dir=tmp_path, quiet=True)
    with pytest.raises(ConfigError, match="lr"):
        resume(tmp_path, overrides={"lr": 0.1}, quiet=True)


def test_conv_model_resumes_bit_identically(tmp_path):
    """The same with the CAE, whose kernels are the Numba ones (deterministic: no atomics)."""
    from conftest import tiny_dataset
    data = tiny_dataset(n=96, size=12)
    config = dict(TINY_AE, model="cae", model_options={"filters": [4, 4]}, epochs=3,
                  batch_size=16)
    with pytest.raises(Interrupt):
        train(config, data=data, out_dir=tmp_path / "a", quiet=True,
              callbacks=[_interrupt_after(2)])
    resume(tmp_path / "a", data=data, quiet=True)
    train(config, data=data, out_dir=tmp_path / "b", quiet=True)
    _assert_same_run(tmp_path / "a", tmp_path / "b")


# ---------------------------------------------------------------------------------------------
# a checkpoint JSON that parses, hashes right, and is still wrong: fall back to the previous pair
# ---------------------------------------------------------------------------------------------

def _rewrite(path, edit):
    """Edit a checkpoint JSON and give it a matching checksum (as a buggy writer would)."""
    from aecore.io.checkpoint import document_sha256
    document = json.loads(path.read_text())
    edit(document)
    document["sha256"] = document_sha256(document)
    path.write_text(json.dumps(document))


def _other_model(d):
    d["config"]["model_config"]["latent_dim"] = 7


MALFORMED = {
    "wrong types": lambda d: d.update(epoch="two"),
    "missing keys": lambda d: d.pop("trainer"),
    "random state of another generator": lambda d: d["rng"]["aecore"].update(
        bit_generator="MT19937"),
    "changed model config": _other_model,
    "loader state of another data set": lambda d: d["rng"]["loader"].update(num_samples=999),
    "optimizer of another kind": lambda d: d["optimizer"].update(type="SGD"),
    "metrics and epoch disagree": lambda d: d.update(metrics=[]),
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_a_malformed_current_pair_falls_back_to_the_previous(tmp_path, capsys, name):
    config = dict(TINY_AE, epochs=3)
    with pytest.raises(Interrupt):
        train(config, out_dir=tmp_path / "a", quiet=True, callbacks=[_interrupt_after(2)])
    _rewrite(tmp_path / "a" / "checkpoint.json", MALFORMED[name])
    trainer = resume(tmp_path / "a")
    err = capsys.readouterr().err
    assert "warning:" in err and "checkpoint.json" in err and "previous checkpoint (epoch 1)" in err
    assert len([line for line in err.splitlines() if line.startswith("warning")]) == 1
    assert trainer.epoch == 3
    train(config, out_dir=tmp_path / "b", quiet=True)
    _assert_same_run(tmp_path / "a", tmp_path / "b")


def test_both_pairs_malformed_exits_2_naming_both(tmp_path, capsys):
    from aecore.cli import main
    train(dict(TINY_AE, epochs=2), out_dir=tmp_path, quiet=True)
    _rewrite(tmp_path / "checkpoint.json", MALFORMED["wrong types"])
    _rewrite(tmp_path / "checkpoint.prev.json", MALFORMED["loader state of another data set"])
    capsys.readouterr()
    assert main(["train", "--resume", str(tmp_path), "--epochs", "3"]) == 2
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1
    assert "checkpoint.json" in err and "epoch must be an integer" in err
    assert "checkpoint.prev.json" in err and "999" in err


def test_load_run_falls_back_when_the_model_config_changed(tmp_path, capsys):
    from aecore.train import load_run
    train(dict(TINY_AE, epochs=2), out_dir=tmp_path, quiet=True)
    _rewrite(tmp_path / "checkpoint.json", _other_model)
    model, config, checkpoint = load_run(tmp_path)
    assert checkpoint.epoch == 1 and "cannot be rebuilt" in checkpoint.fallback_reason
