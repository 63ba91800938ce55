#!/usr/bin/env bash
# r7: the slow machine of r6/r10 (if still held): 4 K/V stages for the d64 192-row persistent tile against 3, at causal s1024-4096.
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false CUPY_CACHE_DIR=/tmp/cupy_cache PYTHONPATH=$PWD
nvidia-smi -q | grep -E "Serial Number" | head -1 | tee $OUT/r7_fingerprint.txt
(cd bench && timeout 300 python3 tune_wgmma.py --dims 64 --seqlens 1024,2048 --only "192,128,3,False,True;192,128,4,False,True;192,128,3,False,False") 2>&1 | grep "causal" | sed 's/fa2=[ 0-9.]*//; s/table=.*//' | tee $OUT/r7_tune.txt
