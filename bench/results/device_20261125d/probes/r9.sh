#!/usr/bin/env bash
# r9: main b89a5e7 (4 K/V stages at d64 causal + kExpsAfterWait): GPU suite, kernel A/B against 85b4476 (3 stages),
# and the full bench v3.19.
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false CUPY_CACHE_DIR=/tmp/cupy_cache PYTHONPATH=$PWD
nvidia-smi -q | grep -E "Serial Number" | head -1 | tee $OUT/r9_fingerprint.txt
timeout 240 python3 -m pytest -q -n 4 -p no:cacheprovider tests/test_gpu_attention.py > $OUT/r9a_pytest_gpu_attention.txt 2>&1; echo "pytest a rc=$?"; grep -E "^(FAILED|ERROR)" $OUT/r9a_pytest_gpu_attention.txt | head; tail -1 $OUT/r9a_pytest_gpu_attention.txt
timeout 200 python3 -m pytest -q -n 4 -p no:cacheprovider tests --ignore=tests/test_gpu_attention.py --ignore=tests/test_offline_compile.py > $OUT/r9b_pytest_rest.txt 2>&1; echo "pytest b rc=$?"; grep -E "^(FAILED|ERROR)" $OUT/r9b_pytest_rest.txt | head; tail -1 $OUT/r9b_pytest_rest.txt
(cd bench && timeout 120 python3 ab_auto.py --old ../ab_prev --dims 64 --seqlens 512,1024,2048 --dtype bf16) > $OUT/r9_ab_bf16.txt 2>&1; echo "ab rc=$?"; grep -E "^d=" $OUT/r9_ab_bf16.txt
t0=$(date +%s)
timeout 300 python3 -m cupyflash.bench --set standard gqa --peers torch-cudnn torch-flash jax-cudnn --out $OUT/full --no-plot > $OUT/r9_full_bench.txt 2>&1; echo "bench rc=$? in $(( $(date +%s) - t0 )) s"
grep -E "_s(1024|2048)_h32_d64_causal" $OUT/r9_full_bench.txt | grep TFLOP
