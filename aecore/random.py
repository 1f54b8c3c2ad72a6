"""One seeded random generator for the whole engine: initializers, noise, sampling, shuffling.

`manual_seed(n)` makes every run repeatable. `get_rng_state()` / `set_rng_state()` return and
restore JSON-safe state so a checkpoint can resume a run exactly.

Data-parallel training (aecore.distributed) deals each global batch of n examples across the
ranks; inside `batch_shard(start, stop, n)` a draw for this rank's examples, one whose leading
axis has length stop - start, is drawn for the whole batch, (n, ...), and rows start:stop are
kept. So every rank draws exactly the noise one process would give those examples, and every
rank's generator stays in step with the others'. Other draws are made as they are.
"""

import contextlib

import numpy as np

from .backend import cupy_module, is_cupy_array

_generator = np.random.default_rng(0)
_shard = None        # (start, stop, total) inside batch_shard


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


@contextlib.contextmanager
def batch_shard(start, stop, total):
    """Draws for examples start:stop of a batch of `total` come out as the whole batch's rows
    start:stop (see the module docstring)."""
    global _shard
    if not 0 <= start <= stop <= total:
        raise ValueError(f"batch_shard: need 0 <= start <= stop <= total, got {start}, {stop}, "
                         f"{total}")
    previous, _shard = _shard, (int(start), int(stop), int(total))
    try:
        yield
    finally:
        _shard = previous


def _draw(sample, shape):
    """sample(shape), or, inside batch_shard, this shard's rows of the whole batch's draw."""
    shape = (int(shape),) if isinstance(shape, (int, np.integer)) else tuple(shape)
    if _shard is not None and shape:
        start, stop, total = _shard
        if shape[0] == stop - start and total != stop - start:
            return sample((total,) + shape[1:])[start:stop]
    return sample(shape)


_host_draws = False   # inside host_draws()


def _on_gpu(like):
    return like is not None and is_cupy_array(like) and not _host_draws


@contextlib.contextmanager
def host_draws():
    """Inside the block, draws for a GPU are made by the engine's host generator and copied
    there (one copy per draw), as on the CPU: a GPU step then sees a CPU step's very noise."""
    global _host_draws
    previous, _host_draws = _host_draws, True
    try:
        yield
    finally:
        _host_draws = previous


def _to_like(array, like):
    if like is not None and is_cupy_array(like):
        return cupy_module().asarray(array)
    return array


# Draws for a GPU (`like` a CuPy array) are made on it, by cuRAND's counter-based Philox
# generator (CuPy's RandomState), seeded afresh for each draw from one draw of the engine's
# generator. So nothing is copied from the host, a seed repeats a run, and a checkpoint (which
# saves the engine's state) resumes one exactly; the values differ from a CPU run's (host_draws()
# gives the CPU's). Philox
# because reseeding it costs nothing (XORWOW sets up its state on the device after each seed).
_device_generators = {}


def _device_generator():
    cupy = cupy_module()
    device = cupy.cuda.Device().id
    generator = _device_generators.get(device)
    if generator is None:
        generator = _device_generators[device] = cupy.random.RandomState(
            method=cupy.cuda.curand.CURAND_RNG_PSEUDO_PHILOX4_32_10)
    generator.seed(int(_generator.integers(2 ** 63)))
    return generator


def randn(shape, dtype=np.float32, like=None):
    """Standard normal draws, on the device of `like` (see above for a GPU)."""
    if _on_gpu(like):
        device = _device_generator()
        return _draw(lambda size: device.standard_normal(size, dtype=dtype), shape)
    return _to_like(_draw(_generator.standard_normal, shape).astype(dtype, copy=False), like)


def rand(shape, dtype=np.float32, like=None):
    """Uniform [0, 1) draws."""
    if _on_gpu(like):
        device = _device_generator()
        return _draw(lambda size: device.random_sample(size, dtype=dtype), shape)
    return _to_like(_draw(_generator.random, shape).astype(dtype, copy=False), like)


def uniform(low, high, shape, dtype=np.float32, like=None):
    if _on_gpu(like):
        device = _device_generator()
        return _draw(lambda size: device.uniform(low, high, size, dtype=dtype), shape)
    draws = _draw(lambda size: _generator.uniform(low, high, size), shape)
    return _to_like(draws.astype(dtype, copy=False), like)


def normal(mean, std, shape, dtype=np.float32, like=None):
    if _on_gpu(like):
        device = _device_generator()
        return _draw(lambda size: device.normal(mean, std, size, dtype=dtype), shape)
    draws = _draw(lambda size: _generator.normal(mean, std, size), shape)
    return _to_like(draws.astype(dtype, copy=False), like)
