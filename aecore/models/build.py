"""build_model(kind, input_shape, **options) and from_config(config): models by name.

    build_model("cae", input_shape=(1, 28, 28), downsample="stride", upsample="transpose")
    build_model("dae", base="cae", noise="salt_and_pepper", noise_level=0.3)
    build_model("vae", encoder="conv", latent_dim=2, beta=4.0)
    build_model("ae", output="linear", reconstruction="mse")   # Keras' MSE on a linear layer
    build_model("vae", reconstruction="bce-keras", reduction="mean", beta=0.01)
    from_config(model.config)          # the same architecture, fresh weights

Options set to None are dropped (the model's default applies), so a CLI can pass every flag.
An option the model does not take is an error that names it and lists the accepted ones.
"""

import inspect

from .base import ModelConfigError
from .conv import CAE
from .dae import DAE
from .dense import AE
from .vae import VAE

MODELS = {"ae": AE, "cae": CAE, "dae": DAE, "vae": VAE}

# Other spellings a command line may use.
ALIASES = {"hidden_sizes": "hidden", "noise_kind": "noise", "noise_type": "noise",
           "noise_factor": "noise_level", "level": "noise_level", "sparsity": "sparse",
           "l1": "sparse"}


def _accepted(cls):
    parameters = inspect.signature(cls.__init__).parameters
    return [name for name, p in parameters.items()
            if name != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)]


def model_options(kind, base="ae"):
    """The option names build_model accepts for `kind` (for a DAE, its own and its base's)."""
    cls = _model_class(kind)
    names = _accepted(cls)
    if cls is DAE:
        names += [n for n in _accepted(_model_class(base if isinstance(base, str) else "ae"))
                  if n not in names]
    return names


def _model_class(kind):
    if not isinstance(kind, str) or kind.lower() not in MODELS:
        raise ModelConfigError(f"model kind must be one of {', '.join(MODELS)}; got {kind!r}")
    return MODELS[kind.lower()]


def build_model(kind, input_shape=(1, 28, 28), **options):
    """A new model of `kind` ('ae', 'cae', 'dae', 'vae') for images of `input_shape` (C, H, W)."""
    options = {ALIASES.get(k, k): v for k, v in options.items() if v is not None}
    cls = _model_class(kind)
    accepted = model_options(kind, options.get("base", "ae"))
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ModelConfigError(f"unknown option{'s' if len(unknown) > 1 else ''} "
                               f"{', '.join(repr(u) for u in unknown)} for model {kind!r}; "
                               f"it accepts: {', '.join(a for a in accepted if a != 'input_shape')}")
    return cls(input_shape=tuple(input_shape), **options)


def from_config(config):
    """Rebuild a model from its `config` dict (as saved in a checkpoint)."""
    if not isinstance(config, dict) or "kind" not in config:
        raise ModelConfigError(f"a model config must be a dict with a 'kind', got {config!r}")
    options = {k: v for k, v in config.items() if k != "kind"}
    cls = _model_class(config["kind"])
    accepted = _accepted(cls)
    unknown = sorted(set(options) - set(accepted))
    if unknown and cls is not DAE:
        raise ModelConfigError(f"unknown option{'s' if len(unknown) > 1 else ''} "
                               f"{', '.join(repr(u) for u in unknown)} in a {config['kind']!r} "
                               f"config; it accepts: {', '.join(accepted)}")
    return cls(**options)
