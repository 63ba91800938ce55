#!/usr/bin/env bash
# r16: same GPU as r15 if still held (every d64 causal build slow there): ncu per-instruction stall samples of the
# dispatched bf16 build at d64 causal s1024; only two files left under $OUT.
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false CUPY_CACHE_DIR=/tmp/cupy_cache PYTHONPATH=$PWD
nvidia-smi -q | grep -E "Serial Number" | head -1
mkdir -p /tmp/o16; OUT=/tmp/o16 bash bench/profile_source.sh --head-dim 64 --causal --dtype bf16 > /tmp/o16/top.txt 2>&1
cp /tmp/o16/ncu_source.csv.gz $OUT/r16_ncu_source_bf16.csv.gz; cp /tmp/o16/top.txt $OUT/r16_top.txt; tail -25 /tmp/o16/top.txt
