"""Array builders shared by the CPU and GPU tests."""

from __future__ import annotations

import ml_dtypes
import numpy as np

NP_DTYPES = {
    "float16": np.dtype(np.float16),
    "bfloat16": np.dtype(ml_dtypes.bfloat16),
    "float32": np.dtype(np.float32),
    "float64": np.dtype(np.float64),
}


def randn(rng: np.random.Generator, shape, dtype: str) -> np.ndarray:
    """Fresh N(0, 1) data in ``dtype`` (never zeros: they hide unwritten outputs)."""
    return rng.standard_normal(shape).astype(NP_DTYPES[dtype])


def qkv(rng, batch, sq, sk, hq, hkv, d, dv, dtype, layout="bshd"):
    def shape(s, h, dim):
        return (batch, s, h, dim) if layout == "bshd" else (batch, h, s, dim)

    return (randn(rng, shape(sq, hq, d), dtype), randn(rng, shape(sk, hkv, d), dtype),
            randn(rng, shape(sk, hkv, dv), dtype))


def expected_grid(plan, seqlen_q: int, heads_q: int, batch: int) -> tuple[int, int, int]:
    """The launch grid a plan should have: one CTA per (query block, head, batch), or
    for a persistent variant one CTA per SM (at most one per query block)."""
    m_blocks = -(-seqlen_q // plan.spec.block_m)
    if plan.spec.persistent:
        return (min(m_blocks * heads_q * batch, plan.sm_count), 1, 1)
    return (m_blocks, heads_q, batch)
