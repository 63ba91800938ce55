"""Launch the dispatched kernel for one bench shape a few times, for a profiler
(bench/profile_source.sh runs this under ncu and keeps one launch).

    python bench/profile_launch.py [--head-dim 128] [--seqlen 1024] [--causal] [--dtype bf16] [--launches 5]
                                   [--backend auto|mma] [--flash]

--flash launches torch's flash backend (FlashAttention-2) on the same inputs
instead, so that the same ncu sections can be read for the peer (its kernel name
also matches ncu's flash_fwd filter).
"""

from __future__ import annotations

import argparse

import torch

import cupyflash
from ab_auto import launcher  # bench/ is on sys.path as a script
from floor import SWEEP_DTYPES, sdpa, sweep_inputs


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--head-dim", type=int, default=128)
    ap.add_argument("--seqlen", type=int, default=1024)
    ap.add_argument("--causal", action="store_true")
    ap.add_argument("--dtype", default="bf16", choices=sorted(SWEEP_DTYPES))
    ap.add_argument("--launches", type=int, default=5)
    ap.add_argument("--backend", default="auto", choices=("auto", "mma"))
    ap.add_argument("--flash", action="store_true", help="launch torch's flash backend (FA2) instead")
    args = ap.parse_args()
    _, _, (q, k, v), bufs, stream = sweep_inputs(args.head_dim, args.seqlen, SWEEP_DTYPES[args.dtype][0])
    if args.flash:
        qt, kt, vt = (x.transpose(1, 2) for x in (q, k, v))

        def run():
            sdpa("flash", qt, kt, vt, args.causal)
        variant = "torch flash (FlashAttention-2)"
    else:
        run, variant = launcher(cupyflash, q, k, v, bufs, stream, args.causal, args.backend)
    print(variant, flush=True)
    for _ in range(args.launches):
        run()
    torch.cuda.synchronize()


if __name__ == "__main__":
    main()
