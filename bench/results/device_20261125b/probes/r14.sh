#!/usr/bin/env bash
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1 CUPY_CACHE_DIR=/tmp/cupy_cache PYTHONPATH=$PWD
timeout 200 python3 ab_main/host_prof.py 2>&1 | grep -v "^$" | tee $OUT/r14_host_prof.txt | grep -E "===|tottime|\.py|built-in|method" | cut -c1-150 | head -70
