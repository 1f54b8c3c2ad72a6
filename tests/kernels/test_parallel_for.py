"""compile.parallel_for: every task index runs exactly once, for each argument layout, and a
task that returns a value is refused with one line."""

import numpy as np
import pytest

from aecore.kernels import compile as kernel_compile

pytestmark = pytest.mark.skipif(not kernel_compile.NUMBA_AVAILABLE, reason="needs Numba")


def scale_row(task, x, y, factor):
    # task t: y[t] = x[t] * factor + t (the + t shows which task wrote the row)
    for j in range(x.shape[1]):
        y[task, j] = x[task, j] * factor + task


def count_task(task, counts):
    counts[task] += 1


def returns_a_value(task, x):
    return x[task]


_scale_row = kernel_compile.cpu_kernel(scale_row)
_count_task = kernel_compile.cpu_kernel(count_task)
_returns_a_value = kernel_compile.cpu_kernel(returns_a_value)


@pytest.mark.parametrize("layout", ["C", "F", "strided", "readonly"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_each_task_runs_once_for_each_layout(layout, dtype):
    base = np.arange(7 * 10, dtype=dtype).reshape(7, 10)
    x = {"C": base, "F": np.asfortranarray(base), "strided": np.repeat(base, 2, axis=1)[:, ::2],
         "readonly": base.copy()}[layout]
    x.flags.writeable = layout != "readonly"
    y = np.full((7, 10), -1, dtype)
    kernel_compile.parallel_for(_scale_row, 7, x, y, dtype(2))
    np.testing.assert_array_equal(y, base * 2 + np.arange(7, dtype=dtype)[:, None])


def test_counts_every_index_once_and_zero_tasks_do_nothing():
    counts = np.zeros(1000, np.int64)
    kernel_compile.parallel_for(_count_task, 1000, counts)
    np.testing.assert_array_equal(counts, 1)
    kernel_compile.parallel_for(_count_task, 0, counts)
    np.testing.assert_array_equal(counts, 1)


def test_a_task_that_returns_a_value_is_refused():
    with pytest.raises(TypeError, match="returns_a_value: a parallel_for task returns nothing"):
        kernel_compile.parallel_for(_returns_a_value, 3, np.zeros(3))
