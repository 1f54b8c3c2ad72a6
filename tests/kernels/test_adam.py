"""kernels/adam.py: the fused Adam loop gives the very bits of the array form, for each dtype
and rule, serial and in parallel chunks, and adam_update takes it only where it can."""

import numpy as np
import pytest

from aecore.kernels import adam
from aecore.kernels import compile as kernel_compile

needs_numba = pytest.mark.skipif(not kernel_compile.NUMBA_AVAILABLE, reason="needs Numba")


def _state(size, dtype, seed):
    rng = np.random.default_rng(seed)
    p = rng.standard_normal(size).astype(dtype)
    m = (rng.standard_normal(size) * 0.1).astype(dtype)
    v = (rng.random(size) * 0.01).astype(dtype)
    v[::13] = 0                           # with g = 0 and eps = 0: 0 / 0, NaN as in NumPy
    return p, m, v


@needs_numba
@pytest.mark.parametrize("size", [1000, kernel_compile.SERIAL_MAX_VALUES + 12345])
@pytest.mark.parametrize("eps", [1e-8, 0.0])
@pytest.mark.parametrize("rule", ["torch", "keras"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_fused_loop_gives_the_bits_of_the_array_form(dtype, rule, eps, size):
    fused = _state(size, dtype, 0)
    arrays = [a.copy() for a in fused]
    rng = np.random.default_rng(1)
    for t in (1, 2, 3):
        g = (rng.standard_normal(size) * 10 ** rng.uniform(-4, 1, size)).astype(dtype)
        g[::13] = 0
        for (p, m, v), update in ((fused, adam.adam_update_fused),
                                  (arrays, lambda *a: adam.adam_update_arrays(np, *a[:4], None,
                                                                              *a[4:]))):
            with np.errstate(invalid="ignore", divide="ignore"):    # x / 0 is meant here
                update(p, g, m, v, 1e-3, (0.9, 0.999), eps, t, rule)
    for name, a, b in zip(("p", "m", "v"), fused, arrays):
        assert a.dtype == dtype
        np.testing.assert_array_equal(a, b, err_msg=name)      # NaN == NaN here, bit for bit
    assert not np.array_equal(fused[0], _state(size, dtype, 0)[0])   # p did move


@needs_numba
def test_adam_update_fuses_numpy_arrays_only(monkeypatch):
    calls = []
    monkeypatch.setattr(adam, "adam_update_fused", lambda *a: calls.append("fused"))
    monkeypatch.setattr(adam, "adam_update_arrays", lambda *a: calls.append("arrays"))
    p, m, v = _state(10, np.float32, 0)
    args = (1e-3, (0.9, 0.999), 1e-8, 1, "torch")
    adam.adam_update(np, p, p.copy(), m, v, None, *args)
    adam.adam_update(np, p, p.copy(), m, v, v.copy(), *args)           # amsgrad
    adam.adam_update(np, p, p.astype(np.float64), m, v, None, *args)    # mixed dtypes
    transposed = np.ones((5, 2), np.float32).T                      # (2, 5), not C-contiguous
    adam.adam_update(np, transposed, *(np.ones((2, 5), np.float32) for _ in range(3)), None,
                     *args)
    assert calls == ["fused", "arrays", "arrays", "arrays"]
