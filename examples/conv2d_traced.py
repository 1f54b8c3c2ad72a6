"""One conv2d, forward and backward, traced element by element against the engine's kernels.

    python examples/conv2d_traced.py                      # stride 2, padding 1 on a 5x5 input
    python examples/conv2d_traced.py --stride 1 --padding same

conv2d is a cross-correlation (PyTorch's convention, no kernel flip). With x: (N, Cin, H, W),
w: (Cout, Cin, kH, kW), stride s and p rows/columns of zeros around the input:

    y[n, co, oy, ox] = b[co] + sum over ci, ky, kx of  w[co, ci, ky, kx] * x[n, ci, oy*s + ky - p, ox*s + kx - p]
    outH = (H + 2p - kH) // s + 1                     (taps that land in the padding read 0)

Backward gets g = dloss/dy (same shape as y). Every multiply-add of the forward, w * x, sends g
back to both of its factors, so the three gradients are the SAME loop with another accumulation:

    grad_x[n, ci, iy, ix]   += w[co, ci, ky, kx] * g[n, co, oy, ox]     (a transposed convolution)
    grad_w[co, ci, ky, kx]  += x[n, ci, iy, ix]  * g[n, co, oy, ox]     (a correlation of x with g)
    grad_b[co]              += g[n, co, oy, ox]

The loops below are the definition, slow and obviously right; the kernels in kernels/conv2d/
compute the same numbers with tensordots (reference tier) and blocked Numba loops (numba tier).
"""

import argparse

import numpy as np

import aecore as ae
import aecore.functional as F
from aecore import kernels
from aecore.backend import gpu_available
from aecore.kernels import geometry


def conv2d_loops(x, w, b, stride, pad):
    """The forward, one output element at a time. pad = (top, bottom, left, right)."""
    n_, c_in, h, w_ = x.shape
    c_out, _, k_h, k_w = w.shape
    top, bottom, left, right = pad
    out_h = (h + top + bottom - k_h) // stride + 1
    out_w = (w_ + left + right - k_w) // stride + 1
    y = np.zeros((n_, c_out, out_h, out_w))
    for n in range(n_):
        for co in range(c_out):
            for oy in range(out_h):
                for ox in range(out_w):
                    acc = b[co]
                    for ci in range(c_in):
                        for ky in range(k_h):
                            for kx in range(k_w):
                                iy, ix = oy * stride + ky - top, ox * stride + kx - left
                                if 0 <= iy < h and 0 <= ix < w_:   # else: a zero of the padding
                                    acc += w[co, ci, ky, kx] * x[n, ci, iy, ix]
                    y[n, co, oy, ox] = acc
    return y


def conv2d_backward_loops(g, x, w, stride, pad):
    """The backward: the forward's loops, each multiply-add sending g back to its two factors."""
    n_, c_in, h, w_ = x.shape
    c_out, _, k_h, k_w = w.shape
    top, left = pad[0], pad[2]
    grad_x, grad_w, grad_b = np.zeros(x.shape), np.zeros(w.shape), np.zeros(c_out)
    for n in range(n_):
        for co in range(c_out):
            for oy in range(g.shape[2]):
                for ox in range(g.shape[3]):
                    grad_b[co] += g[n, co, oy, ox]
                    for ci in range(c_in):
                        for ky in range(k_h):
                            for kx in range(k_w):
                                iy, ix = oy * stride + ky - top, ox * stride + kx - left
                                if 0 <= iy < h and 0 <= ix < w_:
                                    grad_x[n, ci, iy, ix] += w[co, ci, ky, kx] * g[n, co, oy, ox]
                                    grad_w[co, ci, ky, kx] += x[n, ci, iy, ix] * g[n, co, oy, ox]
    return grad_x, grad_w, grad_b


def trace_output(x, w, b, stride, pad, n, co, oy, ox):
    """Print every term of one output element."""
    top, left = pad[0], pad[2]
    print(f"y[{n},{co},{oy},{ox}] = b[{co}] ({b[co]:+.4f})")
    total = b[co]
    for ci in range(x.shape[1]):
        terms = []
        for ky in range(w.shape[2]):
            for kx in range(w.shape[3]):
                iy, ix = oy * stride + ky - top, ox * stride + kx - left
                inside = 0 <= iy < x.shape[2] and 0 <= ix < x.shape[3]
                value = x[n, ci, iy, ix] if inside else 0.0
                total += w[co, ci, ky, kx] * value
                where = f"x[{n},{ci},{iy},{ix}]" if inside else "pad"
                terms.append(f"w[{co},{ci},{ky},{kx}]*{where}")
        print(f"    + channel {ci}: " + " + ".join(terms))
    print(f"    = {total:+.6f}")
    return total


def trace_input_gradient(w, g, stride, pad, x_shape, n, ci, iy, ix):
    """Print which outputs (and which weight taps) an input pixel fed, i.e. its gradient's terms."""
    top, left = pad[0], pad[2]
    terms, total = [], 0.0
    for co in range(w.shape[0]):
        for oy in range(g.shape[2]):
            for ox in range(g.shape[3]):
                ky, kx = iy + top - oy * stride, ix + left - ox * stride
                if 0 <= ky < w.shape[2] and 0 <= kx < w.shape[3]:
                    terms.append(f"w[{co},{ci},{ky},{kx}]*g[{n},{co},{oy},{ox}]")
                    total += w[co, ci, ky, kx] * g[n, co, oy, ox]
    print(f"grad_x[{n},{ci},{iy},{ix}] = " + " + ".join(terms))
    print(f"    = {total:+.6f}   ({len(terms) // w.shape[0]} output positions per output channel "
          f"saw this pixel)")
    return total


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stride", type=int, default=2)
    parser.add_argument("--padding", default="1", help="an int, 'same' or 'valid'")
    parser.add_argument("--size", type=int, default=5, help="input height and width")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="(accepted; the example is tiny)")
    parser.add_argument("--out", help="(unused: this example writes no files)")
    args = parser.parse_args(argv)
    padding = int(args.padding) if args.padding.lstrip("-").isdigit() else args.padding

    rng = np.random.default_rng(args.seed)
    x = rng.standard_normal((1, 2, args.size, args.size))      # N=1, Cin=2
    w = rng.standard_normal((2, 2, 3, 3)) * 0.3                 # Cout=2, Cin=2, 3x3
    b = rng.standard_normal(2) * 0.1

    # the geometry module resolves padding ('same' is TensorFlow's rule) and checks the sizes
    geom = geometry.conv2d_geometry(x.shape, w.shape, args.stride, padding, b_shape=b.shape)
    pad = (geom.pad_top, geom.pad_bottom, geom.pad_left, geom.pad_right)
    print(f"x {x.shape}, w {w.shape}, stride {args.stride}, padding {padding!r} -> "
          f"pads (top, bottom, left, right) = {pad}, output {geom.out_h}x{geom.out_w}\n")

    print("== forward ==")
    y = conv2d_loops(x, w, b, args.stride, pad)
    trace_output(x, w, b, args.stride, pad, 0, 1, geom.out_h // 2, geom.out_w // 2)
    g = rng.standard_normal(y.shape)                            # dloss/dy from "the layers above"
    grad_x, grad_w, grad_b = conv2d_backward_loops(g, x, w, args.stride, pad)

    print("\n== backward ==")
    trace_input_gradient(w, g, args.stride, pad, x.shape, 0, 0, 1, 1)
    trace_input_gradient(w, g, args.stride, pad, x.shape, 0, 0, 2, 2)
    print("(with stride 2 an input pixel is seen by 1, 2 or 4 output positions depending on its\n"
          " parity: the uneven overlap behind transposed-convolution checkerboards, see\n"
          " examples/checkerboard.py)")

    print("\n== the loops vs every kernel tier (float64, max |difference|) ==")
    ops = {"conv2d_forward": ((x, w, b, geom), y),
           "conv2d_backward_input": ((g, w, geom), grad_x),
           "conv2d_backward_weight": ((g, x, geom), grad_w)}
    worst = 0.0
    for op, (arguments, expected) in ops.items():
        for tier, function in kernels.implementations(op).items():
            if tier == "cuda" and not gpu_available():
                continue  # the cuda tier needs a GPU here (tests run it under the simulator)
            diff = float(np.abs(np.asarray(function(*arguments)) - expected).max())
            worst = max(worst, diff)
            print(f"  {op:<24} {tier:<6} {diff:.2e}")

    # and through the graph, as a user calls it: y = F.conv2d(...); (y * g).sum().backward()
    xt, wt, bt = (ae.tensor(a, requires_grad=True) for a in (x, w, b))
    out = F.conv2d(xt, wt, bt, stride=args.stride, padding=padding)
    (out * ae.tensor(g)).sum().backward()    # d/dy of sum(y * g) is g
    for name, got, expected in (("y", out.numpy(), y), ("grad_x", xt.grad, grad_x),
                                ("grad_w", wt.grad, grad_w), ("grad_b", bt.grad, grad_b)):
        diff = float(np.abs(np.asarray(got) - expected).max())
        worst = max(worst, diff)
        print(f"  graph F.conv2d {name:<9} ({out.creator.tier if name == 'y' else 'backward'}) {diff:.2e}")
    print(f"\nlargest difference: {worst:.2e}")
    return {"max_diff": worst}


if __name__ == "__main__":
    main()
