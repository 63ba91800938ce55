#!/usr/bin/env bash
# r4: the P.V wait between the row max and the exponentials (order_before_wait on the maxima) at 3 consumer
# warpgroups (working tree, "new") and everywhere (ab_amaxall), against main. Correctness of "new" first.
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false CUPY_CACHE_DIR=/tmp/cupy_cache PYTHONPATH=$PWD
nvidia-smi -q | grep -E "Serial Number" | head -1 | tee $OUT/r4_fingerprint.txt
timeout 200 python3 -m pytest -q -n 4 -p no:cacheprovider tests/test_gpu_attention.py -k "wgmma or auto or causal" > $OUT/r4_pytest.txt 2>&1; echo "pytest rc=$?"; grep -E "^(FAILED|ERROR)" $OUT/r4_pytest.txt | head; tail -1 $OUT/r4_pytest.txt
for dt in bf16 fp16; do
(cd bench && timeout 200 python3 ab_auto.py --old ../ab_main --old ../ab_amaxall --dims 64,128 --seqlens 1024,2048,4096 --dtype $dt) > $OUT/r4_ab_$dt.txt 2>&1; echo "ab $dt rc=$?"
grep -E "^d=" $OUT/r4_ab_$dt.txt
done
