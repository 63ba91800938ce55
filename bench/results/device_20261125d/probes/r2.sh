#!/usr/bin/env bash
# r2: where the d64 192-row softmax's time goes: controls that drop the exponentials' MUFU (cmufu),
# the row sums' FADDs (csum), the row max's FMNMX chains (cmax), all three (call). Wrong on purpose.
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false CUPY_CACHE_DIR=/tmp/cupy_cache PYTHONPATH=$PWD
nvidia-smi -q | grep -E "Serial Number" | head -1 | tee $OUT/r2_fingerprint.txt
(cd bench && timeout 400 python3 ab_auto.py --old ../ab_main --old ../ab_cmufu --old ../ab_csum --old ../ab_cmax --old ../ab_call \
   --time-wrong cmufu --time-wrong csum --time-wrong cmax --time-wrong call --dims 64 --seqlens 1024,2048) > $OUT/r2_ab.txt 2>&1; echo "ab rc=$?"
grep -vE "WRONG-TIMED|^\s*$" $OUT/r2_ab.txt | tail -8
