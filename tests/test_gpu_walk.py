"""GPU correctness of the causal walk laid out on the host (cupyflash/_walk.py):
persistent Hopper calls with more query blocks than CTAs, each CTA reading its
items from the walk table. One case per kernel family that walks a table (the
192-row tiles (their warpgroups' rotated chunks), the 128-row turns and cross-item tiles, the
float32 fast kernels converting k and v once or q per item, tf32), each first
asserting that its plan takes the table, so that a change to the cost model cannot
leave these tests checking the fold instead. Every block must be computed exactly
once: a block left out is NaN (the output is poisoned), one computed twice or by
the wrong (batch, head) is wrong against float64."""

from __future__ import annotations

import math
import zlib

import pytest

import cupyflash

from gpu_checks import check, poisoned, require_backend
from test_gpu_attention import FAST_FP32_BOUND, gpu_randn

pytestmark = pytest.mark.gpu

TABLE_REASON = "to the CTA free first"  # the list schedule, not the fold laid out
# (dtype, precision, head dim, batch, query heads, KV heads, seqlen_q, seqlen_k, alignment)
CASES = [
    # 192 rows: rotated chunks (flash_fwd_wgmma.cuh, kRotate); GQA; top-left diagonals that cut a
    # chunk mid-tile, more queries than keys, and fewer
    ("bfloat16", "highest", 64, 2, 72, 72, 1024, 1024, "bottom_right"),
    ("float16", "highest", 64, 1, 40, 8, 2000, 2000, "bottom_right"),
    ("bfloat16", "highest", 64, 3, 40, 10, 1777, 1500, "top_left"),
    ("float16", "highest", 64, 2, 70, 70, 1300, 2900, "bottom_right"),
    ("bfloat16", "highest", 128, 2, 40, 40, 1000, 1000, "top_left"),     # 128 rows, turns
    ("float16", "highest", 128, 1, 24, 24, 2048, 2048, "bottom_right"),  # 128 rows, cross-item
    ("float32", "fast", 128, 2, 40, 20, 1100, 1100, "bottom_right"),     # k, v converted once
    ("float32", "fast", 64, 2, 72, 72, 1024, 1024, "bottom_right"),      # q converted per item
    ("float32", "tf32", 64, 2, 72, 72, 1024, 1024, "bottom_right"),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: "_".join(map(str, c)))
def test_walk_table_computes_every_block_once(case):
    import cupy as cp

    from gpu_reference import attention_ref

    require_backend("wgmma")
    dtype, precision, d, batch, hq, hkv, sq, sk, alignment = case
    seed = zlib.crc32(repr(case).encode()) % 2**31
    q = gpu_randn((batch, sq, hq, d), dtype, seed)
    k = gpu_randn((batch, sk, hkv, d), dtype, seed + 1)
    v = gpu_randn((batch, sk, hkv, d), dtype, seed + 2)
    plan = cupyflash.explain(q, k, v, causal=True, causal_alignment=alignment, precision=precision)
    assert any(TABLE_REASON in r for r in plan.reasons), plan.describe()
    out = poisoned((batch, sq, hq, d), dtype)
    for _ in range(2):  # the second call finds the table uploaded
        res, lse = cupyflash.attention(q, k, v, causal=True, causal_alignment=alignment, out=out,
                                       return_lse=True, precision=precision)
        assert res is out
        if dtype != "float32":
            check(out, lse, q, k, v, causal=True, alignment=alignment, dtype=dtype)
            continue
        offset = sk - sq if alignment == "bottom_right" else 0
        ref, _ = attention_ref(q, k, v, causal=True, offset=offset, scale=1 / math.sqrt(d))
        assert not cp.isnan(res).any()
        rel = float(cp.linalg.norm(res.astype(cp.float64) - ref) / float(cp.linalg.norm(ref)))
        assert rel <= FAST_FP32_BOUND, rel


def test_walk_table_on_another_stream():
    """A table uploaded on one stream serves a call on another: the second call waits
    for the upload (cupyflash._walk.device_table) before its kernel reads it."""
    import cupy as cp

    require_backend("wgmma")
    dtype, d, batch, hq, sq = "bfloat16", 64, 2, 76, 1024  # a shape no other test uploads
    q, k, v = (gpu_randn((batch, sq, hq, d), dtype, 71 + i) for i in range(3))
    plan = cupyflash.explain(q, k, v, causal=True)
    assert any(TABLE_REASON in r for r in plan.reasons), plan.describe()
    first, second = cp.cuda.Stream(non_blocking=True), cp.cuda.Stream(non_blocking=True)
    outs = [poisoned((batch, sq, hq, d), dtype) for _ in range(2)]
    cp.cuda.get_current_stream().synchronize()
    cupyflash.attention(q, k, v, causal=True, out=outs[0], stream=first)
    cupyflash.attention(q, k, v, causal=True, out=outs[1], stream=second)
    second.synchronize()
    first.synchronize()
    for out in outs:
        check(out, None, q, k, v, causal=True, alignment="bottom_right", dtype=dtype)
