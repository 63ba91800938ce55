#!/usr/bin/env bash
# r8: a fresh machine: is it fast? Then 4 K/V stages against 3 for the d64 192-row persistent tile (kernel-only,
# boost and hot), and the GPU tests of the 4-stage candidate.
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false CUPY_CACHE_DIR=/tmp/cupy_cache PYTHONPATH=$PWD
nvidia-smi -q | grep -E "Serial Number" | head -1 | tee $OUT/r8_fingerprint.txt
python3 -m pytest --collect-only -q -p no:cacheprovider tests/test_gpu_attention.py -k test_wgmma_candidates | grep "192,128,4,False,True" > /tmp/ids.txt
timeout 100 xargs -d '\n' python3 -m pytest -q -n 4 -p no:cacheprovider < /tmp/ids.txt > $OUT/r8_pytest.txt 2>&1; echo "pytest rc=$?"; tail -1 $OUT/r8_pytest.txt
for hot in "" "--hot"; do
(cd bench && timeout 200 python3 tune_wgmma.py $hot --dims 64 --seqlens 512,1024,2048,4096 --only "192,128,3,False,True;192,128,4,False,True") 2>&1 | grep "^d=" | sed 's/fa2=[ 0-9.]*//; s/table=.*//' | tee -a $OUT/r8_tune$hot.txt
done
