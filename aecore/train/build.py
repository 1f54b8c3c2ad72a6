"""What a config names, made: the data set, the model, the optimizer, the lr schedule.

Each takes a checked config (see config.py) and makes one thing; the entry points in
__init__.py call them in the order that keeps a run repeatable (seed, data, model, optimizer);
the Trainer makes the schedule of its optimizer.
"""

from __future__ import annotations

import numpy as np

from ..data import Dataset, load_dataset
from ..optim import OPTIMIZERS
from ..optim.schedule_spec import make_scheduler
from .config import SYNTHETIC_SIZE, ConfigError

__all__ = ["load_data", "build_model", "build_optimizer", "build_scheduler"]


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


def build_model(config, input_shape, model_config=None):
    """A fresh model for config, on the CPU (draws its initial weights from aecore.random).

    model_config: the exact architecture a checkpoint saved (model.config); the model is then
    rebuilt from it (aecore.models.from_config) instead of from config's model and options.
    """
    from .. import models
    if model_config is not None:
        return models.from_config(model_config)
    options = {k: v for k, v in (config.get("model_options") or {}).items() if v is not None}
    try:
        return models.build_model(config["model"], input_shape=tuple(input_shape), **options)
    except (TypeError, ValueError, KeyError) as e:
        raise ConfigError(f"cannot build a {config['model']!r} model with options {options}: "
                          f"{e}") from None


def build_optimizer(config, parameters):
    """config's optimizer over `parameters` (lr, and weight_decay / momentum when set; a
    weight_decay of None leaves the optimizer's default: 0, or AdamW's 0.01)."""
    name = str(config["optimizer"]).lower()
    kwargs = {"lr": float(config["lr"])}
    if config.get("weight_decay") is not None:
        kwargs["weight_decay"] = float(config["weight_decay"])
    if config.get("momentum") and name in ("sgd", "rmsprop"):
        kwargs["momentum"] = float(config["momentum"])
    return OPTIMIZERS[name](parameters, **kwargs)


def build_scheduler(config, optimizer):
    """The learning-rate scheduler config["lr_schedule"] names, over `optimizer` (cosine's T_max
    defaults to config["epochs"]), or None when the config has no schedule."""
    if config.get("lr_schedule") is None:
        return None
    return make_scheduler(config["lr_schedule"], optimizer, epochs=config["epochs"])
