"""The float32 pre-pass (cupyflash/_split.py, cuda_src/split_fp32.cu) without a
GPU: the SplitParams mirror against the header (NVRTC offsetof checks), the
shift layout and the one-term kernel's unit formulas against tile_shifts.h
(NVRTC static_asserts), the kernel's integer factor formula against the
reference's double-precision one, the float4 dispatch, the shared-memory
staging of every shipped variant's tiles, and split_operands' host path (what
it allocates and launches) against a stand-in CuPy. tests/test_split_model.py
checks the scheme's accuracy end to end on the CPU."""

from __future__ import annotations

import types

import numpy as np
import pytest

from cupyflash import _split
from cupyflash._arrays import DeviceBuffer
from cupyflash._split import (MAX_SHIFT, SPLIT_MAX_STAGE_BYTES, SPLIT_PARAMS_DTYPE, SPLIT_TENSOR_DTYPE,
                              SPLIT_TENSOR_FIELDS, SPLIT_THREADS, TARGET_EXP, pack_params, shift_exponent,
                              shift_layout, stage_bytes, tile_passes, vector_width)

from header_checks import compile_asserts, layout_asserts
from split_reference import (MAX_P_SHIFT, finite_absmax, p_shift_of, reference_shift, reference_split,
                             tile_shifts, unit_exp_of)


def test_offsets_match_header():
    compile_asserts("split_params.h",
                    layout_asserts("SplitTensor", SPLIT_TENSOR_DTYPE, [name for name, _ in SPLIT_TENSOR_FIELDS])
                    + layout_asserts("SplitParams", SPLIT_PARAMS_DTYPE, SPLIT_PARAMS_DTYPE.names))


def test_pack_params_equals_field_assignment():
    """The one struct.pack writes what assigning SPLIT_PARAMS_DTYPE's fields would."""
    tensors = [(0x1000 * (i + 1), 0x2000 * (i + 1), 0, 0x3000 + 4 * i, -7 - i, 8 << i, 2**40 + i, 5 + i, 6, 72 + i,
                80, 128 - 64 * (i > 0), 3 + i, 100 * i, 1 + (i > 0)) for i in range(3)]
    got = pack_params(tensors)
    want = np.zeros((), SPLIT_PARAMS_DTYPE)
    for i, values in enumerate(tensors):
        for (name, _), value in zip(SPLIT_TENSOR_FIELDS, values):
            want["t"][i][name] = value
    want["target_exp"] = TARGET_EXP
    want["max_shift"] = [MAX_SHIFT["q"], MAX_SHIFT["k"], MAX_SHIFT["v"]]
    assert got.tobytes() == want.tobytes()


def test_shift_layout_matches_header():
    """kv_shift_index / q_shift_index (constexpr in tile_shifts.h) agree with
    ShiftLayout for GQA, odd tile counts and several batches."""
    checks = []
    for batch, hq, hkv, sq, sk, bm, bn in ((2, 8, 2, 1000, 1000, 128, 64), (3, 5, 1, 1, 513, 192, 128),
                                           (1, 4, 4, 239, 1, 128, 80)):
        where = shift_layout(batch, hq, hkv, sq, sk, bm, bn)
        assert where.size == where.q_offset + batch * hq * -(-sq // bm)
        assert where.q_offset == 2 * batch * hkv * where.n_tiles
        for b in range(batch):
            for h in range(hq):
                kvh = h // (hq // hkv)
                t, m = where.n_tiles - 1, where.m_blocks - 1
                checks.append(f"static_assert(2 * (cupyflash::kv_shift_index({b}, {kvh}, {hkv}, {where.n_tiles}) "
                              f"+ {t}) == {where.kv_index(b, kvh, t)});")
                checks.append(f"static_assert(cupyflash::q_shift_index({b}, {h}, {m}, {batch}, {hq}, {hkv}, "
                              f"{where.n_tiles}, {where.m_blocks}) == {where.q_index(b, h, m)});")
    compile_asserts("tile_shifts.h", checks)


def test_o_units_formulas_match_header():
    """The one-term kernel's P shift and O factor exponent (tile_shifts.h) equal the
    CPU model's, for every distance two shifts can have."""
    checks = [f"static_assert(cupyflash::p_shift_of({d}) == {p_shift_of(d)} && cupyflash::unit_exp_of({d}) == "
              f"{unit_exp_of(d)});" for d in range(-2 * MAX_SHIFT["v"], 2 * MAX_SHIFT["v"] + 1)]
    checks.append(f"static_assert(cupyflash::kMaxPShift == {MAX_P_SHIFT});")
    compile_asserts("tile_shifts.h", checks)


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


def test_tile_staging():
    """A block stages its tile in shared memory: a 128 x 128 float4 tile is 16 passes,
    64 KB; a scalar row of 256 columns takes a pass per row."""
    assert tile_passes(128, 128, 4) == 16 and stage_bytes(128, 128, 4) == 64 * 1024
    assert tile_passes(64, 72, 4) == 5  # 18 groups: 14 rows per pass
    assert tile_passes(128, 256, 1) == 128 and stage_bytes(128, 256, 1) == 128 * 1024
    assert tile_passes(1, 8, 1) == 1


@pytest.mark.parametrize("vec", [4, 1])
def test_every_shipped_float32_variant_stages_its_tiles(vec):
    """Every tile of every shipped float32 fp16-operand variant fits the pre-pass:
    rows of at most SPLIT_THREADS column groups, staging within SPLIT_MAX_STAGE_BYTES."""
    from cupyflash._split import padded_dim
    from cupyflash._spec import shipped_specs

    specs = [s for s in shipped_specs() if s.fp32_terms]
    assert {s.fp32_terms for s in specs} == {1, 3}
    for spec in specs:
        for dim in range(1, spec.head_dim + 1):
            pad = padded_dim(dim)
            if vec == 4 and dim % 4:
                continue
            assert pad // vec <= SPLIT_THREADS
            for rows in (spec.block_m, spec.block_n):
                assert stage_bytes(rows, pad, vec) <= SPLIT_MAX_STAGE_BYTES, (spec.variant_name, dim, rows)


def test_reference_split_reconstructs():
    """The reference itself: each tile's hi + lo is x * 2^e(tile) to lo's rounding,
    padding is zero, a NaN stays in its own element and out of its tile's factor,
    an all-zero tensor works, and the shifts array has the kernel's layout."""
    rng = np.random.default_rng(3)
    q = (rng.standard_normal((2, 5, 3, 12)) * 3e5).astype(np.float32)
    q[1, 2, 0, 5] = np.nan
    k = np.zeros((2, 7, 3, 12), np.float32)
    v = (rng.standard_normal((2, 7, 3, 10)) * 2e-6).astype(np.float32)
    v[:, 4:] *= np.float32(2.0 ** 30)  # the second tile of 4 keys: 2^30 larger
    hi, lo, flat, shifts = reference_split({"q": q, "k": k, "v": v}, 4, 4)
    assert (shifts["k"] == MAX_SHIFT["k"]).all() and hi["v"].shape == (2, 7, 3, 16) and not hi["v"][..., 10:].any()
    assert shifts["q"][1, 0, 0] == reference_shift(finite_absmax(q[1, :4, 0]), MAX_SHIFT["q"])
    assert (shifts["v"][:, :, 0] - shifts["v"][:, :, 1] >= 29).all()
    factor = np.exp2(np.repeat(shifts["v"], 4, axis=2)[:, :, :7].transpose(0, 2, 1)[..., None]).astype(np.float32)
    y = v * factor
    got = hi["v"][..., :10].astype(np.float32) + lo["v"][..., :10].astype(np.float32)
    assert (np.abs(got - y) <= np.abs(y).max(axis=3, keepdims=True) * 2.0 ** -21).all()
    assert np.isnan(hi["q"]).sum() == 1 and np.isnan(hi["q"][1, 2, 0, 5])
    where = shift_layout(2, 3, 3, 5, 7, 4, 4)
    assert flat.shape == (where.size,)
    kv = where.kv_index(1, 2, 1)
    assert flat[kv] == shifts["k"][1, 2, 1] and flat[kv + 1] == shifts["v"][1, 2, 1]
    assert flat[where.q_index(1, 0, 1)] == shifts["q"][1, 0, 1]
    assert (tile_shifts(q, 4, MAX_SHIFT["q"]) == shifts["q"]).all()


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
    float16, float32, int32 = np.float16, np.float32, np.int32

    def __init__(self):
        self.allocs, self._next = [], 0x7E0000000000
        device = types.SimpleNamespace(id=0, attributes={"MultiProcessorCount": 132})
        self.cuda = types.SimpleNamespace(Device=lambda: device)

    def empty(self, shape, dtype):
        a = _FakeArray(shape if isinstance(shape, tuple) else (shape,), dtype, self._next)
        self._next += 1 << 20
        self.allocs.append(a)
        return a


@pytest.fixture
def launches(monkeypatch):
    calls = []

    def kernel(cupy, name):
        def launch(grid, block, args, shared_mem):
            assert 0 < shared_mem <= _split.SPLIT_MAX_STAGE_BYTES  # what the loaded kernel is allowed
            calls.append((name, grid, block, args[0], shared_mem))
        return launch

    monkeypatch.setattr(_split, "_kernel", kernel)
    return calls


def _buffer(shape, ptr, strides=None):
    if strides is None:
        strides = tuple(int(np.prod(shape[i + 1:])) for i in range(len(shape)))
    return DeviceBuffer(ptr, shape, strides, "float32", None)


@pytest.mark.parametrize("with_lo", [True, False])
def test_split_operands_launches_one_kernel_on_bhsd(launches, with_lo):
    cupy = _FakeCupy()
    b, h, s, d = 2, 3, 37, 72
    bufs = {"q": _buffer((b, h, s, d), 0x10000), "k": _buffer((b, h, 0, d), 0x20000),  # no keys: zero size
            "v": _buffer((b, h, 0, 100), 0x30000)}
    out = _split.split_operands(cupy, bufs, "bhsd", 16, 64, with_lo)
    assert [name for name, *_ in launches] == [_split.split_name(4, with_lo)]
    assert out.shifts.dtype == np.int32 and out.shifts.shape == (b * h * 3,)  # no key tiles: e_q only
    assert out.hi["q"].shape == (b, s, h, 72) and out.hi["v"].shape == (b, 0, h, 104) and out.hi["k"].shape[1] == 0
    assert bool(out.lo) == with_lo
    _, grid, block, p, smem = launches[0]
    assert grid == (b * h * 3,) and block == (SPLIT_THREADS,) and smem == stage_bytes(16, 72, 4)
    t = p["t"]
    assert (t[0]["x"], t[0]["hi"], t[0]["lo"], t[0]["shifts"]) == (0x10000, out.hi["q"].data.ptr,
                                                                  out.lo["q"].data.ptr if with_lo else 0,
                                                                  out.shifts.data.ptr)
    assert (t[0]["batch_stride"], t[0]["row_stride"], t[0]["head_stride"]) == (h * s * d, d, s * d)
    assert (t[0]["seqlen"], t[0]["heads"], t[0]["dim"], t[0]["padded_dim"]) == (s, h, 72, 72)
    assert (t[0]["tile_rows"], t[0]["seq_tiles"], t[0]["first_block"], t[0]["shift_step"]) == (16, 3, 0, 1)
    assert [t[i]["first_block"] for i in (1, 2)] == [b * h * 3] * 2 and t[1]["seq_tiles"] == 0
    assert (t[2]["dim"], t[2]["padded_dim"]) == (100, 104)
    assert p["target_exp"] == TARGET_EXP and list(p["max_shift"]) == [63, 63, 120]


def test_split_operands_places_every_tile_and_shift(launches):
    """GQA, a partial last tile: blocks cover q, k, v's tiles in turn, and each
    tensor's shifts start where shift_layout puts them (k, v interleaved)."""
    cupy = _FakeCupy()
    b, sq, sk, hq, hkv, d = 2, 1000, 999, 8, 2, 128
    bufs = {"q": _buffer((b, sq, hq, d), 0x100000), "k": _buffer((b, sk, hkv, d), 0x200000),
            "v": _buffer((b, sk, hkv, d), 0x300000)}
    out = _split.split_operands(cupy, bufs, "bshd", 128, 64, True)
    _, grid, _, p, smem = launches[0]
    where = shift_layout(b, hq, hkv, sq, sk, 128, 64)
    nq, nkv = b * hq * 8, b * hkv * 16
    assert grid == (nq + 2 * nkv,) and out.shifts.shape == (where.size,) and smem == 64 * 1024
    t = p["t"]
    assert [t[i]["first_block"] for i in range(3)] == [0, nq, nq + nkv]
    assert [t[i]["seq_tiles"] for i in range(3)] == [8, 16, 16]
    assert [t[i]["tile_rows"] for i in range(3)] == [128, 64, 64]
    base = out.shifts.data.ptr
    assert [t[i]["shifts"] for i in range(3)] == [base + 4 * where.q_offset, base, base + 4]
    assert [t[i]["shift_step"] for i in range(3)] == [1, 2, 2]


def test_split_operands_scalar_kernel_for_an_odd_input(launches):
    cupy = _FakeCupy()
    bufs = {"q": _buffer((1, 5, 2, 33), 0x10000), "k": _buffer((1, 5, 2, 32), 0x20000),
            "v": _buffer((1, 5, 2, 32), 0x30004)}  # v misaligned too
    _split.split_operands(cupy, bufs, "bshd", 128, 64, True)
    assert [name for name, *_ in launches] == [_split.split_name(1, True)]
    assert launches[0][4] == stage_bytes(128, 40, 1)


def test_split_operands_rejects_what_it_cannot_serve(launches):
    buf = _buffer((1, 1, 1, 8), 0x10000)
    with pytest.raises(ValueError, match="q, k, v"):
        _split.split_operands(_FakeCupy(), {"k": buf, "q": buf, "v": buf}, "bshd", 128, 64)
    with pytest.raises(ValueError, match="share the batch"):
        _split.split_operands(_FakeCupy(), {"q": buf, "k": buf, "v": _buffer((1, 2, 1, 8), 0x20000)}, "bshd", 128, 64)
    wide = _buffer((1, 3, 1, 1028), 0x10000)
    with pytest.raises(ValueError, match="column groups"):
        _split.split_operands(_FakeCupy(), {"q": wide, "k": wide, "v": wide}, "bshd", 128, 64)
    assert not launches


def test_kernel_names_cover_the_launches():
    names = {n for _, n in _split.kernel_names()}
    assert names == {_split.split_name(v, lo) for v in (4, 1) for lo in (True, False)}


def test_split_operands_without_q(launches):
    """KernelSpec.q_in_kernel: the pre-pass converts k and v only. q keeps its slot
    in SplitParams with no tile (k's blocks start at 0, so no block reads q), gets
    no hi/lo copy and no shift (shift_layout with_q=False: m_blocks 0), and its
    alignment no longer decides the vector width (q here is odd, k and v are not)."""
    cupy = _FakeCupy()
    b, sq, sk, hq, hkv, d = 2, 1000, 999, 8, 2, 128
    bufs = {"q": _buffer((b, sq, hq, d), 0x100004), "k": _buffer((b, sk, hkv, d), 0x200000),
            "v": _buffer((b, sk, hkv, d), 0x300000)}
    out = _split.split_operands(cupy, bufs, "bshd", 128, 64, True, with_q=False)
    assert [name for name, *_ in launches] == [_split.split_name(4, True)]
    _, grid, _, p, _ = launches[0]
    where = shift_layout(b, hq, hkv, sq, sk, 128, 64, with_q=False)
    nkv = b * hkv * 16
    assert where.m_blocks == 0 and where.size == where.q_offset
    assert grid == (2 * nkv,) and out.shifts.shape == (where.size,)
    assert set(out.hi) == set(out.lo) == {"k", "v"}
    t = p["t"]
    assert [t[i]["first_block"] for i in range(3)] == [0, 0, nkv] and t[0]["seq_tiles"] == 0
    assert (t[0]["hi"], t[0]["lo"]) == (0, 0)
    base = out.shifts.data.ptr
    assert [t[i]["shifts"] for i in (1, 2)] == [base, base + 4]
