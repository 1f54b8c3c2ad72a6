"""One seeded random generator for the whole engine: initializers, noise, sampling, shuffling.

`manual_seed(n)` makes every run repeatable. `get_rng_state()` / `set_rng_state()` return and
restore JSON-safe state so a checkpoint can resume a run exactly.
"""

import numpy as np

from .backend import cupy_module, is_cupy_array

_generator = np.random.default_rng(0)


def manual_seed(seed):
    """Seed the engine's generator (like torch.manual_seed)."""
    global _generator
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    _generator = np.random.default_rng(int(seed))
    return _generator


def generator():
    """The NumPy Generator every draw in aecore comes from."""
    return _generator


def get_rng_state():
    return _generator.bit_generator.state


def set_rng_state(state):
    _generator.bit_generator.state = state


def _to_like(array, like):
    if like is not None and is_cupy_array(like):
        return cupy_module().asarray(array)
    return array


def randn(shape, dtype=np.float32, like=None):
    """Standard normal draws; on the device of `like` (drawn on the host so runs repeat exactly
    across devices; for the VAE's noise this is one small copy per step)."""
    return _to_like(_generator.standard_normal(shape).astype(dtype, copy=False), like)


def rand(shape, dtype=np.float32, like=None):
    """Uniform [0, 1) draws."""
    return _to_like(_generator.random(shape).astype(dtype, copy=False), like)


def uniform(low, high, shape, dtype=np.float32, like=None):
    return _to_like(_generator.uniform(low, high, shape).astype(dtype, copy=False), like)


def normal(mean, std, shape, dtype=np.float32, like=None):
    return _to_like(_generator.normal(mean, std, shape).astype(dtype, copy=False), like)
