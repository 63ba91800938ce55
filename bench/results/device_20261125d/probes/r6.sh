#!/usr/bin/env bash
# r6: full bench v3.19 on main (85b4476): the standard and gqa sets against every Hopper peer.
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false CUPY_CACHE_DIR=/tmp/cupy_cache PYTHONPATH=$PWD
nvidia-smi -q | grep -E "Serial Number" | head -1 | tee $OUT/r6_fingerprint.txt
t0=$(date +%s)
timeout 560 python3 -m cupyflash.bench --set standard gqa --peers torch-cudnn torch-flash jax-cudnn --out $OUT/full --no-plot > $OUT/r6_full_bench.txt 2>&1; echo "bench rc=$? in $(( $(date +%s) - t0 )) s"
grep -E "d64_causal|geomean|rows" $OUT/r6_full_bench.txt | tail -20
