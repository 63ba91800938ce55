#!/usr/bin/env bash
# Kernel development run on the device (one call): smoke test, timings, then the suite.
#   bash bench/device_dev.sh [backend] [suite -k expression]
set -uo pipefail
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
BACKEND=${1:-wgmma}
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm --format=csv,noheader | tee "$OUT/env.txt"
timeout 60 python3 bench/precompile.py > "$OUT/precompile.txt" 2>&1; tail -1 "$OUT/precompile.txt"
timeout 120 python3 bench/smoke.py --backend "$BACKEND" 2>&1 | tee "$OUT/smoke.txt"
if [ "${PIPESTATUS[0]}" != 0 ]; then echo "smoke failed: no timings, no suite"; exit 1; fi
for args in "--head-dim 64" "--head-dim 128" "--head-dim 256" "--head-dim 128 --dtype fp16 --seqlen 1024" \
            "--head-dim 128 --seqlen 16384" ${EXTRA_FLOOR:-}; do
  timeout 100 python3 bench/floor.py $args --backend "$BACKEND" 2>&1 | tail -3
done | tee "$OUT/floor.txt"
timeout "${SUITE_TIMEOUT:-240}" python3 -m pytest tests -q -n 4 -p no:cacheprovider ${2:+-k "$2"} > "$OUT/pytest.txt" 2>&1
echo "pytest exit: $?"; grep -E "^(FAILED|ERROR)" "$OUT/pytest.txt" | head -20; tail -2 "$OUT/pytest.txt"
