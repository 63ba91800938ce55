#!/usr/bin/env bash
# r6: fingerprint; the bench's d64 causal slice; ncu metrics of ours and cuDNN at d64 causal s1024 (base clocks and free clocks);
# the grid probe when the machine reads slow
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false CUPY_CACHE_DIR=/tmp/cupy_cache
nvidia-smi -q | grep -E "Serial Number|GPU UUID|VBIOS|Bus Id  |Power Limit|Max Clocks|SM  |Memory  |Current Temp|Remapp" | head -30 > $OUT/r6_fingerprint.txt
grep -E "Serial" $OUT/r6_fingerprint.txt | head -1
row() { grep -E "$2" $1 | grep TFLOP | awk -F"|" "{split(\$2,a,\"_\"); printf \"%s%s/%s=%s \", a[2], \$4, \$5, \$6}" | tr -s " "; }
(cd abb_main && PYTHONPATH=$PWD timeout 200 python3 -m cupyflash.bench --set standard --dtype bf16 --match d64_causal --peers torch-cudnn --out $OUT/b --no-plot > $OUT/r6_bench.txt 2>&1)
echo "bench: $(row $OUT/r6_bench.txt d64_causal)"
bash bench/profile_metrics.sh ours:--head-dim,64,--causal cudnn:--head-dim,64,--causal,--peer,cudnn > /dev/null 2>&1
grep -E "Kernel Name|gpu__time_duration|cycles_elapsed.avg.per_second|dram__throughput|lts__t_sector_hit|dram__bytes|inst_executed.sum |issue_active" $OUT/metrics_table.txt | cut -c1-160
sed -i 's/--section SpeedOfLight/--clock-control none --section SpeedOfLight/' bench/profile_metrics.sh
mkdir -p $OUT/free; OUT=$OUT/free bash bench/profile_metrics.sh ours:--head-dim,64,--causal cudnn:--head-dim,64,--causal,--peer,cudnn > /dev/null 2>&1
echo "free clocks:"; grep -E "gpu__time_duration|cycles_elapsed.avg.per_second|dram__throughput|lts__t_sector_hit" $OUT/free/metrics_table.txt | cut -c1-160
PYTHONPATH=$PWD timeout 200 python3 ab_main/grid_probe.py 1024 2>&1 | grep -v Warn | grep "^d64" | tee $OUT/r6_grid.txt
