"""Tile sweep for the mma.sync kernel: times candidate (block_m, block_n, warps,
m_tiles) variants against torch SDPA's flash backend in the same run.

    python bench/tune_mma.py [--seqlens 1024,4096] [--dims 80,96] [--dtype bf16]

Each head dim runs at its mma width (mma_width: 80 has its own) and times that
width's MMA_CANDIDATES (the table's entry alone where none are listed).
Results feed the MMA_TILES table in cupyflash/_spec.py and bench/notes/mma.md
(from "v2 — 32 query rows per warp" on).
FA2 and every candidate are timed in interleaved rounds (floor.interleaved_ms),
kernel launches only (plans made beforehand): at short seqlens separate runs drift
by up to 20 %, more than the differences between tiles.
"""

from __future__ import annotations


import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

from cupyflash import _dispatch, api
from cupyflash._spec import MMA_CANDIDATES, MMA_TILES, mma_spec, mma_width

import floor  # bench/ is on sys.path when this runs as a script
from floor import interleaved_ms, sweep_args, sweep_inputs


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
                runs = {"fa2": lambda causal=causal: torch.nn.functional.scaled_dot_product_attention(
                    qt, kt, vt, is_causal=causal)}
                for tiles in MMA_CANDIDATES.get(width, (MMA_TILES[width],)):
                    plan = _dispatch.plan_for_spec(problem, mma_spec(problem.dtype, width, tiles), 90)
                    runs[str(tiles)] = lambda plan=plan: api._run(plan, problem, *bufs, None, stream, 0)
                # The backend choice is torch's global state and touches only the SDPA call
                # (as before, its switch stays outside the timed calls).
                with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
                    times = interleaved_ms(runs)
                row = {"d": d, "s": s, "causal": causal}
                row.update({name: round(flops / ms / 1e9, 1) for name, ms in times.items()})
                results.append(row)
                cands = [k_ for k_ in row if k_.startswith("(")]
                best = max(cands, key=lambda k_: row[k_])
                print(f"d={d} s={s} causal={causal!s:5} fa2={row['fa2']:6.1f}  " +
                      "  ".join(f"{k_}={row[k_]:6.1f}" for k_ in cands) +
                      f"  best={best} ratio={row[best] / row['fa2']:.2f}  table={MMA_TILES[width]}", flush=True)
    floor.write_results(results, "tune_mma.json")


if __name__ == "__main__":
    main()
