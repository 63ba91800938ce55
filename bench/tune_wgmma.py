"""Variant sweep for the Hopper (wgmma) kernel: times the candidate (block_n,
stages, pingpong, persistent) variants of cupyflash._spec.WGMMA_CANDIDATES against
torch SDPA's cuDNN and flash backends in the same run.

    python bench/tune_wgmma.py [--seqlens 1024,4096] [--dtype bf16] [--dims 64,128,256] [--only "192,128,;128,128,3"]

Results feed the WGMMA_TILES table in cupyflash/_spec.py and bench/notes/wgmma.md
("wgmma v3", "wgmma tiles for short sequences").
Every contender is timed in interleaved rounds (floor.interleaved_ms), kernel launches only.
"""

from __future__ import annotations


import cupy as cp
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

from cupyflash import _dispatch, api
from cupyflash._spec import WGMMA_CANDIDATES, WGMMA_TILES, wgmma_spec
from floor import interleaved_ms, sweep_args, sweep_inputs, write_results  # bench/ is on sys.path when this runs as a script


def main():
    args = sweep_args(__doc__, texts=(("--only", "time only the candidates whose tiles, written without spaces "
                                            "as 128,128,2,False,True, contain one of these ;-separated strings"),))
    only = [x for x in args.only.split(";") if x]
    results = []
    sm_count = cp.cuda.Device().attributes["MultiProcessorCount"]
    for d in args.dims:
        for s in args.seqlens:
            b, h, (q, k, v), bufs, stream = sweep_inputs(d, s, args.torch_dtype)
            for causal in (False, True):
                flops = 4 * b * h * d * (s * (s + 1) / 2 if causal else s * s)
                _, problem = api._validate(*(x.owner for x in bufs[:3]), causal, "bottom_right", None, "bshd")
                qt, kt, vt = (x.transpose(1, 2) for x in (q, k, v))
                row = {"d": d, "s": s, "causal": causal}
                runs = {}
                for name, be in (("cudnn", SDPBackend.CUDNN_ATTENTION), ("fa2", SDPBackend.FLASH_ATTENTION)):
                    def peer(be=be, causal=causal):
                        with sdpa_kernel(be):
                            return torch.nn.functional.scaled_dot_product_attention(qt, kt, vt, is_causal=causal)
                    runs[name] = peer
                for tiles in WGMMA_CANDIDATES[d]:
                    if only and not any(x in str(tiles).replace(" ", "") for x in only):
                        continue
                    plan = _dispatch.plan_for_spec(problem, wgmma_spec(args.dtype_name, d, tiles), 90, sm_count=sm_count)
                    runs[str(tiles)] = lambda plan=plan: api._run(plan, problem, *bufs, None, stream, 0)
                for name, ms in interleaved_ms(runs).items():
                    row[name] = round(flops / ms / 1e9, 1)
                results.append(row)
                cands = [k_ for k_ in row if k_.startswith("(")]
                best = max(cands, key=lambda k_: row[k_])
                print(f"d={d} s={s} causal={causal!s:5} cudnn={row['cudnn']:6.1f} fa2={row['fa2']:6.1f}  " +
                      "  ".join(f"{k_}={row[k_]:6.1f}" for k_ in cands) +
                      f"  best={best} vs_cudnn={row[best] / row['cudnn']:.2f}  table={WGMMA_TILES[d]}", flush=True)
    write_results(results, "tune_wgmma.json")


if __name__ == "__main__":
    main()
