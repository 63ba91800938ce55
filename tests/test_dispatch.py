"""Dispatch decisions, tile tables and explain(), without a GPU."""

from __future__ import annotations

import numpy as np
import pytest

import cupyflash
from cupyflash._spec import HEAD_DIM_BUCKETS, MMA_TILES, head_dim_bucket, shipped_specs

from helpers import qkv


@pytest.mark.parametrize("d,dv,width", [(1, 1, 32), (32, 32, 32), (33, 8, 64), (72, 72, 96), (100, 100, 128),
                                        (128, 64, 128), (64, 200, 224), (256, 256, 256)])
def test_head_dim_bucket(d, dv, width):
    assert head_dim_bucket(d, dv) == width


def test_tile_table_covers_every_bucket_and_fits_shared_memory():
    for spec in shipped_specs():
        assert spec.head_dim in HEAD_DIM_BUCKETS
        assert spec.smem_bytes <= 227 * 1024, spec.variant_name
    for width, (bm, bn, warps, m_tiles) in MMA_TILES.items():
        assert bm == 16 * m_tiles * warps and bn % 16 == 0


@pytest.mark.parametrize("dtype,family", [("float16", "mma"), ("bfloat16", "mma"), ("float32", "simt"),
                                          ("float64", "simt")])
def test_family_by_dtype(dtype, family):
    q, k, v = qkv(np.random.default_rng(0), 3, 300, 77, 14, 2, 80, 80, dtype)
    plan = cupyflash.explain(q, k, v, causal=True, arch=90)
    assert plan.spec.family == family and plan.spec.dtype == dtype
    assert plan.grid == (-(-300 // plan.spec.block_m), 14, 3)
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
    plan = cupyflash.explain(q, k, v, layout="bhsd", arch=90)
    assert plan.grid == (5, 4, 2)


def test_variant_names_are_unique_and_readable():
    names = [s.variant_name for s in shipped_specs()]
    assert len(set(names)) == len(names)
    assert all(n.startswith(("flash_fwd_mma_", "flash_fwd_simt_")) and "_hdim" in n for n in names)
