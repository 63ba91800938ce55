"""Tile sweep for the mma.sync kernel: times candidate (block_m, block_n, warps,
m_tiles) variants against torch SDPA's flash backend in the same run.

    python bench/tune_mma.py [--seqlens 1024,4096] [--dims 80,96] [--dtype bf16]

Each head dim runs at its mma width (mma_width: 80 has its own) and times that
width's MMA_CANDIDATES (the table's entry alone where none are listed).
Results feed the MMA_TILES table in cupyflash/_spec.py and bench/notes/mma.md
(from "v2 — 32 query rows per warp" on).
"""

from __future__ import annotations


import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

from cupyflash import _dispatch, api
from cupyflash._spec import MMA_CANDIDATES, MMA_TILES, mma_spec, mma_width

import floor  # bench/ is on sys.path when this runs as a script
from floor import sweep_args, sweep_inputs


def time_ms(fn):
    return floor.time_ms(fn, repeats=25, inner=1)  # one call per sample, as this sweep always did


def main():
    args = sweep_args(__doc__)
    results = []
    for d in args.dims:
        width = mma_width(d, d)
        for s in args.seqlens:
            # (DeviceBuffers: _run takes element strides, not CuPy's byte strides)
            b, h, (q, k, v), bufs, stream = sweep_inputs(d, s, args.torch_dtype)
            for causal in (False, True):
                flops = 4 * b * h * d * (s * (s + 1) / 2 if causal else s * s)
                _, problem = api._validate(*(x.owner for x in bufs[:3]), causal, "bottom_right", None, "bshd")
                qt, kt, vt = (x.transpose(1, 2) for x in (q, k, v))
                with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
                    fa2 = flops / time_ms(lambda: torch.nn.functional.scaled_dot_product_attention(
                        qt, kt, vt, is_causal=causal)) / 1e9
                row = {"d": d, "s": s, "causal": causal, "fa2": round(fa2, 1)}
                for tiles in MMA_CANDIDATES.get(width, (MMA_TILES[width],)):
                    spec = mma_spec(problem.dtype, width, tiles)
                    plan = _dispatch.plan_for_spec(problem, spec, 90)
                    ms = time_ms(lambda: api._run(plan, problem, *bufs, None, stream, 0))
                    row[str(tiles)] = round(flops / ms / 1e9, 1)
                results.append(row)
                best = max((k_ for k_ in row if k_.startswith("(")), key=lambda k_: row[k_])
                print(f"d={d} s={s} causal={causal!s:5} fa2={fa2:6.1f}  " +
                      "  ".join(f"{k_}={row[k_]:6.1f}" for k_ in row if k_.startswith("(")) +
                      f"  best={best} ratio={row[best] / fa2:.2f}  table={MMA_TILES[width]}", flush=True)
    floor.write_results(results, "tune_mma.json")


if __name__ == "__main__":
    main()
