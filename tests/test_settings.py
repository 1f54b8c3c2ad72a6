"""aecore.settings: every AECORE_* variable checked in one place, one line for a bad value,
and `import aecore` never broken by one."""

import importlib.util
import os
import subprocess
import sys

import numpy as np
import pytest

import aecore as ae
from aecore import settings
from aecore.backend import gpu_available
from aecore.kernels import registry
from aecore.settings import SettingsError, check_environment

VARIABLES = ("AECORE_TIER", "AECORE_HOST_CACHE_MB", "AECORE_DATA", "AECORE_CACHE_DIR",
             "AECORE_DIST_TIMEOUT")
SIMULATOR = os.environ.get("NUMBA_ENABLE_CUDASIM", "0") == "1"


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch):
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)


def _one_line_error(variable, value):
    with pytest.raises(SettingsError) as caught:
        check_environment()
    message = str(caught.value)
    assert "\n" not in message
    assert variable in message and repr(value) in message
    return message


def test_settings_error_is_a_value_error():
    assert issubclass(SettingsError, ValueError)


def test_unset_and_good_values_pass(monkeypatch, tmp_path):
    check_environment()
    monkeypatch.setenv("AECORE_TIER", "ref")
    monkeypatch.setenv("AECORE_HOST_CACHE_MB", "0.5")
    monkeypatch.setenv("AECORE_DATA", str(tmp_path))
    monkeypatch.setenv("AECORE_CACHE_DIR", str(tmp_path / "not-made-yet"))
    resolved = check_environment()
    assert resolved["AECORE_TIER"] == "ref"
    assert resolved["AECORE_HOST_CACHE_MB"] == 0.5
    assert settings.host_cache_bytes() == 1 << 19


@pytest.mark.parametrize("value", ["abc", "nan", "inf", "1e400", "-5", "-inf"])
def test_host_cache_mb_must_be_a_finite_number_at_least_zero(monkeypatch, value):
    monkeypatch.setenv("AECORE_HOST_CACHE_MB", value)
    message = _one_line_error("AECORE_HOST_CACHE_MB", value)
    assert ">= 0" in message


def test_dist_timeout_is_a_positive_number_of_seconds(monkeypatch):
    assert check_environment()["AECORE_DIST_TIMEOUT"] == settings.DEFAULT_DIST_TIMEOUT
    monkeypatch.setenv("AECORE_DIST_TIMEOUT", "12.5")
    assert settings.dist_timeout() == 12.5
    for value in ("soon", "0", "-3", "inf", "nan"):
        monkeypatch.setenv("AECORE_DIST_TIMEOUT", value)
        assert "a positive number of seconds" in _one_line_error("AECORE_DIST_TIMEOUT", value)


@pytest.mark.parametrize("value", ["bogus", "CUDA", "numba,ref"])
def test_tier_must_be_a_known_tier(monkeypatch, value):
    monkeypatch.setenv("AECORE_TIER", value)
    message = _one_line_error("AECORE_TIER", value)
    assert "ref" in message and "numba" in message


@pytest.mark.skipif(gpu_available() or SIMULATOR, reason="the cuda tier can run here")
def test_tier_cuda_needs_a_gpu_or_the_simulator(monkeypatch):
    monkeypatch.setenv("AECORE_TIER", "cuda")
    message = _one_line_error("AECORE_TIER", "cuda")
    assert "NUMBA_ENABLE_CUDASIM=1" in message


def test_tier_numba_needs_numba(monkeypatch):
    from aecore.kernels import compile as kernel_compile
    monkeypatch.setattr(kernel_compile, "NUMBA_AVAILABLE", False)
    monkeypatch.setenv("AECORE_TIER", "numba")
    assert "Numba is not installed" in _one_line_error("AECORE_TIER", "numba")


def test_data_must_be_a_directory(monkeypatch, tmp_path):
    missing = str(tmp_path / "nowhere")
    monkeypatch.setenv("AECORE_DATA", missing)
    assert "no such directory" in _one_line_error("AECORE_DATA", missing)
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    monkeypatch.setenv("AECORE_DATA", str(a_file))
    assert "not a directory" in _one_line_error("AECORE_DATA", str(a_file))


def test_cache_dir_must_not_be_a_file(monkeypatch, tmp_path):
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    monkeypatch.setenv("AECORE_CACHE_DIR", str(a_file))
    assert "not a directory" in _one_line_error("AECORE_CACHE_DIR", str(a_file))


def test_a_bad_tier_raises_the_same_error_at_first_use(monkeypatch):
    monkeypatch.setenv("AECORE_TIER", "bogus")
    with pytest.raises(SettingsError, match="AECORE_TIER='bogus'"):
        registry.forced_tier()
    with pytest.raises(SettingsError, match="AECORE_TIER='bogus'"):
        ae.relu(ae.tensor(np.ones(3)))


@pytest.mark.skipif(gpu_available() or SIMULATOR, reason="the cuda tier can run here")
def test_tier_cuda_without_a_gpu_is_refused_before_any_kernel(monkeypatch):
    monkeypatch.setenv("AECORE_TIER", "cuda")
    with pytest.raises(SettingsError, match="AECORE_TIER='cuda'"):
        ae.relu(ae.tensor(np.ones(3)))


def _python(code, *args, without=(), **environment):
    """`code` in a fresh interpreter (arguments after it in sys.argv), with none of aecore's
    variables or `without` in its environment, and `environment` added."""
    env = {k: v for k, v in os.environ.items() if k not in VARIABLES and k not in without}
    env.update(environment)
    return subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True,
                          text=True, timeout=300)


def test_import_survives_a_bad_value_and_check_environment_names_it():
    imported = _python("import aecore", AECORE_HOST_CACHE_MB="abc", AECORE_TIER="bogus")
    assert imported.returncode == 0 and imported.stderr == "", imported.stderr
    checked = _python("import aecore.settings as s\n"
                      "try:\n    s.check_environment()\n"
                      "except s.SettingsError as e:\n    print(e)\n",
                      AECORE_HOST_CACHE_MB="abc")
    assert checked.returncode == 0, checked.stderr
    lines = checked.stdout.splitlines()
    assert len(lines) == 1 and "AECORE_HOST_CACHE_MB" in lines[0] and "'abc'" in lines[0]


def _spin_count_seen(extra_env):
    """(the spin count GNU OpenMP took for Numba's pool, GOMP_SPINCOUNT in the environment after
    the pool started) in a fresh interpreter; OMP_DISPLAY_ENV makes OpenMP print its settings."""
    import re
    code = ("import os, numba\nfrom aecore.kernels import compile as c\nc.start_threads()\n"
            "print(numba.threading_layer(), os.environ.get('GOMP_SPINCOUNT'))")
    run = _python(code, without=("GOMP_SPINCOUNT", "OMP_WAIT_POLICY"), OMP_DISPLAY_ENV="verbose",
                  **extra_env)
    assert run.returncode == 0, run.stderr
    layer, after = run.stdout.split()
    if layer != "omp":
        pytest.skip(f"Numba's threading layer here is {layer}, not OpenMP")
    took = re.search(r"GOMP_SPINCOUNT = '(\d+)'", run.stderr)
    return took and took.group(1), after


@pytest.mark.skipif(importlib.util.find_spec("numba") is None, reason="needs Numba")
def test_a_short_openmp_spin_for_numbas_pool_unless_the_user_chose():
    """kernels/compile.py shortens GNU OpenMP's spin for Numba's pool (the two thread pools on a
    2-core machine: kernels/NOTES.md, "thread pools"), leaves a user's own choice alone, and
    leaves the environment as it was, for child processes and other libraries' OpenMP."""
    from aecore.kernels.compile import OMP_SPIN_COUNT
    assert _spin_count_seen({}) == (OMP_SPIN_COUNT, "None")
    assert _spin_count_seen({"GOMP_SPINCOUNT": "5"}) == ("5", "5")
    assert _spin_count_seen({"OMP_WAIT_POLICY": "ACTIVE"})[1] == "None"


SPIN_SCRIPT = """
import os, sys, time
if sys.argv[1] == "numpy-first":
    import numpy
import aecore
import numpy as np
a = np.ones((512, 512), np.float32)
for _ in range(5):
    a @ a                                   # OpenBLAS's threads work, then wait for more
started = time.process_time()               # CPU time of every thread of the process
time.sleep(0.3)
print(time.process_time() - started, os.environ.get("OPENBLAS_THREAD_TIMEOUT"))
"""


def _cpu_while_asleep_after_matmuls(order, **extra_env):
    """(CPU seconds the process used in the 0.3 s it slept after five matmuls, the
    OPENBLAS_THREAD_TIMEOUT it then had in its environment), in a fresh interpreter."""
    run = _python(SPIN_SCRIPT, order, without=("OPENBLAS_THREAD_TIMEOUT", "GOTO_THREAD_TIMEOUT"),
                  **extra_env)
    assert run.returncode == 0, run.stderr
    spent, after = run.stdout.split()
    return float(spent), after


def test_openblas_threads_spin_briefly_after_a_matmul_unless_the_user_chose():
    """aecore/blas.py: OpenBLAS's idle threads sleep after a millisecond or two, not after a
    tenth of a second of spinning, when aecore is imported before NumPy; a user's own
    OPENBLAS_THREAD_TIMEOUT is kept, and the environment is left as it was."""
    users_choice, after = _cpu_while_asleep_after_matmuls("aecore-first",
                                                          OPENBLAS_THREAD_TIMEOUT="28")
    assert after == "28"
    if users_choice < 0.05:
        pytest.skip(f"this BLAS did not spin after a matmul ({users_choice:.3f} s of CPU while "
                    "asleep with OpenBLAS's default): nothing to shorten")
    ours, after = _cpu_while_asleep_after_matmuls("aecore-first")
    assert after == "None"
    assert ours < 0.03, f"{ours:.3f} s of CPU while asleep (OpenBLAS's default: {users_choice:.3f})"
    numpy_first, _ = _cpu_while_asleep_after_matmuls("numpy-first")
    assert numpy_first > 0.05        # NumPy loaded first: OpenBLAS took its default (README)
