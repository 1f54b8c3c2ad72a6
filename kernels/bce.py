"""Binary cross-entropy on logits, summed per example: the loss and its gradient, one pass each.

    z, y: (N, P) (each example's P values, a view of (N, C, H, W)), e = exp(-|z|) from NumPy
    loss[n] = sum_p  max(z, 0) - z y + log(1 + e)                  (float64 sums, (N,))
    grad_z  = (sigmoid(z) - y) * scale[n],  sigmoid(z) = 1 / (1 + e) for z >= 0, e / (1 + e) below

aecore.losses computes e and log1p(e) with NumPy (its vectorized exp and log1p; Numba's call the
C library one value at a time) and these loops do the rest, where the plain formulas take a
dozen whole-array passes and a mean. The gradient is the very arithmetic of
losses.BinaryCrossEntropyWithLogits's backward times Mean's (or Sum's) gradient, so the same
bits; the sums are float64 (in vector lanes), not NumPy's float32 pairwise sums, so the loss
may differ in its last bits. Figures: kernels/NOTES.md, "bce".
"""

import numpy as np

from .compile import NUMBA_AVAILABLE, cpu_kernel, run_in_chunks

__all__ = ["fusable", "bce_logits_sums", "bce_logits_gradient"]


def sums_task(task, z, y, log1p_e, sums, rows):
    # z, y, log1p_e: (N, P); sums: (N,) float64. Task t sums rows t*rows .. (t+1)*rows - 1.
    for n in range(task * rows, min((task + 1) * rows, z.shape[0])):
        zs, ys, ls = z[n], y[n], log1p_e[n]
        total = 0.0
        for p in range(zs.shape[0]):
            value = zs[p]
            total += (max(value, 0) - value * ys[p]) + ls[p]
        sums[n] = total


# reassoc lets LLVM vectorize the float64 sum (partial sums in vector lanes: 0.17 -> 0.05 ms for
# (200, 784)); the order is fixed by the compiled code, so the sums are deterministic.
_sums_task = cpu_kernel(sums_task, fastmath={"reassoc", "contract"})


def gradient_task(task, z, y, e, scale, one, grad_z, rows):
    # grad_z[n, p] = ((1 if z >= 0 else e) / (e + 1) - y) * scale[n], in z's dtype (`one` too:
    # a float64 1.0 would promote the division). A NaN z takes e, as NumPy's mask z >= 0 does.
    for n in range(task * rows, min((task + 1) * rows, z.shape[0])):
        zs, ys, es, out = z[n], y[n], e[n], grad_z[n]
        factor = scale[n]
        for p in range(zs.shape[0]):
            ep = es[p]
            numerator = one if zs[p] >= 0 else ep
            out[p] = (numerator / (ep + one) - ys[p]) * factor


_gradient_task = cpu_kernel(gradient_task, error_model="numpy")   # x / 0 -> inf: vectorized


def fusable(z, y):
    """True when these loops can take z and y: NumPy arrays of one float dtype and shape, at
    least 1-D, C-contiguous, and Numba installed."""
    return (NUMBA_AVAILABLE and type(z) is np.ndarray and type(y) is np.ndarray
            and z.dtype in (np.float32, np.float64) and y.dtype == z.dtype
            and y.shape == z.shape and z.ndim >= 1 and z.size > 0
            and z.flags.c_contiguous and y.flags.c_contiguous)


def _rows_per_task(n_rows):
    return max(1, n_rows // 16)          # a few rows per task: 16 or more tasks


def bce_logits_sums(z, y, log1p_e):
    """(N,) float64: each example's summed loss; z, y, log1p_e (N, ...), as fusable() takes."""
    n = z.shape[0]
    sums = np.empty(n, np.float64)
    run_in_chunks(_sums_task, n, _rows_per_task(n), z.reshape(n, -1), y.reshape(n, -1),
                  log1p_e.reshape(n, -1), sums, values=z.size)
    return sums


def bce_logits_gradient(z, y, e, scale, out):
    """out (z's shape) = (sigmoid(z) - y) * scale[n] for each example n; scale (N,), z's dtype."""
    n = z.shape[0]
    run_in_chunks(_gradient_task, n, _rows_per_task(n), z.reshape(n, -1), y.reshape(n, -1),
                  e.reshape(n, -1), np.ascontiguousarray(scale, z.dtype), z.dtype.type(1),
                  out.reshape(n, -1), values=z.size)
    return out
