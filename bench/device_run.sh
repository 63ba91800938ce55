#!/usr/bin/env bash
# One device call: environment, smoke test, full GPU suite, quick timings.
# Usage (on the device machine, from the repo root): bash bench/device_run.sh [pytest -k expr]
set -uo pipefail
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm --format=csv | tee "$OUT/env.txt"
python3 -c "import cupy, torch; print('cupy', cupy.__version__, 'nvrtc', cupy.cuda.nvrtc.getVersion(), 'torch', torch.__version__, 'cudnn', torch.backends.cudnn.version())" | tee -a "$OUT/env.txt"
python3 -m pytest tests -q -x -k "matrix and mha and 128 and 113x203" 2>&1 | tail -5
python3 -m pytest tests -q ${1:+-k "$1"} --maxfail=30 -p no:cacheprovider 2>&1 > "$OUT/pytest.txt"; tail -40 "$OUT/pytest.txt"
for d in 64 128 256; do python3 bench/floor.py --head-dim $d 2>&1 | tail -3; done | tee "$OUT/floor.txt"
