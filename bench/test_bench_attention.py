"""pytest-benchmark entry: ``pytest bench/ --benchmark-only``.

One benchmark per (quick-set config, implementation). The timed function
launches the call and synchronises the device, so pytest-benchmark's wall
clock covers the GPU work, not just the launch. Each record's ``extra_info``
holds the throughput at pytest-benchmark's median and, for comparison, the
CUDA-event median from ``cupyflash.bench.timing`` (launch overhead excluded).

For the full tables use ``python -m cupyflash.bench`` instead.
"""

from __future__ import annotations

import itertools

import pytest

pytest.importorskip("pytest_benchmark", reason="pytest-benchmark is not installed")
torch = pytest.importorskip("torch", reason="torch is not installed: GPU benchmarks need it")

from cupyflash.bench import flops, runner, shapes, timing  # noqa: E402
from cupyflash.bench.peers import PeerFailed, PeerRejected, all_peers  # noqa: E402

if not torch.cuda.is_available():
    pytestmark = pytest.mark.skip(reason="torch sees no CUDA GPU")

CONFIGS = shapes.quick()
PEERS = {peer.name: peer for peer in all_peers()}
ROUNDS = 20


@pytest.fixture(scope="module")
def availability():
    return {name: peer.available() for name, peer in PEERS.items()}


@pytest.mark.parametrize("impl", list(PEERS))
@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: c.name)
def test_attention(benchmark, availability, cfg, impl):
    ok, why = availability[impl]
    if not ok:
        pytest.skip(f"{impl}: {why}")
    peer = PEERS[impl]
    inputs = [runner.make_inputs(cfg, seed) for seed in range(runner.input_set_count(cfg))]
    try:
        calls = [peer.prepare(cfg, *qkv) for qkv in inputs]
    except PeerRejected as exc:
        pytest.skip(f"{impl} rejects {cfg.name}: {exc}")
    except PeerFailed as exc:
        pytest.fail(f"{impl} failed on {cfg.name}: {exc}")

    counter = runner.compile_counter()
    event = timing.measure(calls, repeats=10, compile_count=counter)

    rotation = itertools.cycle(calls)

    def launch_and_wait():
        timing.block(next(rotation)())
        torch.cuda.synchronize()

    before = counter() if counter is not None else None
    benchmark.group = f"{cfg.set_name}:{cfg.name}"
    benchmark.extra_info.update(
        config=cfg.name, impl=impl, metric=cfg.metric,
        flops=flops.config_flops(cfg), kv_bytes=flops.config_kv_bytes(cfg),
        event_median_ms=event.median_ms,
        event_throughput=flops.throughput(cfg, event.median_ms / 1e3))
    benchmark.pedantic(launch_and_wait, rounds=ROUNDS, iterations=1, warmup_rounds=3)
    if counter is not None:
        assert counter() == before, "a kernel was compiled inside the benchmark rounds"

    stats = getattr(benchmark, "stats", None)  # None under --benchmark-disable
    if stats is not None:
        benchmark.extra_info["throughput_median"] = flops.throughput(cfg, stats.stats.median)
