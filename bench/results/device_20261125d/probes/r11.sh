#!/usr/bin/env bash
# r11: a fresh machine: which kind (3 stages against 4, kernel-only), sanitizers on the shipped d64 causal twin
# (4 stages, kExpsAfterWait), then the full bench v3.19 again.
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false CUPY_CACHE_DIR=/tmp/cupy_cache PYTHONPATH=$PWD
nvidia-smi -q | grep -E "Serial Number" | head -1 | tee $OUT/r11_fingerprint.txt
(cd bench && timeout 100 python3 ab_auto.py --old ../ab_prev --dims 64 --seqlens 1024,2048 --dtype bf16) > $OUT/r11_ab_bf16.txt 2>&1; echo "ab rc=$?"; grep -E "^d=" $OUT/r11_ab_bf16.txt
for tool in memcheck racecheck; do
  timeout 150 compute-sanitizer --tool $tool python3 bench/sanitize_case.py --dims 64 --seqlen 1024 --heads 264 > $OUT/r11_$tool.txt 2>&1; echo "$tool rc=$?: $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' $OUT/r11_$tool.txt | head -2 | tr '\n' ' ')"
done
t0=$(date +%s)
timeout 300 python3 -m cupyflash.bench --set standard gqa --peers torch-cudnn torch-flash jax-cudnn --out $OUT/full --no-plot > $OUT/r11_full_bench.txt 2>&1; echo "bench rc=$? in $(( $(date +%s) - t0 )) s"
grep -E "_s(1024|2048)_h32_d64_causal" $OUT/r11_full_bench.txt | grep TFLOP
