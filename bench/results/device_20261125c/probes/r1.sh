#!/usr/bin/env bash
# r1: dynamic causal walk (branch dyn-walk). GPU tests of the walk-table variants, kernel-only A/B, bench slices.
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false CUPY_CACHE_DIR=/tmp/cupy_cache PYTHONPATH=$PWD
nvidia-smi -q | grep -E "Serial Number" | head -1 | tee $OUT/r1_fingerprint.txt
timeout 240 python3 -m pytest -q -n 4 -p no:cacheprovider tests/test_gpu_walk.py tests/test_gpu_attention.py -k "causal or walk" > $OUT/r1_pytest.txt 2>&1; echo "pytest rc=$?"; grep -E "^(FAILED|ERROR)" $OUT/r1_pytest.txt | head; tail -1 $OUT/r1_pytest.txt
(cd bench && timeout 200 python3 ab_auto.py --old ../ab_main --dims 64,128 --seqlens 512,1024,2048) > $OUT/r1_ab.txt 2>&1; echo "ab rc=$?"
for t in main new main new; do
  (cd abb_$t && PYTHONPATH=$PWD timeout 60 python3 -m cupyflash.bench --set standard --dtype bf16 --match "d64_causal|d128_causal" --peers torch-cudnn --out $OUT/b_$t --no-plot > $OUT/r1_bench_$t.txt 2>&1)
  echo "$t: $(grep _causal_ $OUT/r1_bench_$t.txt | grep TFLOP | awk -F'|' '{printf "%s ", $6}')"
done
grep -E "causal|full" $OUT/r1_ab.txt | tail -14
