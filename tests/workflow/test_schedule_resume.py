"""Training with an lr schedule and gradient clipping: the lr of every epoch in metrics.json, the
scheduler's state in the checkpoint, a scheduled run resumed bit-identically, and the flags of
`aecore train` going through the config gate."""

import json

import numpy as np
import pytest

from aecore.cli import main
from aecore.io.checkpoint import load_checkpoint
from aecore.train import ConfigError, Trainer, build_model, build_optimizer, load_data, \
    make_config, resume, train

from conftest import TINY_AE, TINY_AE_ARGS, TINY_VAE
from test_resume import Interrupt, _assert_same_run, _interrupt_after, _rewrite


def test_metrics_record_each_epochs_lr_and_the_line_shows_it(tmp_path, capsys):
    trainer = train(dict(TINY_AE, epochs=4, lr=0.004, lr_schedule="step:2:0.5"),
                    out_dir=tmp_path, stream=None)
    assert [r["lr"] for r in trainer.history] == [0.004, 0.004, 0.002, 0.002]
    doc = json.loads((tmp_path / "metrics.json").read_text())
    assert [r["lr"] for r in doc["epochs"]] == [0.004, 0.004, 0.002, 0.002]
    assert "lr" in (tmp_path / "metrics.csv").read_text().splitlines()[0].split(",")
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("epoch")]
    assert "lr 0.004" in lines[0] and "lr 0.002" in lines[2]
    assert trainer.optimizer.lr == 0.001                   # stepped after the last epoch too


def test_an_unscheduled_run_records_its_constant_lr_and_no_scheduler_state(tmp_path):
    trainer = train(dict(TINY_AE, epochs=2), out_dir=tmp_path, quiet=True)
    assert [r["lr"] for r in trainer.history] == [TINY_AE["lr"]] * 2
    assert load_checkpoint(tmp_path).meta["scheduler"] is None


def test_the_checkpoint_holds_the_schedulers_state(tmp_path):
    train(dict(TINY_AE, epochs=3, lr_schedule="cosine"), out_dir=tmp_path, quiet=True)
    meta = load_checkpoint(tmp_path).meta
    assert meta["scheduler"]["T_max"] == 3 and meta["scheduler"]["last_epoch"] == 3
    assert meta["optimizer"]["hyper"]["initial_lr"] == TINY_AE["lr"]


def test_plateau_cuts_the_lr_when_the_validation_loss_stalls():
    # an lr so small that the validation loss improves by far less than threshold (1e-4 rel)
    trainer = train(dict(TINY_AE, epochs=4, optimizer="sgd", lr=1e-4,
                         lr_schedule="plateau:0:0.5"), quiet=True)
    assert [r["lr"] for r in trainer.history] == [1e-4, 1e-4, 5e-5, 2.5e-5]


@pytest.mark.parametrize("schedule", ["step:1:0.5", "exp:0.8", "cosine:2:1e-4",
                                      "plateau:0:0.5"])
def test_a_scheduled_run_resumes_bit_identically(tmp_path, schedule):
    config = dict(TINY_VAE, epochs=4, lr_schedule=schedule, grad_clip=0.5)
    with pytest.raises(Interrupt):
        train(config, out_dir=tmp_path / "a", quiet=True, callbacks=[_interrupt_after(2)])
    resumed = resume(tmp_path / "a", quiet=True)
    straight = train(config, out_dir=tmp_path / "b", quiet=True)
    _assert_same_run(tmp_path / "a", tmp_path / "b")
    a, b = load_checkpoint(tmp_path / "a").meta, load_checkpoint(tmp_path / "b").meta
    assert a["scheduler"] == b["scheduler"] and a["scheduler"]["last_epoch"] == 4
    assert [r["lr"] for r in resumed.history] == [r["lr"] for r in straight.history]


def test_a_resumed_step_schedule_with_more_epochs_equals_a_longer_run(tmp_path):
    config = dict(TINY_AE, lr_schedule="step:2:0.5")
    train(dict(config, epochs=2), out_dir=tmp_path / "a", quiet=True)
    resume(tmp_path / "a", overrides={"epochs": 4}, quiet=True)
    train(dict(config, epochs=4), out_dir=tmp_path / "b", quiet=True)
    _assert_same_run(tmp_path / "a", tmp_path / "b")


@pytest.mark.parametrize("edit, reason", [
    (lambda d: d.update(scheduler=None), "holds no lr scheduler state"),
    (lambda d: d["scheduler"].update(gamma="half"), "gamma must be a number, got 'half'"),
    (lambda d: d["scheduler"].pop("last_epoch"), "missing keys ['last_epoch']"),
], ids=["no state", "bad value", "missing key"])
def test_a_bad_scheduler_state_falls_back_to_the_previous_pair(tmp_path, capsys, edit, reason):
    config = dict(TINY_AE, epochs=3, lr_schedule="step:1:0.5")
    with pytest.raises(Interrupt):
        train(config, out_dir=tmp_path / "a", quiet=True, callbacks=[_interrupt_after(2)])
    _rewrite(tmp_path / "a" / "checkpoint.json", edit)
    trainer = resume(tmp_path / "a")
    err = capsys.readouterr().err
    assert reason in err and "previous checkpoint (epoch 1)" in err
    assert [r["lr"] for r in trainer.history] == [TINY_AE["lr"] * 0.5 ** k for k in range(3)]


def test_grad_clip_bounds_the_gradients_of_every_step():
    from aecore import optim

    class RecordingSGD(optim.SGD):
        """SGD that notes the total norm of the gradients it is handed."""
        norms = []

        def step(self):
            grads = [p.grad.astype(np.float64).ravel() for p in self.params if p.grad is not None]
            self.norms.append(np.linalg.norm(np.concatenate(grads)))
            super().step()

    config = make_config(dict(TINY_AE, epochs=1, optimizer="sgd", lr=0.1, grad_clip=1e-3))
    dataset = load_data(config)
    model = build_model(config, dataset.images.shape[1:])
    trainer = Trainer(model, RecordingSGD(model.parameters(), lr=0.1), dataset, config,
                      quiet=True).fit()
    assert len(RecordingSGD.norms) == len(trainer.loader)
    # every gradient is far longer than 1e-3, so every step is clipped to that length
    np.testing.assert_allclose(RecordingSGD.norms, 1e-3, rtol=1e-4)


def test_a_trainer_takes_its_own_scheduler_but_not_two():
    from aecore.optim import lr_scheduler
    config = make_config(dict(TINY_AE, epochs=3))
    dataset = load_data(config)
    model = build_model(config, dataset.images.shape[1:])
    optimizer = build_optimizer(config, model.parameters())
    scheduler = lr_scheduler.LambdaLR(optimizer, lambda epoch: 1 / (1 + epoch))
    trainer = Trainer(model, optimizer, dataset, config, quiet=True, scheduler=scheduler).fit()
    assert [r["lr"] for r in trainer.history] == pytest.approx(
        [TINY_AE["lr"], TINY_AE["lr"] / 2, TINY_AE["lr"] / 3], rel=1e-12)
    with pytest.raises(ValueError, match="not both"):
        Trainer(model, optimizer, dataset, make_config(config, lr_schedule="exp:0.9"),
                scheduler=scheduler)


@pytest.mark.parametrize("key, value, message", [
    ("lr_schedule", "warmup:3", "lr_schedule must be one of step:STEP_SIZE\\[:GAMMA\\]"),
    ("lr_schedule", 0.5, "lr_schedule must be a text"),
    ("lr_schedule", "step:0", "step_size must be an integer >= 1, got 0"),
    ("grad_clip", 0, "grad_clip must be None or a positive number, got 0"),
    ("grad_clip", "1", "grad_clip must be None or a positive number, got '1'"),
    ("weight_decay", -0.1, "weight_decay must be None or a number >= 0, got -0.1"),
])
def test_the_config_gate_refuses_bad_values(key, value, message):
    with pytest.raises(ConfigError, match=message):
        make_config({key: value})


def test_adamw_takes_its_default_weight_decay_unless_told():
    config = make_config(dict(TINY_AE, optimizer="adamw"))
    model = build_model(config, (1, 28, 28))
    assert build_optimizer(config, model.parameters()).hyper["weight_decay"] == 0.01
    told = make_config(config, weight_decay=0.0)
    assert build_optimizer(told, model.parameters()).hyper["weight_decay"] == 0.0


def test_cli_flags_set_the_config(tmp_path):
    out = tmp_path / "run"
    assert main(["train", *TINY_AE_ARGS, "--epochs", "2", "--optimizer", "adamw",
                 "--lr-schedule", "exp:0.5", "--grad-clip", "2.5", "--no-pictures",
                 "--out", str(out)]) == 0
    config = json.loads((out / "config.json").read_text())
    assert (config["lr_schedule"], config["grad_clip"], config["optimizer"]) == \
        ("exp:0.5", 2.5, "adamw")
    doc = json.loads((out / "metrics.json").read_text())
    assert [r["lr"] for r in doc["epochs"]] == [1e-3, 5e-4]


def test_cli_bad_schedule_is_one_line_and_exit_2(tmp_path, capsys):
    assert main(["train", *TINY_AE_ARGS, "--lr-schedule", "cosine:x",
                 "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert "lr_schedule 'cosine:x': T_MAX must be an integer, got 'x'" in err
    assert not (tmp_path / "run").exists()


def test_cli_resume_refuses_a_new_schedule(tmp_path, capsys):
    train(dict(TINY_AE, epochs=1), out_dir=tmp_path, quiet=True)
    capsys.readouterr()
    assert main(["train", "--resume", str(tmp_path), "--lr-schedule", "exp:0.5"]) == 2
    assert "--lr-schedule" in capsys.readouterr().err
