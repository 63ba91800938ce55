"""Launch the dispatched kernel for one bench shape a few times, for a profiler
(bench/profile_source.sh runs this under ncu and keeps one launch).

    python bench/profile_launch.py [--head-dim 128] [--seqlen 1024] [--causal] [--dtype bf16] [--launches 5]
"""

from __future__ import annotations

import argparse

import torch

import cupyflash
from ab_auto import launcher  # bench/ is on sys.path as a script
from floor import SWEEP_DTYPES, sweep_inputs


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--head-dim", type=int, default=128)
    ap.add_argument("--seqlen", type=int, default=1024)
    ap.add_argument("--causal", action="store_true")
    ap.add_argument("--dtype", default="bf16", choices=sorted(SWEEP_DTYPES))
    ap.add_argument("--launches", type=int, default=5)
    args = ap.parse_args()
    _, _, (q, k, v), bufs, stream = sweep_inputs(args.head_dim, args.seqlen, SWEEP_DTYPES[args.dtype][0])
    run, variant = launcher(cupyflash, q, k, v, bufs, stream, args.causal)
    print(variant, flush=True)
    for _ in range(args.launches):
        run()
    torch.cuda.synchronize()


if __name__ == "__main__":
    main()
