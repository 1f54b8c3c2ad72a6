"""One small, valid call of every kernel op: (op name, args), shared by the tests that run each
op once (the CUDA compile check, the registry's argument checks, the host cache's safety). The
arguments come from each family's own description (aecore.kernels.op: `inputs` at `sample`)."""

import numpy as np

from aecore.kernels import op as described


def sample_calls(dtype):
    """(op name, args) for one call of every described op, on small arrays of `dtype`."""
    rng = np.random.default_rng(0)
    calls = []
    for family in described.families():
        _, args = family.inputs(family.sample, np.dtype(dtype), rng)
        calls += [(name, args[name]) for name in family.names]
    return calls
