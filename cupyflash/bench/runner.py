"""Runs every (config, implementation) pair and collects the results.

Inputs are made once per config with torch (random normal, never zeros: an
all-zero input can take fast paths and makes every softmax uniform) and shared
by all implementations without copies.

After a cell is timed, one more call's output (first input set) is checked
against the float64 reference of its query-row subset (accuracy.py); the
reference is computed once per config, after the first cell that needs it.
"""

from __future__ import annotations

import importlib

from .accuracy import OutputCheck, WrongOutput
from .flops import throughput
from .peers import PeerFailed, PeerRejected
from .results import ERROR, NOT_INSTALLED, OK, REJECTED, ImplResult, RowResult
from .timing import CompileDuringTiming, block, measure, measure_memory

# When one input set is smaller than this it could sit in L2 (50 MB on
# H100/H200) between calls; consecutive calls then rotate among several sets.
L2_ROTATE_BYTES = 100 * 1024**2
ROTATE_SETS = 3


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


def run_one(peer, cfg, inputs, *, repeats, warmup, target_ms, counter, check):
    """One cell of the table. ``check``: the row's :class:`OutputCheck` on
    ``inputs[0]``."""
    import torch

    calls = []
    try:
        calls = [peer.prepare(cfg, *qkv) for qkv in inputs]
        timing = measure(calls, repeats=repeats, warmup=warmup,
                         target_ms=target_ms, compile_count=counter)
        memory = measure_memory(calls[0])
        sample = sample_output(peer, calls[0], check)
    except PeerRejected as exc:
        return ImplResult(peer.name, REJECTED, str(exc))
    except torch.cuda.OutOfMemoryError:
        return ImplResult(peer.name, REJECTED, "out of memory")
    except (CompileDuringTiming, PeerFailed) as exc:
        return ImplResult(peer.name, ERROR, str(exc))
    except WrongOutput as exc:
        return ImplResult(peer.name, ERROR, f"wrong result: {exc}")
    finally:
        calls.clear()  # drop jitted closures and cached outputs before the next peer
        torch.cuda.empty_cache()
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
        impls = {}
        for peer in peers:
            if progress is not None:
                progress.step(f"{cfg.set_name}:{cfg.name}  {peer.name}")
            ok, why = availability[peer.name]
            if not ok:
                impls[peer.name] = ImplResult(peer.name, NOT_INSTALLED, why)
                continue
            impls[peer.name] = run_one(
                peer, cfg, inputs, repeats=repeats, warmup=warmup,
                target_ms=target_ms, counter=counter, check=check)
        del check  # its float64 reference rows
        inputs.clear()
        torch.cuda.empty_cache()
        rows.append(RowResult(cfg, impls))
    return rows
