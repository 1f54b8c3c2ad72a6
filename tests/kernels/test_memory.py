"""The host buffer cache (aecore.kernels.memory): reuse only what nothing can see any more."""

import numpy as np
import pytest

from aecore.kernels import memory
from aecore.settings import SettingsError
from sample_calls import sample_calls
from tiers import every_buffer_cached, run_tier, skip_if_none, tiers_to_test

BIG = (memory.MIN_BYTES // 4 + 1000,)      # float32 values: just over the cache's lower limit


@pytest.fixture
def cache():
    return memory.HostCache(limit_bytes=64 << 20)


def test_a_buffer_comes_back_once_its_array_is_gone(cache):
    first = cache.empty(BIG, np.float32)
    address = first.ctypes.data
    del first
    second = cache.empty(BIG, np.float32)
    assert second.ctypes.data == address
    assert (cache.hits, cache.misses) == (1, 1)


def test_arrays_have_the_shape_dtype_layout_and_alignment_asked_for(cache):
    array = cache.empty((3, 5, 70000), np.float64)
    assert array.shape == (3, 5, 70000) and array.dtype == np.float64
    assert array.flags.c_contiguous and array.flags.writeable
    assert array.ctypes.data % memory.ALIGNMENT == 0
    assert cache.empty(300000, np.int64).shape == (300000,)


@pytest.mark.parametrize("keep", [
    lambda a: a,                                    # the array itself
    lambda a: a.reshape(-1, 2)[3:],                 # a slice of a reshape
    lambda a: a.view(np.int32).T,                   # a view of a view
    lambda a: memoryview(a),                        # a buffer export
    lambda a: np.frombuffer(memoryview(a), np.uint8),
], ids=["array", "slice", "view-of-view", "memoryview", "frombuffer"])
def test_memory_that_is_still_seen_is_never_handed_out_again(cache, keep):
    array = cache.empty(BIG, np.float32)
    array[:] = 7.0
    kept = keep(array)
    del array
    other = cache.empty(BIG, np.float32)
    other[:] = -1.0
    assert not np.shares_memory(np.asarray(kept), other)
    assert np.all(np.frombuffer(memoryview(kept), np.float32) == 7.0)     # no data lost
    del kept
    assert cache.misses == 2


def test_zeros_are_zero_even_in_a_used_buffer(cache):
    dirty = cache.empty(BIG, np.float32)
    dirty[:] = np.nan
    del dirty
    zeros = cache.zeros(BIG, np.float32)
    assert cache.hits == 1 and not zeros.any()


def test_small_arrays_and_a_zero_limit_bypass_the_cache(cache):
    cache.empty((10,), np.float32)
    assert cache.info()["buffers"] == 0
    cache.set_limit(0)
    cache.empty(BIG, np.float32)
    assert cache.info()["buffers"] == 0


def test_the_limit_frees_idle_buffers_first_then_bypasses(cache):
    size = BIG[0] * 4 + memory.ALIGNMENT
    cache.set_limit(2 * size + 256)                        # room for two of these sizes
    held = cache.empty(BIG, np.float32)
    idle = cache.empty((BIG[0] + 16,), np.float32)         # another size, given back at once
    del idle
    third = cache.empty((BIG[0] + 32,), np.float32)        # frees the idle one to fit
    assert cache.info()["buffers"] == 2
    fourth = cache.empty((BIG[0] + 48,), np.float32)       # nothing idle: an ordinary array
    assert cache.bypassed == 1 and cache.info()["buffers"] == 2
    assert not np.shares_memory(fourth, held) and not np.shares_memory(fourth, third)


def test_release_and_info_count_bytes(cache):
    kept = cache.empty(BIG, np.float32)
    gone = cache.empty((BIG[0] + 16,), np.float32)
    del gone
    info = cache.info()
    assert info["buffers"] == 2 and info["idle_bytes"] == BIG[0] * 4 + 64 + memory.ALIGNMENT
    assert cache.release() == info["idle_bytes"]
    assert cache.info()["buffers"] == 1 and kept.size == BIG[0]


@pytest.mark.parametrize("bad", [-1, 1.5, "1GB", True])
def test_set_limit_names_what_it_expected(cache, bad):
    with pytest.raises(ValueError, match="set_limit: expected a number of bytes >= 0"):
        cache.set_limit(bad)


def test_the_environment_limit_is_read_at_first_use(monkeypatch):
    """A bad AECORE_HOST_CACHE_MB never breaks `import aecore`: it is refused when first needed."""
    monkeypatch.setenv("AECORE_HOST_CACHE_MB", "lots")
    cache = memory.HostCache()              # no limit given: AECORE_HOST_CACHE_MB's
    with pytest.raises(SettingsError, match="AECORE_HOST_CACHE_MB='lots'"):
        cache.empty(BIG, np.float32)
    monkeypatch.setenv("AECORE_HOST_CACHE_MB", "0.5")
    assert cache.info()["limit_bytes"] == 1 << 19


CALLS = dict(sample_calls(np.float32))


@pytest.fixture
def small_buffers_cached():
    """Every host-cache allocation through the cache for the test (the sample calls' arrays are
    small), its idle buffers released afterwards."""
    with every_buffer_cached():
        yield


@pytest.mark.parametrize("op", skip_if_none([op for op in CALLS if "numba" in tiers_to_test(op)]))
def test_kernel_outputs_held_across_calls_are_not_overwritten(op, small_buffers_cached):
    """The cache behind the numba tier: an output kept by the caller survives later calls."""
    rng = np.random.default_rng(0)

    def draw():     # the sample call's shapes with new values (int64 argmax indices kept)
        return [rng.standard_normal(a.shape).astype(a.dtype) if is_float_array(a) else a
                for a in CALLS[op]]

    def outputs(result):
        return result if isinstance(result, tuple) else (result,)

    before = memory.info()
    first = outputs(run_tier(op, "numba", *draw()))
    expected = [array.copy() for array in first]
    for _ in range(3):
        run_tier(op, "numba", *draw())
    if memory.info()["hits"] == before["hits"]:
        pytest.skip(f"{op}: its numba tier takes no buffer from the host cache")
    for array, values in zip(first, expected):
        np.testing.assert_array_equal(array, values)


def is_float_array(value):
    return isinstance(value, np.ndarray) and value.dtype.kind == "f"
