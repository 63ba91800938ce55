"""The pre-pass of the float32 wgmma kernels (backend "wgmma" or precision "fast").

Each of q, k, v is rescaled by a power of two (exact: no rounding) so that its
largest magnitude lands in (2^13, 2^14], inside fp16's range with room to spare,
and written as two contiguous, zero-padded fp16 tensors hi and lo with
x * 2^e = hi + lo up to fp16 rounding of lo (bench/NOTES.md, "fp32 on tensor
cores": 3 x FP16 keeps fp32 accuracy). The factors are computed and applied on
the device, so the call stays free of host synchronisation; the kernel reads
the two numbers that undo them from ``scales`` = [1 / (s_q * s_k), 1 / s_v].
With ``with_lo=False`` (precision "fast") only hi is made.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from ._arrays import DeviceBuffer

# Target exponent: max |x * 2^e| in (2^(T-1), 2^T]; fp16's largest finite value is 65504 < 2^16.
TARGET_EXP = 14
# Bounds on the shift e, so that the undoing factors stay normal float32 numbers
# whatever the data (all-zero inputs included): |e_q|, |e_k| <= 63 keeps
# 1 / (s_q * s_k) within 2^+-126; |e_v| <= 120 keeps 1 / s_v normal. The range
# served exactly is therefore max |q|, max |k| in [2^-49, 2^77] (1.8e-15 .. 1.5e23)
# and max |v| in [2^-106, 2^134 capped by float32]; outside it the operands lose
# precision (tiny) or overflow fp16 (huge) and precision="highest" with the
# default backend (exact CUDA cores) is the right call.
MAX_SHIFT = {"q": 63, "k": 63, "v": 120}
PAD_ELEMS = 8  # hi/lo rows padded to a multiple of 8 fp16 elements (16-byte TMA strides)


@dataclass
class SplitOperands:
    hi: dict  # name -> cupy float16 array (batch, seq, heads, padded dim), contiguous
    lo: dict  # the same, or empty without lo
    scales: object  # cupy float32 array [score multiplier, output multiplier]


@functools.cache
def _kernels():
    import cupy

    # max |x| over the finite elements: a NaN or inf stays confined to the rows it
    # reaches instead of poisoning every factor (and with it every head).
    absmax = cupy.ReductionKernel("float32 x", "float32 m", "isfinite(x) ? fabsf(x) : 0.0f", "max(a, b)",
                                  "m = a", "0.0f", "cupyflash_finite_absmax")
    split = cupy.ElementwiseKernel(
        "float32 x, float32 s", "float16 hi, float16 lo",
        "float y = x * s; hi = (float16)y; lo = (float16)(y - (float)hi);",
        "cupyflash_split_fp16")
    scale = cupy.ElementwiseKernel("float32 x, float32 s", "float16 hi", "hi = (float16)(x * s);",
                                   "cupyflash_scale_fp16")
    return split, scale, absmax


def _factor(cupy, absmax, x, max_shift: int):
    """2^e with max |x * 2^e| in (2^(T-1), 2^T], as a 0-d float32 device array."""
    if x.size == 0:
        return cupy.ones((), dtype=cupy.float32)
    m = absmax(x).astype(cupy.float64)
    e = cupy.ceil(cupy.log2(cupy.maximum(m, 2.0 ** -1000)))
    return cupy.exp2(cupy.clip(TARGET_EXP - e, -max_shift, max_shift)).astype(cupy.float32)


def split_operands(cupy, bufs: dict[str, DeviceBuffer], layout: str, with_lo: bool = True) -> SplitOperands:
    """hi (and lo) fp16 copies of q, k, v (float32 DeviceBuffers) and the undoing factors."""
    split, scale, absmax = _kernels()
    hi, lo, factor = {}, {}, {}
    for name, buf in bufs.items():
        x = buf.as_cupy()
        if layout == "bhsd":
            x = x.transpose(0, 2, 1, 3)
        dim = x.shape[3]
        padded = dim + (-dim) % PAD_ELEMS
        hi[name] = cupy.zeros(x.shape[:3] + (padded,), dtype=cupy.float16)
        factor[name] = _factor(cupy, absmax, x, MAX_SHIFT[name])
        if with_lo:
            lo[name] = cupy.zeros(x.shape[:3] + (padded,), dtype=cupy.float16)
            if x.size:
                split(x, factor[name], hi[name][..., :dim], lo[name][..., :dim])
        elif x.size:
            scale(x, factor[name], hi[name][..., :dim])
    scales = cupy.stack([1 / (factor["q"] * factor["k"]), 1 / factor["v"]]).astype(cupy.float32)
    return SplitOperands(hi, lo, scales)
