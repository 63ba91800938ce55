#!/usr/bin/env bash
# r1 (26th session): the d64 causal slow mode. The bench's d64 bf16 slice (rows 1-24 of r10's run),
# main's kernels against table-ahead's, alternated, each in a fresh process with its own cache.
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,temperature.gpu,power.draw,power.limit --format=csv,noheader | tee $OUT/r1_env.txt
lscpu | grep -E "Model name|^CPU\(s\)|MHz" | tee -a $OUT/r1_env.txt
(cd abb_ahead && PYTHONPATH=$PWD timeout 200 python3 -m pytest -q -p no:cacheprovider -n 4 tests/test_gpu_walk.py > $OUT/r1_ahead_walk.txt 2>&1; echo "ahead walk tests: $(tail -1 $OUT/r1_ahead_walk.txt)")
row() { grep -E "$2" $OUT/r1_$1.txt | grep TFLOP | awk -F"|" "{split(\$2,a,\"_\"); printf \"%s%s/%s=%s \", a[2], \$4, \$5, \$6}" | tr -s " "; }
for t in main ahead ahead main main ahead causalonly; do
  n=$((${n:-0}+1)); tree=$t; match=d64
  [ $t = causalonly ] && { tree=main; match=d64_causal; }
  s0=$(date +%s)
  (cd abb_$tree && PYTHONPATH=$PWD CUPY_CACHE_DIR=/tmp/cc_$tree timeout 200 python3 -m cupyflash.bench --set standard --dtype bf16 --match $match --peers torch-cudnn --out $OUT/b$n$t --no-plot > $OUT/r1_$n$t.txt 2>&1)
  echo "$n $t ($(( $(date +%s)-s0 )) s): causal $(row $n$t 'd64_causal') | full $(row $n$t 'd64_full' )"
done
