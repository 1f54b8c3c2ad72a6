"""The Trainer: loss falls, early stopping, metrics files, progress output, NaN handling."""

import io
import json
import math

import numpy as np
import pytest

import aecore
from aecore import models
from aecore.io.checkpoint import load_checkpoint, verify_checkpoint
from aecore.train import (ConfigError, NonFiniteLossError, ProgressBar, Trainer, make_config,
                          train)

from conftest import TINY_AE, TINY_VAE, tiny_dataset


def test_loss_falls_on_a_tiny_synthetic_set(tmp_path):
    trainer = train(dict(TINY_AE, epochs=4), out_dir=tmp_path, quiet=True)
    losses = [r["train_loss"] for r in trainer.history]
    assert len(losses) == 4 and all(math.isfinite(v) for v in losses)
    assert losses[-1] < losses[0] - 0.02
    assert trainer.history[-1]["val_loss"] < trainer.history[0]["val_loss"]
    assert trainer.stop_reason == "completed 4 epochs"


def test_vae_trains_with_its_own_metrics(tmp_path):
    trainer = train(dict(TINY_VAE, epochs=2), out_dir=tmp_path, quiet=True)
    record = trainer.history[-1]
    assert {"train_loss", "val_loss", "train_kl", "val_kl"} <= set(record)
    assert all(math.isfinite(r["train_loss"]) and r["train_kl"] > 0 for r in trainer.history)


def test_metrics_files(tmp_path):
    trainer = train(TINY_AE, out_dir=tmp_path, quiet=True)
    doc = json.loads((tmp_path / "metrics.json").read_text())
    assert doc["status"] == "finished" and doc["epochs_completed"] == 3
    assert [r["epoch"] for r in doc["epochs"]] == [1, 2, 3]
    assert doc["epochs"][-1]["train_loss"] == trainer.history[-1]["train_loss"]
    assert doc["best_epoch"] == trainer.best_epoch and doc["monitor"] == "val_loss"
    assert doc["train_size"] + doc["val_size"] == 240 and doc["val_size"] == 60
    rows = (tmp_path / "metrics.csv").read_text().strip().splitlines()
    header = rows[0].split(",")
    assert header[:3] == ["epoch", "train_loss", "val_loss"] and len(rows) == 4
    assert float(rows[3].split(",")[1]) == trainer.history[-1]["train_loss"]
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["model"] == "ae" and config["input_shape"] == [1, 28, 28]
    assert config["model_config"]["kind"] == "ae"
    # the config alone repeats the run
    again = train({k: v for k, v in config.items() if k not in ("input_shape", "model_config")},
                  quiet=True)
    assert [r["train_loss"] for r in again.history] == [r["train_loss"] for r in trainer.history]


def test_early_stopping(tmp_path):
    # a learning rate so small that nothing improves by min_delta: stops after patience epochs
    config = dict(TINY_AE, epochs=10, optimizer="sgd", lr=1e-9, patience=2, min_delta=1e-3)
    trainer = train(config, out_dir=tmp_path, quiet=True)
    assert trainer.epoch == 3 and len(trainer.history) == 3
    assert trainer.best_epoch == 1
    assert trainer.stop_reason.startswith("early stopping")
    doc = json.loads((tmp_path / "metrics.json").read_text())
    assert doc["status"] == "finished" and doc["stop_reason"].startswith("early stopping")
    assert load_checkpoint(tmp_path).meta["trainer"]["finished"] is True


def test_early_stopping_keeps_the_best_weights(tmp_path):
    def spoil(trainer, record):  # after epoch 2: scrambled weights that no longer train
        if record["epoch"] == 2:
            rng = np.random.default_rng(0)
            for p in trainer.model.parameters():
                p.data += rng.standard_normal(p.shape).astype(p.dtype)
            trainer.optimizer.lr = 0.0

    config = dict(TINY_AE, epochs=8, patience=2, restore_best=True)
    trainer = train(config, out_dir=tmp_path, quiet=True, callbacks=[spoil])
    assert trainer.best_epoch == 2 and trainer.epoch == 4
    checkpoint = load_checkpoint(tmp_path)
    best = trainer.best_state
    for name, array in trainer.model.state_dict().items():   # in memory: the best weights
        np.testing.assert_array_equal(array, best[name])
        np.testing.assert_array_equal(checkpoint.arrays["best"][name], array)
    last = checkpoint.arrays["model"]                          # the checkpoint's last weights
    assert any(not np.array_equal(last[k], best[k]) for k in best)


def test_progress_output_tty_and_not(tmp_path):
    class TTY(io.StringIO):
        def isatty(self):
            return True

    plain = io.StringIO()
    train(dict(TINY_AE, epochs=2), stream=plain)
    lines = plain.getvalue().strip().splitlines()
    assert len(lines) == 2 and "\r" not in plain.getvalue()   # one line per epoch, no redraws
    assert lines[0].startswith("epoch 1/2") and "img/s" in lines[0] and "val" in lines[0]
    bar = ProgressBar(1, 3, total_batches=4, stream=TTY())
    for k in range(1, 5):
        bar.last_draw = -1.0
        bar.update(k, 32 * k, 0.5)
    bar.close("epoch 1/3 done")
    text = bar.stream.getvalue()
    assert text.count("\r") >= 4 and "ETA" in text and "img/s" in text and "loss 0.5000" in text
    quiet = io.StringIO()
    train(dict(TINY_AE, epochs=1), stream=quiet, quiet=True)
    assert quiet.getvalue() == ""


def _nan_at(model, call):
    """Make model.loss return NaN at its `call`-th call (1-based)."""
    real = model.loss
    count = [0]

    def loss(x, target=None):
        count[0] += 1
        value, metrics = real(x, target)
        if count[0] == call:
            value = value * aecore.tensor(float("nan"))
        return value, metrics

    model.loss = loss
    return model


def test_nan_loss_stops_with_the_step_named_and_checkpoint_kept(tmp_path):
    config = make_config(TINY_AE)
    aecore.manual_seed(0)
    dataset = tiny_dataset(n=96, size=28)
    model = models.build_model("ae", input_shape=(1, 28, 28), hidden=[32], latent_dim=4)
    optimizer = aecore.optim.Adam(model.parameters(), lr=1e-3)
    trainer = Trainer(model, optimizer, dataset, config, out_dir=tmp_path, quiet=True)
    batches = len(trainer.loader)       # 72 training images / 32 -> 3 batches
    # epoch 1: `batches` training calls + 1 validation call; NaN at epoch 2, batch 2
    _nan_at(model, batches + 1 + 2)
    saved = {}
    trainer.callbacks.append(lambda t, r: saved.update(t.model.state_dict()))
    with pytest.raises(NonFiniteLossError) as info:
        trainer.fit()
    message = str(info.value)
    assert "epoch 2, batch 2" in message and "nan" in message
    assert info.value.epoch == 2 and info.value.batch == 2
    assert "checkpoint" in message and "epoch 1" in message
    verify_checkpoint(tmp_path)
    checkpoint = load_checkpoint(tmp_path, fallback=False)
    assert checkpoint.epoch == 1
    for name, array in saved.items():
        np.testing.assert_array_equal(checkpoint.arrays["model"][name], array)
    doc = json.loads((tmp_path / "metrics.json").read_text())
    assert doc["status"] == "failed" and "epoch 2, batch 2" in doc["stop_reason"]


def test_losses_read_every_few_steps_still_name_the_first_bad_step(tmp_path):
    """A GPU run reads its losses back every Trainer.read_every steps (the CPU every step); the
    same logic on the CPU with reads every 4 steps: a NaN at batch 2 is found at the read of
    batch 4 and named as batch 2, and the epoch's progress is reported at the reads only."""
    config = make_config(dict(TINY_AE, batch_size=8))
    aecore.manual_seed(0)
    dataset = tiny_dataset(n=96, size=28)
    model = models.build_model("ae", input_shape=(1, 28, 28), hidden=[32], latent_dim=4)
    optimizer = aecore.optim.Adam(model.parameters(), lr=1e-3)
    trainer = Trainer(model, optimizer, dataset, config, out_dir=tmp_path, quiet=True)
    trainer.read_every = 4
    updates = []

    class Progress:
        def update(self, batch, seen, mean_loss):
            updates.append((batch, mean_loss))

    history = trainer.train_epoch(1, Progress())       # 72 training images / 8 -> 9 batches
    assert [batch for batch, _ in updates] == [4, 8, 9]    # and always the epoch's last
    assert all(isinstance(v, float) for v in history.values())
    _nan_at(model, 2)
    with pytest.raises(NonFiniteLossError) as info:
        trainer.train_epoch(2)
    assert info.value.epoch == 2 and info.value.batch == 2
    message = str(info.value)
    assert "batch 2 of 9" in message and "read back at batch 4" in message


def test_bad_config_is_a_config_error():
    with pytest.raises(ConfigError, match="epochs"):
        make_config(epochs=0)
    with pytest.raises(ConfigError, match="unknown config keys"):
        make_config({"epoch": 3})
    with pytest.raises(ConfigError, match="optimizer"):
        make_config(optimizer="lbfgs")
    with pytest.raises(ConfigError, match="unknown option"):
        train(dict(TINY_AE, model_options={"wings": 2}), quiet=True)


def test_cuda_without_gpu_is_a_clear_error():
    if aecore.gpu_available():
        pytest.skip("a GPU is available here")
    with pytest.raises(RuntimeError, match="no GPU is usable"):
        train(dict(TINY_AE, device="cuda"), quiet=True)
