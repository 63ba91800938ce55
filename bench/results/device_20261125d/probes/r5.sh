#!/usr/bin/env bash
# r5: kExpsAfterWait (branch exps-after-wait, final form: the 16-bit rotated twins only). Whole GPU suite,
# then the kernel-only A/B against main at d64, then the bench's d64 causal slice.
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false CUPY_CACHE_DIR=/tmp/cupy_cache PYTHONPATH=$PWD
nvidia-smi -q | grep -E "Serial Number" | head -1 | tee $OUT/r5_fingerprint.txt
timeout 240 python3 -m pytest -q -n 4 -p no:cacheprovider tests/test_gpu_attention.py > $OUT/r5a_pytest_gpu_attention.txt 2>&1; echo "pytest a rc=$?"; grep -E "^(FAILED|ERROR)" $OUT/r5a_pytest_gpu_attention.txt | head; tail -1 $OUT/r5a_pytest_gpu_attention.txt
timeout 200 python3 -m pytest -q -n 4 -p no:cacheprovider tests --ignore=tests/test_gpu_attention.py --ignore=tests/test_offline_compile.py > $OUT/r5b_pytest_rest.txt 2>&1; echo "pytest b rc=$?"; grep -E "^(FAILED|ERROR)" $OUT/r5b_pytest_rest.txt | head; tail -1 $OUT/r5b_pytest_rest.txt
for dt in bf16 fp16; do
(cd bench && timeout 150 python3 ab_auto.py --old ../ab_main --dims 64 --seqlens 512,1024,2048,4096 --dtype $dt) > $OUT/r5_ab_$dt.txt 2>&1; echo "ab $dt rc=$?"
grep -E "^d=" $OUT/r5_ab_$dt.txt
done
timeout 100 python3 -m cupyflash.bench --set standard --match "d64_causal" --peers torch-cudnn --out $OUT/b_new --no-plot > $OUT/r5_bench_d64c.txt 2>&1; echo "bench rc=$?"
grep -E "s1024|s2048" $OUT/r5_bench_d64c.txt | grep TFLOP
