#!/usr/bin/env bash
# Per-instruction stall samples of one launch of the dispatched kernel (ncu's
# source page, SASS): where the warps wait, not just how much.
#   device: bash bench/profile_source.sh [profile_launch.py arguments]
# Leaves under $OUT: ncu_source.csv.gz (every SASS instruction with its samples)
# and prints the top instructions (bench/ncu_source_top.py).
set -uo pipefail
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
rep=/tmp/prof_source
# Skip the first launches: they compile and warm the caches.
timeout 300 ncu --section SourceCounters --section WarpStateStats -k regex:flash_fwd -s 3 -c 1 -f -o "$rep" \
  python3 bench/profile_launch.py "$@" > "$OUT/ncu_profile.txt" 2>&1
echo "ncu exit $?"; tail -3 "$OUT/ncu_profile.txt"
ncu -i "$rep.ncu-rep" --page source --csv --print-source sass > /tmp/ncu_source.csv 2> "$OUT/ncu_source_err.txt"
echo "source page exit $? ($(wc -l < /tmp/ncu_source.csv) lines)"; head -3 "$OUT/ncu_source_err.txt"
gzip -c /tmp/ncu_source.csv > "$OUT/ncu_source.csv.gz"
python3 bench/ncu_source_top.py /tmp/ncu_source.csv | tee "$OUT/ncu_source_top.txt"
