"""Same-run A/B of the dispatched kernel of two cupyflash trees, with a torch peer
alongside, over the bench's standard shapes (batch 16384 / s, heads 2048 / d).

    python bench/ab_auto.py --old ab_old [--old ab_x ...] [--seqlens 512,1024,4096] [--dims 64,128,256]
                            [--backend auto|mma] [--peer cudnn|flash] [--heads 32:8]

``--backend mma --peer flash`` times the sm_80 path forced on Hopper against
FlashAttention-2 (torch's flash backend): issue 4's comparison. The ratio column
is against the peer either way.

Each ``--old ab_NAME`` holds another tree with its package renamed
``cupyflash_NAME`` (next to its own cuda_src/). Every tree is loaded in this one
process, and the contenders are timed in interleaved rounds (floor.interleaved_ms): at
short seqlens one call lasts ~100 us and separate runs drift by more than the
change being measured. The
kernels are launched through each tree's internal ``api._run`` with the plan
made beforehand, as in bench/tune_wgmma.py, so host-side validation is not
timed. Every output is checked against the peer's first (relative L2 <= 2e-2).
``--time-wrong NAME`` still times tree NAME when its output disagrees (an upper-bound
experiment that drops work on purpose); its rows are marked WRONG-TIMED.
Writes ab_auto.json under $OUT.
"""

from __future__ import annotations

import argparse

import cupy as cp
import torch

import cupyflash
from floor import HOT_HELP, SWEEP_DTYPES, interleaved_ms, load_trees, sdpa, set_hot, sweep_inputs, write_results  # bench/ is on sys.path as a script

AGREEMENT_BOUND = 2e-2  # 16-bit outputs of two correct kernels differ by ~1e-3


def launcher(pkg, q, k, v, bufs, stream, causal, backend):
    """A no-argument call of pkg's kernel for ``backend`` on these buffers (plan made here)."""
    adapter, problem = pkg.api._validate(q, k, v, causal, "bottom_right", None, "bshd")
    sm_count = cp.cuda.Device().attributes["MultiProcessorCount"]
    plan = pkg._dispatch.plan(problem, 90, backend, {n: 0 for n in ("q", "k", "v", "out")}, sm_count)
    return lambda: pkg.api._run(plan, problem, *bufs, None, stream, 0), plan.spec.variant_name


def _compile_one(job):
    """In a worker process: compile tree ``path``'s dispatched kernel for one row, so
    that CuPy's disk cache serves the timing process (which compiles nothing)."""
    path, d, s, causal, dtype, backend = job
    import cupyflash as pkg

    if path is not None:
        pkg = load_trees([path])[path.rstrip("/").rsplit("/", 1)[-1].removeprefix("ab_")]
    # One (batch, head): the variant depends on the head dim, seqlens, mask and dtype only.
    q = torch.empty(1, s, 1, d, dtype=SWEEP_DTYPES[dtype][0], device="cuda")
    _, problem = pkg.api._validate(q, q, q, causal, "bottom_right", None, "bshd")
    plan = pkg._dispatch.plan(problem, 90, backend, {n: 0 for n in ("q", "k", "v", "out")}, 132)
    pkg._compile.get_function(plan.spec, 0)
    return plan.spec.variant_name


def precompile(paths, dims, seqlens, dtype, backend, jobs=16):
    """Every tree's kernels for every row, compiled in parallel: with several trees
    a serial first call per variant took minutes of device time."""
    from concurrent.futures import ProcessPoolExecutor

    rows = [(path, d, s, causal, dtype, backend) for path in [None, *paths] for d in dims for s in seqlens
            for causal in (False, True)]
    with ProcessPoolExecutor(jobs) as pool:
        names = set(pool.map(_compile_one, rows))
    print(f"precompiled {len(names)} variants over {len(paths) + 1} trees", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--old", required=True, action="append",
                    help="a directory ab_NAME holding package cupyflash_NAME (repeatable)")
    ap.add_argument("--seqlens", default="512,1024,4096")
    ap.add_argument("--dims", default="64,128,256")
    ap.add_argument("--dtype", default="bf16", choices=sorted(SWEEP_DTYPES))
    ap.add_argument("--backend", default="auto", choices=("auto", "mma"))
    ap.add_argument("--peer", default="cudnn", choices=("cudnn", "flash"))
    ap.add_argument("--heads", metavar="HQ:HKV", help="GQA rows: query heads and KV heads (default: "
                    "2048 / d of each, the papers' shape)")
    ap.add_argument("--hot", action="store_true", help=HOT_HELP)
    ap.add_argument("--time-wrong", action="append", default=[], metavar="NAME",
                    help="time tree NAME even where its output is wrong (upper-bound experiments)")
    args = ap.parse_args()
    set_hot(args.hot)
    heads = tuple(int(x) for x in args.heads.split(":")) if args.heads else None
    peer = args.peer
    dims, seqlens = [int(x) for x in args.dims.split(",")], [int(x) for x in args.seqlens.split(",")]
    precompile(args.old, dims, seqlens, args.dtype, args.backend)
    trees = load_trees(args.old)
    trees["new"] = cupyflash
    torch_dtype, _ = SWEEP_DTYPES[args.dtype]
    rows = []
    for d in dims:
        for s in seqlens:
            b, h, (q, k, v), bufs, stream = sweep_inputs(d, s, torch_dtype, heads)
            qt, kt, vt = (x.transpose(1, 2) for x in (q, k, v))
            out = torch.from_dlpack(bufs[3].owner)
            for causal in (False, True):
                flops = 4 * b * h * d * (s * (s + 1) / 2 if causal else s * s)

                def peer_call():
                    return sdpa(peer, qt, kt, vt, causal)

                ref = peer_call().transpose(1, 2).float()
                runs = {peer: peer_call}
                row = {"d": d, "s": s, "causal": causal, "heads": heads}
                for name, pkg in trees.items():
                    runs[name], row[f"{name}_variant"] = launcher(pkg, q, k, v, bufs, stream, causal, args.backend)
                    out.fill_(float("nan"))
                    runs[name]()
                    row[f"{name}_err"] = err = float((out.float() - ref).norm() / ref.norm())
                    if not err <= AGREEMENT_BOUND:
                        timed = name in args.time_wrong
                        print(f"WRONG{'-TIMED' if timed else ''}: {name} d={d} s={s} causal={causal} err {err:.2e}",
                              flush=True)
                        if not timed:
                            runs.pop(name)
                for n, ms in interleaved_ms(runs).items():
                    row[n] = round(flops / ms / 1e9, 1)
                rows.append(row)
                print(f"d={d} s={s} {f'heads={args.heads} ' if heads else ''}causal={causal!s:5} {peer}={row[peer]:6.1f} "
                      + " ".join(f"{n}={row.get(n, 'WRONG')} ({row[n] / row[peer]:.3f})" if n in row else
                                 f"{n}=WRONG" for n in trees)
                      + (f" new/old={row['new'] / row['old']:.3f}" if "old" in row and "new" in row else ""),
                      flush=True)
            del q, k, v, qt, kt, vt, out, bufs
    write_results(rows, "ab_auto.json")


if __name__ == "__main__":
    main()
