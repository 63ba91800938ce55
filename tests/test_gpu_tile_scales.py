"""GPU: the float32 wgmma kernels undo the pre-pass's per-tile power-of-two
shifts (cuda_src/tile_shifts.h) correctly: q, k and v whose tiles (the
kernel's own query blocks and key tiles, or whole heads) differ in magnitude by
2^20, causal and not, GQA, odd lengths (1000) and an odd head dim (72, padded),
against the float64 reference, overall and per head. A shift undone in the
wrong place (the wrong tile, the wrong units of O) is off by powers of two up to
2^20 and fails by orders of magnitude; a shift shared by the whole tensor would
leave the small heads near the bound (tests/test_split_model.py, the CPU model)."""

from __future__ import annotations

import dataclasses

import math

import numpy as np
import pytest

import cupyflash

from split_reference import tiled_magnitudes
from gpu_checks import check, poisoned, require_backend

pytestmark = pytest.mark.gpu

SPREAD_LOG2 = 20
FAST_BOUND = 2e-3  # test_gpu_attention.FAST_FP32_BOUND
SPLIT_BOUND = 1e-5


def _inputs(seed, batch, sq, sk, hq, hkv, d, by, precision):
    """Host q, k, v with magnitudes varying by the tiles of the variant that will run them."""
    rng = np.random.default_rng(seed)
    shapes = ((batch, sq, hq, d), (batch, sk, hkv, d), (batch, sk, hkv, d))
    probe = [np.zeros((batch, max(s[1], 1), s[2], d), np.float32) for s in shapes]
    spec = cupyflash.explain(*probe, precision=precision, backend="auto", arch=90).spec
    assert spec.fp32_terms == (3 if precision == "highest" else 1), spec.variant_name
    rows = (spec.block_m, spec.block_n, spec.block_n)
    return [tiled_magnitudes(rng, shape, r, SPREAD_LOG2, by) for shape, r in zip(shapes, rows)]


def _per_head_errors(out, q, k, v, causal, alignment):
    import cupy as cp

    from gpu_reference import attention_ref

    sq, sk = q.shape[1], k.shape[1]
    offset = sk - sq if alignment == "bottom_right" else 0
    ref, ref_lse = attention_ref(q, k, v, causal=causal, offset=offset, scale=1 / math.sqrt(q.shape[3]))
    got = out.astype(cp.float64)
    assert not cp.isnan(got).any()
    errs = [float(cp.linalg.norm(got[:, :, h] - ref[:, :, h]) / max(float(cp.linalg.norm(ref[:, :, h])), 1e-300))
            for h in range(out.shape[2])]
    return errs, ref_lse


CASES = [  # (batch, sq, sk, hq, hkv, d)
    (2, 1000, 1000, 8, 2, 72),   # GQA 4:1, partial last tiles, padded head dim
    (1, 239, 1000, 4, 4, 64),
    (2, 1000, 203, 6, 1, 128),   # MQA
]


@pytest.mark.parametrize("by", ["tile", "head"])
@pytest.mark.parametrize("causal,alignment", [(False, "bottom_right"), (True, "bottom_right"), (True, "top_left")],
                         ids=["full", "causal_br", "causal_tl"])
@pytest.mark.parametrize("case", CASES, ids=lambda c: "x".join(map(str, c)))
def test_split_tiles_2_to_the_20_apart(case, causal, alignment, by):
    """3 terms (fp32 accuracy): the suite's 1e-5 bound overall and for every head."""
    import cupy as cp

    require_backend("wgmma")
    batch, sq, sk, hq, hkv, d = case
    q, k, v = (cp.asarray(x) for x in _inputs(sum(case) + causal, batch, sq, sk, hq, hkv, d, by, "highest"))
    out = poisoned((batch, sq, hq, d), "float32")
    res, lse = cupyflash.attention(q, k, v, causal=causal, causal_alignment=alignment, out=out, return_lse=True)
    assert res is out
    check(out, lse, q, k, v, causal=causal, alignment=alignment, dtype="float32")
    errs, _ = _per_head_errors(out, q, k, v, causal, alignment)
    assert max(errs) <= SPLIT_BOUND, errs


@pytest.mark.parametrize("by", ["tile", "head"])
@pytest.mark.parametrize("causal,alignment,sq,sk,d", [
    (False, "bottom_right", 1100, 1100, 72),  # longer than the tf32 rule's 1024: the fp16 kernel
    (True, "bottom_right", 2100, 2049, 128),  # past the causal rule's 2048
    (True, "top_left", 1000, 1000, 200),      # width 256: no tf32 variant, 80-key tiles
], ids=["full_d72", "causal_br_d128", "causal_tl_d200"])
def test_fast_tiles_2_to_the_20_apart(causal, alignment, sq, sk, d, by):
    """1 term (precision="fast" on the fp16 kernel): O follows the largest V tile so
    far and smaller tiles enter with P shifted down; within the fast bound per head."""
    import cupy as cp

    require_backend("wgmma")
    batch, hq, hkv = 1, 4, 2
    q, k, v = (cp.asarray(x) for x in _inputs(sq + d + causal, batch, sq, sk, hq, hkv, d, by, "fast"))
    out = poisoned((batch, sq, hq, d), "float32")
    res, lse = cupyflash.attention(q, k, v, causal=causal, causal_alignment=alignment, out=out, return_lse=True,
                                   precision="fast")
    assert res is out
    errs, ref_lse = _per_head_errors(out, q, k, v, causal, alignment)
    assert max(errs) <= FAST_BOUND, errs
    fin = cp.isfinite(ref_lse)
    assert bool((cp.isneginf(lse) == cp.isneginf(ref_lse)).all())
    assert float(cp.abs(lse[fin] - ref_lse[fin]).max()) <= 1e-2 * (1 + float(cp.abs(ref_lse[fin]).max()))


@pytest.mark.parametrize("precision,d", [("highest", 64), ("fast", 200), ("fast", 100)],
                         ids=["highest_d64", "fast_d200", "fast_d100"])
def test_extreme_v_tiles(precision, d):
    """V tiles at the ends of the shift range in every kv head: all zeros (shift
    +120), 2^-110 (clipped shift), 2^60, next to ordinary ones, causal and GQA.
    Nothing overflows (one term: O moves to the 2^60 tile's units) and the zero
    tile still counts in the softmax's sums."""
    import cupy as cp

    require_backend("wgmma")
    sq, sk = 1000, 1100
    # fast: width 256 has no tf32 variant; width 128 (d 100) the pre-pass's copies too
    probe = np.zeros((1, sk, 2, d), np.float32)
    block_n = cupyflash.explain(probe[:, :sq], probe[:, :, :1], probe[:, :, :1], precision=precision,
                                arch=90).spec.block_n
    rng = np.random.default_rng(17)
    q = cp.asarray(rng.standard_normal((1, sq, 2, d)).astype(np.float32))
    k = cp.asarray(rng.standard_normal((1, sk, 1, d)).astype(np.float32))
    v = rng.standard_normal((1, sk, 1, d))
    for tile, factor in ((1, 0.0), (2, 2.0 ** -110), (4, 2.0 ** 60)):
        v[:, tile * block_n:(tile + 1) * block_n] *= factor
    v = cp.asarray(v.astype(np.float32))
    for causal in (False, True):
        out = poisoned((1, sq, 2, d), "float32")
        cupyflash.attention(q, k, v, causal=causal, out=out, precision=precision)
        errs, _ = _per_head_errors(out, q, k, v, causal, "bottom_right")
        assert max(errs) <= (SPLIT_BOUND if precision == "highest" else FAST_BOUND), (causal, errs)


@pytest.mark.parametrize("by", ["tile", "head"])
@pytest.mark.parametrize("d,sq,sk,causal", [(64, 1000, 1000, True), (100, 333, 1100, False), (128, 2100, 2049, True)],
                         ids=["d64_causal", "d100_full", "d128_causal"])
def test_converting_candidate_tiles_2_to_the_20_apart(d, sq, sk, causal, by):
    """The one-term kernel that converts float32 inside itself (wgmma_convert_spec: a
    tuning candidate, not dispatched): its Q units (64 rows, each its own shift), K
    and V tiles 2^20 apart, GQA, odd lengths; within the fast bound per head."""
    import cupy as cp

    from cupyflash import _dispatch, api
    from cupyflash._arrays import _cupy_buffer
    from cupyflash._spec import WGMMA_ROWS_PER_WARPGROUP, wgmma_convert_spec, wgmma_width

    require_backend("wgmma")
    spec = wgmma_convert_spec(wgmma_width(d, d))
    rng = np.random.default_rng(d + sq + causal)
    shapes = ((1, sq, 4, d), (1, sk, 2, d), (1, sk, 2, d))
    rows = (WGMMA_ROWS_PER_WARPGROUP, spec.block_n, spec.block_n)
    q, k, v = (cp.asarray(tiled_magnitudes(rng, shape, r, SPREAD_LOG2, by)) for shape, r in zip(shapes, rows))
    out = poisoned((1, sq, 4, d), "float32")
    _, problem = api._validate(q, k, v, causal, "bottom_right", None, "bshd")
    sms = cp.cuda.Device().attributes["MultiProcessorCount"]
    plan = _dispatch.plan_for_spec(problem, spec, 90, sm_count=sms)
    api._run(plan, problem, *(_cupy_buffer(x) for x in (q, k, v, out)), None, cp.cuda.get_current_stream(), 0)
    errs, _ = _per_head_errors(out, q, k, v, causal, "bottom_right")
    assert max(errs) <= FAST_BOUND, errs


def _run_q_in_kernel(spec, q, k, v, causal, alignment="bottom_right"):
    """A q_in_kernel variant (the dispatched one or a tuning candidate) through the host path."""
    import cupy as cp

    from cupyflash import _dispatch, api
    from cupyflash._arrays import _cupy_buffer

    out = poisoned(q.shape[:3] + (v.shape[3],), "float32")
    _, problem = api._validate(q, k, v, causal, alignment, None, "bshd")
    sms = cp.cuda.Device().attributes["MultiProcessorCount"]
    plan = _dispatch.plan_for_spec(problem, spec, 90, sm_count=sms)
    # A causal call runs the variant's walk-table twin (KernelSpec.walk_table).
    twin = problem.causal and spec.takes_walk_table
    assert spec.q_in_kernel and plan.spec == (dataclasses.replace(spec, walk_table=True) if twin else spec)
    api._run(plan, problem, *(_cupy_buffer(x) for x in (q, k, v, out)), None, cp.cuda.get_current_stream(), 0)
    return out


def _q_in_kernel_errors(spec, seed, d, sq, sk, hq, hkv, causal, by, repeat=False, alignment="bottom_right"):
    """Per-head errors of a q_in_kernel variant on q whose 64-row units (each consumer
    warpgroup's own e_q) and k, v whose key tiles are 2^20 apart; q (and k, v for a
    kv_once variant) read through strides (every other head of a wider array), as a
    caller's view would be. repeat: run twice and require the same bits (a kv_once
    variant's flags must start over on every call)."""
    import cupy as cp

    from cupyflash._spec import WGMMA_ROWS_PER_WARPGROUP

    rng = np.random.default_rng(seed)
    wide = tiled_magnitudes(rng, (1, sq, 2 * hq, d), WGMMA_ROWS_PER_WARPGROUP, SPREAD_LOG2, by)
    q = cp.asarray(wide)[:, :, ::2]  # strided heads: the kernel reads q in place
    kv_heads = 2 * hkv if spec.kv_once else hkv
    k, v = (cp.asarray(tiled_magnitudes(rng, (1, sk, kv_heads, d), spec.block_n, SPREAD_LOG2, by))
            [:, :, ::kv_heads // hkv] for _ in range(2))
    out = _run_q_in_kernel(spec, q, k, v, causal, alignment)
    if repeat:
        again = _run_q_in_kernel(spec, q, k, v, causal, alignment)
        assert cp.array_equal(out, again), "a second call gave other bits"
    errs, _ = _per_head_errors(out, q, k, v, causal, alignment)
    return errs


# (d, sq, sk, hq, hkv, causal, persistent): sq 1057 leaves the last block's second warpgroup
# with no row (skip_item), 1000 with 40 of 64 (rows past the end must read as zeros); head
# dims 72 and 100 leave padding columns in the 128-wide Q buffer, 50 is staged (not a multiple
# of 4); persistent at 2100 queries: 17 x 16 items on ~132 CTAs, so every CTA converts Q for
# several items into the same buffer (a stale or half-written Q fails the bound).
Q_IN_KERNEL_CASES = [
    (64, 1000, 1000, 8, 2, True, False),
    (72, 1057, 1100, 4, 4, False, False),
    (100, 333, 1100, 6, 2, True, False),
    (128, 1000, 203, 6, 1, False, False),
    (50, 239, 1000, 4, 2, True, False),
    (64, 2100, 2049, 8, 2, True, True),
    (64, 2100, 777, 8, 4, False, True),
]


@pytest.mark.parametrize("by", ["tile", "head"])
@pytest.mark.parametrize("case", Q_IN_KERNEL_CASES, ids=lambda c: "_".join(map(str, c)))
def test_q_in_kernel_tiles_2_to_the_20_apart(case, by):
    """Split fp32 with Q converted by the consumer warpgroups (KernelSpec.q_in_kernel,
    cuda_src/q_convert.h): q's 64-row units (each warpgroup's own e_q), k and v
    tiles 2^20 apart, q read through strides (every other head of a wider
    array), GQA, causal and not; the split's 1e-5 bound for every head. A wrong
    e_q is off by a power of two up to 2^20, a wrong swizzle mixes columns, a
    stale Q buffer holds another item's rows: each fails by orders of magnitude."""
    from cupyflash._spec import WGMMA_SPLIT_CANDIDATES, wgmma_q_in_kernel_spec, wgmma_width

    require_backend("wgmma")
    d, sq, sk, hq, hkv, causal, persistent = case
    width = wgmma_width(d, d)
    tiles = next(t for t in WGMMA_SPLIT_CANDIDATES[width] if t[4] == persistent)
    spec = wgmma_q_in_kernel_spec(width, tiles)
    errs = _q_in_kernel_errors(spec, sum(case) + (by == "head"), d, sq, sk, hq, hkv, causal, by)
    assert max(errs) <= SPLIT_BOUND, errs


def test_q_in_kernel_infinity_stays_out_of_the_shift():
    """An infinity in a warpgroup's q rows: its own row's output is not finite,
    but the shift (the exact rule: the finite abs-max, a second exchange round in
    q_convert.h) keeps every other row of those 64 at the split's accuracy."""
    import cupy as cp

    from cupyflash._spec import wgmma_q_in_kernel_spec

    require_backend("wgmma")
    rng = np.random.default_rng(3)
    q, k, v = (rng.standard_normal((1, 500, 2, 64)).astype(np.float32) for _ in range(3))
    q[0, 70, 1, 9] = np.inf  # the second warpgroup of the first block
    q, k, v = (cp.asarray(x) for x in (q, k, v))
    out = _run_q_in_kernel(wgmma_q_in_kernel_spec(64), q, k, v, False)
    keep = np.ones(500, dtype=bool)
    keep[70] = False
    finite_q = cp.where(cp.isinf(q), 0, q)  # rows other than 70 do not see the value
    errs, _ = _per_head_errors(out[:, keep], finite_q[:, keep], k, v, False, "bottom_right")
    assert max(errs) <= SPLIT_BOUND, errs


# (d, sq, sk, hq, hkv, causal): two cases per width class, run on every candidate tile of
# precision="fast" with Q converted by the consumers (WGMMA_FAST_Q_CANDIDATES): several
# items per persistent CTA (2100 queries), a block whose last warpgroup has no row
# (1057), padded head dims (72, 100), GQA and MQA, causal and not.
FAST_Q_CASES = {
    64: [(64, 2100, 2049, 8, 2, True), (72, 1057, 1100, 4, 4, False), (64, 1000, 1000, 4, 2, True)],
    128: [(100, 333, 1100, 6, 2, True), (128, 2100, 203, 6, 1, False)],
}


def _fast_q_params():
    from cupyflash._spec import WGMMA_FAST_Q_CANDIDATES

    from cupyflash._spec import wgmma_width

    # the candidates of the width each case's head dim runs at (d 72 runs at width 128)
    return [pytest.param(case, tiles, id="_".join(map(str, case)) + "-" + "_".join(str(int(x)) for x in tiles))
            for cases in FAST_Q_CASES.values() for case in cases
            for tiles in WGMMA_FAST_Q_CANDIDATES[wgmma_width(case[0], case[0])]]


@pytest.mark.parametrize("by", ["tile", "head"])
@pytest.mark.parametrize("case,tiles", _fast_q_params())
def test_fast_q_in_kernel_tiles_2_to_the_20_apart(case, tiles, by):
    """precision="fast" (one term) with Q converted by the consumer warpgroups: q's
    64-row units, k and v tiles 2^20 apart, q read through strides; the fast bound
    for every head. O's units follow the V tiles as with the pre-pass's q, so a
    wrong e_q (off by up to 2^20) or a stale Q buffer fails by orders of magnitude."""
    from cupyflash._spec import wgmma_q_in_kernel_spec, wgmma_width

    require_backend("wgmma")
    d, sq, sk, hq, hkv, causal = case
    spec = wgmma_q_in_kernel_spec(wgmma_width(d, d), tiles, 1)
    seed = sum(case) + sum(tiles) + (by == "head")
    errs = _q_in_kernel_errors(spec, seed, d, sq, sk, hq, hkv, causal, by)
    assert max(errs) <= FAST_BOUND, errs


# (sq, sk, shift): causal precision="fast" at width 64 runs 192-row blocks whose padding
# rows move before row 0 (FlashParams.q_row_shift): 1000 and 1024 queries leave 128 rows
# (two warpgroups of the first block skip it), 500 leave 64; 700 x 900 (bottom-right)
# shifts 64 with keys before the first query.
FAST_SHIFTED_ROWS = [(1000, 1000, 128), (1024, 1024, 128), (500, 500, 64), (700, 900, 64)]


@pytest.mark.parametrize("by", ["tile", "head"])
@pytest.mark.parametrize("sq,sk,shift", FAST_SHIFTED_ROWS, ids=[f"{a}x{b}" for a, b, _ in FAST_SHIFTED_ROWS])
def test_fast_rows_before_the_first_block(sq, sk, shift, by):
    """precision="fast" with q converted by the consumers takes the 16-bit kernel's row
    shift: a warpgroup whose 64 rows lie before row 0 skips the item (no conversion, no
    store), the others convert their own rows; q and k, v tiles 2^20 apart, the fast
    bound per head and LSE to 1e-2."""
    import cupy as cp

    from cupyflash._params import q_row_shift

    require_backend("wgmma")
    batch, hq, hkv, d = 2, 4, 2, 64
    q, k, v = (cp.asarray(x) for x in _inputs(sq + sk + (by == "head"), batch, sq, sk, hq, hkv, d, by, "fast"))
    plan = cupyflash.explain(q, k, v, causal=True, precision="fast")
    assert plan.spec.q_in_kernel and q_row_shift(True, sq, plan.spec) == shift, plan.spec.variant_name
    assert f"starts {shift} rows before row 0" in str(plan)
    out = poisoned((batch, sq, hq, d), "float32")
    res, lse = cupyflash.attention(q, k, v, causal=True, out=out, return_lse=True, precision="fast")
    assert res is out
    errs, ref_lse = _per_head_errors(out, q, k, v, True, "bottom_right")
    assert max(errs) <= FAST_BOUND, errs
    fin = cp.isfinite(ref_lse)
    assert bool((cp.isneginf(lse) == cp.isneginf(ref_lse)).all())
    assert float(cp.abs(lse[fin] - ref_lse[fin]).max()) <= 1e-2 * (1 + float(cp.abs(ref_lse[fin]).max()))


# (d, sq, sk, hq, hkv, causal): k and v converted once per call inside the kernel
# (KernelSpec.kv_once: precision="fast", head dim exactly 128): many CTAs share each key
# tile (2100 queries: 17 query blocks per head on ~132 CTAs; GQA 4:1 and 6:1, MQA), a
# block whose last warpgroup has no row, last key tiles of 75, 11 and 1 rows; top-left
# alignment with 2000 keys for 300 queries, where only the first 3 of a head's 16 key tiles are
# attended, so the per-head counters hand out those 3 alone (kv_once.h; a counter that counted
# from the head's last tile would leave the TMA thread waiting forever).
KV_ONCE_CASES = [
    (128, 2100, 2049, 8, 2, True),
    (128, 333, 1100, 6, 2, True),
    (128, 2100, 203, 6, 1, False),
    (128, 1057, 1025, 4, 4, False),
    (128, 300, 2000, 4, 2, "top_left"),
]


@pytest.mark.parametrize("by", ["tile", "head"])
@pytest.mark.parametrize("case", KV_ONCE_CASES, ids=lambda c: "_".join(map(str, c)))
def test_kv_once_tiles_2_to_the_20_apart(case, by):
    """K and V converted once per call by the kernel (cuda_src/kv_once.h): k, v read
    through strides, their key tiles 2^20 apart (a shift pair read before its
    tile was converted, or a copy read before it was written, is off by up to
    2^20), the fast bound for every head, and a second call bit for bit equal to
    the first (the flags start over)."""
    from cupyflash._spec import wgmma_kv_once_spec

    require_backend("wgmma")
    d, sq, sk, hq, hkv, causal = case
    alignment = causal if isinstance(causal, str) else "bottom_right"
    seed = sum(case[:5]) + (causal is True) + (by == "head")
    errs = _q_in_kernel_errors(wgmma_kv_once_spec(d), seed, d, sq, sk, hq, hkv, bool(causal), by, repeat=True,
                               alignment=alignment)
    assert max(errs) <= FAST_BOUND, errs


# (d, sq, sk, hq, hkv, causal): width 64's kv-once tiles (WGMMA_KV_ONCE_CANDIDATES, timed by
# bench/tune_split.py --fast --kv-once; not dispatched, so no other GPU test runs them):
# causal with more keys than queries (bottom-right alignment), GQA 4:1, MQA, MHA, 2:1; last key tiles
# of 128 (1024 keys), 9, 4 and 9 rows; 2100 queries put several items on each persistent CTA.
KV_ONCE_64_CASES = [
    (64, 1000, 1024, 8, 2, True),
    (64, 1024, 1033, 4, 1, True),
    (64, 700, 900, 6, 6, True),
    (64, 2100, 777, 8, 4, False),
]


@pytest.mark.parametrize("case", KV_ONCE_64_CASES, ids=lambda c: "_".join(map(str, c)))
@pytest.mark.parametrize("tiles", cupyflash._spec.WGMMA_KV_ONCE_CANDIDATES[64], ids=lambda t: "_".join(map(str, t)))
def test_kv_once_width_64_tiles(case, tiles):
    """Each of width 64's kv-once candidate tiles: key tiles 2^20 apart, the fast bound
    for every head, and a second call bit for bit equal to the first."""
    from cupyflash._spec import wgmma_kv_once_spec

    require_backend("wgmma")
    d, sq, sk, hq, hkv, causal = case
    errs = _q_in_kernel_errors(wgmma_kv_once_spec(d, tiles), sum(case), d, sq, sk, hq, hkv, causal, "tile",
                               repeat=True)
    assert max(errs) <= FAST_BOUND, errs
