"""Adam's update of one parameter, in place: the array form, and the same arithmetic fused.

    m = b1 m + (1 - b1) g                 v = b2 v + (1 - b2) g g      (v_max = max(v_max, v))
    torch:  p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
    keras:  p -= lr * sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps)
with amsgrad, v_max stands for v in p's update. aecore.optim.Adam and AdamW call adam_update
(its docstring has the two rules' story); p, g, m, v (and v_max) all have p's shape.

adam_update_arrays is the formula in whole-array operations (NumPy or CuPy): a dozen passes over
the parameter, most of them making a temporary of its size. adam_update_fused does each
element's arithmetic in one pass, the same float operations in the same order (no fastmath, so
no fused multiply-add): the same bits, in a third of the time or less (kernels/NOTES.md, "adam").
adam_update takes the fused loop for NumPy arrays when Numba is installed (not with amsgrad).
"""

import numpy as np

from .compile import NUMBA_AVAILABLE, cpu_kernel, run_in_chunks

__all__ = ["adam_update", "adam_update_arrays", "adam_update_fused", "step_scalars"]


def step_scalars(lr, betas, t, rule):
    """(step_size, sqrt(1 - b2^t)) of step t: lr / (1 - b1^t) (torch), or
    lr * sqrt(1 - b2^t) / (1 - b1^t) (keras). Python floats, so a float32 parameter stays
    float32 (NumPy's np.sqrt of a Python float gives a float64 scalar, which would promote it)."""
    b1, b2 = betas
    bias_correction1 = 1 - b1 ** t
    root_bc2 = (1 - b2 ** t) ** 0.5
    if rule == "keras":
        return lr * root_bc2 / bias_correction1, root_bc2
    return lr / bias_correction1, root_bc2


def adam_update_arrays(xp, p, g, m, v, v_max, lr, betas, eps, t, rule):
    """The update in whole-array operations of the array module xp (numpy or cupy)."""
    b1, b2 = betas
    m *= b1
    m += (1 - b1) * g
    v *= b2
    v += (1 - b2) * g * g
    if v_max is not None:
        xp.maximum(v_max, v, out=v_max)
        v = v_max
    step_size, root_bc2 = step_scalars(lr, betas, t, rule)
    if rule == "keras":
        p -= step_size * (m / (xp.sqrt(v) + eps))
    else:
        p -= step_size * (m / (xp.sqrt(v) / root_bc2 + eps))


# ----------------------------------------------------------------------------------------------
# the fused loop: one parallel task per chunk of _CHUNK values
# ----------------------------------------------------------------------------------------------

_CHUNK = 1 << 14


def adam_chunk(task, p, g, m, v, c1, c2, b1, b2, step_size, root_bc2, eps, keras, chunk):
    # p, g, m, v: flat (size,), one dtype; the scalars in it too (as NumPy rounds a Python
    # float against a float32 array). c1 = 1 - b1, c2 = 1 - b2; root_bc2 = sqrt(1 - b2^t);
    # step_size = lr / (1 - b1^t) (torch) or lr * sqrt(1 - b2^t) / (1 - b1^t) (keras).
    # Four arrays, three written: few enough overlap checks for LLVM to vectorize the loop
    # (amsgrad's fifth array takes the array form). Slices counted from 0: see relu.
    start = task * chunk
    stop = min(start + chunk, p.shape[0])
    ps, gs, ms, vs = p[start:stop], g[start:stop], m[start:stop], v[start:stop]
    for i in range(stop - start):
        gi = gs[i]
        mi = ms[i] * b1 + c1 * gi                 # m *= b1; m += (1 - b1) * g
        vi = vs[i] * b2 + c2 * gi * gi            # v *= b2; v += (1 - b2) * g * g
        ms[i] = mi
        vs[i] = vi
        if keras:
            ps[i] = ps[i] - step_size * (mi / (np.sqrt(vi) + eps))
        else:
            ps[i] = ps[i] - step_size * (mi / (np.sqrt(vi) / root_bc2 + eps))


_adam_chunk = cpu_kernel(adam_chunk, error_model="numpy")   # x / 0 -> inf, as NumPy: vectorized


def adam_update_fused(p, g, m, v, lr, betas, eps, t, rule):
    """The update (without amsgrad) as one pass over C-contiguous NumPy arrays of one float
    dtype (Numba)."""
    b1, b2 = betas
    step_size, root_bc2 = step_scalars(lr, betas, t, rule)
    real = p.dtype.type
    run_in_chunks(_adam_chunk, p.size, _CHUNK, *(a.reshape(-1) for a in (p, g, m, v)),
                  real(1 - b1), real(1 - b2), real(b1), real(b2), real(step_size), real(root_bc2),
                  real(eps), rule == "keras")


def _fusable(p, *others):
    arrays = (p, *others)
    return (NUMBA_AVAILABLE and type(p) is np.ndarray and p.dtype in (np.float32, np.float64)
            and all(type(a) is np.ndarray and a.dtype == p.dtype and a.shape == p.shape
                    and a.flags.c_contiguous for a in arrays) and p.flags.writeable)


def adam_update(xp, p, g, m, v, v_max, lr, betas, eps, t, rule):
    """Adam's step t (1, 2, ...) for parameter array p with gradient g, in place on p, m, v and
    v_max (None without amsgrad); rule "torch" or "keras" (aecore.optim's docstring). The fused
    loop for NumPy arrays, else the array form (CuPy, no Numba, mixed dtypes, amsgrad)."""
    if v_max is None and _fusable(p, g, m, v):
        adam_update_fused(p, g, m, v, lr, betas, eps, t, rule)
    else:
        adam_update_arrays(xp, p, g, m, v, v_max, lr, betas, eps, t, rule)
