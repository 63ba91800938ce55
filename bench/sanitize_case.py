"""One small attention call per head-dim width, for compute-sanitizer (issue 5 asks
racecheck and memcheck to come back clean on one configuration per head dim):

    compute-sanitizer --tool racecheck python bench/sanitize_case.py --backend wgmma
    compute-sanitizer --tool memcheck  python bench/sanitize_case.py --backend wgmma

Odd lengths, GQA and causal, so the masked and zero-filled paths run too.
"""

from __future__ import annotations

import argparse

import cupy as cp

import cupyflash


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--backend", default="wgmma")
    ap.add_argument("--dims", default="64,128,192,256")
    args = ap.parse_args()
    for d in map(int, args.dims.split(",")):
        rs = cp.random.RandomState(d)
        q = rs.standard_normal((1, 200, 4, d), dtype=cp.float32).astype(cp.float16)
        k = rs.standard_normal((1, 333, 2, d), dtype=cp.float32).astype(cp.float16)
        v = rs.standard_normal((1, 333, 2, d), dtype=cp.float32).astype(cp.float16)
        out, lse = cupyflash.attention(q, k, v, causal=True, return_lse=True, backend=args.backend)
        cp.cuda.runtime.deviceSynchronize()
        print(f"d={d}: {cupyflash.explain(q, k, v, causal=True, backend=args.backend).spec.variant_name} "
              f"finite={bool(cp.isfinite(out).all())}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
