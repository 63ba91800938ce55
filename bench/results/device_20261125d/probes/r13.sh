#!/usr/bin/env bash
# r13: is the slow d64 causal reading per process? The bench's d64 causal slice, fp16 and bf16 alternately,
# each in a fresh process, 4 times each (main b89a5e7).
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false CUPY_CACHE_DIR=/tmp/cupy_cache PYTHONPATH=$PWD
nvidia-smi -q | grep -E "Serial Number" | head -1 | tee $OUT/r13_fingerprint.txt
for i in 1 2 3 4; do for dt in fp16 bf16; do
  timeout 60 python3 -m cupyflash.bench --set standard --dtype $dt --match "d64_causal" --peers torch-cudnn --out $OUT/b_${dt}_$i --no-plot > $OUT/r13_${dt}_$i.txt 2>&1
  echo "$i $dt: $(grep -E 's(512|1024|2048)_h32_d64_causal' $OUT/r13_${dt}_$i.txt | grep TFLOP | awk -F'|' '{printf "%s/%s=%s  ", $4, $5, $6}')"
done; done | tee $OUT/r13_summary.txt
