#!/usr/bin/env bash
# The tf32 fast mode on the device, one call (~4 minutes), each step logged under $OUT:
#   precompile  the variants below in parallel processes (CuPy's disk cache then serves them)
#   tests       tests/test_gpu_tf32.py (V^T pre-pass bit for bit; attention vs float64), the
#               suite's precision="fast" tests (tf32 under the length rule, the fp16 pass beyond) and
#               two fp16 wgmma cases (the 16-bit kernels after the Elem refactor; their SASS is
#               unchanged offline)
#   probe       bench/tf32_map_probe.py: q/k maps TFLOAT32 (shipped) vs FLOAT32 error
#   ab          bench/ab_tf32.py: fast-fp16 vs every tf32 candidate vs torch efficient fp32
#   The pytest log keeps -rfEs: FAILED lines and each failure's E lines are printed to stdout.
#   Step time limits (s): TF32_PRECOMPILE_S (60), TF32_PYTEST_S (110), 15 for the probe, TF32_AB_S (50).
#   device: bash bench/device_tf32.sh [ab_tf32.py arguments, e.g. --dims 64,128 --seqlens 1024,2048]
set -uo pipefail
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm --format=csv,noheader | tee "$OUT/env.txt"
VARIANTS="fp32tf32|fp32x1_hdim(64|128|256)_|simt_fp32_hdim(64|128)_|fp16_hdim64_bm192_bn128_st2_persist"
VARIANTS="$VARIANTS|fp16_hdim128_bm128_bn128_st2_pp_persist"
timeout "${TF32_PRECOMPILE_S:-60}" python3 bench/precompile.py --candidates --match "$VARIANTS" > "$OUT/precompile.txt" 2>&1
tail -1 "$OUT/precompile.txt"
timeout "${TF32_PYTEST_S:-110}" python3 -m pytest tests/test_gpu_tf32.py "tests/test_gpu_attention.py::test_float32_precision_fast" \
  "tests/test_gpu_attention.py::test_matrix" -k "tf32 or precision_fast or ((float16-wgmma-full-mha-64-1023x1024 \
  or float16-wgmma-full-mha-128-1023x1024) and not bfloat16)" -q -n 4 -p no:cacheprovider -rfEs \
  > "$OUT/pytest_tf32.txt" 2>&1
echo "pytest exit: $?"
# The failures' names (short summary, -rfE) and their assertions (each test's header + its E lines).
grep -E "^(FAILED|ERROR) " "$OUT/pytest_tf32.txt" | head -30
grep -E "^(_{3,} .+ _{3,}|E  )" "$OUT/pytest_tf32.txt" | grep -v -E "^_+ (test session starts|warnings summary)" | head -60
tail -1 "$OUT/pytest_tf32.txt"
timeout 15 python3 bench/tf32_map_probe.py 2>&1 | tee "$OUT/probe.txt"
timeout "${TF32_AB_S:-50}" python3 bench/ab_tf32.py "$@" 2>&1 | tee "$OUT/ab_tf32.txt"
