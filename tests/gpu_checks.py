"""Shared checks of the GPU tests: a poisoned output buffer, the comparison of a
kernel's result with the float64 and naive references (FlashAttention-3's rule for
fp16/bf16; relative error for fp32 and fp64; the LSE), and the skip for a kernel
family this GPU cannot run. CuPy is imported inside the functions: the test
modules import this at collection, also on machines without a GPU."""

from __future__ import annotations

import math

import numpy as np
import pytest

from helpers import NP_DTYPES


def poisoned(shape, dtype):
    import cupy as cp

    out = cp.empty(shape, dtype=NP_DTYPES[dtype])
    out.fill(float("nan"))
    return out


def check(out, lse, q, k, v, *, causal, alignment, dtype, layout="bshd", scale=None):
    """Compare a kernel result (CuPy arrays) with the float64 and naive references."""
    import cupy as cp

    from gpu_reference import EPS, attention_ref

    bshd = (lambda x: x) if layout == "bshd" else (lambda x: x.transpose(0, 2, 1, 3))
    sq, sk = bshd(q).shape[1], bshd(k).shape[1]
    d = q.shape[-1]
    scale = 1 / math.sqrt(d) if scale is None else scale
    offset = sk - sq if alignment == "bottom_right" else 0
    ref, ref_lse = attention_ref(q, k, v, causal=causal, offset=offset, scale=scale, layout=layout)
    got = bshd(out).astype(cp.float64)
    assert not cp.isnan(got).any(), "output has NaN: an element was not written, or a masked row produced NaN"
    if dtype in ("float16", "bfloat16"):
        naive, _ = attention_ref(q, k, v, causal=causal, offset=offset, scale=scale, layout=layout, precision=dtype)
        err = float(cp.abs(got - ref).max())
        naive_err = float(cp.abs(naive.astype(cp.float64) - ref).max())
        assert err <= 2 * naive_err + EPS[dtype] / 2, f"max error {err:.3e} > 2 x naive {naive_err:.3e} + atol"
        lse_tol = 1e-3
    else:
        rel = float(cp.linalg.norm(got - ref) / max(float(cp.linalg.norm(ref)), 1e-300))
        bound = 1e-5 if dtype == "float32" else 1e-12
        assert rel <= bound, f"relative error {rel:.3e} > {bound}"
        # The LSE is float32 for every input dtype; fp32 sums over thousands of keys.
        lse_tol = 1e-5 if dtype == "float32" else 1e-6
    if lse is not None:
        assert lse.dtype == np.float32
        assert bool((cp.isneginf(lse) == cp.isneginf(ref_lse)).all()), "LSE -inf pattern differs"
        fin = cp.isfinite(ref_lse)
        lse_err = float(cp.abs(lse[fin].astype(cp.float64) - ref_lse[fin]).max()) if bool(fin.any()) else 0.0
        assert lse_err <= lse_tol * (1 + float(cp.abs(ref_lse[fin]).max() if bool(fin.any()) else 0)), lse_err


def _arch():
    import cupy as cp

    return int(cp.cuda.Device().compute_capability)


def require_backend(backend):
    """Skip, with the reason, a family this GPU cannot run."""
    if backend == "wgmma" and _arch() != 90:
        pytest.skip(f"backend 'wgmma' needs sm_90; this GPU is sm_{_arch()}")
