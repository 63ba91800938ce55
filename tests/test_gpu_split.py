"""GPU: the float32 pre-pass kernel (cuda_src/split_fp32.cu) writes hi, lo and
every tile's shift bit for bit as the NumPy reference of the original formula,
applied tile by tile, does (tests/split_reference.py): strided bhsd views, odd
head dims (the scalar kernel), misaligned bases, a NaN and an inf, an all-zero
tensor, a zero-size one, partial last tiles, GQA, tiles 2^40 apart, and the
tile shapes of every shipped variant (192-row query blocks, 80-key tiles,
rows of 256 columns)."""

from __future__ import annotations

import numpy as np
import pytest

from cupyflash import _split
from cupyflash._arrays import _cupy_buffer

from split_reference import reference_split

pytestmark = pytest.mark.gpu


def _require_sm80():
    import cupy as cp

    cc = int(cp.cuda.Device().compute_capability)
    if cc < 80:
        pytest.skip(f"the pre-pass kernels need sm_80 (redux.sync, cvt.rn.f16x2.f32); this GPU is sm_{cc}")


def _rand(shape, seed, scale, misaligned=False):
    import cupy as cp

    x = cp.random.RandomState(seed).standard_normal(shape, dtype=cp.float32) * cp.float32(scale)
    if not misaligned:
        return x
    n = int(np.prod(shape))
    y = cp.empty(n + 1, dtype=cp.float32)[1:].reshape(shape)  # base 4 bytes past 16-byte alignment
    y[...] = x
    return y


def _check(xs, layout, with_lo, block_m=128, block_n=64):
    import cupy as cp

    bufs = {name: _cupy_buffer(x) for name, x in xs.items()}
    out = _split.split_operands(cp, bufs, layout, block_m, block_n, with_lo)
    host = {name: cp.asnumpy(x) for name, x in xs.items()}
    if layout == "bhsd":
        host = {name: x.transpose(0, 2, 1, 3) for name, x in host.items()}
    hi, lo, shifts, _ = reference_split(host, block_m, block_n, with_lo)
    assert out.shifts.dtype == cp.int32 and out.shifts.shape == shifts.shape
    assert out.shifts.get().tolist() == shifts.tolist()
    assert set(out.lo) == set(lo)
    for name in xs:
        for got, want in ((out.hi[name], hi[name]),) + (((out.lo[name], lo[name]),) if with_lo else ()):
            assert got.dtype == cp.float16 and got.shape == want.shape and got.flags.c_contiguous
            g = got.get()
            g_nan, w_nan = np.isnan(g), np.isnan(want)
            assert (g_nan == w_nan).all(), f"{name}: NaN in different places"
            diff = g.view(np.uint16)[~g_nan] != want.view(np.uint16)[~w_nan]
            assert not diff.any(), f"{name}: {int(diff.sum())} of {diff.size} elements differ"


@pytest.mark.parametrize("with_lo", [True, False], ids=["hi_lo", "hi_only"])
def test_bhsd_dim72_nan_inf_zero(with_lo):
    """float4 kernel on bhsd views: dim 72 (padded to 72), dim_v 44 (padded to 48);
    37 queries (one partial tile), 41 keys (a full and a partial 32-key tile)."""
    _require_sm80()
    b, h, sq, sk = 2, 3, 37, 41
    q = _rand((b, h, sq, 72), 1, 3e5)
    q[1, 2, 5, 7] = float("nan")
    q[0, 1, 36, 71] = float("inf")
    k = _rand((b, h, sk, 72), 2, 1.0) * 0
    v = _rand((b, h, sk, 44), 3, 7e8)
    _check({"q": q, "k": k, "v": v}, "bhsd", with_lo, 128, 32)


@pytest.mark.parametrize("with_lo", [True, False], ids=["hi_lo", "hi_only"])
def test_scalar_kernel_odd_dim_and_misaligned(with_lo):
    """kVec = 1: an odd dim (33, padded to 40) and a base 4 bytes off alignment."""
    _require_sm80()
    q = _rand((2, 29, 3, 33), 4, 2e-6)
    k = _rand((2, 31, 3, 33), 5, 1e-30)  # clipped shift: the operand keeps its rounding
    v = _rand((2, 31, 3, 16), 6, 5.0, misaligned=True)
    _check({"q": q, "k": k, "v": v}, "bshd", with_lo, 16, 8)


def test_zero_size_keys_and_wide_rows():
    """No keys at all (k, v empty: no key tile, no shift pair) with q rows of 256
    columns (64 float4 groups: 4 rows per pass)."""
    import cupy as cp

    _require_sm80()
    q = _rand((1, 9, 2, 256), 7, 11.0)
    k = cp.empty((1, 0, 2, 256), dtype=cp.float32)
    v = cp.empty((1, 0, 2, 8), dtype=cp.float32)
    _check({"q": q, "k": k, "v": v}, "bshd", True)


def test_tiles_far_apart_gqa_odd_lengths():
    """GQA 8:2, 1000 queries and keys (partial last tiles), head dim 72, and tiles
    2^40 apart in magnitude: every tile gets its own shift."""
    import cupy as cp

    _require_sm80()
    x = {name: _rand(shape, 8 + i, 1.0) for i, (name, shape) in
         enumerate((("q", (2, 1000, 8, 72)), ("k", (2, 1000, 2, 72)), ("v", (2, 1000, 2, 72))))}
    for name, rows in (("q", 128), ("k", 64), ("v", 64)):
        x[name][:, rows:2 * rows] *= cp.float32(2.0 ** -40)
    _check(x, "bshd", True, 128, 64)


@pytest.mark.parametrize("block_m,block_n,dim", [(192, 128, 64), (128, 80, 256), (128, 64, 200)])
def test_shipped_tile_shapes(block_m, block_n, dim):
    """The tiles of the one-term variants: 192-row query blocks (width 64), 80-key
    tiles at width 256, rows of 256 and 200 columns (128 KB and 104 KB staged)."""
    _require_sm80()
    q = _rand((1, 1000, 4, dim), 8, 1.0)
    k = _rand((1, 291, 1, dim), 9, 0.01)
    v = _rand((1, 1, 291, dim), 10, 100.0).transpose(0, 2, 1, 3)  # a bhsd-ordered buffer seen as bshd
    _check({"q": q, "k": k, "v": v}, "bshd", False, block_m, block_n)


def test_without_q_converts_k_and_v_alone():
    """with_q=False (KernelSpec.q_in_kernel): no q copy, and k and v (hi, lo, and
    the {e_k, e_v} pairs, the whole shift array) bit-identical to the reference;
    q misaligned, which no longer matters to the pre-pass (k, v take float4s)."""
    import cupy as cp

    _require_sm80()
    x = {"q": _rand((2, 333, 4, 64), 3, 1.0, misaligned=True), "k": _rand((2, 1000, 2, 64), 4, 1.0),
         "v": _rand((2, 1000, 2, 64), 5, 3.0)}
    x["k"][:, 64:128] *= cp.float32(2.0 ** -30)
    out = _split.split_operands(cp, {n: _cupy_buffer(a) for n, a in x.items()}, "bshd", 128, 64, True, with_q=False)
    hi, lo, shifts, _ = reference_split({n: cp.asnumpy(a) for n, a in x.items()}, 128, 64, True)
    where = _split.shift_layout(2, 4, 2, 333, 1000, 128, 64)
    assert set(out.hi) == set(out.lo) == {"k", "v"}
    assert out.shifts.get().tolist() == shifts[:where.q_offset].tolist()
    for name in ("k", "v"):
        for got, want in ((out.hi[name], hi[name]), (out.lo[name], lo[name])):
            assert (got.get().view(np.uint16) == want.view(np.uint16)).all(), name
