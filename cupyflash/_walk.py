"""The persistent Hopper kernel's causal walk, balanced on the host.

A persistent grid of G CTAs walks the query blocks of every (batch, head) in the
order of ``block_coord`` (cuda_src/block_order.h): pairs in groups whose K and V
fit in L2, and inside a group the blocks longest first, pairs fastest. Under a
causal mask block m attends about m + 1 key tiles, so the kernel's own walk folds
the blocks into pairs (m_blocks-1-j, j) of equal work and strides over them. That
is balanced only when G divides the number of pairs: at d64 s1024 (b16, h32)
1536 pairs leave 84 CTAs a twelfth unit while 48 idle, and the kernel measured
311.5 / 321.6 / 324.7 / 330.2 / 316.9 TFLOP/s at 31 / 32 / 30 / 33 / 34 heads,
in step with the fold's 93.9 / 97.0 / 99.2 / 100 / 95.1 % balance, while cuDNN's
rate did not move (bench/notes/wgmma_tiles.md, "The causal walk's last wave").

Here the host lays out the same blocks as a dynamic scheduler would hand them
out: in walk order, each to the CTA that frees up first, with a block costing its
key tiles plus ITEM_COST_TILES. The result is a table (``FlashParams.walk_table``):
G + 1 offsets, then each CTA's walk positions in order, which the kernel decodes
with ``block_coord``. Any table that lists every position once is correct; the
cost model only decides how well it balances. Where it predicts no gain over the
fold (or the call has more than MAX_WAVES waves), the table lays out the fold. The
variants that read a table (``KernelSpec.walk_table``) are twins compiled for causal
calls; the others keep the kernel's own fold, unchanged: with both walks in one
kernel the unmasked rows lost 1-2 % at d64 and 5 % in fp32 fast d128.

Pure Python and NumPy (``device_table`` takes CuPy as an argument): no GPU needed.
"""

from __future__ import annotations

import functools
import heapq
from collections import OrderedDict

import numpy as np

from ._params import problem_walk_group_pairs, q_row_shift

# An item's fixed cost (Q load, first tile's latency, epilogue), in steady key tiles.
ITEM_COST_TILES = 1.0
# The list schedule replaces the fold only where its last CTA is predicted this much sooner.
MIN_GAIN = 0.005
# Its last items (this many waves of the grid) are re-sorted longest first before they
# are handed out: the walk's last group ends on its shortest blocks, and a tail in
# longest-first order evens out the last CTAs (d128 s1024: 0.981 -> 0.992 predicted).
TAIL_WAVES = 2
# Beyond this many items per CTA the fold's last wave is at most 1/MAX_WAVES of the
# call, and the list schedule is not worth its host time (Python, ~0.7 us per item,
# once per shape: ~3 ms at 32 waves of 132 CTAs).
MAX_WAVES = 32
# Tables kept per shape, like the call cache (cupyflash._callcache.CALL_CACHE_SIZE).
WALK_CACHE_SIZE = 512


def walk_order(pairs: int, m_blocks: int, group_pairs: int) -> tuple[np.ndarray, np.ndarray]:
    """(pair, m_block) of every walk position, as ``block_coord`` computes them."""
    linear = np.arange(pairs * m_blocks, dtype=np.int64)
    group = linear // (group_pairs * m_blocks)
    first_pair = group * group_pairs
    pairs_here = np.minimum(group_pairs, pairs - first_pair)
    r = linear - first_pair * m_blocks
    return first_pair + r % pairs_here, m_blocks - 1 - r // pairs_here


def block_tiles(seqlen_q: int, seqlen_k: int, causal_offset: int, block_m: int, block_n: int,
                row_shift: int) -> np.ndarray:
    """Key tiles of each query block under the causal mask (``work_item``, work_item_sm90.h)."""
    m_blocks = -(-seqlen_q // block_m)
    row_end = np.arange(1, m_blocks + 1, dtype=np.int64) * block_m - row_shift
    n_end = np.minimum(seqlen_k, np.minimum(row_end, seqlen_q) + causal_offset)
    return np.where(n_end > 0, -(-n_end // block_n), 0)


def fold_units(pairs: int, m_blocks: int, group_pairs: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(pair, long block, short block) of every unit of the fold, in its walk order
    (``persistent_coord``): the short block equals the long one for the middle block of an
    odd m_blocks, a unit alone."""
    folded = (m_blocks + 1) // 2
    pair, mf = walk_order(pairs, folded, group_pairs)
    j = folded - 1 - mf
    return pair, m_blocks - 1 - j, j


def fold_makespan(cost: np.ndarray, pairs: int, group_pairs: int, ctas: int) -> float:
    """The last CTA's finish under the kernel's own fold (``persistent_coord``)."""
    _, long_block, j = fold_units(pairs, len(cost), group_pairs)
    unit = cost[long_block] + np.where(j < long_block, cost[j], 0.0)
    return float(np.bincount(np.arange(len(unit)) % ctas, weights=unit, minlength=ctas).max())


def list_schedule(costs: np.ndarray, ctas: int) -> tuple[np.ndarray, float]:
    """Each item, in order, to the CTA that is free first (ties: the lowest index), as
    a dynamic scheduler would hand them out. Returns the CTA of every item and the
    last CTA's finish. A heap: about a microsecond per item, once per shape."""
    heap = [(0.0, c) for c in range(ctas)]
    owner = np.empty(len(costs), dtype=np.int64)
    for i, cost in enumerate(costs.tolist()):
        load, c = heap[0]
        owner[i] = c
        heapq.heapreplace(heap, (load + cost, c))
    return owner, max(load for load, _ in heap)


def _table(owner: np.ndarray, positions: np.ndarray, ctas: int) -> np.ndarray:
    """The table of items handed out in order, item i (walk position positions[i]) to CTA owner[i]."""
    by_cta = np.argsort(owner, kind="stable")  # each CTA's items in the order they were handed out
    offsets = np.zeros(ctas + 1, dtype=np.int64)
    np.cumsum(np.bincount(owner, minlength=ctas), out=offsets[1:])
    return np.concatenate([offsets, positions[by_cta]]).astype(np.int32)


def fold_table(pairs: int, m_blocks: int, group_pairs: int, ctas: int) -> np.ndarray:
    """The fold as a table: unit u, the block pair (m_blocks-1-j, j) of one (batch, head)
    in the folded walk's order, goes to CTA u % ctas, its long block first (the middle
    block of an odd m_blocks is a unit alone). What the kernel computed itself before."""
    pair, m = walk_order(pairs, m_blocks, group_pairs)
    position = np.empty(pairs * m_blocks, dtype=np.int64)
    position[pair * m_blocks + m] = np.arange(pairs * m_blocks)
    fpair, long_block, j = fold_units(pairs, m_blocks, group_pairs)
    halves = np.stack([position[fpair * m_blocks + long_block], position[fpair * m_blocks + j]], axis=1)
    present = np.stack([np.ones_like(j, dtype=bool), j < long_block], axis=1)
    owner = np.repeat(np.arange(len(fpair)) % ctas, 2).reshape(-1, 2)
    return _table(owner[present], halves[present], ctas)


def balanced_walk(pairs: int, tiles: np.ndarray, group_pairs: int, ctas: int) -> tuple[np.ndarray, bool, float, float]:
    """(the table, whether it is the list schedule (else the fold), the predicted balance
    of the list schedule, the fold's) for ``pairs`` (batch, head) pairs whose query blocks
    attend ``tiles`` key tiles each. Balance: the mean CTA's work over the last CTA's (1.0:
    every CTA finishes together); the list schedule's is the fold's where it is not built."""
    cost = tiles.astype(np.float64) + ITEM_COST_TILES
    m_blocks = len(cost)
    items = pairs * m_blocks
    mean = float(cost.sum()) * pairs / ctas
    fold = mean / fold_makespan(cost, pairs, group_pairs, ctas)
    if items <= ctas or items > MAX_WAVES * ctas or fold >= 1 - MIN_GAIN:
        return fold_table(pairs, m_blocks, group_pairs, ctas), False, fold, fold
    _, m = walk_order(pairs, m_blocks, group_pairs)
    order = np.arange(items)
    tail = min(items, TAIL_WAVES * ctas)
    order[items - tail:] = items - tail + np.argsort(-cost[m[items - tail:]], kind="stable")
    owner, makespan = list_schedule(cost[m[order]], ctas)
    balance = mean / makespan
    if balance < fold * (1 + MIN_GAIN):
        return fold_table(pairs, m_blocks, group_pairs, ctas), False, balance, fold
    return _table(owner, order, ctas), True, balance, fold


@functools.lru_cache(maxsize=WALK_CACHE_SIZE)
def causal_walk(problem, spec, ctas: int) -> tuple[bytes, bool, float, float]:
    """(``FlashParams.walk_table`` as bytes, whether it is the list schedule, its predicted
    balance, the fold's) for a causal ``problem`` on ``ctas`` CTAs of persistent kernel
    ``spec``. The walk's groups are ``FlashParams.walk_group_pairs``'s
    (``_params.problem_walk_group_pairs``: the caller's head dims, whatever the kernel pads
    them to). Every causal call of a walk-table variant needs one; b"" otherwise."""
    if not (problem.causal and spec.walk_table):  # only these variants read one (block_order.h)
        return b"", False, 1.0, 1.0
    pairs = problem.batch * problem.heads_q
    group_pairs = problem_walk_group_pairs(problem, spec)
    tiles = block_tiles(problem.seqlen_q, problem.seqlen_k, problem.causal_offset, spec.block_m, spec.block_n,
                        q_row_shift(True, problem.seqlen_q, spec))
    table, listed, balance, fold = balanced_walk(pairs, tiles, group_pairs, ctas)
    return table.tobytes(), listed, balance, fold


# (device id, table bytes) -> [device array, the event its upload recorded, or None once done].
_DEVICE_TABLES: OrderedDict = OrderedDict()


def device_table(cupy, device_id: int, table: bytes) -> int:
    """The address of ``table`` on device ``device_id`` (the current one), uploaded on
    the current stream at its first use and kept (one per shape, like the call cache)."""
    key = (device_id, table)
    entry = _DEVICE_TABLES.get(key)
    if entry is None:
        array = cupy.asarray(np.frombuffer(table, dtype=np.int32))  # in stream order, before this call's kernel
        event = cupy.cuda.Event(disable_timing=True)
        event.record()
        entry = _DEVICE_TABLES[key] = [array, event]
        # Hazard: an evicted table goes back to CuPy's pool, which may hand its memory to the
        # next allocation on the stream that uploaded it; a kernel still reading it on another
        # stream would then read garbage. Eviction needs WALK_CACHE_SIZE newer shapes first.
        if len(_DEVICE_TABLES) > WALK_CACHE_SIZE:
            _DEVICE_TABLES.popitem(last=False)
    else:
        _DEVICE_TABLES.move_to_end(key)
        # A call on another stream than the upload's must not launch before the upload lands.
        if entry[1] is not None:
            if entry[1].done:
                entry[1] = None
            else:
                cupy.cuda.get_current_stream().wait_event(entry[1])
    return entry[0].data.ptr
