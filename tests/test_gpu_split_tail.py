"""GPU: the split tail of the persistent Hopper walk (cuda_src/block_order.h,
split_tail.h). Unmasked 16-bit calls whose query blocks do not fill whole waves of
the grid share their last blocks' key tiles evenly over the CTAs; a block cut
between two CTAs is finished by one of them from the other's partial O and row
state. Each case is one the dispatch splits (asserted), checked against float64,
LSE included, with odd key counts (a last key tile of one key), GQA and padded
head dims, on the 192-row tiles of width 64 and the 128-row split-tail variant of
width 128 (from 4096 keys)."""

from __future__ import annotations

import zlib

import pytest

import cupyflash

from gpu_checks import check, poisoned, require_backend
from test_gpu_attention import gpu_randn

pytestmark = pytest.mark.gpu

# (dtype, d, sq, sk, hq, hkv, batch): on 132 SMs, items % 132 != 0 and items > 132.
CASES = [
    ("float16", 64, 1000, 777, 8, 2, 5),      # 240 blocks: 108 left over, 7 key tiles each
    ("bfloat16", 64, 1024, 1024, 32, 8, 2),   # 384 blocks: the bench's row shape, smaller batch
    ("float16", 48, 500, 129, 40, 40, 2),     # 240 blocks, all in the tail; the last key tile holds one key
    ("bfloat16", 64, 300, 100, 80, 8, 2),     # one key tile per block: no block is cut
    ("bfloat16", 64, 1900, 1500, 12, 4, 2),   # 240 blocks, 12 key tiles each
    ("float16", 40, 1000, 2049, 28, 7, 3),    # a padded width; 17 key tiles
    ("bfloat16", 128, 4096, 4096, 9, 3, 1),   # 128-row blocks in their split-tail variant: 288, 32 key tiles
    ("float16", 120, 4500, 4099, 8, 8, 1),    # the same at a padded width: 288 blocks, a last tile of 3 keys
]


@pytest.mark.parametrize("dtype,d,sq,sk,hq,hkv,batch", CASES, ids=[f"{c[0]}-d{c[1]}-{c[2]}x{c[3]}" for c in CASES])
def test_split_tail(dtype, d, sq, sk, hq, hkv, batch):
    require_backend("wgmma")
    seed = zlib.crc32(repr(("split-tail", dtype, d, sq, sk)).encode()) % 2**31
    q, k, v = (gpu_randn((batch, s, h, d), dtype, seed + i) for i, (s, h) in enumerate(((sq, hq), (sk, hkv), (sk, hkv))))
    plan = cupyflash.explain(q, k, v)
    if plan.grid[0] != 132:
        pytest.skip(f"the cases are sized for 132 SMs; this GPU's persistent grid is {plan.grid[0]}")
    assert plan.split_tail[0] > 0 and "split tail" in str(plan)  # the case exercises what it names
    out = poisoned((batch, sq, hq, d), dtype)
    res, lse = cupyflash.attention(q, k, v, out=out, return_lse=True)
    assert res is out
    check(out, lse, q, k, v, causal=False, alignment="bottom_right", dtype=dtype)
    # Run twice: the flags are zeroed per call, so a second call must not see the first's.
    out2 = poisoned((batch, sq, hq, d), dtype)
    cupyflash.attention(q, k, v, out=out2)
    assert bool((out2 == out).all())
