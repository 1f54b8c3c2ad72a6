"""A training run's config: its defaults, the one check of it, and what a resume may change.

`make_config` is the gate every config goes through once, at the entry point (train(), resume(),
`aecore train`): unknown keys, values out of range, and a device this machine cannot use are
refused there, in one message. What it returns is a `Config`, which the rest of the package
trusts: passed to make_config again (by train(), Trainer), it is returned as it is.
"""

from __future__ import annotations

import copy
import datetime
import math
import os

import numpy as np

from ..backend import normalize_device
from ..io.checkpoint import json_safe
from ..optim import OPTIMIZERS
from ..optim.schedule_spec import check_schedule

__all__ = ["DEFAULT_CONFIG", "RESUME_OVERRIDES", "Config", "ConfigError", "DeviceError",
           "make_config", "default_run_dir", "SYNTHETIC_SIZE"]

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
    "optimizer": "adam",        # adam | adamw | sgd | rmsprop
    "lr": 1e-3,
    "momentum": 0.0,            # sgd / rmsprop
    "weight_decay": None,       # None: the optimizer's default (0; adamw 0.01)
    "lr_schedule": None,        # None, or e.g. "step:10:0.5", "exp:0.95", "cosine", "plateau:3"
                                # (aecore.optim.schedule_spec), stepped once per epoch
    "grad_clip": None,          # None, or the largest total gradient norm of a step
    "patience": 0,              # early stopping: epochs without improvement (0: off)
    "min_delta": 0.0,
    "restore_best": True,       # at the end, keep the weights of the best epoch in memory
    "seed": 0,
    "device": "cpu",            # cpu | cuda
    "pictures": True,           # write PNGs into the run directory at the end
}

# The settings a resumed run may change: none of them alters what the epochs already trained
# would have been, so the run still continues exactly. (`aecore train --resume` allows the
# flags of these and no others.)
RESUME_OVERRIDES = ("epochs", "patience", "min_delta", "device", "pictures", "restore_best")

# Keys a saved config holds besides DEFAULT_CONFIG's (written by the Trainer, see
# Trainer.full_config); make_config accepts them back.
SAVED_KEYS = ("input_shape", "model_config", "version", "ranks")

# How many synthetic digits are generated when config["limit"] does not say.
SYNTHETIC_SIZE = 3000


class ConfigError(ValueError):
    """A config value is missing, unknown or out of range (a user error: the CLI exits 2)."""


class DeviceError(RuntimeError):
    """The config asks for device 'cuda' and no GPU is usable here (the CLI exits 2)."""


class Config(dict):
    """A config that make_config has filled in from DEFAULT_CONFIG and checked. Treat it as
    read-only: make_config(config, key=value) gives a changed copy, checked again."""


def make_config(config=None, **overrides) -> Config:
    """DEFAULT_CONFIG updated with `config` and `overrides`, checked. Unknown keys are an error.

    Raises ConfigError for a bad value, DeviceError when device 'cuda' cannot be used here. A
    Config (already checked) with no overrides is returned as it is.
    """
    if isinstance(config, Config) and not overrides:
        return config
    merged = copy.deepcopy(DEFAULT_CONFIG)
    for source in (config or {}), overrides:
        unknown = set(source) - set(DEFAULT_CONFIG) - set(SAVED_KEYS)
        if unknown:
            raise ConfigError(f"unknown config keys {sorted(unknown)}; known: "
                              f"{sorted(DEFAULT_CONFIG)}")
        for key, value in source.items():
            if key == "model_options":
                merged[key] = dict(merged[key], **(value or {}))
            else:
                merged[key] = value
    _check_config(merged)
    try:
        merged["device"] = normalize_device(merged["device"])
    except RuntimeError as e:
        raise DeviceError(str(e)) from None
    return Config(json_safe(merged))


def _check_config(c):
    def positive_int(key, allow_none=False, minimum=1):
        v = c[key]
        if v is None and allow_none:
            return
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < minimum:
            raise ConfigError(f"{key} must be an integer >= {minimum}, got {v!r}")

    def optional_number(key, accept, expected):
        v = c[key]
        if v is None:
            return
        if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) or \
                not (math.isfinite(v) and accept(v)):
            raise ConfigError(f"{key} must be None or {expected}, got {v!r}")

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
    optional_number("weight_decay", lambda v: v >= 0, "a number >= 0")
    optional_number("grad_clip", lambda v: v > 0, "a positive number")
    if c["lr_schedule"] is not None:
        try:
            check_schedule(c["lr_schedule"], epochs=c["epochs"])
        except (TypeError, ValueError) as e:
            raise ConfigError(str(e)) from None
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
