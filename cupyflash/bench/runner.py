"""Runs every (config, implementation) pair and collects the results.

Inputs are made once per config with torch (random normal, never zeros: an
all-zero input can take fast paths and makes every softmax uniform) and shared
by all implementations without copies.

The implementations of one config are timed in interleaved rounds (timing.py
says why): each is prepared, warmed up and sized first, then every round takes
one sample of each in turn. After the rounds, one more call's output (first
input set) of each is checked against the float64 reference of its query-row
subset (accuracy.py); the reference is computed once per config, after the
first cell that needs it.
"""

from __future__ import annotations

import importlib
import random

from .accuracy import OutputCheck, WrongOutput
from .flops import throughput
from .peers import PeerFailed, PeerRejected
from .results import ERROR, NOT_INSTALLED, OK, REJECTED, ImplResult, RowResult
from .timing import CompileDuringTiming, Sampler, block, measure_memory

# When one input set is smaller than this it could sit in L2 (50 MB on
# H100/H200) between calls; consecutive calls then rotate among several sets.
L2_ROTATE_BYTES = 100 * 1024**2
ROTATE_SETS = 3
# Seed of the rounds' shuffled implementation orders (run_row): the same orders every run.
ORDER_SEED = 0


def input_set_count(cfg) -> int:
    return ROTATE_SETS if cfg.input_bytes() < L2_ROTATE_BYTES else 1


def make_inputs(cfg, seed: int):
    """(q, k, v) as contiguous torch CUDA tensors, (batch, seq, heads, dim)."""
    import torch

    dtype = {"fp16": torch.float16, "bf16": torch.bfloat16,
             "fp32": torch.float32, "fp64": torch.float64}[cfg.dtype]
    gen = torch.Generator(device="cuda")
    gen.manual_seed(seed)

    def randn(seq, heads, dim):
        return torch.randn((cfg.batch, seq, heads, dim), generator=gen,
                           device="cuda", dtype=dtype)

    return (randn(cfg.seqlen_q, cfg.heads_q, cfg.head_dim),
            randn(cfg.seqlen_k, cfg.heads_kv, cfg.head_dim),
            randn(cfg.seqlen_k, cfg.heads_kv, cfg.head_dim_v))


def compile_counter():
    """``cupyflash.compile_count`` if the core exposes it, else None."""
    try:
        cupyflash = importlib.import_module("cupyflash")
    except ImportError:
        return None
    return getattr(cupyflash, "compile_count", None)


def sample_output(peer, call, check):
    """The checked rows of one more call's output. Runs after the timing, so
    the timed calls do no extra work."""
    import torch

    out = call()
    block(out)
    torch.cuda.synchronize()
    return check.sample(peer.bshd(out))


def _failure(name, exc) -> ImplResult:
    """The cell of an implementation that raised ``exc`` while prepared, warmed up or timed."""
    if isinstance(exc, PeerRejected):
        return ImplResult(name, REJECTED, str(exc))
    if isinstance(exc, WrongOutput):
        return ImplResult(name, ERROR, f"wrong result: {exc}")
    if isinstance(exc, (CompileDuringTiming, PeerFailed)):
        return ImplResult(name, ERROR, str(exc))
    import torch

    if isinstance(exc, torch.cuda.OutOfMemoryError):
        return ImplResult(name, REJECTED, "out of memory")
    raise TypeError(f"{name}: no cell for {exc!r}") from exc


def _expected_failures():
    import torch

    return (PeerRejected, PeerFailed, CompileDuringTiming, WrongOutput, torch.cuda.OutOfMemoryError)


def _checked(peer, cfg, sampler, check) -> ImplResult:
    """One timed implementation's cell: its memory, then its output against the float64 reference."""
    import torch

    timing = sampler.timing()
    try:
        memory = measure_memory(sampler.calls[0])
        sample = sample_output(peer, sampler.calls[0], check)
    except _expected_failures() as exc:
        return _failure(peer.name, exc)
    try:
        accuracy = check.judge(sample, peer.precision)
    except torch.cuda.OutOfMemoryError:
        # The instrument's failure, not the peer's: still no number unchecked.
        return ImplResult(peer.name, ERROR, "output not checked: the float64 reference ran out of memory",
                          timing=timing, memory=memory)
    if not accuracy.passed:
        # The timing stays in the record, but no number: a wrong output is not fast.
        return ImplResult(peer.name, ERROR, f"wrong result: {accuracy.summary()}",
                          timing=timing, memory=memory, accuracy=accuracy)
    value = throughput(cfg, timing.median_ms / 1e3)
    return ImplResult(peer.name, OK, value=value, timing=timing, memory=memory,
                      accuracy=accuracy)


def round_order(names: list, r: int) -> list:
    """The order of round ``r`` (run_row): rounds 2i and 2i + 1 take one seeded
    shuffle of ``names`` forwards, then backwards."""
    order = list(names)
    random.Random(ORDER_SEED + r // 2).shuffle(order)
    return order if r % 2 == 0 else order[::-1]


def run_row(cfg, peers, inputs, availability, *, repeats, warmup, target_ms, counter, check, progress=None):
    """Every implementation's cell of one config, timed in interleaved rounds.
    ``check``: the row's :class:`OutputCheck` on ``inputs[0]``."""
    import torch

    if repeats < 1:
        raise ValueError(f"repeats={repeats} must be >= 1")
    impls, samplers = {}, {}
    try:
        for peer in peers:
            if progress is not None:
                progress.step(f"{cfg.set_name}:{cfg.name}  {peer.name}")
            ok, why = availability[peer.name]
            if not ok:
                impls[peer.name] = ImplResult(peer.name, NOT_INSTALLED, why)
                continue
            try:
                calls = [peer.prepare(cfg, *qkv) for qkv in inputs]
                samplers[peer.name] = Sampler(calls, warmup=warmup, target_ms=target_ms, compile_count=counter,
                                              own_stream=getattr(peer, "own_stream", False))
            except _expected_failures() as exc:
                impls[peer.name] = _failure(peer.name, exc)
        for r in range(repeats):
            # Rounds go in pairs: a shuffled order (seeded: runs repeat), then the same
            # order reversed. A sample meets its predecessor's leftovers (its clocks,
            # its lines in L2), and a fixed cyclic order, even rotated, would give
            # every implementation the same predecessor in every round
            # (bench/notes/full_bench.md, "The bench's clocks"); the reversal
            # evens out the positions within a pair, so a clock that drifts over
            # the row meets every implementation alike.
            names = round_order(list(samplers), r)
            for name in names:
                sampler = samplers[name]
                try:
                    sampler.sample()
                except _expected_failures() as exc:
                    impls[name] = _failure(name, exc)
                    del samplers[name]
        for peer in peers:
            if peer.name in samplers:
                impls[peer.name] = _checked(peer, cfg, samplers[peer.name], check)
    finally:
        samplers.clear()  # drop jitted closures and cached outputs before the next row
        torch.cuda.empty_cache()
    return {peer.name: impls[peer.name] for peer in peers}


def run(configs, peers, *, repeats=30, warmup=3, target_ms=5.0,
        progress=None, rows=None):
    """Measure every config with every peer.

    ``rows``: a list the results are appended to as they complete, so a caller
    can still report what finished if a later config crashes.
    """
    import torch

    rows = rows if rows is not None else []
    availability = {peer.name: peer.available() for peer in peers}
    counter = compile_counter()
    for cfg in configs:
        inputs = [make_inputs(cfg, seed) for seed in range(input_set_count(cfg))]
        check = OutputCheck(cfg, *inputs[0])
        impls = run_row(cfg, peers, inputs, availability, repeats=repeats, warmup=warmup, target_ms=target_ms,
                        counter=counter, check=check, progress=progress)
        del check  # its float64 reference rows
        inputs.clear()
        torch.cuda.empty_cache()
        rows.append(RowResult(cfg, impls))
    return rows
