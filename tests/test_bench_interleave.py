"""The bench times the implementations of one row in interleaved rounds
(cupyflash/bench/timing.py, Sampler; runner.run_row), with a fake torch clock."""

from __future__ import annotations

import pytest

from bench_fakes import TINY, FakePeer, right, tiny_inputs
from cupyflash.bench import runner, timing
from cupyflash.bench.peers import PeerFailed
from cupyflash.bench.results import ERROR, OK

class LoggingPeer(FakePeer):
    """A FakePeer whose calls append its name to ``log``; with ``fail_at`` its
    n-th call (counting from 1, warm-up included) raises PeerFailed."""

    def __init__(self, name, ms, log, fail_at=None, drift=None):
        super().__init__(name, ms=ms, output=right)
        self.log, self.fail_at, self.drift, self.calls = log, fail_at, drift, 0

    def prepare(self, cfg, q, k, v):
        inner = super().prepare(cfg, q, k, v)

        def call():
            self.calls += 1
            if self.fail_at is not None and self.calls == self.fail_at:
                raise PeerFailed(f"{self.name}: failed at call {self.calls}")
            self.log.append(self.name)
            if self.drift is not None:
                self.drift(self.clock)
            return inner()
        return call


@pytest.fixture
def row_setup(fake_torch, monkeypatch):
    clock, _ = fake_torch
    monkeypatch.setattr(runner, "make_inputs", tiny_inputs)
    monkeypatch.setattr(runner, "compile_counter", lambda: None)
    return clock


def test_samples_alternate_between_implementations(row_setup):
    clock, log = row_setup, []
    peers = [LoggingPeer("cupyflash", 2.0, log), LoggingPeer("torch-cudnn", 3.0, log)]
    for p in peers:
        p.clock = clock
    (row,) = runner.run([TINY], peers, repeats=4, warmup=1, target_ms=5.0)
    # inner: 3 calls of 2 ms, 2 of 3 ms per sample, each sample led in by as many
    # untimed calls; the rounds take the implementations in shuffled orders.
    # After the rounds each makes two more calls: the memory probe and the output check.
    assert log[-4:] == ["cupyflash", "cupyflash", "torch-cudnn", "torch-cudnn"]
    inner = {"cupyflash": 3, "torch-cudnn": 2}
    want = []
    for r in range(4):
        want += [name for name in runner.round_order(list(inner), r) for _ in range(2 * inner[name])]
    assert log[-len(want) - 4:-4] == want
    assert row.impls["cupyflash"].timing.median_ms == pytest.approx(2.0)
    assert row.impls["torch-cudnn"].timing.median_ms == pytest.approx(3.0)
    assert row.ratio() == pytest.approx(1.5)


def test_round_orders_pair_a_shuffle_with_its_reverse():
    names = ["a", "b", "c", "d", "e"]
    for r in range(0, 8, 2):
        first, second = runner.round_order(names, r), runner.round_order(names, r + 1)
        assert sorted(first) == names and second == first[::-1]
    assert len({tuple(runner.round_order(names, r)) for r in range(0, 20, 2)}) > 1  # not one order forever


def test_rounds_vary_each_implementations_predecessor(row_setup):
    """Under a power cap a sample starts at the clock its predecessor left: with a
    fixed cyclic order (even rotated) each implementation would always follow the
    same one. The shuffled rounds give each of three several predecessors."""
    clock, log = row_setup, []
    names = ["cupyflash", "torch-cudnn", "torch-flash"]
    peers = [LoggingPeer(n, 2.0, log) for n in names]
    for p in peers:
        p.clock = clock
    runner.run([TINY], peers, repeats=12, warmup=1, target_ms=2.0)
    timed = log[-(12 * 3 * 2) - 2 * 3:-2 * 3]  # 12 rounds of 3 samples of lead-in + 1 timed call
    samples = timed[::2]
    before = {n: {a for a, b in zip(samples, samples[1:]) if b == n and a != n} for n in names}
    assert all(len(before[n]) == 2 for n in names), before


def test_a_clock_that_drifts_meets_every_implementation_alike(row_setup):
    """Every call slows the next by 1 %: timed one after the other, the later
    implementation of two equal ones would read slower; interleaved, they agree."""
    clock, log = row_setup, []
    scale = {"f": 1.0}

    def drift(clock):
        scale["f"] *= 1.01

    peers = [LoggingPeer("cupyflash", 2.0, log, drift=drift), LoggingPeer("torch-cudnn", 2.0, log, drift=drift)]
    for p in peers:
        p.clock = clock
        base = p.prepare

        def prepare(cfg, q, k, v, base=base):
            call = base(cfg, q, k, v)

            def slowed():
                clock.now_ms += 2.0 * (scale["f"] - 1.0)  # on top of the 2 ms the fake call adds
                return call()
            return slowed
        p.prepare = prepare
    # rounds in reversed pairs (runner.round_order): an even count balances every position
    (row,) = runner.run([TINY], peers, repeats=10, warmup=1, target_ms=2.0)
    ours, theirs = (row.impls[n].timing.median_ms for n in ("cupyflash", "torch-cudnn"))
    assert ours == pytest.approx(theirs, rel=0.015)


def test_an_implementation_that_fails_mid_rounds_leaves_the_others_timed(row_setup):
    clock, log = row_setup, []
    # 1 warm-up + 1 estimate + samples of 3 calls: call 6 is inside the second sample.
    peers = [LoggingPeer("cupyflash", 2.0, log), LoggingPeer("torch-flash", 2.0, log, fail_at=6)]
    for p in peers:
        p.clock = clock
    (row,) = runner.run([TINY], peers, repeats=5, warmup=1, target_ms=5.0)
    assert row.impls["cupyflash"].status == OK and row.impls["cupyflash"].timing.samples == 5
    failed = row.impls["torch-flash"]
    assert failed.status == ERROR and "failed at call 6" in failed.reason and failed.value is None
    assert list(row.impls) == ["cupyflash", "torch-flash"]  # the peers' order, whatever failed when


def test_a_compile_inside_a_sample_voids_that_implementation_only(fake_torch):
    clock, _ = fake_torch
    count = {"n": 0}

    def compiling():
        clock.now_ms += 1.0
        count["n"] += 1  # every call loads a module: fine while warming up, not while timed

    sampler = timing.Sampler([compiling], warmup=2, target_ms=1.0, compile_count=lambda: count["n"])
    with pytest.raises(timing.CompileDuringTiming, match="2 kernel module"):  # the lead-in call's and the timed one's
        sampler.sample()
    steady = timing.Sampler([lambda: setattr(clock, "now_ms", clock.now_ms + 1.0)], warmup=1, target_ms=1.0,
                            compile_count=lambda: count["n"])
    steady.sample()
    assert steady.timing().samples == 1 and steady.timing().median_ms == pytest.approx(1.0)


class SideStream:
    """A stream of its own on the fake clock (JAX's): work queues up there and the
    clock moves only when someone waits for it (block_until_ready, or a device
    synchronise); events are recorded on torch's stream, which stays idle."""

    def __init__(self, clock):
        self.clock, self.pending = clock, 0.0

    def flush(self):
        self.clock.now_ms += self.pending
        self.pending = 0.0


def test_calls_on_their_own_stream_time_without_their_lead_in(fake_torch, monkeypatch):
    clock, torch = fake_torch
    side = SideStream(clock)
    monkeypatch.setattr(torch.cuda, "synchronize", side.flush)

    class Out:
        def block_until_ready(self):
            side.flush()

    def call():
        side.pending += 2.0
        return Out()

    # inner = 3: without own_stream the start event passes while the 3 lead-in calls
    # still queue on the side stream, and the sample reads them too (4 ms a call).
    for own_stream, per_call in ((True, 2.0), (False, 4.0)):
        sampler = timing.Sampler([call], warmup=1, target_ms=6.0, own_stream=own_stream)
        sampler.sample()
        assert sampler.inner == 3 and sampler.timing().median_ms == pytest.approx(per_call)


def test_jax_peers_declare_their_own_stream():
    from cupyflash.bench.peers import CupyflashPeer, JaxPeer, TorchSDPAPeer

    assert JaxPeer.own_stream
    assert not getattr(CupyflashPeer, "own_stream", False) and not getattr(TorchSDPAPeer, "own_stream", False)
