#!/usr/bin/env bash
# The GPU check: one script for a machine with an NVIDIA GPU and no network, whose image already
# holds torch (CUDA), cupy, numba-cuda; it installs nothing but this project. Under 8 minutes:
# every stage under a time limit of its own (470 s in all), so one hang cannot eat the rest:
#   gpu           nvidia-smi                                                        20 s
#   install       pip install --no-deps --no-build-isolation -e .                   90 s
#   kernel-tests  tests/kernels on the real cuda tier                              120 s
#   steps         each model's first training step on cuda against the CPU (1e-4)   90 s
#                 (the CPU side compiles the numba kernels on a fresh machine)
#   models        the CAE, DAE and conv VAE steps (batch 200, CUDA events) beside
#                 PyTorch eager CUDA: bench/models.py --device cuda                 90 s
#   conv          the large conv (64x32x112x112 -> 64, 3x3) forward + backward:
#                 tiled, naive, the reference tier on CuPy, cuDNN (FP32, TF32 off)  60 s
# Every figure lands in bench/results/gpu-<gpu name>.json (the stages' exit codes too).
#
#   bash bench/gpu_check.sh               # on the GPU machine
#   bash bench/gpu_check.sh --dry-run     # here: tiny shapes under the Numba CUDA simulator
#                                         # (no nvidia-smi, no install, a few kernel tests)
set -uo pipefail
cd "$(dirname "$0")/.."

DRY=0
[ "${1:-}" = "--dry-run" ] && DRY=1
WORK=$(mktemp -d)
STATUS="$WORK/stages.json"
echo "{}" > "$STATUS"
PYTHON=${PYTHON:-python}
FAILED=0

stage() {   # stage NAME SECONDS COMMAND...: run it under `timeout`, record its exit code
    local name=$1 limit=$2
    shift 2
    echo "== $name (at most ${limit} s) =="
    local started=$SECONDS
    timeout --kill-after=10 "$limit" "$@"
    local rc=$?
    [ $rc -eq 124 ] && echo "== $name: stopped after ${limit} s"
    [ $rc -ne 0 ] && FAILED=1
    echo "== $name: exit $rc in $((SECONDS - started)) s"
    "$PYTHON" - "$STATUS" "$name" "$rc" "$((SECONDS - started))" <<'EOF'
import json, sys
path, name, rc, seconds = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
status = json.load(open(path))
status[name] = {"exit": rc, "seconds": seconds, "timed_out": rc == 124}
json.dump(status, open(path, "w"), indent=1)
EOF
}

if [ $DRY -eq 1 ]; then
    export NUMBA_ENABLE_CUDASIM=1
    FLAG=--dry-run
    OUT=${GPU_CHECK_OUT:-$WORK/gpu-dry-run.json}
    echo "dry run: the Numba CUDA simulator, tiny shapes; nvidia-smi, the install and the" \
         "model timings are skipped"
    stage kernel-tests 300 env AECORE_TEST_TIERS=cuda HYPOTHESIS_PROFILE=cudasim \
        "$PYTHON" -m pytest -q -x -p no:cacheprovider tests/kernels/test_conv_cuda.py \
        -k "split_weight or grid or chunks or several_blocks"
else
    FLAG=
    stage gpu 20 nvidia-smi
    stage install 90 "$PYTHON" -m pip install --quiet --no-deps --no-build-isolation -e .
    NAME=$("$PYTHON" -c "import cupy; p = cupy.cuda.runtime.getDeviceProperties(0); \
print(p['name'].decode().lower().replace(' ', '-'))" 2>/dev/null || echo unknown-gpu)
    OUT=${GPU_CHECK_OUT:-bench/results/gpu-$NAME.json}
    stage kernel-tests 120 env AECORE_TEST_TIERS=cuda HYPOTHESIS_PROFILE=cudasim \
        "$PYTHON" -m pytest -q -x -p no:cacheprovider tests/kernels
fi
stage steps 90 "$PYTHON" bench/gpu_check.py steps $FLAG --out "$WORK/steps.json"
if [ $DRY -eq 0 ]; then
    stage models 90 "$PYTHON" bench/models.py --device cuda --models cae dae vae --steps 20 \
        --out "$WORK/models.json"
fi
stage conv 60 "$PYTHON" bench/gpu_check.py conv $FLAG --out "$WORK/conv.json"
"$PYTHON" bench/gpu_check.py merge "$WORK" $FLAG --out "$OUT"
rm -rf "$WORK"
exit $FAILED
