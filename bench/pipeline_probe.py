"""Probe (issue 6): the fast fp32 call at head dim 128 split into batch chunks whose
pre-pass and kernel alternate between two streams, so that one chunk's pre-pass (HBM-bound)
runs beside the previous chunk's kernel, against the dispatched kv-once call and the
one-stream pre-pass call, in GPU time (floor.interleaved_ms) on the bench's shapes:

    python bench/pipeline_probe.py [--seqlens 1024] [--chunks 2,4] [--grids 132,116]

Each chunk is an ordinary call of the q-in-kernel variant (k, v from the pre-pass) on a
batch slice; ``--grids`` sizes its persistent grid (fewer CTAs leave SMs to the other
stream's pre-pass). Every contender's output is checked against the exact kernel first.
"""

from __future__ import annotations

import argparse

import cupy as cp
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

from cupyflash import _dispatch, api
from cupyflash._arrays import _cupy_buffer
from cupyflash._spec import WGMMA_TILES, wgmma_q_in_kernel_spec

import floor  # bench/ is on sys.path when this runs as a script

FAST_REL_BOUND = 2e-3
D = 128


def chunked(q, k, v, out, causal, chunks, grid, streams):
    """A no-argument call: batch slices of q, k, v, out, alternating over ``streams``,
    joined back into torch's current stream."""
    spec = wgmma_q_in_kernel_spec(D, WGMMA_TILES[D], 1)
    b = q.shape[0]
    edges = [b * i // chunks for i in range(chunks + 1)]
    parts = []
    for i in range(chunks):
        sl = slice(edges[i], edges[i + 1])
        arrs = [cp.from_dlpack(t[sl]) for t in (q, k, v)] + [out[sl]]
        bufs = [_cupy_buffer(x) for x in arrs]
        _, problem = api._validate(*arrs[:3], causal, "bottom_right", None, "bshd")
        parts.append((_dispatch.plan_for_spec(problem, spec, 90, sm_count=grid), problem, bufs))

    def run():
        main = cp.cuda.ExternalStream(torch.cuda.current_stream().cuda_stream)
        start = cp.cuda.Event(disable_timing=True)
        start.record(main)
        for s in streams:
            s.wait_event(start)
        for i, (plan, problem, bufs) in enumerate(parts):
            s = streams[i % len(streams)]
            with s:  # the pre-pass's buffers and launches go on cupy's current stream
                api._run(plan, problem, *bufs, None, s, 0)
        for s in streams:
            done = cp.cuda.Event(disable_timing=True)
            done.record(s)
            main.wait_event(done)
    return run


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seqlens", default="1024")
    ap.add_argument("--chunks", default="2,4")
    ap.add_argument("--grids", default="132,116")
    args = ap.parse_args()
    streams = [cp.cuda.Stream(non_blocking=True) for _ in range(2)]
    sms = cp.cuda.Device().attributes["MultiProcessorCount"]
    ns = argparse.Namespace(dims=[D], seqlens=[int(s) for s in args.seqlens.split(",")])
    for row, flops, problem, bufs, stream, out, exact, runs in floor.fp32_rows(ns):
        q, k, v = (torch.from_dlpack(b.owner) for b in bufs[:3])
        plan = _dispatch.plan(problem, 90, "auto", sm_count=sms, precision="fast")
        runs["kv1"] = lambda plan=plan: api._run(plan, problem, *bufs, None, stream, 0)
        runs["qk"] = chunked(q, k, v, out, problem.causal, 1, sms, streams[:1])
        for c in map(int, args.chunks.split(",")):
            for g in map(int, args.grids.split(",")):
                runs[f"c{c}g{g}"] = chunked(q, k, v, out, problem.causal, c, g, streams)
        for name, fn in list(runs.items())[1:]:
            floor.check_output(fn, out, exact, FAST_REL_BOUND, name)
        with sdpa_kernel(SDPBackend.EFFICIENT_ATTENTION):
            times = floor.interleaved_ms(runs)
        line = "  ".join(f"{n}={flops / ms / 1e9:6.1f}" for n, ms in times.items())
        print(f"d={D} s={row['s']} causal={row['causal']!s:5} {line}  (TFLOP/s; kv1 = {plan.spec.variant_name})",
              flush=True)


if __name__ == "__main__":
    main()
