#!/usr/bin/env bash
# r12: a fresh machine: which kind (3 stages against 4, kernel-only), then the full bench v3.19 (main b89a5e7).
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false CUPY_CACHE_DIR=/tmp/cupy_cache PYTHONPATH=$PWD
nvidia-smi -q | grep -E "Serial Number" | head -1 | tee $OUT/r12_fingerprint.txt
(cd bench && timeout 100 python3 ab_auto.py --old ../ab_prev --dims 64 --seqlens 1024 --dtype bf16) > $OUT/r12_ab_bf16.txt 2>&1; echo "ab rc=$?"; grep -E "^d=" $OUT/r12_ab_bf16.txt
t0=$(date +%s)
timeout 300 python3 -m cupyflash.bench --set standard gqa --peers torch-cudnn torch-flash jax-cudnn --out $OUT/full --no-plot > $OUT/r12_full_bench.txt 2>&1; echo "bench rc=$? in $(( $(date +%s) - t0 )) s"
grep -E "_s(1024|2048)_h32_d64_causal" $OUT/r12_full_bench.txt | grep TFLOP
