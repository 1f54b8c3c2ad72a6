"""Fault injection on the whole save path: a training process is killed (SIGKILL) at each step
of a save -- before a temporary file is written, after it is written, after its fsync, before
and after each link and rename -- then resumed. Every time, the resumed run ends with weights,
optimizer state and losses bit-identical to a run never interrupted, and no stray file is left.

The steps are found by a first run that only counts them (the points of epoch 2's save and
metrics), so the test follows the save path as it is, not a list written by hand."""

import fnmatch
import functools
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import textwrap

import pytest

from aecore.io.checkpoint import checkpoint_exists
from aecore.io.rundir import LOCK_NAME, RUN_FILES
from aecore.train import resume, train

from conftest import TINY_AE
from test_resume import _assert_same_run

CHILD = textwrap.dedent("""
    import json, os, signal, sys
    import aecore.io.atomic as atomic
    from aecore.train import train

    config, out, kill_at = json.loads(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    points, armed = [], [False]

    def point(name):
        if not armed[0]:
            return
        points.append(name)
        if len(points) == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)

    def around(function, label):
        def wrapped(*args, **kwargs):
            target = os.path.basename(str(args[-1])) if args else ""
            point(f"before {label} {target}")
            result = function(*args, **kwargs)
            point(f"after {label} {target}")
            return result
        return wrapped

    real_write = atomic._write_temp_file
    def write(directory, data, suffix, prefix):
        point(f"before writing a temporary {suffix}")
        return real_write(directory, data, suffix, prefix)
    atomic._write_temp_file = write
    os.fsync = around(os.fsync, "fsync")
    os.replace = around(os.replace, "rename onto")
    os.link = around(os.link, "link")

    def callback(trainer, record):
        armed[0] = record["epoch"] == 1        # count the points of epoch 2's save only
        if record["epoch"] == 2 and kill_at == 0:
            print(json.dumps(points))

    train(config, out_dir=out, quiet=True, callbacks=[callback])
""")

CONFIG = dict(TINY_AE, epochs=3)


def _child(out, kill_at):
    return subprocess.run([sys.executable, "-c", CHILD, json.dumps(CONFIG), str(out),
                           str(kill_at)], capture_output=True, text=True, timeout=300)


@functools.lru_cache(maxsize=None)
def _kill_points():
    """(index, name) of every point of epoch 2's save, counted by a run that kills nothing."""
    with tempfile.TemporaryDirectory() as scratch:
        proc = _child(os.path.join(scratch, "count"), 0)
    assert proc.returncode == 0, proc.stderr
    names = json.loads(proc.stdout.strip().splitlines()[-1])
    return tuple(enumerate(names, start=1))


def _stray_files(directory):
    allowed = set(RUN_FILES) | {LOCK_NAME}
    return sorted(n for n in os.listdir(directory)
                  if not any(fnmatch.fnmatch(n, pattern) for pattern in allowed))


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("faults") / "reference"
    train(CONFIG, out_dir=out, quiet=True)
    return out


def test_the_save_path_has_the_points_the_issue_names():
    kinds = {name.split(" ")[0] + " " + name.split(" ")[1] for _, name in _kill_points()}
    assert {"before writing", "before fsync", "after fsync", "before rename",
            "after rename", "before link", "after link"} <= kinds


def _check_resumed(out, reference, what):
    """Resume the killed run; [] when it ends like the reference with no stray file."""
    resume(out, quiet=True)
    problems = []
    try:
        _assert_same_run(out, reference)
    except AssertionError as e:
        problems.append(f"killed {what}: {e}")
    stray = _stray_files(out)
    if stray:
        problems.append(f"killed {what}: stray files {stray}")
    return problems


def test_a_kill_at_every_step_of_a_save_resumes_bit_identically(tmp_path, reference):
    failures = []
    for index, name in _kill_points():
        out = tmp_path / f"kill-{index}"
        proc = _child(out, index)
        if proc.returncode != -signal.SIGKILL:
            failures.append(f"{name}: the child was not killed ({proc.returncode}) {proc.stderr}")
            continue
        failures += _check_resumed(out, reference, f"{name} (point {index})")
    assert not failures, "\n".join(failures)


def test_kills_at_random_instants_resume_bit_identically(tmp_path, reference):
    """Killed from outside after a random delay: mid-step, mid-write, or not at all."""
    failures = []
    delays = random.Random(20261201)
    for trial in range(3):
        out = tmp_path / f"random-{trial}"
        proc = subprocess.Popen([sys.executable, "-c", CHILD, json.dumps(CONFIG), str(out), "-1"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            proc.wait(timeout=delays.uniform(0.8, 2.0))
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=60)
        if not checkpoint_exists(out):
            continue                    # killed before its first checkpoint: nothing to resume
        failures += _check_resumed(out, reference, f"at random (trial {trial})")
    assert not failures, "\n".join(failures)
