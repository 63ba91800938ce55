#!/usr/bin/env bash
# r17: a fresh GPU: is the bf16 d64 causal build fast here? Then the same per-instruction stall samples as r16.
# dispatched bf16 build at d64 causal s1024; only two files left under $OUT.
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false CUPY_CACHE_DIR=/tmp/cupy_cache PYTHONPATH=$PWD
nvidia-smi -q | grep -E "Serial Number" | head -1
(cd bench && timeout 100 python3 tune_wgmma.py --dtype bf16 --dims 64 --seqlens 1024 --only "192,128,4,False,True" > /tmp/t17.txt 2>&1); grep "^d=.*causal=True" /tmp/t17.txt | sed "s/fa2=[ 0-9.]*//; s/table=.*//" | tee $OUT/r17_tune.txt
mkdir -p /tmp/o17; OUT=/tmp/o17 bash bench/profile_source.sh --head-dim 64 --causal --dtype bf16 > /tmp/o17/top.txt 2>&1
cp /tmp/o17/ncu_source.csv.gz $OUT/r17_ncu_source_bf16.csv.gz; cp /tmp/o17/top.txt $OUT/r17_top.txt; tail -25 /tmp/o17/top.txt
