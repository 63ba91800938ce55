"""GPU correctness: every dtype x causal mode x head grouping x head dim x odd
sequence-length pair, checked against float64 with FlashAttention-3's rule
(fp16/bf16: at most 2x the error of the same computation done naively in that
dtype, plus half an ulp at 1.0; fp32: relative error <= 1e-5), LSE included.
Outputs are poisoned with NaN before each launch; inputs are fresh N(0, 1)."""

from __future__ import annotations

import math
import zlib

import numpy as np
import pytest

import cupyflash

from gpu_checks import check, poisoned, require_backend
from helpers import NP_DTYPES

pytestmark = pytest.mark.gpu

DTYPES = ["float16", "bfloat16", "float32"]
# Every kernel family a dtype can run on: on Hopper both tensor-core paths are
# tested (wgmma is auto's choice there, mma stays selectable).
DTYPE_BACKENDS = [("float16", "wgmma"), ("float16", "mma"), ("bfloat16", "wgmma"), ("bfloat16", "mma"),
                  ("float32", "simt"), ("float64", "mma")]
CAUSAL = [(False, "bottom_right"), (True, "bottom_right"), (True, "top_left")]
HEADS = {"mha": (4, 4), "gqa4": (8, 2), "gqa7": (14, 2), "mqa": (5, 1)}
HEAD_DIMS = [32, 64, 72, 80, 96, 100, 128, 160, 256]
SEQLENS = [(1, 1), (1, 513), (113, 203), (239, 1), (1023, 1024), (1024, 1023), (4096, 4096)]


def gpu_randn(shape, dtype, seed):
    import cupy as cp

    rs = cp.random.RandomState(seed)
    return rs.standard_normal(shape, dtype=cp.float32).astype(NP_DTYPES[dtype])


def run_case(dtype, causal, alignment, hq, hkv, d, dv, sq, sk, batch, seed, layout="bshd", backend="auto"):
    def shape(s, h, dim):
        return (batch, s, h, dim) if layout == "bshd" else (batch, h, s, dim)

    q = gpu_randn(shape(sq, hq, d), dtype, seed)
    k = gpu_randn(shape(sk, hkv, d), dtype, seed + 1)
    v = gpu_randn(shape(sk, hkv, dv), dtype, seed + 2)
    out = poisoned(shape(sq, hq, dv), dtype)
    require_backend(backend)
    res, lse = cupyflash.attention(q, k, v, causal=causal, causal_alignment=alignment, layout=layout,
                                   out=out, return_lse=True, backend=backend)
    assert res is out
    check(out, lse, q, k, v, causal=causal, alignment=alignment, dtype=dtype, layout=layout)


@pytest.mark.parametrize("sq,sk", SEQLENS, ids=[f"{a}x{b}" for a, b in SEQLENS])
@pytest.mark.parametrize("d", HEAD_DIMS)
@pytest.mark.parametrize("heads", list(HEADS), ids=list(HEADS))
@pytest.mark.parametrize("causal,alignment", CAUSAL, ids=["full", "causal_br", "causal_tl"])
@pytest.mark.parametrize("dtype,backend", DTYPE_BACKENDS, ids=[f"{a}-{b}" for a, b in DTYPE_BACKENDS])
def test_matrix(dtype, backend, causal, alignment, heads, d, sq, sk):
    hq, hkv = HEADS[heads]
    batch = 1 if sq * sk > 2**20 else 2
    if sq * sk > 2**22 and dtype == "float32" and d > 128:
        batch, hq, hkv = 1, hq // hkv, 1  # keep the exact-fp32 path's big cases short
    run_case(dtype, causal, alignment, hq, hkv, d, d, sq, sk, batch,
             seed=zlib.crc32(repr((dtype, alignment, causal, heads, d, sq, sk)).encode()) % 2**31, backend=backend)


@pytest.mark.parametrize("dtype,backend", DTYPE_BACKENDS, ids=[f"{a}-{b}" for a, b in DTYPE_BACKENDS])
@pytest.mark.parametrize("d,dv", [(1, 1), (3, 5), (128, 64), (64, 128), (40, 256), (256, 8)])
def test_head_dim_v_differs_and_tiny_dims(dtype, backend, d, dv):
    run_case(dtype, True, "bottom_right", 4, 2, d, dv, 77, 130, 2, seed=d * 1000 + dv, backend=backend)


@pytest.mark.parametrize("dtype,backend", DTYPE_BACKENDS, ids=[f"{a}-{b}" for a, b in DTYPE_BACKENDS])
@pytest.mark.parametrize("causal", [False, True])
def test_bhsd_layout(dtype, backend, causal):
    run_case(dtype, causal, "top_left", 6, 3, 64, 64, 300, 257, 2, seed=7, layout="bhsd", backend=backend)


@pytest.mark.parametrize("dtype,backend", DTYPE_BACKENDS, ids=[f"{a}-{b}" for a, b in DTYPE_BACKENDS])
def test_strided_batch_and_head_axes(dtype, backend):
    require_backend(backend)
    big_q = gpu_randn((4, 129, 12, 64), dtype, 1)
    big_k = gpu_randn((4, 200, 6, 64), dtype, 2)
    big_v = gpu_randn((4, 200, 6, 64), dtype, 3)
    q, k, v = big_q[::2, :, ::3], big_k[1::2, :, ::3], big_v[::2, :, 1::3]  # no copies
    assert not q.flags.c_contiguous
    assert not cupyflash.explain(q, k, v, backend=backend).staged  # strided, yet zero-copy
    out, lse = cupyflash.attention(q, k, v, causal=True, return_lse=True, backend=backend)
    check(out, lse, q, k, v, causal=True, alignment="bottom_right", dtype=dtype)


def test_misaligned_strides_are_staged_and_correct():
    big = gpu_randn((2, 50, 3, 72 + 4), "bfloat16", 5)
    q = big[..., :72]  # row stride 228 elements: not a multiple of 8
    plan = cupyflash.explain(q, q, q)
    assert "q" in plan.staged and "strides" in plan.staged["q"]
    out = cupyflash.attention(q, q, q)
    check(out, None, q, q, q, causal=False, alignment="bottom_right", dtype="bfloat16")


@pytest.mark.parametrize("dtype", DTYPES)
def test_fully_masked_rows_give_zero_and_neg_inf(dtype):
    import cupy as cp

    q, k, v = gpu_randn((2, 300, 4, 64), dtype, 1), gpu_randn((2, 70, 4, 64), dtype, 2), gpu_randn((2, 70, 4, 64), dtype, 3)
    out, lse = cupyflash.attention(q, k, v, causal=True, return_lse=True)
    o = out.astype(cp.float32)
    assert not bool(cp.isnan(o).any())
    assert bool((o[:, :230] == 0).all()) and bool(cp.isneginf(lse[:, :, :230]).all())
    assert bool(cp.isfinite(lse[:, :, 230:]).all())
    check(out, lse, q, k, v, causal=True, alignment="bottom_right", dtype=dtype)


@pytest.mark.parametrize("backend", ["auto", "simt"])
def test_float64(backend):
    """auto is the DMMA kernel (the matrix covers it as backend 'mma'); simt the CUDA-core one."""
    run_case("float64", True, "bottom_right", 4, 2, 64, 64, 333, 517, 2, seed=11, backend=backend)
    run_case("float64", False, "bottom_right", 2, 2, 256, 256, 64, 100, 1, seed=12, backend=backend)
    run_case("float64", True, "top_left", 3, 1, 100, 72, 129, 1000, 2, seed=13, backend=backend)


@pytest.mark.parametrize("dtype", DTYPES)
def test_zero_lengths(dtype):
    import cupy as cp

    q, k = gpu_randn((2, 0, 4, 64), dtype, 1), gpu_randn((2, 9, 4, 64), dtype, 2)
    out, lse = cupyflash.attention(q, k, k, return_lse=True)
    assert out.shape == (2, 0, 4, 64) and lse.shape == (2, 4, 0)
    q, k = gpu_randn((2, 5, 4, 64), dtype, 1), gpu_randn((2, 0, 4, 64), dtype, 2)
    out, lse = cupyflash.attention(q, k, k, return_lse=True)
    assert bool((out.astype(cp.float32) == 0).all()) and bool(cp.isneginf(lse).all())


def test_custom_scale():
    q, k, v = (gpu_randn((1, 100, 2, 64), "bfloat16", s) for s in range(3))
    out = cupyflash.attention(q, k, v, softmax_scale=0.3)
    check(out, None, q, k, v, causal=False, alignment="bottom_right", dtype="bfloat16", scale=0.3)


def test_out_validation_on_gpu_then_valid_call():
    import cupy as cp

    q = gpu_randn((1, 16, 2, 64), "float16", 0)
    with pytest.raises(cupyflash.ShapeError, match="out must have shape"):
        cupyflash.attention(q, q, q, out=cp.empty((1, 16, 2, 32), dtype=cp.float16))
    with pytest.raises(cupyflash.DTypeError, match="out must have dtype float16"):
        cupyflash.attention(q, q, q, out=cp.empty((1, 16, 2, 64), dtype=cp.float32))
    with pytest.raises(cupyflash.DeviceError, match="same device"):
        cupyflash.attention(q, q.get(), q)
    out = cupyflash.attention(q, q, q)
    check(out, None, q, q, q, causal=False, alignment="bottom_right", dtype="float16")


def test_compile_count_and_no_compile():
    from cupyflash import _compile

    q = gpu_randn((1, 16, 2, 64), "bfloat16", 0)
    cupyflash.attention(q, q, q)
    before = cupyflash.compile_count()
    with cupyflash.no_compile():
        cupyflash.attention(q, q, q)  # already loaded: fine
    assert cupyflash.compile_count() == before
    # Forget the loaded variant, as a fresh process would not have it yet.
    spec = cupyflash.explain(q, q, q).spec
    _compile._functions.pop((spec, q.device.id))
    with cupyflash.no_compile(), pytest.raises(cupyflash.CompileInTimedRegionError, match=spec.variant_name):
        cupyflash.attention(q, q, q)
    assert cupyflash.compile_count() == before
    cupyflash.attention(q, q, q)  # outside the region it loads again (from CuPy's disk cache)
    assert cupyflash.compile_count() == before + 1


def test_params_offsets_at_run_time():
    """The C struct's field offsets, read on the GPU, equal the Python mirror's."""
    import cupy as cp

    from cupyflash._compile import kernel_source
    from cupyflash._params import PARAMS_DTYPE, PARAMS_FIELDS

    body = "\n".join(f"  out[{i}] = (long long)((const char*)&p.{name} - (const char*)&p);"
                     for i, (name, _) in enumerate(PARAMS_FIELDS))
    src = kernel_source() + ("extern \"C\" __global__ void offsets(long long* out) {\n"
                             "  cupyflash::FlashParams p;\n" + body + f"\n  out[{len(PARAMS_FIELDS)}] = sizeof(p);\n}}\n")
    out = cp.zeros(len(PARAMS_FIELDS) + 1, dtype=cp.int64)
    cp.RawModule(code=src, options=("-std=c++17",)).get_function("offsets")((1,), (1,), (out,))
    want = [PARAMS_DTYPE.fields[name][1] for name, _ in PARAMS_FIELDS] + [PARAMS_DTYPE.itemsize]
    assert out.get().tolist() == want


# ------------------------------------------------------------------ array libraries
@pytest.mark.parametrize("dtype", DTYPES)
def test_numpy_roundtrip(dtype):
    import cupy as cp

    rng = np.random.default_rng(0)
    q, k, v = (rng.standard_normal((2, 77, 4, 64)).astype(NP_DTYPES[dtype]) for _ in range(3))
    out, lse = cupyflash.attention(q, k, v, causal=True, return_lse=True)
    assert isinstance(out, np.ndarray) and out.dtype == NP_DTYPES[dtype] and isinstance(lse, np.ndarray)
    check(cp.asarray(out), cp.asarray(lse), cp.asarray(q), cp.asarray(k), cp.asarray(v), causal=True,
          alignment="bottom_right", dtype=dtype)
    ref = cupyflash.reference.attention(q, k, v, causal=True)  # the public NumPy reference agrees
    tol = {"float16": 2e-3, "bfloat16": 2e-2, "float32": 1e-5}[dtype]
    np.testing.assert_allclose(out.astype(np.float64), ref, atol=tol)
    target = np.full(out.shape, np.nan, dtype=out.dtype)
    assert cupyflash.attention(q, k, v, causal=True, out=target) is target and not np.isnan(target.astype(np.float32)).any()


@pytest.mark.parametrize("dtype", DTYPES)
def test_torch_tensors(dtype):
    torch = pytest.importorskip("torch", reason="PyTorch is not installed")
    import cupy as cp

    tdt = getattr(torch, dtype)
    q = torch.randn(2, 130, 8, 64, device="cuda", dtype=tdt)
    k = torch.randn(2, 99, 2, 64, device="cuda", dtype=tdt)
    v = torch.randn(2, 99, 2, 64, device="cuda", dtype=tdt)
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):  # runs on the caller's current (side) stream
        out, lse = cupyflash.attention(q, k, v, causal=True, return_lse=True)
    side.synchronize()
    assert isinstance(out, torch.Tensor) and out.dtype == tdt and out.device == q.device
    c = [cp.from_dlpack(x) for x in (out, lse, q, k, v)]
    check(*c, causal=True, alignment="bottom_right", dtype=dtype)
    with pytest.raises(cupyflash.DeviceError, match="same device"):
        cupyflash.attention(q.cpu(), k, v)


@pytest.mark.parametrize("dtype", DTYPES)
def test_jax_arrays(dtype):
    import os

    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    jax = pytest.importorskip("jax", reason="JAX is not installed")
    import cupy as cp
    import jax.numpy as jnp

    if not any(d.platform == "gpu" for d in jax.devices()):
        pytest.skip("JAX has no GPU backend here")
    key = jax.random.PRNGKey(0)
    kq, kk, kv = jax.random.split(key, 3)
    q = jax.random.normal(kq, (2, 65, 4, 64), dtype=getattr(jnp, dtype))
    k = jax.random.normal(kk, (2, 80, 4, 64), dtype=getattr(jnp, dtype))
    v = jax.random.normal(kv, (2, 80, 4, 64), dtype=getattr(jnp, dtype))
    out = cupyflash.attention(q, k, v, causal=True)
    assert isinstance(out, jax.Array) and out.dtype == q.dtype
    c = [cp.from_dlpack(x) for x in (out, q, k, v)]
    check(c[0], None, *c[1:], causal=True, alignment="bottom_right", dtype=dtype)


def test_reference_modules_agree():
    """The CuPy float64 reference used above agrees with cupyflash.reference."""
    import cupy as cp

    from gpu_reference import attention_ref

    rng = np.random.default_rng(9)
    q, k, v = (rng.standard_normal(s) for s in ((2, 37, 6, 24), (2, 51, 2, 24), (2, 51, 2, 40)))
    want, want_lse = cupyflash.reference.attention(q, k, v, causal=True, return_lse=True)
    got, got_lse = attention_ref(cp.asarray(q), cp.asarray(k), cp.asarray(v), causal=True, offset=14,
                                 scale=1 / math.sqrt(24))
    np.testing.assert_allclose(got.get(), want, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(got_lse.get(), want_lse, rtol=1e-10)


def _run_variant(spec, q, k, v, out, lse, causal, alignment):
    """Launch one given kernel variant (not the table's choice) through the internals."""
    import cupy as cp

    from cupyflash import _dispatch, api
    from cupyflash._arrays import _cupy_buffer

    _, problem = api._validate(q, k, v, causal, alignment, None, "bshd")
    sm_count = cp.cuda.Device().attributes["MultiProcessorCount"]
    plan = _dispatch.plan_for_spec(problem, spec, 90, sm_count=sm_count)
    assert not plan.staged
    api._run(plan, problem, *map(_cupy_buffer, (q, k, v, out, lse)), cp.cuda.get_current_stream(), 0)
    return plan


def _candidate_ids():
    from cupyflash._spec import WGMMA_CANDIDATES

    return [(w, t) for w, ts in WGMMA_CANDIDATES.items() for t in ts]


def _check_variant(spec, d, causal, alignment, sq, sk, hq, hkv, batch):
    """One bf16 call of a given kernel variant on random data, checked against float64."""
    import cupy as cp

    seed = zlib.crc32(repr((spec.variant_name, causal, alignment, sq, sk)).encode()) % 2**31
    q, k, v = (gpu_randn((batch, s, h, d), "bfloat16", seed + i) for i, (s, h) in
               enumerate(((sq, hq), (sk, hkv), (sk, hkv))))
    out = poisoned((batch, sq, hq, d), "bfloat16")
    lse = cp.full((batch, hq, sq), cp.nan, dtype=cp.float32)
    _run_variant(spec, q, k, v, out, lse, causal, alignment)
    check(out, lse, q, k, v, causal=causal, alignment=alignment, dtype="bfloat16")


def _mma_candidate_ids():
    from cupyflash._spec import MMA_CANDIDATES

    return [(w, t) for w, ts in MMA_CANDIDATES.items() for t in ts]


@pytest.mark.parametrize("width,tiles", _mma_candidate_ids(), ids=lambda x: str(x).replace(" ", ""))
@pytest.mark.parametrize("causal,alignment", CAUSAL, ids=["full", "causal_br", "causal_tl"])
@pytest.mark.parametrize("sq,sk,hq,hkv,batch", [(1000, 1000, 14, 2, 2), (129, 333, 4, 1, 1), (300, 77, 2, 2, 1)],
                         ids=["many_blocks_gqa7", "odd", "sq_gt_sk"])
def test_mma_candidates(width, tiles, causal, alignment, sq, sk, hq, hkv, batch):
    """Every variant bench/tune_mma.py may pick is correct, with a head dim below
    its width (zero-filled columns) and row counts that leave partial tiles, so the
    loader's idle threads and tail pass (widths 80, 96: 10 or 12 chunks per row)
    are exercised on Q, K and V."""
    from cupyflash._spec import mma_spec

    d = width - 8  # a multiple of 8 inside the width: the last chunk column is zero-filled
    _check_variant(mma_spec("bfloat16", width, tiles), d, causal, alignment, sq, sk, hq, hkv, batch)


@pytest.mark.parametrize("width,tiles", _candidate_ids(), ids=lambda x: str(x).replace(" ", ""))
@pytest.mark.parametrize("causal,alignment", CAUSAL, ids=["full", "causal_br", "causal_tl"])
@pytest.mark.parametrize("sq,sk,hq,hkv,batch", [(1000, 1000, 14, 2, 4), (129, 333, 4, 1, 1), (300, 77, 2, 2, 1)],
                         ids=["many_blocks_gqa7", "odd", "sq_gt_sk"])
def test_wgmma_candidates(width, tiles, causal, alignment, sq, sk, hq, hkv, batch):
    """Every variant bench/tune_wgmma.py may pick (pingpong, persistent, stages) is
    correct: 'many_blocks' gives a persistent CTA several query blocks (causal: several
    folded block pairs) to walk; 'odd' and 'sq_gt_sk' have an odd number of query
    blocks, so a causal fold has a middle block without a partner."""
    from cupyflash._spec import wgmma_spec

    require_backend("wgmma")
    d = {64: 40, 128: 104, 192: 160, 256: 256}[width]  # multiples of 8 inside the width
    _check_variant(wgmma_spec("bfloat16", width, tiles), d, causal, alignment, sq, sk, hq, hkv, batch)


@pytest.mark.parametrize("causal,alignment", CAUSAL, ids=["full", "causal_br", "causal_tl"])
def test_idle_warpgroups_between_items(causal, alignment):
    """The 192-row persistent variant at a length 192 does not divide (1000: the
    last block has 40 valid rows, two of its three warpgroups own none and skip
    the item), with 8 key tiles per item and 1536 items, so that persistent CTAs
    meet skipped items before and between computed ones: a skipping warpgroup
    must hand the previous item's Q buffer back before the producer's next Q
    load, or the CTA deadlocks (bench/notes/wgmma.md, "Idle warpgroups")."""
    from cupyflash._spec import wgmma_spec

    require_backend("wgmma")
    _check_variant(wgmma_spec("bfloat16", 64, (192, 128, 2, False, True)), 40, causal, alignment, 1000, 1000,
                   64, 8, 4)


SHIFTED_ROWS = [(1024, 1024, "bottom_right", 128), (2048, 2048, "bottom_right", 64),
                (1000, 600, "bottom_right", 128), (577, 2000, "top_left", 128), (700, 900, "bottom_right", 64),
                (4096, 4096, "bottom_right", 128)]  # the last: one CTA per query block (WGMMA_LONG_TILES)


@pytest.mark.parametrize("sq,sk,alignment,shift", SHIFTED_ROWS, ids=[f"{a}x{b}-{c}" for a, b, c, _ in SHIFTED_ROWS])
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("d", [40, 64])
def test_padding_rows_before_the_first_block(sq, sk, alignment, shift, dtype, d):
    """Under a causal mask the 192-row tiles start their first query block before row 0
    (FlashParams.q_row_shift): TMA loads the rows before 0 as zeros and skips them on
    store, a warpgroup whose rows all lie there skips the item, and with seqlen_q >
    seqlen_k (bottom-right) the first block attends no key, so the register epilogue
    writes its zeros and LSE -inf and must not touch the rows before 0."""
    from cupyflash._params import q_row_shift

    require_backend("wgmma")
    batch = 1 if sq * sk > 2**22 else 2
    q, k, v = (gpu_randn((batch, s, h, d), dtype, 91 + i) for i, (s, h) in enumerate(((sq, 4), (sk, 2), (sk, 2))))
    plan = cupyflash.explain(q, k, v, causal=True, causal_alignment=alignment)
    assert q_row_shift(True, sq, plan.spec) == shift  # the case exercises the shift it names
    assert f"starts {shift} rows before row 0" in str(plan)
    out = poisoned((batch, sq, 4, d), dtype)
    res, lse = cupyflash.attention(q, k, v, causal=True, causal_alignment=alignment, out=out, return_lse=True)
    assert res is out
    check(out, lse, q, k, v, causal=True, alignment=alignment, dtype=dtype)


SPLIT_SEQLENS = [(1, 1), (1, 513), (113, 203), (239, 1), (1023, 1024), (4096, 4096)]


@pytest.mark.parametrize("sq,sk", SPLIT_SEQLENS, ids=[f"{a}x{b}" for a, b in SPLIT_SEQLENS])
@pytest.mark.parametrize("d,dv", [(8, 8), (40, 40), (64, 64), (100, 100), (128, 128), (64, 100)])
@pytest.mark.parametrize("causal,alignment", CAUSAL, ids=["full", "causal_br", "causal_tl"])
def test_float32_split_on_wgmma(causal, alignment, d, dv, sq, sk):
    """fp32 on the tensor cores (fp16 hi + lo, three products) meets the fp32 bound, 1e-5."""
    batch, hq, hkv = (1, 7, 1) if sq * sk > 2**20 else (2, 4, 2)
    run_case("float32", causal, alignment, hq, hkv, d, dv, sq, sk, batch,
             seed=zlib.crc32(repr(("split", causal, alignment, d, dv, sq, sk)).encode()) % 2**31, backend="wgmma")


@pytest.mark.parametrize("layout", ["bshd", "bhsd"])
def test_float32_split_rescales_any_magnitude(layout):
    """Operands far outside fp16's range: the device-side power-of-two rescaling keeps them exact-ish."""
    import cupy as cp

    require_backend("wgmma")
    shape = (2, 300, 4, 64) if layout == "bshd" else (2, 4, 300, 64)
    q = gpu_randn(shape, "float32", 11) * cp.float32(3e5)
    k = gpu_randn(shape, "float32", 12) * cp.float32(2e-6)
    v = gpu_randn(shape, "float32", 13) * cp.float32(7e8)
    out = poisoned(shape, "float32")
    res, lse = cupyflash.attention(q, k, v, causal=True, layout=layout, out=out, return_lse=True, backend="wgmma")
    assert res is out
    check(out, lse, q, k, v, causal=True, alignment="bottom_right", dtype="float32", layout=layout)


@pytest.mark.parametrize("backend", ["wgmma", "mma"])
def test_broadcast_and_reversed_axes(backend):
    """A broadcast batch axis (stride 0) and a reversed head axis are computed
    correctly: staged for TMA, read in place by cp.async."""
    import cupy as cp

    require_backend(backend)
    q = gpu_randn((3, 150, 4, 64), "bfloat16", 21)
    k = cp.broadcast_to(gpu_randn((1, 222, 2, 64), "bfloat16", 22), (3, 222, 2, 64))
    v = gpu_randn((3, 222, 2, 64), "bfloat16", 23)[:, :, ::-1]
    out, lse = cupyflash.attention(q, k, v, causal=True, return_lse=True, backend=backend)
    check(out, lse, q, k, v, causal=True, alignment="bottom_right", dtype="bfloat16")


FAST_FP32_BOUND = 2e-3  # one fp16 pass: ~4e-4 in the CPU study (bench/split_precision_study.py)


@pytest.mark.parametrize("d", [40, 64, 128, 200, 256])
@pytest.mark.parametrize("causal,alignment", CAUSAL, ids=["full", "causal_br", "causal_tl"])
@pytest.mark.parametrize("sq,sk", [(1, 513), (113, 203), (1023, 1024), (4096, 4096)], ids=lambda x: str(x))
def test_float32_precision_fast(causal, alignment, d, sq, sk):
    """precision='fast': one rescaled fp16 pass, relative error around TF32's."""
    import cupy as cp

    from gpu_reference import attention_ref

    require_backend("wgmma")
    batch, hq, hkv = (1, 4, 1) if sq * sk > 2**20 else (2, 4, 2)
    seed = zlib.crc32(repr(("fast", causal, alignment, d, sq, sk)).encode()) % 2**31
    q, k, v = (gpu_randn((batch, s, h, d), "float32", seed + i) * cp.float32(scale) for i, (s, h, scale) in
               enumerate(((sq, hq, 40.0), (sk, hkv, 1e-3), (sk, hkv, 1e5))))  # far outside fp16's range
    out = poisoned((batch, sq, hq, d), "float32")
    res, lse = cupyflash.attention(q, k, v, causal=causal, causal_alignment=alignment, out=out, return_lse=True,
                                   precision="fast")
    offset = sk - sq if alignment == "bottom_right" else 0
    ref, ref_lse = attention_ref(q, k, v, causal=causal, offset=offset, scale=1 / math.sqrt(d))
    assert not cp.isnan(res).any()
    rel = float(cp.linalg.norm(res.astype(cp.float64) - ref) / max(float(cp.linalg.norm(ref)), 1e-300))
    assert rel <= FAST_FP32_BOUND, rel
    fin = cp.isfinite(ref_lse)
    assert bool((cp.isneginf(lse) == cp.isneginf(ref_lse)).all())
    assert float(cp.abs(lse[fin] - ref_lse[fin]).max()) <= 1e-2 * (1 + float(cp.abs(ref_lse[fin]).max()))


@pytest.mark.parametrize("dtype,backend", [("bfloat16", "mma"), ("bfloat16", "wgmma"), ("float32", "wgmma")])
def test_out_view_with_odd_strides(dtype, backend):
    """out= may be any view with a contiguous last axis: one whose strides do not
    fit the kernel's vector stores is written through a staging buffer."""
    import cupy as cp

    require_backend(backend)
    q, k, v = (gpu_randn((2, 90, 3, 64), dtype, 31 + i) for i in range(3))
    big = poisoned((2, 90, 3, 65), dtype)
    out = big[..., :64]  # row stride 195 elements: odd
    res = cupyflash.attention(q, k, v, causal=True, out=out, backend=backend)
    assert res is out and bool(cp.isnan(big[..., 64]).all())  # nothing written outside the view
    check(out, None, q, k, v, causal=True, alignment="bottom_right", dtype=dtype)


@pytest.mark.parametrize("dtype,backend", [("float16", "auto"), ("bfloat16", "auto"), ("bfloat16", "mma"),
                                           ("float32", "auto")])
@pytest.mark.parametrize("d", [64, 128, 256])
@pytest.mark.parametrize("causal", [False, True])
def test_running_max_raised_by_a_later_key_tile(dtype, backend, d, causal):
    """Key tiles run from the last to the first, and with a lazy running max (softmax.h,
    kLazyMaxLog2) a row's max moves only when a tile's max exceeds it by more than 8
    doublings. N(0, 1) inputs never do that after the first tile, so here keys 256-511
    score about 2.5x and keys 0-255 about 12x the rest: the middle keys enter with P up to
    ~2^6.5 under an unmoved max, and the first keys raise every row's max (and rescale O)
    on a late tile."""
    import cupy as cp

    require_backend(backend)
    q, k, v = (gpu_randn((1, s, 2, d), dtype, 71 + i) for i, s in enumerate((300, 1000, 1000)))
    gain = cp.ones((1, 1000, 1, 1), dtype=cp.float32)
    gain[:, :256], gain[:, 256:512] = 12.0, 2.5
    k = (k.astype(cp.float32) * gain).astype(k.dtype)
    out = poisoned((1, 300, 2, d), dtype)
    res, lse = cupyflash.attention(q, k, v, causal=causal, out=out, return_lse=True, backend=backend)
    assert res is out
    check(out, lse, q, k, v, causal=causal, alignment="bottom_right", dtype=dtype)
