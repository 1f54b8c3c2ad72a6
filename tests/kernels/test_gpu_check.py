"""bench/gpu_check.sh --dry-run: the GPU check's every stage on tiny shapes under the CUDA
simulator (its first runs on a GPU machine must not be its debugging). Runs in the simulator
process only (about a minute and a half)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tiers import SIMULATOR

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(not SIMULATOR, reason="the dry run is checked in the simulator "
                                "process (tests/run.sh's second pytest run)")


def test_gpu_check_dry_run_writes_every_stage(tmp_path):
    out = tmp_path / "gpu.json"
    env = dict(os.environ, GPU_CHECK_OUT=str(out), PYTHON=sys.executable)
    done = subprocess.run(["bash", str(ROOT / "bench" / "gpu_check.sh"), "--dry-run"], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["dry_run"] is True
    assert {name: stage["exit"] for name, stage in report["stages"].items()} == \
        {"kernel-tests": 0, "steps": 0, "conv": 0}
    assert report["steps"]["steps_ok"] and len(report["steps"]["steps"]) == 3
    conv = report["conv"]["large_conv"]
    assert set(conv["versions"]) >= {"tiled", "naive", "reference"}
    assert all(conv["tiled_backward_bit_identical"].values())
    assert "machine" in report
