#!/usr/bin/env bash
# Kernel development run on the device (one call, well inside the 10-minute limit):
#   STAGES="smoke tune suite sanitize" bash bench/device_dev.sh [backend] [suite -k expression]
# Stages (default "smoke floor suite"), each logged under $OUT:
#   smoke    bench/smoke.py: a few shapes per width against float64; stops the run if one fails
#   floor    bench/floor.py at seqlen 4096 (d 64/128/256), 1024 (fp16 d 128) and 16384 (d 128)
#   tune     bench/tune_wgmma.py: every candidate variant against cuDNN and FA2, same run
#   tunemma  bench/tune_mma.py (TUNE_DIMS, TUNE_SEQLENS): mma.sync candidates against FA2, same run
#   fp64     the float64 GPU tests, then bench/tune_dmma.py: DMMA candidates against torch math fp64
#   split    bench/tune_split.py: split-precision fp32 candidates against torch efficient fp32
#   suite    the whole pytest suite, 4 xdist workers (8 exhaust an 80 GB card's memory)
#   sanitize compute-sanitizer racecheck + memcheck on one small call per head-dim width
set -uo pipefail
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
BACKEND=${1:-wgmma}
STAGES=${STAGES:-smoke floor suite}
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm --format=csv,noheader | tee "$OUT/env.txt"
timeout 60 python3 bench/precompile.py > "$OUT/precompile.txt" 2>&1; tail -1 "$OUT/precompile.txt"
for stage in $STAGES; do case $stage in
smoke)
  timeout 120 python3 bench/smoke.py --backend "$BACKEND" > "$OUT/smoke.txt" 2>&1
  rc=$?; grep -E "BAD|smoke:" "$OUT/smoke.txt"
  if [ $rc != 0 ]; then cat "$OUT/smoke.txt"; echo "smoke failed: stopping"; exit 1; fi
  # float32 on wgmma (split, fast): reported, never gating the 16-bit work
  [ "$BACKEND" = wgmma ] && { timeout 120 python3 bench/smoke.py --fp32 > "$OUT/smoke_fp32.txt" 2>&1;
                              grep -E "BAD|smoke:|Error" "$OUT/smoke_fp32.txt" | tail -8; };;
floor)
  for args in "--head-dim 64" "--head-dim 128" "--head-dim 256" "--head-dim 128 --dtype fp16 --seqlen 1024" \
              "--head-dim 128 --seqlen 16384"; do
    timeout 100 python3 bench/floor.py $args --backend "$BACKEND" 2>&1 | tail -3
  done | tee "$OUT/floor.txt";;
tune)
  timeout 280 python3 bench/tune_wgmma.py --seqlens "${TUNE_SEQLENS:-1024,4096,16384}" 2>&1 | tee "$OUT/tune.txt";;
tunemma)
  timeout 280 python3 bench/tune_mma.py --dims "${TUNE_DIMS:-256}" --seqlens "${TUNE_SEQLENS:-1024,4096}" 2>&1 \
    | tee "$OUT/tune_mma.txt";;
fp64)
  timeout 200 python3 -m pytest tests -q -n 4 -p no:cacheprovider -k float64 > "$OUT/pytest_fp64.txt" 2>&1
  echo "pytest (float64) exit: $?"; grep -E "^(FAILED|ERROR)" "$OUT/pytest_fp64.txt" | head -20
  tail -1 "$OUT/pytest_fp64.txt"
  timeout 240 python3 bench/tune_dmma.py 2>&1 | tee "$OUT/tune_dmma.txt";;
split)
  timeout 240 python3 bench/tune_split.py 2>&1 | tee "$OUT/tune_split.txt";;
suite)
  timeout "${SUITE_TIMEOUT:-240}" python3 -m pytest tests -q -n 4 -p no:cacheprovider ${2:+-k "$2"} > "$OUT/pytest.txt" 2>&1
  echo "pytest exit: $?"; grep -E "^(FAILED|ERROR)" "$OUT/pytest.txt" | head -20; tail -1 "$OUT/pytest.txt";;
sanitize)
  for tool in racecheck memcheck; do
    timeout 150 compute-sanitizer --tool $tool python3 bench/sanitize_case.py --backend "$BACKEND" > "$OUT/sanitize_$tool.txt" 2>&1
    echo "$tool exit $?: $(grep -E "ERROR SUMMARY|RACECHECK SUMMARY" "$OUT/sanitize_$tool.txt" | tail -1)"
  done;;
*) echo "unknown stage $stage"; exit 2;;
esac; done
