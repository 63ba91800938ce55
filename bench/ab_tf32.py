"""Is the tf32 fast mode faster? float32 precision="fast" both ways, in one tree and
the same interleaved rounds: the fp16 pre-pass + fp16 kernel ("fast-fp16",
wgmma_fp32_spec(width, 1)), every tf32 candidate (WGMMA_TF32_CANDIDATES, the
table's entry first: V^T pre-pass + tf32 kernel), and torch SDPA's efficient
backend in fp32, on the bench's fp32 shapes (batch 16384 / s, heads 2048 / d).

    python bench/ab_tf32.py [--seqlens 1024,2048,4096] [--dims 64,128]

Whole calls as the caller pays for them on the GPU (pre-passes included, host
cost excluded: floor.interleaved_ms). Each contender's output is checked first
against the exact CUDA-core kernel (relative L2 <= FAST_REL_BOUND). The line ends
with the variant dispatch picks for precision="fast" at that point (the choice of
the fp16 pass for "fast" and the explicit precision="tf32", cupyflash/_dispatch.py
PRECISIONS, was set from this). Writes ab_tf32.json under $OUT.
"""

from __future__ import annotations

import cupy as cp
from torch.nn.attention import SDPBackend, sdpa_kernel

from cupyflash import _dispatch, api
from cupyflash._spec import WGMMA_TF32_CANDIDATES, WGMMA_TF32_TILES, wgmma_fp32_spec, wgmma_tf32_spec

import floor  # bench/ is on sys.path when this runs as a script

FAST_REL_BOUND = 2e-3  # the fast mode's bound in the GPU suite
OLD_FAST = "fast-fp16"


def main():
    args = floor.sweep_args(__doc__, "1024,2048,4096", "64,128", dtypes=False)
    results = []
    sm_count = cp.cuda.Device().attributes["MultiProcessorCount"]
    for row, flops, problem, bufs, stream, out, exact, runs in floor.fp32_rows(args):
        d, errs = row["d"], {}
        specs = {OLD_FAST: wgmma_fp32_spec(d, 1)}
        specs.update({f"tf32{t}": wgmma_tf32_spec(d, t) for t in WGMMA_TF32_CANDIDATES[d]})
        for name, spec in specs.items():
            plan = _dispatch.plan_for_spec(problem, spec, 90, sm_count=sm_count)
            runs[name] = lambda plan=plan: api._run(plan, problem, *bufs, None, stream, 0)
            errs[name + "_err"] = floor.check_output(runs[name], out, exact, FAST_REL_BOUND,
                                                     plan.spec.variant_name)
        # torch's backend switch is global state that only the SDPA call reads.
        with sdpa_kernel(SDPBackend.EFFICIENT_ATTENTION):
            times = floor.interleaved_ms(runs)
        row.update({name: round(flops / ms / 1e9, 1) for name, ms in times.items()}, **errs)
        row["dispatch"] = _dispatch.plan(problem, 90, precision="fast").spec.variant_name
        results.append(row)
        cands = [n for n in specs if n != OLD_FAST]
        print(floor.summary_line(row, "efficient", cands, f"tf32{WGMMA_TF32_TILES[d]}", extra=(OLD_FAST,))
              + f"  {OLD_FAST}/efficient={row[OLD_FAST] / row['efficient']:.2f}"
              + f"  dispatch={row['dispatch']}", flush=True)
    floor.write_results(results, "ab_tf32.json")


if __name__ == "__main__":
    main()
