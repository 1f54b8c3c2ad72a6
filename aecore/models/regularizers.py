"""Regularizers on the code: sparse (L1 activity) and contractive (encoder Jacobian norm).

Both are returned as a mean over the batch, so their weight means the same at any batch size
(Keras divides activity regularizers by the batch size too).

Sparse:       weight * mean_n sum_j |h_nj|

Contractive:  weight * mean_n ||J_n||_F^2,  J_n = d h(x_n) / d x_n, for a dense encoder
                h = f_L(W_L f_{L-1}( ... f_1(W_1 x + b_1) ...) + b_L).
In closed form, with D_l = diag(f_l'(a_l)) at the example's pre-activations a_l,
    J = D_L W_L D_{L-1} W_{L-1} ... D_1 W_1.
Products are taken from the code side (the narrow end) towards the input, so the widest
matrix, W_1 (h_1 x D, D = 784), is met only once and through its Gram matrix:
    M = D_L W_L ... W_2 D_1          (N, h_L, h_1)
    ||J||_F^2 = ||M W_1||_F^2 = sum((M G) * M),   G = W_1 W_1^T  (h_1 x h_1)
which costs N h_L h_1^2 + h_1^2 D instead of N h_L h_1 D. With one layer this is the classic
contractive-AE formula sum_j f'(a_j)^2 sum_i W_ji^2.
The derivatives stay in the graph (sigmoid: h (1 - h); tanh: 1 - h^2; softplus: sigmoid(a)), so the
penalty's gradient is exact; for relu / leaky_relu f' is a constant mask (f'' = 0 almost
everywhere), which is the exact gradient wherever it exists.
"""

import numpy as np

from .. import ops
from ..tensor import Tensor


def sparse_penalty(code):
    """mean over the batch of sum |code| (the L1 activity penalty)."""
    n = code.shape[0]
    return code.abs().sum() * (1.0 / n)


def activation_derivative(name, pre, out):
    """f'(pre) for activation `name`, given the layer's pre-activation and output Tensors;
    None for 'linear' (the identity)."""
    if name == "linear":
        return None
    if name == "relu":
        return Tensor((pre.data > 0).astype(pre.dtype), _copy=False)
    if name == "leaky_relu":
        xp = pre.xp
        return Tensor(xp.where(pre.data > 0, 1.0, 0.01).astype(pre.dtype), _copy=False)
    if name == "sigmoid":
        return out * (1 - out)
    if name == "tanh":
        return 1 - out * out
    if name == "softplus":
        return ops.sigmoid(pre)
    raise ValueError(f"no derivative for activation {name!r}")


def dense_jacobian_frobenius(weights, derivatives, n):
    """Per-example ||J||_F^2, a (n,) Tensor, for J = D_L W_L ... D_1 W_1.

    weights: [W_1, ..., W_L] Tensors, W_l of shape (out_l, in_l);
    derivatives: [d_1, ..., d_L], d_l a (n, out_l) Tensor of f_l'(a_l), or None for the identity.
    """
    if len(weights) != len(derivatives) or not weights:
        raise ValueError("dense_jacobian_frobenius: give one derivative (or None) per weight")
    first = weights[0]
    d_first = derivatives[0]
    if len(weights) == 1:
        row_norms = (first * first).sum(axis=1)                       # (h_1,)
        if d_first is None:
            return row_norms.sum() * Tensor(first.xp.ones(n, dtype=first.dtype), _copy=False)
        return ops.matmul(d_first * d_first, row_norms)                # (n,)

    last = len(weights) - 1
    matrix = weights[last]                                             # (h_L, h_{L-1})
    if derivatives[last] is not None:
        d = derivatives[last]
        matrix = d.reshape(n, d.shape[1], 1) * matrix                  # (n, h_L, h_{L-1})
    for index in range(last - 1, 0, -1):
        d = derivatives[index]
        if d is not None:
            matrix = matrix * d.reshape(n, 1, d.shape[1])
        matrix = ops.matmul(matrix, weights[index])                    # (.., h_L, in_index)
    if d_first is not None:
        matrix = matrix * d_first.reshape(n, 1, d_first.shape[1])      # (.., h_L, h_1)
    h_1, in_features = first.shape
    if h_1 <= in_features:
        gram = ops.matmul(first, first.T)                              # (h_1, h_1)
        squares = ops.matmul(matrix, gram) * matrix
    else:
        jacobian = ops.matmul(matrix, first)                           # (.., h_L, D)
        squares = jacobian * jacobian
    if squares.ndim == 2:  # every layer linear: one Jacobian for all examples
        return squares.sum() * Tensor(first.xp.ones(n, dtype=first.dtype), _copy=False)
    return squares.sum(axis=(1, 2))


def numeric_jacobian(fn, x, eps=1e-6):
    """Central-difference Jacobian of fn: (D,) -> (K,) at the float64 vector x; (K, D). For tests."""
    x = np.asarray(x, dtype=np.float64)
    columns = []
    for i in range(x.size):
        step = np.zeros_like(x)
        step[i] = eps
        columns.append((np.asarray(fn(x + step)) - np.asarray(fn(x - step))) / (2 * eps))
    return np.stack(columns, axis=1)
