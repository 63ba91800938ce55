#!/usr/bin/env bash
# r8: fingerprint + d64 causal slice; the GPU suite on HEAD (offline-compile files excluded: CI runs them)
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false CUPY_CACHE_DIR=/tmp/cupy_cache PYTHONPATH=$PWD
nvidia-smi -q | grep -E "Serial Number|GPU UUID" > $OUT/r8_fingerprint.txt; head -1 $OUT/r8_fingerprint.txt
row() { grep -E "$2" $1 | grep TFLOP | awk -F"|" "{split(\$2,a,\"_\"); printf \"%s%s/%s=%s \", a[2], \$4, \$5, \$6}" | tr -s " "; }
python3 -m cupyflash.bench --set standard --dtype bf16 --match d64_causal --peers torch-cudnn --out $OUT/b --no-plot > $OUT/r8_bench.txt 2>&1
echo "bench: $(row $OUT/r8_bench.txt d64_causal)"
export RUN=r8a; STEPS="pytest" PT_FILES="tests/test_gpu_attention.py" PT_TIMEOUT=240 bash devrun.sh 2>&1 | grep -E "pytest|passed|failed|FAILED|ERROR"
export RUN=r8b; STEPS="pytest" PT_FILES="tests --ignore=tests/test_gpu_attention.py --ignore=tests/test_offline_compile.py --ignore=tests/test_bench_offline.py -rf" PT_TIMEOUT=200 bash devrun.sh 2>&1 | grep -E "pytest|passed|failed|FAILED|ERROR"
