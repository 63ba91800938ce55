#!/usr/bin/env bash
# r7: fingerprint + the bench's d64 causal slice (is this machine slow?); then the persistent d64 tiles at causal s1024/2048
# (the 128-row pingpong now carries the epilogue under the next Q.K^T), boost and hot
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false CUPY_CACHE_DIR=/tmp/cupy_cache PYTHONPATH=$PWD
nvidia-smi -q | grep -E "Serial Number|GPU UUID" > $OUT/r7_fingerprint.txt; head -1 $OUT/r7_fingerprint.txt
row() { grep -E "$2" $1 | grep TFLOP | awk -F"|" "{split(\$2,a,\"_\"); printf \"%s%s/%s=%s \", a[2], \$4, \$5, \$6}" | tr -s " "; }
(cd abb_main && PYTHONPATH=$PWD timeout 200 python3 -m cupyflash.bench --set standard --dtype bf16 --match d64_causal --peers torch-cudnn --out $OUT/b --no-plot > $OUT/r7_bench.txt 2>&1)
echo "bench: $(row $OUT/r7_bench.txt d64_causal)"
for mode in "" "--hot"; do
(cd bench && timeout 250 python3 tune_wgmma.py --dims 64 --seqlens 1024,2048 --only "True)" $mode) 2>&1 | grep "causal=True" | sed 's/fa2=[ 0-9.]*//; s/table=.*//' | tee -a $OUT/r7_tune.txt
done
