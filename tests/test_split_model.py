"""The per-tile scheme end to end on the CPU (tests/split_reference.py's model of
the float32 wgmma kernels): fp16 hi/lo copies of every tile under its own shift,
the kernel's float32 arithmetic, and the undoing of the shifts (the softmax's
per-tile score factor and true-unit maxima, add_pv's 2^-e_v, the one-term
kernel's O units). Bounds: the GPU suite's, 1e-5 relative (3 terms) and 2e-3
(1 term, precision="fast"), here also per head, where a scale shared by the
whole tensor loses the small heads' precision."""

from __future__ import annotations

import math

import numpy as np
import pytest

from split_reference import exact_attention, model_attention, tiled_magnitudes

SPLIT_BOUND = 1e-5
FAST_BOUND = 2e-3
LSE_TOL = 1e-5
TILES = {3: (128, 64), 1: (128, 128)}  # (block_m, block_n) of the shipped variants at widths 64 and 128


def _rel(got, want):
    return float(np.linalg.norm(got - want) / max(float(np.linalg.norm(want)), 1e-300))


def _per_head(got, want):
    return max(_rel(got[:, :, h], want[:, :, h]) for h in range(want.shape[2]))


def _run(q, k, v, causal, terms, per_tensor=False):
    sq, sk, d = q.shape[1], k.shape[1], q.shape[3]
    offset, scale = sk - sq, 1 / math.sqrt(d)
    ref, ref_lse = exact_attention(q, k, v, causal=causal, offset=offset, scale=scale)
    block_m, block_n = TILES[terms]
    out, lse = model_attention(q, k, v, causal=causal, offset=offset, scale=scale, block_m=block_m,
                               block_n=block_n, terms=terms, per_tensor=per_tensor)
    assert not np.isnan(out).any()
    fin = np.isfinite(ref_lse)
    assert (np.isneginf(lse) == np.isneginf(ref_lse)).all()
    lse_err = float(np.abs(lse[fin] - ref_lse[fin]).max() / (1 + np.abs(ref_lse[fin]).max()))
    return _rel(out, ref), _per_head(out, ref), lse_err


def _qkv(rng, make, sq, sk, hq, hkv, d, dv):
    block_m, block_n = TILES[3]
    return make(rng, (1, sq, hq, d), block_m), make(rng, (1, sk, hkv, d), block_n), make(rng, (1, sk, hkv, dv), block_n)


def _randn(rng, shape, rows):
    return rng.standard_normal(shape).astype(np.float32)


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("terms", [3, 1])
def test_randn_within_the_bounds(causal, terms):
    """N(0, 1), GQA 2:1, odd lengths and head dim 72: every tile has about the same shift."""
    rng = np.random.default_rng(11 + causal + 2 * terms)
    q, k, v = _qkv(rng, _randn, 300, 333, 4, 2, 72, 72)
    rel, per_head, lse_err = _run(q, k, v, causal, terms)
    bound = SPLIT_BOUND if terms == 3 else FAST_BOUND
    assert rel <= bound and per_head <= bound, (rel, per_head)
    assert lse_err <= (LSE_TOL if terms == 3 else 1e-2), lse_err


@pytest.mark.parametrize("by", ["tile", "head"])
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("terms", [3, 1])
def test_tiles_2_to_the_20_apart(by, causal, terms):
    """Tiles of q, k and v whose magnitudes differ by 2^20 (along the sequence, or
    from head to head): each tile's shift is undone where its products land, so
    every head meets the bound as N(0, 1) data does."""
    rng = np.random.default_rng(23 + causal + 2 * terms + 4 * (by == "head"))
    q, k, v = _qkv(rng, lambda r, s, rows: tiled_magnitudes(r, s, rows, 20, by), 300, 333, 4, 2, 64, 64)
    rel, per_head, lse_err = _run(q, k, v, causal, terms)
    bound = SPLIT_BOUND if terms == 3 else FAST_BOUND
    assert rel <= bound and per_head <= bound, (rel, per_head)
    assert lse_err <= (LSE_TOL if terms == 3 else 1e-2), lse_err


def test_per_tensor_scale_loses_the_small_heads():
    """The same data under one shift per tensor (the scheme replaced): heads 2^20
    below the largest keep their lo parts in fp16's subnormals, and their error
    grows more than tenfold; per-tile shifts keep every head at N(0, 1)'s error."""
    rng = np.random.default_rng(5)
    q, k, v = _qkv(rng, lambda r, s, rows: tiled_magnitudes(r, s, rows, 20, "head"), 300, 333, 4, 2, 64, 64)
    _, tile_err, _ = _run(q, k, v, True, 3)
    _, tensor_err, _ = _run(q, k, v, True, 3, per_tensor=True)
    assert tensor_err > 10 * tile_err, (tensor_err, tile_err)


@pytest.mark.parametrize("terms", [3, 1])
def test_extreme_v_tiles(terms):
    """V tiles at the ends of the shift range in one head, visited in every order:
    an all-zero tile (shift +120), a tiny one (2^-110, clipped shift), a huge one
    (2^60) and ordinary ones. With one term O's units move to the huge tile and
    the small tiles' P is shifted down; nothing overflows, and the result is
    within the bound (the zero tile still counts in the row sums)."""
    rng = np.random.default_rng(7)
    block_n = TILES[terms][1]
    sk = 6 * block_n - 5
    q = rng.standard_normal((1, 200, 2, 64)).astype(np.float32)
    k = rng.standard_normal((1, sk, 1, 64)).astype(np.float32)
    v = rng.standard_normal((1, sk, 1, 64))
    for tile, factor in ((1, 0.0), (2, 2.0 ** -110), (4, 2.0 ** 60)):
        v[:, tile * block_n:(tile + 1) * block_n] *= factor
    v = v.astype(np.float32)
    for causal in (False, True):
        rel, per_head, _ = _run(q, k, v, causal, terms)
        bound = SPLIT_BOUND if terms == 3 else FAST_BOUND
        assert rel <= bound and per_head <= bound, (causal, rel, per_head)


Q_WARPGROUP_ROWS = 64  # KernelSpec.q_in_kernel: e_q per consumer warpgroup's rows (cuda_src/q_convert.h)


def _run_q_rows(q, k, v, causal, q_rows):
    sq, sk, d = q.shape[1], k.shape[1], q.shape[3]
    offset, scale = sk - sq, 1 / math.sqrt(d)
    ref, ref_lse = exact_attention(q, k, v, causal=causal, offset=offset, scale=scale)
    block_m, block_n = TILES[3]
    out, lse = model_attention(q, k, v, causal=causal, offset=offset, scale=scale, block_m=block_m,
                               block_n=block_n, terms=3, q_rows=q_rows)
    fin = np.isfinite(ref_lse)
    assert not np.isnan(out).any() and (np.isneginf(lse) == np.isneginf(ref_lse)).all()
    lse_err = float(np.abs(lse[fin] - ref_lse[fin]).max() / (1 + np.abs(ref_lse[fin]).max()))
    return _rel(out, ref), _per_head(out, ref), lse_err


@pytest.mark.parametrize("causal", [False, True])
def test_q_in_kernel_randn(causal):
    """The split with e_q per 64 rows (Q converted by the consumer warpgroups):
    N(0, 1), GQA 2:1, odd lengths (a last block whose second warpgroup has rows
    past the end) and head dim 72, within the split's bound."""
    rng = np.random.default_rng(31 + causal)
    q, k, v = _qkv(rng, _randn, 300, 333, 4, 2, 72, 72)
    rel, per_head, lse_err = _run_q_rows(q, k, v, causal, Q_WARPGROUP_ROWS)
    assert rel <= SPLIT_BOUND and per_head <= SPLIT_BOUND, (rel, per_head)
    assert lse_err <= LSE_TOL, lse_err


@pytest.mark.parametrize("causal", [False, True])
def test_q_in_kernel_warpgroups_2_to_the_20_apart(causal):
    """q's 64-row halves of every query block 2^20 apart (k and v tiles too): each
    warpgroup's own e_q keeps its rows at N(0, 1)'s error: its factor is undone
    exactly per row. (One e_q per 128-row block is within the bound on this data
    too: small q rows make small scores, whose softmax is insensitive to their
    lost low bits; the GPU test compares the kernel with this model instead.)"""
    rng = np.random.default_rng(41 + causal)
    sq, sk = 300, 333
    q = tiled_magnitudes(rng, (1, sq, 4, 64), Q_WARPGROUP_ROWS, 20, "tile")
    k = tiled_magnitudes(rng, (1, sk, 2, 64), TILES[3][1], 20, "tile")
    v = tiled_magnitudes(rng, (1, sk, 2, 64), TILES[3][1], 20, "tile")
    rel, per_head, lse_err = _run_q_rows(q, k, v, causal, Q_WARPGROUP_ROWS)
    assert rel <= SPLIT_BOUND and per_head <= SPLIT_BOUND, (rel, per_head)
    assert lse_err <= LSE_TOL, lse_err
