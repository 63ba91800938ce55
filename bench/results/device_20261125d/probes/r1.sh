#!/usr/bin/env bash
# r1: q read under the pending P.V at kv-once's item boundary (branch q-under-pv). Working tree = form 2
# (q loads under the P.V and the pending epilogue), ab_b1 = form 1 (q converted under the P.V), ab_main = main.
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false CUPY_CACHE_DIR=/tmp/cupy_cache PYTHONPATH=$PWD
nvidia-smi -q | grep -E "Serial Number" | head -1 | tee $OUT/r1_fingerprint.txt
timeout 200 python3 -m pytest -q -n 4 -p no:cacheprovider tests/test_gpu_tile_scales.py tests/test_gpu_attention.py -k "kv_once or (precision_fast and 128)" > $OUT/r1_pytest.txt 2>&1; echo "pytest rc=$?"; grep -E "^(FAILED|ERROR)" $OUT/r1_pytest.txt | head; tail -1 $OUT/r1_pytest.txt
for i in 1 2; do
  timeout 240 python3 bench/tune_split.py --fast --dims 128 --seqlens 1024,2048 --trees ab_main,ab_b1 > $OUT/r1_tune_split_$i.txt 2>&1; echo "ts rc=$?"
  grep -vE "^\s*$|warm" $OUT/r1_tune_split_$i.txt | tail -6
done
