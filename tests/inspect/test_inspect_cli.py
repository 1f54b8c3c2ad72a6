"""`aecore inspect ...` commands (through aecore.inspect.cli, and aecore.cli when present)."""

import argparse
import re

import pytest

from aecore.inspect import cli


def run(argv, capsys):
    status = cli.main(argv)
    return status, capsys.readouterr()


def test_inspect_graph_writes_dot(tmp_path, capsys):
    pytest.importorskip("aecore.models")
    out = tmp_path / "graph.dot"
    status, captured = run(["inspect", "graph", "--model", "cae", "--out", str(out)], capsys)
    assert status == 0
    text = out.read_text()
    assert text.startswith("digraph") and text.rstrip().endswith("}")
    nodes = re.findall(r"^\s*n\d+ \[label=", text, flags=re.M)
    edges = re.findall(r"^\s*n\d+ -> n\d+;", text, flags=re.M)
    assert len(nodes) == 35 and len(edges) == 35       # test_inspect_graph.py counts them
    assert "35 nodes (20 ops), 35 edges" in captured.out


def test_inspect_summary_and_stats(capsys):
    pytest.importorskip("aecore.models")
    status, captured = run(["inspect", "summary", "--model", "ae"], capsys)
    assert status == 0 and "total params" in captured.out
    status, captured = run(["inspect", "stats", "--model", "ae", "--batch-size", "8"], capsys)
    assert status == 0 and "grad norm" in captured.out and "encoder.0" in captured.out


def test_bad_arguments(capsys):
    status, captured = run(["inspect", "summary", "somewhere", "--model", "ae"], capsys)
    assert status == 2 and "not both" in captured.err


def test_subcommands_plug_into_any_parser():
    parser = argparse.ArgumentParser()
    cli.add_subcommands(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["bench", "kernels", "--ops", "conv2d", "--tiers", "ref", "--no-torch"])
    assert args.ops == ["conv2d"] and args.tiers == ["ref"] and args.torch is False
    assert cli._given(args, ("ops", "tiers", "torch", "shapes")) == {
        "ops": ["conv2d"], "tiers": ["ref"], "torch": False}
    assert callable(args.handler)


def test_profile_one_epoch_and_train_profile(capsys, tmp_path, monkeypatch):
    pytest.importorskip("aecore.train")
    monkeypatch.setenv("AECORE_CACHE_DIR", str(tmp_path))   # the peak measured here, not cached
    from aecore.inspect import profile_one_epoch
    prof = profile_one_epoch({"model": "ae", "data": "synthetic", "limit": 96, "batch_size": 32},
                             max_batches=2)
    steps = [e for e in prof.events if e.op == "Linear" and e.pass_ == "forward"]
    assert len(steps) == 2 * 6                     # 2 batches x 6 dense layers, nothing else
    main = pytest.importorskip("aecore.cli").main
    status = main(["train", "--profile", "--model", "ae", "--limit", "64", "--batch-size", "32",
                   "--quiet"])
    captured = capsys.readouterr()
    assert status == 0 and "Linear" in captured.out and "% peak" in captured.out
