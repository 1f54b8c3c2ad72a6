#!/usr/bin/env bash
# The whole test suite, exactly as CI runs it (.ci/run calls this after installing).
#   1. the main process: the engine, every model and tool, the ref and numba kernel tiers
#      (and the cuda tier too when CuPy sees a real GPU);
#   2. the CUDA kernels under the Numba CUDA simulator, in a process of their own, because the
#      simulator replaces numba.cuda for the whole process; tiny shapes, few examples.
# Extra arguments go to both pytest runs (e.g. -x, -k conv).
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== main test process =="
pytest "$@"

echo "== CUDA kernels under the Numba simulator =="
NUMBA_ENABLE_CUDASIM=1 AECORE_TEST_TIERS=cuda HYPOTHESIS_PROFILE=cudasim pytest tests/kernels "$@"
