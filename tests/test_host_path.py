"""``cupyflash.attention``'s whole host path, without a GPU, against the stand-in
runtime of cuda_fakes.py: the FlashParams built from a template equal the ones
built field by field, the TMA maps and every address are this call's (a cached
entry never carries a pointer), and alignment is judged per call."""

from __future__ import annotations

import math

import numpy as np
import pytest

import cupyflash
from cupyflash import _callcache, api
from cupyflash._params import (CALL_FIELDS, LOG2E, PARAMS_DTYPE, TMA_PARAMS_DTYPE, TMA_PARAMS_FIELDS, fill_params,
                               make_params, make_tma_params, params_template, walk_group_pairs,
                               walk_working_set)
from cupyflash._spec import candidate_specs

import cuda_fakes
from array_fakes import FakeCupyArray, FakeTorchTensor

BASE_PTR = 0x7F0000000000
MIB = 1 << 20


@pytest.fixture(autouse=True)
def fresh_caches():
    for cache in (_callcache._validate_signatures, api._cached_plan, api._params_template):
        cache.cache_clear()
    yield
    for cache in (_callcache._validate_signatures, api._cached_plan, api._params_template):
        cache.cache_clear()


def _ptr(x) -> int:
    return x.data_ptr() if isinstance(x, FakeTorchTensor) else x.data.ptr


def _strides(x) -> tuple:
    return x.stride() if isinstance(x, FakeTorchTensor) else tuple(s // x.itemsize for s in x.strides)


def params_from_scratch(q, k, v, o, lse, *, causal=False, alignment="bottom_right", scale=None, layout="bshd",
                        working_set=0, block_m_shifted=None, walk_table=0):
    """FlashParams of an unstaged call, every field set by name from the arrays themselves,
    the walk's working set (bytes) and, for a kernel whose query blocks may start before
    row 0, its block_m (``block_m_shifted``; the kernel's tiles decide both)."""
    def bshd(t):
        return t if layout == "bshd" else (t[0], t[2], t[1], t[3])

    b, sq, hq, d = bshd(q.shape)
    sk, hk, dv = bshd(k.shape)[1], bshd(k.shape)[2], bshd(v.shape)[3]
    scale = 1 / math.sqrt(d) if scale is None else float(scale)
    fields = dict(q=_ptr(q), k=_ptr(k), v=_ptr(v), o=_ptr(o), lse=0 if lse is None else _ptr(lse), tile_shifts=0,
                  kv_k=0, kv_v=0, kv_k_lo=0, kv_v_lo=0, kv_flags=0, sk_partials=0, sk_flags=0, walk_table=walk_table,
                  softmax_scale=scale, scale_log2=scale * LOG2E, batch=b, seqlen_q=sq, seqlen_k=sk, heads_q=hq,
                  heads_kv=hk, group=hq // hk, head_dim=d, head_dim_v=dv, causal=int(causal),
                  causal_offset=sk - sq if alignment == "bottom_right" else 0,
                  walk_group_pairs=walk_group_pairs(sk, d, dv, hq // hk, b * hq, working_set),
                  # causal: whole 64-row warpgroups of the last block's padding move before row 0
                  q_row_shift=(-sq % block_m_shifted) // 64 * 64 if causal and block_m_shifted else 0,
                  # these problems fill no more than one wave of a persistent grid: no split tail
                  sk_items=0, sk_tiles=0)
    for name, x in (("q", q), ("k", k), ("v", v), ("o", o)):
        for part, stride in zip(("batch", "row", "head"), bshd(_strides(x))):
            fields[f"{name}_{part}_stride"] = stride
    return make_params(**fields)


# (library, arch, dtype, q shape, kv shape, dv, kwargs, k's element strides or None)
PROBLEMS = [
    ("torch", 90, "bfloat16", (1, 128, 4, 64), (1, 128, 4, 64), 64, {}, None),
    ("torch", 90, "float16", (2, 100, 8, 128), (2, 300, 2, 128), 128, {"causal": True}, None),
    ("cupy", 90, "float16", (2, 8, 100, 64), (2, 2, 77, 64), 64, {"layout": "bhsd", "causal": True,
                                                                   "causal_alignment": "top_left"}, None),
    ("torch", 80, "bfloat16", (1, 33, 4, 96), (1, 47, 2, 96), 96, {"softmax_scale": 0.3}, None),
    ("cupy", 80, "float16", (3, 64, 4, 64), (3, 64, 4, 64), 64, {}, (64 * 8 * 64, 8 * 64, 64, 1)),  # k: heads 0-3 of 8
    ("torch", 90, "float64", (1, 70, 2, 40), (1, 70, 2, 40), 40, {"return_lse": True}, None),
    ("cupy", 80, "float32", (1, 16, 2, 32), (1, 50, 1, 32), 32, {"backend": "simt", "causal": True}, None),
]


def _make(lib, shape, dtype, ptr, strides=None):
    cls = FakeTorchTensor if lib == "torch" else FakeCupyArray
    return cls(shape, dtype, strides=strides, ptr=ptr)


def walk_table_of(launch, spec, causal, bshd_q_shape) -> int:
    """The walk table a launch passed (0 unless a persistent kernel under a causal mask):
    its address is that of an upload (cupyflash._walk.device_table) of a table that
    lists every query block of the call once, over the launch's CTAs."""
    ptr = int(launch.args[0]["walk_table"])
    if not (causal and spec.persistent):
        assert ptr == 0
        return 0
    from cupyflash import _walk

    host = next(a.host for a, _ in _walk._DEVICE_TABLES.values() if a.data.ptr == ptr)
    ctas = launch.grid[0]
    b, sq, hq, _ = bshd_q_shape
    items = b * hq * -(-sq // spec.block_m)
    assert host[ctas] == items and sorted(host[ctas + 1:].tolist()) == list(range(items))
    return ptr


@pytest.mark.parametrize("problem", PROBLEMS, ids=lambda p: f"{p[0]}-sm{p[1]}-{p[2]}-{p[3]}")
def test_params_from_the_template_equal_params_from_scratch(monkeypatch, problem):
    lib, arch, dtype, qs, kvs, dv, kw, k_strides = problem
    fake = cuda_fakes.install(monkeypatch, arch=arch)
    bhsd = kw.get("layout") == "bhsd"
    vs = kvs[:3] + (dv,)
    out_shape = qs[:3] + (dv,)
    shifted = 0
    for call in range(3):  # a miss, then hits, each with other buffers
        base = BASE_PTR + call * 64 * MIB
        q = _make(lib, qs, dtype, base)
        k = _make(lib, kvs, dtype, base + 16 * MIB, k_strides)
        v = _make(lib, vs, dtype, base + 32 * MIB)
        result = cupyflash.attention(q, k, v, **kw)
        o, lse = result if kw.get("return_lse") else (result, None)
        assert o.shape == out_shape
        launch = fake.launches[-1]
        spec = next(s for s in candidate_specs() if s.name_expression == launch.name)
        causal = kw.get("causal", False)
        working_set = walk_working_set(causal, spec)
        table = walk_table_of(launch, spec, causal, q.shape if not bhsd else (qs[0], qs[2], qs[1], qs[3]))
        want = params_from_scratch(q, k, v, o, lse, causal=causal, scale=kw.get("softmax_scale"),
                                   alignment=kw.get("causal_alignment", "bottom_right"),
                                   layout="bhsd" if bhsd else "bshd", working_set=working_set,
                                   block_m_shifted=192 if spec.family == "wgmma" and spec.block_m == 192 else None,
                                   walk_table=table)
        assert launch.args[0].tobytes() == want.tobytes()
        shifted += want["q_row_shift"] != 0
    assert len(fake.launches) == 3
    # the bhsd causal d64 call (seqlen_q 100, 192-row blocks) is the one with shifted rows
    assert shifted == (3 if qs == (2, 8, 100, 64) else 0)


def test_fill_params_equals_make_params_field_by_field():
    rng = np.random.default_rng(0)
    for scale in (0.125, 1e-30, 1e300):  # 1e300 * log2(e) overflows float32: inf, as numpy assigns it
        fields = {name: int(rng.integers(-2**40, 2**40)) for name in CALL_FIELDS}
        fields.update({name: int(rng.integers(0, 2**63)) for name in CALL_FIELDS if PARAMS_DTYPE[name] == np.uint64})
        rest = dict(softmax_scale=scale, scale_log2=scale * LOG2E, batch=3, seqlen_q=-1 + 2**31, seqlen_k=0,
                    heads_q=16, heads_kv=4, group=4, head_dim=72, head_dim_v=256, causal=1, causal_offset=-2**31,
                    walk_group_pairs=2**31 - 1, q_row_shift=128, sk_items=264, sk_tiles=2**31 - 1,
                    walk_table=2**63 + 8)
        with np.errstate(over="ignore"):
            want = make_params(**fields, **rest)
            got = fill_params(params_template(**rest), *(fields[name] for name in CALL_FIELDS))
        assert got.dtype == PARAMS_DTYPE and got.tobytes() == want.tobytes()


def test_call_fields_lead_the_struct_unpadded():
    """fill_params packs CALL_FIELDS as the struct's first bytes (its hazard)."""
    offset = 0
    for name in CALL_FIELDS:
        field_dtype, field_offset = PARAMS_DTYPE.fields[name][:2]
        assert field_offset == offset, name
        offset += field_dtype.itemsize


def test_make_tma_params_equals_field_by_field():
    maps = [bytes([i]) * 128 for i in range(1, 8)]
    for present in ([0, 1, 2, 6], [0, 1, 2, 3, 4, 5], list(range(7))):
        args = [maps[i] if i in present else None for i in range(7)]
        want = np.zeros((), TMA_PARAMS_DTYPE)
        for name, desc in zip(TMA_PARAMS_FIELDS, args):
            if desc is not None:
                want[name] = np.frombuffer(desc, np.uint64)
        assert make_tma_params(*args).tobytes() == want.tobytes()
    with pytest.raises(ValueError, match="each must be 128"):
        make_tma_params(maps[0], maps[1][:64], maps[2] + maps[1][:64])


def _map_pointer(tma, name) -> int:
    return cuda_fakes.FAKE_MAP.unpack_from(tma[name].tobytes())[0]


def test_tma_maps_carry_each_calls_addresses(monkeypatch):
    fake = cuda_fakes.install(monkeypatch, arch=90)
    shape = (1, 128, 4, 64)
    bases = [BASE_PTR, BASE_PTR + 64 * MIB, BASE_PTR]  # new addresses, then the first ones again
    for base in bases:
        q, k, v, o = (FakeTorchTensor(shape, "bfloat16", ptr=base + i * MIB) for i in range(4))
        cupyflash.attention(q, k, v, out=o)
        params, tma = fake.launches[-1].args
        assert params["q"] == q.data_ptr() and params["o"] == o.data_ptr()
        for name, x in (("q", q), ("k", k), ("v", v), ("o", o)):
            assert _map_pointer(tma, name) == x.data_ptr(), name
    assert _callcache._validate_signatures.cache_info().hits == 2  # served from the cache, pointers still fresh


def test_alignment_is_judged_per_call(monkeypatch):
    """Two calls with one key, the second q 2 bytes off 16-byte alignment: its plan stages q."""
    cuda_fakes.install(monkeypatch, arch=80)
    plans = []
    monkeypatch.setattr(api, "_run", lambda plan, *args: plans.append(plan))
    shape = (1, 64, 4, 64)
    for offset in (0, 2, 0):
        q = FakeTorchTensor(shape, "float16", ptr=BASE_PTR + offset)
        cupyflash.attention(q, FakeTorchTensor(shape, "float16"), FakeTorchTensor(shape, "float16"))
    assert [set(p.staged) for p in plans] == [set(), {"q"}, set()]
    assert "aligned" in plans[1].staged["q"]
    assert plans[2] is plans[0]  # the aligned key's plan, cached


def test_numpy_inputs_run_on_the_current_device(monkeypatch):
    fake = cuda_fakes.install(monkeypatch, arch=80)
    q = np.ones((1, 16, 2, 32), np.float16)
    for device in (0, 1):
        fake.current_device = device
        out = cupyflash.attention(q, q, q)
        assert isinstance(out, np.ndarray) and out.shape == q.shape
    assert fake.entered_devices == [0, 1] and len(fake.launches) == 2  # one cache entry, two devices


@pytest.mark.parametrize("layout", ["bshd", "bhsd"])
def test_q_in_kernel_passes_the_callers_fp32_q(monkeypatch, layout):
    """KernelSpec.q_in_kernel (a candidate, here forced through dispatch): the
    pre-pass runs on k and v only (with_q=False), FlashParams carries the caller's
    float32 q with its own strides and true head dim (the kernel reads those
    columns, zeros past them), the K/V maps keep the fp16 copies' padded width, and
    Q's map is the caller's fp32 q (a stand-in: no TMA reads it)."""
    from cupyflash import _dispatch, _split
    from cupyflash._spec import wgmma_q_in_kernel_spec

    fake = cuda_fakes.install(monkeypatch, arch=90)
    spec = wgmma_q_in_kernel_spec(128)
    monkeypatch.setattr(_dispatch, "plan", lambda problem, arch, backend, pointers, sm_count, precision: (
        _dispatch.plan_for_spec(problem, spec, arch, pointers=pointers, sm_count=sm_count)))
    calls = []

    def split_operands(cupy, bufs, lay, block_m, block_n, with_lo=True, with_q=True):
        calls.append((lay, block_m, block_n, with_lo, with_q))
        shape = (1, 300, 2, 104)  # k, v copies (104: already a multiple of 8)
        hi = {n: cupy.empty(shape, np.float16) for n in ("k", "v")}
        lo = {n: cupy.empty(shape, np.float16) for n in ("k", "v")}
        return _split.SplitOperands(hi, lo, cupy.empty((10,), np.int32))

    monkeypatch.setattr(_split, "split_operands", split_operands)
    b, sq, sk, hq, hkv, d = 1, 200, 300, 4, 2, 104  # a multiple of 8: no output staging
    shape_q = (b, sq, hq, d) if layout == "bshd" else (b, hq, sq, d)
    shape_kv = (b, sk, hkv, d) if layout == "bshd" else (b, hkv, sk, d)
    q = FakeCupyArray(shape_q, "float32", ptr=BASE_PTR)
    k, v = (FakeCupyArray(shape_kv, "float32", ptr=BASE_PTR + i * MIB) for i in (1, 2))
    cupyflash.attention(q, k, v, causal=True, layout=layout)
    assert calls == [(layout, 128, 64, True, False)]
    params, tma = fake.launches[-1].args
    qs = _strides(q)[:3] if layout == "bshd" else (_strides(q)[0], _strides(q)[2], _strides(q)[1])
    assert params["q"] == BASE_PTR and params["head_dim"] == d
    assert (params["q_batch_stride"], params["q_row_stride"], params["q_head_stride"]) == qs
    assert _map_pointer(tma, "q") == BASE_PTR and _map_pointer(tma, "q_lo") == 0
    assert _map_pointer(tma, "k") != k.data.ptr  # the fp16 copy


def test_padded_head_dims_walk_the_table_explain_describes():
    """A head dim the kernel pads (100 -> 104 here) walks the table that explain()'s balance
    line is computed from: FlashParams.walk_group_pairs, which the kernel decodes the table's
    positions with, and the table itself (cupyflash._walk.causal_walk, laid out once by
    plan_for_spec) are sized from the caller's head dims, not the padded ones."""
    b, s, h, d = 2, 1024, 32, 100
    q = np.zeros((b, s, h, d), np.float16)
    plan = cupyflash.explain(q, q, q, causal=True, arch=90)
    spec = plan.spec
    assert spec.walk_table and spec.head_dim > d and any("laid out on the host" in r for r in plan.reasons)
    working_set = walk_working_set(True, spec)
    pairs = walk_group_pairs(s, d, d, 1, b * h, working_set)
    # the shape is one where the padded dims would group the pairs differently
    assert pairs != walk_group_pairs(s, spec.head_dim, spec.head_dim, 1, b * h, working_set)
    _, problem = api._validate(q, q, q, True, "bottom_right", None, "bshd")
    params = np.frombuffer(api._params_template(problem, spec.head_dim, spec.head_dim, spec, (0, 0), 0),
                           dtype=PARAMS_DTYPE)[0]
    assert params["head_dim"] == spec.head_dim and params["walk_group_pairs"] == pairs
