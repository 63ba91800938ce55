"""HBM ceilings for the float32 pre-pass (cupyflash/_split.py), measured beside it:
a device-to-device copy of the pre-pass's input volume (q, k, v as one float32
array), and an elementwise float32 -> float16 conversion (read 4 bytes, write 2:
the traffic of precision="fast"'s pre-pass) and float32 -> 2 x float16 (read 4,
write 4: "highest"). CUDA events around each call, warm-up first, median.

    python bench/copy_ceiling.py [--elems 100663296] [--samples 30]

The default volume is q, k, v at b16 s1024 h16 d128 (3 x 2^25 elements), the
shape bench/prepass_time.py times. GB/s counts bytes read + bytes written.
"""

from __future__ import annotations

import argparse
import statistics

WARMUP = 3
F32_BYTES, F16_BYTES = 4, 2


def median_ms(cupy, fn, samples: int) -> float:
    for _ in range(WARMUP):
        fn()
    start, end = cupy.cuda.Event(), cupy.cuda.Event()
    times = []
    for _ in range(samples):
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(cupy.cuda.get_elapsed_time(start, end))
    return statistics.median(times)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--elems", type=int, default=3 * 2**25)
    ap.add_argument("--samples", type=int, default=30)
    args = ap.parse_args(argv)
    import cupy

    n = args.elems
    x = cupy.random.standard_normal(n, dtype=cupy.float32)
    y = cupy.empty_like(x)
    h = cupy.empty(n, dtype=cupy.float16)
    lo = cupy.empty(n, dtype=cupy.float16)
    split = cupy.ElementwiseKernel("float32 x", "float16 h, float16 l",
                                   "h = (half)x; l = (half)(x - (float)h);", "split_two")
    cases = {
        "copy f32 -> f32": (lambda: cupy.copyto(y, x), n * (F32_BYTES + F32_BYTES)),
        "f32 -> f16": (lambda: cupy.copyto(h, x, casting="unsafe"), n * (F32_BYTES + F16_BYTES)),
        "f32 -> 2 x f16": (lambda: split(x, h, lo), n * (F32_BYTES + 2 * F16_BYTES)),
    }
    name = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)["name"].decode()
    print(f"{n} float32 elements ({n * F32_BYTES / 1e6:.0f} MB), {name}")
    for label, (fn, nbytes) in cases.items():
        ms = median_ms(cupy, fn, args.samples)
        print(f"  {label:16s} {ms:.3f} ms  {nbytes / (ms * 1e-3) / 1e9:.0f} GB/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
