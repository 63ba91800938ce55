"""GPU: the split tail of the persistent Hopper walk (cuda_src/block_order.h,
split_tail.h). Unmasked 16-bit calls whose query blocks do not fill whole waves of
the grid share their last blocks' key tiles evenly over the CTAs; a block cut
between two CTAs is finished by one of them from the other's partial O and row
state. Each case is one the dispatch splits (asserted), checked against float64,
LSE included, with odd key counts (a last key tile of one key), GQA and padded
head dims, in the split-tail variants of widths 64 (192-row tiles) and 128 (128-row
tiles), which run from 4096 keys."""

from __future__ import annotations

import zlib

import pytest

import cupyflash

from gpu_checks import check, poisoned, require_backend
from test_gpu_attention import gpu_randn

pytestmark = pytest.mark.gpu

# (dtype, d, sq, sk, hq, hkv, batch): on 132 SMs, items % 132 != 0 and items > 132.
CASES = [
    ("float16", 64, 1000, 4097, 8, 2, 5),     # 240 blocks: 108 left over; 33 key tiles, the last of one key
    ("bfloat16", 64, 4096, 4096, 32, 8, 1),   # 704 blocks: the bench's row shape, one batch
    ("float16", 48, 500, 4100, 40, 40, 2),    # a padded width, 240 blocks; a last key tile of 4 keys
    ("bfloat16", 64, 300, 4096, 80, 8, 2),    # 320 blocks of 2 per (batch, head), GQA 10:1
    ("float16", 40, 1000, 5000, 28, 7, 3),    # a padded width; 504 blocks, 40 key tiles
    ("bfloat16", 128, 4096, 4096, 9, 3, 1),   # 128-row blocks: 288, 32 key tiles
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
    # Run twice: the flags are zeroed per call, so a second call must not see the first's;
    # and the merge's result does not depend on which CTA arrives first (split_tail.h, sk_sum).
    out2 = poisoned((batch, sq, hq, d), dtype)
    cupyflash.attention(q, k, v, out=out2)
    assert bool((out2 == out).all())


# A kernel that holds SMs: one CTA per SM (its shared memory leaves no room for a second
# CTA of any kind) that spins until the host releases it through mapped host memory, or
# until max_cycles have passed, whichever comes first.
_HOG_SRC = r"""
extern "C" __global__ void hog(volatile unsigned* started, volatile const unsigned* release,
                               long long max_cycles) {
  extern __shared__ unsigned char smem[];
  if (threadIdx.x == 0) {
    atomicAdd((unsigned*)started, 1u);
    const long long t0 = clock64();
    while (*release == 0u && clock64() - t0 < max_cycles) __nanosleep(1000);
    smem[0] = 1;
  }
}
"""
HOG_SMEM_BYTES = 160 * 1024  # over half an SM's 228 KB: one CTA of it, or of our kernel, per SM
HOG_MAX_CYCLES = 20 * 2_000_000_000  # ~20 s at 2 GHz: a hung test ends, and fails, on its own
HOG_START_TIMEOUT_S = 5.0
SPLIT_CALL_TIMEOUT_S = 10.0


def test_split_tail_needs_no_co_resident_ctas():
    """Forward progress: the split tail's grid runs to the end on a single free SM, its
    CTAs one after another, while a kernel on another stream holds every other SM until
    the call is done. Each cut item is finished by the CTA that reaches it second, so no
    CTA ever waits on one that has not started (split_tail.h); with the roles fixed by
    position, CTA 0 would wait for CTA 1, which could not start until CTA 0 left."""
    import ctypes
    import time

    import cupy as cp

    require_backend("wgmma")
    dtype, d, sq, sk, hq, hkv, batch = CASES[0]
    q, k, v = (gpu_randn((batch, s, h, d), dtype, 7 + i) for i, (s, h) in enumerate(((sq, hq), (sk, hkv), (sk, hkv))))
    plan = cupyflash.explain(q, k, v)
    if plan.grid[0] != 132:
        pytest.skip(f"the case is sized for 132 SMs; this GPU's persistent grid is {plan.grid[0]}")
    assert plan.split_tail[0] > 0
    expected = cupyflash.attention(q, k, v)  # compiled, and the reference result
    cp.cuda.Device().synchronize()

    hog = cp.RawModule(code=_HOG_SRC).get_function("hog")
    hog.max_dynamic_shared_size_bytes = HOG_SMEM_BYTES
    host = cp.cuda.runtime.hostAlloc(8, cp.cuda.runtime.hostAllocMapped)
    words = (ctypes.c_uint * 2).from_address(host)  # started, release; the device sees the same address (UVA)
    words[0] = words[1] = 0
    hog_stream, call_stream = cp.cuda.Stream(non_blocking=True), cp.cuda.Stream(non_blocking=True)
    held = plan.grid[0] - 1
    try:
        hog((held,), (32,), (cp.uint64(host), cp.uint64(host + 4), cp.int64(HOG_MAX_CYCLES)),
            shared_mem=HOG_SMEM_BYTES, stream=hog_stream)
        deadline = time.monotonic() + HOG_START_TIMEOUT_S
        while words[0] < held and time.monotonic() < deadline:
            time.sleep(0.001)
        assert words[0] == held, f"only {words[0]} of {held} SM-holding CTAs started"
        with call_stream:
            out = cupyflash.attention(q, k, v)
            done = cp.cuda.Event()
            done.record()
        deadline = time.monotonic() + SPLIT_CALL_TIMEOUT_S
        while not done.done and time.monotonic() < deadline:
            time.sleep(0.001)
        finished_alone = done.done
    finally:
        words[1] = 1  # release the SMs whatever happened
        hog_stream.synchronize()
        call_stream.synchronize()
        cp.cuda.runtime.freeHost(host)
    assert finished_alone, f"the call did not finish on one free SM within {SPLIT_CALL_TIMEOUT_S} s"
    assert bool((out == expected).all())  # CTAs one at a time: other arrival orders, the same bits
