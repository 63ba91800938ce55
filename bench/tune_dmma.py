"""Tile sweep for the fp64 DMMA kernel: times each candidate of DMMA_CANDIDATES
and the CUDA-core (simt) kernel against torch SDPA's math backend in float64
(the issue's peer) in the same run, on the bench's fp64 shapes (batch 2, 8
heads), and checks every candidate's output against torch's (relative error).

    python bench/tune_dmma.py [--seqlens 512,1024,2048,4096] [--dims 64,128,256]

Results feed the DMMA_TILES table in cupyflash/_spec.py and bench/NOTES.md.
"""

from __future__ import annotations

import argparse
import json
import os

import cupy as cp
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

from cupyflash import _dispatch, api
from cupyflash._arrays import _cupy_buffer
from cupyflash._spec import DMMA_CANDIDATES, DMMA_TILES, dmma_spec, simt_spec

import floor  # bench/ is on sys.path when this runs as a script

BATCH, HEADS = 2, 8  # the bench's fp64 set
FP64_REL_BOUND = 1e-12  # the bound (and the GPU suite's)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seqlens", default="512,1024,2048,4096")
    ap.add_argument("--dims", default="64,128,256")
    args = ap.parse_args()
    results = []
    for d in (int(x) for x in args.dims.split(",")):
        for s in (int(x) for x in args.seqlens.split(",")):
            q, k, v = (torch.randn(BATCH, s, HEADS, d, device="cuda", dtype=torch.float64) for _ in range(3))
            out = cp.empty((BATCH, s, HEADS, d), dtype=cp.float64)
            bufs = [_cupy_buffer(x) for x in (*(cp.from_dlpack(t) for t in (q, k, v)), out)]
            stream = cp.cuda.ExternalStream(torch.cuda.current_stream().cuda_stream)
            for causal in (False, True):
                flops = 4 * BATCH * HEADS * d * (s * (s + 1) / 2 if causal else s * s)
                _, problem = api._validate(*(x.owner for x in bufs[:3]), causal, "bottom_right", None, "bshd")
                qt, kt, vt = (x.transpose(1, 2) for x in (q, k, v))
                with sdpa_kernel(SDPBackend.MATH):
                    ref = torch.nn.functional.scaled_dot_product_attention(qt, kt, vt, is_causal=causal)
                    math_ms = floor.time_ms(lambda: torch.nn.functional.scaled_dot_product_attention(
                        qt, kt, vt, is_causal=causal), repeats=15, inner=1)
                ref = cp.from_dlpack(ref.transpose(1, 2).contiguous())
                row = {"d": d, "s": s, "causal": causal, "math": round(flops / math_ms / 1e9, 2)}
                specs = {"simt": simt_spec("float64", d)}
                specs.update({str(t): dmma_spec(d, t) for t in DMMA_CANDIDATES.get(d, (DMMA_TILES[d],))})
                for name, spec in specs.items():
                    plan = _dispatch.plan_for_spec(problem, spec, 90)
                    out.fill(float("nan"))
                    api._run(plan, problem, *bufs, None, stream, 0)
                    rel = float(cp.linalg.norm(out - ref) / cp.linalg.norm(ref))
                    ms = floor.time_ms(lambda: api._run(plan, problem, *bufs, None, stream, 0), repeats=15, inner=1)
                    row[name] = round(flops / ms / 1e9, 2)
                    row[name + "_err"] = rel
                    if not rel <= FP64_REL_BOUND:
                        print(f"  WRONG: {spec.variant_name} rel err {rel:.3e} > {FP64_REL_BOUND}", flush=True)
                results.append(row)
                cands = [n for n in specs if n != "simt"]
                best = max(cands, key=lambda n: row[n])
                print(f"d={d} s={s} causal={causal!s:5} math={row['math']:6.2f} simt={row['simt']:6.2f}  "
                      + "  ".join(f"{n}={row[n]:6.2f}" for n in cands)
                      + f"  best={best} vs math={row[best] / row['math']:.2f}  table={DMMA_TILES[d]}"
                      + f"  max_err={max(row[n + '_err'] for n in specs):.1e}", flush=True)
    with open(os.path.join(os.environ.get("OUT", "."), "tune_dmma.json"), "w") as f:
        json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
