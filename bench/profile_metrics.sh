#!/usr/bin/env bash
# Whole-kernel ncu metrics (pipes, instructions, issue, stalls) of one launch
# each of several kernels on the same bench shape, side by side: ours against
# cuDNN's, so that the difference in instructions per tile and in tensor-pipe
# time shows up as numbers (bench/ncu_metrics_table.py prints the table).
#   device: bash bench/profile_metrics.sh CASE [CASE ...]
#   CASE = NAME:profile_launch.py arguments joined by commas, e.g.
#          ours_d64:--head-dim,64  cudnn_d64:--head-dim,64,--peer,cudnn
# Leaves under $OUT: metrics_NAME.csv (ncu's raw page) and metrics_table.txt.
set -uo pipefail
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
# Our kernels are flash_fwd*; cuDNN's SDPA kernels hold sdpa/fmha/fprop in their names.
FILTER='regex:flash_fwd|sdpa|fmha|fprop|cudnn'
csvs=()
for case in "$@"; do
  name=${case%%:*}; args=${case#*:}; args=${args//,/ }
  rep=/tmp/metrics_$name
  # Skip the first launches: they compile, plan and warm the caches.
  timeout 240 ncu --section SpeedOfLight --section ComputeWorkloadAnalysis --section InstructionStats \
    --section WarpStateStats --section SchedulerStats --section LaunchStats --section MemoryWorkloadAnalysis \
    -k "$FILTER" -s 3 -c 1 -f -o "$rep" python3 bench/profile_launch.py $args > "$OUT/metrics_$name.log" 2>&1
  echo "$name: ncu exit $? ($(grep -m1 -E 'torch|flash_fwd|cupyflash' "$OUT/metrics_$name.log" | head -c 100))"
  ncu -i "$rep.ncu-rep" --page raw --csv > "$OUT/metrics_$name.csv" 2>> "$OUT/metrics_$name.log"
  csvs+=("$name=$OUT/metrics_$name.csv")
done
python3 bench/ncu_metrics_table.py "${csvs[@]}" | tee "$OUT/metrics_table.txt"
