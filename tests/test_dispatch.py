"""Dispatch decisions, tile tables and explain(), without a GPU."""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest

import cupyflash
from cupyflash._spec import (DMMA_CANDIDATES, DMMA_CAUSAL_TILES, DMMA_SHORT_TILES, DMMA_TILES, HEAD_DIM_BUCKETS, MMA_CANDIDATES, MMA_TILES, MMA_WIDTHS,
                             dmma_spec, head_dim_bucket, mma_spec, mma_width, shipped_specs)

from helpers import expected_grid, qkv


@pytest.mark.parametrize("d,dv,width", [(1, 1, 32), (32, 32, 32), (33, 8, 64), (72, 72, 96), (100, 100, 128),
                                        (128, 64, 128), (64, 200, 224), (256, 256, 256)])
def test_head_dim_bucket(d, dv, width):
    assert head_dim_bucket(d, dv) == width


@pytest.mark.parametrize("d,dv,width", [(1, 1, 32), (33, 8, 64), (72, 72, 80), (80, 64, 80), (80, 88, 96),
                                        (96, 96, 96), (100, 100, 128), (256, 256, 256)])
def test_mma_width(d, dv, width):
    assert mma_width(d, dv) == width


def test_tile_table_covers_every_bucket_and_fits_shared_memory():
    for spec in shipped_specs():
        assert spec.head_dim in (MMA_WIDTHS if spec.family == "mma" else HEAD_DIM_BUCKETS)
        assert spec.smem_bytes <= 227 * 1024, spec.variant_name
    assert set(MMA_TILES) == set(MMA_WIDTHS) and set(HEAD_DIM_BUCKETS) <= set(MMA_WIDTHS)
    for width, (bm, bn, warps, m_tiles, *_) in MMA_TILES.items():
        assert bm == 16 * m_tiles * warps and bn % 16 == 0 and width % 16 == 0


def test_mma_candidates_match_the_kernel_rules():
    for width, candidates in MMA_CANDIDATES.items():
        assert MMA_TILES[width] in candidates
        for tiles in candidates:
            assert mma_spec("bfloat16", width, tiles).smem_bytes <= 227 * 1024, (width, tiles)
            assert tiles[1] % 16 == 0, (width, tiles)


@pytest.mark.parametrize("d,width", [(72, 80), (80, 80), (96, 96)])
def test_head_dim_80_has_its_own_mma_width_only(d, width):
    q, k, v = qkv(np.random.default_rng(0), 1, 100, 100, 2, 2, d, d, "bfloat16")
    plan = cupyflash.explain(q, k, v, arch=80)
    assert plan.spec.family == "mma" and plan.spec.head_dim == width and f"-> kernel width {width}" in str(plan)
    assert cupyflash.explain(q, k, v, arch=90).spec.head_dim == 128  # wgmma: 64-column boxes
    q, k, v = qkv(np.random.default_rng(0), 1, 100, 100, 2, 2, d, d, "float64")
    assert cupyflash.explain(q, k, v, arch=80).spec.head_dim == 96  # DMMA keeps the shared buckets


@pytest.mark.parametrize("dtype,arch,family", [("float16", 90, "wgmma"), ("bfloat16", 90, "wgmma"),
                                               ("float16", 80, "mma"), ("bfloat16", 89, "mma"),
                                               ("float32", 90, "wgmma"), ("float32", 80, "simt"),
                                               ("float64", 90, "dmma"), ("float64", 80, "dmma"),
                                               ("float64", 75, "simt")])
def test_family_by_dtype_and_arch(dtype, arch, family):
    q, k, v = qkv(np.random.default_rng(0), 3, 300, 77, 14, 2, 80, 80, dtype)
    plan = cupyflash.explain(q, k, v, causal=True, arch=arch)
    assert plan.spec.family == family and plan.spec.dtype == dtype
    assert plan.grid == expected_grid(plan, 300, 14, 3)
    assert plan.block == (plan.spec.threads, 1, 1)
    text = str(plan)
    assert plan.spec.variant_name in text and "GQA: 7 query heads" in text and "causal" in text


def test_odd_head_dim_is_staged_not_rejected():
    q, k, v = qkv(np.random.default_rng(0), 1, 10, 10, 2, 2, 100, 36, "bfloat16")
    plan = cupyflash.explain(q, k, v, arch=80)
    assert set(plan.staged) == {"q", "k", "v", "out"} and "padded to 104" in plan.staged["q"]
    q, k, v = qkv(np.random.default_rng(0), 1, 10, 10, 2, 2, 64, 64, "bfloat16")
    assert cupyflash.explain(q, k, v, arch=80).staged == {}


def test_bhsd_layout_grid():
    q, k, v = qkv(np.random.default_rng(0), 2, 513, 100, 4, 4, 64, 64, "float16", layout="bhsd")
    plan = cupyflash.explain(q, k, v, layout="bhsd", arch=80)  # one CTA per query block
    assert plan.grid == (-(-513 // plan.spec.block_m), 4, 2)
    plan = cupyflash.explain(q, k, v, layout="bhsd", arch=90)  # persistent: 3 blocks of 192 x 4 heads x 2
    assert plan.spec.persistent and plan.grid == (24, 1, 1)


def test_variant_names_are_unique_and_readable():
    names = [s.variant_name for s in shipped_specs()]
    assert len(set(names)) == len(names)
    assert all(n.startswith(("flash_fwd_wgmma_", "flash_fwd_mma_", "flash_fwd_dmma_", "flash_fwd_simt_"))
               and "_hdim" in n
               for n in names)


def test_mma_path_stays_selectable_on_hopper():
    q, k, v = qkv(np.random.default_rng(0), 2, 256, 256, 4, 4, 128, 128, "bfloat16")
    plan = cupyflash.explain(q, k, v, arch=90, backend="mma")
    assert plan.spec.family == "mma" and "[forced]" in str(plan)
    assert cupyflash.explain(q, k, v, arch=90).spec.family == "wgmma"


def test_float64_runs_on_dmma_and_simt_stays_selectable():
    q, k, v = qkv(np.random.default_rng(0), 2, 100, 300, 4, 2, 200, 72, "float64")
    plan = cupyflash.explain(q, k, v, arch=90)
    assert plan.spec.family == "dmma" and plan.spec.head_dim == 224 and "DMMA" in str(plan) and "[auto]" in str(plan)
    assert plan.spec.name_expression == "cupyflash::flash_fwd_dmma<224, 64, 16, 8, 1>" and not plan.staged
    forced = cupyflash.explain(q, k, v, arch=80, backend="mma")
    assert forced.spec == plan.spec and "[forced]" in str(forced)
    assert cupyflash.explain(q, k, v, arch=90, backend="simt").spec.family == "simt"
    with pytest.raises(cupyflash.DeviceError, match="backend='mma' with float64 needs .* 8.0"):
        cupyflash.explain(q, k, v, arch=75, backend="mma")
    q, k, v = qkv(np.random.default_rng(0), 1, 10, 10, 2, 2, 64, 64, "float32")
    with pytest.raises(cupyflash.ArgumentError, match="backend='mma' serves float16, bfloat16, float64"):
        cupyflash.explain(q, k, v, arch=80, backend="mma")


def test_dmma_tiles_match_the_kernel_rules():
    for width, (bm, bn, warps, m_tiles) in DMMA_TILES.items():
        assert bm == 8 * m_tiles * warps and bn % 8 == 0 and width % 16 == 0
    for width, candidates in DMMA_CANDIDATES.items():
        assert DMMA_TILES[width] in candidates
        for tiles in candidates:
            assert dmma_spec(width, tiles).smem_bytes <= 227 * 1024, (width, tiles)


@pytest.mark.parametrize("seqlen, causal, tiles", [
    (512, False, DMMA_SHORT_TILES[128]), (513, False, DMMA_TILES[128]), (2048, False, DMMA_TILES[128]),
    (512, True, DMMA_CAUSAL_TILES[128]), (4096, True, DMMA_CAUSAL_TILES[128])])
def test_float64_width_128_tiles_follow_length_and_mask(seqlen, causal, tiles):
    q, k, v = qkv(np.random.default_rng(0), 1, seqlen, seqlen, 2, 2, 128, 128, "float64")
    plan = cupyflash.explain(q, k, v, causal=causal, arch=90)
    assert plan.spec == dmma_spec(128, tiles)
    assert (str(tiles) in str(plan)) == (tiles != DMMA_TILES[128])
    # other widths keep their table entry whatever the length and mask
    q, k, v = qkv(np.random.default_rng(0), 1, seqlen, seqlen, 2, 2, 64, 64, "float64")
    assert cupyflash.explain(q, k, v, causal=causal, arch=90).spec == dmma_spec(64)


def test_dmma_length_and_mask_tiles_are_measured_candidates():
    for table in (DMMA_CAUSAL_TILES, DMMA_SHORT_TILES):
        for width, tiles in table.items():
            assert tiles in DMMA_CANDIDATES[width] and dmma_spec(width, tiles) in shipped_specs()


def test_wgmma_needs_hopper():
    q, k, v = qkv(np.random.default_rng(0), 1, 64, 64, 2, 2, 64, 64, "float16")
    with pytest.raises(cupyflash.DeviceError, match="backend='wgmma' needs a Hopper GPU"):
        cupyflash.explain(q, k, v, arch=80, backend="wgmma")
    q, k, v = qkv(np.random.default_rng(0), 1, 64, 64, 2, 2, 64, 64, "float64")
    with pytest.raises(cupyflash.ArgumentError, match="backend='wgmma' serves"):
        cupyflash.explain(q, k, v, arch=90, backend="wgmma")


@pytest.mark.parametrize("d,width", [(8, 64), (64, 64), (100, 128), (128, 128)])
def test_float32_on_wgmma_is_the_split_kernel(d, width):
    q, k, v = qkv(np.random.default_rng(0), 2, 100, 300, 4, 2, d, d, "float32")
    plan = cupyflash.explain(q, k, v, arch=90, backend="wgmma")
    assert plan.spec.split and plan.spec.dtype == "float32" and plan.spec.head_dim == width
    # three terms, two consumer warpgroups, no staging slots, q split by the consumers
    assert "cupyflash::Half" in plan.spec.name_expression and plan.spec.name_expression.endswith(", 3, 2, 0, true>")
    assert plan.spec.q_in_kernel and "q split inside the kernel" in str(plan)
    assert "hi + lo" in str(plan) and plan.spec.smem_bytes <= 227 * 1024
    assert set(plan.staged) <= {"out"} and (("out" in plan.staged) == bool(d % 8))
    auto = cupyflash.explain(q, k, v, arch=90)  # auto on sm_90: the same split kernel
    assert auto.spec == plan.spec and "[auto]" in str(auto)
    assert cupyflash.explain(q, k, v, arch=90, backend="simt").spec.family == "simt"  # exact, on request
    with pytest.raises(cupyflash.DeviceError, match="needs a Hopper GPU"):
        cupyflash.explain(q, k, v, arch=80, backend="wgmma")


def test_float32_on_wgmma_rejects_wide_heads():
    q, k, v = qkv(np.random.default_rng(0), 1, 10, 10, 2, 2, 160, 160, "float32")
    with pytest.raises(cupyflash.ArgumentError, match="head_dim and head_dim_v up to 128"):
        cupyflash.explain(q, k, v, arch=90, backend="wgmma")
    assert cupyflash.explain(q, k, v, arch=90).spec.family == "simt"  # auto: exact SIMT above 128


@pytest.mark.parametrize("d,dv,width", [(8, 8, 64), (64, 64, 64), (72, 72, 128), (100, 100, 128), (160, 160, 192),
                                        (64, 256, 256)])
def test_wgmma_width_and_tiles(d, dv, width):
    q, k, v = qkv(np.random.default_rng(0), 1, 300, 300, 2, 1, d, dv, "bfloat16")
    plan = cupyflash.explain(q, k, v, arch=90)
    assert plan.spec.head_dim == width and plan.block == (plan.spec.threads, 1, 1)
    assert plan.spec.block_m == 64 * (plan.spec.threads // 128 - 1)  # 64 rows per consumer warpgroup
    assert plan.spec.smem_bytes <= 227 * 1024
    assert "TMA" in str(plan)


def test_persistent_variant_plans_one_cta_per_sm():
    from cupyflash import _dispatch
    from cupyflash._spec import wgmma_spec

    q, k, v = qkv(np.random.default_rng(0), 4, 1000, 1000, 6, 2, 128, 128, "bfloat16")
    problem = cupyflash.api._validate(q, k, v, True, "bottom_right", None, "bshd")[1]
    spec = wgmma_spec("bfloat16", 128, (128, 128, 2, True, True))
    assert spec.persistent and spec.variant_name.endswith("_pp_persist")
    assert "true, true, 0, 2>" in spec.name_expression
    plan = _dispatch.plan_for_spec(problem, spec, 90, sm_count=132)
    assert plan.grid == (132, 1, 1) and "persistent: 132 CTAs walk 192 query blocks" in str(plan)
    small = cupyflash.api._validate(*qkv(np.random.default_rng(0), 1, 100, 100, 2, 2, 128, 128, "bfloat16"),
                                    False, "bottom_right", None, "bshd")[1]
    assert _dispatch.plan_for_spec(small, spec, 90, sm_count=132).grid == (2, 1, 1)  # fewer items than SMs


def test_wgmma_stages_broadcast_and_reversed_axes():
    """TMA takes positive strides only: a broadcast (stride 0) or reversed axis of
    size > 1 is staged; the same strides on a size-1 axis are not."""
    from cupyflash import _dispatch

    q, k, v = qkv(np.random.default_rng(0), 2, 64, 64, 4, 4, 64, 64, "bfloat16")
    problem = cupyflash.api._validate(q, k, v, False, "bottom_right", None, "bshd")[1]
    aligned = {"q": 0, "k": 0, "v": 0, "out": 0}
    broadcast = dataclasses.replace(problem, k_strides=(0, 256, 64))  # batch broadcast, batch = 2
    assert "k" in _dispatch.plan(broadcast, 90, pointers=aligned).staged
    assert "k" not in _dispatch.plan(broadcast, 80, pointers=aligned).staged  # cp.async copes
    reversed_rows = dataclasses.replace(problem, q_strides=(64 * 4 * 64, -256, 64))
    assert "positive strides" in _dispatch.plan(reversed_rows, 90, pointers=aligned).staged["q"]
    one_batch = dataclasses.replace(problem, batch=1, k_strides=(0, 256, 64), v_strides=(0, 256, 64),
                                    q_strides=(0, 256, 64))
    assert not _dispatch.plan(one_batch, 90, pointers=aligned).staged


@pytest.mark.parametrize("d,width,s,causal,kv_once",
                         [(40, 64, 2100, False, False), (128, 128, 4096, True, True), (64, 64, 1024, False, False),
                          (64, 64, 1024, True, False), (128, 128, 512, True, False), (200, 256, 300, False, False),
                          (128, 128, 1024, True, True), (128, 128, 2048, True, True), (128, 128, 1024, False, True),
                          (120, 128, 4096, False, False)])
def test_precision_fast_is_one_fp16_pass_on_wgmma(d, width, s, causal, kv_once):
    """precision="fast" at every length and width, short sequences included: one
    rescaled fp16 pass (measured faster than the tf32 kernel, _dispatch.PRECISIONS);
    q converted by the consumer warpgroups at widths 64 and 128, by the pre-pass
    above; k and v converted once per call inside the kernel at head dim 128 from
    seqlen_k 1024, causal or not, where that measured faster than the pre-pass's
    copies, and by the pre-pass elsewhere; q's fp32 rows staged by TMA where q is
    converted without kv-once."""
    q, k, v = qkv(np.random.default_rng(0), 1, 100, s, 2, 1, d, d, "float32")
    plan = cupyflash.explain(q, k, v, causal=causal, arch=90, precision="fast")
    assert plan.spec.fp32_terms == 1 and not plan.spec.split and not plan.spec.tf32 and plan.spec.head_dim == width
    q_kernel = width <= 128
    # the walk-table twin (KernelSpec.walk_table) under a causal mask: a fifth tail argument
    tail = r"(, false, true)?" if kv_once else r"(, false, false, true)?"
    assert re.search(r", 1, [23], 0, true(, true)?" + tail + ">$" if q_kernel else r", 1, [23](, 0, false, false, false, true)?>$",
                     plan.spec.name_expression)
    assert plan.spec.walk_table == (causal and plan.spec.persistent)
    assert "TF32-like" in str(plan) and ("q converted inside the kernel" in str(plan)) == q_kernel
    assert plan.spec.convert_stages == 0 and plan.spec.q_in_kernel == q_kernel
    assert plan.spec.kv_once == kv_once and ("no pre-pass" in str(plan)) == kv_once
    assert plan.spec.variant_name.startswith("flash_fwd_wgmma_fp32x1_")
    # q staged by TMA wherever shared memory has room: not beside kv-once's staged key tile
    assert plan.spec.q_staged == (q_kernel and not kv_once) and ("staged in shared memory" in str(plan)) == (
        q_kernel and not kv_once)
    with pytest.raises(cupyflash.DeviceError, match="precision='fast' needs a Hopper GPU"):
        cupyflash.explain(q, k, v, arch=80, precision="fast")
    with pytest.raises(cupyflash.ArgumentError, match="runs on backend 'auto' or 'wgmma'"):
        cupyflash.explain(q, k, v, arch=90, precision="fast", backend="simt")


@pytest.mark.parametrize("d,dv,s,causal", [(64, 64, 1024, False), (100, 100, 4096, True), (33, 50, 300, False)])
def test_precision_tf32_takes_the_tf32_kernel(d, dv, s, causal):
    """precision="tf32": the tf32 kernel at any length, head dims <= 128 (explain says TFLOAT32)."""
    from cupyflash._spec import wgmma_tf32_spec, wgmma_width

    q, k, v = qkv(np.random.default_rng(0), 1, s, s, 2, 1, d, dv, "float32")
    plan = cupyflash.explain(q, k, v, causal=causal, arch=90, precision="tf32")
    assert plan.spec == wgmma_tf32_spec(wgmma_width(d, dv)) and "TFLOAT32" in str(plan)
    with pytest.raises(cupyflash.DeviceError, match="precision='tf32' needs a Hopper GPU"):
        cupyflash.explain(q, k, v, arch=80, precision="tf32")
    with pytest.raises(cupyflash.ArgumentError, match="precision='tf32' runs on backend 'auto' or 'wgmma'"):
        cupyflash.explain(q, k, v, arch=90, precision="tf32", backend="mma")


def test_precision_tf32_names_its_head_dim_limit():
    q, k, v = qkv(np.random.default_rng(0), 1, 64, 64, 2, 1, 192, 192, "float32")
    with pytest.raises(cupyflash.ArgumentError, match="precision='tf32' serves head_dim and head_dim_v up to 128; "
                                                      "got 192"):
        cupyflash.explain(q, k, v, arch=90, precision="tf32")


def test_tf32_tiles_are_the_measured_best():
    """bench/ab_tf32.py on an H100 (s1024, s2048, full and causal): pingpong at both widths,
    persistent at width 64 only; each entry leads its candidates."""
    from cupyflash._spec import WGMMA_TF32_CANDIDATES, WGMMA_TF32_TILES

    assert WGMMA_TF32_TILES == {64: (128, 128, 2, True, True), 128: (128, 64, 2, True, False)}
    assert all(WGMMA_TF32_CANDIDATES[w][0] == t for w, t in WGMMA_TF32_TILES.items())


@pytest.mark.parametrize("d,s,causal,tiles", [(64, 1024, True, None), (64, 512, True, None),
                                               (64, 1024, False, None), (64, 1025, True, None),
                                               (128, 512, False, (128, 128, 2, True, True)),
                                               (128, 1024, True, (128, 128, 2, True, True)),
                                               (128, 2048, True, None), (256, 512, True, None),
                                               (256, 2048, True, None), (256, 2048, False, None)])
def test_wgmma_short_problem_tiles(d, s, causal, tiles):
    """Up to WGMMA_SHORT_SEQLEN keys and queries, some widths take their own tiles
    (and explain() says so); otherwise the width's causal entry under a causal
    mask, where it has one, else its table entry."""
    from cupyflash._spec import WGMMA_CAUSAL_TILES, WGMMA_TILES, wgmma_width

    plan = _wgmma_plan(d, s, causal)
    width = wgmma_width(d, d)
    causal_tiles = None if tiles else (WGMMA_CAUSAL_TILES.get(width) if causal else None)
    assert _tiles(plan.spec) == (tiles or causal_tiles or WGMMA_TILES[width])
    assert ("short sequences" in str(plan)) == (tiles is not None)
    assert ("the causal tiles" in str(plan)) == (causal_tiles is not None)
    assert plan.spec in shipped_specs()


def _wgmma_plan(d, s, causal):
    from cupyflash import _dispatch

    q, k, v = qkv(np.random.default_rng(0), 1, s, s, 2, 2, d, d, "bfloat16")
    return _dispatch.plan(cupyflash.api._validate(q, k, v, causal, "bottom_right", None, "bshd")[1], 90)


def _tiles(spec):
    return (spec.block_m, spec.block_n, spec.stages, spec.pingpong, spec.persistent)


@pytest.mark.parametrize("d,s,causal,long", [(64, 4095, True, False), (64, 4096, True, True),
                                              (64, 16384, True, True), (64, 16384, False, False),
                                              (128, 8191, True, False), (128, 8192, True, True),
                                              (128, 16384, False, False), (256, 16384, True, False)])
def test_wgmma_long_causal_tiles(d, s, causal, long):
    """From a width's bound in WGMMA_LONG_TILES on (the longer of seqlen_q and
    seqlen_k), a causal problem launches one CTA per query block (persistent off),
    and explain() says why; below it, or without the mask, it does not."""
    from cupyflash._spec import WGMMA_LONG_TILES

    plan = _wgmma_plan(d, s, causal)
    assert ("long sequences" in str(plan)) == long
    if long:
        bound, tiles = WGMMA_LONG_TILES[(d, causal)]
        assert _tiles(plan.spec) == tiles and not plan.spec.persistent and s >= bound
        assert "the causal tiles" not in str(plan)
    assert plan.spec in shipped_specs()


def test_output_staging_follows_the_store_path():
    """The wgmma kernel's 16-bit outputs leave by TMA (positive strides, multiples
    of 8 elements); its fp32 outputs and the other families store from registers."""
    from cupyflash import _dispatch
    from cupyflash._spec import wgmma_fp32_spec, wgmma_spec

    bf16, fp32 = wgmma_spec("bfloat16", 128), wgmma_fp32_spec(128, 3)
    sizes = (2, 100, 4)
    assert not _dispatch.out_needs_staging(bf16, (100 * 4 * 128, 4 * 128, 128), sizes)  # contiguous bshd
    assert _dispatch.out_needs_staging(bf16, (100 * 4 * 130, 4 * 130, 130), sizes)  # rows of 130: not 16-byte strides
    assert not _dispatch.out_needs_staging(fp32, (100 * 4 * 130, 4 * 130, 130), sizes)  # pairs of floats are fine
    assert _dispatch.out_needs_staging(bf16, (100 * 4 * 128, -4 * 128, 128), sizes)  # reversed rows: TMA cannot
    assert not _dispatch.out_needs_staging(bf16, (0, 4 * 128, 128), (1, 100, 4))  # a size-1 axis is never stepped
    assert _dispatch.out_needs_staging(mma_spec("float16", 64), (0, 4 * 66, 66), (1, 100, 4))


def test_precision_is_checked():
    q, k, v = qkv(np.random.default_rng(0), 1, 10, 10, 2, 2, 64, 64, "float32")
    with pytest.raises(cupyflash.ArgumentError, match="precision must be one of 'highest', 'fast', 'tf32'"):
        cupyflash.explain(q, k, v, arch=90, precision="medium")
    q16, k16, v16 = qkv(np.random.default_rng(0), 1, 10, 10, 2, 2, 64, 64, "bfloat16")
    for precision in ("fast", "tf32"):
        with pytest.raises(cupyflash.ArgumentError, match=f"precision='{precision}' applies to float32 input"):
            cupyflash.explain(q16, k16, v16, arch=90, precision=precision)
    assert cupyflash.explain(q, k, v, arch=90, backend="wgmma").spec.fp32_terms == 3


def test_converting_candidate_stages_what_tma_cannot_read_in_place():
    """The candidate that converts float32 in the kernel reads q, k and v with TMA
    as they are: a head dim that is not a multiple of 4 (v's 50 here) is staged,
    zero-padded; 100 is read in place, and its output pads to a multiple of 8."""
    from cupyflash import _dispatch, api
    from cupyflash._spec import wgmma_convert_spec

    q, k, v = qkv(np.random.default_rng(1), 1, 70, 90, 2, 1, 100, 50, "float32")
    _, problem = api._validate(q, k, v, False, "bottom_right", None, "bshd")
    plan = _dispatch.plan_for_spec(problem, wgmma_convert_spec(128), 90)
    assert set(plan.staged) == {"v", "out"} and "not a multiple of 4" in plan.staged["v"]
    q, k, v = qkv(np.random.default_rng(1), 1, 70, 90, 2, 1, 100, 100, "float32")
    _, problem = api._validate(q, k, v, False, "bottom_right", None, "bshd")
    plan = _dispatch.plan_for_spec(problem, wgmma_convert_spec(128), 90)
    assert set(plan.staged) == {"out"}


@pytest.mark.parametrize("d,s,heads,causal,split", [(64, 4096, 32, False, True), (40, 4096, 32, False, True),
                                                    (64, 1024, 32, False, False), (64, 4096, 32, True, False),
                                                    (128, 1024, 32, False, False), (128, 4096, 9, False, True),
                                                    (128, 4096, 9, True, False), (64, 4096, 6, False, False)])
def test_split_tail_in_the_plan(d, s, heads, causal, split):
    """A persistent unmasked walk of widths 64 and 128 from WGMMA_SPLIT_TAIL_MIN_SEQLEN_K
    keys runs the split-tail variant and, where it leaves a partial last wave on 132 SMs,
    shares its last 132 + N % 132 blocks' key tiles out (_params.split_tail); explain()
    says so. Masked walks, shorter ones and walks of exactly one wave (22 blocks x 6
    heads) do not split."""
    from cupyflash import _dispatch
    from cupyflash._spec import WGMMA_SPLIT_TAIL_MIN_SEQLEN_K

    q, k, v = qkv(np.random.default_rng(0), 1, s, s, heads, heads, d, d, "bfloat16")
    problem = cupyflash.api._validate(q, k, v, causal, "bottom_right", None, "bshd")[1]
    plan = _dispatch.plan(problem, 90, "auto", None, 132)
    items = -(-s // plan.spec.block_m) * heads
    assert plan.spec.persistent or causal
    assert plan.split_tail == ((132 + items % 132, s // plan.spec.block_n) if split else (0, 0))
    assert ("split tail" in str(plan)) == split
    assert plan.spec.split_tail == (not causal and s >= WGMMA_SPLIT_TAIL_MIN_SEQLEN_K)
    assert plan.spec in shipped_specs()
