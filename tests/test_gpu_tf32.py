"""GPU: the tf32 mode (float32, precision="tf32" on Hopper; cupyflash._vt and the
Elem = Tf32 wgmma kernel). The V^T pre-pass matches its NumPy reference bit for
bit (permutation, tf32 rounding, zero padding, strided and bhsd views, NaN and
inf); attention matches the float64 reference within the fast-mode bound, over
odd and unequal sequence lengths, causal alignments, MHA/GQA/MQA, head dims 64
and 128 and odd ones padded inside them, every tf32 tile candidate, and through
the public API (dispatch, out=, LSE, staging). Outputs are poisoned with NaN."""

from __future__ import annotations

import math
import zlib

import numpy as np
import pytest

import cupyflash

pytestmark = pytest.mark.gpu

# q and k rounded to tf32 by their TFLOAT32 tensor maps, p and v rounded too: ~4e-4
# relative on N(0, 1) data (H100: bench/tf32_map_probe.py, test_tf32_error_on_normal_data;
# 1.07e-3 with FLOAT32 maps, whose low bits the tensor cores truncate). The suite's bound
# stays the fast mode's (the fp16 pre-pass kernel shares it).
FAST_BOUND = 2e-3
TF32_NORMAL_BOUND = 6e-4  # d128 s1024 N(0, 1): rounding (4.1e-4 measured), not truncation (1.07e-3)
LSE_TOL = 1e-2  # relative to 1 + |lse|, as for the fp16 fast mode
CAUSAL = [(False, "bottom_right"), (True, "bottom_right"), (True, "top_left")]
HEADS = {"mha": (4, 4), "gqa4": (8, 2), "mqa": (5, 1)}


def _require_hopper():
    import cupy as cp

    cc = int(cp.cuda.Device().compute_capability)
    if cc != 90:
        pytest.skip(f"the tf32 wgmma kernel needs sm_90 (wgmma, TMA); this GPU is sm_{cc}")


def _randn(shape, seed, scale=1.0):
    import cupy as cp

    return cp.random.RandomState(seed).standard_normal(shape, dtype=cp.float32) * cp.float32(scale)


def _poisoned(shape):
    import cupy as cp

    out = cp.empty(shape, dtype=cp.float32)
    out.fill(float("nan"))
    return out


# ---------------------------------------------------------------- the V^T pre-pass
def _check_vt(v, layout):
    import cupy as cp

    from cupyflash import _vt
    from cupyflash._arrays import _cupy_buffer

    got = _vt.transpose_v(cp, _cupy_buffer(v), layout)
    host = cp.asnumpy(v)
    if layout == "bhsd":
        host = host.transpose(0, 2, 1, 3)
    want = _vt.reference_vt(host)
    assert got.dtype == cp.float32 and got.shape == want.shape and got.flags.c_contiguous
    g = got.get()
    assert (np.isnan(g) == np.isnan(want)).all(), "NaN in different places"
    fin = ~np.isnan(want)
    diff = g.view(np.uint32)[fin] != want.view(np.uint32)[fin]
    assert not diff.any(), f"{int(diff.sum())} of {diff.size} elements differ"


@pytest.mark.parametrize("seqlen", [1, 13, 77, 1031])
@pytest.mark.parametrize("dim", [64, 72, 100, 128, 33])
def test_vt_prepass_matches_numpy(seqlen, dim):
    """Keys permuted in groups of 8, rounded to tf32, padded with +0 to a multiple of 8;
    several key and column tiles, a partial last group, dims that leave partial column tiles."""
    v = _randn((2, seqlen, 3, dim), zlib.crc32(repr((seqlen, dim)).encode()) % 2**31, 7.0)
    v[1, seqlen // 2, 2, dim - 1] = float("nan")
    v[0, seqlen - 1, 0, 0] = float("inf")
    _check_vt(v, "bshd")


def test_vt_prepass_strided_views():
    """A bhsd tensor in place, a head slice (strides that skip), a misaligned base."""
    import cupy as cp

    _check_vt(_randn((2, 5, 300, 64), 3), "bhsd")
    _check_vt(_randn((2, 99, 6, 40), 4)[:, :, ::2], "bshd")
    raw = cp.empty(2 * 77 * 3 * 24 + 1, dtype=cp.float32)[1:].reshape(2, 77, 3, 24)
    raw[...] = _randn((2, 77, 3, 24), 5)
    _check_vt(raw, "bshd")


def test_vt_prepass_empty():
    import cupy as cp

    from cupyflash import _vt
    from cupyflash._arrays import _cupy_buffer

    assert _vt.transpose_v(cp, _cupy_buffer(cp.empty((2, 0, 3, 64), dtype=cp.float32)), "bshd").shape == (2, 3, 64, 0)


# ---------------------------------------------------------------- attention
def _check(out, lse, q, k, v, causal, alignment, layout="bshd"):
    import cupy as cp

    from gpu_reference import attention_ref

    bshd = (lambda x: x) if layout == "bshd" else (lambda x: x.transpose(0, 2, 1, 3))
    sq, sk = bshd(q).shape[1], bshd(k).shape[1]
    offset = sk - sq if alignment == "bottom_right" else 0
    ref, ref_lse = attention_ref(q, k, v, causal=causal, offset=offset, scale=1 / math.sqrt(q.shape[-1]),
                                 layout=layout)
    got = bshd(out).astype(cp.float64)
    assert not cp.isnan(got).any(), "output has NaN: an element was not written, or a masked row produced NaN"
    rel = float(cp.linalg.norm(got - ref) / max(float(cp.linalg.norm(ref)), 1e-300))
    assert rel <= FAST_BOUND, f"relative error {rel:.3e} > {FAST_BOUND}"
    if lse is not None:
        assert bool((cp.isneginf(lse) == cp.isneginf(ref_lse)).all()), "LSE -inf pattern differs"
        fin = cp.isfinite(ref_lse)
        if bool(fin.any()):
            err = float(cp.abs(lse[fin] - ref_lse[fin]).max())
            assert err <= LSE_TOL * (1 + float(cp.abs(ref_lse[fin]).max())), err


def _run_spec(spec, q, k, v, out, lse, causal, alignment, layout="bshd"):
    """One given tf32 variant through the internals (not dispatch's choice)."""
    import cupy as cp

    from cupyflash import _dispatch, api
    from cupyflash._arrays import _cupy_buffer

    _, problem = api._validate(q, k, v, causal, alignment, None, layout)
    bufs = [_cupy_buffer(x) for x in (q, k, v, out)]
    pointers = {name: b.ptr % 16 for name, b in zip(("q", "k", "v", "out"), bufs)}
    plan = _dispatch.plan_for_spec(problem, spec, 90, pointers=pointers,
                                   sm_count=cp.cuda.Device().attributes["MultiProcessorCount"])
    api._run(plan, problem, *bufs, _cupy_buffer(lse), cp.cuda.get_current_stream(), 0)
    return plan


def _case(spec, d, dv, sq, sk, hq, hkv, batch, causal, alignment, layout="bshd"):
    import cupy as cp

    seed = zlib.crc32(repr((spec.variant_name, d, dv, sq, sk, hq, causal, alignment, layout)).encode()) % 2**31
    shape = (lambda s, h, x: (batch, s, h, x)) if layout == "bshd" else (lambda s, h, x: (batch, h, s, x))
    q, k, v = (_randn(shape(s, h, x), seed + i) for i, (s, h, x) in
               enumerate(((sq, hq, d), (sk, hkv, d), (sk, hkv, dv))))
    out = _poisoned(shape(sq, hq, dv))
    lse = cp.full((batch, hq, sq), cp.nan, dtype=cp.float32)
    _run_spec(spec, q, k, v, out, lse, causal, alignment, layout)
    _check(out, lse, q, k, v, causal, alignment, layout)


SEQLENS = [(1, 1), (1, 77), (77, 1000), (1000, 1031), (1031, 1000), (2048, 2048)]


@pytest.mark.parametrize("sq,sk", SEQLENS, ids=[f"{a}x{b}" for a, b in SEQLENS])
@pytest.mark.parametrize("d,dv", [(64, 64), (128, 128), (72, 72), (100, 100), (40, 64), (128, 96)])
@pytest.mark.parametrize("heads", list(HEADS))
@pytest.mark.parametrize("causal,alignment", CAUSAL, ids=["full", "causal_br", "causal_tl"])
def test_tf32_table_variants(causal, alignment, heads, d, dv, sq, sk):
    """The table's variant for the width (64 or 128) against float64; odd head dims run
    padded inside it (TMA zero-fills Q, K columns and V^T rows past them)."""
    from cupyflash._spec import wgmma_tf32_spec, wgmma_width

    _require_hopper()
    hq, hkv = HEADS[heads]
    batch = 1 if sq * sk > 2**20 else 2
    _case(wgmma_tf32_spec(wgmma_width(d, dv)), d, dv, sq, sk, hq, hkv, batch, causal, alignment)


def _candidate_ids():
    from cupyflash._spec import WGMMA_TF32_CANDIDATES

    return [(w, t) for w, ts in WGMMA_TF32_CANDIDATES.items() for t in ts]


@pytest.mark.parametrize("width,tiles", _candidate_ids(), ids=lambda x: str(x).replace(" ", ""))
@pytest.mark.parametrize("causal,alignment", CAUSAL, ids=["full", "causal_br", "causal_tl"])
@pytest.mark.parametrize("sq,sk,hq,hkv,batch", [(1000, 1000, 14, 2, 4), (129, 333, 4, 1, 1), (300, 77, 2, 2, 1)],
                         ids=["many_blocks_gqa7", "odd", "sq_gt_sk"])
def test_tf32_candidates(width, tiles, causal, alignment, sq, sk, hq, hkv, batch):
    """Every variant a tf32 tile sweep may time (pingpong, persistent with several items per CTA, stages)."""
    from cupyflash._spec import wgmma_tf32_spec

    _require_hopper()
    d = width - 8
    _case(wgmma_tf32_spec(width, tiles), d, d, sq, sk, hq, hkv, batch, causal, alignment)


def test_tf32_bhsd_layout():
    from cupyflash._spec import wgmma_tf32_spec

    _require_hopper()
    _case(wgmma_tf32_spec(128), 128, 128, 333, 1000, 8, 2, 2, True, "bottom_right", layout="bhsd")


DISPATCH_CASES = [(64, 64, 1000, 1000, False), (64, 64, 1000, 1000, True), (128, 128, 77, 1024, False),
                  (128, 128, 77, 2048, True), (33, 50, 100, 300, False), (33, 50, 100, 300, True),
                  (100, 100, 1024, 1024, False), (100, 100, 1031, 2048, True)]


@pytest.mark.parametrize("d,dv,sq,sk,causal", DISPATCH_CASES, ids=lambda x: str(x))
def test_precision_tf32_dispatches_tf32(d, dv, sq, sk, causal):
    """The public call with precision="tf32" takes the tf32 kernel; out= and LSE;
    head dim 33 stages q and k (rows of 33 floats are not 16-byte strides) and dv 50/100 the output."""
    import cupy as cp

    _require_hopper()
    seed = zlib.crc32(repr(("dispatch", d, dv, sq, sk, causal)).encode()) % 2**31
    q, k, v = (_randn(shape, seed + i) for i, shape in
               enumerate(((2, sq, 4, d), (2, sk, 2, d), (2, sk, 2, dv))))
    plan = cupyflash.explain(q, k, v, causal=causal, precision="tf32")
    assert plan.spec.tf32, plan
    if d == 33:
        assert {"q", "k", "out"} <= set(plan.staged)
    out = _poisoned((2, sq, 4, dv))
    res, lse = cupyflash.attention(q, k, v, causal=causal, precision="tf32", out=out, return_lse=True)
    assert res is out and lse.dtype == cp.float32
    _check(out, lse, q, k, v, causal, "bottom_right")


def test_tf32_error_on_normal_data():
    """TMA rounds q and k to tf32 (TFLOAT32 maps): the error on N(0, 1) data at d128 s1024 is
    rounding's (~4e-4 on an H100), not truncation's (~1.07e-3 with FLOAT32 maps)."""
    import cupy as cp

    from gpu_reference import attention_ref

    _require_hopper()
    q, k, v = (_randn((2, 1024, 8, 128), 40 + i) for i in range(3))
    assert cupyflash.explain(q, k, v, precision="tf32").spec.tf32
    out = cupyflash.attention(q, k, v, precision="tf32")
    ref, _ = attention_ref(q, k, v, causal=False, offset=0, scale=1 / math.sqrt(128), layout="bshd")
    rel = float(cp.linalg.norm(out.astype(cp.float64) - ref) / cp.linalg.norm(ref))
    assert rel <= TF32_NORMAL_BOUND, f"relative error {rel:.3e} > {TF32_NORMAL_BOUND} (truncated, not rounded?)"


def test_tf32_large_magnitudes():
    """fp32's exponent range needs no rescaling: operands far outside fp16's range."""
    import cupy as cp

    _require_hopper()
    q, k, v = _randn((2, 500, 4, 64), 1, 40.0), _randn((2, 700, 2, 64), 2, 1e-3), _randn((2, 700, 2, 64), 3, 1e20)
    out, lse = cupyflash.attention(q, k, v, causal=True, precision="tf32", return_lse=True)
    assert cupyflash.explain(q, k, v, causal=True, precision="tf32").spec.tf32
    _check(out, lse, q, k, v, True, "bottom_right")
    assert not cp.isinf(out).any()
