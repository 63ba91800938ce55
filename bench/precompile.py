"""Compile every shipped kernel variant once, in parallel processes, so that
CuPy's disk cache serves the test suite and the benchmarks (which then spend no
time in NVRTC). Prints one line per variant: registers are in the offline report.

    python bench/precompile.py [--jobs 16]
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ProcessPoolExecutor


def _build(index: int) -> tuple[str, float]:
    from cupyflash._compile import get_function
    from cupyflash._spec import shipped_specs

    spec = shipped_specs()[index]
    t0 = time.perf_counter()
    get_function(spec, 0)
    return spec.variant_name, time.perf_counter() - t0


def main() -> int:
    from cupyflash._spec import shipped_specs

    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int, default=16)
    args = ap.parse_args()
    n = len(shipped_specs())
    t0 = time.perf_counter()
    with ProcessPoolExecutor(args.jobs) as pool:
        for name, seconds in pool.map(_build, range(n)):
            print(f"{name:60s} {seconds:6.1f} s")
    print(f"{n} variants in {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
