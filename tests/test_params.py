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

    # d128 bf16 at seqlen 1024: 512 KB of K+V per head, so 32 heads fit in 16 MB (causal), 8 in 4 MB.
    assert walk_group_pairs(1024, 128, 128, 1, 256, True) == L2_WORKING_SET_BYTES[True] // (1024 * 256 * 2) == 32
    assert walk_group_pairs(1024, 128, 128, 1, 256, False) == L2_WORKING_SET_BYTES[False] // (1024 * 256 * 2) == 8
    assert walk_group_pairs(1024, 128, 128, 1, 8, True) == 8        # never more pairs than exist
    assert walk_group_pairs(1 << 20, 256, 256, 1, 64, False) == 1   # one head alone overflows: still 1
    assert walk_group_pairs(1024, 128, 128, 4, 256, True) == 128    # 4 query heads share one KV head
    assert walk_group_pairs(0, 64, 64, 1, 3, False) == 3            # no keys: every pair fits
