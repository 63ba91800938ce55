"""Fakes shared by the GPU-free bench tests: a torch module with a fake clock
(so timings are exact), a peer that returns a chosen NumPy output, and a row
small enough for the NumPy float64 reference."""

from __future__ import annotations

import sys
import types

import numpy as np

import cupyflash.reference
from cupyflash.bench import shapes
from cupyflash.bench.peers import PeerFailed, PeerRejected


class FakeClock:
    def __init__(self):
        self.now_ms = 0.0


def make_fake_torch(clock):
    class Event:
        def __init__(self, enable_timing=False):
            self.t = None

        def record(self):
            self.t = clock.now_ms

        def synchronize(self):
            pass

        def elapsed_time(self, other):
            return other.t - self.t

    cuda = types.SimpleNamespace(
        Event=Event,
        synchronize=lambda: None,
        empty_cache=lambda: None,
        OutOfMemoryError=type("OutOfMemoryError", (RuntimeError,), {}),
        reset_peak_memory_stats=lambda: None,
        memory_allocated=lambda: 1000,
        max_memory_allocated=lambda: 1064,
    )
    return types.SimpleNamespace(cuda=cuda)


def install_fake_torch(monkeypatch):
    """Put a fake torch in sys.modules (the ``fake_torch`` fixture of
    conftest.py); returns (clock, fake torch)."""
    clock = FakeClock()
    fake = make_fake_torch(clock)
    monkeypatch.setitem(sys.modules, "torch", fake)
    # The memory probes read cupy's and jax's allocators only when loaded;
    # hide them (another test may have imported cupy without a GPU).
    monkeypatch.delitem(sys.modules, "cupy", raising=False)
    monkeypatch.delitem(sys.modules, "jax", raising=False)
    return clock, fake


def timed_call(clock, ms, log=None, tag=None):
    def call():
        clock.now_ms += ms
        if log is not None:
            log.append(tag)
        return tag
    return call


class FakePeer:
    """Takes ``ms`` per call on the fake clock and returns ``output(q, k, v)``
    (NumPy, bshd) for the float64 check."""

    precision = "highest"

    def __init__(self, name, ms=None, avail=(True, ""), reject=None, fail=None, output=None):
        self.name, self.ms, self.avail = name, ms, avail
        self.reject, self.fail, self.output = reject, fail, output
        self.clock = None

    def available(self):
        return self.avail

    @staticmethod
    def bshd(out):
        return out

    def prepare(self, cfg, q, k, v):
        if self.reject:
            raise PeerRejected(self.reject)
        if self.fail:
            raise PeerFailed(self.fail)
        out = self.output(q, k, v) if self.output is not None else None
        call = timed_call(self.clock, self.ms)

        def prepared():
            call()
            return out
        return prepared


# A row small enough for the NumPy reference: GQA 2:1, head_dim_v != head_dim,
# causal with seqlen_q < seqlen_k (bottom-right alignment matters).
TINY = shapes.AttnConfig("tiny", 2, 37, 53, 4, 2, 16, 8, True, "fp16")


def tiny_inputs(cfg, seed):
    rng = np.random.default_rng(seed)
    return tuple(rng.standard_normal(s).astype(np.float16) for s in (
        (cfg.batch, cfg.seqlen_q, cfg.heads_q, cfg.head_dim),
        (cfg.batch, cfg.seqlen_k, cfg.heads_kv, cfg.head_dim),
        (cfg.batch, cfg.seqlen_k, cfg.heads_kv, cfg.head_dim_v)))


def right(q, k, v):
    """The float64 reference rounded to fp16: what a correct kernel returns."""
    return cupyflash.reference.attention(q, k, v, causal=True).astype(np.float16)


def off_by(out, delta):
    """``out`` with one element of one checked row moved by ``delta``."""
    out = out.copy()
    out[1, -1, 3, 5] += delta  # the last query row is always checked
    return out
