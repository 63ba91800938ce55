"""GPU: the float32 pre-pass kernels (cuda_src/split_fp32.cu) write hi, lo and
scales bit for bit as the NumPy reference of the original formula does
(tests/split_reference.py): strided bhsd views, odd head dims (the scalar
kernels), misaligned bases, a NaN and an inf, an all-zero tensor, a zero-size
one, rows wider than a block, and enough rows for several block-stride passes."""

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


def _check(xs, layout, with_lo):
    import cupy as cp

    bufs = {name: _cupy_buffer(x) for name, x in xs.items()}
    out = _split.split_operands(cp, bufs, layout, with_lo)
    host = {name: cp.asnumpy(x) for name, x in xs.items()}
    if layout == "bhsd":
        host = {name: x.transpose(0, 2, 1, 3) for name, x in host.items()}
    hi, lo, scales, _ = reference_split(host, with_lo)
    assert out.scales.dtype == cp.float32 and out.scales.shape == (2,)
    assert out.scales.get().view(np.uint32).tolist() == scales.view(np.uint32).tolist()
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
    """float4 kernels on bhsd views: dim 72 (padded to 72), dim_v 44 (padded to 48)."""
    _require_sm80()
    b, h, sq, sk = 2, 3, 37, 41
    q = _rand((b, h, sq, 72), 1, 3e5)
    q[1, 2, 5, 7] = float("nan")
    q[0, 1, 36, 71] = float("inf")
    k = _rand((b, h, sk, 72), 2, 1.0) * 0
    v = _rand((b, h, sk, 44), 3, 7e8)
    _check({"q": q, "k": k, "v": v}, "bhsd", with_lo)


@pytest.mark.parametrize("with_lo", [True, False], ids=["hi_lo", "hi_only"])
def test_scalar_kernels_odd_dim_and_misaligned(with_lo):
    """kVec = 1: an odd dim (33, padded to 40) and a base 4 bytes off alignment."""
    _require_sm80()
    q = _rand((2, 29, 3, 33), 4, 2e-6)
    k = _rand((2, 31, 3, 33), 5, 1e-30)  # clipped shift: the operand keeps its rounding
    v = _rand((2, 31, 3, 16), 6, 5.0, misaligned=True)
    _check({"q": q, "k": k, "v": v}, "bshd", with_lo)


def test_zero_size_and_wide_rows():
    """No keys at all (k, v empty: their maxima stay 0) with q rows wider than a
    block (dim 1028: 257 float4 groups per row, a column loop)."""
    import cupy as cp

    _require_sm80()
    q = _rand((1, 9, 2, 1028), 7, 11.0)
    k = cp.empty((1, 0, 2, 1028), dtype=cp.float32)
    v = cp.empty((1, 0, 2, 8), dtype=cp.float32)
    _check({"q": q, "k": k, "v": v}, "bshd", True)


def test_many_block_stride_passes():
    """More rows than one wave covers (every thread walks several passes, carrying
    seq and head across their bounds); one head and a short sequence too."""
    _require_sm80()
    q = _rand((3, 1024, 4, 128), 8, 1.0)
    k = _rand((97, 3, 1, 128), 9, 0.01)
    v = _rand((3, 4, 1024, 128), 10, 100.0).transpose(0, 2, 1, 3)  # a bhsd-ordered buffer seen as bshd
    _check({"q": q, "k": k, "v": v}, "bshd", True)
