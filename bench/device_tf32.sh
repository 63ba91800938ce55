#!/usr/bin/env bash
# The tf32 fast mode on the device, one call (~4 minutes), each step logged under $OUT:
#   precompile  the variants below in parallel processes (CuPy's disk cache then serves them)
#   tests       tests/test_gpu_tf32.py (V^T pre-pass bit for bit; attention vs float64), the
#               suite's precision="fast" tests (tf32 up to 2048 keys, the fp16 pass beyond) and
#               two fp16 wgmma cases (the 16-bit kernels after the Elem refactor; their SASS is
#               unchanged offline)
#   probe       bench/tf32_map_probe.py: does a TFLOAT32 tensor map round q and k?
#   ab          bench/ab_tf32.py: fast-fp16 vs every tf32 candidate vs torch efficient fp32
#   device: bash bench/device_tf32.sh [ab_tf32.py arguments]
set -uo pipefail
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm --format=csv,noheader | tee "$OUT/env.txt"
VARIANTS="fp32tf32|fp32x1_hdim(64|128|256)_|simt_fp32_hdim(64|128)_|fp16_hdim64_bm192_bn128_st2_persist"
VARIANTS="$VARIANTS|fp16_hdim128_bm128_bn128_st2_pp_persist"
timeout 100 python3 bench/precompile.py --candidates --match "$VARIANTS" > "$OUT/precompile.txt" 2>&1
tail -1 "$OUT/precompile.txt"
timeout 150 python3 -m pytest tests/test_gpu_tf32.py "tests/test_gpu_attention.py::test_float32_precision_fast" \
  "tests/test_gpu_attention.py::test_matrix" -k "tf32 or precision_fast or ((float16-wgmma-full-mha-64-1023x1024 \
  or float16-wgmma-full-mha-128-1023x1024) and not bfloat16)" -q -n 4 -p no:cacheprovider -rs > "$OUT/pytest_tf32.txt" 2>&1
echo "pytest exit: $?"; grep -E "^(FAILED|ERROR)" "$OUT/pytest_tf32.txt" | head -20; tail -1 "$OUT/pytest_tf32.txt"
timeout 30 python3 bench/tf32_map_probe.py 2>&1 | tee "$OUT/probe.txt"
timeout 150 python3 bench/ab_tf32.py "$@" 2>&1 | tee "$OUT/ab_tf32.txt"
