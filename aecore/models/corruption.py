"""Corruptions for the denoising autoencoder. Every draw comes from aecore.random (seeded).

    corrupt(x, kind, level, occlusion="block")   x: NumPy/CuPy array or Tensor (N, C, H, W)
                                                 in [0, 1]; returns the same type, never in place

kind             level means                               default
gaussian         std of the added noise (the "noise factor"); result clipped to [0, 1]     0.5
salt_and_pepper  fraction of pixels replaced, half by 0 and half by 1                  0.2
masking          fraction of pixels set to 0 (dropout of pixels, no rescaling)        0.3
occlusion        fraction of the image area hidden (set to 0), per image at a random
                 place: occlusion="block" (a square of side round(sqrt(level) * size))
                 or "crosshair" (a horizontal and a vertical bar of thickness t with
                 2 t S - t^2 ~ level * S^2)                                            0.2
"crosshair" and "block" are also accepted as kinds (occlusion of that shape). Pixels are chosen
independently per image; for images with several channels the same pixels are hit in every
channel (a pixel is corrupted, not a colour component).
"""

import math

import numpy as np

from .. import random as ae_random
from ..backend import get_array_module
from ..tensor import Tensor
from .base import ModelConfigError

NOISE_KINDS = ("gaussian", "salt_and_pepper", "masking", "occlusion")
OCCLUSIONS = ("block", "crosshair")
DEFAULT_LEVELS = {"gaussian": 0.5, "salt_and_pepper": 0.2, "masking": 0.3, "occlusion": 0.2}
LEVEL_MEANS = {"gaussian": "std", "salt_and_pepper": "rate", "masking": "rate",
               "occlusion": "fraction"}
# Other names accepted for a kind (an occlusion's shape also names the occlusion of that shape).
ALIASES = {"salt-and-pepper": "salt_and_pepper", "salt_pepper": "salt_and_pepper",
           "s&p": "salt_and_pepper", "dropout": "masking", "block": "occlusion",
           "crosshair": "occlusion"}


def describe_noise_kinds():
    """The one list of noise kinds, for help texts and errors:
    'gaussian[:std], ..., occlusion[:fraction]; aliases: block, crosshair (occlusion of that
    shape), dropout (masking), ...'."""
    kinds = ", ".join(f"{k}[:{LEVEL_MEANS[k]}]" for k in NOISE_KINDS)
    by_kind = {}
    for alias, kind in ALIASES.items():
        by_kind.setdefault(kind, []).append(alias)
    aliases = "; ".join(f"{', '.join(names)} = {kind}" + (" of that shape"
                                                           if kind == "occlusion" else "")
                        for kind, names in by_kind.items())
    return f"{kinds} (aliases: {aliases})"


def normalize_noise(kind, level=None, occlusion="block"):
    """Check (kind, level, occlusion); returns them resolved (aliases, default levels)."""
    if kind in OCCLUSIONS:
        kind, occlusion = "occlusion", kind
    kind = ALIASES.get(kind, kind)
    if kind not in NOISE_KINDS:
        raise ModelConfigError(f"noise must be one of {describe_noise_kinds()}; got {kind!r}")
    if occlusion not in OCCLUSIONS:
        raise ModelConfigError(f"occlusion must be one of {', '.join(OCCLUSIONS)}; got {occlusion!r}")
    if level is None:
        level = DEFAULT_LEVELS[kind]
    if isinstance(level, bool) or not isinstance(level, (int, float, np.integer, np.floating)) \
            or not math.isfinite(level) or level < 0:
        raise ModelConfigError(f"noise_level must be a finite number >= 0, got {level!r}")
    if kind != "gaussian" and level > 1:
        raise ModelConfigError(f"noise_level for {kind} is a fraction in [0, 1], got {level!r}")
    return kind, float(level), occlusion


def corrupt(x, kind="gaussian", level=None, occlusion="block"):
    """A corrupted copy of x (same type: Tensor in, Tensor out; array in, array out)."""
    kind, level, occlusion = normalize_noise(kind, level, occlusion)
    if isinstance(x, Tensor):
        return Tensor(corrupt_array(x.data, kind, level, occlusion), _copy=False)
    return corrupt_array(x, kind, level, occlusion)


def corrupt_array(x, kind, level, occlusion="block"):
    xp = get_array_module(x)
    if not hasattr(x, "ndim") or x.ndim != 4:
        raise ValueError(f"corrupt: x must be a (N, C, H, W) array, got shape {getattr(x, 'shape', None)}")
    dtype = x.dtype if x.dtype.kind == "f" else np.dtype(np.float32)
    x = x.astype(dtype, copy=True)
    n, c, h, w = x.shape
    if kind == "gaussian":
        noise = ae_random.randn(x.shape, dtype, like=x)
        return xp.clip(x + dtype.type(level) * noise, 0, 1)
    if kind == "salt_and_pepper":
        u = ae_random.rand((n, 1, h, w), dtype, like=x)
        pepper = u < level / 2
        salt = (u >= level / 2) & (u < level)
        x = xp.where(pepper, dtype.type(0), x)
        return xp.where(salt, dtype.type(1), x)
    if kind == "masking":
        u = ae_random.rand((n, 1, h, w), dtype, like=x)
        return xp.where(u < level, dtype.type(0), x)
    mask = occlusion_mask(n, h, w, level, occlusion)
    return xp.where(xp.asarray(mask)[:, None], dtype.type(0), x)


def occlusion_mask(n, h, w, level, shape="block"):
    """Boolean (n, h, w) masks: True where the image is hidden (host array)."""
    mask = np.zeros((n, h, w), dtype=bool)
    if level <= 0:
        return mask
    if shape == "block":
        bh = min(h, max(1, round(math.sqrt(level) * h)))
        bw = min(w, max(1, round(math.sqrt(level) * w)))
        top = np.floor(ae_random.rand(n, np.float64) * (h - bh + 1)).astype(int)
        left = np.floor(ae_random.rand(n, np.float64) * (w - bw + 1)).astype(int)
        for i in range(n):
            mask[i, top[i]:top[i] + bh, left[i]:left[i] + bw] = True
        return mask
    # crosshair: bars of thickness t with (t h + t w - t^2) ~ level * h * w
    side = min(h, w)
    t = min(side, max(1, round(side * (1 - math.sqrt(max(0.0, 1 - level))))))
    row = np.floor(ae_random.rand(n, np.float64) * (h - t + 1)).astype(int)
    col = np.floor(ae_random.rand(n, np.float64) * (w - t + 1)).astype(int)
    for i in range(n):
        mask[i, row[i]:row[i] + t, :] = True
        mask[i, :, col[i]:col[i] + t] = True
    return mask
