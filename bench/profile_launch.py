"""Launch the dispatched kernel for one bench shape a few times, for a profiler
(bench/profile_source.sh runs this under ncu and keeps one launch).

    python bench/profile_launch.py [--head-dim 128] [--seqlen 1024] [--causal] [--dtype bf16] [--launches 5]
                                   [--backend auto|mma] [--flash | --peer flash|cudnn] [--convert | --kv-once]
                                   [--mma-tiles BLOCK_M BLOCK_N WARPS M_TILES]

--flash (same as --peer flash) launches torch's flash backend (FlashAttention-2)
on the same inputs instead, so that the same ncu sections can be read for the
peer (its kernel name also matches ncu's flash_fwd filter). --peer cudnn launches
torch's cuDNN backend (its kernel names hold "sdpa" or "fmha": bench/profile_metrics.sh
filters for them).
"""

from __future__ import annotations

import argparse

import torch

import cupyflash
from ab_auto import launcher  # bench/ is on sys.path as a script
from floor import SWEEP_DTYPES, sdpa, sweep_inputs


def convert_launcher(q, k, v, bufs, stream, causal, kv_once=False):
    """A float32 variant that converts inside the kernel, whether dispatched for this
    shape or not: q, k and v in the producer (wgmma_convert_spec), or with kv_once q in
    the consumers and k, v once per call (wgmma_kv_once_spec, precision="fast")."""
    import cupy as cp

    from cupyflash import _dispatch, api
    from cupyflash._spec import wgmma_convert_spec, wgmma_kv_once_spec, wgmma_width

    _, problem = api._validate(q, k, v, causal, "bottom_right", None, "bshd")
    width = wgmma_width(q.shape[3], v.shape[3])
    spec = wgmma_kv_once_spec(width) if kv_once else wgmma_convert_spec(width)
    plan = _dispatch.plan_for_spec(problem, spec, 90, sm_count=cp.cuda.Device().attributes["MultiProcessorCount"])
    return lambda: api._run(plan, problem, *bufs, None, stream, 0), spec.variant_name


def mma_tile_launcher(q, k, v, bufs, stream, causal, tiles):
    """The mma.sync variant with ``tiles`` (an MMA_CANDIDATES entry) on these inputs."""
    import cupy as cp
    from cupyflash import _dispatch, api
    from cupyflash._spec import MMA_CANDIDATES, mma_spec, mma_width

    _, problem = api._validate(q, k, v, causal, "bottom_right", None, "bshd")
    width = mma_width(q.shape[3], v.shape[3])
    if tiles not in MMA_CANDIDATES[width]:
        raise SystemExit(f"--mma-tiles {tiles} is not among width {width}'s candidates {MMA_CANDIDATES[width]}")
    spec = mma_spec(problem.dtype, width, tiles)
    plan = _dispatch.plan_for_spec(problem, spec, 90, sm_count=cp.cuda.Device().attributes["MultiProcessorCount"])
    return lambda: api._run(plan, problem, *bufs, None, stream, 0), spec.variant_name


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--head-dim", type=int, default=128)
    ap.add_argument("--seqlen", type=int, default=1024)
    ap.add_argument("--causal", action="store_true")
    ap.add_argument("--dtype", default="bf16", choices=sorted(SWEEP_DTYPES))
    ap.add_argument("--launches", type=int, default=5)
    ap.add_argument("--backend", default="auto", choices=("auto", "mma"))
    ap.add_argument("--flash", action="store_true", help="launch torch's flash backend (FA2) instead")
    ap.add_argument("--peer", choices=("flash", "cudnn"), help="launch this torch SDPA backend instead")
    ap.add_argument("--convert", action="store_true",
                    help="float32 inputs through the candidate that converts them in the kernel (wgmma_convert_spec)")
    ap.add_argument("--kv-once", action="store_true",
                    help="float32 inputs through the variant that converts k, v once per call (wgmma_kv_once_spec)")
    ap.add_argument("--mma-tiles", type=int, nargs="+", metavar="N",
                    help="an mma.sync candidate of MMA_CANDIDATES instead of the table's tile")
    args = ap.parse_args()
    if args.flash:
        args.peer = "flash"
    dtype = torch.float32 if args.convert or args.kv_once else SWEEP_DTYPES[args.dtype][0]
    _, _, (q, k, v), bufs, stream = sweep_inputs(args.head_dim, args.seqlen, dtype)
    if args.convert or args.kv_once:
        run, variant = convert_launcher(q, k, v, bufs, stream, args.causal, args.kv_once)
    elif args.peer:
        qt, kt, vt = (x.transpose(1, 2) for x in (q, k, v))

        def run():
            sdpa(args.peer, qt, kt, vt, args.causal)
        variant = f"torch SDPA {args.peer}"
    elif args.mma_tiles:
        run, variant = mma_tile_launcher(q, k, v, bufs, stream, args.causal, tuple(args.mma_tiles))
    else:
        run, variant = launcher(cupyflash, q, k, v, bufs, stream, args.causal, args.backend)
    print(variant, flush=True)
    for _ in range(args.launches):
        run()
    torch.cuda.synchronize()


if __name__ == "__main__":
    main()
