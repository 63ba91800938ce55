"""The float32 pre-pass (cupyflash/_split.py, cuda_src/split_fp32.cu) without a
GPU: the SplitParams mirror against the header (NVRTC offsetof checks), the
kernel's integer factor formula against the reference's double-precision one,
the float4 dispatch, the grid, and split_operands' host path (what it allocates
and launches) against a stand-in CuPy."""

from __future__ import annotations

import types

import numpy as np
import pytest

from cupyflash import _split
from cupyflash._arrays import DeviceBuffer
from cupyflash._split import (MAX_SHIFT, SPLIT_PARAMS_DTYPE, SPLIT_TENSOR_DTYPE, SPLIT_TENSOR_FIELDS, SPLIT_THREADS,
                              TARGET_EXP, grid_blocks, pack_params, shift_exponent, vector_width)

from header_checks import compile_asserts, layout_asserts
from split_reference import finite_absmax, reference_shift, reference_split


def test_offsets_match_header():
    compile_asserts("split_params.h",
                    layout_asserts("SplitTensor", SPLIT_TENSOR_DTYPE, [name for name, _ in SPLIT_TENSOR_FIELDS])
                    + layout_asserts("SplitParams", SPLIT_PARAMS_DTYPE, SPLIT_PARAMS_DTYPE.names))


def test_pack_params_equals_field_assignment():
    """The one struct.pack writes what assigning SPLIT_PARAMS_DTYPE's fields would."""
    tensors = [(0x1000 * (i + 1), 0x2000 * (i + 1), 0, -7 - i, 8 << i, 2**40 + i, 3 * 2**33 + i, 5 + i, 6, 72 + i, 80)
               for i in range(3)]
    got = pack_params(tensors, 0xAAAA0000, 0xBBBB0000)
    want = np.zeros((), SPLIT_PARAMS_DTYPE)
    for i, values in enumerate(tensors):
        for (name, _), value in zip(SPLIT_TENSOR_FIELDS, values):
            want["t"][i][name] = value
    want["maxima"], want["scales"], want["target_exp"] = 0xAAAA0000, 0xBBBB0000, TARGET_EXP
    want["max_shift"] = [MAX_SHIFT["q"], MAX_SHIFT["k"], MAX_SHIFT["v"]]
    assert got.tobytes() == want.tobytes()


def _interesting_floats() -> np.ndarray:
    f32 = np.float32
    tiny = np.finfo(f32).smallest_subnormal
    powers = np.array([2.0 ** e for e in range(-149, 128)], dtype=f32)
    near = np.concatenate([np.nextafter(powers, f32(0)), np.nextafter(powers, f32(np.inf))])
    rng = np.random.default_rng(7)
    rand = (rng.random(4000) * 2.0 ** rng.integers(-149, 128, 4000)).astype(f32)
    subnormal_bits = rng.integers(1, 1 << 23, 2000).astype(np.uint32).view(f32)
    extra = np.array([0.0, tiny, 3 * tiny, np.finfo(f32).max, 3e5, 2e-6, 7e8, 1.0, 16384.0, 16385.0], dtype=f32)
    vals = np.concatenate([powers, near, rand, subnormal_bits, extra])
    return vals[np.isfinite(vals) & (vals >= 0)]


@pytest.mark.parametrize("name", ["q", "k", "v"])
def test_shift_exponent_equals_reference_formula(name):
    """The kernel's exact integer ceil(log2(m)) gives the reference's double-precision
    shift for every kind of float32 maximum: zero, subnormals, powers of two and
    their neighbours, the largest float."""
    bad = [(float(m), shift_exponent(m, TARGET_EXP, MAX_SHIFT[name]), reference_shift(m, MAX_SHIFT[name]))
           for m in _interesting_floats()
           if shift_exponent(m, TARGET_EXP, MAX_SHIFT[name]) != reference_shift(m, MAX_SHIFT[name])]
    assert not bad, bad[:10]


def test_shift_lands_in_the_target_octave():
    for m in (1.0, 3e5, 2e-6, 16384.0, 16385.0, 8192.5):
        e = shift_exponent(m, TARGET_EXP, 120)
        assert 2.0 ** (TARGET_EXP - 1) < m * 2.0 ** e <= 2.0 ** TARGET_EXP
    assert shift_exponent(0.0, TARGET_EXP, MAX_SHIFT["q"]) == MAX_SHIFT["q"]  # all zero: the largest shift
    assert shift_exponent(1e30, TARGET_EXP, MAX_SHIFT["k"]) == -MAX_SHIFT["k"]  # clipped


@pytest.mark.parametrize("ptr,strides,sizes,dim,want", [
    (0x1000, (4096, 512, 128), (2, 8, 4), 128, 4),     # bshd contiguous
    (0x1000, (4096, 128, 1024), (2, 8, 4), 128, 4),    # bhsd via a transpose
    (0x1000, (4096, 512, 128), (2, 8, 4), 72, 4),      # dim 72 is a multiple of 4
    (0x1004, (4096, 512, 128), (2, 8, 4), 128, 1),     # base not 16-byte aligned
    (0x1000, (4096, 514, 128), (2, 8, 4), 128, 1),     # row stride not a multiple of 4
    (0x1000, (4096, 514, 128), (2, 1, 4), 128, 4),     # ... but one row: never stepped
    (0x1000, (0, 512, 128), (3, 8, 4), 128, 4),        # broadcast batch: stride 0
    (0x1000, (4096, 512, -128), (2, 8, 4), 128, 4),    # reversed heads
    (0x1000, (99, 33, 33), (2, 3, 1), 33, 1),          # odd dim
])
def test_vector_width(ptr, strides, sizes, dim, want):
    assert vector_width(ptr, strides, sizes, dim) == want


def test_grid_blocks():
    # d128 as float4: 32 column groups per row, 8 rows per block pass, 2 rows in flight
    assert grid_blocks([100, 100, 100], [32, 32, 32], 132) == 7
    assert grid_blocks([16 * 1024 * 16] * 3, [32] * 3, 132) == 132 * _split.BLOCKS_PER_SM // 3  # one wave
    assert grid_blocks([0, 0, 0], [32, 32, 32], 132) == 1  # block (0, 0) must still write scales
    assert grid_blocks([5, 0, 0], [1000, 0, 0], 132) == 3  # rows wider than a block: 1 row per pass
    assert grid_blocks([1], [32], 1) == 1


def test_reference_split_reconstructs():
    """The reference itself: hi + lo is x * 2^e to lo's rounding, padding is zero,
    a NaN stays in its own element and out of the factor, an all-zero tensor works."""
    rng = np.random.default_rng(3)
    q = (rng.standard_normal((2, 5, 3, 12)) * 3e5).astype(np.float32)
    q[1, 2, 0, 5] = np.nan
    k = np.zeros((2, 7, 3, 12), np.float32)
    v = (rng.standard_normal((2, 7, 3, 10)) * 2e-6).astype(np.float32)
    hi, lo, scales, shifts = reference_split({"q": q, "k": k, "v": v})
    assert shifts["k"] == MAX_SHIFT["k"] and hi["v"].shape == (2, 7, 3, 16) and not hi["v"][..., 10:].any()
    assert shifts["q"] == reference_shift(finite_absmax(q), MAX_SHIFT["q"])
    y = v * np.float32(2.0 ** shifts["v"])
    got = hi["v"][..., :10].astype(np.float32) + lo["v"][..., :10].astype(np.float32)
    assert np.abs(got - y).max() <= np.abs(y).max() * 2.0 ** -21
    assert np.isnan(hi["q"]).sum() == 1 and np.isnan(hi["q"][1, 2, 0, 5])
    assert scales[0] == np.float32(2.0 ** (-shifts["q"] - shifts["k"]))


# ---------------------------------------------------------------- host path
class _FakeArray:
    """What split_operands touches of a CuPy array: shape, dtype, data.ptr, 1-D slices, view."""

    def __init__(self, shape, dtype, ptr):
        self.shape, self.dtype, self.data = tuple(shape), np.dtype(dtype), types.SimpleNamespace(ptr=ptr)
        self.itemsize = self.dtype.itemsize
        self.size = int(np.prod(self.shape))

    def __getitem__(self, sl: slice):
        start, stop, step = sl.indices(self.shape[0])
        assert step == 1 and len(self.shape) == 1
        return _FakeArray((stop - start,), self.dtype, self.data.ptr + start * self.itemsize)

    def view(self, dtype):
        assert np.dtype(dtype).itemsize == self.itemsize
        return _FakeArray(self.shape, dtype, self.data.ptr)


class _FakeCupy:
    float16, float32, uint32 = np.float16, np.float32, np.uint32

    def __init__(self):
        self.allocs, self.zeroed, self._next = [], [], 0x7E0000000000
        device = types.SimpleNamespace(id=0, attributes={"MultiProcessorCount": 132})
        self.cuda = types.SimpleNamespace(Device=lambda: device)

    def empty(self, shape, dtype):
        a = _FakeArray(shape, dtype, self._next)
        self._next += 1 << 20
        self.allocs.append(a)
        return a

    def zeros(self, shape, dtype):
        a = self.empty((shape,), dtype)
        self.zeroed.append(a)
        return a


@pytest.fixture
def launches(monkeypatch):
    calls = []

    def kernel(cupy, name):
        return lambda grid, block, args: calls.append((name, grid, block, args[0]))

    monkeypatch.setattr(_split, "_kernel", kernel)
    return calls


def _buffer(shape, ptr, strides=None):
    if strides is None:
        strides = tuple(int(np.prod(shape[i + 1:])) for i in range(len(shape)))
    return DeviceBuffer(ptr, shape, strides, "float32", None)


@pytest.mark.parametrize("with_lo", [True, False])
def test_split_operands_launches_two_kernels_on_bhsd(launches, with_lo):
    cupy = _FakeCupy()
    b, h, s, d = 2, 3, 37, 72
    bufs = {"q": _buffer((b, h, s, d), 0x10000), "k": _buffer((b, h, 0, d), 0x20000),  # no keys: zero size
            "v": _buffer((b, h, s, 100), 0x30000)}
    out = _split.split_operands(cupy, bufs, "bhsd", with_lo)
    assert [name for name, *_ in launches] == [_split.absmax_name(4), _split.split_name(4, with_lo)]
    (words,) = cupy.zeroed
    assert words.shape == (5,) and out.scales.data.ptr == words.data.ptr and out.scales.dtype == np.float32
    assert out.hi["q"].shape == (b, s, h, 72) and out.hi["v"].shape == (b, s, h, 104) and out.hi["k"].shape[1] == 0
    assert bool(out.lo) == with_lo
    _, grid, block, p = launches[0]
    assert launches[1][1:] == (grid, block, p) and block == (SPLIT_THREADS,)
    assert grid == (grid_blocks([b * s * h, 0, b * s * h], [18, 18, 26], 132), 3)
    t = p["t"]
    assert (t[0]["x"], t[0]["hi"], t[0]["lo"]) == (0x10000, out.hi["q"].data.ptr,
                                                   out.lo["q"].data.ptr if with_lo else 0)
    assert (t[0]["batch_stride"], t[0]["row_stride"], t[0]["head_stride"]) == (h * s * d, d, s * d)
    assert (t[0]["rows"], t[0]["seqlen"], t[0]["heads"], t[0]["dim"], t[0]["padded_dim"]) == (b * s * h, s, h, 72, 72)
    assert t[1]["rows"] == 0 and (t[2]["dim"], t[2]["padded_dim"]) == (100, 104)
    assert p["maxima"] == words.data.ptr + 8 and p["scales"] == words.data.ptr
    assert p["target_exp"] == TARGET_EXP and list(p["max_shift"]) == [63, 63, 120]


def test_split_operands_scalar_kernels_for_an_odd_input(launches):
    cupy = _FakeCupy()
    bufs = {"q": _buffer((1, 5, 2, 33), 0x10000), "k": _buffer((1, 5, 2, 32), 0x20000),
            "v": _buffer((1, 5, 2, 32), 0x30004)}  # v misaligned too
    _split.split_operands(cupy, bufs, "bshd", True)
    assert [name for name, *_ in launches] == [_split.absmax_name(1), _split.split_name(1, True)]


def test_split_operands_needs_q_k_v_in_order(launches):
    buf = _buffer((1, 1, 1, 8), 0x10000)
    with pytest.raises(ValueError, match="q, k, v"):
        _split.split_operands(_FakeCupy(), {"k": buf, "q": buf, "v": buf}, "bshd")


def test_kernel_names_cover_the_launches():
    names = {n for _, n in _split.kernel_names()}
    assert names == {_split.absmax_name(v) for v in (4, 1)} | {_split.split_name(v, lo) for v in (4, 1)
                                                               for lo in (True, False)}
