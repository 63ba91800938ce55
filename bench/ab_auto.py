"""Same-run timing of the dispatched (auto) kernel against cuDNN over the bench's
standard shapes, for comparing two trees of cupyflash in one device call: run it
once per tree (PYTHONPATH picks the tree) and compare the cupyflash / cuDNN
ratios, which cancel most of the clock drift between the two runs.

    python bench/ab_auto.py --label new [--seqlens 512,1024,4096] [--dims 64,128,256] [--dtype bf16]

Every timed output is first checked against cuDNN's (relative L2 error <= 2e-2:
a wrong kernel is reported, not timed). Writes ab_<label>.json under $OUT.
"""

from __future__ import annotations

import argparse

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

import cupyflash
from floor import SWEEP_DTYPES, time_ms, write_results  # bench/ is on sys.path when this runs as a script

AGREEMENT_BOUND = 2e-2  # 16-bit outputs of two correct kernels differ by ~1e-3


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--label", default="run")
    ap.add_argument("--seqlens", default="512,1024,4096")
    ap.add_argument("--dims", default="64,128,256")
    ap.add_argument("--dtype", default="bf16", choices=sorted(SWEEP_DTYPES))
    args = ap.parse_args()
    label = args.label
    seqlens = [int(x) for x in args.seqlens.split(",")]
    dims = [int(x) for x in args.dims.split(",")]
    torch_dtype, _ = SWEEP_DTYPES[args.dtype]
    rows = []
    for d in dims:
        for s in seqlens:
            b, h = max(16384 // s, 1), 2048 // d
            q, k, v = (torch.randn(b, s, h, d, device="cuda", dtype=torch_dtype) for _ in range(3))
            qt, kt, vt = (x.transpose(1, 2) for x in (q, k, v))
            for causal in (False, True):
                flops = 4 * b * h * d * (s * (s + 1) / 2 if causal else s * s)
                with sdpa_kernel(SDPBackend.CUDNN_ATTENTION):
                    peer = lambda: torch.nn.functional.scaled_dot_product_attention(qt, kt, vt, is_causal=causal)
                    ref = peer().transpose(1, 2).float()
                    cudnn = flops / time_ms(peer) / 1e9
                ours = lambda: cupyflash.attention(q, k, v, causal=causal)
                err = float((ours().float() - ref).norm() / ref.norm())
                row = {"d": d, "s": s, "causal": causal, "cudnn": round(cudnn, 1), "err": err}
                if err <= AGREEMENT_BOUND:
                    row["cupyflash"] = round(flops / time_ms(ours) / 1e9, 1)
                    row["ratio"] = round(row["cupyflash"] / cudnn, 3)
                rows.append(row)
                print(f"{label} d={d} s={s} causal={causal!s:5} cudnn={cudnn:6.1f} "
                      f"cupyflash={row.get('cupyflash', 'WRONG')} ratio={row.get('ratio', '-')} err={err:.1e}",
                      flush=True)
            del q, k, v, qt, kt, vt
    write_results(rows, f"ab_{label}.json")


if __name__ == "__main__":
    main()
