#!/usr/bin/env bash
# Verification runs on the device machine, one per call (each fits the 10-minute limit):
#   bash bench/device_full.sh suite   # precompile every variant, then the whole GPU suite
#   bash bench/device_full.sh bench   # the full bench: standard gqa fp32 fp64 decode
# Logs and results land under $OUT (results packed into one tarball).
set -uo pipefail
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm --format=csv | tee "$OUT/env.txt"
python3 -c "import cupy, torch; print('cupy', cupy.__version__, 'nvrtc', cupy.cuda.nvrtc.getVersion(), 'torch', torch.__version__, 'cudnn', torch.backends.cudnn.version())" | tee -a "$OUT/env.txt"
python3 bench/precompile.py > "$OUT/precompile.txt" 2>&1; tail -1 "$OUT/precompile.txt"
case "${1:-suite}" in
suite)
  timeout "${2:-480}" python3 -m pytest tests -q -n 4 -p no:cacheprovider > "$OUT/pytest.txt" 2>&1
  echo "pytest exit: $?"; grep -E "^(FAILED|ERROR)" "$OUT/pytest.txt" | head -30; tail -3 "$OUT/pytest.txt";;
bench)
  mkdir -p "$OUT/bench"
  timeout "${2:-540}" python3 -m cupyflash.bench --set standard gqa fp32 fp64 decode --out "$OUT/bench" > "$OUT/bench.txt" 2> "$OUT/bench_err.txt"
  echo "bench exit: $?"; (cd "$OUT" && tar czf bench_results.tgz bench && rm -rf bench); tail -5 "$OUT/bench_err.txt"; cat "$OUT/bench.txt";;
esac
