#!/usr/bin/env bash
# r15: run 1's order on a fresh machine: the walk GPU tests (4 workers) first, then the d64 causal slice (and r10's diagnostics if slow)
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false CUPY_CACHE_DIR=/tmp/cupy_cache PYTHONPATH=$PWD
timeout 200 python3 -m pytest -q -p no:cacheprovider -n 4 tests/test_gpu_walk.py 2>&1 | tail -1
bash ab_main/r10.sh
