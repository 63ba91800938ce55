"""Same-run A/B of float32 attention (split and fast) of two cupyflash trees,
whole calls (pre-pass included), against torch SDPA's efficient backend in fp32.

    python bench/ab_fp32.py --old ab_old [--old ab_other ...] [--seqlens 1024,2048] [--dims 64,128]
                            [--precisions highest,fast]

Each ``--old ab_NAME`` holds another tree with its package renamed ``cupyflash_NAME``
(as for bench/ab_auto.py). Each sample times 10 back-to-back calls, so host cost
overlaps the GPU as in a pipeline; contenders run in interleaved rounds.
"""

from __future__ import annotations

import argparse
import statistics

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

import cupyflash
from floor import load_trees, time_ms  # bench/ is on sys.path as a script

ROUNDS = 5
FP32_BOUND = 1e-5  # relative L2 against torch's fp32 efficient output, split mode
FAST_BOUND = 2e-3


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--old", required=True, action="append", help="an ab_NAME tree; repeat for several")
    ap.add_argument("--seqlens", default="1024,2048")
    ap.add_argument("--dims", default="64,128")
    ap.add_argument("--precisions", default="highest,fast")
    args = ap.parse_args()
    bounds = {"highest": FP32_BOUND, "fast": FAST_BOUND}
    precisions = [(x, bounds[x]) for x in args.precisions.split(",")]
    trees = load_trees(args.old)
    trees["new"] = cupyflash
    for d in (int(x) for x in args.dims.split(",")):
        for s in (int(x) for x in args.seqlens.split(",")):
            b, h = max(16384 // s, 1), 2048 // d
            q, k, v = (torch.randn(b, s, h, d, device="cuda", dtype=torch.float32) for _ in range(3))
            qt, kt, vt = (x.transpose(1, 2) for x in (q, k, v))
            for causal in (False, True):
                flops = 4 * b * h * d * (s * (s + 1) / 2 if causal else s * s)

                def eff():
                    with sdpa_kernel(SDPBackend.EFFICIENT_ATTENTION):
                        return torch.nn.functional.scaled_dot_product_attention(qt, kt, vt, is_causal=causal)

                ref = eff().transpose(1, 2)
                runs = {"efficient": eff}
                for tree_name, pkg in trees.items():
                    for prec, bound in precisions:
                        def call(pkg=pkg, prec=prec):
                            return pkg.attention(q, k, v, causal=causal, precision=prec)
                        err = float((call() - ref).norm() / ref.norm())
                        if not err <= bound * 4:  # the peer itself is fp32, not the float64 reference
                            print(f"WRONG {tree_name} {prec} d={d} s={s} causal={causal} err {err:.2e}", flush=True)
                            continue
                        runs[f"{tree_name}-{prec}"] = call
                samples = {n: [] for n in runs}
                for _ in range(ROUNDS):
                    for n, fn in runs.items():
                        samples[n].append(time_ms(fn, warmup=2, repeats=5, inner=10))
                tf = {n: flops / statistics.median(t) / 1e9 for n, t in samples.items()}
                print(f"d={d} s={s} causal={causal!s:5} " + " ".join(
                    f"{n}={v:6.1f} ({v / tf['efficient']:.2f}x)" for n, v in tf.items()), flush=True)


if __name__ == "__main__":
    main()
