"""The Trainer: the epoch loop, what a checkpoint of it holds, and why a run stops.

What makes a resumed run bit-identical to an uninterrupted one: the checkpoint (`state`) holds
the weights, the optimizer's buffers, step count and current lr, the lr scheduler's state,
aecore.random's generator state (noise, VAE sampling), the DataLoader's generator state (the
next epoch's shuffle), and the early-stopping state. Validation draws its noise from a
generator seeded the same way every epoch and then restores the training generator, so
validation never changes what training sees (and the DAE's and VAE's validation losses are
comparable from epoch to epoch).

Each step: the loss, its gradients, their clipping to a total norm of config["grad_clip"] when
set (nn.utils.clip_grad_norm_), the optimizer's update. Each epoch: the training pass, the
validation pass, then one step of the lr schedule (config["lr_schedule"]; ReduceLROnPlateau
steps with the monitored loss, the one early stopping watches). Every epoch's record holds the
lr it trained with.

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

Data-parallel (aecore.distributed; `world` has several ranks): config["batch_size"] is each
rank's, and the global batch is batch_size x ranks. Each step deals the global batch across
the ranks (ShardedLoader), every rank's noise is its rows of the whole batch's draw
(aecore.random.batch_shard), the loss and metrics are averaged over the whole batch and the
gradients summed with each rank's share as weight, so every rank takes the same step, the one
a single process with the global batch would take. Validation is dealt the same way. Rank 0
alone holds the run directory, prints, and writes the files; what fails there is raised on
every rank (World.on_root), so the ranks stop together. At the start the ranks check that they
were given the same settings and data, then take rank 0's weights and optimizer state.
"""

from __future__ import annotations

import hashlib
import math
import os
import sys
import time

import numpy as np

from .. import random as ae_random
from ..backend import get_array_module
from ..data import Dataset, split_dataset
from ..distributed import current as current_world
from ..distributed.sampler import ShardedLoader
from ..io.atomic import DiskFullError
from ..io.checkpoint import (CheckpointError, NonFiniteCheckpointError, json_safe,
                             load_checkpoint, pack_optimizer_state, save_checkpoint,
                             unpack_optimizer_state)
from ..io.rundir import RunDirectory
from ..models.base import as_metric, fixed_noise
from ..nn.utils import clip_grad_norm_
from ..optim.lr_scheduler import ReduceLROnPlateau
from ..tensor import Tensor, no_grad, tensor
from .build import build_scheduler
from .config import ConfigError, make_config
from .files import write_json, write_metrics
from .progress import ProgressBar

__all__ = ["Trainer", "NonFiniteLossError", "NonFiniteStateError", "DiskFullError"]

# Validation noise comes from its own stream, seeded by [config["seed"], this]: the same every
# epoch, and apart from the training stream (any fixed number would do; this one is prime).
VALIDATION_STREAM = 7919


class NonFiniteLossError(FloatingPointError):
    """Training diverged: the loss became NaN or infinite; .epoch and .batch name the step."""

    collective = True   # with several ranks, every rank meets it at the same step

    def __init__(self, message, epoch, batch, value):
        super().__init__(message)
        self.epoch, self.batch, self.value = epoch, batch, value


class NonFiniteStateError(NonFiniteLossError):
    """Training diverged: a step left NaN or Inf in a parameter or optimizer buffer; .tensor
    names the first one."""

    def __init__(self, message, epoch, batch, tensor):
        super().__init__(message, epoch, batch, float("nan"))
        self.tensor = tensor


def _fingerprint(images):
    """[shape, dtype, a digest of the bytes] of an image array (None for None)."""
    if images is None:
        return None
    array = np.ascontiguousarray(images)
    digest = hashlib.blake2b(memoryview(array).cast("B"), digest_size=16).hexdigest()
    return [list(array.shape), str(array.dtype), digest]


def _as_images(part):
    """(images, labels) from a Dataset, an (images, labels) pair or an array of images."""
    if isinstance(part, Dataset):
        return part.images, part.labels
    if isinstance(part, tuple):
        return part
    return np.asarray(part), None


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


# How many steps a run on a GPU takes between reads of its losses (the progress bar, the
# non-finite checks): each read waits for the device to finish, so reading every step would
# keep the host from queueing the next step's kernels while the device works. A CPU run reads
# every step (its values are on the host already). The last step of an epoch is always read.
GPU_READ_EVERY = 25


def _host_values(values):
    """Python floats of a list of floats and 0-d device arrays, with one device read."""
    on_device = [v for v in values if hasattr(v, "__cuda_array_interface__")]
    if not on_device:
        return [float(v) for v in values]
    import cupy
    read = iter(cupy.stack([v.reshape(()) for v in on_device]).get().tolist())
    return [next(read) if hasattr(v, "__cuda_array_interface__") else float(v) for v in values]


class _PinnedUploads:
    """Batches to the GPU without a blocking copy: each NumPy batch is copied into one of two
    page-locked (pinned) host buffers and from there to the device on a side stream; the
    compute stream waits for that copy with an event, not the host. With the host ahead of the
    device (no reads between steps), the copy runs while the device works on the step before."""

    def __init__(self):
        import cupy
        self.cupy = cupy
        self.stream = cupy.cuda.Stream(non_blocking=True)
        self.buffers = {}          # (shape, dtype, turn) -> [pinned array, event of its last copy]
        self.turn = 0

    def __call__(self, batch):
        import cupyx
        batch = np.ascontiguousarray(batch)
        key = (batch.shape, batch.dtype.str, self.turn)
        self.turn ^= 1
        slot = self.buffers.setdefault(key, [None, None])
        if slot[0] is None:
            slot[0] = cupyx.empty_pinned(batch.shape, batch.dtype)
        elif slot[1] is not None:
            slot[1].synchronize()  # this buffer's previous copy has left it (two steps ago)
        np.copyto(slot[0], batch)
        device = self.cupy.empty(batch.shape, batch.dtype)
        device.set(slot[0], stream=self.stream)
        slot[1] = self.stream.record()
        self.cupy.cuda.get_current_stream().wait_event(slot[1])
        return device


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
    scheduler: an aecore.optim.lr_scheduler scheduler of `optimizer`, stepped once per epoch;
               None: the one config["lr_schedule"] names (none when that is None)
    world:     the ranks of a data-parallel run (aecore.distributed); None: the one
               aecore.distributed.init() made, else this process alone
    """

    def __init__(self, model, optimizer, data, config=None, out_dir=None, quiet=False,
                 stream=None, callbacks=(), overwrite=False, scheduler=None, world=None):
        self.config = make_config(config)   # a Config from train() / resume() passes as it is
        self.world = current_world() if world is None else world
        self.device = self.config["device"]  # checked by make_config: cpu, or a usable cuda
        if self.device != "cpu" and self.world.size > 1:
            self.world.use_local_gpu()       # one GPU per rank, before the model moves
        # The one move of the model to the device (train() and resume() build it on the CPU).
        self.model = model.to(self.device) if self.device != "cpu" else model
        self.optimizer = optimizer
        if scheduler is not None and self.config["lr_schedule"] is not None:
            raise ValueError(f"Trainer: pass a scheduler or config['lr_schedule'] "
                             f"({self.config['lr_schedule']!r}), not both")
        # Made after the optimizer and before any state is loaded into it (PyTorch's order).
        self.scheduler = scheduler if scheduler is not None else \
            build_scheduler(self.config, optimizer)
        # Rank 0 alone keeps the run directory and prints.
        self.out_dir = None if out_dir is None or not self.world.is_root else os.fspath(out_dir)
        self.overwrite = overwrite
        self.run_dir = None            # the held RunDirectory while training
        self.quiet = quiet or not self.world.is_root
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
        self.global_batch = c["batch_size"] * self.world.size
        # Every rank draws the same order of the same global batches; each takes its part.
        self.loader = ShardedLoader(self.train_images, None, batch_size=self.global_batch,
                                    shuffle=True, seed=c["seed"], rank=self.world.rank,
                                    size=self.world.size)
        self._metric_keys = None       # the model's metric names, in its order (for the ranks)
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
        # steps between reads of the losses (see GPU_READ_EVERY); several ranks share theirs
        # every step, so they read every step
        self.read_every = GPU_READ_EVERY if self.device != "cpu" and self.world.size == 1 else 1
        self._uploads = None           # a GPU run's batch copies (_PinnedUploads), made at first use

    # ------------------------------------------------------------------ one step / one pass
    def _to_device(self, xb):
        if self.device == "cpu":
            return tensor(xb)
        if self._uploads is None:
            self._uploads = _PinnedUploads()
        return Tensor(self._uploads(tensor(xb).data), _copy=False)   # tensor(): the dtype rules

    def _check_finite(self, value, epoch, batch, where="training", read_at=None):
        """Raise NonFiniteLossError if `value` is NaN or Inf. read_at: the batch at which a GPU
        run read this loss back, when that is later than its own batch."""
        if math.isfinite(value):
            return
        step = (epoch - 1) * len(self.loader) + batch
        location = (f"epoch {epoch}, batch {batch} of {len(self.loader)} (step {step})"
                    if where == "training" else f"epoch {epoch}, validation batch {batch}")
        applied = ("the weights were not updated with it" if read_at in (None, batch) else
                   f"it was read back at batch {read_at}, and the updates from batch {batch} on "
                   "were applied")
        raise NonFiniteLossError(
            f"training stopped: the {where} loss is {value} at {location}; {applied}; "
            f"{self._last_good()}. Try a lower learning rate (--lr).", epoch, batch, value)

    def _check_finite_losses(self, unread, epoch, read_at):
        """One read of the losses not yet checked, [(batch, value)]: the first non-finite one
        raises NonFiniteLossError naming its batch."""
        for (batch, _), value in zip(unread, _host_values([v for _, v in unread])):
            self._check_finite(value, epoch, batch, read_at=read_at)

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

    def _batch_loss(self, xb, shard, where="a batch"):
        """(loss Tensor or None, the batch's loss value, its metrics) for this rank's part xb
        of a batch; shard = (start, stop, total): xb is rows start:stop of the batch of `total`
        (one process: all of it). The value and metrics are the whole batch's means, the same
        on every rank; the Tensor is this rank's part's (None when the part is empty)."""
        start, stop, total = shard
        loss, value, metrics = None, 0.0, {}
        if stop > start:
            with ae_random.batch_shard(start, stop, total):
                loss, metrics = self.model.loss(self._to_device(xb))
            value = as_metric(loss)        # a float, or on a GPU a 0-d array read later
            self._metric_keys = tuple(metrics)
        if self.world.size == 1:
            return loss, value, metrics
        value = float(value)
        if total < self.world.size:           # a rank's part is empty: rank 0 names the keys
            self._metric_keys = self.world.broadcast_object(self._metric_keys)
        keys, share = self._metric_keys, stop - start
        sums = np.array([value] + [float(metrics[k]) for k in keys] if share else
                        [0.0] * (1 + len(keys))) * share
        means = self.world.allreduce_sum(sums, f"the loss allreduce of {where}") / total
        return loss, float(means[0]), dict(zip(keys, means[1:].tolist()))

    def train_epoch(self, epoch, progress=None):
        """One pass over the training data -> averaged {"loss": ..., <model metrics>...}.

        Each step is checked: a non-finite loss stops before the update, a non-finite parameter
        or optimizer buffer right after it. NumPy's overflow warnings are silenced inside the
        step, since these checks report the problem in one line. With several ranks, each step
        is the whole global batch's (see the module docstring).
        """
        self.model.train()
        world = self.world
        sums, seen = {}, 0
        unread = []                 # (batch, loss) of the steps whose loss is not read yet
        for batch, (xb, _) in enumerate(self.loader, start=1):
            start, stop, total = shard = self.loader.last_shard
            world.broadcast_buffers(self.model)       # rank 0's running statistics
            with np.errstate(all="ignore"):
                where = f"epoch {epoch}, batch {batch}"
                loss, value, metrics = self._batch_loss(xb, shard, where)
                unread.append((batch, value))
                read = len(unread) >= self.read_every or batch == len(self.loader)
                if read:                # before this step's update
                    self._check_finite_losses(unread, epoch, read_at=batch)
                    unread = []
                self.optimizer.zero_grad()
                if loss is not None:
                    loss.backward()
                # the whole batch's gradient: each rank's weighted by its share of the batch
                world.allreduce_gradients(self.model.parameters(), (stop - start) / total,
                                          f"the gradient allreduce of {where}")
                if self.config["grad_clip"] is not None:
                    clip_grad_norm_(self.model.parameters(), self.config["grad_clip"])
                self.optimizer.step()
            if total < world.size:     # an empty part drew no noise: take rank 0's generator
                ae_random.set_rng_state(world.broadcast_object(ae_random.get_rng_state()))
            if read:
                self._check_finite_state(epoch, batch)
            seen += total
            for key, v in (("loss", value),) + tuple(metrics.items()):
                sums[key] = sums.get(key, 0.0) + v * total     # on the device for a GPU's values
            if progress is not None and read:
                progress.update(batch, seen, _host_values([sums["loss"]])[0] / seen)
        keys = list(sums)
        return {k: v / seen for k, v in zip(keys, _host_values([sums[k] for k in keys]))}

    def evaluate(self, images, epoch=None):
        """Averaged loss and metrics on `images`, without gradients, with the validation noise
        (a generator seeded from config["seed"], the same every call)."""
        self.model.eval()
        sums, seen = {}, 0
        loader = ShardedLoader(images, None, batch_size=max(self.global_batch, 256),
                               shuffle=False, rank=self.world.rank, size=self.world.size)
        with fixed_noise([self.config["seed"], VALIDATION_STREAM]), no_grad(), \
                np.errstate(all="ignore"):
            for batch, (xb, _) in enumerate(loader, start=1):
                _, value, metrics = self._batch_loss(xb, loader.last_shard,
                                                     f"validation batch {batch}")
                value = float(value)
                if epoch is not None:
                    self._check_finite(value, epoch, batch, where="validation")
                n = loader.last_shard[2]
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
        self._start_ranks()
        self.world.on_root(self._write_config)
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
                record["lr"] = self._lr()
                record["seconds"] = time.perf_counter() - start
                record["items_per_second"] = len(self.train_images) / max(train_seconds, 1e-9)
                improved = self._early_stopping(record)
                self._step_schedule(record)
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
                self.world.on_root(self._write_epoch_files)
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

    def _write_config(self):
        if self.out_dir:
            write_json(self.out_dir, "config.json", self._full_config())

    def _write_epoch_files(self):
        if self.out_dir:
            self.save_checkpoint()
            self.write_metrics()

    def _start_ranks(self):
        """Several ranks: check that every rank was given the same settings and data, then give
        every rank rank 0's weights, buffers and optimizer state, and say what runs."""
        world = self.world
        if world.size == 1:
            return
        world.check_same(dict(self._full_config(), epoch=self.epoch,
                              **{"train data": _fingerprint(self.train_images),
                                 "validation data": _fingerprint(self.val_images)}),
                         "settings or data")
        if len(self.train_images) < world.size:   # the same on every rank, checked just now
            error = ConfigError(f"the training set has {len(self.train_images)} images, "
                                f"fewer than the {world.size} ranks: each rank needs one at least")
            error.collective = True
            raise error
        world.broadcast_parameters(self.model)
        state = world.broadcast_object(self.optimizer.state_dict() if world.is_root else None,
                                       "the broadcast of the optimizer state")
        if not world.is_root:
            self.optimizer.load_state_dict(state)
        if not self.quiet:
            threads = os.environ.get("NUMBA_NUM_THREADS") or os.environ.get("OMP_NUM_THREADS")
            per_rank = f", {threads} thread{'s' * (threads != '1')} each" if threads else ""
            print(f"data-parallel: {world.size} ranks{per_rank}; batch {self.config['batch_size']}"
                  f" per rank, global batch {self.global_batch}", file=self.stream or sys.stderr)

    def _print_compile_notice(self):
        """Say so when this first run will compile the kernels (seconds per kernel)."""
        if self.quiet:
            return
        from ..kernels.compile import compile_notice
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
        if self.out_dir is None:           # another rank's disk: rank 0 reports it
            raise error
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

    def _lr(self):
        """The optimizer's learning rate now (the one the next step uses)."""
        return float(self.optimizer.param_groups[0]["lr"])

    def _step_schedule(self, record):
        """One epoch's step of the lr schedule: ReduceLROnPlateau with the monitored loss (the
        validation loss, or the training loss without a validation set)."""
        if self.scheduler is None:
            return
        if isinstance(self.scheduler, ReduceLROnPlateau):
            self.scheduler.step(self._monitored(record))
        else:
            self.scheduler.step()

    @staticmethod
    def _monitored(record):
        return record["val_loss"] if record["val_loss"] is not None else record["train_loss"]

    def _monitor_name(self):
        return "validation loss" if self.val_images is not None else "training loss"

    def _early_stopping(self, record):
        value = self._monitored(record)
        if self.best is None or value < self.best - self.config["min_delta"]:
            self.best, self.best_epoch, self.wait = value, record["epoch"], 0
            self.best_state = self.model.state_dict()
            return True
        self.wait += 1
        return False

    def _summary(self, r, improved):
        val = "" if r["val_loss"] is None else f"  val {r['val_loss']:.4f}"
        lr = "" if self.scheduler is None else f"  lr {r['lr']:.3g}"
        mark = " *" if improved and r["val_loss"] is not None else ""
        return (f"epoch {r['epoch']}/{self.config['epochs']}  train {r['train_loss']:.4f}{val}"
                f"{lr}  {r['items_per_second']:,.0f} img/s  {r['seconds']:.1f} s{mark}")

    # ------------------------------------------------------------------ files
    def _full_config(self):
        """The config as saved (config.json, checkpoints): with the input shape and the model's
        own config, so that load_run and resume rebuild the exact architecture."""
        config = dict(self.config)
        config["input_shape"] = list(self.train_images.shape[1:])
        config["ranks"] = self.world.size            # batch_size is per rank
        model_config = getattr(self.model, "config", None)
        if model_config is not None:
            config["model_config"] = json_safe(model_config)
        return config

    def write_metrics(self, status=None):
        """metrics.json (summary + every epoch) and metrics.csv (one row per epoch)."""
        write_metrics(self.out_dir, {
            "status": status or ("finished" if self.finished else "running"),
            "epochs_completed": self.epoch,
            "best_epoch": self.best_epoch,
            "best_loss": self.best,
            "monitor": "val_loss" if self.val_images is not None else "train_loss",
            "stop_reason": self.stop_reason,
            "train_size": int(len(self.train_images)),
            "val_size": 0 if self.val_images is None else int(len(self.val_images)),
        }, self.history)

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
            "scheduler": None if self.scheduler is None else self.scheduler.state_dict(),
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
        if not all(isinstance(v, (int, float, str)) or (isinstance(v, list) and all(
                isinstance(x, (int, float)) for x in v)) for v in optimizer_meta["hyper"].values()):
            raise ValueError("optimizer hyper-parameters must be numbers (or a rule's name)")
        self.model.load_state_dict(arrays["model"])
        self.optimizer.load_state_dict(unpack_optimizer_state(arrays.get("optim", {}),
                                                              optimizer_meta))
        saved_schedule = meta.get("scheduler")     # absent from runs older than schedules
        if saved_schedule is None and self.scheduler is not None:
            raise ValueError("the checkpoint holds no lr scheduler state, this run has a "
                             f"schedule ({self.config['lr_schedule'] or 'a scheduler'})")
        if saved_schedule is not None and self.scheduler is None:
            raise ValueError("the checkpoint holds an lr scheduler state, this run has no "
                             "schedule (lr_schedule None)")
        if self.scheduler is not None:
            self.scheduler.load_state_dict(saved_schedule)
        ae_random.set_rng_state(rng)
        self.loader.load_state_dict(loader_state)
        self.epoch = epoch
        self.history = list(history)
        self.best, self.best_epoch, self.wait = t.get("best"), t.get("best_epoch"), t.get("wait", 0)
        self.finished, self.stop_reason = bool(t.get("finished")), t.get("stop_reason")
        if "best" in arrays and set(arrays["best"]) != set(self.model.state_dict()):
            raise ValueError("the best weights name other parameters than the model's")
        self.best_state = dict(arrays["best"]) if "best" in arrays else None

