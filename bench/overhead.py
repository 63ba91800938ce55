"""Host cost per call: a tiny problem launched back to back, so the GPU waits on
the host. Compares cupyflash (torch and CuPy inputs) with torch SDPA's flash.

    python bench/overhead.py
"""

from __future__ import annotations

import time

import cupy as cp
import torch

import cupyflash


def per_call_us(fn, n=2000):
    for _ in range(50):
        fn()
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    torch.cuda.synchronize()
    return (time.perf_counter() - t0) / n * 1e6


def main():
    q = torch.randn(1, 128, 4, 64, device="cuda", dtype=torch.bfloat16)
    cq = cp.from_dlpack(q)
    out = torch.empty_like(q)
    qt = q.transpose(1, 2)
    rows = {
        "cupyflash torch": per_call_us(lambda: cupyflash.attention(q, q, q)),
        "cupyflash torch out=": per_call_us(lambda: cupyflash.attention(q, q, q, out=out)),
        "cupyflash cupy": per_call_us(lambda: cupyflash.attention(cq, cq, cq)),
        "torch sdpa flash": per_call_us(lambda: torch.nn.functional.scaled_dot_product_attention(qt, qt, qt)),
    }
    for name, us in rows.items():
        print(f"{name:24s} {us:7.1f} us/call")


if __name__ == "__main__":
    main()
