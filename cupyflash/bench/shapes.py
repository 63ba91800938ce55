"""Benchmark shape sets, as plain data.

Every row of a benchmark is one frozen :class:`AttnConfig`. The sets follow the
FlashAttention papers' convention where it applies: the total number of tokens
``batch * seqlen`` is held at 16384 and the model width ``heads * head_dim`` at
2048, so that every row moves roughly the same amount of data and the
throughput curves are comparable across sequence lengths.

This module imports nothing beyond the standard library so the sets can be
listed and tested on a machine without a GPU.
"""

from __future__ import annotations

from dataclasses import dataclass

# The papers' grid: tokens per batch and model width held constant.
TOKENS = 16384
WIDTH = 2048

ITEMSIZE = {"fp16": 2, "bf16": 2, "fp32": 4, "fp64": 8}
HALF_DTYPES = ("fp16", "bf16")

PREFILL = "prefill"
DECODE = "decode"


@dataclass(frozen=True)
class AttnConfig:
    """One attention problem. Tensors are (batch, seq, heads, dim) ("bshd")."""

    set_name: str
    batch: int
    seqlen_q: int
    seqlen_k: int
    heads_q: int
    heads_kv: int
    head_dim: int
    head_dim_v: int
    causal: bool
    dtype: str
    kind: str = PREFILL

    def __post_init__(self):
        if self.dtype not in ITEMSIZE:
            raise ValueError(
                f"dtype={self.dtype!r} is not one of {sorted(ITEMSIZE)}")
        if self.kind not in (PREFILL, DECODE):
            raise ValueError(f"kind={self.kind!r} is not 'prefill' or 'decode'")
        if self.heads_q % self.heads_kv != 0:
            raise ValueError(
                f"heads_q={self.heads_q} is not a multiple of "
                f"heads_kv={self.heads_kv}")
        for field in ("batch", "seqlen_q", "seqlen_k", "heads_q", "heads_kv",
                      "head_dim", "head_dim_v"):
            if getattr(self, field) < 1:
                raise ValueError(f"{field}={getattr(self, field)} must be >= 1")

    @property
    def name(self) -> str:
        """Readable, unique within a set, e.g. ``b4_s4096_h16_d128_causal_bf16``."""
        seq = (f"s{self.seqlen_q}" if self.seqlen_q == self.seqlen_k
               else f"sq{self.seqlen_q}_sk{self.seqlen_k}")
        heads = (f"h{self.heads_q}" if self.heads_q == self.heads_kv
                 else f"hq{self.heads_q}_hkv{self.heads_kv}")
        dim = (f"d{self.head_dim}" if self.head_dim == self.head_dim_v
               else f"d{self.head_dim}_dv{self.head_dim_v}")
        mask = "causal" if self.causal else "full"
        return f"b{self.batch}_{seq}_{heads}_{dim}_{mask}_{self.dtype}"

    @property
    def itemsize(self) -> int:
        return ITEMSIZE[self.dtype]

    @property
    def metric(self) -> str:
        """Decode is bandwidth-bound: it is reported in GB/s of K+V read."""
        return "GB/s" if self.kind == DECODE else "TFLOP/s"

    def input_bytes(self) -> int:
        """Bytes of one (q, k, v) input set."""
        q = self.batch * self.seqlen_q * self.heads_q * self.head_dim
        k = self.batch * self.seqlen_k * self.heads_kv * self.head_dim
        v = self.batch * self.seqlen_k * self.heads_kv * self.head_dim_v
        return (q + k + v) * self.itemsize

    def score_elements(self) -> int:
        """Elements of the full (batch, heads_q, seqlen_q, seqlen_k) score matrix."""
        return self.batch * self.heads_q * self.seqlen_q * self.seqlen_k


def _square(set_name, seqlen, head_dim, causal, dtype, *, heads=None, batch=None):
    """A self-attention row on the papers' grid (or near it, for odd sizes)."""
    batch = batch if batch is not None else max(1, round(TOKENS / seqlen))
    heads = heads if heads is not None else max(1, round(WIDTH / head_dim))
    return AttnConfig(set_name, batch, seqlen, seqlen, heads, heads,
                      head_dim, head_dim, causal, dtype)


def _dtypes(dtypes, default):
    return tuple(dtypes) if dtypes else default


def standard(dtypes=None):
    """3 head dims x 6 seqlens x 2 masks x 2 dtypes = 72 rows."""
    return [_square("standard", s, d, c, dt)
            for dt in _dtypes(dtypes, HALF_DTYPES)
            for d in (64, 128, 256)
            for c in (False, True)
            for s in (512, 1024, 2048, 4096, 8192, 16384)]


def gqa(dtypes=None):
    """32 query heads sharing 8, 4 or 1 KV heads (GQA down to MQA)."""
    return [AttnConfig("gqa", 2, 8192, 8192, 32, hkv, 128, 128, c, dt)
            for dt in _dtypes(dtypes, ("bf16",))
            for hkv in (8, 4, 1)
            for c in (False, True)]


def fp32(dtypes=None):
    """float32 rows; --dtype does not apply (the set exists to measure fp32)."""
    del dtypes
    return [_square("fp32", s, d, c, "fp32")
            for d in (64, 128)
            for c in (False, True)
            for s in (1024, 2048, 4096, 8192, 16384)]


def fp64(dtypes=None):
    """float64 rows, small enough for torch's math backend (its score matrix
    stays under MAX_SCORE_BYTES): 2 x 8 heads, seqlen 512 to 2048."""
    del dtypes
    return [AttnConfig("fp64", 2, s, s, 8, 8, d, d, c, "fp64")
            for d in (64, 128)
            for c in (False, True)
            for s in (512, 1024, 2048)]


def decode(dtypes=None):
    """One query token against a long KV cache. Not causal: with bottom-right
    alignment a single query row attends to every key anyway."""
    return [AttnConfig("decode", 8, 1, sk, 32, 8, 128, 128, False, dt, DECODE)
            for dt in _dtypes(dtypes, ("bf16",))
            for sk in (4096, 16384, 32768, 131072)]


def odd(dtypes=None):
    """Head dims and lengths that are not powers of two (tile edges, padding)."""
    return [_square("odd", s, d, c, dt)
            for dt in _dtypes(dtypes, ("bf16",))
            for d in (80, 96, 100)
            for c in (False, True)
            for s in (1000, 3000)]


def quick(dtypes=None):
    """Eight rows across all kinds, about a minute with every peer."""
    dt = _dtypes(dtypes, ("bf16",))[0]
    return [
        _square("quick", 1024, 128, False, dt),
        _square("quick", 1024, 128, True, dt),
        _square("quick", 4096, 128, False, dt),
        _square("quick", 4096, 128, True, dt),
        _square("quick", 2048, 64, False, dt),
        _square("quick", 1000, 96, True, dt),
        AttnConfig("quick", 2, 2048, 2048, 32, 8, 128, 128, True, dt),
        AttnConfig("quick", 8, 1, 4096, 32, 8, 128, 128, False, dt, DECODE),
    ]


SETS = {
    "standard": standard,
    "gqa": gqa,
    "fp32": fp32,
    "fp64": fp64,
    "decode": decode,
    "odd": odd,
    "quick": quick,
}


def get_set(name, dtypes=None):
    """The rows of set ``name``; ``dtypes`` replaces the set's half-precision
    dtypes (ignored by ``fp32``)."""
    try:
        builder = SETS[name]
    except KeyError:
        raise ValueError(
            f"unknown shape set {name!r}; choose from {sorted(SETS)}") from None
    if dtypes:
        bad = [d for d in dtypes if d not in ITEMSIZE]
        if bad:
            raise ValueError(f"unknown dtype(s) {bad}; choose from {sorted(ITEMSIZE)}")
    return builder(dtypes)
