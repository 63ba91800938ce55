#!/usr/bin/env bash
# r5: machine fingerprint; bench d64 causal slice; persistent grid-size probe (kernel-only, boost and hot)
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false CUPY_CACHE_DIR=/tmp/cupy_cache
nvidia-smi -q | grep -E "Serial Number|GPU UUID|VBIOS|Bus Id  |Power Limit|Persistence|Compute Mode|Max Clocks|SM  |Memory  |Graphics  |Current Temp|Product Name|Pending|Retired|Remapp" | head -40 > $OUT/r5_fingerprint.txt
nvidia-smi --query-compute-apps=pid,name,used_memory --format=csv >> $OUT/r5_fingerprint.txt
grep -E "Serial|UUID" $OUT/r5_fingerprint.txt
row() { grep -E "$2" $1 | grep TFLOP | awk -F"|" "{split(\$2,a,\"_\"); printf \"%s%s/%s=%s \", a[2], \$4, \$5, \$6}" | tr -s " "; }
(cd abb_main && PYTHONPATH=$PWD timeout 200 python3 -m cupyflash.bench --set standard --dtype bf16 --match d64_causal --peers torch-cudnn --out $OUT/b --no-plot > $OUT/r5_bench.txt 2>&1)
echo "bench: $(row $OUT/r5_bench.txt d64_causal)"
PYTHONPATH=$PWD timeout 300 python3 ab_main/grid_probe.py 512,1024,2048 2>&1 | grep -v Warn | tee $OUT/r5_grid.txt
