"""Tile sweep for the fp64 DMMA kernel: times each candidate of DMMA_CANDIDATES
and the CUDA-core (simt) kernel against torch SDPA's math backend in float64
(the issue's peer) in the same run, on the bench's fp64 shapes (batch 2, 8
heads), and checks every candidate's output against torch's (relative error).

    python bench/tune_dmma.py [--seqlens 512,1024,2048,4096] [--dims 64,128,256]

Results feed the DMMA_TILES table in cupyflash/_spec.py and bench/notes/fp32_fp64.md
("fp64 on DMMA").
Each contender's output is checked first; then torch math, simt and every candidate
are timed in interleaved rounds (floor.interleaved_ms), kernel launches only.
"""

from __future__ import annotations


import cupy as cp
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

from cupyflash import _dispatch, api
from cupyflash._arrays import _cupy_buffer
from cupyflash._spec import DMMA_CANDIDATES, DMMA_TILES, dmma_spec, simt_spec

import floor  # bench/ is on sys.path when this runs as a script

BATCH, HEADS = 2, 8  # the bench's fp64 set
FP64_REL_BOUND = 1e-12  # the bound (and the GPU suite's)
# fp64 calls last up to ~120 ms (simt at d256 s4096): 5 rounds of 3 samples (plus 2
# warm-up calls each) are 25 calls and 15 samples per contender, close to the 20 calls
# and 15 samples this sweep made before it interleaved (the device run's timeout).
ROUNDS, REPEATS = 5, 3


def main():
    args = floor.sweep_args(__doc__, "512,1024,2048,4096", "64,128,256", dtypes=False)
    results = []
    for d in args.dims:
        for s in args.seqlens:
            q, k, v = (torch.randn(BATCH, s, HEADS, d, device="cuda", dtype=torch.float64) for _ in range(3))
            out = cp.empty((BATCH, s, HEADS, d), dtype=cp.float64)
            bufs = [_cupy_buffer(x) for x in (*(cp.from_dlpack(t) for t in (q, k, v)), out)]
            stream = cp.cuda.ExternalStream(torch.cuda.current_stream().cuda_stream)
            for causal in (False, True):
                flops = 4 * BATCH * HEADS * d * (s * (s + 1) / 2 if causal else s * s)
                _, problem = api._validate(*(x.owner for x in bufs[:3]), causal, "bottom_right", None, "bshd")
                qt, kt, vt = (x.transpose(1, 2) for x in (q, k, v))
                runs = {"math": lambda causal=causal: torch.nn.functional.scaled_dot_product_attention(
                    qt, kt, vt, is_causal=causal)}
                with sdpa_kernel(SDPBackend.MATH):
                    ref = runs["math"]()
                ref = cp.from_dlpack(ref.transpose(1, 2).contiguous())
                row, errs = {"d": d, "s": s, "causal": causal}, {}
                specs = {"simt": simt_spec("float64", d)}
                specs.update({str(t): dmma_spec(d, t) for t in DMMA_CANDIDATES.get(d, (DMMA_TILES[d],))})
                for name, spec in specs.items():
                    plan = _dispatch.plan_for_spec(problem, spec, 90)
                    runs[name] = lambda plan=plan: api._run(plan, problem, *bufs, None, stream, 0)
                    errs[name + "_err"] = floor.check_output(runs[name], out, ref, FP64_REL_BOUND, spec.variant_name)
                # torch's backend switch is global state that only the SDPA call reads.
                with sdpa_kernel(SDPBackend.MATH):
                    times = floor.interleaved_ms(runs, rounds=ROUNDS, repeats=REPEATS)
                row.update({name: round(flops / ms / 1e9, 2) for name, ms in times.items()}, **errs)
                results.append(row)
                cands = [n for n in specs if n != "simt"]
                print(floor.summary_line(row, "math", cands, DMMA_TILES[d], extra=("simt",)), flush=True)
    floor.write_results(results, "tune_dmma.json")

if __name__ == "__main__":
    main()
