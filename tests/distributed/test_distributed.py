"""Data-parallel training (aecore.distributed) under `mpiexec -n 2` on this machine.

The claims: 2 ranks of batch b train the same weights as 1 process of batch 2b (float64 to
1e-12, float32 to 1e-5), through the Trainer and through `aecore train`, including a last batch
too short for every rank to get a part; a checkpoint resumes with another rank count; the
bucketed allreduce is a plain sum; the ranks' shards are disjoint and complete; a rank that
hangs, raises or is killed ends the job within the time limit; ranks started differently, a data
set smaller than the rank count and mpiexec without mpi4py each get one line.

Each mpiexec run starts fresh Python processes (about 2-3 s each here). Skipped without mpi4py
and mpiexec (pip install "aecore[mpi]").
"""

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from aecore import distributed
from aecore import random as ae_random
from aecore.data import DataLoader
from aecore.distributed import ShardedLoader, launch, shard_bounds
from aecore.distributed.world import SingleProcess, _differences

WORKER = str(Path(__file__).with_name("worker.py"))
MPIEXEC = shutil.which("mpiexec")
needs_mpi = pytest.mark.skipif(
    MPIEXEC is None or __import__("importlib").util.find_spec("mpi4py") is None,
    reason="needs mpi4py and mpiexec (pip install 'aecore[mpi]')")


def run(command, ranks=None, timeout=180, env=None, cwd=None):
    """Run `command` (a list), under `mpiexec -n ranks` when ranks is given."""
    full = ([MPIEXEC, "-n", str(ranks)] if ranks else []) + command
    environment = dict(os.environ, **(env or {}))
    for variable in launch.THREAD_VARIABLES:      # as a user's shell: the ranks choose
        environment.pop(variable, None)
    return subprocess.run(full, capture_output=True, text=True, timeout=timeout,
                          env=environment, cwd=cwd)


def checked(result):
    assert result.returncode == 0, result.stdout + result.stderr
    return result


# ---------------------------------------------------------------------------- no MPI needed
@pytest.mark.parametrize("total", [0, 1, 5, 12, 37])
@pytest.mark.parametrize("size", [1, 2, 3, 4])
def test_shard_bounds_deal_a_batch_into_contiguous_disjoint_parts(total, size):
    parts = [shard_bounds(total, rank, size) for rank in range(size)]
    assert parts[0][0] == 0 and parts[-1][1] == total
    assert all(a[1] == b[0] for a, b in zip(parts, parts[1:]))
    lengths = [stop - start for start, stop in parts]
    assert max(lengths) - min(lengths) <= 1 and lengths == sorted(lengths, reverse=True)
    assert lengths == [len(p) for p in np.array_split(np.arange(total), size)]


def test_sharded_loader_of_one_rank_is_the_data_loader():
    images = np.arange(23)[:, None]
    loader = DataLoader(images, batch_size=8, seed=4)
    plain = [xb[:, 0].tolist() for xb, _ in loader]
    sharded = ShardedLoader(images, batch_size=8, seed=4)
    assert [xb[:, 0].tolist() for xb, _ in sharded] == plain
    assert sharded.last_shard == (0, 7, 7)
    assert sharded.state_dict() == loader.state_dict()      # a checkpoint cannot tell them apart


def test_a_batch_shard_draws_its_rows_of_the_whole_batchs_noise():
    ae_random.manual_seed(9)
    whole = ae_random.randn((7, 3))
    again = ae_random.rand(5)
    parts, rests = [], []
    for start, stop in ((0, 4), (4, 7)):
        ae_random.manual_seed(9)
        with ae_random.batch_shard(start, stop, 7):
            parts.append(ae_random.randn((stop - start, 3)))
            rests.append(ae_random.rand(5))           # another length: drawn as it is
    np.testing.assert_array_equal(np.concatenate(parts), whole)
    np.testing.assert_array_equal(rests[0], again)
    np.testing.assert_array_equal(rests[1], again)
    with pytest.raises(ValueError, match="batch_shard"):
        with ae_random.batch_shard(3, 2, 7):
            pass


def test_one_process_is_a_world_of_one_that_changes_nothing():
    world = distributed.current()
    assert isinstance(world, SingleProcess) and world.size == 1 and world.is_root
    array = np.ones(3)
    assert world.allreduce_sum(array) is array
    assert world.on_root(lambda: 5) == 5
    assert world.broadcast_object("x") == "x"


def test_each_rank_gets_its_share_of_the_cores_unless_the_user_chose(monkeypatch):
    for variable in launch.THREAD_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setattr(launch, "cores", lambda: 8)
    monkeypatch.setenv("PMI_SIZE", "4")
    monkeypatch.setenv("MPI_LOCALNRANKS", "4")
    assert launch.set_rank_threads() == 2
    assert os.environ["OPENBLAS_NUM_THREADS"] == "2" and os.environ["NUMBA_NUM_THREADS"] == "2"
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    monkeypatch.delenv("NUMBA_NUM_THREADS")
    assert launch.set_rank_threads() is None                  # the user's choice stands
    monkeypatch.delenv("OMP_NUM_THREADS")
    monkeypatch.setenv("MPI_LOCALNRANKS", "1")                  # one rank per machine: all
    assert launch.set_rank_threads() is None


def test_ranks_that_disagree_are_told_what_differs():
    text = _differences([{"lr": 0.001, "seed": 0}, {"lr": 0.01, "seed": 0}])
    assert text == "lr (rank 0: 0.001, rank 1: 0.01)"


def test_mpiexec_without_mpi4py_is_one_line_from_rank_0(monkeypatch, capsys, tmp_path):
    from aecore.cli import main
    monkeypatch.setitem(sys.modules, "mpi4py", None)
    monkeypatch.setattr(distributed, "_world", None)
    monkeypatch.setenv("PMI_SIZE", "2")
    for rank, printed in (("0", True), ("1", False)):
        monkeypatch.setenv("PMI_RANK", rank)
        assert main(["train", "--epochs", "1", "--out", str(tmp_path / "run")]) == 2
        err = capsys.readouterr().err
        assert ("mpi4py is not installed: pip install 'aecore[mpi]'" in err) is printed
        assert err.count("\n") == int(printed)
    assert not (tmp_path / "run").exists()


# ---------------------------------------------------------------------------- mpiexec -n 2
@needs_mpi
@pytest.mark.parametrize("kind, dtype, batch, tolerance", [
    ("ae", "float64", 6, 1e-12),      # global batch 12: each epoch ends with 1 image for 2 ranks
    ("dae", "float64", 8, 1e-12),     # noise drawn for the whole batch, each rank its rows
    ("vae", "float64", 6, 1e-12),     # the reparameterization's noise likewise
    ("cae", "float32", 8, 1e-5),      # the numba conv kernels
])
def test_two_ranks_train_the_weights_of_one_process_with_twice_the_batch(
        tmp_path, kind, dtype, batch, tolerance):
    one, two = tmp_path / "one.npz", tmp_path / "two.npz"
    checked(run([sys.executable, WORKER, "train", str(one), kind, dtype, str(2 * batch), "2"]))
    checked(run([sys.executable, WORKER, "train", str(two), kind, dtype, str(batch), "2"], 2))
    a, b = np.load(one), np.load(two)
    assert set(a.files) == set(b.files)
    for name in a.files:
        scale = max(1.0, float(np.abs(a[name]).max()))
        assert np.abs(a[name] - b[name]).max() <= tolerance * scale, name
    assert a["train_loss"][1] != a["train_loss"][0]          # it trained


@needs_mpi
def test_a_loop_of_ones_own_with_the_multi_node_optimizer_trains_as_one_process(tmp_path):
    one, two = tmp_path / "one.npz", tmp_path / "two.npz"
    checked(run([sys.executable, WORKER, "loop", str(one)]))
    checked(run([sys.executable, WORKER, "loop", str(two)], 2))
    a, b = np.load(one), np.load(two)
    for name in a.files:
        np.testing.assert_allclose(b[name], a[name], rtol=0, atol=1e-12)


@needs_mpi
def test_the_bucketed_allreduce_is_the_plain_sum(tmp_path):
    out = tmp_path / "allreduce.json"
    checked(run([sys.executable, WORKER, "allreduce", str(out)], 2))
    report = json.loads(out.read_text())
    assert set(report) == {"16", "4096", str(1 << 22)}            # one array a bucket .. all
    for errors in report.values():
        assert max(errors[:4]) < 1e-6                               # float32 rounding only
        assert errors[4:] == ["float32", "float32", "float64", "float32"]


@needs_mpi
def test_the_ranks_shards_are_disjoint_complete_and_one_process_order(tmp_path):
    out = tmp_path / "sampler.json"
    checked(run([sys.executable, WORKER, "sampler", str(out)], 2))
    ranks = json.loads(out.read_text())                # [rank][epoch][batch] -> indices
    loader = DataLoader(np.arange(23)[:, None], batch_size=8, shuffle=True, seed=4)
    for epoch in range(2):
        expected = [xb[:, 0].tolist() for xb, _ in loader]
        joined = [ranks[0][epoch][k] + ranks[1][epoch][k] for k in range(len(expected))]
        assert joined == expected
        assert sorted(sum(joined, [])) == list(range(23))


@needs_mpi
@pytest.mark.parametrize("how, says", [
    ("hang", "no answer from the other ranks for 5 s in the loss allreduce of epoch 2, "
             "batch 1"),                                  # our time limit, naming the step
    ("raise", "rank 1 fails on purpose"),                 # the excepthook's MPI_Abort
    ("die", "Killed"),                                    # mpiexec sees the kill
])
def test_a_rank_that_stops_ends_the_whole_job_in_time(tmp_path, how, says):
    start = time.monotonic()
    result = run([sys.executable, WORKER, how, str(tmp_path / "x")], 2, timeout=120,
                 env={"AECORE_DIST_TIMEOUT": "5"})
    assert result.returncode != 0
    assert says in result.stdout + result.stderr
    assert time.monotonic() - start < 60


@needs_mpi
def test_mpiexec_aecore_train_is_one_process_with_the_global_batch_and_resumes_with_any_ranks(
        tmp_path):
    from aecore.io.checkpoint import load_checkpoint
    flags = ["--model", "ae", "--limit", "301", "--no-pictures", "--hidden", "32",
             "--latent-dim", "8", "--quiet"]
    cli = [sys.executable, "-m", "aecore", "train"] + flags
    checked(run(cli + ["--epochs", "2", "--batch-size", "32", "--out", "one"], cwd=tmp_path))
    two = checked(run(cli[:-1] + ["--epochs", "2", "--batch-size", "16", "--out", "two"], 2,
                      cwd=tmp_path))
    assert two.stdout.count("run directory: two") == 1                 # rank 0 reports
    assert two.stderr.count("data-parallel: 2 ranks, 1 thread each; batch 16 per rank, "
                            "global batch 32") == 1
    # half the run on 2 ranks, the rest in one process; and the other way round on 4 ranks
    checked(run(cli + ["--epochs", "1", "--batch-size", "16", "--out", "half"], 2, cwd=tmp_path))
    checked(run([sys.executable, "-m", "aecore", "train", "--resume", "half", "--epochs", "2",
                 "--quiet"], cwd=tmp_path))
    checked(run(cli + ["--epochs", "1", "--batch-size", "32", "--out", "quarter"], cwd=tmp_path))
    checked(run([sys.executable, "-m", "aecore", "train", "--resume", "quarter", "--epochs", "2",
                 "--quiet"], 4, cwd=tmp_path))
    reference = load_checkpoint(tmp_path / "one").arrays["model"]
    for run_dir, batch, ranks in (("two", 16, 2), ("half", 32, 1), ("quarter", 8, 4)):
        checkpoint = load_checkpoint(tmp_path / run_dir)
        assert checkpoint.epoch == 2
        assert (checkpoint.config["batch_size"], checkpoint.config["ranks"]) == (batch, ranks)
        for name, value in reference.items():
            np.testing.assert_allclose(checkpoint.arrays["model"][name], value, atol=1e-5)
    # 3 ranks cannot share a global batch of 32: one line, exit 2, the run untouched
    before = (tmp_path / "quarter" / "checkpoint.json").read_bytes()
    refused = run([sys.executable, "-m", "aecore", "train", "--resume", "quarter", "--epochs",
                   "3"], 3, cwd=tmp_path)
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines() == [
        "aecore train: error: the run's global batch is 32 (its batch_size x ranks), which 3 "
        "ranks cannot share equally: resume with a number of ranks that divides it"]
    assert (tmp_path / "quarter" / "checkpoint.json").read_bytes() == before


@needs_mpi
def test_ranks_started_with_different_settings_or_too_little_data_are_refused(tmp_path):
    flags = ["-m", "aecore", "train", "--model", "ae", "--limit", "301", "--epochs", "1",
             "--no-pictures", "--out", "run"]
    first = [sys.executable] + flags + ["--lr", "0.001"]
    second = [sys.executable] + flags + ["--lr", "0.01"]
    different = subprocess.run([MPIEXEC, "-n", "1"] + first + [":", "-n", "1"] + second,
                               capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert different.returncode == 2
    assert different.stderr.strip().splitlines() == [
        "aecore train: error: the 2 ranks were started with different settings or data: lr "
        "(rank 0: 0.001, rank 1: 0.01); start every rank with the same command and data"]
    assert not (tmp_path / "run" / "checkpoint.json").exists()
    tiny = run([sys.executable, "-m", "aecore", "train", "--model", "ae", "--limit", "1",
                "--val-fraction", "0", "--epochs", "1", "--out", "tiny"], 2, cwd=tmp_path)
    assert tiny.returncode == 2
    assert tiny.stderr.strip().splitlines()[-1] == (
        "aecore train: error: the training set has 1 images, fewer than the 2 ranks: each rank "
        "needs one at least")
