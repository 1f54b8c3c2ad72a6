"""Run directories: a new run never overwrites an old one by accident, one process at a time
holds a directory (and a killed one never leaves a stale lock), and no temporary file outlives
the writer that made it."""

import os
import signal
import subprocess
import sys
import textwrap

import pytest

from aecore.cli import main
from aecore.io import checkpoint as ckpt
from aecore.io.checkpoint import load_checkpoint, save_checkpoint
from aecore.io.rundir import RunDirectory, RunDirectoryExists, RunDirectoryLocked
from aecore.train import resume, train

from conftest import TINY_AE, TINY_AE_ARGS


def _temp_files(directory):
    return sorted(name for name in os.listdir(directory) if name.startswith(".tmp-"))


def _bytes(path):
    with open(path, "rb") as f:
        return f.read()


def test_new_run_onto_an_existing_run_is_refused(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", *TINY_AE_ARGS, "--epochs", "1", "--no-pictures", "--out", str(out)]) == 0
    before = {name: _bytes(out / name) for name in ("checkpoint.npz", "checkpoint.json",
                                                    "config.json", "metrics.json")}
    capsys.readouterr()
    assert main(["train", *TINY_AE_ARGS, "--epochs", "2", "--seed", "5", "--no-pictures",
                 "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert str(out) in err and f"--resume {out}" in err and "--overwrite" in err
    assert "--out" in err
    assert {name: _bytes(out / name) for name in before} == before   # nothing touched


def test_overwrite_deletes_the_old_runs_files_first(tmp_path):
    out = tmp_path / "run"
    train(dict(TINY_AE, epochs=2), out_dir=out, quiet=True)
    assert (out / "checkpoint.prev.json").exists()
    (out / "reconstructions.png").write_bytes(b"old picture")
    (out / "notes.txt").write_text("the user's own file")
    with pytest.raises(RunDirectoryExists):
        train(dict(TINY_AE, epochs=1), out_dir=out, quiet=True)
    trainer = train(dict(TINY_AE, epochs=1, seed=9), out_dir=out, quiet=True, overwrite=True)
    assert trainer.epoch == 1
    # the old run's fallback pair and pictures are gone: nothing left belongs to another run
    assert not (out / "checkpoint.prev.json").exists()
    assert not (out / "reconstructions.png").exists()
    assert (out / "notes.txt").read_text() == "the user's own file"
    assert load_checkpoint(out, fallback=False).config["seed"] == 9


HOLDER = textwrap.dedent("""
    import sys, time
    from aecore.io.rundir import RunDirectory
    run = RunDirectory.open(sys.argv[1], mode=sys.argv[2])
    print("holding", flush=True)
    time.sleep(120)
""")


def _hold(directory, mode="new"):
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(directory), mode],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "holding", proc.stderr.read()
    return proc


def test_a_second_process_is_refused_naming_the_pid_and_kill_leaves_no_stale_lock(
        tmp_path, capsys):
    out = tmp_path / "run"
    train(dict(TINY_AE, epochs=1), out_dir=out, quiet=True)
    holder = _hold(out, mode="resume")
    try:
        with pytest.raises(RunDirectoryLocked) as info:
            RunDirectory.open(out, mode="resume")
        assert info.value.pid == holder.pid
        capsys.readouterr()
        assert main(["train", "--resume", str(out), "--epochs", "2", "--quiet"]) == 2
        err = capsys.readouterr().err
        assert str(holder.pid) in err and str(out) in err and "Traceback" not in err
        assert main(["train", *TINY_AE_ARGS, "--epochs", "1", "--overwrite",
                     "--out", str(out)]) == 2
        assert str(holder.pid) in capsys.readouterr().err
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
    # killed with -9: the OS dropped the lock, so the run continues at once
    assert main(["train", "--resume", str(out), "--epochs", "2", "--quiet"]) == 0
    assert load_checkpoint(out, fallback=False).epoch == 2


def test_two_trainings_into_one_directory_at_once(tmp_path):
    """The issue's race: two `aecore train --out SAME` started together. One trains; the other
    exits 2 (locked, or refused because the first already wrote its run), and the checkpoint
    pair on disk comes from one run."""
    out = tmp_path / "run"
    command = [sys.executable, "-m", "aecore", "train", *TINY_AE_ARGS, "--epochs", "3",
               "--no-pictures", "--out", str(out)]
    procs = [subprocess.Popen(command + ["--seed", str(seed)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for seed in (1, 2)]
    results = [(p.wait(timeout=300), p.stderr.read()) for p in procs]
    codes = sorted(code for code, _ in results)
    assert codes == [0, 2], results
    loser = next(err for code, err in results if code == 2)
    assert "in use by process" in loser or "already holds a run" in loser
    current = load_checkpoint(out, fallback=False)
    previous = ckpt._load_pair(str(out), ckpt.PREVIOUS)
    assert current.config["seed"] == previous.config["seed"]


def test_leftover_temp_files_of_a_dead_writer_are_removed_at_the_next_start(tmp_path):
    out = tmp_path / "run"
    train(dict(TINY_AE, epochs=1), out_dir=out, quiet=True)
    for name in (".tmp-checkpoint-abc123.npz", ".tmp-checkpoint-def456.json",
                 ".tmp-metrics.json-4242"):
        (out / name).write_bytes(b"")
    resume(out, overrides={"epochs": 2}, quiet=True)
    assert _temp_files(out) == []


def test_no_temp_file_after_resumes_and_when_the_pair_is_already_linked(tmp_path):
    out = tmp_path / "run"
    train(dict(TINY_AE, epochs=1), out_dir=out, quiet=True)
    for epochs in (2, 3, 3):                       # the last resume finds the run finished
        resume(out, overrides={"epochs": epochs}, quiet=True)
        assert _temp_files(out) == []
    # checkpoint.prev.* already hard links of checkpoint.*: renaming a link onto its twin is a
    # no-op that used to leave the temporary link behind
    for suffix in (".npz", ".json"):
        os.unlink(out / f"checkpoint.prev{suffix}")
        os.link(out / f"checkpoint{suffix}", out / f"checkpoint.prev{suffix}")
    arrays = load_checkpoint(out).arrays
    save_checkpoint(out, arrays, {"epoch": 3})
    assert _temp_files(out) == []


def test_a_path_that_is_a_file_is_refused(tmp_path, capsys):
    target = tmp_path / "file"
    target.write_text("x")
    assert main(["train", *TINY_AE_ARGS, "--epochs", "1", "--out", str(target)]) == 2
    assert "not a directory" in capsys.readouterr().err
