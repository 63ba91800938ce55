#!/usr/bin/env bash
# r14: same machine as r12/r13 if still held: the fp16 d64 causal rows kernel-only (3 stages, 4 stages, one CTA per block).
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false CUPY_CACHE_DIR=/tmp/cupy_cache PYTHONPATH=$PWD
nvidia-smi -q | grep -E "Serial Number" | head -1 | tee $OUT/r14_fingerprint.txt
for dt in fp16 bf16; do
(cd bench && timeout 150 python3 tune_wgmma.py --dtype $dt --dims 64 --seqlens 1024,2048 --only "192,128,3,False,True;192,128,4,False,True;192,128,3,False,False") 2>&1 | grep "^d=.*causal=True" | sed 's/fa2=[ 0-9.]*//; s/table=.*//' | sed "s/^/$dt /" | tee -a $OUT/r14_tune.txt
done
