"""A float64 NumPy reference with the same signature as :func:`cupyflash.attention`.

Public and explicit: cupyflash never runs this behind your back. Inputs are any
host arrays NumPy accepts (including ml_dtypes.bfloat16); they are upcast to
float64 and the result is float64.
"""

from __future__ import annotations

import numpy as np

from ._arrays import ArrayInfo
from ._problem import build_problem


def _info(x: np.ndarray) -> ArrayInfo:
    strides = tuple(s // x.itemsize for s in x.strides)
    return ArrayInfo(tuple(x.shape), str(x.dtype), strides, "cpu", "numpy")


def attention(q, k, v, *, causal: bool = False, causal_alignment: str = "bottom_right",
              softmax_scale: float | None = None, layout: str = "bshd", return_lse: bool = False):
    """float64 attention on the CPU; returns out (and lse) as float64 NumPy arrays.

    Fully masked query rows give output 0 and LSE -inf, as the GPU kernels do.
    """
    q, k, v = (np.ascontiguousarray(x) for x in (q, k, v))
    problem = build_problem(_info(q), _info(k), _info(v), causal=causal, causal_alignment=causal_alignment,
                            softmax_scale=softmax_scale, layout=layout)
    qb, kb, vb = (np.transpose(x, _perm(layout)).astype(np.float64) for x in (q, k, v))
    b, sq, hq, _ = qb.shape
    sk, dv = kb.shape[1], vb.shape[3]
    out = np.zeros((b, sq, hq, dv))
    lse = np.full((b, hq, sq), -np.inf)
    rows = np.arange(sq)[:, None]
    cols = np.arange(sk)[None, :]
    visible = np.ones((sq, sk), dtype=bool)
    if causal:
        visible = cols <= rows + problem.causal_offset
    any_visible = visible.any(axis=1)
    for h in range(hq):
        kv = h // problem.group
        scores = np.einsum("bqd,bkd->bqk", qb[:, :, h], kb[:, :, kv]) * problem.softmax_scale
        scores = np.where(visible, scores, -np.inf)
        row_max = np.where(any_visible, scores.max(axis=2, initial=-np.inf), 0.0)
        p = np.exp(scores - row_max[..., None])
        denom = p.sum(axis=2)
        safe = np.where(denom > 0, denom, 1.0)
        out[:, :, h] = np.einsum("bqk,bkd->bqd", p / safe[..., None], vb[:, :, kv])
        lse[:, h] = np.where(denom > 0, row_max + np.log(safe), -np.inf)
    out = np.transpose(out, _perm(layout))
    return (out, lse) if return_lse else out


def _perm(layout: str) -> tuple[int, ...]:
    return (0, 1, 2, 3) if layout == "bshd" else (0, 2, 1, 3)


__all__ = ["attention"]
