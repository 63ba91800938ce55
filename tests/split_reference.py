"""A NumPy reference of the float32 pre-pass (cupyflash/_split.py), written from
the original formula (the double-precision one of the CuPy kernels it replaced),
not from the kernel's integer version: the GPU test compares the two bit for bit."""

from __future__ import annotations

import math

import numpy as np

from cupyflash._split import MAX_SHIFT, PAD_ELEMS, TARGET_EXP

TINY = 2.0 ** -1000  # the reference's stand-in for a zero maximum


def reference_shift(max_abs: float, max_shift: int, target: int = TARGET_EXP) -> int:
    """e = clip(target - ceil(log2(max(m, 2^-1000))), -max_shift, max_shift), in double precision."""
    e = target - math.ceil(math.log2(max(float(max_abs), TINY)))
    return int(min(max(e, -max_shift), max_shift))


def finite_absmax(x: np.ndarray) -> np.float32:
    a = np.abs(x[np.isfinite(x)])
    return np.float32(a.max()) if a.size else np.float32(0)


def reference_split(xs: dict[str, np.ndarray], with_lo: bool = True):
    """hi, lo (name -> float16 (b, s, h, padded d), zero padding) and scales
    (float32 [2^(-eq-ek), 2^(-ev)]) of q, k, v given as float32 bshd arrays."""
    shifts = {name: reference_shift(finite_absmax(x), MAX_SHIFT[name]) for name, x in xs.items()}
    hi, lo = {}, {}
    with np.errstate(invalid="ignore", over="ignore"):
        for name, x in xs.items():
            y = x.astype(np.float32) * np.float32(2.0 ** shifts[name])  # float32 product, rounded once
            h = y.astype(np.float16)  # round to nearest even
            pad = (-x.shape[3]) % PAD_ELEMS
            widths = ((0, 0), (0, 0), (0, 0), (0, pad))
            hi[name] = np.pad(h, widths)
            if with_lo:
                lo[name] = np.pad((y - h.astype(np.float32)).astype(np.float16), widths)
    scales = np.array([2.0 ** (-shifts["q"] - shifts["k"]), 2.0 ** -shifts["v"]], dtype=np.float32)
    return hi, lo, scales, shifts
