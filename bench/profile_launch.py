"""Launch the dispatched kernel for one bench shape a few times, for a profiler
(bench/profile_source.sh runs this under ncu and keeps one launch).

    python bench/profile_launch.py [--head-dim 128] [--seqlen 1024] [--causal] [--dtype bf16] [--launches 5]
"""

from __future__ import annotations

import argparse

import cupy as cp
import torch

import cupyflash
from floor import SWEEP_DTYPES, sweep_inputs  # bench/ is on sys.path as a script


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--head-dim", type=int, default=128)
    ap.add_argument("--seqlen", type=int, default=1024)
    ap.add_argument("--causal", action="store_true")
    ap.add_argument("--dtype", default="bf16", choices=sorted(SWEEP_DTYPES))
    ap.add_argument("--launches", type=int, default=5)
    args = ap.parse_args()
    _, _, (q, k, v), bufs, stream = sweep_inputs(args.head_dim, args.seqlen, SWEEP_DTYPES[args.dtype][0])
    adapter, problem = cupyflash.api._validate(q, k, v, args.causal, "bottom_right", None, "bshd")
    sm_count = cp.cuda.Device().attributes["MultiProcessorCount"]
    plan = cupyflash._dispatch.plan(problem, 90, "auto", {n: 0 for n in ("q", "k", "v", "out")}, sm_count)
    print(plan.spec.variant_name, flush=True)
    for _ in range(args.launches):
        cupyflash.api._run(plan, problem, *bufs, None, stream, 0)
    torch.cuda.synchronize()


if __name__ == "__main__":
    main()
