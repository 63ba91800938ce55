#!/usr/bin/env bash
# r2: dynamic walk variants, kernel-only A/B: dyn (2 slots, memset), rs (ring with the static table), dsr (self-reset counter), s4 (4 slots)
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false CUPY_CACHE_DIR=/tmp/cupy_cache PYTHONPATH=$PWD
nvidia-smi -q | grep -E "Serial Number" | head -1 | tee $OUT/r2_fingerprint.txt
(cd bench && timeout 400 python3 ab_auto.py --old ../ab_main --old ../ab_dyn --old ../ab_rs --old ../ab_dsr --old ../ab_s4 --dims 64,128 --seqlens 1024,2048) > $OUT/r2_ab.txt 2>&1; echo "ab rc=$?"
grep -E "causal|WRONG|Error" $OUT/r2_ab.txt | tail -14
