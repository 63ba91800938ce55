#!/usr/bin/env bash
# A/B of the dispatched kernel on the device, one call: the working tree ("new")
# against an older commit ("old") and cuDNN, interleaved in one process
# (bench/ab_auto.py), after the new tree's checks.
#   here:   rm -rf ab_old && mkdir ab_old && git archive REV cupyflash cuda_src | tar -x -C ab_old
#           mv ab_old/cupyflash ab_old/cupyflash_old
#           (ab_old/ is in .git/info/exclude; pass it to the device tool's carry)
#   device: AB_CHECK="smoke suite" AB_SUITE_K=wgmma bash bench/device_ab.sh [ab_auto.py arguments]
set -uo pipefail
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm --format=csv,noheader | tee "$OUT/env.txt"
for check in ${AB_CHECK:-smoke}; do case $check in
smoke)
  PYTHONPATH=$PWD timeout 120 python3 bench/smoke.py --backend wgmma > "$OUT/smoke.txt" 2>&1
  rc=$?; grep -E "BAD|smoke:" "$OUT/smoke.txt"
  if [ $rc != 0 ]; then tail -30 "$OUT/smoke.txt"; echo "smoke failed: stopping"; exit 1; fi;;
suite)
  PYTHONPATH=$PWD timeout "${AB_SUITE_TIMEOUT:-240}" python3 -m pytest tests -q -n 4 -p no:cacheprovider \
    ${AB_SUITE_K:+-k "$AB_SUITE_K"} > "$OUT/pytest.txt" 2>&1
  echo "pytest exit: $?"; grep -E "^(FAILED|ERROR)" "$OUT/pytest.txt" | head -20; tail -1 "$OUT/pytest.txt";;
racecheck)
  PYTHONPATH=$PWD timeout 200 compute-sanitizer --tool racecheck python3 bench/sanitize_case.py --backend wgmma \
    > "$OUT/sanitize_racecheck.txt" 2>&1
  echo "racecheck exit $?: $(grep -E "RACECHECK SUMMARY|ERROR SUMMARY" "$OUT/sanitize_racecheck.txt" | tail -1)";;
esac; done
PYTHONPATH=$PWD timeout "${AB_TIMEOUT:-300}" python3 bench/ab_auto.py --old ab_old "$@" 2>&1 | tee "$OUT/ab_auto.txt"
