#!/usr/bin/env bash
# r4: on one machine, the bench's d64 slice (main) and then the pace probe, to see whether the slow mode is the machine's
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
row() { grep -E "$2" $1 | grep TFLOP | awk -F"|" "{split(\$2,a,\"_\"); printf \"%s%s/%s=%s \", a[2], \$4, \$5, \$6}" | tr -s " "; }
for i in 1 2; do
(cd abb_main && PYTHONPATH=$PWD CUPY_CACHE_DIR=/tmp/cupy_cache timeout 200 python3 -m cupyflash.bench --set standard --dtype bf16 --match d64 --peers torch-cudnn --out $OUT/b$i --no-plot > $OUT/r4_bench$i.txt 2>&1)
echo "bench $i: causal $(row $OUT/r4_bench$i.txt d64_causal)"
done
PYTHONPATH=$PWD CUPY_CACHE_DIR=/tmp/cupy_cache timeout 200 python3 ab_main/pace_probe.py b16_s1024_h32_d64_causal_bf16 b32_s512_h32_d64_causal_bf16 2>&1 | grep -v Warn | tee $OUT/r4_pace.txt
