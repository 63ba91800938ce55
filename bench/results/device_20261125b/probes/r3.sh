#!/usr/bin/env bash
# r3: the bench's Sampler on whole call / kernel-only / long samples, against cuDNN (d64 causal rows)
cd "$(dirname "$0")/.."
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 CUPY_CACHE_DIR=/tmp/cupy_cache
timeout 300 python3 ab_main/pace_probe.py b16_s1024_h32_d64_causal_bf16 b32_s512_h32_d64_causal_bf16 b8_s2048_h32_d64_causal_bf16 b16_s1024_h16_d128_causal_bf16 2>&1 | grep -v Warn | tee $OUT/r3_pace.txt
