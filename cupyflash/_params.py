"""The Python mirror of ``FlashParams`` (cuda_src/params.h): the only one.

The struct is passed to every kernel by value as a NumPy structured scalar.
``PARAMS_DTYPE`` lists the fields in declaration order with C alignment
(``align=True``), so its offsets equal the C struct's; tests/test_params.py
compiles ``offsetof`` checks against the header to prove it.
"""

from __future__ import annotations

import numpy as np

_PTR = np.uint64
_I64 = np.int64
_I32 = np.int32

PARAMS_FIELDS: tuple[tuple[str, type], ...] = (
    ("q", _PTR),
    ("k", _PTR),
    ("v", _PTR),
    ("o", _PTR),
    ("lse", _PTR),
    ("scales", _PTR),
    ("q_batch_stride", _I64), ("q_row_stride", _I64), ("q_head_stride", _I64),
    ("k_batch_stride", _I64), ("k_row_stride", _I64), ("k_head_stride", _I64),
    ("v_batch_stride", _I64), ("v_row_stride", _I64), ("v_head_stride", _I64),
    ("o_batch_stride", _I64), ("o_row_stride", _I64), ("o_head_stride", _I64),
    ("softmax_scale", np.float64),
    ("scale_log2", np.float32),
    ("batch", _I32),
    ("seqlen_q", _I32),
    ("seqlen_k", _I32),
    ("heads_q", _I32),
    ("heads_kv", _I32),
    ("group", _I32),
    ("head_dim", _I32),
    ("head_dim_v", _I32),
    ("causal", _I32),
    ("causal_offset", _I32),
    ("walk_group_pairs", _I32),
)

PARAMS_DTYPE = np.dtype([(name, t) for name, t in PARAMS_FIELDS], align=True)

LOG2E = 1.4426950408889634

# The Hopper kernel's second parameter, ``TmaParams`` (cuda_src/tma_params.h):
# 128-byte CUtensorMap values encoded by cupyflash._tma: q, k, v, the split
# fp32 kernel's lo parts (zeros for the other variants), and the output (16-bit
# outputs only; zeros for fp32).
TMA_DESC_WORDS = 16
TMA_PARAMS_FIELDS: tuple[str, ...] = ("q", "k", "v", "q_lo", "k_lo", "v_lo", "o")
TMA_PARAMS_DTYPE = np.dtype([(name, np.uint64, (TMA_DESC_WORDS,)) for name in TMA_PARAMS_FIELDS])


# The Hopper walk keeps the K and V of this many bytes' worth of (batch, head)
# pairs in flight together: about a third of an H100/H200's L2 (50-60 MB, split
# in two partitions). Mirrors nothing on the device: the kernel reads the result.
L2_WORKING_SET_BYTES = 16 << 20
WALK_ORDER_BYTES = 2  # the order assumes 2-byte elements whatever the dtype


def walk_group_pairs(seqlen_k: int, head_dim: int, head_dim_v: int, group: int, pairs: int) -> int:
    """How many (batch, head) pairs the Hopper kernel's walk groups together
    (``FlashParams.walk_group_pairs``): as many as have their K and V within
    ``L2_WORKING_SET_BYTES``, at least 1 and at most ``pairs``. A KV head is
    shared by ``group`` query heads, so each pair counts for 1/group of one."""
    kv_bytes = max(seqlen_k * (head_dim + head_dim_v) * WALK_ORDER_BYTES // group, 1)
    return min(max(L2_WORKING_SET_BYTES // kv_bytes, 1), pairs)


def make_params(**fields: object) -> np.void:
    """Build one ``FlashParams`` value; every field must be given exactly once."""
    names = {name for name, _ in PARAMS_FIELDS}
    missing = names - fields.keys()
    unknown = fields.keys() - names
    if missing or unknown:
        raise TypeError(f"FlashParams: missing fields {sorted(missing)}, unknown fields {sorted(unknown)}")
    value = np.zeros((), dtype=PARAMS_DTYPE)
    for name, _ in PARAMS_FIELDS:
        value[name] = fields[name]
    return value[()]


def make_tma_params(q: bytes, k: bytes, v: bytes, q_lo: bytes | None = None, k_lo: bytes | None = None,
                    v_lo: bytes | None = None, o: bytes | None = None) -> np.void:
    """Build one ``TmaParams`` value from encoded tensor maps (lo maps: split kernel
    only; the output map: 16-bit outputs only)."""
    value = np.zeros((), dtype=TMA_PARAMS_DTYPE)
    for name, desc in zip(TMA_PARAMS_FIELDS, (q, k, v, q_lo, k_lo, v_lo, o)):
        if desc is not None:
            value[name] = np.frombuffer(desc, dtype=np.uint64)
    return value[()]
