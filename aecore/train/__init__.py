"""Training: a config dict in, a run directory out.

    from aecore.train import train
    trainer = train({"model": "cae", "data": "synthetic", "epochs": 3}, out_dir="runs/demo")
    trainer.history          # [{"epoch": 1, "train_loss": ..., "val_loss": ..., ...}, ...]

or, with your own model / optimizer / data:

    trainer = Trainer(model, optimizer, dataset, config={"epochs": 5, "batch_size": 64},
                      out_dir="runs/mine")
    trainer.fit()

A run directory holds:
    config.json                   the full config (JSON-safe; `train(config)` repeats the run)
    checkpoint.npz/.json          written every epoch, atomically (aecore.io.checkpoint);
    checkpoint.prev.npz/.json     the one before it
    metrics.json, metrics.csv     per-epoch train / validation loss, the lr, the model's metrics
    *.png                         pictures written at the end (aecore.viz)

The package, a module per concern:
    config.py     DEFAULT_CONFIG, make_config (the one check of a config), RESUME_OVERRIDES
    build.py      load_data, build_model, build_optimizer, build_scheduler: what a config
                  names, made
    progress.py   ProgressBar, one epoch's progress line
    trainer.py    Trainer: the loop, its checkpointed state, why a run stops
    files.py      config.json, metrics.json, metrics.csv
    __init__.py   (here) the entry points train, resume and load_run
"""

from __future__ import annotations

import json
import os
import sys

from .. import random as ae_random
from ..distributed import current as current_world
from ..io.atomic import DiskFullError
from ..io.checkpoint import Checkpoint, CheckpointError, load_checkpoint
from ..io.rundir import RunDirectory
from .build import build_model, build_optimizer, build_scheduler, load_data
from .config import (DEFAULT_CONFIG, RESUME_OVERRIDES, Config, ConfigError, DeviceError,
                     default_run_dir, make_config)
from .progress import ProgressBar
from .trainer import NonFiniteLossError, NonFiniteStateError, Trainer

__all__ = ["DEFAULT_CONFIG", "RESUME_OVERRIDES", "Trainer", "train", "resume",
           "NonFiniteLossError", "NonFiniteStateError", "DiskFullError", "ConfigError",
           "DeviceError", "Config", "make_config", "load_data", "build_model", "build_optimizer",
           "build_scheduler", "load_run", "default_run_dir", "ProgressBar"]

# What goes wrong when a checkpoint's contents do not rebuild its run (each is reported as a
# CheckpointError naming the file, and resume() / load_run() fall back to the previous pair).
_REBUILD_ERRORS = (ConfigError, TypeError, KeyError, ValueError, AttributeError, RecursionError)


def train(config=None, out_dir=None, quiet=False, stream=None, callbacks=(), data=None,
          pictures=None, overwrite=False):
    """Train a model described by `config` (see DEFAULT_CONFIG); returns the Trainer.

    out_dir: the run directory (None: nothing written); one that already holds a run is refused
    unless overwrite=True, which deletes that run's files first. data: a Dataset to use instead
    of loading config["data"]. pictures: override config["pictures"]. After
    aecore.distributed.init(), every rank calls train() alike (config["batch_size"] is each
    rank's) and rank 0 writes the run.
    """
    config = make_config(config)  # the one check (a device that is not here fails now)
    ae_random.manual_seed(int(config["seed"]))
    dataset = load_data(config) if data is None else data
    model = build_model(config, dataset.images.shape[1:])
    optimizer = build_optimizer(config, model.parameters())
    trainer = Trainer(model, optimizer, dataset, config, out_dir=out_dir, quiet=quiet,
                      stream=stream, callbacks=callbacks, overwrite=overwrite)
    trainer.world.on_root(trainer.hold_run_dir)
    try:
        trainer.fit()
        _finish(trainer, pictures)
    finally:
        trainer.release_run_dir()
    return trainer


def resume(run_dir, overrides=None, quiet=False, stream=None, callbacks=(), data=None,
           pictures=None, out_dir=None, overwrite=False):
    """Continue the run in `run_dir` from its last good checkpoint; returns the Trainer.

    overrides: config values to change on the way (only RESUME_OVERRIDES: e.g. {"epochs": 10}
    to train longer, "patience", "device"). The run continues exactly where it stopped: the
    same batches, the same noise, the same optimizer state. A checkpoint pair whose files are
    damaged or whose contents do not rebuild the run is skipped for the previous pair, with a
    warning; when both are unusable, CheckpointError names both files and what is wrong with
    each. out_dir: write the continued run elsewhere (default: run_dir itself).

    With several ranks (aecore.distributed), rank 0 reads the checkpoint and sends it to the
    others; any rank count that divides the run's global batch (its batch_size x ranks) may
    continue it, each rank taking an equal part.
    """
    run_dir = os.fspath(run_dir)
    overrides = dict(overrides or {})
    changed = set(overrides) - set(RESUME_OVERRIDES)
    if changed:
        raise ConfigError(f"cannot change {sorted(changed)} when resuming (only "
                          f"{sorted(RESUME_OVERRIDES)}): the run would not continue exactly")
    if not os.path.isdir(run_dir):
        raise CheckpointError(f"{run_dir}: no such run directory")
    out_dir = os.fspath(out_dir or run_dir)
    same = os.path.abspath(out_dir) == os.path.abspath(run_dir)
    world = current_world()
    # Locked before the checkpoint is read: no other process can be writing it meanwhile.
    held = world.on_root(lambda: RunDirectory.open(out_dir, mode="resume" if same else
                                                   ("overwrite" if overwrite else "new")))
    try:
        datasets = {}

        def restore(checkpoint):
            """A Trainer rebuilt from `checkpoint`, or CheckpointError saying why it cannot be."""
            saved = {k: v for k, v in checkpoint.config.items()
                     if k not in ("input_shape", "model_config")}
            if isinstance(saved.get("batch_size"), int) and isinstance(saved.get("ranks", 1), int):
                saved["batch_size"] = _batch_per_rank(saved["batch_size"] * saved.get("ranks", 1),
                                                      world.size)
            try:
                config = make_config(dict(saved, **overrides))
            except (ConfigError, TypeError, AttributeError, ValueError) as e:
                raise CheckpointError(f"{checkpoint.path}: its config is unusable ({e})") from None
            key = json.dumps([config[k] for k in ("data", "data_root", "limit", "image_size",
                                                  "seed")])
            if data is None and key not in datasets:  # data errors are not the checkpoint's
                datasets[key] = load_data(config)
            dataset = data if data is not None else datasets[key]
            try:  # the weights, the optimizer's buffers and the generators come from load_state
                model = build_model(config, dataset.images.shape[1:],
                                    model_config=checkpoint.config.get("model_config"))
                optimizer = build_optimizer(config, model.parameters())
            except _REBUILD_ERRORS as e:
                raise CheckpointError(f"{checkpoint.path}: its model cannot be rebuilt "
                                      f"({type(e).__name__}: {e})") from None
            trainer = Trainer(model, optimizer, dataset, config, out_dir=out_dir, quiet=quiet,
                              stream=stream, callbacks=callbacks)
            return trainer.load_state(checkpoint)

        checkpoint = world.on_root(lambda: load_checkpoint(run_dir, validate=restore))
        if world.size > 1:        # the other ranks rebuild the run from rank 0's checkpoint
            sent = world.broadcast_object(Checkpoint(checkpoint.arrays, checkpoint.meta,
                                                     checkpoint.path, checkpoint.fallback_reason)
                                          if world.is_root else None, "the checkpoint")
            checkpoint = checkpoint if world.is_root else sent
        trainer = checkpoint.extra["validated"] if world.is_root else restore(checkpoint)
        trainer.run_dir = held
        say = (lambda text: None) if quiet or not world.is_root else \
            (lambda text: print(text, file=stream or sys.stderr))
        if checkpoint.fallback_reason:
            say(f"warning: {checkpoint.fallback_reason}; resuming from the previous checkpoint "
                f"(epoch {checkpoint.epoch})")
        if trainer.finished and trainer.epoch >= trainer.config["epochs"]:
            say(f"{run_dir}: the run already finished ({trainer.stop_reason}); pass a larger "
                "epochs (--epochs) to train longer")
        else:
            say(f"resuming {run_dir} after epoch {trainer.epoch} of {trainer.config['epochs']}")
        trainer.fit()
        _finish(trainer, pictures)
    finally:
        if held is not None:
            held.close()
    return trainer


def _batch_per_rank(global_batch, ranks):
    """Each rank's batch when `ranks` ranks continue a run of global batch `global_batch`."""
    if global_batch % ranks:
        error = ConfigError(f"the run's global batch is {global_batch} (its batch_size x ranks), "
                            f"which {ranks} ranks cannot share equally: resume with a number of "
                            "ranks that divides it")
        error.collective = True
        raise error
    return global_batch // ranks


def _finish(trainer, pictures):
    """The pictures of a finished fit() (aecore.viz), when the run has a directory and wants them."""
    if pictures is None:
        pictures = trainer.config["pictures"]
    if trainer.out_dir and pictures:
        from .. import viz
        validation = trainer.val_images is not None
        viz.write_run_pictures(trainer.model, trainer.out_dir,
                               trainer.val_images if validation else trainer.train_images,
                               trainer.val_labels if validation else trainer.train_labels,
                               trainer.history)


def load_run(run_dir, which="best", device="cpu"):
    """(model, config, checkpoint) from a run directory; which = "best" (the best epoch's
    weights when early stopping kept them) or "last". A pair whose contents do not rebuild the
    model falls back to the previous pair, as in resume()."""

    def rebuild(checkpoint):
        config = checkpoint.config
        model_config = config.get("model_config")  # absent from old runs: rebuilt from config
        try:
            model = build_model(config, config["input_shape"] if model_config is None else None,
                                model_config=model_config)
            group = "best" if which == "best" and "best" in checkpoint.arrays else "model"
            model.load_state_dict(checkpoint.arrays[group])
        except _REBUILD_ERRORS as e:
            raise CheckpointError(f"{checkpoint.path}: its model cannot be rebuilt "
                                  f"({type(e).__name__}: {e})") from None
        return model

    checkpoint = load_checkpoint(run_dir, validate=rebuild)
    model = checkpoint.extra["validated"]
    if device != "cpu":
        model.to(device)
    model.eval()
    return model, checkpoint.config, checkpoint
