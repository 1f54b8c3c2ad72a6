"""aecore.kernels: one module per op family, each with reference / numba / cuda tiers.

Importing this package registers every implementation in `registry`.
"""

from . import registry, geometry, memory  # noqa: F401
from .registry import register, implementations, use_tier, dispatch, ops, tiers_of  # noqa: F401

# Each family registers its tiers on import. Listed explicitly so the import order is obvious.
from . import activation, conv2d, conv_transpose2d, max_pool2d, upsample  # noqa: F401,E402
