"""The tf32 kernel's P.V without shuffles (CPU): the Q.K^T accumulator fragments,
fed as the A fragments of the next wgmma in the order {c0, c2, c1, c3}, times
V^T as the pre-pass writes it (keys permuted in groups of 8), is P.V exactly.
Fragment layouts from the PTX ISA ("Matrix Fragments for wgmma.mma_async.m64nNk8",
Figure 150, and the m64nNk16 accumulator D; CUTLASS ALayout_64x8 / CLayout_64xN):
per warp w of the warpgroup, g = lane / 4, t = lane % 4,
  D (fp32, n8 tile j):  d[j][0..1] = (16w + g, 8j + 2t + 0..1), d[j][2..3] = (16w + g + 8, ...)
  A (tf32, m64k8):      a0 = (16w + g, t), a1 = (16w + g + 8, t), a2 = (16w + g, t + 4), a3 = (16w + g + 8, t + 4)
Also the NumPy reference of the pre-pass (rounding, permutation, zero padding), its
launch grid, and the TMA data types; the GPU tests compare the kernel with it bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

from cupyflash import _tma, _vt

WARPS, LANES, ROWS = 4, 32, 64  # a warpgroup: 4 warps of 16 rows


def _accumulator_coords(j):
    """(row, col) of d[j][e] for every (warp, lane, e) of a warpgroup: shape (4, 32, 4, 2)."""
    w, lane, e = np.meshgrid(np.arange(WARPS), np.arange(LANES), np.arange(4), indexing="ij")
    g, t = lane // 4, lane % 4
    return np.stack([16 * w + g + 8 * (e // 2), 8 * j + 2 * t + e % 2], axis=-1)


def _a_coords():
    """(row, k) of a[r] of the m64k8 tf32 A fragment for every (warp, lane, r): shape (4, 32, 4, 2)."""
    w, lane, r = np.meshgrid(np.arange(WARPS), np.arange(LANES), np.arange(4), indexing="ij")
    g, t = lane // 4, lane % 4
    return np.stack([16 * w + g + 8 * (r % 2), t + 4 * (r // 2)], axis=-1)


def _pv_from_fragments(p, vt_cols, block_n):
    """What the kernel's P.V wgmmas compute for one warpgroup and one key tile: P
    (64 x block_n, the S accumulator layout) repacked per n8 tile as {c0, c2, c1, c3},
    times the K-major B read from V^T's columns (vt_cols: block_n x dv, column c of
    the tile = row c here)."""
    acc = np.zeros((ROWS, vt_cols.shape[1]))
    a_rc = _a_coords()
    for j in range(block_n // 8):
        c_rc = _accumulator_coords(j)
        regs = p[c_rc[..., 0], c_rc[..., 1]]  # (warp, lane, 4): c0..c3 as each thread holds them
        a_regs = regs[..., [0, 2, 1, 3]]  # pack_p: a = {c0, c2, c1, c3}
        a = np.zeros((ROWS, 8))
        a[a_rc[..., 0], a_rc[..., 1]] = a_regs  # the A matrix the hardware sees
        b = vt_cols[8 * j:8 * j + 8]  # k-step j: V^T columns 8j..8j+7 (K-major)
        acc += a @ b
    return acc


@pytest.mark.parametrize("block_n", [64, 128])
def test_fragment_order_and_permuted_vt_give_pv(block_n):
    rng = np.random.default_rng(block_n)
    p = rng.integers(-8, 9, (ROWS, block_n)).astype(np.float64)  # integers: sums are exact
    v = rng.integers(-8, 9, (block_n, 40)).astype(np.float64)
    vt_cols = v[_vt.key_positions(block_n)]  # V^T column c holds key key_positions[c]
    assert np.array_equal(_pv_from_fragments(p, vt_cols, block_n), p @ v)
    # Without the permutation the same fragments would pair P with the wrong keys.
    assert not np.array_equal(_pv_from_fragments(p, v, block_n), p @ v)


def test_key_order_is_the_fragment_order():
    """k position j of an A fragment holds accumulator column 2j (j < 4) or 2(j - 4) + 1."""
    c_rc, a_rc = _accumulator_coords(0), _a_coords()
    for r, c in enumerate((0, 2, 1, 3)):  # a[r] = c[c]
        assert np.array_equal(c_rc[:, :, c, 0], a_rc[:, :, r, 0])  # same row
        assert np.array_equal(_vt.KEY_ORDER[a_rc[:, :, r, 1]], c_rc[:, :, c, 1])  # key at that k
    assert sorted(_vt.KEY_ORDER) == list(range(_vt.KEY_GROUP))


def test_round_tf32_to_nearest_ties_away():
    one = np.float32(1.0)
    ulp = np.float32(2.0 ** -10)  # tf32's ulp at 1
    x = np.array([1 + ulp / 2, 1 + ulp / 4, 1 + 3 * ulp / 4, -(1 + ulp / 2), 0.0, -0.0,
                  np.inf, -np.inf, np.finfo(np.float32).max, 2.0 ** -130, 2.0 ** -140], dtype=np.float32)
    got = _vt.round_tf32(x)
    want = np.array([1 + ulp, one, 1 + ulp, -(1 + ulp), 0.0, -0.0, np.inf, -np.inf, np.inf, 2.0 ** -130, 0.0],
                    dtype=np.float32)
    assert np.array_equal(got.view(np.uint32), want.view(np.uint32))
    assert np.isnan(_vt.round_tf32(np.array([np.nan], dtype=np.float32))).all()
    assert not (_vt.round_tf32(np.random.default_rng(0).standard_normal(1000).astype(np.float32))
                .view(np.uint32) & 0x1FFF).any()


def test_reference_vt_layout():
    """V (batch, 13 keys, heads, dim) -> (batch, heads, dim, 16): permuted, rounded, zero-padded."""
    rng = np.random.default_rng(1)
    v = rng.standard_normal((2, 13, 3, 5)).astype(np.float32)
    vt = _vt.reference_vt(v)
    assert vt.shape == (2, 3, 5, 16) and vt.dtype == np.float32 and vt.flags.c_contiguous
    keys = _vt.key_positions(16)
    for col, key in enumerate(keys):
        want = _vt.round_tf32(v[:, key]) if key < 13 else np.zeros((2, 3, 5), np.float32)
        assert np.array_equal(vt[..., col].view(np.uint32), want.view(np.uint32)), (col, key)
    assert _vt.keys_padded(13) == 16 and _vt.keys_padded(16) == 16 and _vt.keys_padded(1) == 8


def test_launch_grid():
    # 3 x 2 (batch, head) pairs x 2 key tiles of 32 (keys_pad 40); dim 100: 4 column tiles.
    assert _vt.grid(3, 2, 100, 40) == ((12, 4, 1), 2)
    assert _vt.grid(1, 1, 8, 8) == ((1, 1, 1), 1)


def test_tma_data_types_match_the_driver():
    driver = pytest.importorskip("cuda.bindings.driver", reason="cuda-bindings (test extra) not installed")
    enum = driver.CUtensorMapDataType
    assert _tma._DATA_TYPE == {"float16": int(enum.CU_TENSOR_MAP_DATA_TYPE_FLOAT16),
                               "bfloat16": int(enum.CU_TENSOR_MAP_DATA_TYPE_BFLOAT16),
                               "float32": int(enum.CU_TENSOR_MAP_DATA_TYPE_FLOAT32),
                               "tfloat32": int(enum.CU_TENSOR_MAP_DATA_TYPE_TFLOAT32)}
    assert _tma.box_cols("float32") == 32 and _tma.box_cols("tfloat32") == 32 and _tma.box_cols("bfloat16") == 64


def test_smem_bytes_mirror_the_traits():
    """KernelSpec.smem_bytes and q_buffers (the launch's dynamic shared memory) equal the
    kernel traits' kSmemBytes and kQStages for every wgmma variant, tf32 and converting ones included."""
    from cupyflash._spec import candidate_specs

    from header_checks import compile_asserts

    checks = []
    for spec in (s for s in candidate_specs() if s.family == "wgmma"):
        elem = spec.name_expression.split("<", 1)[1].split(",")[0]
        traits = (f"cupyflash::WgmmaKernelTraits<{elem}, {spec.head_dim}, {spec.block_n}, {spec.stages}, "
                  f"{spec.fp32_terms}, {spec.consumer_warpgroups}, {spec.convert_stages}, "
                  f"{str(spec.q_in_kernel).lower()}, {str(spec.kv_once).lower()}>")
        checks.append(f'static_assert({traits}::kSmemBytes == {spec.smem_bytes}, "{spec.variant_name} smem");')
        checks.append(f'static_assert({traits}::kQStages == {spec.q_buffers}, "{spec.variant_name} Q buffers");')
    compile_asserts("wgmma_traits.h", checks)
