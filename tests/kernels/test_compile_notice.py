"""The first-run notice: cache_is_cold() sees whether Numba's disk cache holds aecore's kernels.

Numba reads NUMBA_CACHE_DIR (and where else to cache) when it is imported, so each case runs in
a fresh Python process with its own environment, against an empty or a pre-filled cache folder.
"""

import hashlib
import inspect
import json
import os
import subprocess
import sys
import textwrap

import pytest

from aecore.kernels import compile as kernel_compile

pytestmark = pytest.mark.skipif(not kernel_compile.NUMBA_AVAILABLE, reason="needs Numba")

SCRIPT = textwrap.dedent("""
    import json
    from aecore.kernels import compile
    print(json.dumps({"cold": compile.cache_is_cold(), "notice": compile.compile_notice(),
                      "ref": compile.compile_notice(tier="ref"),
                      "cuda": compile.compile_notice(tier="cuda")}))
""")


def _ask(**env):
    """Run SCRIPT with these environment variables (and no other NUMBA_* or AECORE_TIER);
    returns its printed answers."""
    environment = {k: v for k, v in os.environ.items()
                   if not k.startswith("NUMBA_") and k != "AECORE_TIER"}
    environment.update(env)
    result = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                            env=environment, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def _fake_index(cache_root):
    """An empty .nbi file where Numba would index one aecore kernel under `cache_root`, named
    by Numba's rule: <folder>_<sha1 of the module's folder>/<module>.<function>-<line>.pyXY.nbi."""
    function = kernel_compile._CPU_KERNELS[0].py_func
    source = os.path.abspath(inspect.getfile(function))
    folder = os.path.dirname(source)
    subpath = f"{os.path.basename(folder)}_{hashlib.sha1(folder.encode()).hexdigest()}"
    module = os.path.splitext(os.path.basename(source))[0]
    python = f"py{sys.version_info[0]}{sys.version_info[1]}{getattr(sys, 'abiflags', '')}"
    name = f"{module}.{function.__qualname__}-{function.__code__.co_firstlineno}.{python}.nbi"
    path = cache_root / subpath / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


# Where Numba caches: NUMBA_CACHE_DIR when set; or (the package folder not writable) the user's
# cache folder, which NUMBA_CACHE_LOCATOR_CLASSES selects here and XDG_CACHE_HOME moves to tmp.
PLACES = {
    "NUMBA_CACHE_DIR": lambda tmp: ({"NUMBA_CACHE_DIR": str(tmp)}, tmp),
    "user cache folder": lambda tmp: ({"NUMBA_CACHE_LOCATOR_CLASSES": "UserWideCacheLocator",
                                       "XDG_CACHE_HOME": str(tmp)}, tmp / "numba"),
}


@pytest.mark.parametrize("place", sorted(PLACES))
def test_an_empty_cache_is_cold_and_gets_the_notice(tmp_path, place):
    env, _ = PLACES[place](tmp_path)
    answers = _ask(**env)
    assert answers["cold"] is True
    assert answers["notice"] == kernel_compile.COMPILE_NOTICE
    assert "first run only" in answers["notice"]
    assert answers["ref"] is None and answers["cuda"] is None   # those tiers compile none
    assert list(tmp_path.rglob("*.nbi")) == []                  # asking compiled nothing


@pytest.mark.parametrize("place", sorted(PLACES))
def test_one_cached_kernel_makes_the_cache_warm(tmp_path, place):
    env, cache_root = PLACES[place](tmp_path)
    _fake_index(cache_root)
    answers = _ask(**env)
    assert answers["cold"] is False and answers["notice"] is None


def test_no_notice_on_the_reference_tier(tmp_path):
    answers = _ask(NUMBA_CACHE_DIR=str(tmp_path), AECORE_TIER="ref")
    assert answers["cold"] is True and answers["notice"] is None
