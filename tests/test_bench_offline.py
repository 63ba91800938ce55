"""GPU-free tests of the benchmark instrument (cupyflash.bench).

They need numpy, pytest and tabulate; the PNG test also needs matplotlib.
torch and jax are not needed: the timing and runner tests use a fake torch
module with a fake clock, so their numbers are exact.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import io
import json
import re
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from bench_fakes import TINY, FakePeer, off_by, right, timed_call, tiny_inputs
from cupyflash.bench import cli, flops, report, runner, shapes, timing
from cupyflash.bench.peers import (
    MAX_SCORE_BYTES,
    CupyflashPeer,
    JaxPeer,
    PeerRejected,
    _check_score_matrix,
    _check_top_left_causal,
    select_peers,
)
from cupyflash.bench.results import (
    ERROR,
    MAX_ABS,
    NOT_INSTALLED,
    OK,
    REJECTED,
    Accuracy,
    ImplResult,
    RowResult,
    Timing,
    failing_rows,
)

REPO = Path(__file__).resolve().parents[1]

# (seqlen_q, seqlen_k): equal, longer/shorter queries, single rows and columns.
SEQ_PAIRS = [(1, 1), (1, 513), (239, 1), (7, 7), (113, 203), (203, 113),
             (1023, 1024), (1024, 1023), (64, 4096), (4096, 64), (0, 5), (5, 0)]


# --------------------------------------------------------------------- flops

def brute_pairs(seqlen_q, seqlen_k, causal):
    """Count the mask directly: query i sees key j iff j <= i + sk - sq."""
    if not causal:
        return seqlen_q * seqlen_k
    i = np.arange(seqlen_q)[:, None]
    j = np.arange(seqlen_k)[None, :]
    return int(np.count_nonzero(j <= i + seqlen_k - seqlen_q))


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("sq,sk", SEQ_PAIRS)
def test_attended_pairs_matches_mask_count(sq, sk, causal):
    assert flops.attended_pairs(sq, sk, causal) == brute_pairs(sq, sk, causal)


@pytest.mark.parametrize("sq,sk", SEQ_PAIRS)
def test_attended_pairs_matches_row_loop(sq, sk):
    rows = [min(max(i + sk - sq + 1, 0), sk) for i in range(sq)]
    assert flops.attended_pairs(sq, sk, True) == sum(rows)


def test_causal_square_is_half_plus_diagonal():
    s = 4096
    assert flops.mean_attended_length(s, s, True) == (s + 1) / 2
    assert flops.mean_attended_length(1, 131072, True) == 131072
    # Long queries on short keys: most rows see nothing, not "half".
    assert flops.attended_pairs(4096, 64, True) == 64 * 65 // 2


def test_attention_flops_papers_convention():
    b, h, s, d = 4, 16, 4096, 128
    assert flops.attention_flops(b, h, s, s, d, d, False) == 4 * b * h * s * s * d
    assert flops.attention_flops(b, h, s, s, d, d, True) == 4 * b * h * d * s * (s + 1) // 2
    # head_dim_v counts separately from head_dim.
    assert flops.attention_flops(1, 1, 2, 3, 64, 32, False) == 2 * (64 + 32) * 6


def test_attended_pairs_rejects_negative_lengths():
    with pytest.raises(ValueError, match="negative sequence length"):
        flops.attended_pairs(-1, 4, True)


def test_decode_bytes_and_units():
    cfg = shapes.decode()[0]
    assert cfg.metric == "GB/s" and cfg.seqlen_q == 1
    expected = 8 * 4096 * 8 * (128 + 128) * 2
    assert flops.config_kv_bytes(cfg) == expected
    assert flops.throughput(cfg, 1e-3) == pytest.approx(expected / 1e-3 / 1e9)
    pre = shapes.standard()[0]
    assert flops.throughput(pre, 2.0) == pytest.approx(flops.config_flops(pre) / 2e12)
    with pytest.raises(ValueError, match="positive"):
        flops.throughput(pre, 0.0)


# -------------------------------------------------------------------- shapes

def test_standard_grid():
    rows = shapes.standard()
    assert len(rows) == 3 * 6 * 2 * 2 == 72
    assert {r.head_dim for r in rows} == {64, 128, 256}
    assert {r.seqlen_q for r in rows} == {512, 1024, 2048, 4096, 8192, 16384}
    assert {r.causal for r in rows} == {False, True}
    assert {r.dtype for r in rows} == {"fp16", "bf16"}
    for r in rows:
        assert r.batch * r.seqlen_q == 16384, r.name
        assert r.heads_q * r.head_dim == 2048, r.name
        assert r.seqlen_q == r.seqlen_k and r.heads_q == r.heads_kv


def test_gqa_set():
    rows = shapes.gqa()
    assert len(rows) == 6
    assert sorted({r.heads_kv for r in rows}) == [1, 4, 8]
    for r in rows:
        assert (r.heads_q, r.head_dim, r.seqlen_q, r.batch, r.dtype) == (32, 128, 8192, 2, "bf16")


def test_fp32_set():
    rows = shapes.fp32(["bf16"])  # --dtype does not turn fp32 into something else
    assert len(rows) == 2 * 5 * 2
    assert {r.dtype for r in rows} == {"fp32"}
    assert {r.head_dim for r in rows} == {64, 128}
    assert {r.seqlen_q for r in rows} == {1024, 2048, 4096, 8192, 16384}
    assert all(r.batch * r.seqlen_q == 16384 and r.heads_q * r.head_dim == 2048 for r in rows)


def test_decode_set():
    rows = shapes.decode()
    assert [r.seqlen_k for r in rows] == [4096, 16384, 32768, 131072]
    for r in rows:
        assert (r.seqlen_q, r.heads_q, r.heads_kv, r.head_dim, r.batch) == (1, 32, 8, 128, 8)
        assert r.kind == shapes.DECODE


def test_odd_set_is_near_the_grid():
    rows = shapes.odd()
    assert len(rows) == 3 * 2 * 2
    assert {r.head_dim for r in rows} == {80, 96, 100}
    assert {r.seqlen_q for r in rows} == {1000, 3000}
    for r in rows:
        assert abs(r.batch * r.seqlen_q - 16384) / 16384 < 0.1, r.name
        assert abs(r.heads_q * r.head_dim - 2048) / 2048 < 0.1, r.name


def test_quick_set_is_small_and_mixed():
    rows = shapes.quick()
    assert 6 <= len(rows) <= 10
    assert {r.kind for r in rows} == {shapes.PREFILL, shapes.DECODE}
    assert any(r.heads_q != r.heads_kv for r in rows)
    assert {r.causal for r in rows} == {False, True}


@pytest.mark.parametrize("name", sorted(shapes.SETS))
def test_names_unique_within_set(name):
    rows = shapes.get_set(name)
    assert len({r.name for r in rows}) == len(rows)


def test_config_is_frozen_and_validated():
    cfg = shapes.standard()[0]
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.batch = 2
    assert cfg.name == "b32_s512_h32_d64_full_fp16"
    with pytest.raises(ValueError, match="dtype='fp8'"):
        dataclasses.replace(cfg, dtype="fp8")
    with pytest.raises(ValueError, match="heads_q=32 is not a multiple of heads_kv=5"):
        dataclasses.replace(cfg, heads_kv=5)


def test_get_set_dtype_filter_and_errors():
    assert len(shapes.get_set("standard", ["bf16"])) == 36
    with pytest.raises(ValueError, match="unknown shape set 'nope'"):
        shapes.get_set("nope")
    with pytest.raises(ValueError, match="unknown dtype"):
        shapes.get_set("standard", ["bf17"])


# --------------------------------------------------------------------- peers

def test_torch_and_jax_causal_alignment_is_rejected_when_lengths_differ():
    square, decode = shapes.standard()[1], shapes.decode()[0]
    _check_top_left_causal(dataclasses.replace(square, causal=True), "x")
    _check_top_left_causal(decode, "x")  # not causal: fine
    with pytest.raises(PeerRejected, match="top-left"):
        _check_top_left_causal(dataclasses.replace(decode, causal=True), "x")


def test_score_matrix_limit():
    small = shapes.get_set("standard")[0]  # 32 x 32 x 512^2 fp32 = 1 GB
    assert small.score_elements() * 4 <= MAX_SCORE_BYTES
    _check_score_matrix(small, "math")
    big = [r for r in shapes.standard() if r.seqlen_q == 16384][0]
    with pytest.raises(PeerRejected, match="score matrix"):
        _check_score_matrix(big, "math")


def test_select_peers():
    names = [p.name for p in select_peers(["torch-flash"])]
    assert names == ["cupyflash", "torch-flash"]
    assert len(select_peers(None)) == 7
    with pytest.raises(ValueError, match="unknown peer"):
        select_peers(["torch-flush"])


@pytest.mark.skipif(importlib.util.find_spec("torch") is not None,
                    reason="torch is installed here: availability depends on the GPU")
def test_peers_without_torch_say_why():
    for peer in (CupyflashPeer(), JaxPeer("jax-cudnn", "cudnn")):
        ok, why = peer.available()
        assert not ok and "torch not installed" in why


# ---------------------------------------------------- timing, with fake torch

def test_measure_median_inner_and_rotation(fake_torch):
    clock, _ = fake_torch
    log = []
    calls = [timed_call(clock, 2.0, log, i) for i in range(3)]
    t = timing.measure(calls, repeats=7, warmup=2, target_ms=5.0)
    assert t.median_ms == pytest.approx(2.0)
    assert t.min_ms == pytest.approx(2.0) and t.max_ms == pytest.approx(2.0)
    assert t.inner == 3 and t.samples == 7 and t.input_sets == 3
    timed = log[-7 * 3:]
    assert timed[:6] == [0, 1, 2, 0, 1, 2]  # consecutive calls alternate input sets


def test_measure_spread(fake_torch):
    clock, _ = fake_torch
    # 3 warm-ups, 1 estimate, then per sample an untimed lead-in call (9 ms: it must not count) and a timed one
    costs = iter([1.0] * 3 + [1.0] + [9.0, 1.0, 9.0, 2.0, 9.0, 3.0, 9.0, 4.0, 9.0, 5.0])

    def call():
        clock.now_ms += next(costs)

    t = timing.measure([call], repeats=5, warmup=3, target_ms=0.5)
    assert t.inner == 1
    assert (t.min_ms, t.q1_ms, t.median_ms, t.q3_ms, t.max_ms) == (1.0, 2.0, 3.0, 4.0, 5.0)


def test_measure_raises_when_a_compile_happens_while_timing(fake_torch):
    clock, _ = fake_torch
    count = {"n": 0}
    calls_seen = {"n": 0}

    def call():
        clock.now_ms += 1.0
        calls_seen["n"] += 1
        if calls_seen["n"] == 10:  # well past warm-up: inside the samples
            count["n"] += 1

    with pytest.raises(timing.CompileDuringTiming, match="1 kernel module"):
        timing.measure([call], repeats=10, warmup=2, target_ms=1.0,
                       compile_count=lambda: count["n"])
    # A compile during warm-up is fine.
    count["n"] = 0
    calls_seen["n"] = 8
    timing.measure([call], repeats=3, warmup=3, target_ms=1.0,
                   compile_count=lambda: count["n"])


def test_measure_memory_reports_torch_delta(fake_torch):
    clock, _ = fake_torch
    mem = timing.measure_memory(timed_call(clock, 1.0))
    assert mem["torch_peak_extra_bytes"] == 64


def test_block_waits_on_jax_like_outputs():
    waited = []
    out = types.SimpleNamespace(block_until_ready=lambda: waited.append(1))
    timing.block((out, [out, 3]))
    assert waited == [1, 1]


def test_runner_records_every_peer(fake_torch, monkeypatch):
    clock, _ = fake_torch
    monkeypatch.setattr(runner, "make_inputs", tiny_inputs)
    monkeypatch.setattr(runner, "compile_counter", lambda: None)
    peers = [FakePeer("cupyflash", ms=2.0, output=right), FakePeer("torch-flash", ms=4.0, output=right),
             FakePeer("torch-math", reject="score matrix too big"),
             FakePeer("jax-cudnn", avail=(False, "jax not installed")),
             FakePeer("torch-cudnn", fail="CompileError: boom"),
             # Faster, but wrong: off by 0.05 in one element of one checked row.
             FakePeer("torch-efficient", ms=1.0, output=lambda *a: off_by(right(*a), 0.05)),
             FakePeer("jax-xla", ms=1.0, output=lambda q, k, v: right(q, k, v)[:, :-1])]
    for p in peers:
        p.clock = clock
    cfg = TINY
    progress_out = io.StringIO()
    from cupyflash.bench.progress import Progress
    progress = Progress(len(peers), stream=progress_out)
    rows = runner.run([cfg], peers, repeats=3, warmup=1, progress=progress)
    (row,) = rows
    ours = row.impls["cupyflash"]
    assert ours.status == OK and ours.accuracy.passed and ours.accuracy.rows == cfg.seqlen_q
    assert ours.value == pytest.approx(flops.throughput(cfg, 2e-3))
    assert ours.memory == {"torch_peak_extra_bytes": 64}
    assert row.impls["torch-math"].status == REJECTED
    assert row.impls["jax-cudnn"].status == NOT_INSTALLED
    assert row.impls["torch-cudnn"].status == ERROR
    wrong = row.impls["torch-efficient"]
    assert wrong.status == ERROR and wrong.reason.startswith("wrong result: max abs err")
    assert wrong.value is None and wrong.timing is not None and not wrong.accuracy.passed
    assert row.impls["jax-xla"].status == ERROR
    assert "wrong result: output shape (2, 36, 4, 8), expected (2, 37, 4, 8)" in row.impls["jax-xla"].reason
    assert row.ratio() == pytest.approx(2.0)  # the wrong, faster peers are not the best peer
    assert progress_out.getvalue().count("\n") == len(peers)
    assert "[7/7]" in progress_out.getvalue()


# ------------------------------------------------- results, --min-ratio, report

def ok(name, value, ms=1.0, error=1e-3):
    t = Timing(ms, ms * 0.9, ms * 1.2, ms * 0.95, ms * 1.05, 30, 4, 3)
    acc = Accuracy(MAX_ABS, error, 4e-3, 128, naive_error=1e-3)
    return ImplResult(name, OK, value=value, timing=t, memory={"torch_peak_extra_bytes": 1 << 20},
                      accuracy=acc)


def fake_rows():
    std = shapes.standard(["bf16"])
    a, b, c, d = std[0], std[1], std[2], std[3]
    return [
        RowResult(a, {"cupyflash": ok("cupyflash", 500.0), "torch-flash": ok("torch-flash", 300.0),
                      "torch-cudnn": ok("torch-cudnn", 450.0)}),
        RowResult(b, {"cupyflash": ok("cupyflash", 200.0), "torch-flash": ok("torch-flash", 400.0),
                      "torch-cudnn": ImplResult("torch-cudnn", REJECTED, "cuDNN refuses this")}),
        RowResult(c, {"cupyflash": ImplResult("cupyflash", REJECTED, "head_dim too large"),
                      "torch-flash": ok("torch-flash", 300.0)}),
        RowResult(d, {"cupyflash": ok("cupyflash", 100.0),
                      "torch-flash": ImplResult("torch-flash", NOT_INSTALLED, "torch not installed")}),
    ]


def test_ratio_uses_best_peer():
    rows = fake_rows()
    assert rows[0].best_peer().impl == "torch-cudnn"
    assert rows[0].ratio() == pytest.approx(500 / 450)
    assert rows[1].ratio() == pytest.approx(0.5)
    assert rows[2].ratio() is None and rows[3].ratio() is None


def test_min_ratio_rule():
    rows = fake_rows()
    failing = {row.config.name: why for row, why in failing_rows(rows, 1.0)}
    assert set(failing) == {rows[1].config.name, rows[2].config.name, rows[3].config.name}
    assert "0.500 < 1.0" in failing[rows[1].config.name]
    assert "cupyflash has no result" in failing[rows[2].config.name]
    assert "no peer" in failing[rows[3].config.name]
    assert failing_rows(rows[:1], 1.1) == []
    assert len(failing_rows(rows[:1], 1.2)) == 1


def test_min_ratio_needs_a_checked_cupyflash_output():
    row = fake_rows()[0]
    assert row.failure(1.0) is None
    row.impls["cupyflash"].accuracy = None  # e.g. a record built by hand
    assert "cupyflash's output is not shown correct (not checked)" in row.failure(1.0)
    row.impls["cupyflash"].accuracy = Accuracy(MAX_ABS, 0.5, 4e-3, 128, 1e-3)
    assert "max abs err 5.00e-01 > bound 4.00e-03" in row.failure(1.0)


def test_check_min_ratio_exit_status():
    rows = fake_rows()
    out = io.StringIO()
    assert cli.check_min_ratio(rows[:1], 1.0, stream=out) == 0
    assert out.getvalue() == ""
    assert cli.check_min_ratio(rows, 0.4, stream=out) == 1
    text = out.getvalue()
    assert text.count("FAIL ") == 2 and "2 of 4 rows" in text


def test_table_lists_every_impl_and_reason():
    text = report.table(fake_rows())
    header = text.splitlines()[0]
    assert header.index("cupyflash") < header.index("torch-flash") < header.index("ratio")
    assert header.rstrip(" |").endswith("cupyflash err/bound")
    assert text.splitlines()[2].rstrip(" |").endswith("0.25")  # 1e-3 / 4e-3
    assert text.splitlines()[4].rstrip(" |").endswith("n/a")  # cupyflash rejected: no check
    assert "500.0" in text and "1.11" in text and "0.50" in text
    assert "rejected: cuDNN refuses this" in text
    assert "not installed: torch not installed" in text
    assert "n/a (cupyflash failed)" in text and "n/a (no peer)" in text
    assert len(text.splitlines()) == 2 + 4


def test_long_reasons_are_shortened_in_the_table():
    r = ImplResult("x", REJECTED, "word " * 50)
    assert len(r.cell(40)) == 40 and r.cell(40).endswith("...")


def test_json_document(tmp_path):
    rows = fake_rows()
    env = {"gpu": "fake", "cupyflash_commit": "unknown"}
    doc = report.document(rows, env, {"sets": ["standard"]}, complete=False)
    path = report.write_json(doc, tmp_path / "sub" / "run.json")
    back = json.loads(path.read_text())
    assert back["complete"] is False and back["env"]["gpu"] == "fake"
    assert back["schema"] == report.SCHEMA_VERSION == 2
    first = back["rows"][0]
    assert first["name"] == rows[0].config.name and first["metric"] == "TFLOP/s"
    assert first["best_peer"] == "torch-cudnn"
    assert first["flops"] == flops.config_flops(rows[0].config)
    assert first["config"]["head_dim"] == 64
    cf = first["impls"]["cupyflash"]
    assert cf["timing"]["median_ms"] == 1.0 and cf["timing"]["samples"] == 30
    assert cf["memory"]["torch_peak_extra_bytes"] == 1 << 20
    assert cf["accuracy"] == {"metric": "max_abs", "error": 1e-3, "bound": 4e-3, "rows": 128,
                              "naive_error": 1e-3, "passed": True}
    assert back["rows"][2]["impls"]["cupyflash"]["accuracy"] is None
    assert back["rows"][2]["impls"]["cupyflash"]["status"] == REJECTED
    assert back["rows"][2]["ratio"] is None


def test_env_commit_is_hash_or_unknown():
    from cupyflash.bench import env
    commit = env.git_commit()
    assert commit == "unknown" or re.fullmatch(r"[0-9a-f]{40}(\+dirty)?", commit)


def test_png(tmp_path):
    pytest.importorskip("matplotlib", reason="matplotlib not installed: PNG report untested")
    from cupyflash.bench import plot
    rows = []
    for cfg in shapes.standard(["bf16"]) + shapes.gqa():
        v = float(cfg.seqlen_k) / 100
        rows.append(RowResult(cfg, {"cupyflash": ok("cupyflash", v),
                                    "torch-flash": ok("torch-flash", v / 2)}))
    paths = plot.plot(rows, tmp_path, "t")
    assert [p.name for p in paths] == ["t_standard_bf16.png"]  # gqa has one length: no plot
    assert paths[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# ----------------------------------------------------------------------- CLI

def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "cupyflash.bench", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=120)


def test_cli_help():
    done = run_cli("--help")
    assert done.returncode == 0, done.stderr
    for flag in ("--set", "--quick", "--dtype", "--match", "--min-ratio", "--out", "--repeats", "--peers"):
        assert flag in done.stdout


def test_cli_list_needs_no_gpu_and_imports_no_framework():
    done = run_cli("--set", "gqa,decode", "--list")
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("| gqa ") == 6 and done.stdout.count("| decode ") == 4
    code = ("import sys, cupyflash.bench.cli, cupyflash.bench.peers, cupyflash.bench.runner;"
            "print([m for m in ('torch', 'jax', 'cupy') if m in sys.modules])")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                          text=True, timeout=120)
    assert done.stdout.strip() == "[]", done.stderr


def test_cli_argument_errors():
    with pytest.raises(SystemExit) as exc:
        cli.parse_args(["--set", "standrd"])
    assert exc.value.code == 2
    with pytest.raises(SystemExit):
        cli.parse_args(["--peers", "torch-flush"])
    with pytest.raises(SystemExit):
        cli.parse_args(["--repeats", "0"])


def test_cli_match_keeps_a_slice_of_the_sets():
    args = cli.parse_args(["--set", "standard", "gqa", "--dtype", "bf16", "--match", "d64_causal"])
    names = [c.name for c in args.configs]
    assert names and all("d64" in n and "causal" in n and "bf16" in n for n in names)
    assert len(names) == 6  # standard's six seqlens; no gqa config has d64 and causal in its name
    args = cli.parse_args(["--set", "standard", "gqa", "--match", "^gqa:"])
    assert {c.set_name for c in args.configs} == {"gqa"} and len(args.configs) == 6
    with pytest.raises(SystemExit) as exc:
        cli.parse_args(["--match", "no_such_row"])
    assert exc.value.code == 2
    with pytest.raises(SystemExit):
        cli.parse_args(["--match", "d64_(causal"])


def test_cli_defaults_and_quick():
    args = cli.parse_args([])
    assert args.sets == ["standard"] and args.repeats == cli.DEFAULT_REPEATS
    assert len(args.configs) == 72 and args.out == "bench/results"
    args = cli.parse_args(["--quick"])
    assert args.sets == ["quick"] and args.repeats == cli.QUICK_REPEATS
    args = cli.parse_args(["--set", "standard", "gqa", "--dtype", "fp16", "--peers", "torch-flash,jax-xla"])
    assert args.sets == ["standard", "gqa"] and len(args.configs) == 36 + 6
    assert args.peers == ["torch-flash", "jax-xla"]


def fake_main_env(monkeypatch, rows_to_add, crash=False):
    """cli.main with the GPU loop replaced: it 'measures' ``rows_to_add``."""
    def fake_run(configs, peers, *, rows, progress, **kw):
        for row in rows_to_add:
            progress.step(row.config.name)
            rows.append(row)
        if crash:
            raise KeyboardInterrupt
        return rows

    monkeypatch.setattr(cli, "_no_gpu_reason", lambda: None)
    monkeypatch.setattr(runner, "run", fake_run)


def test_main_writes_outputs_and_applies_min_ratio(tmp_path, monkeypatch, capsys):
    fake_main_env(monkeypatch, fake_rows())
    status = cli.main(["--set", "standard", "--dtype", "bf16", "--out", str(tmp_path),
                       "--min-ratio", "1.0", "--no-plot"])
    assert status == 1
    captured = capsys.readouterr()
    assert captured.out.rstrip().splitlines()[-1].startswith("| standard:")  # table last
    assert "FAIL standard:" in captured.err and "wrote" in captured.err
    (path,) = tmp_path.glob("standard_*.json")
    doc = json.loads(path.read_text())
    assert doc["complete"] is True and len(doc["rows"]) == 4
    assert doc["settings"]["min_ratio"] == 1.0


def test_main_passes_when_every_row_reaches_min_ratio(tmp_path, monkeypatch, capsys):
    fake_main_env(monkeypatch, fake_rows()[:1])
    assert cli.main(["--quick", "--out", str(tmp_path), "--min-ratio", "1.1", "--no-plot"]) == 0


def test_main_keeps_partial_results_on_crash(tmp_path, monkeypatch):
    fake_main_env(monkeypatch, fake_rows()[:2], crash=True)
    with pytest.raises(KeyboardInterrupt):
        cli.main(["--out", str(tmp_path), "--no-plot"])
    (path,) = tmp_path.glob("*.json")
    doc = json.loads(path.read_text())
    assert doc["complete"] is False and len(doc["rows"]) == 2


def test_main_without_torch_exits_2(monkeypatch, capsys):
    monkeypatch.setattr(cli, "_no_gpu_reason", lambda: "torch is not installed")
    assert cli.main(["--quick"]) == 2
    assert "torch is not installed" in capsys.readouterr().err

