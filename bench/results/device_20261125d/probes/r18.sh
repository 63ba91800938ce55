#!/usr/bin/env bash
# r18: same GPU as r17c if held (bf16 d64 causal build slow): temperatures, clocks and throttle reasons, then the
# fp16 and bf16 builds (4 stages) kernel-only, then the temperatures again.
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false CUPY_CACHE_DIR=/tmp/cupy_cache PYTHONPATH=$PWD
nvidia-smi -q -d TEMPERATURE,PERFORMANCE,CLOCK,POWER > $OUT/r18_smi_before.txt 2>&1; grep -iE "Serial|GPU Current Temp|Memory Current Temp|Slowdown|Thermal|Power Draw" $OUT/r18_smi_before.txt | head -12
for dt in fp16 bf16; do
(cd bench && timeout 100 python3 tune_wgmma.py --dtype $dt --dims 64 --seqlens 1024 --only "192,128,4,False,True" > /tmp/t18.txt 2>&1); grep "^d=.*causal=True" /tmp/t18.txt | sed "s/fa2=[ 0-9.]*//; s/table=.*//; s/^/$dt /" | tee -a $OUT/r18_tune.txt
done
nvidia-smi -q -d TEMPERATURE > $OUT/r18_smi_after.txt 2>&1; grep -iE "GPU Current Temp|Memory Current Temp" $OUT/r18_smi_after.txt
