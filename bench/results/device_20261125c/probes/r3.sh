#!/usr/bin/env bash
# r3: the dynamic walk claimed just in time by the TMA thread (jit), against main and the ring with the static table (rs)
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false CUPY_CACHE_DIR=/tmp/cupy_cache PYTHONPATH=$PWD
nvidia-smi -q | grep -E "Serial Number" | head -1 | tee $OUT/r3_fingerprint.txt
(cd bench && timeout 400 python3 ab_auto.py --old ../ab_main --old ../ab_rs --old ../ab_jit --dims 64,128 --seqlens 1024,2048) > $OUT/r3_ab.txt 2>&1; echo "ab rc=$?"
grep -E "causal|WRONG|Error" $OUT/r3_ab.txt | tail -14
