"""The graph that produced a tensor, as an indented tree and as Graphviz DOT.

    loss, _ = model.loss(x)
    g = aecore.inspect.graph(loss, model=model)   # model: to name its Parameters
    print(g.text())
    open("graph.dot", "w").write(g.dot())          # render with: dot -Tsvg graph.dot > graph.svg

Nodes are tensors: the results of ops (labelled with the op that made them, its tier for kernel
ops, the shape and dtype) and the leaves (Parameters, named when a model is given; inputs;
constants). Edges run from each input of an op to its result. The walk is iterative, so graphs
of any depth work. Take the view BEFORE backward(): backward frees the graph (unless
retain_graph=True), and a freed op shows no inputs.
"""

import numpy as np

from ..tensor import Tensor


class Node:
    __slots__ = ("id", "kind", "op", "tier", "shape", "dtype", "name", "requires_grad", "released")

    def __init__(self, **fields):
        for name in self.__slots__:
            setattr(self, name, fields.get(name))

    def label(self):
        shape = "(" + ", ".join(map(str, self.shape)) + ")"
        if self.kind == "op":
            tier = f" [{self.tier}]" if self.tier else ""
            freed = " (freed by backward)" if self.released else ""
            return f"{self.op}{tier} -> {shape} {self.dtype}{freed}"
        if self.kind == "parameter":
            return f"Parameter {self.name or '?'} {shape} {self.dtype}"
        what = "input" if self.requires_grad or self.kind == "input" else "constant"
        named = f" {self.name}" if self.name else ""
        return f"{what}{named} {shape} {self.dtype}" + (" requires_grad" if self.requires_grad else "")

    def as_dict(self):
        return {name: getattr(self, name) for name in self.__slots__}


class Graph:
    """nodes: list of Node (roots first); edges: list of (source id, target id), input -> result."""

    def __init__(self, nodes, edges, roots):
        self.nodes = nodes
        self.edges = edges
        self.roots = roots
        self._by_id = {n.id: n for n in nodes}
        self._inputs = {}
        for source, target in edges:
            self._inputs.setdefault(target, []).append(source)

    def inputs_of(self, node_id):
        return list(self._inputs.get(node_id, []))

    def ops(self):
        return [n for n in self.nodes if n.kind == "op"]

    def text(self):
        """An indented tree from the root(s) down to the leaves; a node reached again is shown as
        a reference to its first appearance (#id)."""
        lines, shown = [], set()
        stack = [(root, 0) for root in reversed(self.roots)]
        while stack:
            node_id, depth = stack.pop()
            node = self._by_id[node_id]
            indent = "  " * depth
            if node_id in shown and self._inputs.get(node_id):
                lines.append(f"{indent}#{node_id} {node.op} (see above)")
                continue
            shown.add(node_id)
            lines.append(f"{indent}#{node_id} {node.label()}")
            for source in reversed(self._inputs.get(node_id, [])):
                stack.append((source, depth + 1))
        return "\n".join(lines)

    def dot(self, name="aecore"):
        """Graphviz DOT source (no Graphviz needed to produce it)."""
        styles = {"op": 'shape=box, style="rounded,filled", fillcolor="#dbe9f6"',
                  "parameter": 'shape=ellipse, style=filled, fillcolor="#fde6c8"',
                  "input": 'shape=ellipse, style=filled, fillcolor="#e2f0d9"',
                  "constant": 'shape=ellipse, style=filled, fillcolor="#eeeeee"'}
        out = [f"digraph {_quote_id(name)} {{", "  rankdir=TB;",
               '  node [fontname="Helvetica", fontsize=10];']
        for node in self.nodes:
            out.append(f"  n{node.id} [label={_quote(node.label())}, {styles[node.kind]}];")
        for source, target in self.edges:
            out.append(f"  n{source} -> n{target};")
        out.append("}")
        return "\n".join(out) + "\n"

    def __str__(self):
        return self.text()


def _quote(text):
    return '"' + str(text).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _quote_id(text):
    text = str(text)
    return text if text.isidentifier() else _quote(text)


def graph(*roots, model=None, names=None):
    """The graph behind `roots` (Tensors, or tuples/lists of them). model: a Module whose
    parameters get their names; names: an extra {name: Tensor} for other leaves (e.g. the input)."""
    tensors = []
    for root in roots:
        if isinstance(root, (tuple, list)):
            tensors.extend(r for r in root if isinstance(r, Tensor))
        elif isinstance(root, Tensor):
            tensors.append(root)
        else:
            raise TypeError(f"graph() takes Tensors, got {type(root).__name__}")
    if not tensors:
        raise ValueError("graph() needs at least one Tensor")
    labels = {}
    if model is not None:
        for name, parameter in model.named_parameters():
            labels[id(parameter)] = name
    for name, value in (names or {}).items():
        labels[id(value)] = name

    ids = {}  # id(tensor) -> node id
    nodes, edges = [], []

    def node_for(t):
        key = id(t)
        if key in ids:
            return ids[key], False
        node_id = len(nodes)
        ids[key] = node_id
        creator = t.creator
        from ..nn.module import Parameter
        if creator is not None:
            kind = "op"
        elif isinstance(t, Parameter) or id(t) in labels and t.requires_grad:
            kind = "parameter" if isinstance(t, Parameter) else "input"
        elif t.requires_grad or id(t) in labels:
            kind = "input"
        else:
            kind = "constant"
        nodes.append(Node(id=node_id, kind=kind,
                          op=creator.name if creator is not None else None,
                          tier=getattr(creator, "tier", None) if creator is not None else None,
                          shape=tuple(int(s) for s in t.shape), dtype=str(np.dtype(t.dtype)),
                          name=labels.get(id(t), t.name), requires_grad=t.requires_grad,
                          released=bool(creator is not None and creator.released)))
        return node_id, True

    stack = []
    root_ids = []
    for t in tensors:
        node_id, new = node_for(t)
        root_ids.append(node_id)
        if new:
            stack.append(t)
    while stack:  # iterative: deep graphs do not hit the recursion limit
        t = stack.pop()
        target = ids[id(t)]
        if t.creator is None:
            continue
        for parent in t.creator.inputs:
            source, new = node_for(parent)
            edges.append((source, target))
            if new:
                stack.append(parent)
    return Graph(nodes, edges, root_ids)
