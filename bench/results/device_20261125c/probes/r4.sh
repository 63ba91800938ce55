#!/usr/bin/env bash
# r4: half-width Q.K^T on the half-dead first tile of the 192-row walk-table kernel (branch half-first)
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false CUPY_CACHE_DIR=/tmp/cupy_cache PYTHONPATH=$PWD
nvidia-smi -q | grep -E "Serial Number" | head -1 | tee $OUT/r4_fingerprint.txt
timeout 200 python3 -m pytest -q -n 4 -p no:cacheprovider tests/test_gpu_walk.py tests/test_gpu_attention.py -k "causal or walk" > $OUT/r4_pytest.txt 2>&1; echo "pytest rc=$?"; grep -E "^(FAILED|ERROR)" $OUT/r4_pytest.txt | head; tail -1 $OUT/r4_pytest.txt
for dt in bf16 fp16; do
(cd bench && timeout 200 python3 ab_auto.py --old ../ab_main --old ../ab_half --dims 64 --seqlens 512,1024,2048 --dtype $dt) > $OUT/r4_ab_$dt.txt 2>&1; echo "ab $dt rc=$?"
grep -E "causal|WRONG|Error" $OUT/r4_ab_$dt.txt | tail -6
done
