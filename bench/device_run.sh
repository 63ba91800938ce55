#!/usr/bin/env bash
# One device call: environment, smoke test, quick timings, then the GPU suite.
# Usage (on the device machine, from the repo root):
#   bash bench/device_run.sh [pytest -k expression] [suite timeout seconds]
set -uo pipefail
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm --format=csv | tee "$OUT/env.txt"
python3 -c "import cupy, torch; print('cupy', cupy.__version__, 'nvrtc', cupy.cuda.nvrtc.getVersion(), 'torch', torch.__version__, 'cudnn', torch.backends.cudnn.version())" | tee -a "$OUT/env.txt"
python3 -m pytest tests -q -x -p no:cacheprovider -k "matrix and mha and 128 and 113x203" 2>&1 | tail -15
for d in 64 128 256; do python3 bench/floor.py --head-dim $d 2>&1 | tail -4; done | tee "$OUT/floor.txt"
timeout "${2:-400}" python3 -m pytest tests -q ${1:+-k "$1"} --maxfail=30 -p no:cacheprovider > "$OUT/pytest.txt" 2>&1
echo "pytest exit: $?"; grep -E "^(FAILED|ERROR)" "$OUT/pytest.txt" | head -30; tail -3 "$OUT/pytest.txt"
