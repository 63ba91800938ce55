"""``python -m cupyflash``: run one default problem on the GPU, check it against
the float64 reference and print its speed.

    python -m cupyflash [--dtype bf16] [--seqlen 4096] [--head-dim 128] [--causal]
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from . import attention, explain, reference
from .errors import NoGPUError

_DTYPES = {"fp16": "float16", "bf16": "bfloat16", "fp32": "float32", "fp64": "float64"}
# ||out - ref|| / ||ref|| a correct kernel stays well inside, per input dtype
_REL_TOLERANCE = {"bf16": 2e-2, "fp16": 4e-3, "fp32": 1e-5, "fp64": 1e-12}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m cupyflash", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dtype", choices=sorted(_DTYPES), default="bf16")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--heads", type=int, default=16)
    ap.add_argument("--seqlen", type=int, default=4096)
    ap.add_argument("--head-dim", type=int, default=128)
    ap.add_argument("--causal", action="store_true")
    ap.add_argument("--repeats", type=int, default=50)
    ap.add_argument("--backend", default="auto", help="auto, wgmma, mma or simt (see cupyflash.attention)")
    args = ap.parse_args(argv)

    try:
        import cupy as cp

        cp.cuda.runtime.getDeviceCount()
    except (ImportError, RuntimeError) as exc:
        raise NoGPUError(f"python -m cupyflash needs a CUDA GPU and CuPy: {exc}") from exc

    dtype = _DTYPES[args.dtype]
    np_dtype = np.dtype(dtype) if dtype != "bfloat16" else np.dtype(__import__("ml_dtypes").bfloat16)
    b, h, s, d = args.batch, args.heads, args.seqlen, args.head_dim
    rng = np.random.default_rng(0)
    q, k, v = (cp.asarray(rng.standard_normal((b, s, h, d)).astype(np_dtype)) for _ in range(3))
    print(explain(q, k, v, causal=args.causal, backend=args.backend))

    out = attention(q, k, v, causal=args.causal, backend=args.backend)  # compiles (or loads) the kernel
    # Check the first batch element against float64 (the whole problem would be slow on the CPU).
    ref = reference.attention(*(x[:1].get() for x in (q, k, v)), causal=args.causal)
    got = out[:1].get().astype(np.float64)
    rel = float(np.linalg.norm(got - ref) / np.linalg.norm(ref))

    start, stop = cp.cuda.Event(), cp.cuda.Event()
    times = []
    for _ in range(args.repeats):
        start.record()
        attention(q, k, v, causal=args.causal, out=out, backend=args.backend)
        stop.record()
        stop.synchronize()
        times.append(cp.cuda.get_elapsed_time(start, stop))
    ms = float(np.median(times))
    attended = s * (s + 1) / 2 if args.causal else s * s
    tflops = 4 * b * h * d * attended / (ms * 1e-3) / 1e12
    name = cp.cuda.runtime.getDeviceProperties(cp.cuda.Device().id)["name"].decode()
    print(f"\n{name}: batch {b}, heads {h}, seqlen {s}, head_dim {d}, {args.dtype}, causal={args.causal}")
    ok = rel <= _REL_TOLERANCE[args.dtype]  # NaN fails
    print(f"relative error vs float64 reference: {rel:.2e} ({'ok' if ok else 'FAIL'}: "
          f"bound {_REL_TOLERANCE[args.dtype]:.0e} for {args.dtype})")
    print(f"median time: {ms:.3f} ms  ->  {tflops:.1f} TFLOP/s")
    return 0 if ok else 1


def _cli() -> int:
    try:
        return main()
    except NoGPUError as exc:  # a plain message, not a traceback: nothing is wrong with the install
        print(f"cupyflash: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(_cli())
