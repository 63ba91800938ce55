"""The pre-pass of the float32 wgmma kernels (backend "wgmma" or precision "fast").

Each of q, k, v is rescaled by a power of two (exact: no rounding) so that its
largest magnitude lands in (2^13, 2^14], inside fp16's range with room to spare,
and written as two contiguous, zero-padded fp16 tensors hi and lo with
x * 2^e = hi + lo up to fp16 rounding of lo (bench/notes/fp32_fp64.md, "fp32 on
tensor cores": 3 x FP16 keeps fp32 accuracy). The factors are computed and applied on
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
    # All three factors and the two undoing multipliers in one launch (the
    # pre-pass is a fixed cost per call: bench/notes/fp32_fp64.md, "fp32 pre-pass
    # in fewer launches").
    # 2^e with max |x * 2^e| in (2^(T-1), 2^T]; e clipped to +-max_shift; an
    # all-zero tensor (max 0) takes the largest shift, as 2^-1000 stands in for 0.
    factors = cupy.ElementwiseKernel(
        "float32 mq, float32 mk, float32 mv, int32 target, int32 shift_q, int32 shift_k, int32 shift_v",
        "float32 fq, float32 fk, float32 fv, float32 score_mul, float32 out_mul",
        """
        const double eq = cupyflash_shift(mq, target, shift_q);
        const double ek = cupyflash_shift(mk, target, shift_k);
        const double ev = cupyflash_shift(mv, target, shift_v);
        fq = (float)exp2(eq); fk = (float)exp2(ek); fv = (float)exp2(ev);
        score_mul = (float)exp2(-eq - ek); out_mul = (float)exp2(-ev);
        """,
        "cupyflash_split_factors",
        preamble="""
        __device__ double cupyflash_shift(float m, int target, int max_shift) {
          const double tiny = 9.332636185032189e-302;  // 2^-1000
          const double e = (double)target - ceil(log2(fmax((double)m, tiny)));
          return fmin(fmax(e, -(double)max_shift), (double)max_shift);
        }
        """)
    split = cupy.ElementwiseKernel(
        "float32 x, float32 s", "float16 hi, float16 lo",
        "float y = x * s; hi = (float16)y; lo = (float16)(y - (float)hi);",
        "cupyflash_split_fp16")
    scale = cupy.ElementwiseKernel("float32 x, float32 s", "float16 hi", "hi = (float16)(x * s);",
                                   "cupyflash_scale_fp16")
    return split, scale, absmax, factors


def split_operands(cupy, bufs: dict[str, DeviceBuffer], layout: str, with_lo: bool = True) -> SplitOperands:
    """hi (and lo) fp16 copies of q, k, v (float32 DeviceBuffers) and the undoing factors."""
    split, scale, absmax, factors = _kernels()
    xs = {}
    for name, buf in bufs.items():
        x = buf.as_cupy()
        xs[name] = x.transpose(0, 2, 1, 3) if layout == "bhsd" else x
    maxima = [absmax(x) if x.size else cupy.zeros((), dtype=cupy.float32) for x in xs.values()]
    f = cupy.empty(5, dtype=cupy.float32)  # fq, fk, fv, score multiplier, output multiplier
    factors(*maxima, TARGET_EXP, MAX_SHIFT["q"], MAX_SHIFT["k"], MAX_SHIFT["v"], *(f[i] for i in range(5)))
    hi, lo = {}, {}
    for i, (name, x) in enumerate(xs.items()):
        dim = x.shape[3]
        padded = dim + (-dim) % PAD_ELEMS
        parts = [cupy.empty(x.shape[:3] + (padded,), dtype=cupy.float16) for _ in range(2 if with_lo else 1)]
        for part in parts:
            if padded != dim:
                part[..., dim:] = 0  # the kernel reads whole 16-byte rows: padding must be zeros
        hi[name] = parts[0]
        if with_lo:
            lo[name] = parts[1]
        if not x.size:
            continue
        views = [part[..., :dim] if padded != dim else part for part in parts]
        (split if with_lo else scale)(x, f[i], *views)
    return SplitOperands(hi, lo, f[3:5])
