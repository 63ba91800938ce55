"""float64 attention on a subset of query rows, for checking benchmark outputs.

The bench's rows reach seqlen 16384, and decode's KV caches 131072 keys: a full
float64 score matrix would take tens of GB. Query rows are independent of each
other, so the reference is computed for a deterministic subset of them
(:func:`query_rows`), for every batch and head, against every key, and costs
``len(rows) / seqlen_q`` of a full one. The score block computed at once is
bounded (``CHUNK_ELEMENTS``) whatever the config.

The same function gives the naive computation in the input precision (scores,
probabilities and output rounded to the input dtype, as an implementation that
stores them in that dtype must): FlashAttention's yardstick for fp16/bf16.

Inputs are (batch, seq, heads, dim) NumPy arrays (the CPU tests) or torch
tensors (the bench, on the GPU); the work runs where they live, through the
few operations that differ between the two (``_NumpyOps``, ``_TorchOps``).
torch is never imported here: a torch tensor means torch is loaded already.

Masking and heads follow cupyflash's definition, which every peer the bench
accepts agrees with: causal is bottom-right aligned (query ``i`` sees key
``j`` iff ``j <= i + seqlen_k - seqlen_q``; torch and JAX, top-left aligned,
are only run where the lengths are equal and the two coincide), query head
``h`` reads KV head ``h // (heads_q // heads_kv)``, the scale is
``1 / sqrt(head_dim)``, and a query row that sees no key outputs 0.
"""

from __future__ import annotations

import math
import sys

import numpy as np

# Query rows checked per (batch, head): enough to catch a wrong tile, row block
# or mask edge anywhere in the sequence, few enough that the float64 reference
# of a seqlen-16384 row costs under 1% of a full one.
DEFAULT_ROWS = 128

# float64 score elements computed at once (256 MiB); the reference holds a few
# arrays of this size, so it fits beside the benchmark's inputs on any GPU the
# bench targets.
CHUNK_ELEMENTS = 32 * 1024**2


def query_rows(seqlen_q: int, max_rows: int = DEFAULT_ROWS) -> tuple[int, ...]:
    """Up to ``max_rows`` query rows spread evenly over ``[0, seqlen_q)``, the
    first and the last included, strictly increasing; every row when
    ``seqlen_q <= max_rows``."""
    if max_rows < 2:
        raise ValueError(f"max_rows={max_rows} must be >= 2 (the first and the last row)")
    if seqlen_q < 0:
        raise ValueError(f"seqlen_q={seqlen_q} must be >= 0")
    if seqlen_q <= max_rows:
        return tuple(range(seqlen_q))
    # Integer rounding of i * (seqlen_q - 1) / (max_rows - 1): the step is > 1,
    # so the rows are distinct (float round() ties to even and could repeat one).
    span, last = seqlen_q - 1, max_rows - 1
    return tuple((i * span + last // 2) // last for i in range(max_rows))


class _NumpyOps:
    float64 = np.float64

    @staticmethod
    def cast(x, dtype):
        return np.asarray(x).astype(dtype)

    @staticmethod
    def einsum(subscripts, a, b):
        return np.einsum(subscripts, a, b, optimize=True)

    @staticmethod
    def amax(x):
        return x.max(axis=-1, keepdims=True)

    @staticmethod
    def sum(x):
        return x.sum(axis=-1, keepdims=True)

    @staticmethod
    def index(values, like):
        return np.asarray(values)

    @staticmethod
    def arange(n, like):
        return np.arange(n)

    @staticmethod
    def concat(parts, axis):
        return np.concatenate(parts, axis=axis)

    @staticmethod
    def stack(parts):
        return np.stack(parts)

    exp, where, isfinite, abs = np.exp, np.where, np.isfinite, np.abs


class _TorchOps:
    def __init__(self, torch):
        self.torch = torch
        self.float64 = torch.float64
        self.einsum, self.exp, self.where = torch.einsum, torch.exp, torch.where
        self.isfinite, self.abs = torch.isfinite, torch.abs

    @staticmethod
    def cast(x, dtype):
        return x.to(dtype)

    @staticmethod
    def amax(x):
        return x.amax(dim=-1, keepdim=True)

    @staticmethod
    def sum(x):
        return x.sum(dim=-1, keepdim=True)

    def index(self, values, like):
        return self.torch.tensor(values, device=like.device)

    def arange(self, n, like):
        return self.torch.arange(n, device=like.device)

    def concat(self, parts, axis):
        return self.torch.cat(parts, dim=axis)

    def stack(self, parts):
        return self.torch.stack(parts)


def array_ops(x):
    """The operations for ``x``'s array library (NumPy or torch)."""
    if isinstance(x, np.ndarray):
        return _NumpyOps
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(x, torch.Tensor):
        return _TorchOps(torch)
    raise TypeError(f"the reference takes NumPy arrays or torch tensors, not {type(x).__module__}."
                    f"{type(x).__name__}")


def attention_rows(q, k, v, rows, *, causal: bool, round_to=None,
                   chunk_elements: int = CHUNK_ELEMENTS):
    """``out[:, rows]`` of attention over (batch, seq, heads, dim) inputs, as a
    float64 array of shape (batch, len(rows), heads_q, head_dim_v).

    ``round_to``: None for the float64 reference. A dtype of the inputs' library
    (q's own, for the yardstick) for the naive computation in that precision:
    ``q k^T``, the normalised probabilities and the output are rounded to it;
    everything else stays float64 (fp32 accumulation would differ from this by
    ~1e-7, far below the fp16/bf16 roundings, and float64 has no TF32 mode to
    fall into).
    """
    ops = array_ops(q)
    f64 = ops.float64
    batch, seqlen_q, heads_q, head_dim = q.shape
    seqlen_k, heads_kv, head_dim_v = k.shape[1], k.shape[2], v.shape[3]
    group = heads_q // heads_kv
    offset = seqlen_k - seqlen_q  # bottom-right alignment
    scale = 1.0 / math.sqrt(head_dim)

    def rnd(x):
        return x if round_to is None else ops.cast(ops.cast(x, round_to), f64)

    rows = list(rows)
    step = max(1, chunk_elements // max(1, heads_q * seqlen_k))
    keys = ops.arange(seqlen_k, like=q)
    per_batch = []
    for b in range(batch):
        # One batch entry at a time: a float64 copy of decode's whole 131072-key
        # cache would be 16 GB.
        kb, vb = ops.cast(k[b], f64), ops.cast(v[b], f64)
        parts = []
        for start in range(0, len(rows), step):
            chunk = rows[start:start + step]
            qc = ops.cast(q[b, chunk], f64).reshape(len(chunk), heads_kv, group, head_dim)
            s = rnd(ops.einsum("rkgd,skd->kgrs", qc, kb)) * scale
            if causal:
                last_key = ops.index([r + offset for r in chunk], like=q)
                s = ops.where(keys[None, :] <= last_key[:, None], s, -math.inf)
            m = ops.amax(s)
            # A row that sees no key has max -inf: subtract 0 instead, so that
            # exp gives 0 (not exp(-inf + inf) = NaN) and the row outputs 0.
            p = ops.exp(s - ops.where(ops.isfinite(m), m, 0.0))
            denom = ops.sum(p)
            p = rnd(p / ops.where(denom > 0, denom, 1.0))
            o = rnd(ops.einsum("kgrs,skd->rkgd", p, vb))
            parts.append(o.reshape(len(chunk), heads_q, head_dim_v))
        per_batch.append(ops.concat(parts, axis=0))
    return ops.stack(per_batch)


def max_abs_error(got, ref) -> float:
    """max |got - ref| (NaN when got has a NaN)."""
    ops = array_ops(ref)
    return float(ops.abs(ops.cast(got, ops.float64) - ref).max())


def rel_l2_error(got, ref) -> float:
    """||got - ref|| / ||ref|| over all elements (NaN when got has a NaN)."""
    ops = array_ops(ref)
    diff = ops.cast(got, ops.float64) - ref
    num = math.sqrt(float((diff * diff).sum()))
    den = math.sqrt(float((ref * ref).sum()))
    return num / den if den > 0 else num
