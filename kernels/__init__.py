"""aecore.kernels: the hand-written kernels, one module (or folder) per op family, each with its
tiers in the same order: a NumPy reference, Numba CPU loops, numba.cuda kernels.

A reader's guide: to learn how ...
  - a kernel is chosen and checked: op.py (each op's one description), then registry.py
    (op x tier -> function; the argument checks; use_tier), then compile.py (what Numba and
    numba.cuda need, the compile idiom);
  - output sizes and padding are worked out: geometry.py (PyTorch's rules, TF's 'same');
  - the smallest family works end to end: activation.py (relu: reference, one parallel pass,
    one thread per element);
  - a family with indices and a scatter/gather backward works: max_pool2d.py, then
    upsample.py (per-axis tables shared by every tier), then avg_pool2d.py (max-pool's
    windows, PyTorch's divisor rules, a gather backward on every tier);
  - convolution works: conv2d/__init__.py (the op, the adjoint pairs, the tier choice), then
    conv2d/reference.py, conv2d/direct.py, conv2d/winograd.py, conv2d/cuda.py (one GPU
    thread per output), conv2d/cuda_tiled.py (each pass as a tiled matrix product), and
    conv_transpose2d.py (built from conv2d's three cores);
  - memory is reused between training steps: memory.py (the host buffer cache);
  - a training step's elementwise work is fused where NumPy would make a dozen passes:
    adam.py (the optimizer's update) and bce.py (the loss and its reduction), plain loops
    that the graph layer (aecore.optim, aecore.losses) calls directly, not registry ops;
  - each design choice was measured: NOTES.md.

Importing this package registers every implementation in `registry`.
"""

from . import registry, geometry, memory  # noqa: F401
from .registry import register, implementations, use_tier, dispatch, ops, tiers_of  # noqa: F401

# Each family describes its ops and registers its tiers on import. Listed explicitly so the
# import order is obvious.
from . import activation, conv2d, conv_transpose2d, max_pool2d, upsample  # noqa: F401,E402
from . import avg_pool2d  # noqa: F401,E402  (after max_pool2d: it shares max-pool's windows)
