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
    from types import SimpleNamespace

    from cupyflash._params import (L2_WORKING_SET_BYTES, L2_WORKING_SET_CAUSAL_128_BYTES, WALK_ROWS_SMALL_GROUPS,
                                   walk_working_set)

    def spec(block_m, persistent=True, fp32_terms=0, tf32=False):
        return SimpleNamespace(block_m=block_m, persistent=persistent, fp32_terms=fp32_terms, tf32=tf32)

    assert walk_working_set(False, spec(192)) == L2_WORKING_SET_BYTES[False]
    assert walk_working_set(True, spec(192)) == L2_WORKING_SET_BYTES[True]                  # d64's 192-row blocks
    assert walk_working_set(True, spec(128, persistent=False)) == L2_WORKING_SET_BYTES[True]  # d256: a CTA per item
    assert walk_working_set(True, spec(128, fp32_terms=3)) == L2_WORKING_SET_BYTES[True]     # fp32: not measured
    assert walk_working_set(True, spec(128, tf32=True)) == L2_WORKING_SET_BYTES[True]
    assert walk_working_set(True, spec(WALK_ROWS_SMALL_GROUPS)) == L2_WORKING_SET_CAUSAL_128_BYTES
    assert L2_WORKING_SET_CAUSAL_128_BYTES < L2_WORKING_SET_BYTES[True]
