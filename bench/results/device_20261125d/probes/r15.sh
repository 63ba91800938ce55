#!/usr/bin/env bash
# r15: a fresh GPU: which d64 causal builds run slow (fp16/bf16, 4 stages, kernel-only); then ncu per-instruction
# stall samples and whole-kernel metrics of the dispatched fp16 and bf16 builds at d64 causal s1024, for a slow/fast pair.
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false CUPY_CACHE_DIR=/tmp/cupy_cache PYTHONPATH=$PWD
nvidia-smi -q | grep -E "Serial Number" | head -1 | tee $OUT/r15_fingerprint.txt
for dt in fp16 bf16; do
(cd bench && timeout 100 python3 tune_wgmma.py --dtype $dt --dims 64 --seqlens 1024 --only "192,128,3,False,True;192,128,4,False,True") 2>&1 | grep "^d=.*causal=True" | sed 's/fa2=[ 0-9.]*//; s/table=.*//' | sed "s/^/$dt /" | tee -a $OUT/r15_tune.txt
done
for dt in fp16 bf16; do
  bash bench/profile_source.sh --head-dim 64 --causal --dtype $dt > $OUT/r15_src_top_$dt.txt 2>&1
  mv $OUT/ncu_source.csv.gz $OUT/r15_ncu_source_$dt.csv.gz; mv $OUT/ncu_source_top.txt $OUT/r15_ncu_source_top_$dt.txt 2>/dev/null
  echo "$dt source profile: $(grep -c '' $OUT/r15_src_top_$dt.txt) lines"
done
bash bench/profile_metrics.sh ours_fp16:--head-dim,64,--causal,--dtype,fp16 ours_bf16:--head-dim,64,--causal,--dtype,bf16 > /dev/null 2>&1
grep -E "gpu__time_duration|long_scoreboard|stalled_wait|lts__t_sector_hit|dram__bytes" $OUT/metrics_table.txt | cut -c1-150
