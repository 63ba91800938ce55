"""Compile every shipped kernel variant once, in parallel processes, so that
CuPy's disk cache serves the test suite and the benchmarks (which then spend no
time in NVRTC). Prints one line per variant: registers are in the offline report.
With --candidates, every variant a tuning sweep may time (a sweep then spends its
device time timing, not compiling one variant after another).

    python bench/precompile.py [--jobs 16] [--candidates] [--family wgmma] [--match REGEX]

``--candidates`` takes every tuning candidate too; ``--family`` keeps one kernel
family; ``--match`` keeps the variants whose name matches (e.g. "fp32" for the
float32 kernels a tf32 A/B times). The two filters combine.
"""

from __future__ import annotations

import argparse
import re
import time
from concurrent.futures import ProcessPoolExecutor


def _specs(candidates: bool, family: str | None, match: str | None):
    from cupyflash._spec import candidate_specs, shipped_specs

    specs = candidate_specs() if candidates else shipped_specs()
    return [s for s in specs
            if family in (None, s.family) and (match is None or re.search(match, s.variant_name))]


def _build(job: tuple[int, bool, str | None, str | None]) -> tuple[str, float]:
    from cupyflash._compile import get_function

    index, candidates, family, match = job
    spec = _specs(candidates, family, match)[index]
    t0 = time.perf_counter()
    get_function(spec, 0)
    return spec.variant_name, time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int, default=16)
    ap.add_argument("--candidates", action="store_true", help="every tuning candidate, not only the shipped variants")
    ap.add_argument("--family", choices=("wgmma", "mma", "dmma", "simt"), help="only this kernel family")
    ap.add_argument("--match", default=None, help="only variants whose name matches this regular expression")
    args = ap.parse_args()
    n = len(_specs(args.candidates, args.family, args.match))
    t0 = time.perf_counter()
    with ProcessPoolExecutor(args.jobs) as pool:
        for name, seconds in pool.map(_build, [(i, args.candidates, args.family, args.match) for i in range(n)]):
            print(f"{name:60s} {seconds:6.1f} s")
    print(f"{n} variants in {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
