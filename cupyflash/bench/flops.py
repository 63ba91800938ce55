"""Work counted per attention problem: FLOPs for prefill, bytes for decode.

Causal FLOPs are counted from the exact number of attended (query, key) pairs,
not as "half of the full matrix": with seqlen_q != seqlen_k and bottom-right
alignment the fraction can be anything from 0 to 1.

Bottom-right alignment (FlashAttention-2 and later, and cupyflash's default):
query row ``i`` (0-based) attends to keys ``j <= i + seqlen_k - seqlen_q``, so
it sees ``clamp(i + seqlen_k - seqlen_q + 1, 0, seqlen_k)`` keys. Example,
seqlen_q = 2, seqlen_k = 5 (``x`` = attended)::

    x x x x .
    x x x x x

and seqlen_q = 5, seqlen_k = 2 (the first three rows see no key at all)::

    . .
    . .
    . .
    x .
    x x
"""

from __future__ import annotations


def _sum_clamped(lo: int, hi: int, cap: int) -> int:
    """sum(clamp(x, 0, cap) for x in range(lo, hi + 1)), in O(1)."""
    if hi < lo:
        return 0

    def prefix(t: int) -> int:
        # sum(min(x, cap) for x in 1..t), zero for t <= 0.
        if t <= 0:
            return 0
        if t <= cap:
            return t * (t + 1) // 2
        return cap * (cap + 1) // 2 + (t - cap) * cap

    # Terms with x <= 0 contribute nothing, so only the positive part counts.
    return prefix(hi) - prefix(lo - 1)


def attended_pairs(seqlen_q: int, seqlen_k: int, causal: bool) -> int:
    """Number of (query, key) pairs that take part in one head's softmax."""
    if seqlen_q < 0 or seqlen_k < 0:
        raise ValueError(f"negative sequence length ({seqlen_q}, {seqlen_k})")
    if not causal:
        return seqlen_q * seqlen_k
    offset = seqlen_k - seqlen_q
    # attended(i) = clamp(i + offset + 1, 0, seqlen_k), i = 0 .. seqlen_q - 1
    return _sum_clamped(offset + 1, offset + seqlen_q, seqlen_k)


def mean_attended_length(seqlen_q: int, seqlen_k: int, causal: bool) -> float:
    """Average number of keys one query row attends to."""
    if seqlen_q == 0:
        return 0.0
    return attended_pairs(seqlen_q, seqlen_k, causal) / seqlen_q


def attention_flops(batch, heads_q, seqlen_q, seqlen_k, head_dim, head_dim_v,
                    causal) -> int:
    """Matmul FLOPs of the forward pass: Q K^T (2 * head_dim per pair) plus
    P V (2 * head_dim_v per pair). Softmax work is not counted, as in the
    FlashAttention papers."""
    pairs = attended_pairs(seqlen_q, seqlen_k, causal)
    return 2 * batch * heads_q * (head_dim + head_dim_v) * pairs


def kv_bytes(batch, seqlen_k, heads_kv, head_dim, head_dim_v, itemsize) -> int:
    """Bytes of K and V that a decode step must read at least once."""
    return batch * seqlen_k * heads_kv * (head_dim + head_dim_v) * itemsize


def config_flops(cfg) -> int:
    return attention_flops(cfg.batch, cfg.heads_q, cfg.seqlen_q, cfg.seqlen_k,
                           cfg.head_dim, cfg.head_dim_v, cfg.causal)


def config_kv_bytes(cfg) -> int:
    return kv_bytes(cfg.batch, cfg.seqlen_k, cfg.heads_kv, cfg.head_dim,
                    cfg.head_dim_v, cfg.itemsize)


def throughput(cfg, seconds: float) -> float:
    """The row's headline number: TFLOP/s for prefill, GB/s of K+V for decode."""
    if seconds <= 0:
        raise ValueError(f"seconds={seconds} must be positive")
    if cfg.metric == "GB/s":
        return config_kv_bytes(cfg) / seconds / 1e9
    return config_flops(cfg) / seconds / 1e12
