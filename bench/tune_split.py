"""Tile sweep for the split-precision float32 wgmma kernel (fp16 hi + lo, three
products): times each candidate of WGMMA_SPLIT_CANDIDATES, pre-pass included (as a
caller sees it), against torch SDPA's efficient backend in fp32 in the same run,
on the bench's fp32 shapes (batch x seqlen 16384, heads x head dim 2048), and
checks each candidate against the exact CUDA-core kernel (relative error).

    python bench/tune_split.py [--seqlens 1024,2048,4096] [--dims 64,128] [--q-in-kernel | --fast] [--kv-once]

--q-in-kernel: the table's tiles with q from the pre-pass ("prepass_q") against every
candidate tile with Q converted by the consumer warpgroups (KernelSpec.q_in_kernel;
bench/notes/fp32_in_kernel.md, "Q converted by the consumers"), in the same run.
--fast: the one-term kernel (precision="fast") instead: the shipped variant (q from the
pre-pass, "prepass_q") against each of WGMMA_FAST_Q_CANDIDATES with Q converted by the
consumers, checked against the fast-mode bound.
--kv-once: the q-in-kernel variant of the split with k and v from the pre-pass ("qk")
against the same tiles with k and v converted once per call inside the kernel ("kv1",
KernelSpec.kv_once; bench/notes/fp32_kv_once.md, "K and V converted once per call").
With --fast: the one-term kernel's dispatched q-in-kernel tiles (without and with a
causal mask) against each of WGMMA_KV_ONCE_CANDIDATES ("kv1_<tiles>").
--trees ab_A,ab_B: the variant that dispatch picks (precision "fast" with --fast, else the
default), this tree's ("new") against each other tree's (bench/ab_auto.py's ab_NAME
directories), in GPU time: a same-run A/B of kernel changes, which whole-call timings
(bench/ab_fp32.py) resolve only to ~6 %.

Results feed WGMMA_SPLIT_TILES in cupyflash/_spec.py and bench/notes/fp32_fp64.md
("fp32 pre-pass in fewer launches; full bench v3.1").
Each candidate's output is checked first; then torch efficient and every candidate
are timed in interleaved rounds (floor.interleaved_ms).
"""

from __future__ import annotations


import cupy as cp
from torch.nn.attention import SDPBackend, sdpa_kernel

from cupyflash import _dispatch, api
from cupyflash._spec import (WGMMA_FAST_CAUSAL_TILES, WGMMA_FAST_Q_CANDIDATES, WGMMA_KV_ONCE_CANDIDATES,
                             WGMMA_SPLIT_CANDIDATES, WGMMA_SPLIT_TILES, WGMMA_TILES, wgmma_fp32_spec,
                             wgmma_kv_once_spec, wgmma_q_in_kernel_spec)

import floor  # bench/ is on sys.path when this runs as a script

FP32_REL_BOUND = 1e-5  # the bound (and the GPU suite's)
FAST_REL_BOUND = 2e-3  # precision="fast" (tests/test_gpu_attention.py FAST_FP32_BOUND)


def _tile_name(t) -> str:
    """A q-in-kernel contender's column name: qk{block_m}_{block_n}_{stages}[_pp][_pe]."""
    return "qk{}_{}_{}{}{}".format(*t[:3], "_pp" if t[3] else "", "_pe" if t[4] else "")


def contenders_for(d: int, args) -> dict:
    """name -> KernelSpec of the sweep, the A/B or the fast A/B (see the docstring)."""
    if args.kv_once and args.fast:  # the dispatched q-in-kernel tiles (both masks) against each kv-once candidate
        shipped = dict.fromkeys((WGMMA_TILES[d], WGMMA_FAST_CAUSAL_TILES.get(d, WGMMA_TILES[d])))
        return {**{_tile_name(t): wgmma_q_in_kernel_spec(d, t, 1) for t in shipped},
                **{"kv1_" + _tile_name(t)[2:]: wgmma_kv_once_spec(d, t) for t in WGMMA_KV_ONCE_CANDIDATES[d]}}
    if args.kv_once:  # the q-in-kernel tiles of the split, with and without k, v converted in the kernel
        return {"qk": wgmma_q_in_kernel_spec(d, None, 3), "kv1": wgmma_kv_once_spec(d, None, 3)}
    if args.fast:
        return {"prepass_q": wgmma_fp32_spec(d, 1),
                **{_tile_name(t): wgmma_q_in_kernel_spec(d, t, 1) for t in WGMMA_FAST_Q_CANDIDATES[d]}}
    if args.q_in_kernel:
        return {"prepass_q": wgmma_fp32_spec(d, 3),
                **{_tile_name(t): wgmma_q_in_kernel_spec(d, t) for t in WGMMA_SPLIT_CANDIDATES[d]}}
    return {str(t): wgmma_fp32_spec(d, 3, t) for t in WGMMA_SPLIT_CANDIDATES[d]}


def _precision(args) -> str:
    """The precision argument whose dispatched variant --trees compares."""
    return "fast" if args.fast else "highest"


def _warm_tree(job):
    """In a worker process: one small call of tree ``path`` (None: this tree, and its exact
    CUDA-core kernel) at head dim d, seqlen s, so that CuPy's disk cache holds every kernel
    the row dispatches (pre-pass included) before the timing process runs."""
    path, d, s, causal, precision = job
    import torch

    import cupyflash as pkg
    if path is not None:
        (pkg,) = floor.load_trees([path]).values()
    q = torch.randn(1, s, 1, d, device="cuda", dtype=torch.float32)
    pkg.attention(q, q, q, causal=causal, precision=precision)
    if path is None:
        pkg.attention(q, q, q, causal=causal, backend="simt")
    torch.cuda.synchronize()
    return path


def warm_trees(args, jobs=12):
    """Every tree's kernels for every row, compiled in parallel (serially, each tree's
    first call per variant took ~30 s of device time)."""
    from concurrent.futures import ProcessPoolExecutor
    import multiprocessing

    rows = [(path, d, s, causal, _precision(args)) for path in [None, *args.trees.split(",")] for d in args.dims
            for s in args.seqlens for causal in (False, True)]
    with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        list(pool.map(_warm_tree, rows))
    print(f"warmed {len(rows)} rows over {len(args.trees.split(',')) + 1} trees", flush=True)


def tree_runs(args, problem, bufs, stream, sm_count) -> dict:
    """name -> (call, variant name) of each tree's dispatched variant (--trees); this tree's is "new"."""
    precision = _precision(args)
    runs = {}
    for name, pkg in {"new": None, **floor.load_trees(args.trees.split(","))}.items():
        mod_api, mod_dispatch = (api, _dispatch) if pkg is None else (pkg.api, pkg._dispatch)
        _, prob = mod_api._validate(*(x.owner for x in bufs[:3]), problem.causal, "bottom_right", None, "bshd")
        plan = mod_dispatch.plan(prob, 90, "auto", sm_count=sm_count, precision=precision)
        runs[name] = (lambda plan=plan, prob=prob, run=mod_api._run: run(plan, prob, *bufs, None, stream, 0),
                      plan.spec.variant_name)
    return runs


def main():
    args = floor.sweep_args(__doc__, "1024,2048,4096", "64,128", dtypes=False,
                            flags=(("--q-in-kernel", "the table's tiles with and without Q converted in the kernel"),
                                   ("--fast", "the one-term kernel: q from the pre-pass against q converted "
                                              "in the kernel, per candidate tile"),
                                   ("--kv-once", "the shipped variant against k and v converted once per call "
                                                 "in the kernel")),
                            texts=(("--trees", "comma-separated ab_NAME trees: each one's dispatched variant "
                                               "against this tree's"),))
    bound = FAST_REL_BOUND if args.fast else FP32_REL_BOUND
    if args.trees:
        warm_trees(args)
    results = []
    sm_count = cp.cuda.Device().attributes["MultiProcessorCount"]
    for row, flops, problem, bufs, stream, out, exact, runs in floor.fp32_rows(args):
        d, errs = row["d"], {}
        if args.trees:
            contenders = tree_runs(args, problem, bufs, stream, sm_count)
            for name, (call, variant) in contenders.items():
                runs[name] = call
                errs[name + "_err"] = floor.check_output(call, out, exact, bound, f"{name}: {variant}")
        else:
            contenders = contenders_for(d, args)
            for name, spec in contenders.items():
                plan = _dispatch.plan_for_spec(problem, spec, 90, sm_count=sm_count)
                runs[name] = lambda plan=plan: api._run(plan, problem, *bufs, None, stream, 0)
                errs[name + "_err"] = floor.check_output(runs[name], out, exact, bound, plan.spec.variant_name)
        # torch's backend switch is global state that only the SDPA call reads.
        with sdpa_kernel(SDPBackend.EFFICIENT_ATTENTION):
            times = floor.interleaved_ms(runs)
        row.update({name: round(flops / ms / 1e9, 1) for name, ms in times.items()}, **errs)
        results.append(row)
        cands = list(contenders)
        print(floor.summary_line(row, "efficient", cands, (WGMMA_TILES if args.fast else WGMMA_SPLIT_TILES)[d]),
              flush=True)
    prefix = "ab_trees_" if args.trees else "tune_kv_once_" if args.kv_once else "tune_"
    floor.write_results(results, prefix + ("fast" if args.fast else "split") + ".json")


if __name__ == "__main__":
    main()
