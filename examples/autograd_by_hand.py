"""Autograd by hand: the chain rule written out for a tiny graph, next to the engine's backward().

    python examples/autograd_by_hand.py

The graph (one dense layer, a sigmoid, a squared error), with B = 3 examples, 4 inputs, 2 outputs:

    x (3, 4) --\
                MatMul -> xw (3, 2) --\
    W (4, 2) --/                       Add -> z (3, 2) -> Sigmoid -> y (3, 2) --\
                          b (2,) -----/                                          Sub -> d -> Mul(d, d) -> Mean -> loss
                                                                      t (3, 2) --/

Backward walks the same graph from the loss to the leaves. Each step multiplies the gradient that
arrives from above by the local derivative of one op (the chain rule):

    loss = mean(d * d) = sum(d^2) / M        M = 3 * 2 = 6 elements
    dloss/dd = 2 d / M
    dloss/dy = dloss/dd                      (d = y - t; t is a constant)
    dloss/dz = dloss/dy * y * (1 - y)        (sigmoid'(z) = y (1 - y))
    dloss/db = sum over the batch of dloss/dz   (b was broadcast over the batch: its gradient sums)
    dloss/dW = x^T @ dloss/dz                (3 rows of x, each an outer product with its gradient)
    dloss/dx = dloss/dz @ W^T

Everything is float64, so the two columns agree to ~1e-16: the engine does exactly this.
A third witness closes the example: nudge one weight by +-1e-6 and watch the loss (central
differences), no calculus needed.
"""

import argparse

import numpy as np

import aecore as ae


def by_hand(x, W, b, t):
    """Forward and backward with plain NumPy, one line per op of the graph."""
    # forward: keep every intermediate value, backward needs them
    xw = x @ W
    z = xw + b                     # b (2,) broadcasts over the 3 rows
    y = 1.0 / (1.0 + np.exp(-z))
    d = y - t
    M = d.size
    loss = (d * d).sum() / M

    # backward: the chain rule, from the loss down to the leaves
    g_d = 2.0 * d / M              # d(sum(d^2)/M)/dd
    g_y = g_d                      # d = y - t
    g_z = g_y * y * (1.0 - y)      # sigmoid
    g_b = g_z.sum(axis=0)          # undo the broadcast: sum over the batch
    g_xw = g_z                     # z = xw + b
    g_W = x.T @ g_xw               # xw = x @ W
    g_x = g_xw @ W.T
    return loss, {"z": g_z, "y": g_y, "W": g_W, "b": g_b, "x": g_x}


def by_engine(x, W, b, t):
    """The same graph with aecore tensors; backward() does the chain rule."""
    x_t = ae.tensor(x, requires_grad=True)
    W_t = ae.tensor(W, requires_grad=True)
    b_t = ae.tensor(b, requires_grad=True)
    z = (x_t @ W_t + b_t).retain_grad()     # keep .grad on intermediate tensors too
    y = z.sigmoid().retain_grad()
    d = y - ae.tensor(t)
    loss = (d * d).mean()
    loss.backward()
    grads = {"z": z.grad, "y": y.grad, "W": W_t.grad, "b": b_t.grad, "x": x_t.grad}
    return loss, grads


def describe_graph(loss):
    """The ops that made `loss`, from the loss back to the leaves (what backward() walks)."""
    lines, frontier, seen = [], [(loss, 0)], set()
    while frontier:
        tensor, depth = frontier.pop()
        function = tensor.creator
        if function is None or id(function) in seen:
            continue
        seen.add(id(function))
        inputs = ", ".join(str(tuple(i.shape)) for i in function.inputs)
        lines.append("  " * depth + f"{function.name}({inputs}) -> {tuple(tensor.shape)}")
        frontier.extend((i, depth + 1) for i in reversed(function.inputs))
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="(accepted for uniformity; already quick)")
    parser.add_argument("--out", help="(unused: this example writes no files)")
    args = parser.parse_args(argv)

    rng = np.random.default_rng(args.seed)
    x = rng.standard_normal((3, 4))
    W = rng.standard_normal((4, 2)) * 0.5
    b = rng.standard_normal(2) * 0.1
    t = rng.uniform(0, 1, (3, 2))

    loss_hand, hand = by_hand(x, W, b, t)
    loss_engine, engine = by_engine(x, W, b, t)

    print("The graph the engine recorded (loss first; backward() visits it in this order):")
    # rebuild it once more for display: backward() above released the saved arrays
    x_t, W_t, b_t = (ae.tensor(a, requires_grad=True) for a in (x, W, b))
    d = (x_t @ W_t + b_t).sigmoid() - ae.tensor(t)
    print(describe_graph((d * d).mean()))
    print()
    print(f"loss: by hand {loss_hand:.12f}   engine {loss_engine.item():.12f}")
    print()
    worst = 0.0
    for name in ("y", "z", "b", "W", "x"):
        h, e = np.asarray(hand[name]), np.asarray(engine[name])  # .grad holds a NumPy array
        diff = float(np.abs(h - e).max())
        worst = max(worst, diff)
        print(f"dloss/d{name}  shape {h.shape}   max |hand - engine| = {diff:.2e}")
        for row_h, row_e in zip(np.atleast_2d(h), np.atleast_2d(e)):
            hand_text = " ".join(f"{v:+.6f}" for v in row_h)
            engine_text = " ".join(f"{v:+.6f}" for v in row_e)
            print(f"    hand [{hand_text}]    engine [{engine_text}]")
    print()
    print(f"largest difference over every gradient: {worst:.2e} (float64 round-off)")

    # A third witness that needs no calculus: nudge one weight both ways and watch the loss.
    eps = 1e-6
    W_plus, W_minus = W.copy(), W.copy()
    W_plus[0, 1] += eps
    W_minus[0, 1] -= eps
    numeric = (by_hand(x, W_plus, b, t)[0] - by_hand(x, W_minus, b, t)[0]) / (2 * eps)
    print(f"central difference for dloss/dW[0, 1]: {numeric:+.9f}   "
          f"backward(): {np.asarray(engine['W'])[0, 1]:+.9f}")
    return {"loss_hand": float(loss_hand), "loss_engine": loss_engine.item(), "max_diff": worst}


if __name__ == "__main__":
    main()
