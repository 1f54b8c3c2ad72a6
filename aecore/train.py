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
(patience 0 or None: never); with NonFiniteLossError as soon as a loss is NaN or infinite (the
step is named, the weights are not updated), or as soon as a step leaves NaN or Inf in a
parameter or an optimizer buffer (the step and the first bad tensor are named); with
DiskFullError when a file of the run cannot be written for want of space. In each case the last
good checkpoint stays as it was and metrics.json records why the run stopped.

The run directory is held for the whole run (aecore.io.rundir): locked against a second
process, refused when it already holds another run (unless overwrite=True, which deletes the
old run's files first), and cleared of temporary files a killed writer left behind.
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
from .backend import get_array_module, normalize_device
from .data import DataLoader, Dataset, load_dataset, split_dataset
from .io.atomic import DiskFullError, atomic_write
from .io.checkpoint import (CheckpointError, NonFiniteCheckpointError, json_safe,
                            load_checkpoint, pack_optimizer_state, save_checkpoint,
                            unpack_optimizer_state)
from .io.rundir import RunDirectory
from .optim import OPTIMIZERS
from .tensor import no_grad, tensor

__all__ = ["DEFAULT_CONFIG", "Trainer", "train", "resume", "NonFiniteLossError",
           "NonFiniteStateError", "DiskFullError", "ConfigError",
           "make_config", "load_data", "build_model", "build_optimizer", "load_run",
           "default_run_dir", "ProgressBar"]

# The defaults of `aecore train` with no arguments: the classic CAE on the built-in synthetic
# digits, sized to take under a minute on two CPU cores, first compile included (the README
# gives the measured times).
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
    """Training diverged: the loss became NaN or infinite; .epoch and .batch name the step."""

    def __init__(self, message, epoch, batch, value):
        super().__init__(message)
        self.epoch, self.batch, self.value = epoch, batch, value


class NonFiniteStateError(NonFiniteLossError):
    """Training diverged: a step left NaN or Inf in a parameter or optimizer buffer; .tensor
    names the first one."""

    def __init__(self, message, epoch, batch, tensor):
        super().__init__(message, epoch, batch, float("nan"))
        self.tensor = tensor


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

def _first_non_finite(model, optimizer):
    """The name of the first parameter or optimizer buffer holding NaN or Inf, or None.

    One flag per array, combined on the device, so a GPU run waits for one answer per step.
    """
    names = {id(p): name for name, p in model.named_parameters()}
    arrays = [(f"parameter {name}", p.data) for name, p in model.named_parameters()]
    for index, (p, state) in enumerate(zip(optimizer.params, optimizer.state)):
        owner = names.get(id(p), f"#{index}")
        arrays += [(f"optimizer buffer {buffer!r} of parameter {owner}", a)
                   for buffer, a in sorted(state.items()) if hasattr(a, "dtype")]
    if not arrays:
        return None
    xp = get_array_module(arrays[0][1])
    flags = xp.stack([xp.isfinite(a).all() for _, a in arrays])
    if bool(flags.all()):
        return None
    flags = flags.get() if hasattr(flags, "get") else flags     # to the host, only when bad
    return arrays[int(np.argmin(flags))][0]


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
    overwrite: out_dir may hold another run: its files are deleted first (otherwise refused)
    """

    def __init__(self, model, optimizer, data, config=None, out_dir=None, quiet=False,
                 stream=None, callbacks=(), overwrite=False):
        self.config = make_config(config)
        self.device = normalize_device(self.config["device"])
        self.model = model.to(self.device) if self.device != "cpu" else model
        self.optimizer = optimizer
        self.out_dir = None if out_dir is None else os.fspath(out_dir)
        self.overwrite = overwrite
        self.run_dir = None            # the held RunDirectory while training
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
        self.epochs_run = 0            # epochs completed by this process (after a resume: the new ones)

    # ------------------------------------------------------------------ one step / one pass
    def _to_device(self, xb):
        return tensor(xb, device=self.device)

    def _check_finite(self, value, epoch, batch, where="training"):
        if math.isfinite(value):
            return
        step = (epoch - 1) * len(self.loader) + batch
        location = (f"epoch {epoch}, batch {batch} of {len(self.loader)} (step {step})"
                    if where == "training" else f"epoch {epoch}, validation batch {batch}")
        raise NonFiniteLossError(
            f"training stopped: the {where} loss is {value} at {location}; the weights were not "
            f"updated with it; {self._last_good()}. Try a lower learning rate (--lr).", epoch,
            batch, value)

    def _check_finite_state(self, epoch, batch):
        """Raise NonFiniteStateError naming the first parameter or optimizer buffer that holds
        NaN or Inf after a step (Adam's second moment can overflow while the loss and the
        weights still look fine)."""
        bad = _first_non_finite(self.model, self.optimizer)
        if bad is None:
            return
        step = (epoch - 1) * len(self.loader) + batch
        raise NonFiniteStateError(
            f"training stopped: {bad} holds NaN or Inf after epoch {epoch}, batch {batch} of "
            f"{len(self.loader)} (step {step}); {self._last_good()}. Try a lower learning rate "
            "(--lr).", epoch, batch, bad)

    def _last_good(self):
        return (f"the last good checkpoint (epoch {self.epoch}) is kept in "
                f"{os.path.join(self.out_dir, 'checkpoint.json')}"
                if self.out_dir and self.epoch > 0 else "no checkpoint was written yet")

    def train_epoch(self, epoch, progress=None):
        """One pass over the training data -> averaged {"loss": ..., <model metrics>...}.

        Each step is checked: a non-finite loss stops before the update, a non-finite parameter
        or optimizer buffer right after it. NumPy's overflow warnings are silenced inside the
        step, since these checks report the problem in one line.
        """
        self.model.train()
        sums, seen = {}, 0
        for batch, (xb, _) in enumerate(self.loader, start=1):
            x = self._to_device(xb)
            with np.errstate(all="ignore"):
                loss, metrics = self.model.loss(x)
                value = float(loss.item())
                self._check_finite(value, epoch, batch)
                self.optimizer.zero_grad()
                loss.backward()
                self.optimizer.step()
            self._check_finite_state(epoch, batch)
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
        with _FixedRNG([self.config["seed"], 7919]), no_grad(), np.errstate(all="ignore"):
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
    def hold_run_dir(self):
        """Open and lock out_dir for this run (see aecore.io.rundir); a no-op when it is held
        already or there is no out_dir. fit() calls it; train() and resume() call it earlier so
        that the pictures written after fit() are made under the same lock."""
        if self.out_dir is None or (self.run_dir is not None and self.run_dir.locked):
            return self.run_dir
        resuming = (self.resumed_from is not None and os.path.abspath(
            os.path.dirname(self.resumed_from)) == os.path.abspath(self.out_dir))
        mode = "resume" if resuming else ("overwrite" if self.overwrite else "new")
        self.run_dir = RunDirectory.open(self.out_dir, mode=mode)
        return self.run_dir

    def release_run_dir(self):
        if self.run_dir is not None:
            self.run_dir.close()
            self.run_dir = None

    def fit(self):
        """Train until `epochs`, early stopping, a non-finite loss or state, or a full disk.
        Returns self."""
        held_before = self.run_dir is not None and self.run_dir.locked
        self.hold_run_dir()
        try:
            return self._fit()
        finally:
            if not held_before:
                self.release_run_dir()

    def _fit(self):
        c = self.config
        self.epochs_run = 0
        if self.out_dir:
            self._write_json("config.json", self._full_config())
        if self.finished and self.epoch >= c["epochs"]:
            return self._restore_best()
        self.finished = False
        self.stop_reason = None
        self._print_compile_notice()
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
                self.epochs_run += 1
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
            self._record_stop(str(e), "failed")
            raise
        except DiskFullError as e:
            self._stop_for_disk_full(e)
        if self.stop_reason and self.stop_reason.startswith("early stopping") and not self.quiet:
            print(self.stop_reason, file=self.stream or sys.stderr)
        return self._restore_best()

    def _print_compile_notice(self):
        if self.quiet:
            return
        try:
            from .kernels.compile import compile_notice
        except ImportError:
            return
        notice = compile_notice("cuda" if self.device != "cpu" else None)
        if notice:
            print(notice, file=self.stream or sys.stderr)

    def _record_stop(self, reason, status):
        """Put the reason a run stopped into metrics.json (best effort: the disk may be full)."""
        self.stop_reason = reason
        self.finished = False
        if self.out_dir:
            try:
                self.write_metrics(status=status)
            except OSError:
                pass

    def _stop_for_disk_full(self, error):
        """A file of the run could not be written: free the half-written temporary files,
        find the last good checkpoint, record the stop, and raise one message saying all that."""
        if self.run_dir is not None:
            self.run_dir.remove_temp_files()
        try:
            good = load_checkpoint(self.out_dir)
            error.note = f"the last good checkpoint is {good.path} (epoch {good.epoch})"
        except CheckpointError:
            error.note = "no checkpoint was written yet"
        self._record_stop(str(error), "stopped: disk full")
        raise error

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
        text = json.dumps(json_safe(obj), indent=1, allow_nan=False) + "\n"
        atomic_write(os.path.join(self.out_dir, name), text.encode("utf-8"))

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
        atomic_write(os.path.join(self.out_dir, "metrics.csv"), buffer.getvalue().encode("utf-8"))

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
        try:
            return save_checkpoint(directory or self.out_dir, arrays, meta)
        except NonFiniteCheckpointError as e:
            raise NonFiniteStateError(f"training stopped: {e}; {self._last_good()}",
                                      self.epoch, None, e.key) from None

    def load_state(self, checkpoint):
        """Restore everything a checkpoint holds (see `state`).

        Raises CheckpointError naming the file when its contents do not fit this trainer (wrong
        types, missing entries, weights of another model, a loader state of another data set);
        resume() then falls back to the previous checkpoint.
        """
        try:
            self._load_state(checkpoint.arrays, checkpoint.meta)
        except (KeyError, TypeError, ValueError, IndexError, AttributeError, RecursionError) as e:
            reason = e.args[0] if isinstance(e, KeyError) and e.args else e
            raise CheckpointError(f"{checkpoint.path}: does not fit this run "
                                  f"({type(e).__name__}: {reason})") from None
        self.resumed_from = checkpoint.path
        return self

    def _load_state(self, arrays, meta):
        epoch, history, t = meta["epoch"], meta["metrics"], meta["trainer"]
        rng, loader_state = meta["rng"]["aecore"], meta["rng"]["loader"]
        if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
            raise ValueError(f"epoch must be an integer >= 0, got {epoch!r}")
        if not (isinstance(history, list) and len(history) == epoch
                and all(isinstance(r, dict) for r in history)):
            raise ValueError(f"metrics must hold one record per epoch ({epoch})")
        if not isinstance(t, dict) or not isinstance(t.get("wait", 0), int):
            raise ValueError("the trainer entry must be a mapping with an integer 'wait'")
        saved_size = loader_state.get("num_samples") if isinstance(loader_state, dict) else None
        if saved_size != len(self.train_images):
            raise ValueError(f"the data loader's state is for {saved_size} training images, "
                             f"this data set has {len(self.train_images)}")
        optimizer_meta = meta["optimizer"]
        if not all(isinstance(v, (int, float)) or (isinstance(v, list) and all(
                isinstance(x, (int, float)) for x in v)) for v in optimizer_meta["hyper"].values()):
            raise ValueError("optimizer hyper-parameters must be numbers")
        self.model.load_state_dict(arrays["model"])
        self.optimizer.load_state_dict(unpack_optimizer_state(arrays.get("optim", {}),
                                                              optimizer_meta))
        ae_random.set_rng_state(rng)
        self.loader.load_state_dict(loader_state)
        self.epoch = epoch
        self.history = list(history)
        self.best, self.best_epoch, self.wait = t.get("best"), t.get("best_epoch"), t.get("wait", 0)
        self.finished, self.stop_reason = bool(t.get("finished")), t.get("stop_reason")
        if "best" in arrays and set(arrays["best"]) != set(self.model.state_dict()):
            raise ValueError("the best weights name other parameters than the model's")
        self.best_state = dict(arrays["best"]) if "best" in arrays else None


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
          pictures=None, overwrite=False):
    """Train a model described by `config` (see DEFAULT_CONFIG); returns the Trainer.

    out_dir: the run directory (None: nothing written); one that already holds a run is refused
    unless overwrite=True, which deletes that run's files first. data: a Dataset to use instead
    of loading config["data"]. pictures: override config["pictures"].
    """
    config, dataset, model, optimizer = _prepare(config, data)
    trainer = Trainer(model, optimizer, dataset, config, out_dir=out_dir, quiet=quiet,
                      stream=stream, callbacks=callbacks, overwrite=overwrite)
    trainer.hold_run_dir()
    try:
        trainer.fit()
        _finish(trainer, pictures)
    finally:
        trainer.release_run_dir()
    return trainer


RESUME_OVERRIDES = ("epochs", "patience", "min_delta", "device", "pictures", "restore_best")


def resume(run_dir, overrides=None, quiet=False, stream=None, callbacks=(), data=None,
           pictures=None, out_dir=None, overwrite=False):
    """Continue the run in `run_dir` from its last good checkpoint; returns the Trainer.

    overrides: config values to change on the way (e.g. {"epochs": 10} to train longer,
    "patience", "device"). The run continues exactly where it stopped: the same batches, the
    same noise, the same optimizer state. A checkpoint pair whose files are damaged or whose
    contents do not rebuild the run is skipped for the previous pair, with a warning; when both
    are unusable, CheckpointError names both files and what is wrong with each.
    out_dir: write the continued run elsewhere (default: run_dir itself).
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
    # Locked before the checkpoint is read: no other process can be writing it meanwhile.
    held = RunDirectory.open(out_dir, mode="resume" if same else
                             ("overwrite" if overwrite else "new"))
    try:
        datasets = {}

        def restore(checkpoint):
            """A Trainer rebuilt from `checkpoint`, or CheckpointError saying why it cannot be."""
            try:
                saved = {k: v for k, v in checkpoint.config.items()
                         if k not in ("input_shape", "model_config")}
                config = make_config(dict(saved, **overrides))
            except (ConfigError, TypeError, AttributeError, ValueError) as e:
                raise CheckpointError(f"{checkpoint.path}: its config is unusable ({e})") from None
            key = json.dumps([config[k] for k in ("data", "data_root", "limit", "image_size",
                                                  "seed")])
            if data is None and key not in datasets:  # data errors are not the checkpoint's
                datasets[key] = load_data(config)
            dataset = data if data is not None else datasets[key]
            try:
                config, dataset, model, optimizer = _prepare(config, dataset)
                model_config = checkpoint.config.get("model_config")
                if model_config is not None and hasattr(_models(), "from_config"):
                    model = _models().from_config(model_config)
                    if config["device"] != "cpu":
                        model.to(config["device"])
                    optimizer = build_optimizer(config, model.parameters())
            except (ConfigError, TypeError, KeyError, ValueError, AttributeError,
                    RecursionError) as e:
                raise CheckpointError(f"{checkpoint.path}: its model cannot be rebuilt "
                                      f"({type(e).__name__}: {e})") from None
            trainer = Trainer(model, optimizer, dataset, config, out_dir=out_dir, quiet=quiet,
                              stream=stream, callbacks=callbacks)
            return trainer.load_state(checkpoint)

        checkpoint = load_checkpoint(run_dir, validate=restore)
        trainer = checkpoint.extra["validated"]
        trainer.run_dir = held
        say = (lambda text: None) if quiet else \
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
        held.close()
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
    weights when early stopping kept them) or "last". A pair whose contents do not rebuild the
    model falls back to the previous pair, as in resume()."""

    def rebuild(checkpoint):
        config = checkpoint.config
        try:
            models = _models()
            if config.get("model_config") is not None and hasattr(models, "from_config"):
                model = models.from_config(config["model_config"])
            else:
                model = build_model(config, config["input_shape"])
            group = "best" if which == "best" and "best" in checkpoint.arrays else "model"
            model.load_state_dict(checkpoint.arrays[group])
        except (ConfigError, TypeError, KeyError, ValueError, AttributeError,
                RecursionError) as e:
            raise CheckpointError(f"{checkpoint.path}: its model cannot be rebuilt "
                                  f"({type(e).__name__}: {e})") from None
        return model

    checkpoint = load_checkpoint(run_dir, validate=rebuild)
    model = checkpoint.extra["validated"]
    if device != "cpu":
        model.to(device)
    model.eval()
    return model, checkpoint.config, checkpoint
