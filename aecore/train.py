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
    metrics.json, metrics.csv     per-epoch train / validation loss and the model's other metrics
    *.png                         pictures written at the end (aecore.viz)

What makes a resumed run bit-identical to an uninterrupted one: the checkpoint holds the
weights, the optimizer's buffers and step count, aecore.random's generator state (noise, VAE
sampling), the DataLoader's generator state (the next epoch's shuffle), and the early-stopping
state. Validation draws its noise from a generator seeded the same way every epoch and then
restores the training generator, so validation never changes what training sees (and the DAE's
and VAE's validation losses are comparable from epoch to epoch).

Stopping: after `epochs` epochs; earlier when the monitored loss (validation loss, or the train
loss without a validation set) has not improved by more than `min_delta` for `patience` epochs
(patience 0 or None: never); or with NonFiniteLossError as soon as a loss is NaN or infinite
(the step is named, the weights are not updated, the last checkpoint stays as it was).
"""

from __future__ import annotations

import copy
import csv
import datetime
import io
import json
import math
import os
import sys
import time

import numpy as np

from . import random as ae_random
from .backend import normalize_device
from .data import DataLoader, Dataset, load_dataset, split_dataset
from .io.checkpoint import (json_safe, load_checkpoint, pack_optimizer_state, save_checkpoint,
                            unpack_optimizer_state)
from .optim import OPTIMIZERS
from .tensor import no_grad, tensor

__all__ = ["DEFAULT_CONFIG", "Trainer", "train", "resume", "NonFiniteLossError", "ConfigError",
           "make_config", "load_data", "build_model", "build_optimizer", "load_run",
           "default_run_dir", "ProgressBar"]

# The defaults of `aecore train` with no arguments: the classic CAE on the built-in synthetic
# digits, sized to take about a minute on two CPU cores: measured 7.7-10 s per epoch of 2,700
# images (batch 32) on a 2-core machine when it was quiet, after the first run's Numba compile.
DEFAULT_CONFIG = {
    "model": "cae",             # ae | cae | dae | vae
    "model_options": {},        # passed to aecore.models.build_model (latent_dim, filters, ...)
    "data": "synthetic",        # a name (synthetic, mnist, fashion-mnist, kmnist) or a path
    "data_root": None,          # a directory searched first for named sets
    "limit": None,              # keep the first N images (None: all; synthetic: 3000)
    "image_size": None,         # image folders only: resize to this size
    "val_fraction": 0.1,
    "epochs": 5,
    "batch_size": 32,
    "optimizer": "adam",        # adam | sgd | rmsprop
    "lr": 1e-3,
    "momentum": 0.0,            # sgd / rmsprop
    "weight_decay": 0.0,
    "patience": 0,              # early stopping: epochs without improvement (0: off)
    "min_delta": 0.0,
    "restore_best": True,       # at the end, keep the weights of the best epoch in memory
    "seed": 0,
    "device": "cpu",            # cpu | cuda
    "pictures": True,           # write PNGs into the run directory at the end
}


# How many synthetic digits are generated when config["limit"] does not say.
SYNTHETIC_SIZE = 3000


class ConfigError(ValueError):
    """A config value is missing, unknown or out of range (a user error: the CLI exits 2)."""


class NonFiniteLossError(FloatingPointError):
    """The loss became NaN or infinite; .epoch and .batch name the step."""

    def __init__(self, message, epoch, batch, value):
        super().__init__(message)
        self.epoch, self.batch, self.value = epoch, batch, value


# ---------------------------------------------------------------------------------------------
# config
# ---------------------------------------------------------------------------------------------

def make_config(config=None, **overrides):
    """DEFAULT_CONFIG updated with `config` and `overrides`, checked. Unknown keys are an error."""
    merged = copy.deepcopy(DEFAULT_CONFIG)
    for source in (config or {}), overrides:
        unknown = set(source) - set(DEFAULT_CONFIG) - {"input_shape", "model_config", "version"}
        if unknown:
            raise ConfigError(f"unknown config keys {sorted(unknown)}; known: "
                              f"{sorted(DEFAULT_CONFIG)}")
        for key, value in source.items():
            if key == "model_options":
                merged[key] = dict(merged[key], **(value or {}))
            else:
                merged[key] = value
    _check_config(merged)
    return json_safe(merged)


def _check_config(c):
    def positive_int(key, allow_none=False, minimum=1):
        v = c[key]
        if v is None and allow_none:
            return
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < minimum:
            raise ConfigError(f"{key} must be an integer >= {minimum}, got {v!r}")

    positive_int("epochs")
    positive_int("batch_size")
    positive_int("limit", allow_none=True)
    positive_int("patience", allow_none=True, minimum=0)
    positive_int("seed", minimum=0)
    if c["model"] not in ("ae", "cae", "dae", "vae"):
        raise ConfigError(f"model must be one of ae, cae, dae, vae, got {c['model']!r}")
    if str(c["optimizer"]).lower() not in OPTIMIZERS:
        raise ConfigError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got "
                          f"{c['optimizer']!r}")
    try:
        lr = float(c["lr"])
    except (TypeError, ValueError):
        lr = float("nan")
    if not (lr > 0 and math.isfinite(lr)):
        raise ConfigError(f"lr must be a positive number, got {c['lr']!r}")
    vf = c["val_fraction"]
    if isinstance(vf, bool) or not isinstance(vf, (int, float)) or not 0 <= vf < 1:
        raise ConfigError(f"val_fraction must be a number in [0, 1), got {vf!r}")
    if c["device"] not in ("cpu", "cuda"):
        raise ConfigError(f"device must be cpu or cuda, got {c['device']!r}")
    if not isinstance(c["model_options"], dict):
        raise ConfigError("model_options must be a dict")


def default_run_dir(config, base="runs"):
    """runs/<model>-<YYYYmmdd-HHMMSS>, with -2, -3, ... appended if that exists."""
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    path = os.path.join(base, f"{config['model']}-{stamp}")
    candidate, k = path, 2
    while os.path.exists(candidate):
        candidate, k = f"{path}-{k}", k + 1
    return candidate


# ---------------------------------------------------------------------------------------------
# building blocks: data, model, optimizer
# ---------------------------------------------------------------------------------------------

def load_data(config, data=None, limit="config") -> Dataset:
    """The data set named by config["data"] (or `data`), training split only when the files
    hold both, capped at config["limit"] images."""
    name = config["data"] if data is None else data
    n = config["limit"] if limit == "config" else limit
    if isinstance(name, str) and name.strip().lower() == "synthetic":
        return load_dataset("synthetic", split="train", n=n or SYNTHETIC_SIZE,
                            seed=config["seed"])
    ds = load_dataset(name, split=None, root=config.get("data_root"), n=None,
                      image_size=config.get("image_size"))
    if "train" in ds.splits and len(ds.splits) > 1:  # never train on the test split
        ds = ds.subset(np.arange(ds.splits["train"]), name=ds.name)
    if n is not None and n < len(ds):
        ds = ds.subset(np.arange(n), name=ds.name)
    return ds


def _models():
    from . import models
    return models


def build_model(config, input_shape):
    """A fresh model for config (draws its initial weights from aecore.random)."""
    options = {k: v for k, v in (config.get("model_options") or {}).items() if v is not None}
    try:
        return _models().build_model(config["model"], input_shape=tuple(input_shape), **options)
    except (TypeError, ValueError, KeyError) as e:
        raise ConfigError(f"cannot build a {config['model']!r} model with options {options}: "
                          f"{e}") from None


def build_optimizer(config, parameters):
    name = str(config["optimizer"]).lower()
    kwargs = {"lr": float(config["lr"])}
    if config.get("weight_decay"):
        kwargs["weight_decay"] = float(config["weight_decay"])
    if config.get("momentum") and name in ("sgd", "rmsprop"):
        kwargs["momentum"] = float(config["momentum"])
    return OPTIMIZERS[name](parameters, **kwargs)


def _as_images(part):
    if isinstance(part, Dataset):
        return part.images, part.labels
    if isinstance(part, tuple):
        return part
    return np.asarray(part), None


# ---------------------------------------------------------------------------------------------
# progress
# ---------------------------------------------------------------------------------------------

def _clock(seconds):
    seconds = int(round(max(seconds, 0)))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class ProgressBar:
    """One epoch's progress on a text stream (stderr by default). No dependencies.

    On a terminal the line is redrawn in place (at most ~10 times a second):
        epoch 2/5 [##########..........] 24/47  1534 img/s  loss 0.1821  ETA 0:07
    When the stream is not a terminal (a log file, a pipe, CI), nothing is written until the
    epoch ends; then one line per epoch. enabled=False writes nothing at all.
    """

    width = 20

    def __init__(self, epoch, epochs, total_batches, stream=None, enabled=True, interactive=None):
        self.stream = sys.stderr if stream is None else stream
        self.enabled = enabled
        if interactive is None:
            isatty = getattr(self.stream, "isatty", None)
            interactive = bool(isatty and isatty())
        self.interactive = interactive and enabled
        self.epoch, self.epochs, self.total = epoch, epochs, total_batches
        self.start = time.perf_counter()
        self.last_draw = 0.0
        self.drawn = 0

    def update(self, batches, items, loss):
        if not self.interactive:
            return
        now = time.perf_counter()
        if now - self.last_draw < 0.1 and batches < self.total:
            return
        self.last_draw = now
        elapsed = now - self.start
        rate = items / elapsed if elapsed > 0 else 0.0
        eta = elapsed / batches * (self.total - batches) if batches else 0.0
        filled = int(self.width * batches / max(self.total, 1))
        line = (f"epoch {self.epoch}/{self.epochs} [{'#' * filled}{'.' * (self.width - filled)}] "
                f"{batches}/{self.total}  {rate:,.0f} img/s  loss {loss:.4f}  ETA {_clock(eta)}")
        self._draw(line)

    def _draw(self, line):
        pad = max(self.drawn - len(line), 0)
        self.stream.write("\r" + line + " " * pad)
        self.stream.flush()
        self.drawn = len(line)

    def close(self, summary):
        if not self.enabled:
            return
        if self.interactive:
            self._draw(summary)
            self.stream.write("\n")
        else:
            self.stream.write(summary + "\n")
        self.stream.flush()


# ---------------------------------------------------------------------------------------------
# the trainer
# ---------------------------------------------------------------------------------------------

class _FixedRNG:
    """Run a block with aecore.random seeded to `seed`, then put the previous state back."""

    def __init__(self, seed):
        self.seed = seed

    def __enter__(self):
        self.saved = copy.deepcopy(ae_random.get_rng_state())
        ae_random.set_rng_state(np.random.PCG64(self.seed).state)

    def __exit__(self, *exc):
        ae_random.set_rng_state(self.saved)
        return False


class Trainer:
    """Trains `model` with `optimizer` on `data`, one epoch at a time.

    model:     an aecore.models model (has .loss(x) -> (loss Tensor, metrics dict))
    optimizer: an aecore.optim optimizer over the model's parameters
    data:      a Dataset (split into train / validation by config["val_fraction"] and seed),
               or a pair (train, validation), each a Dataset, an array, or (images, labels);
               validation may be None
    config:    see DEFAULT_CONFIG (missing keys take the defaults)
    out_dir:   the run directory (config.json, checkpoints, metrics, pictures); None: keep
               nothing on disk
    quiet:     no progress output; stream: where progress goes (default sys.stderr)
    callbacks: functions called as callback(trainer, record) after each epoch's checkpoint
    """

    def __init__(self, model, optimizer, data, config=None, out_dir=None, quiet=False,
                 stream=None, callbacks=()):
        self.config = make_config(config)
        self.device = normalize_device(self.config["device"])
        self.model = model.to(self.device) if self.device != "cpu" else model
        self.optimizer = optimizer
        self.out_dir = None if out_dir is None else os.fspath(out_dir)
        self.quiet = quiet
        self.stream = stream
        self.callbacks = list(callbacks)
        c = self.config
        if isinstance(data, Dataset):
            if c["val_fraction"] > 0:
                train_part, val_part = split_dataset(data, c["val_fraction"], seed=c["seed"])
                if len(val_part) == 0:
                    val_part = None
            else:
                train_part, val_part = data, None
        else:
            train_part, val_part = data
        self.train_images, self.train_labels = _as_images(train_part)
        if val_part is None:
            self.val_images = self.val_labels = None
        else:
            self.val_images, self.val_labels = _as_images(val_part)
        if self.val_images is not None and len(self.val_images) == 0:
            self.val_images = self.val_labels = None
        self.loader = DataLoader(self.train_images, None, batch_size=c["batch_size"],
                                 shuffle=True, seed=c["seed"])
        self.epoch = 0                 # epochs completed
        self.history = []              # one record per completed epoch
        self.best = None               # best monitored loss so far
        self.best_epoch = None
        self.best_state = None         # the weights at best_epoch
        self.wait = 0                  # epochs since the best
        self.stop_reason = None
        self.finished = False
        self.resumed_from = None

    # ------------------------------------------------------------------ one step / one pass
    def _to_device(self, xb):
        return tensor(xb, device=self.device)

    def _check_finite(self, value, epoch, batch, where="training"):
        if math.isfinite(value):
            return
        step = (epoch - 1) * len(self.loader) + batch
        location = (f"epoch {epoch}, batch {batch} of {len(self.loader)} (step {step})"
                    if where == "training" else f"epoch {epoch}, validation batch {batch}")
        last = (f"the last good checkpoint (epoch {self.epoch}) is kept in "
                f"{os.path.join(self.out_dir, 'checkpoint.json')}"
                if self.out_dir and self.epoch > 0 else "no checkpoint was written yet")
        raise NonFiniteLossError(
            f"training stopped: the {where} loss is {value} at {location}; the weights were not "
            f"updated with it; {last}. Try a lower learning rate (--lr).", epoch, batch, value)

    def train_epoch(self, epoch, progress=None):
        """One pass over the training data -> averaged {"loss": ..., <model metrics>...}."""
        self.model.train()
        sums, seen = {}, 0
        for batch, (xb, _) in enumerate(self.loader, start=1):
            x = self._to_device(xb)
            loss, metrics = self.model.loss(x)
            value = float(loss.item())
            self._check_finite(value, epoch, batch)
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
            n = len(xb)
            seen += n
            for key, v in (("loss", value),) + tuple(metrics.items()):
                sums[key] = sums.get(key, 0.0) + float(v) * n
            if progress is not None:
                progress.update(batch, seen, sums["loss"] / seen)
        return {k: v / seen for k, v in sums.items()}

    def evaluate(self, images, epoch=None):
        """Averaged loss and metrics on `images`, without gradients, with the validation noise
        (a generator seeded from config["seed"], the same every call)."""
        self.model.eval()
        sums, seen = {}, 0
        loader = DataLoader(images, None, batch_size=max(self.config["batch_size"], 256),
                            shuffle=False)
        with _FixedRNG([self.config["seed"], 7919]), no_grad():
            for batch, (xb, _) in enumerate(loader, start=1):
                loss, metrics = self.model.loss(self._to_device(xb))
                value = float(loss.item())
                if epoch is not None:
                    self._check_finite(value, epoch, batch, where="validation")
                n = len(xb)
                seen += n
                for key, v in (("loss", value),) + tuple(metrics.items()):
                    sums[key] = sums.get(key, 0.0) + float(v) * n
        self.model.train()
        return {k: v / seen for k, v in sums.items()}

    # ------------------------------------------------------------------ the loop
    def fit(self):
        """Train until `epochs`, early stopping, or a non-finite loss. Returns self."""
        c = self.config
        if self.out_dir:
            os.makedirs(self.out_dir, exist_ok=True)
            self._write_json("config.json", self._full_config())
        if self.finished and self.epoch >= c["epochs"]:
            return self._restore_best()
        self.finished = False
        self.stop_reason = None
        try:
            for epoch in range(self.epoch + 1, c["epochs"] + 1):
                start = time.perf_counter()
                progress = ProgressBar(epoch, c["epochs"], len(self.loader), stream=self.stream,
                                       enabled=not self.quiet)
                train_metrics = self.train_epoch(epoch, progress)
                train_seconds = time.perf_counter() - start
                val_metrics = (self.evaluate(self.val_images, epoch)
                               if self.val_images is not None else None)
                record = {"epoch": epoch, "train_loss": train_metrics["loss"],
                          "val_loss": None if val_metrics is None else val_metrics["loss"]}
                record.update({f"train_{k}": v for k, v in train_metrics.items() if k != "loss"})
                if val_metrics is not None:
                    record.update({f"val_{k}": v for k, v in val_metrics.items() if k != "loss"})
                record["seconds"] = time.perf_counter() - start
                record["items_per_second"] = len(self.train_images) / max(train_seconds, 1e-9)
                improved = self._early_stopping(record)
                self.epoch = epoch
                self.history.append(record)
                if c["patience"] and self.wait >= c["patience"]:
                    self.stop_reason = (f"early stopping: no improvement of the "
                                        f"{self._monitor_name()} for {self.wait} epochs (best "
                                        f"{self.best:.6g} at epoch {self.best_epoch})")
                elif epoch == c["epochs"]:
                    self.stop_reason = f"completed {epoch} epochs"
                self.finished = self.stop_reason is not None
                if self.out_dir:
                    self.save_checkpoint()
                    self.write_metrics()
                progress.close(self._summary(record, improved))
                for callback in self.callbacks:
                    callback(self, record)
                if self.finished:
                    break
        except NonFiniteLossError as e:
            self.stop_reason = str(e)
            if self.out_dir:
                self.write_metrics(status="failed")
            raise
        if self.stop_reason and self.stop_reason.startswith("early stopping") and not self.quiet:
            print(self.stop_reason, file=self.stream or sys.stderr)
        return self._restore_best()

    def _restore_best(self):
        if self.config["restore_best"] and self.best_state is not None:
            self.model.load_state_dict(self.best_state)
        return self

    def _monitor_name(self):
        return "validation loss" if self.val_images is not None else "training loss"

    def _early_stopping(self, record):
        value = record["val_loss"] if record["val_loss"] is not None else record["train_loss"]
        if self.best is None or value < self.best - self.config["min_delta"]:
            self.best, self.best_epoch, self.wait = value, record["epoch"], 0
            self.best_state = self.model.state_dict()
            return True
        self.wait += 1
        return False

    def _summary(self, r, improved):
        val = "" if r["val_loss"] is None else f"  val {r['val_loss']:.4f}"
        mark = " *" if improved and r["val_loss"] is not None else ""
        return (f"epoch {r['epoch']}/{self.config['epochs']}  train {r['train_loss']:.4f}{val}"
                f"  {r['items_per_second']:,.0f} img/s  {r['seconds']:.1f} s{mark}")

    # ------------------------------------------------------------------ files
    def _full_config(self):
        config = dict(self.config)
        config["input_shape"] = list(self.train_images.shape[1:])
        model_config = getattr(self.model, "config", None)
        if model_config is not None:
            config["model_config"] = json_safe(model_config)
        return config

    def _write_json(self, name, obj):
        path = os.path.join(self.out_dir, name)
        _atomic_write_text(path, json.dumps(json_safe(obj), indent=1, allow_nan=False) + "\n")

    def write_metrics(self, status=None):
        """metrics.json (summary + every epoch) and metrics.csv (one row per epoch)."""
        doc = {
            "status": status or ("finished" if self.finished else "running"),
            "epochs_completed": self.epoch,
            "best_epoch": self.best_epoch,
            "best_loss": self.best,
            "monitor": "val_loss" if self.val_images is not None else "train_loss",
            "stop_reason": self.stop_reason,
            "train_size": int(len(self.train_images)),
            "val_size": 0 if self.val_images is None else int(len(self.val_images)),
            "epochs": self.history,
        }
        self._write_json("metrics.json", doc)
        keys = []
        for record in self.history:
            keys += [k for k in record if k not in keys]
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(keys)
        for record in self.history:
            writer.writerow(["" if record.get(k) is None else record.get(k) for k in keys])
        _atomic_write_text(os.path.join(self.out_dir, "metrics.csv"), buffer.getvalue())

    def state(self):
        """(arrays, meta) for a checkpoint of the trainer as it is now."""
        opt_arrays, opt_meta = pack_optimizer_state(self.optimizer.state_dict())
        arrays = {"model": self.model.state_dict(), "optim": opt_arrays}
        if self.best_state is not None:
            arrays["best"] = self.best_state
        meta = {
            "epoch": self.epoch,
            "config": self._full_config(),
            "metrics": self.history,
            "optimizer": opt_meta,
            "rng": {"aecore": ae_random.get_rng_state(), "loader": self.loader.state_dict()},
            "trainer": {"best": self.best, "best_epoch": self.best_epoch, "wait": self.wait,
                        "finished": self.finished, "stop_reason": self.stop_reason},
        }
        return arrays, meta

    def save_checkpoint(self, directory=None):
        arrays, meta = self.state()
        return save_checkpoint(directory or self.out_dir, arrays, meta)

    def load_state(self, checkpoint):
        """Restore everything a checkpoint holds (see `state`)."""
        self.model.load_state_dict(checkpoint.arrays["model"])
        self.optimizer.load_state_dict(unpack_optimizer_state(checkpoint.arrays.get("optim", {}),
                                                              checkpoint.meta["optimizer"]))
        meta = checkpoint.meta
        ae_random.set_rng_state(meta["rng"]["aecore"])
        self.loader.load_state_dict(meta["rng"]["loader"])
        self.epoch = int(meta["epoch"])
        self.history = list(meta.get("metrics", []))
        t = meta.get("trainer", {})
        self.best, self.best_epoch, self.wait = t.get("best"), t.get("best_epoch"), t.get("wait", 0)
        self.finished, self.stop_reason = bool(t.get("finished")), t.get("stop_reason")
        self.best_state = dict(checkpoint.arrays["best"]) if "best" in checkpoint.arrays else None
        self.resumed_from = checkpoint.path
        return self


def _atomic_write_text(path, text):
    directory = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(directory, f".tmp-{os.path.basename(path)}-{os.getpid()}")
    with open(tmp, "w", encoding="utf-8", newline="") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


# ---------------------------------------------------------------------------------------------
# entry points
# ---------------------------------------------------------------------------------------------

def _prepare(config, data=None):
    """Seed, load the data, build model and optimizer -> (config, dataset, model, optimizer)."""
    config = make_config(config)
    normalize_device(config["device"])  # a clear error now if cuda is asked for and absent
    ae_random.manual_seed(int(config["seed"]))
    dataset = load_data(config) if data is None else data
    model = build_model(config, dataset.images.shape[1:])
    if config["device"] != "cpu":
        model.to(config["device"])
    optimizer = build_optimizer(config, model.parameters())
    return config, dataset, model, optimizer


def train(config=None, out_dir=None, quiet=False, stream=None, callbacks=(), data=None,
          pictures=None):
    """Train a model described by `config` (see DEFAULT_CONFIG); returns the Trainer.

    out_dir: the run directory (None: nothing written). data: a Dataset to use instead of
    loading config["data"]. pictures: override config["pictures"].
    """
    config, dataset, model, optimizer = _prepare(config, data)
    trainer = Trainer(model, optimizer, dataset, config, out_dir=out_dir, quiet=quiet,
                      stream=stream, callbacks=callbacks)
    trainer.fit()
    _finish(trainer, pictures)
    return trainer


def resume(run_dir, overrides=None, quiet=False, stream=None, callbacks=(), data=None,
           pictures=None, out_dir=None):
    """Continue the run in `run_dir` from its last good checkpoint; returns the Trainer.

    overrides: config values to change on the way (e.g. {"epochs": 10} to train longer,
    "patience", "device"). The run continues exactly where it stopped: the same batches, the
    same noise, the same optimizer state.
    """
    checkpoint = load_checkpoint(run_dir)
    if checkpoint.fallback_reason and not quiet:
        print(f"warning: {checkpoint.fallback_reason}; resuming from the previous checkpoint "
              f"(epoch {checkpoint.epoch})", file=stream or sys.stderr)
    config = {k: v for k, v in checkpoint.config.items()
              if k not in ("input_shape", "model_config")}
    allowed = {"epochs", "patience", "min_delta", "device", "pictures", "restore_best"}
    overrides = dict(overrides or {})
    changed = set(overrides) - allowed
    if changed:
        raise ConfigError(f"cannot change {sorted(changed)} when resuming (only "
                          f"{sorted(allowed)}): the run would not continue exactly")
    config.update(overrides)
    config, dataset, model, optimizer = _prepare(config, data)
    model_config = checkpoint.config.get("model_config")
    if model_config is not None and hasattr(_models(), "from_config"):
        model = _models().from_config(model_config)
        if config["device"] != "cpu":
            model.to(config["device"])
        optimizer = build_optimizer(config, model.parameters())
    trainer = Trainer(model, optimizer, dataset, config, out_dir=out_dir or run_dir, quiet=quiet,
                      stream=stream, callbacks=callbacks)
    trainer.load_state(checkpoint)
    if not quiet:
        if trainer.finished and trainer.epoch >= config["epochs"]:
            print(f"{run_dir}: the run already finished ({trainer.stop_reason}); pass a larger "
                  "epochs (--epochs) to train longer", file=stream or sys.stderr)
        else:
            print(f"resuming {run_dir} after epoch {trainer.epoch} of {config['epochs']}",
                  file=stream or sys.stderr)
    trainer.fit()
    _finish(trainer, pictures)
    return trainer


def _finish(trainer, pictures):
    if pictures is None:
        pictures = trainer.config["pictures"]
    if trainer.out_dir and pictures:
        from . import viz
        viz.write_run_pictures(trainer.model, trainer.out_dir, trainer.val_images
                               if trainer.val_images is not None else trainer.train_images,
                               trainer.val_labels if trainer.val_images is not None
                               else trainer.train_labels, trainer.history)


def load_run(run_dir, which="best", device="cpu"):
    """(model, config, checkpoint) from a run directory; which = "best" (the best epoch's
    weights when early stopping kept them) or "last"."""
    checkpoint = load_checkpoint(run_dir)
    config = checkpoint.config
    models = _models()
    if config.get("model_config") is not None and hasattr(models, "from_config"):
        model = models.from_config(config["model_config"])
    else:
        model = build_model(config, config["input_shape"])
    group = "best" if which == "best" and "best" in checkpoint.arrays else "model"
    model.load_state_dict(checkpoint.arrays[group])
    if device != "cpu":
        model.to(device)
    model.eval()
    return model, config, checkpoint
