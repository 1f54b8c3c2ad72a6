"""Graph view: the DOT output parses as a graph with the expected nodes and edges."""

import re

import numpy as np
import pytest

import aecore
from aecore.inspect import graph

NODE = re.compile(r'^\s*(n\d+)\s*\[label="((?:[^"\\]|\\.)*)"(.*)\];\s*$')
EDGE = re.compile(r"^\s*(n\d+)\s*->\s*(n\d+)\s*;\s*$")


def parse_dot(text):
    """A tiny DOT parser for what Graph.dot() writes: (nodes {id: label}, edges [(a, b)])."""
    lines = text.strip().splitlines()
    assert re.match(r"^digraph\s+\w+\s*\{$", lines[0]), lines[0]
    assert lines[-1].strip() == "}"
    nodes, edges = {}, []
    for line in lines[1:-1]:
        if m := NODE.match(line):
            assert m.group(1) not in nodes, f"node {m.group(1)} declared twice"
            nodes[m.group(1)] = m.group(2)
        elif m := EDGE.match(line):
            edges.append((m.group(1), m.group(2)))
        else:
            assert re.match(r"^\s*(rankdir=\w+|node \[.*\]);\s*$", line), f"unexpected line {line!r}"
    for a, b in edges:
        assert a in nodes and b in nodes, f"edge {a} -> {b} names an undeclared node"
    return nodes, edges


def test_dense_graph_by_hand():
    x = aecore.tensor(np.ones((4, 3), np.float32))
    w = aecore.nn.Parameter(np.ones((3, 2), np.float32))
    b = aecore.nn.Parameter(np.zeros(2, np.float32))
    loss = ((x @ w + b).relu()).sum()
    g = graph(loss, names={"w": w, "b": b, "x": x})
    # tensors: x, w, b (leaves), matmul, add, relu, sum (results) = 7; edges 2 + 2 + 1 + 1 = 6
    nodes, edges = parse_dot(g.dot())
    assert len(nodes) == len(g.nodes) == 7
    assert len(edges) == len(g.edges) == 6
    assert sorted(n.op for n in g.ops()) == ["Add", "MatMul", "ReLU", "Sum"]
    text = g.text()
    assert text.splitlines()[0].startswith("#0 Sum -> () float32")
    assert "Parameter w (3, 2) float32" in text and "input x (4, 3)" in text
    # indentation grows with depth: Sum > ReLU > Add > MatMul > x
    depth = {line.strip().split()[1]: len(line) - len(line.lstrip()) for line in text.splitlines()}
    assert depth["Sum"] < depth["ReLU"] < depth["Add"] < depth["MatMul"]


def test_cae_loss_graph_counts_and_tiers():
    models = pytest.importorskip("aecore.models")
    model = models.build_model("cae")
    x = aecore.rand(2, 1, 28, 28)
    loss, _ = model.loss(x)
    g = graph(loss, model=model, names={"input": x})
    nodes, edges = parse_dot(g.dot())
    # ops: 7 convs, 6 ReLUs, 3 pools, the BCE-with-logits and its mean in one op, and the
    # decoder's 3 resizes: 4 -> 7 an Upsample, 7 -> 14 and 14 -> 28 folded into their convs
    # (each a FoldNearest of the weight, the conv a ConvTranspose2d) = 20;
    # leaves: 14 parameters and the input (also the target) = 15
    n_params = len(list(model.parameters()))
    assert n_params == 14
    assert len(g.ops()) == 20
    assert len(nodes) == len(g.nodes) == 20 + 14 + 1
    # every conv has 3 inputs (x, w, b), the BCE 2, everything else 1
    assert len(edges) == len(g.edges) == 7 * 3 + 6 + 3 + 1 + 2 + 2
    assert sorted(n.op for n in g.ops() if n.op in ("ConvTranspose2d", "FoldNearest", "Upsample")) \
        == ["ConvTranspose2d"] * 2 + ["FoldNearest"] * 2 + ["Upsample"]
    kernel_ops = [n for n in g.ops() if n.op in ("Conv2d", "ConvTranspose2d", "MaxPool2d", "Upsample")]
    assert len(kernel_ops) == 11 and all(n.tier in ("ref", "numba", "cuda") for n in kernel_ops)
    labels = list(nodes.values())
    assert sum("Parameter encoder.conv0.weight (32, 1, 3, 3) float32" == label for label in labels) == 1
    assert any(re.match(r"Conv2d \[(ref|numba|cuda)\] -> \(2, 32, 28, 28\) float32", label)
               for label in labels)
    with aecore.use_tier("ref"):
        loss_ref, _ = model.loss(x)
    assert {n.tier for n in graph(loss_ref).ops() if n.tier} == {"ref"}


def test_deep_graph_is_walked_without_recursion():
    x = aecore.tensor(np.ones(3, np.float32), requires_grad=True)
    y = x
    for _ in range(3000):  # deeper than Python's recursion limit allows a recursive walk
        y = y * 1.0
    g = graph(y)
    assert len(g.ops()) == 3000
    assert len(g.nodes) == 3000 + 1 + 3000      # every `* 1.0` brings a constant leaf
    assert len(g.text().splitlines()) == len(g.nodes)


def test_shared_nodes_and_released_graph():
    a = aecore.tensor(np.ones(2, np.float32), requires_grad=True)
    b = a * 2.0
    c = b + b                                     # b used twice: one node, two edges
    g = graph(c)
    assert len(g.nodes) == 4 and len(g.edges) == 4
    assert "(see above)" in g.text()
    c.sum().backward()
    assert "freed by backward" in graph(c).text()


def test_graph_rejects_non_tensors():
    with pytest.raises(TypeError):
        graph(np.ones(3))
