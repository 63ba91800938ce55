"""Host cost of ``cupyflash.attention`` per call, without a GPU: the whole call
runs against the stand-in CUDA runtime of tests/cuda_fakes.py (device and
stream calls, allocation and the launch cost ~nothing there), so this times
cupyflash's own Python work, not CuPy's, torch's or the driver's. On a GPU the
call also pays those (bench/overhead.py measures the total).

    python bench/host_cost.py [--tree PATH]   # PATH: another checkout, for a before/after

Rows: a tiny problem called back to back with the same arguments (the call cache
hits); "new shape" changes seqlen_k on every call (it never hits).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
REPEATS = 15  # best of: this machine's other load only ever adds time
CALLS = 2000
WARMUP = 200
SHAPE = (1, 128, 4, 64)  # bench/overhead.py's problem
ALLOCATOR_POOL = 2  # a caching allocator hands the dropped result's block back


def per_call_us(fn) -> float:
    """Best of REPEATS runs of CALLS calls, microseconds per call."""
    for _ in range(WARMUP):
        fn()
    best = float("inf")
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        for _ in range(CALLS):
            fn()
        best = min(best, (time.perf_counter() - t0) / CALLS * 1e6)
    return best


def rows(cupyflash, array_fakes, cuda_fakes):
    torch_qkv = [array_fakes.FakeTorchTensor(SHAPE, "bfloat16", ptr=0x7F0000000000 + i * 2**20) for i in range(4)]
    cupy_qkv = [array_fakes.FakeCupyArray(SHAPE, "bfloat16", ptr=0x7F0000000000 + i * 2**20) for i in range(4)]
    q, k, v, o = torch_qkv
    cq, ck, cv, co = cupy_qkv
    seqlens = iter(range(1, 10**9))
    yield "torch, sm_90 (wgmma)", 90, lambda: cupyflash.attention(q, k, v)
    yield "torch, sm_90, out=", 90, lambda: cupyflash.attention(q, k, v, out=o)
    yield "torch, sm_90, causal, lse", 90, lambda: cupyflash.attention(q, k, v, causal=True, return_lse=True)
    yield "cupy, sm_90", 90, lambda: cupyflash.attention(cq, ck, cv)
    yield "torch, sm_80 (mma)", 80, lambda: cupyflash.attention(q, k, v)
    yield "cupy, sm_80", 80, lambda: cupyflash.attention(cq, ck, cv)

    def new_shape():
        sk = next(seqlens) % 4096 + 1
        kv = array_fakes.FakeTorchTensor((1, sk, 4, 64), "bfloat16")
        cupyflash.attention(q, kv, kv)

    yield "torch, sm_80, new shape", 80, new_shape


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tree", default=str(ROOT), help="the checkout whose cupyflash is timed (default: this one)")
    args = ap.parse_args()
    # The fakes come from this checkout's tests/; the timed cupyflash from --tree.
    sys.path[:0] = [args.tree, str(ROOT / "tests")]
    import array_fakes
    import cuda_fakes

    import cupyflash

    print(f"cupyflash from {Path(cupyflash.__file__).parent}")
    for name, arch, fn in rows(cupyflash, array_fakes, cuda_fakes):
        with pytest.MonkeyPatch.context() as mp:
            cuda_fakes.install(mp, arch=arch, pool=ALLOCATOR_POOL)
            print(f"{name:28s} {per_call_us(fn):6.1f} us/call")


if __name__ == "__main__":
    main()
