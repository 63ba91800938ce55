"""The bench's float64 check of every timed output (cupyflash/bench/accuracy.py,
reference_rows.py): the query-row subset, the reference on it (NumPy here, the
same code as torch runs on the GPU), the tolerance rule and its agreement with
the GPU tests' rule. The GPU section at the end needs torch and a CUDA GPU and
skips, with the reason, without them."""

from __future__ import annotations

import ast
import importlib.util
import inspect
import math

import ml_dtypes
import numpy as np
import pytest

import cupyflash.reference
from bench_fakes import TINY, FakePeer, off_by, right, tiny_inputs
from cupyflash.bench import accuracy, reference_rows, report, runner, shapes
from cupyflash.bench.reference_rows import attention_rows, query_rows
from cupyflash.bench.results import ERROR, MAX_ABS, REL_L2, failing_rows

# ------------------------------------------------------------- query rows


@pytest.mark.parametrize("seqlen_q", [1, 2, 127, 128, 129, 130, 255, 256, 1000, 1023, 4096, 16384])
@pytest.mark.parametrize("max_rows", [2, 3, 128])
def test_query_rows_spread_first_and_last(seqlen_q, max_rows):
    rows = query_rows(seqlen_q, max_rows)
    assert len(rows) == min(seqlen_q, max_rows)
    assert rows[0] == 0 and rows[-1] == seqlen_q - 1
    assert all(a < b for a, b in zip(rows, rows[1:]))  # distinct, increasing
    if len(rows) > 1:
        gaps = np.diff(rows)
        ideal = (seqlen_q - 1) / (len(rows) - 1)
        assert gaps.max() <= math.ceil(ideal) and gaps.min() >= math.floor(ideal)  # even spread


def test_query_rows_is_deterministic_and_validated():
    assert query_rows(16384) == query_rows(16384)
    assert len(query_rows(16384)) == reference_rows.DEFAULT_ROWS == 128
    assert query_rows(0) == ()
    with pytest.raises(ValueError, match="max_rows=1 must be >= 2"):
        query_rows(10, 1)
    with pytest.raises(ValueError, match="seqlen_q=-1"):
        query_rows(-1)


# -------------------------------------------------------------- reference

# (batch, seqlen_q, seqlen_k, heads_q, heads_kv, head_dim, head_dim_v, causal):
# MHA, GQA 7:1, MQA, head_dim_v != head_dim, causal with seqlen_q < seqlen_k,
# and seqlen_q > seqlen_k, whose first rows see no key at all.
SHAPES = [(2, 37, 37, 4, 4, 16, 16, False), (1, 113, 203, 14, 2, 24, 40, True),
          (2, 1, 77, 5, 1, 8, 8, True), (1, 90, 31, 6, 3, 16, 8, True),
          (3, 64, 64, 2, 1, 32, 16, True)]


def make_qkv(shape, dtype=np.float64, seed=0):
    b, sq, sk, hq, hkv, d, dv, _ = shape
    rng = np.random.default_rng(seed)
    return tuple(rng.standard_normal(s).astype(dtype)
                 for s in ((b, sq, hq, d), (b, sk, hkv, d), (b, sk, hkv, dv)))


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("max_rows", [2, 10, 128])
@pytest.mark.parametrize("chunk_elements", [1, 200, reference_rows.CHUNK_ELEMENTS])
def test_rows_match_the_full_numpy_reference(shape, max_rows, chunk_elements):
    q, k, v = make_qkv(shape)
    causal = shape[-1]
    full = cupyflash.reference.attention(q, k, v, causal=causal)
    rows = query_rows(q.shape[1], max_rows)
    got = attention_rows(q, k, v, rows, causal=causal, chunk_elements=chunk_elements)
    assert got.shape == (q.shape[0], len(rows), q.shape[2], v.shape[3]) and got.dtype == np.float64
    np.testing.assert_allclose(got, full[:, list(rows)], rtol=1e-12, atol=1e-14)
    if shape[1] > shape[2] and causal:
        assert not np.isnan(got).any() and (got[:, 0] == 0).all()  # sees no key: 0, as cupyflash


def naive_fp32(q, k, v, causal, dtype):
    """tests/gpu_reference.py's naive computation, in NumPy: fp32 arithmetic,
    scores, probabilities and output rounded to ``dtype``."""
    def rnd(x):
        return x.astype(dtype).astype(np.float32)

    q, k, v = (x.astype(np.float32) for x in (q, k, v))
    group = q.shape[2] // k.shape[2]
    k, v = np.repeat(k, group, axis=2), np.repeat(v, group, axis=2)
    s = rnd(np.einsum("bqhd,bkhd->bhqk", q, k)) * np.float32(1 / math.sqrt(q.shape[3]))
    if causal:
        sq, sk = q.shape[1], k.shape[1]
        s = np.where(np.arange(sk)[None] <= np.arange(sq)[:, None] + sk - sq, s, -np.inf)
    p = np.exp(s - s.max(axis=3, keepdims=True))
    p = rnd(p / p.sum(axis=3, keepdims=True))
    return rnd(np.einsum("bhqk,bkhd->bqhd", p, v))


@pytest.mark.parametrize("dtype", [np.float16, ml_dtypes.bfloat16], ids=["fp16", "bf16"])
@pytest.mark.parametrize("shape", SHAPES[:3], ids=str)
def test_naive_rows_are_the_tests_naive_computation(shape, dtype):
    """Rounded in float64 instead of computed in fp32: the yardstick (its error
    against float64) is the same to a few percent."""
    q, k, v = make_qkv(shape, dtype, seed=3)
    causal = shape[-1]
    rows = query_rows(q.shape[1], 10)
    ref = attention_rows(q, k, v, rows, causal=causal)
    naive = attention_rows(q, k, v, rows, causal=causal, round_to=q.dtype)
    ours = reference_rows.max_abs_error(naive, ref)
    tests = reference_rows.max_abs_error(naive_fp32(q, k, v, causal, dtype)[:, list(rows)], ref)
    assert ours > 0 and tests > 0
    assert 0.7 <= ours / tests <= 1.3, (ours, tests)
    exact = attention_rows(q, k, v, rows, causal=causal, round_to=np.float64)
    np.testing.assert_array_equal(exact, ref)  # rounding to float64 changes nothing


def test_error_measures():
    ref = np.array([[3.0, 4.0]])
    assert reference_rows.max_abs_error(np.array([[3.0, 4.5]], dtype=np.float16), ref) == 0.5
    assert reference_rows.rel_l2_error(np.array([[3.0, 4.5]]), ref) == pytest.approx(0.1)
    assert math.isnan(reference_rows.max_abs_error(np.array([[np.nan, 4.0]]), ref))
    assert math.isnan(reference_rows.rel_l2_error(np.array([[np.nan, 4.0]]), ref))


def test_reference_rejects_other_arrays():
    with pytest.raises(TypeError, match="NumPy arrays or torch tensors, not builtins.list"):
        attention_rows([[[[1.0]]]], None, None, [0], causal=False)


# --------------------------------------------------------- tolerance rule

def test_tolerance_rule():
    assert accuracy.tolerance("bf16", naive_error=1e-2) == (MAX_ABS, 2 * 1e-2 + 2.0 ** -8)
    assert accuracy.tolerance("fp16", naive_error=0.0) == (MAX_ABS, 2.0 ** -11)
    assert accuracy.tolerance("fp32") == (REL_L2, 1e-5)
    assert accuracy.tolerance("fp32", "fast") == (REL_L2, 2e-3)
    assert accuracy.tolerance("fp64") == (REL_L2, 1e-12)
    with pytest.raises(ValueError, match="needs the naive bf16"):
        accuracy.tolerance("bf16")
    with pytest.raises(ValueError, match="precision='medium'"):
        accuracy.tolerance("fp32", "medium")
    with pytest.raises(ValueError, match="no tolerance for dtype 'fp8'"):
        accuracy.tolerance("fp8")


def test_constants_mirror_the_gpu_tests():
    """accuracy.py mirrors tests/gpu_checks.py's check() (the package
    cannot import tests/): this fails when one side changes alone."""
    pytest.importorskip("cupy", reason="tests/gpu_reference.py imports CuPy, not installed")
    import gpu_checks
    import gpu_reference
    import test_gpu_attention

    assert accuracy.FAST_FP32_BOUND == test_gpu_attention.FAST_FP32_BOUND
    for ours, theirs in (("fp16", "float16"), ("bf16", "bfloat16")):
        assert accuracy.EPS[ours] == gpu_reference.EPS[theirs]
    src = inspect.getsource(gpu_checks.check)
    assert "err <= 2 * naive_err + EPS[dtype] / 2" in src and accuracy.NAIVE_FACTOR == 2
    assert all(accuracy.ABS_FLOOR[d] == accuracy.EPS[d] / 2 for d in accuracy.EPS)
    literals = {node.value for node in ast.walk(ast.parse(src))
                if isinstance(node, ast.Constant) and isinstance(node.value, float)}
    assert accuracy.REL_BOUND["fp32"] in literals and accuracy.REL_BOUND["fp64"] in literals


# ------------------------------------------------------------ OutputCheck

def check_for(dtype, np_dtype, seed=5):
    cfg = shapes.AttnConfig("t", 2, 150, 170, 6, 2, 32, 16, True, dtype)
    q, k, v = make_qkv((2, 150, 170, 6, 2, 32, 16, True), np_dtype, seed)
    full = cupyflash.reference.attention(q, k, v, causal=True)
    return accuracy.OutputCheck(cfg, q, k, v, max_rows=20), full


@pytest.mark.parametrize("dtype,np_dtype", [("fp16", np.float16), ("bf16", ml_dtypes.bfloat16)])
def test_half_output_rounded_from_float64_passes_and_a_wrong_one_fails(dtype, np_dtype):
    check, full = check_for(dtype, np_dtype)
    good = check.judge(check.sample(full.astype(np_dtype)))
    assert good.passed and good.metric == MAX_ABS and good.rows == 20
    assert good.naive_error > 0 and good.bound == 2 * good.naive_error + accuracy.ABS_FLOOR[dtype]
    assert good.error <= good.naive_error  # one rounding, vs the naive's three
    bad = full.copy()
    bad[1, check.rows[7], 4, 3] += 3 * good.bound  # one element of one checked row
    wrong = check.judge(check.sample(bad.astype(np_dtype)))
    assert not wrong.passed and wrong.summary().startswith("max abs err")
    unchecked = full.copy()
    unchecked[0, check.rows[7] + 1] += 1.0  # a row between the checked ones: not seen
    assert check.judge(check.sample(unchecked.astype(np_dtype))).passed


def test_fp32_modes_have_their_own_bounds():
    check, full = check_for("fp32", np.float32)
    exact = check.judge(check.sample(full.astype(np.float32)))
    assert exact.passed and exact.metric == REL_L2 and exact.error < 1e-6 and exact.naive_error is None
    rng = np.random.default_rng(0)
    tf32_like = full * (1 + 4e-4 * rng.standard_normal(full.shape))  # ~ precision="fast"'s error
    assert not check.judge(check.sample(tf32_like)).passed
    fast = check.judge(check.sample(tf32_like), "fast")
    assert fast.passed and fast.bound == accuracy.FAST_FP32_BOUND


def test_fp64_bound():
    check, full = check_for("fp64", np.float64)
    assert check.judge(check.sample(full)).error < 1e-14
    assert not check.judge(check.sample(full * (1 + 1e-11))).passed


def test_sample_checks_the_shape():
    check, full = check_for("fp32", np.float32)
    with pytest.raises(accuracy.WrongOutput, match=r"output shape \(2, 150, 6, 32\), expected \(2, 150, 6, 16\)"):
        check.sample(np.zeros((2, 150, 6, 32)))


def test_reference_is_computed_once(monkeypatch):
    check, full = check_for("bf16", ml_dtypes.bfloat16)
    calls = []
    real = accuracy.attention_rows
    monkeypatch.setattr(accuracy, "attention_rows", lambda *a, **kw: calls.append(1) or real(*a, **kw))
    for _ in range(3):
        check.judge(check.sample(full))
    assert len(calls) == 2  # float64 and the naive bf16, once for every implementation


def test_bench_configs_keep_the_reference_small():
    """Every bench row's score block is chunked and its K/V upcast one batch
    entry at a time: the float64 reference stays at a few GB at most."""
    for name in shapes.SETS:
        for cfg in shapes.get_set(name):
            kv_entry = cfg.seqlen_k * cfg.heads_kv * (cfg.head_dim + cfg.head_dim_v) * 8
            assert kv_entry <= 2 * 1024**3, cfg.name


# ------------------------------------------------ runner, with fake torch

def test_runner_wrong_cupyflash_fails_min_ratio(fake_torch, monkeypatch):
    """A NaN in cupyflash's output: an error cell, no ratio, --min-ratio fails."""
    clock, _ = fake_torch
    monkeypatch.setattr(runner, "make_inputs", tiny_inputs)
    monkeypatch.setattr(runner, "compile_counter", lambda: None)
    nan_out = lambda *a: off_by(right(*a), np.nan)  # noqa: E731
    peers = [FakePeer("cupyflash", ms=1.0, output=nan_out), FakePeer("torch-flash", ms=4.0, output=right)]
    for p in peers:
        p.clock = clock
    (row,) = runner.run([TINY], peers, repeats=3, warmup=1)
    ours = row.impls["cupyflash"]
    assert ours.status == ERROR and "wrong result: max abs err nan" in ours.reason
    (fail,) = failing_rows([row], 0.1)
    assert "cupyflash has no result (WRONG: err nan" in fail[1]
    assert "WRONG: err nan" in report.table([row])


# ------------------------------------------------------------------- GPU

def _torch_cuda():
    if importlib.util.find_spec("torch") is None:
        pytest.skip("torch is not installed: the bench's GPU reference runs on torch")
    import torch

    if not torch.cuda.is_available():
        pytest.skip("torch sees no CUDA GPU")
    return torch


@pytest.mark.gpu
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_torch_rows_match_numpy_rows(shape):
    torch = _torch_cuda()
    q, k, v = make_qkv(shape, seed=1)
    causal = shape[-1]
    rows = query_rows(q.shape[1], 10)
    want = attention_rows(q, k, v, rows, causal=causal)
    got = attention_rows(*(torch.from_numpy(x).cuda() for x in (q, k, v)), rows, causal=causal,
                         chunk_elements=500)
    assert got.is_cuda and got.dtype == torch.float64
    np.testing.assert_allclose(got.cpu().numpy(), want, rtol=1e-12, atol=1e-14)
    tq, tk, tv = (torch.from_numpy(x).cuda().to(torch.bfloat16) for x in (q, k, v))
    naive = attention_rows(tq, tk, tv, rows, causal=causal, round_to=torch.bfloat16)
    np_naive = attention_rows(*(x.astype(ml_dtypes.bfloat16) for x in (q, k, v)), rows, causal=causal,
                              round_to=ml_dtypes.bfloat16)
    np.testing.assert_allclose(naive.cpu().numpy(), np_naive, atol=2.0 ** -7)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", ["bf16", "fp32"])
def test_bench_checks_every_peer_on_the_gpu(dtype):
    """The whole path on real peers: every output that ran passes its bound
    (each peer's bshd() gives the right layout), and a wrong one is an error."""
    _torch_cuda()
    from cupyflash.bench import runner
    from cupyflash.bench.peers import CupyflashPeer, select_peers
    from cupyflash.bench.results import ERROR, OK

    class Wrong(CupyflashPeer):
        def prepare(self, cfg, q, k, v):
            call = super().prepare(cfg, q, k, v)
            return lambda: call() * 1.1  # 10% off: beyond every bound

    cfg = shapes.AttnConfig("t", 2, 300, 300, 8, 2, 64, 64, True, dtype)
    peers = [*select_peers(None, fp32_modes=dtype == "fp32"), Wrong(name="cupyflash-wrong")]
    (row,) = runner.run([cfg], peers, repeats=2, warmup=1, target_ms=1.0)
    # jax-xla computes float32 in TF32 by default (measured on an H100:
    # 3.6e-4 relative): it fails the fp32 bound, and the bench says so.
    tf32_by_default = {"jax-xla"} if dtype == "fp32" else set()
    for name, r in row.impls.items():
        if name == "cupyflash-wrong":
            assert r.status == ERROR and r.reason.startswith("wrong result:"), r
        elif r.status == OK:
            assert r.accuracy.passed and r.accuracy.rows == 128, (name, r.accuracy)
        elif name not in tf32_by_default:
            assert "wrong result" not in r.reason, (name, r.reason)
    assert row.impls["cupyflash"].status == OK, row.impls["cupyflash"]
    print({n: (r.status, r.accuracy and r.accuracy.summary(), r.reason) for n, r in row.impls.items()})

