"""GPU time of the float32 pre-pass alone (cupyflash._split.split_operands: one
launch of split_fp32_tiles) at b16 s1024 h16 d128, bshd float32 CuPy arrays,
with lo (the tiles of the split variant at that width) and without (those of the
one-term variant). CUDA events around each call on one stream, warm-up first
(compiles and loads the kernel), median of the samples.

    python bench/prepass_time.py [--batch 16 --seqlen 1024 --heads 16 --dim 128] [--samples 50]
    python bench/prepass_time.py --old ab_main [--old ab_x ...]   (same-run A/B, from bench/)

With ``--old``, each ab_NAME tree's pre-pass (its package renamed cupyflash_NAME, as for
bench/ab_auto.py) and this tree's are timed in interleaved rounds (floor.interleaved_ms,
GPU time only), in three forms: hi + lo of q, k, v (the split), hi of q, k, v (the fast
mode with q from the pre-pass) and hi of k, v (the fast mode whose consumers convert q).

GB/s counts the ideal traffic: q, k, v read once (each tile is staged in shared
memory between its abs-max and its conversion) and hi (and lo) written once.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WARMUP = 5
F32_BYTES, F16_BYTES = 4, 2
READS = 1  # one read: per-tile shifts need no tensor-wide maximum first


def _tiles(dim: int, with_lo: bool) -> tuple[int, int]:
    """(block_m, block_n) of the shipped float32 variant that reads these copies."""
    from cupyflash._spec import wgmma_fp32_spec, wgmma_width

    spec = wgmma_fp32_spec(wgmma_width(dim, dim), 3 if with_lo else 1)
    return spec.block_m, spec.block_n


def time_prepass(cupy, bufs, with_lo: bool, samples: int) -> float:
    """Median milliseconds of one split_operands call."""
    from cupyflash._split import split_operands

    block_m, block_n = _tiles(bufs["q"].shape[3], with_lo)
    for _ in range(WARMUP):
        split_operands(cupy, bufs, "bshd", block_m, block_n, with_lo)
    cupy.cuda.get_current_stream().synchronize()
    start, end = cupy.cuda.Event(), cupy.cuda.Event()
    times = []
    for _ in range(samples):
        start.record()
        split_operands(cupy, bufs, "bshd", block_m, block_n, with_lo)
        end.record()
        end.synchronize()
        times.append(cupy.cuda.get_elapsed_time(start, end))
    return statistics.median(times)


def traffic_bytes(batch: int, seqlen: int, heads: int, dim: int, with_lo: bool, tensors: int = 3) -> int:
    elems = tensors * batch * seqlen * heads * dim
    padded = tensors * batch * seqlen * heads * (dim + (-dim) % 8)
    return READS * elems * F32_BYTES + (2 if with_lo else 1) * padded * F16_BYTES


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--seqlen", type=int, default=1024)
    ap.add_argument("--heads", type=int, default=16)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--samples", type=int, default=50)
    ap.add_argument("--old", action="append", default=[], help="an ab_NAME tree to time beside this one")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    import cupy

    if args.old:
        return ab(cupy, args)

    from cupyflash._arrays import _cupy_buffer

    shape = (args.batch, args.seqlen, args.heads, args.dim)
    rs = cupy.random.RandomState(0)
    bufs = {name: _cupy_buffer(rs.standard_normal(shape, dtype=cupy.float32)) for name in ("q", "k", "v")}
    print(f"pre-pass {shape} bshd float32, {cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)['name'].decode()}")
    for with_lo in (True, False):
        ms = time_prepass(cupy, bufs, with_lo, args.samples)
        gbs = traffic_bytes(*shape, with_lo) / (ms * 1e-3) / 1e9
        print(f"  {'hi + lo' if with_lo else 'hi only'}: {ms:.3f} ms  {gbs:.0f} GB/s (ideal traffic)")
    return 0


def ab(cupy, args) -> int:
    """Every tree's pre-pass in interleaved rounds, per form (see the docstring)."""
    from floor import interleaved_ms, load_trees  # bench/ is on sys.path as a script

    import cupyflash

    trees = {**load_trees(args.old), "new": cupyflash}
    shape = (args.batch, args.seqlen, args.heads, args.dim)
    rs = cupy.random.RandomState(0)
    arrays = {name: rs.standard_normal(shape, dtype=cupy.float32) for name in ("q", "k", "v")}
    print(f"pre-pass A/B {shape} bshd float32, {cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)['name'].decode()}")
    for form, with_lo, with_q in (("hi + lo", True, True), ("hi", False, True), ("hi of k, v", False, False)):
        block_m, block_n = _tiles(args.dim, with_lo)
        runs = {}
        for name, pkg in trees.items():
            bufs = {n: pkg._arrays._cupy_buffer(a) for n, a in arrays.items()}
            runs[name] = (lambda pkg=pkg, bufs=bufs: pkg._split.split_operands(cupy, bufs, "bshd", block_m, block_n,
                                                                              with_lo, with_q))
        moved = traffic_bytes(*shape, with_lo, 3 if with_q else 2)
        times = interleaved_ms(runs)
        print(f"  {form:10s} " + "  ".join(f"{n}={ms:.4f} ms ({moved / (ms * 1e-3) / 1e9:.0f} GB/s)"
                                           for n, ms in times.items()), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
