#!/usr/bin/env bash
# r10: a fresh machine. The d64 causal slice; if slow (s1024 < 0.97 x cuDNN): ncu at base clocks, the grid probe, and the
# persistent kernel against one CTA per block (hardware scheduling) at causal s1024/2048, kernel-only
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false CUPY_CACHE_DIR=/tmp/cupy_cache PYTHONPATH=$PWD
nvidia-smi -q | grep -E "Serial Number|GPU UUID" > $OUT/r10_fingerprint.txt; head -1 $OUT/r10_fingerprint.txt
python3 -m cupyflash.bench --set standard --dtype bf16 --match d64_causal --peers torch-cudnn --out $OUT/b --no-plot > $OUT/r10_bench.txt 2>&1
r=$(grep "b16_s1024_h32_d64_causal_bf16 " $OUT/r10_bench.txt | grep TFLOP | awk -F'|' '{print $6}' | tr -d ' ')
echo "slice: $(grep d64_causal $OUT/r10_bench.txt | grep TFLOP | awk -F'|' '{printf "%s ", $6}')  (s1024 $r)"
if awk "BEGIN{exit !($r < 0.97)}" || [ -n "${FORCE:-}" ]; then
  echo "slow machine: diagnostics"
  bash bench/profile_metrics.sh ours:--head-dim,64,--causal cudnn:--head-dim,64,--causal,--peer,cudnn > /dev/null 2>&1
  grep -E "gpu__time_duration|lts__t_sector_hit|issue_active|stalled_wait|long_scoreboard" $OUT/metrics_table.txt | cut -c1-160
  timeout 100 python3 ab_main/grid_probe.py 1024 2>&1 | grep "^d64" | tee $OUT/r10_grid.txt
  (cd bench && timeout 200 python3 tune_wgmma.py --dims 64 --seqlens 1024,2048 --only "192,128,3,False") 2>&1 | grep "causal=True" | sed 's/fa2=[ 0-9.]*//; s/table=.*//' | tee $OUT/r10_tune.txt
fi
