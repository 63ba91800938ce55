"""GPU-side references for the GPU tests (CuPy): exact float64 attention, and the
same computation done naively in the low precision (the FlashAttention-3 yardstick:
our kernel may be at most 2x as wrong as that). The float64 one is cross-checked
against cupyflash.reference (NumPy) in test_gpu_attention.py."""

from __future__ import annotations

import cupy as cp


def _bshd(x, layout):
    return x if layout == "bshd" else x.transpose(0, 2, 1, 3)


def _visible(sq, sk, causal, offset):
    rows = cp.arange(sq)[:, None]
    cols = cp.arange(sk)[None, :]
    return cols <= rows + offset if causal else cp.ones((sq, sk), dtype=bool)


def round_to(x, dtype: str):
    """Round float32 values to ``dtype`` and back (round to nearest even)."""
    if dtype == "float16":
        return x.astype(cp.float16).astype(cp.float32)
    if dtype == "bfloat16":
        u = x.astype(cp.float32).view(cp.uint32)
        u = (u + cp.uint32(0x7FFF) + ((u >> 16) & cp.uint32(1))) & cp.uint32(0xFFFF0000)
        return u.view(cp.float32)
    return x


def attention_ref(q, k, v, *, causal, offset, scale, layout="bshd", precision="float64"):
    """Returns (out (bshd, float64 or float32), lse (b, h, sq))."""
    if precision == "float64":
        ft = cp.float64
        rnd = lambda x: x  # noqa: E731
    else:
        ft = cp.float32
        rnd = lambda x: round_to(x, precision)  # noqa: E731
    q, k, v = (_bshd(x, layout).astype(ft) for x in (q, k, v))
    b, sq, hq, _ = q.shape
    sk, hkv, dv = k.shape[1], k.shape[2], v.shape[3]
    group = hq // hkv
    k = cp.repeat(k, group, axis=2)
    v = cp.repeat(v, group, axis=2)
    s = cp.einsum("bqhd,bkhd->bhqk", q, k)
    s = rnd(s) * scale
    vis = _visible(sq, sk, causal, offset)
    s = cp.where(vis, s, -cp.inf)
    m = s.max(axis=3, keepdims=True) if sk > 0 else cp.full((b, hq, sq, 1), -cp.inf, dtype=ft)
    m_safe = cp.where(cp.isneginf(m), 0, m)
    p = cp.exp(s - m_safe)
    denom = p.sum(axis=3, keepdims=True)
    denom_safe = cp.where(denom > 0, denom, 1)
    p = rnd(p / denom_safe)
    out = rnd(cp.einsum("bhqk,bkhd->bqhd", p, v))
    lse = cp.where(denom[..., 0] > 0, m_safe[..., 0] + cp.log(denom_safe[..., 0]), -cp.inf)
    return out, lse


EPS = {"float16": 2.0 ** -10, "bfloat16": 2.0 ** -7, "float32": 2.0 ** -23, "float64": 2.0 ** -52}
