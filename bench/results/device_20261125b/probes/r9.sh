#!/usr/bin/env bash
# r9: fingerprint; the full bench (standard + gqa, all peers) on HEAD; if this machine reads d64 causal s1024 slow,
# the diagnostics of full_bench_cont.md's "Next": ncu at base clocks and the grid probe
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false CUPY_CACHE_DIR=/tmp/cupy_cache PYTHONPATH=$PWD
nvidia-smi -q | grep -E "Serial Number|GPU UUID" > $OUT/r9_fingerprint.txt; head -1 $OUT/r9_fingerprint.txt
timeout 420 python3 -m cupyflash.bench --set standard gqa --peers torch-cudnn torch-flash jax-cudnn --out $OUT --no-plot > $OUT/r9_full.txt 2>&1
echo "bench rc=$?"
r=$(grep "b16_s1024_h32_d64_causal_bf16 " $OUT/r9_full.txt | grep TFLOP | awk -F'|' '{print $8}' | tr -d ' ')
echo "d64 causal s1024 bf16 ratio: $r"
grep -E "^\| *standard|^\| *gqa" $OUT/r9_full.txt | grep TFLOP | awk -F'|' '$8+0 < 1.0 {print $2, $8}'
if awk "BEGIN{exit !($r < 0.97)}"; then
  echo "slow machine: diagnostics"
  bash bench/profile_metrics.sh ours:--head-dim,64,--causal cudnn:--head-dim,64,--causal,--peer,cudnn > /dev/null 2>&1
  grep -E "gpu__time_duration|lts__t_sector_hit|issue_active|stalled_wait|long_scoreboard" $OUT/metrics_table.txt | cut -c1-160
  timeout 100 python3 ab_main/grid_probe.py 1024 2>&1 | grep "^d64" | tee $OUT/r9_grid.txt
fi
