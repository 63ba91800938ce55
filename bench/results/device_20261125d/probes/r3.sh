#!/usr/bin/env bash
# r3: the P.V wait before the softmax (no order_before_wait) at 3 consumer warpgroups (working tree, "new")
# and everywhere (ab_naall), against main; d64 and d128, bf16 and fp16. Correctness of "new" first.
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false CUPY_CACHE_DIR=/tmp/cupy_cache PYTHONPATH=$PWD
nvidia-smi -q | grep -E "Serial Number" | head -1 | tee $OUT/r3_fingerprint.txt
timeout 200 python3 -m pytest -q -n 4 -p no:cacheprovider tests/test_gpu_attention.py -k "wgmma or auto or causal" > $OUT/r3_pytest.txt 2>&1; echo "pytest rc=$?"; grep -E "^(FAILED|ERROR)" $OUT/r3_pytest.txt | head; tail -1 $OUT/r3_pytest.txt
for dt in bf16 fp16; do
(cd bench && timeout 200 python3 ab_auto.py --old ../ab_main --old ../ab_naall --dims 64,128 --seqlens 1024,2048 --dtype $dt) > $OUT/r3_ab_$dt.txt 2>&1; echo "ab $dt rc=$?"
grep -E "^d=" $OUT/r3_ab_$dt.txt
done
