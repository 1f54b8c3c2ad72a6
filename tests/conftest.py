"""Shared test settings: the Hypothesis profiles and the path to the real MNIST files."""

import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

# deadline=None: the first call of a Numba kernel compiles it (seconds), which is not slowness.
settings.register_profile("ci", deadline=None, max_examples=25, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile("thorough", deadline=None, max_examples=300,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile("cudasim", deadline=None, max_examples=6, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

REPO_ROOT = Path(__file__).resolve().parents[1]
MNIST_DIR = REPO_ROOT.parent / "shared" / "data" / "mnist"


@pytest.fixture
def mnist_dir():
    """The directory with the real MNIST test set beside the repository; skip when absent."""
    if not (MNIST_DIR / "t10k-images-idx3-ubyte.gz").exists():
        pytest.skip(f"the real MNIST files are not in {MNIST_DIR}")
    return MNIST_DIR


@pytest.fixture(autouse=True)
def _seeded():
    """Every test starts from the same engine seed."""
    import aecore
    aecore.manual_seed(0)
    np.random.seed(0)
    yield
