"""One small attention call per head-dim width, for compute-sanitizer (issue 5 asks
racecheck and memcheck to come back clean on one configuration per head dim):

    compute-sanitizer --tool racecheck python bench/sanitize_case.py --backend wgmma
    compute-sanitizer --tool memcheck  python bench/sanitize_case.py --backend wgmma

Odd lengths, GQA and causal, so the masked and zero-filled paths run too.
``--seqlen 1024 --heads 528`` gives a persistent CTA several items, so that its Q
buffers are reused (the default shape hands each CTA one or two). ``--full`` drops the
mask: ``--full --seqlen 4096 --heads 16 --dims 64,128`` runs the split tail (blocks cut
between two CTAs, merged through global memory; cuda_src/split_tail.h). ``--fast``
passes float32 inputs with precision="fast": ``--fast --dims 128 --seqlen 1100`` runs the
kernel that converts k and v once per call (cuda_src/kv_once.h: flags and per-head counters
in global memory, its converters' shared-memory staging).
"""

from __future__ import annotations

import argparse

import cupy as cp

import cupyflash


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--backend", default="wgmma")
    ap.add_argument("--dims", default="64,128,192,256")
    ap.add_argument("--seqlen", type=int, default=0, help="seqlen_q = seqlen_k (default: 200 queries, 333 keys)")
    ap.add_argument("--heads", type=int, default=4, help="query heads (even: 2 query heads per KV head)")
    ap.add_argument("--full", action="store_true", help="no causal mask (default: causal)")
    ap.add_argument("--fast", action="store_true", help='float32 inputs, precision="fast" (default: float16)')
    args = ap.parse_args()
    dtype, precision = (cp.float32, "fast") if args.fast else (cp.float16, "highest")
    s_q, s_k = (args.seqlen, args.seqlen) if args.seqlen else (200, 333)
    if args.heads % 2:
        raise SystemExit(f"--heads must be even (2 query heads per KV head); got {args.heads}")
    for d in map(int, args.dims.split(",")):
        rs = cp.random.RandomState(d)
        q = rs.standard_normal((1, s_q, args.heads, d), dtype=cp.float32).astype(dtype)
        k = rs.standard_normal((1, s_k, args.heads // 2, d), dtype=cp.float32).astype(dtype)
        v = rs.standard_normal((1, s_k, args.heads // 2, d), dtype=cp.float32).astype(dtype)
        causal = not args.full
        out, lse = cupyflash.attention(q, k, v, causal=causal, return_lse=True, backend=args.backend,
                                       precision=precision)
        cp.cuda.runtime.deviceSynchronize()
        plan = cupyflash.explain(q, k, v, causal=causal, backend=args.backend, precision=precision)
        print(f"d={d}: {plan.spec.variant_name} split tail {plan.split_tail} finite={bool(cp.isfinite(out).all())}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
