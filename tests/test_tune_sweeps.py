"""The tuning sweeps in bench/ (tune_mma, tune_dmma, tune_split, ab_tf32) without a GPU:
their command lines parse, and each (shape, mask) point times the torch peer and
every candidate in one floor.interleaved_ms call, the peer under its SDPA backend."""

from __future__ import annotations

import contextlib
import importlib
import pathlib
import sys
import types

import pytest

BENCH = pathlib.Path(__file__).resolve().parent.parent / "bench"
SCRIPTS = ("floor", "tune_mma", "tune_dmma", "tune_split", "ab_tf32")


class FakeTensor:
    def transpose(self, *dims):
        return self

    def contiguous(self):
        return self


class Sdpa:
    """torch's SDPA with the backend switch: records the backend of each call."""

    def __init__(self):
        self.backend, self.calls = None, []

    @contextlib.contextmanager
    def kernel(self, backend):
        previous, self.backend = self.backend, backend
        try:
            yield
        finally:
            self.backend = previous

    def attention(self, q, k, v, is_causal=False):
        self.calls.append((self.backend, is_causal))
        return FakeTensor()


def fake_torch_modules(sdpa):
    backends = types.SimpleNamespace(FLASH_ATTENTION="flash", CUDNN_ATTENTION="cudnn",
                                     EFFICIENT_ATTENTION="efficient", MATH="math")
    attention = types.ModuleType("torch.nn.attention")
    attention.SDPBackend, attention.sdpa_kernel = backends, sdpa.kernel
    nn = types.ModuleType("torch.nn")
    nn.attention, nn.functional = attention, types.SimpleNamespace(scaled_dot_product_attention=sdpa.attention)
    torch = types.ModuleType("torch")
    torch.nn = nn
    for name in ("bfloat16", "float16", "float32", "float64"):
        setattr(torch, name, name)
    torch.randn = lambda *shape, **kw: FakeTensor()
    torch.cuda = types.SimpleNamespace(current_stream=lambda: types.SimpleNamespace(cuda_stream=0))
    return {"torch": torch, "torch.nn": nn, "torch.nn.attention": attention}


@pytest.fixture
def sweeps(monkeypatch):
    """Imports the sweep scripts against a fake torch; returns (load, sdpa, record)."""
    sdpa = Sdpa()
    for name, module in fake_torch_modules(sdpa).items():
        monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.syspath_prepend(str(BENCH))
    for name in SCRIPTS:
        monkeypatch.delitem(sys.modules, name, raising=False)
    record = types.SimpleNamespace(timed=[], checked=[], results=None, launches=[])

    def interleaved_ms(runs, rounds=7, repeats=10):
        record.timed.append((list(runs), rounds, repeats))
        for fn in runs.values():
            fn()
        return {name: 1.0 for name in runs}

    def check_output(run, out, ref, bound, label):
        record.checked.append(label)
        run()
        return 0.0

    def load(name):
        floor = importlib.import_module("floor")
        monkeypatch.setattr(floor, "interleaved_ms", interleaved_ms)
        monkeypatch.setattr(floor, "check_output", check_output)
        monkeypatch.setattr(floor, "write_results", lambda rows, filename: setattr(record, "results", rows))
        script = importlib.import_module(name)
        if hasattr(script, "interleaved_ms"):
            monkeypatch.setattr(script, "interleaved_ms", interleaved_ms)
        problem = types.SimpleNamespace(dtype="bfloat16")
        api = types.SimpleNamespace(_validate=lambda *a: (None, problem),
                                    _run=lambda plan, *a: record.launches.append((plan.spec, sdpa.backend)))
        dispatch = types.SimpleNamespace(
            plan_for_spec=lambda problem, spec, arch, sm_count=None: types.SimpleNamespace(spec=spec),
            plan=lambda problem, arch, precision: types.SimpleNamespace(spec=types.SimpleNamespace(variant_name="x")))
        # The fp32 sweeps build their rows in floor.fp32_rows: the same fakes go there.
        for module in (script, floor):
            monkeypatch.setattr(module, "api", api)
            monkeypatch.setattr(module, "_dispatch", dispatch)
        buf = lambda x=None: types.SimpleNamespace(owner=x)  # noqa: E731
        if hasattr(script, "sweep_inputs"):
            monkeypatch.setattr(script, "sweep_inputs", lambda d, s, dt: (
                2, 4, (FakeTensor(), FakeTensor(), FakeTensor()), [buf() for _ in range(4)], None))
        cuda = types.SimpleNamespace(ExternalStream=lambda ptr: None,
                                     Device=lambda: types.SimpleNamespace(attributes={"MultiProcessorCount": 132}))
        fake_cp = types.SimpleNamespace(empty=lambda *a, **kw: object(), from_dlpack=lambda x: x, cuda=cuda,
                                        float32="f4", float64="f8")
        for module in (script, floor):
            if hasattr(module, "cp"):
                monkeypatch.setattr(module, "cp", fake_cp)
            if hasattr(module, "_cupy_buffer"):
                monkeypatch.setattr(module, "_cupy_buffer", buf)
        return script

    yield load, sdpa, record
    for name in SCRIPTS:
        sys.modules.pop(name, None)


@pytest.mark.parametrize("name", ["tune_mma", "tune_dmma", "tune_split", "ab_tf32"])
def test_help_parses(sweeps, monkeypatch, capsys, name):
    load, _, _ = sweeps
    script = load(name)
    monkeypatch.setattr(sys, "argv", [f"{name}.py", "--help"])
    with pytest.raises(SystemExit) as exc:
        script.main()
    assert exc.value.code == 0
    assert "--seqlens" in capsys.readouterr().out


@pytest.mark.parametrize("name, argv, peer, backend, extra", [
    ("tune_mma", ["--dims", "64,96", "--seqlens", "1024", "--dtype", "fp16"], "fa2", "flash", ()),
    ("tune_dmma", ["--dims", "64", "--seqlens", "512,1024"], "math", "math", ("simt",)),
    ("tune_split", ["--dims", "128", "--seqlens", "2048"], "efficient", "efficient", ()),
    ("ab_tf32", ["--dims", "64,128", "--seqlens", "1024"], "efficient", "efficient", ("fast-fp16",)),
])
def test_peer_and_candidates_share_interleaved_rounds(sweeps, monkeypatch, capsys, name, argv, peer, backend,
                                                      extra):
    from cupyflash import _spec

    load, sdpa, record = sweeps
    script = load(name)
    monkeypatch.setattr(sys, "argv", [f"{name}.py", *argv])
    script.main()
    dims = [int(x) for x in argv[1].split(",")]
    seqlens = [int(x) for x in argv[3].split(",")]
    points = len(dims) * len(seqlens) * 2
    assert len(record.timed) == points and len(record.results) == points
    for (names, _, _), row in zip(record.timed, record.results):
        d = row["d"]
        cands = {"tune_mma": lambda: _spec.MMA_CANDIDATES.get(_spec.mma_width(d, d)),
                 "tune_dmma": lambda: _spec.DMMA_CANDIDATES.get(d, (_spec.DMMA_TILES[d],)),
                 "tune_split": lambda: _spec.WGMMA_SPLIT_CANDIDATES[d],
                 "ab_tf32": lambda: _spec.WGMMA_TF32_CANDIDATES[d]}[name]()
        prefix = "tf32" if name == "ab_tf32" else ""
        assert names == [peer, *extra, *(prefix + str(t) for t in cands)]
        assert all(row[n] > 0 for n in names)
    # The peer ran under its backend in the timed rounds (and for dmma's reference);
    # our kernels never depend on torch's backend switch.
    assert sdpa.calls and all(b == backend for b, _ in sdpa.calls)
    assert {c for _, c in sdpa.calls} == {False, True}
    out = capsys.readouterr().out
    assert out.count("d=") == points and "WRONG" not in out
    if name != "tune_mma":  # every contender's output is checked before it is timed
        assert len(record.checked) == sum(len(n) - 1 for n, _, _ in record.timed)


@pytest.mark.parametrize("flag,d,terms", [("--q-in-kernel", 64, 3), ("--fast", 128, 1)])
def test_tune_split_q_in_kernel_times_every_candidate_in_the_same_rounds(sweeps, monkeypatch, capsys, flag, d, terms):
    """--q-in-kernel (split) and --fast (one term): the table's variant with q from the
    pre-pass and every candidate tile with q converted in the kernel, all checked (the
    mode's bound), then timed with the peer in the same interleaved rounds."""
    import dataclasses

    from cupyflash import _spec

    load, _, record = sweeps
    script = load("tune_split")
    monkeypatch.setattr(sys, "argv", ["tune_split.py", "--dims", str(d), "--seqlens", "1024", flag])
    script.main()
    cands = (_spec.WGMMA_SPLIT_CANDIDATES if terms == 3 else _spec.WGMMA_FAST_Q_CANDIDATES)[d]
    assert [names for names, _, _ in record.timed] == [["efficient", "prepass_q",
                                                         *(script._tile_name(t) for t in cands)]] * 2
    specs = {spec for spec, _ in record.launches if spec.family == "wgmma"}  # not the exact reference
    assert dataclasses.replace(_spec.wgmma_fp32_spec(d, terms), q_in_kernel=False) in specs
    assert {s for s in specs if s.q_in_kernel} == {_spec.wgmma_q_in_kernel_spec(d, t, terms) for t in cands}
    assert "WRONG" not in capsys.readouterr().out
