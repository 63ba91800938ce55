"""The Python mirror of FlashParams agrees with the C struct, checked by the
compiler itself: NVRTC compiles static_asserts on every field's offset."""

from __future__ import annotations

import pytest

from cupyflash._params import PARAMS_DTYPE, PARAMS_FIELDS, make_params

from header_checks import compile_asserts, layout_asserts


def test_make_params_requires_every_field():
    with pytest.raises(TypeError, match="missing fields"):
        make_params(q=0)


def test_offsets_match_header():
    compile_asserts("params.h", layout_asserts("FlashParams", PARAMS_DTYPE, [name for name, _ in PARAMS_FIELDS]))


def test_walk_group_pairs():
    from cupyflash._params import L2_WORKING_SET_BYTES, walk_group_pairs

    causal, full = L2_WORKING_SET_BYTES[True], L2_WORKING_SET_BYTES[False]
    # d128 bf16 at seqlen 1024: 512 KB of K+V per head, so 32 heads fit in 16 MB (causal), 8 in 4 MB.
    assert walk_group_pairs(1024, 128, 128, 1, 256, causal) == causal // (1024 * 256 * 2) == 32
    assert walk_group_pairs(1024, 128, 128, 1, 256, full) == full // (1024 * 256 * 2) == 8
    assert walk_group_pairs(1024, 128, 128, 1, 8, causal) == 8        # never more pairs than exist
    assert walk_group_pairs(1 << 20, 256, 256, 1, 64, full) == 1      # one head alone overflows: still 1
    assert walk_group_pairs(1024, 128, 128, 4, 256, causal) == 128    # 4 query heads share one KV head
    assert walk_group_pairs(0, 64, 64, 1, 3, full) == 3               # no keys: every pair fits


def test_walk_working_set_by_mask_and_tiles():
    from cupyflash._params import L2_WORKING_SET_BYTES, L2_WORKING_SET_CAUSAL_128_BYTES, walk_working_set
    from cupyflash._spec import WGMMA_CAUSAL_TILES, wgmma_fp32_spec, wgmma_spec, wgmma_tf32_spec

    d64, d128 = wgmma_spec("bfloat16", 64), wgmma_spec("bfloat16", 128)  # 192 and 128 rows, persistent
    assert walk_working_set(False, d64) == L2_WORKING_SET_BYTES[False]
    assert walk_working_set(True, d64) == L2_WORKING_SET_BYTES[True]                       # d64's 192-row blocks
    d256 = wgmma_spec("bfloat16", 256, WGMMA_CAUSAL_TILES[256])
    assert walk_working_set(True, d256) == L2_WORKING_SET_BYTES[True]                      # d256: a CTA per item
    # fp32 and tf32 kernels with persistent 128-row blocks: not measured, they keep the default
    fp32, tf32 = wgmma_fp32_spec(128, 1), wgmma_tf32_spec(64)
    assert fp32.persistent and fp32.block_m == 128 and tf32.persistent and tf32.block_m == 128
    assert walk_working_set(True, fp32) == walk_working_set(True, tf32) == L2_WORKING_SET_BYTES[True]
    assert walk_working_set(True, d128) == L2_WORKING_SET_CAUSAL_128_BYTES
    assert L2_WORKING_SET_CAUSAL_128_BYTES < L2_WORKING_SET_BYTES[True]
