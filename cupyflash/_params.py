"""The Python mirror of ``FlashParams`` (cuda_src/params.h): the only one.

The struct is passed to every kernel by value as a NumPy structured scalar.
``PARAMS_DTYPE`` lists the fields in declaration order with C alignment
(``align=True``), so its offsets equal the C struct's; tests/test_params.py
compiles ``offsetof`` checks against the header to prove it.

Per call, only the leading ``CALL_FIELDS`` change (addresses, and the strides of
the buffers actually passed); the rest depend on the problem alone. So a call
builds ``FlashParams`` by writing those fields, with one ``struct`` pack, in
front of a template made once per problem by ``make_params`` (a third of the
host cost of a call went to filling all 30 fields one by one).
"""

from __future__ import annotations

import struct

import numpy as np

from ._spec import MMA_DTYPES

_PTR = np.uint64
_I64 = np.int64
_I32 = np.int32

PARAMS_FIELDS: tuple[tuple[str, type], ...] = (
    ("q", _PTR),
    ("k", _PTR),
    ("v", _PTR),
    ("o", _PTR),
    ("lse", _PTR),
    ("tile_shifts", _PTR),
    ("kv_k", _PTR), ("kv_v", _PTR), ("kv_k_lo", _PTR), ("kv_v_lo", _PTR), ("kv_flags", _PTR),
    ("sk_partials", _PTR), ("sk_flags", _PTR),
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
    ("q_row_shift", _I32),
    ("sk_items", _I32),
    ("sk_tiles", _I32),
    ("walk_table", _PTR),  # per (device, shape), so part of the template (api._params_template)
)

PARAMS_DTYPE = np.dtype([(name, t) for name, t in PARAMS_FIELDS], align=True)

LOG2E = 1.4426950408889634

# The fields a call writes itself: the thirteen addresses, then the (batch, row, head)
# strides, in elements, of q, k, v and o.
_N_CALL_FIELDS = 13 + 4 * 3
CALL_FIELDS: tuple[str, ...] = tuple(name for name, _ in PARAMS_FIELDS[:_N_CALL_FIELDS])
# Hazard: fill_params packs these as the template's first bytes, which is right only
# while they lead the struct in this order with no padding between them
# (tests/test_params.py checks the offsets, and the bytes against make_params).
_STRUCT_CODES = {_PTR: "Q", _I64: "q"}  # standard sizes ("<"): 8 bytes each
_CALL_STRUCT = struct.Struct("<" + "".join(_STRUCT_CODES[t] for _, t in PARAMS_FIELDS[:_N_CALL_FIELDS]))

# The Hopper kernel's second parameter, ``TmaParams`` (cuda_src/tma_params.h):
# 128-byte CUtensorMap values encoded by cupyflash._tma: q, k, v, the split
# fp32 kernel's lo parts (zeros for the other variants), and the output (16-bit
# outputs only; zeros for fp32).
TMA_DESC_WORDS = 16
TMA_PARAMS_FIELDS: tuple[str, ...] = ("q", "k", "v", "q_lo", "k_lo", "v_lo", "o")
TMA_PARAMS_DTYPE = np.dtype([(name, np.uint64, (TMA_DESC_WORDS,)) for name in TMA_PARAMS_FIELDS])


# The Hopper walk keeps the K and V of this many bytes' worth of (batch, head)
# pairs in flight together. Mirrors nothing on the device: the kernel reads the
# result. Without a mask every query block of a head reads all of its keys, and
# the fewer heads in flight, the more of each head's tiles L2 serves: 4 MB
# measured +0.1 to +3.8 % over 16 MB on 12 of 13 unmasked rows (d64-d256, GQA),
# -0.4 % on one. Under a causal mask 4 MB lost up to 7 % at d256 (s2048-8192: the
# walk's longest-first order then spans only one or two heads) and 2.7 % with the
# 192-row blocks of d64 s2048, so causal calls keep about a third of an H100/H200's
# L2 (50-60 MB, split in two partitions), except the persistent 128-row 16-bit
# kernels (d128 at every length, d64 up to 1024), which gained 0.4-2.9 % with 4 MB
# (bench/notes/wgmma.md, "Smaller walk groups without a mask")
# (bench/notes/wgmma_softmax.md, "Dead chunks of the diagonal tile").
L2_WORKING_SET_BYTES = {False: 4 << 20, True: 16 << 20}
L2_WORKING_SET_CAUSAL_128_BYTES = 4 << 20
WALK_ROWS_SMALL_GROUPS = 128  # the block rows of the causal kernels that take the smaller groups
WALK_ORDER_BYTES = 2  # the order assumes 2-byte elements whatever the dtype


def walk_working_set(causal: bool, spec) -> int:
    """The bytes of K and V the walk keeps in flight for kernel ``spec`` (a KernelSpec)."""
    if causal and spec.persistent and spec.dtype in MMA_DTYPES and spec.block_m == WALK_ROWS_SMALL_GROUPS:
        return L2_WORKING_SET_CAUSAL_128_BYTES
    return L2_WORKING_SET_BYTES[causal]


# The Hopper tiles whose query rows may be shifted (FlashParams.q_row_shift): the
# three-warpgroup 192-row blocks, which leave whole warpgroups idle at lengths 192
# does not divide (1024 = 5 x 192 + 64). The 128-row persistent tiles of widths up to
# 128 carry one item's P.V into the next (flash_fwd_wgmma.cuh, kCrossItem) and cannot
# skip an item, so they stay unshifted. The 16-bit kernels, and the float32 ones whose
# consumers convert q themselves (a warpgroup's 64 rows lie wholly before row 0 or
# wholly after it, and one before it skips the item as the 16-bit kernel's does);
# the others read q's shifts per block from the pre-pass, indexed by unshifted blocks.
Q_SHIFT_BLOCK_M = 192
Q_SHIFT_STEP = 64  # one consumer warpgroup's rows: a shifted block's empty rows are whole warpgroups


def q_row_shift(causal: bool, seqlen_q: int, spec) -> int:
    """``FlashParams.q_row_shift`` for kernel ``spec``: under a causal mask, the
    whole warpgroups of padding that a ``block_m`` of Q_SHIFT_BLOCK_M leaves past
    ``seqlen_q`` move before row 0, into the first query block, which attends the
    fewest key tiles (bench/notes/wgmma_tiles.md, "Padding rows in the first block")."""
    if not (causal and spec.family == "wgmma" and (spec.dtype in MMA_DTYPES or spec.q_in_kernel)
            and spec.block_m == Q_SHIFT_BLOCK_M):
        return 0
    pad = -seqlen_q % spec.block_m
    return pad // Q_SHIFT_STEP * Q_SHIFT_STEP


# The split tail (cuda_src/block_order.h, split_tail.h): a persistent, unmasked 16-bit
# Hopper call whose items do not fill whole waves of the grid lays its last
# ctas + items % ctas items out as one sequence of key tiles, split evenly over the
# grid, instead of leaving items % ctas of them to a last wave (bench/notes/wgmma_tiles.md,
# "The split tail"). Each hand-over slot holds, per consumer thread, its O fragments
# (width / 8 float4s) and one float4 of row state.
# The 192-row (three-warpgroup) tiles, and the 128-row ones compiled for it
# (KernelSpec.walks_split_tail): with its code the 128-row kernels lost 1.5-1.9 % at
# s1024 without a mask and 1-2.5 % on causal rows, where it is never taken.
SK_THREADS_PER_WARPGROUP = 128
SK_FLOATS_PER_CHUNK = 4
SK_WORDS_PER_WARPGROUP = 2  # arrivals, flag (split_tail.h)


def split_tail(causal: bool, seqlen_k: int, items: int, ctas: int, spec) -> tuple[int, int]:
    """(``FlashParams.sk_items``, ``sk_tiles``) for kernel ``spec`` on ``ctas`` persistent
    CTAs walking ``items`` query blocks; (0, 0) where the walk is a plain stride."""
    if causal or seqlen_k == 0 or not spec.walks_split_tail or items <= ctas or items % ctas == 0:
        return 0, 0
    return ctas + items % ctas, -(-seqlen_k // spec.block_n)


def split_tail_floats(ctas: int, spec) -> int:
    """The float32s of ``FlashParams.sk_partials``: one slot per CTA (split_tail.h)."""
    chunks = spec.head_dim // 8 + 1
    return ctas * spec.consumer_warpgroups * chunks * SK_THREADS_PER_WARPGROUP * SK_FLOATS_PER_CHUNK


def split_tail_flag_words(ctas: int, spec) -> int:
    """The uint32s of ``FlashParams.sk_flags``, all zero before the call: per slot and
    consumer warpgroup, its arrivals and its flag (split_tail.h)."""
    return ctas * spec.consumer_warpgroups * SK_WORDS_PER_WARPGROUP


def walk_group_pairs(seqlen_k: int, head_dim: int, head_dim_v: int, group: int, pairs: int,
                     working_set: int) -> int:
    """How many (batch, head) pairs the Hopper kernel's walk groups together
    (``FlashParams.walk_group_pairs``): as many as have their K and V within
    ``working_set`` bytes (``walk_working_set``), at least 1 and at most ``pairs``. A
    KV head is shared by ``group`` query heads, so each pair counts for 1/group of one."""
    kv_bytes = max(seqlen_k * (head_dim + head_dim_v) * WALK_ORDER_BYTES // group, 1)
    return min(max(working_set // kv_bytes, 1), pairs)


def problem_walk_group_pairs(problem, spec) -> int:
    """``walk_group_pairs`` of a call: ``problem`` (a Problem) run by kernel ``spec``, from the
    caller's head dims, not the padded ones the kernel may run at. One function for both of its
    readers, ``FlashParams.walk_group_pairs`` (cupyflash.api) and the host's causal walk table
    (cupyflash._walk.causal_walk), which must agree: the kernel decodes the table with it."""
    return walk_group_pairs(problem.seqlen_k, problem.head_dim, problem.head_dim_v, problem.group,
                            problem.batch * problem.heads_q, walk_working_set(problem.causal, spec))

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


def params_template(**fields: object) -> bytes:
    """``FlashParams`` bytes with every field but ``CALL_FIELDS`` given (those are zero)."""
    return make_params(**dict.fromkeys(CALL_FIELDS, 0), **fields).tobytes()


def fill_params(template: bytes, *call_values: int) -> np.void:
    """One ``FlashParams`` value: ``template`` with ``CALL_FIELDS`` (in that order) written in."""
    buf = bytearray(template)
    _CALL_STRUCT.pack_into(buf, 0, *call_values)
    return np.frombuffer(buf, PARAMS_DTYPE)[0]


_MAP_BYTES = TMA_PARAMS_DTYPE.itemsize // len(TMA_PARAMS_FIELDS)
_NO_MAP = bytes(_MAP_BYTES)


def make_tma_params(q: bytes, k: bytes, v: bytes, q_lo: bytes | None = None, k_lo: bytes | None = None,
                    v_lo: bytes | None = None, o: bytes | None = None) -> np.void:
    """Build one ``TmaParams`` value from encoded tensor maps (lo maps: split kernel
    only; the output map: 16-bit outputs only; absent maps are zeros)."""
    maps = [_NO_MAP if m is None else m for m in (q, k, v, q_lo, k_lo, v_lo, o)]
    # Every map is one CUtensorMap: a wrong length would shift the ones after it.
    if set(map(len, maps)) != {_MAP_BYTES}:
        raise ValueError(f"TmaParams: tensor maps of {[len(m) for m in maps]} bytes; each must be {_MAP_BYTES}")
    return np.frombuffer(bytearray(b"".join(maps)), TMA_PARAMS_DTYPE)[0]
