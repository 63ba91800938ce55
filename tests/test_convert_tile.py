"""The in-kernel fp32 -> fp16 converter's addressing (cuda_src/convert_tile.h)
without a GPU: the swizzled offsets against a model of TMA's 128-byte swizzle
(NVRTC static_asserts), the thread -> chunk map covering every chunk once, and
its shared-memory accesses free of bank conflicts (a model of the banks)."""

from __future__ import annotations

import itertools

import pytest
from header_checks import compile_asserts

ROW_BYTES = 128  # one swizzled box row
CHUNK = 16
WARP = 32
CONVERTER_WARPS = 3
BANK_BYTES = 4
BANKS = 32


def tma_swizzle_128b(offset: int) -> int:
    """TMA's 128-byte swizzle as the hardware defines it on addresses (1024-byte
    atoms): bits 4-6 (the 16-byte chunk) XOR bits 7-9 (the row within 8)."""
    return offset ^ (((offset >> 7) & 7) << 4)


def model_offset(rows: int, row: int, col: int, elem_bytes: int) -> int:
    """Byte of element (row, col) of a tile stored as boxes of (rows x 128 bytes)."""
    box_cols = ROW_BYTES // elem_bytes
    plain = (col // box_cols * rows + row) * ROW_BYTES + (col % box_cols) * elem_bytes
    return tma_swizzle_128b(plain)


def converter_row_in_atom(lane: int, k: int) -> int:
    """Mirror of the header's lane -> row map (lane % 8 is the chunk)."""
    q = lane // 8
    return 4 * (q % 2) + q // 2 + 2 * k


def f16_dst_of_f32_chunk(rows: int, b: int, r: int, c: int) -> int:
    return model_offset(rows, r, 32 * b + 4 * c, 2)


def warp_steps(rows: int, cols: int, row_of=converter_row_in_atom):
    """For each warp step of each converter warp: per lane (box, row, chunk).
    Warp w takes the 8-row atoms w, w + 3, ..., and in each its 2 x boxes steps."""
    boxes = cols // 32
    for warp in range(CONVERTER_WARPS):
        for atom in range(warp, rows // 8, CONVERTER_WARPS):
            for k in range(2):
                for box in range(boxes):
                    yield [(box, atom * 8 + row_of(lane, k), lane % 8) for lane in range(WARP)]


def conflict_free(addrs: list[int], width: int, phase_lanes: int) -> bool:
    """Each phase (phase_lanes consecutive lanes, 128 bytes) touches every bank once."""
    for p in range(0, len(addrs), phase_lanes):
        banks = [((a % ROW_BYTES) + i) // BANK_BYTES for a in addrs[p:p + phase_lanes] for i in range(0, width, 4)]
        if len(set(banks)) != len(banks):
            return False
    return True


SHAPES = [(64, 128), (128, 64), (192, 64), (128, 128), (8, 64)]


@pytest.mark.parametrize("rows,cols", SHAPES)
def test_every_chunk_once_and_bijective_destination(rows, cols):
    seen = [t for step in warp_steps(rows, cols) for t in step]
    assert sorted(seen) == sorted(itertools.product(range(cols // 32), range(rows), range(8)))
    dst = {f16_dst_of_f32_chunk(rows, *t) for t in seen}
    assert len(dst) == len(seen) and dst == set(range(0, rows * cols * 2, 8))


@pytest.mark.parametrize("rows,cols", SHAPES)
def test_converter_accesses_are_conflict_free(rows, cols):
    for step in warp_steps(rows, cols):
        loads = [model_offset(rows, r, 32 * b + 4 * c, 4) for b, r, c in step]
        stores = [f16_dst_of_f32_chunk(rows, b, r, c) for b, r, c in step]
        assert conflict_free(loads, 16, 8), step   # LDS.128: a quarter-warp per phase
        assert conflict_free(stores, 8, 16), step  # STS.64: a half-warp per phase


def test_pairing_adjacent_rows_would_conflict():
    """The hazard the header's lane map avoids: rows r, r + 1 in one half-warp."""
    def adjacent(lane, k):
        return lane // 8 + 4 * k
    step = next(iter(warp_steps(64, 128, adjacent)))
    stores = [f16_dst_of_f32_chunk(64, b, r, c) for b, r, c in step]
    assert not conflict_free(stores, 8, 16)


def test_header_matches_the_model():
    checks = []
    for rows, cols in [(64, 128), (192, 64)]:
        for r in list(range(16)) + [rows - 1]:
            for col in range(cols):
                checks.append(f"static_assert(cupyflash::f32_elem_offset({rows}, {r}, {col}) == "
                              f"{model_offset(rows, r, col, 4)}u, \"f32 ({rows}, {r}, {col})\");")
                checks.append(f"static_assert(cupyflash::f16_elem_offset({rows}, {r}, {col}) == "
                              f"{model_offset(rows, r, col, 2)}u, \"f16 ({rows}, {r}, {col})\");")
            for b, c in itertools.product(range(cols // 32), range(8)):
                checks.append(f"static_assert(cupyflash::f16_dst_of_f32_chunk({rows}, {b}, {r}, {c}) == "
                              f"{f16_dst_of_f32_chunk(rows, b, r, c)}u, \"dst ({rows}, {b}, {r}, {c})\");")
    for lane, k in itertools.product(range(WARP), range(2)):
        checks.append(f"static_assert(cupyflash::converter_row_in_atom({lane}, {k}) == "
                      f"{converter_row_in_atom(lane, k)}, \"row of lane {lane} step {k}\");")
    checks.append(f"static_assert(cupyflash::kConverterThreads == {CONVERTER_WARPS * WARP}, \"converters\");")
    compile_asserts("convert_tile.h", checks)
