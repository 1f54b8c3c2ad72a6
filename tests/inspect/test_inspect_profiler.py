"""Profiler, cost formulas and the machine peak."""

import json
import time

import numpy as np
import pytest

import aecore
from aecore import functional as F
from aecore.inspect import costs, peak
from aecore.inspect.costs import function_geom, kernel_cost, op_cost
from aecore.kernels import op as described
from aecore.kernels import geometry, registry
from aecore.tensor import _observers
from tiers import tier_params


# ---------------------------------------------------------------------------- costs
def test_conv_formulas():
    g = geometry.conv2d_geometry((2, 3, 9, 8), (5, 3, 3, 2), stride=2, padding=1)
    macs = 2 * 5 * g.out_h * g.out_w * 3 * 3 * 2
    x, w, y = 2 * 3 * 9 * 8, 5 * 3 * 3 * 2, 2 * 5 * g.out_h * g.out_w
    for op in ("conv2d_forward", "conv2d_backward_input", "conv2d_backward_weight"):
        assert op_cost(op, g, 4) == (2 * macs, 4 * (x + w + y))
    assert kernel_cost("conv2d_backward_bias", g, [(2, 5, g.out_h, g.out_w)], 8) == (y, 8 * (y + 5))
    assert op_cost("Conv2d", g, 4, "backward") == (4 * macs, 8 * (x + w + y))
    t = geometry.conv_transpose2d_geometry((2, 4, 7, 7), (4, 6, 3, 3), stride=2, padding=1,
                                           output_padding=1)
    assert t.out_h == 14
    for op in ("conv_transpose2d_forward", "conv_transpose2d_backward_input",
               "conv_transpose2d_backward_weight"):
        assert op_cost(op, t, 4)[0] == 2 * 2 * 4 * 7 * 7 * 6 * 9


def test_pool_and_upsample_formulas():
    p = geometry.max_pool2d_geometry((2, 3, 7, 7), 2, padding="same")
    out = 2 * 3 * 4 * 4
    assert op_cost("max_pool2d_forward", p, 4) == (out * 4, 4 * (2 * 3 * 49 + out) + 8 * out)
    assert op_cost("max_pool2d_backward", p, 4)[0] == out
    u = geometry.interpolate_geometry((1, 2, 4, 4), scale_factor=2, mode="bilinear")
    assert op_cost("upsample_bilinear_forward", u, 4) == (7 * 2 * 64, 4 * (2 * 16 + 2 * 64))
    n = geometry.interpolate_geometry((1, 2, 4, 4), scale_factor=2)
    assert op_cost("upsample_nearest_forward", n, 4)[0] == 0
    assert op_cost("upsample_nearest_backward", n, 4)[0] == 2 * 64


def test_function_formulas():
    g = function_geom([(7, 5), (5, 3)], (7, 3))
    assert op_cost("MatMul", g, 4) == (2 * 7 * 5 * 3, 4 * (35 + 15 + 21))
    assert op_cost("MatMul", g, 4, "backward")[0] == 2 * (2 * 7 * 5 * 3)
    g = function_geom([(7, 5), (5, 3)], (7, 3), needs_grad=[False, True])
    assert op_cost("MatMul", g, 4, "backward")[0] == 2 * 7 * 5 * 3
    assert op_cost("ReLU", function_geom([(4, 6)], (4, 6)), 4) == (24, 4 * 48)
    assert op_cost("Reshape", function_geom([(4, 6)], (24,)), 4) == (0, 0)
    assert op_cost("Sum", function_geom([(4, 6)], ()), 4)[0] == 24
    with pytest.raises(KeyError):
        op_cost("NoSuchOp", function_geom([(1,)], (1,)), 4)
    for op in registry.ops():          # every registered kernel op has a formula
        assert op in costs.known_ops() and callable(described.op(op).cost)


# ---------------------------------------------------------------------------- profiler
def conv_step(tier=None):
    x = aecore.rand(2, 3, 9, 8)
    w = aecore.nn.Parameter(aecore.randn(5, 3, 3, 3).data)
    b = aecore.nn.Parameter(np.zeros(5, np.float32))
    x.requires_grad_()
    with aecore.profile(peak=False) as prof:
        with aecore.use_tier(tier):
            y = F.conv2d(x, w, b, stride=1, padding=1)
            loss = F.max_pool2d(y.relu(), 2).sum()
            loss.backward()
    return prof


def test_profiler_records_kernels_with_formula_flops_and_tiers():
    prof = conv_step("ref")
    g = geometry.conv2d_geometry((2, 3, 9, 8), (5, 3, 3, 3), 1, 1)
    by_op = {}
    for event in prof.events:
        by_op.setdefault(event.op, []).append(event)
    for op in ("conv2d_forward", "conv2d_backward_input", "conv2d_backward_weight"):
        (event,) = by_op[op]
        assert event.kind == "kernel" and event.tier == "ref"
        assert event.flops == 2 * 2 * 5 * 9 * 8 * 3 * 9 == op_cost(op, g, 4)[0]
        assert event.seconds > 0
    (bias,) = by_op["conv2d_backward_bias"]
    assert bias.kind == "kernel" and bias.flops == 2 * 5 * 9 * 8 == \
        kernel_cost("conv2d_backward_bias", g, [(2, 5, 9, 8)], 4)[0]
    (pool,) = by_op["max_pool2d_forward"]
    assert pool.flops == 2 * 5 * 4 * 4 * 4 and pool.tier == "ref"
    (relu,) = by_op["relu_forward"]
    assert relu.flops == 2 * 5 * 9 * 8 and relu.bytes == 4 * 2 * (2 * 5 * 9 * 8) and relu.tier == "ref"
    assert by_op["relu_backward"][0].bytes == 4 * 3 * (2 * 5 * 9 * 8)
    assert by_op["ReLU.forward"][0].kind == "glue"
    # every op once: forward conv, relu, pool, sum; backward sum, pool, relu, conv (x, w, bias)
    kernels = [e.op for e in prof.events if e.kind == "kernel"]
    assert sorted(kernels) == sorted(["conv2d_forward", "relu_forward", "max_pool2d_forward",
                                      "max_pool2d_backward", "relu_backward", "conv2d_backward_input",
                                      "conv2d_backward_weight", "conv2d_backward_bias"])
    assert prof not in _observers and prof not in registry._observers


class SlowObserver:
    """A graph observer notified before the profiler that takes 20 ms: the profiler hears of
    each op well after it ended, as it can on a loaded machine."""

    def on_forward(self, *args):
        time.sleep(0.02)

    def on_backward(self, *args):
        time.sleep(0.02)


def test_kernels_belong_to_their_op_when_the_profiler_hears_late():
    x = aecore.tensor(np.linspace(-1, 1, 64, dtype=np.float32).reshape(8, 8), requires_grad=True)
    slow = SlowObserver()
    _observers.append(slow)
    try:
        with aecore.profile(peak=False) as prof:
            F.relu(x).sum().backward()
    finally:
        _observers.remove(slow)
    by_op = {e.op: e for e in prof.events}
    # the relu kernels are the ReLU's: its graph events are glue, and its FLOPs count once
    assert by_op["ReLU.forward"].kind == by_op["ReLU.backward"].kind == "glue"
    assert by_op["relu_forward"].flops == by_op["relu_backward"].flops == 64
    assert prof.total_flops == 64 + 64 + by_op["Sum"].flops + by_op["Sum.backward"].flops


@pytest.mark.parametrize("tier", tier_params("conv2d_forward", "max_pool2d_forward", "relu_forward",
                                             cpu_only=True))
def test_profiler_tier_follows_dispatch(tier):
    prof = conv_step(tier)
    assert {e.tier for e in prof.events if e.kind == "kernel"} == {tier}


def test_table_and_json():
    prof = conv_step()
    rows = prof.rows()
    assert [r["seconds"] for r in rows] == sorted((r["seconds"] for r in rows), reverse=True)
    assert sum(r["calls"] for r in rows) == len(prof.events)
    assert sum(r["seconds"] for r in rows) == pytest.approx(prof.total_seconds)
    text = prof.table()
    assert "conv2d_backward_weight" in text and "GFLOP/s" in text and "2x3x9x8" in text
    doc = json.loads(prof.to_json(events=True))
    assert doc["total_flops"] == prof.total_flops > 0
    assert len(doc["events"]) == len(prof.events)
    assert len(prof.rows(group_by="op")) <= len(rows)


def test_share_of_peak_uses_the_roofline(monkeypatch):
    fake = {"gflops": 100.0, "gflops_f64": 50.0, "gbps": 10.0}
    monkeypatch.setattr("aecore.inspect.profiler.machine_peak", lambda device="cpu": fake)
    x = aecore.rand(64, 64)
    w = aecore.nn.Parameter(aecore.rand(64, 64).data)
    with aecore.profile() as prof:
        (x @ w).sum().backward()
    row = next(r for r in prof.rows() if r["op"] == "MatMul")
    roof = min(100.0, row["flops"] / row["bytes"] * 10.0)
    assert row["share_of_peak"] == pytest.approx(row["gflops_per_s"] / roof)
    assert json.loads(prof.to_json())["peak"] == fake


# ---------------------------------------------------------------------------- peak
def test_machine_peak_measures_once_and_caches(tmp_path, monkeypatch):
    monkeypatch.setenv("AECORE_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(peak, "_memory_cache", {})
    first = peak.machine_peak("cpu")
    assert first["gflops"] > 0 and first["gflops_f64"] > 0 and first["gbps"] > 0
    assert first["machine"]["cores"] >= 1 and first["machine"]["numpy"] == np.__version__
    assert (tmp_path / "peak.json").is_file()

    def fail(device="cpu"):
        raise AssertionError("measured again instead of using the cache")

    monkeypatch.setattr(peak, "measure", fail)
    assert peak.machine_peak("cpu") == first            # from memory
    monkeypatch.setattr(peak, "_memory_cache", {})
    assert peak.machine_peak("cpu") == first            # from the JSON file
