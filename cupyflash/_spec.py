"""Kernel variants: the frozen spec that names one compiled instantiation, and
the tile tables that choose it. Pure Python, no GPU needed.

Tile tables (why each entry; the measured numbers are in bench/notes/, indexed
by bench/NOTES.md):

mma.sync path (fp16/bf16, sm_80+). Each warp owns 16 * m_tiles query rows, so
block_m = 16 * m_tiles * warps. Registers hold the O accumulator (m_tiles *
head_dim / 2 floats per thread) and one score tile (m_tiles * block_n / 2).
Measured on H200 against FlashAttention-2 in the same run (bench/notes/mma.md,
"v4 — tile loads bump one pointer" and the entries after it):
  head dim <= 64:  128 x 128 tiles, 4 warps of 32 rows (m_tiles = 2): each K/V
                   fragment read from shared memory feeds two mma, and long key
                   tiles amortise the two barriers per tile. 0.97-1.06 x FA2 at
                   seqlen 512-2048 (128 x 96: 0.88-0.97; a 96-key tile also
                   computes 576 keys for 512). Its 4-byte spill under NVRTC 13.0
                   (the epilogue's first row, kept across the key loop) is gone
                   since the epilogue re-reads it (fresh_tid_x in ptx.h).
  head dim 80, 96: 128 x 64, 4 warps of 32 rows (FA2's tile at 96). Spill-free
                   (228-249 registers, NVRTC 13.0 and 13.5) since rows of 10 or
                   12 chunks load with one pointer bump per copy too (120 of 128
                   threads copy); before that, 96 ran 128 x 32 (0.70-0.77 x FA2
                   on an H100) and 80 ran padded to 96 (0.74-0.82). 80 is a
                   width of this family only (MMA_WIDTHS). Not yet timed on a
                   GPU: bench/tune_mma.py --dims 80,96 times MMA_CANDIDATES.
  head dim 128:    128 x 64, 4 warps of 32 rows: 128 O + 64 S registers, at 255
                   with no spill (NVRTC 13.0 and 13.5) since tile loads bump one
                   pointer per copy. 0.95-1.07 x FA2.
  head dim 160:    64 x 64, 4 warps of 16 rows.
  head dim >= 192: 64 x 32 (192, 224: 64 x 64 spills) and 64 x 64 at 256
                   (4 warps of 16 rows; 2 x 128 O registers cannot fit).
                   0.88-1.02 x FA2 at 256.

wgmma path (fp16/bf16, sm_90a only): one TMA producer warpgroup and two or three
consumers of 64 query rows each, block_m = 128 or 192 (width 64). Head-dim widths are multiples
of 64 (one 128-byte swizzled TMA box per 64 columns). The key tile is one wgmma
N (64, 80 or 128); K/V stages are limited by the 227 KB of shared memory:
  head dim 64:     192 x 128, 2 stages (3 under a causal mask below 4096 keys).
  head dim 128:    128 x 128, 2 stages (32 KB Q + 4 x 32 KB K/V).
  head dim 192:    128 x 64, 2 stages.
  head dim 256:    128 x 80 with pingpong (64 KB Q + 4 x 40 KB K/V), 128 x 64 with
                   pingpong under a causal mask (WGMMA_CAUSAL_TILES); a 128-key
                   tile would need 64 + 128 O/S registers per thread plus P.
The table's entries are persistent at widths 64 (192 rows) and 128; up to 1024
queries and keys at width 128, WGMMA_SHORT_TILES replaces them (pingpong). Under a
causal mask from 4096 (width 64) or 8192 (width 128) queries or keys,
WGMMA_LONG_TILES launches one CTA per query block instead. A causal call of a persistent
variant runs its walk-table twin (KernelSpec.walk_table: the host lays the walk out,
cupyflash/_walk.py; bench/notes/wgmma_tiles.md, "The causal walk's last wave"). 16-bit
outputs leave through shared memory and TMA stores (the item's Q buffer holds O).
Measured on H100 against cuDNN in the same run (bench/notes/full_bench.md,
"Full bench v3.5"): 0.97-1.16 x at seqlen 4096 and 0.88-1.18 x at 16384 (d 64/128/256,
fp16 and bf16); 0.83-1.04 x at 1024, where the per-item start and end are a larger share of
each block's work (bench/notes/wgmma.md, "Per-item cost after the Q prefetch").

fp32 and fp64 tiles (split, fast, tf32, DMMA, SIMT): cupyflash/_fp_tiles.py.

"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass

# The float32/float64 tile tables live in their own file; re-exported here so callers
# keep importing every table from cupyflash._spec.
from ._fp_tiles import (  # noqa: F401
    WgmmaTiles,
    WGMMA_SPLIT_TILES,
    WGMMA_SPLIT_CANDIDATES,
    WGMMA_FAST_Q_WIDTHS,
    WGMMA_FAST_Q_CANDIDATES,
    WGMMA_FAST_CAUSAL_TILES,
    WGMMA_KV_ONCE_FAST,
    WGMMA_KV_ONCE_CANDIDATES,
    KV_ONCE_MIN_SEQLEN_K,
    WGMMA_TF32_TILES,
    WGMMA_TF32_CANDIDATES,
    WGMMA_CONVERT_TILES,
    WGMMA_CONVERT_AREA_BYTES,
    DMMA_ROWS_PER_M_TILE,
    DMMA_TILES,
    DMMA_CAUSAL_TILES,
    DMMA_SHORT_SEQLEN,
    DMMA_SHORT_TILES,
    DMMA_CANDIDATES,
    DMMA_PAD_QK,
    DMMA_PAD_V,
    SIMT_TILES,
)

# Head-dim template widths. A problem runs at the smallest width >= max(head_dim,
# head_dim_v); the padding columns are zero-filled in shared memory.
HEAD_DIM_BUCKETS: tuple[int, ...] = (32, 64, 96, 128, 160, 192, 224, 256)
MAX_HEAD_DIM = HEAD_DIM_BUCKETS[-1]

# mma.sync widths: the shared buckets plus 80 (10 chunks of 8 per row, five k16
# steps), which would otherwise run padded to 96 with 17 % of its products on
# zeros. The DMMA and SIMT kernels keep HEAD_DIM_BUCKETS, wgmma WGMMA_WIDTHS.
MMA_WIDTHS: tuple[int, ...] = (32, 64, 80, 96, 128, 160, 192, 224, 256)

WARP_SIZE = 32
MMA_ROWS_PER_WARP = 16
SIMT_BLOCK_N = 32
SMEM_PAD_ELEMS = 8  # mirrors kSmemPad in cuda_src/tile_io.h

# head-dim width -> (block_m, block_n, warps, m_tiles[, v_spread]) for the
# mma.sync kernel; each warp owns 16 * m_tiles query rows, so block_m = 16 *
# m_tiles * warps. v_spread (KernelSpec.v_spread): width 128 copies K and V
# through TileCopy with V's copies spread over 4 Q.K^T k-steps, +1.5-3 % over
# the default copies at every measured point (bench/notes/mma.md, "TileCopy at
# d128 and d256, measured").
MmaTiles = tuple[int, ...]
MMA_TILES: dict[int, MmaTiles] = {
    32: (128, 128, 4, 2),
    64: (128, 128, 4, 2),
    80: (128, 64, 4, 2),
    96: (128, 64, 4, 2),
    128: (128, 64, 4, 2, 4),
    160: (64, 64, 4, 1),
    192: (64, 32, 4, 1),
    224: (64, 32, 4, 1),
    256: (64, 64, 4, 1),
}
# What bench/tune_mma.py times per width (the table's entry among them); the
# offline test compiles every one, so a sweep never meets a compile error. All
# are spill-free under NVRTC 13.0 and 13.5 for sm_80 and sm_90a (checked with
# bench/nvrtc_compat.py); 128 x 80 at width 96 sits at 255 registers and needs
# the epilogue's re-read of its first row (kRereadRow0) for that.
# An entry is (block_m, block_n, warps, m_tiles) or, for a copy order other than
# the shipped one, (block_m, block_n, warps, m_tiles, v_spread) (KernelSpec.v_spread).
MMA_CANDIDATES: dict[int, tuple[MmaTiles, ...]] = {
    64: ((128, 64, 4, 2), (128, 96, 4, 2), (128, 128, 4, 2)),
    80: ((128, 64, 4, 2), (128, 80, 4, 2), (64, 128, 4, 1), (128, 128, 8, 1)),
    # 128 x 96 and 64 x 64 at width 80 left the list when the next K went out before the
    # softmax (flash_fwd_mma.cuh, kNextKFirst): they spilled under NVRTC 13.5, and neither was
    # the best candidate at any measured point (bench/notes/mma.md, "Next K before the softmax").
    # 128 x 96 and 64 x 128 left the list: once the softmax's row max ran as four chains
    # (softmax.h) they spilled (4 B for sm_80 under NVRTC 13.0 at 255 registers; 20 B for sm_90a
    # under 13.5), and 128 x 64 was within 1 % of the best candidate at every point (bench/notes/mma.md,
    # "mma d80/d96 measured").
    96: ((128, 64, 4, 2), (128, 32, 4, 2), (64, 64, 4, 1), (128, 64, 8, 1), (128, 128, 8, 1)),
    # 128 x 80 at width 96 left with the exponentials after O's rescale (kExpAfterRescale): 4 B
    # spilled on sm_90a under NVRTC 13.0 (bench/nvrtc_compat.py); it was never the best candidate.
    128: ((128, 64, 4, 2), (128, 48, 4, 2), (128, 32, 4, 2), (128, 64, 4, 2, 4)),
    256: ((64, 64, 4, 1), (64, 32, 4, 1), (128, 32, 8, 1), (128, 64, 8, 1),  # 128 x 64, 8 warps: FA2's at 256
          # The copies' row test against immediates, V's copies in one block (1) or spread over
          # the first 4 or all 16 k16 steps of Q.K^T (bench/notes/mma.md, "ldmatrix and HMMA
          # order at d256"). At 128 with 4 steps: 1 and 8 spill at 255 registers (NVRTC 13.0).
          (64, 64, 4, 1, 1), (64, 64, 4, 1, 4), (64, 64, 4, 1, 16)),
}

# wgmma path: head-dim width (a multiple of the 64-column TMA box) ->
# (block_m, block_n, stages, pingpong, persistent). block_m is 64 query rows per
# consumer warpgroup: 128 (two) or 192 (three, small head dims: FA3's choice at 64);
# the CTA adds one producer warpgroup.
WGMMA_ROWS_PER_WARPGROUP = 64
WGMMA_BOX_COLS = 64
WGMMA_WIDTHS: tuple[int, ...] = (64, 128, 192, 256)
# Chosen from bench/tune_wgmma.py on an H100 (bench/notes/wgmma.md, "wgmma v3"): the
# best or within noise of the best over seqlen 1024/4096/16384, causal and not.
# Head dim 192 has not been swept and keeps v2's configuration.
WGMMA_TILES: dict[int, WgmmaTiles] = {
    64: (192, 128, 2, False, True),
    128: (128, 128, 2, False, True),
    192: (128, 64, 2, False, False),
    256: (128, 80, 2, True, False),
}
# Under a causal mask, where they differ from WGMMA_TILES (above the short-problem
# threshold). Width 256: 64-key tiles (fewer masked keys on the diagonal), with
# pingpong. From the GPU-time sweep of the sixth session (bench/notes/wgmma.md,
# "wgmma tiles re-swept at GPU time"): 80-key tiles with pingpong were best without
# a mask (+0.3-1.7 % over 64 with pingpong, +1-3 % over the old entry); under
# the mask 64 keys with pingpong (+1-2 % over the old entry, 80 keys 0-3 % behind).
# Width 64: 192 rows, persistent (sixteenth session, bench/notes/wgmma_tiles.md, "Causal tiles by
# length at widths 64 and 128"), with 4 K/V stages since the P.V wait moved after the row max.
# Kernel-only at causal s1024 on eight H100s: +7-9 % on the four where 3 stages ran in their slow mode,
# -0.6 to -1.1 % where both ran fast, mean 324.4 -> 335.4 TFLOP/s (bench/notes/wgmma_softmax.md,
# "Four K/V stages at width 64, again").
WGMMA_CAUSAL_TILES: dict[int, WgmmaTiles] = {
    64: (192, 128, 4, False, True),
    256: (128, 64, 2, True, False),
}
# Long causal problems (max(seqlen_q, seqlen_k) >= the entry's bound), where one CTA
# per query block beats the persistent walk: (width, causal) -> (bound, tiles). Same
# notes section as above.
WGMMA_LONG_TILES: dict[tuple[int, bool], tuple[int, WgmmaTiles]] = {
    (64, True): (4096, (192, 128, 2, False, False)),
    (128, True): (8192, (128, 128, 2, False, False)),
}
# Short problems, where a query block has at most 8 key tiles (max(seqlen_q,
# seqlen_k) <= WGMMA_SHORT_SEQLEN): (width, causal) -> tiles. From the interleaved
# sweep at seqlen 512/1024/2048 (bench/notes/wgmma.md, "wgmma tiles for short
# sequences"): at width 128 pingpong gained 2-5 % at 512 and 1024, and nothing at
# 2048. Width 64 under the mask keeps WGMMA_CAUSAL_TILES's 192-row tile: its three consumer
# warpgroups taking turns (three-way pingpong) had gained 1-4 % at causal s1024, but once the
# turnless tile's warpgroups rotate their 64-row chunks and pass the key tiles past their own
# diagonal (its walk-table twin, flash_fwd_wgmma.cuh's kRotate), that tile led the turns by
# +0.3 to +2.4 % at s1024 and +2 to +3.7 % at s512 (bench/notes/wgmma_tiles_cont.md, "Rotated chunks").
WGMMA_SHORT_SEQLEN = 1024
WGMMA_SHORT_TILES: dict[tuple[int, bool], WgmmaTiles] = {
    (128, False): (128, 128, 2, True, True),
    (128, True): (128, 128, 2, True, True),
}
# What bench/tune_wgmma.py times per width (the table's entry among them); the
# offline test compiles every one, so a sweep never meets a compile error.
WGMMA_CANDIDATES: dict[int, tuple[WgmmaTiles, ...]] = {
    64: ((128, 128, 2, False, False), (128, 128, 2, True, False), (128, 128, 2, False, True),
         (128, 128, 2, True, True), (128, 128, 3, True, True), (192, 128, 2, False, False),
         (192, 128, 2, False, True), (192, 128, 3, False, False), (192, 128, 3, False, True),
         (192, 128, 3, True, True), (192, 128, 4, False, True)),
    128: ((128, 128, 2, False, False), (128, 128, 2, True, False), (128, 128, 2, False, True),
          (128, 128, 2, True, True), (128, 176, 2, False, False), (128, 176, 2, True, False),
          (128, 176, 2, True, True)),  # 176: FA3's non-causal key tile at this width
    192: ((128, 64, 2, False, False), (128, 64, 2, True, True)),
    256: ((128, 64, 2, False, False), (128, 64, 2, True, False), (128, 64, 2, False, True),
          (128, 64, 2, True, True), (128, 80, 2, False, False), (128, 80, 2, True, False)),  # 80: FA3's, no mask
}
# The persistent tiles of widths 64 and 128 compiled with the split tail
# (KernelSpec.split_tail), dispatched without a mask from this many keys: its code cost
# the kernels 1-2.5 % on causal rows, where it is never taken, and at width 64 it lost
# 4-6 % at s512-1024, so it is a variant of its own (bench/notes/wgmma_tiles.md,
# "The split tail").
WGMMA_SPLIT_TAIL_MIN_SEQLEN_K = 4096
WGMMA_SPLIT_TAIL_WIDTHS = (64, 128)
# Persistent CTAs per SM: one, the shared memory and 384 threads of a CTA fill it.
WGMMA_CTAS_PER_SM = 1
WGMMA_ARCH = 90
WGMMA_MAX_SMEM_BYTES = 227 * 1024  # dynamic shared memory per CTA on sm_90 (kMaxSmemBytes)

MMA_DTYPES = ("float16", "bfloat16")
SIMT_DTYPES = ("float32", "float64")
SUPPORTED_DTYPES = MMA_DTYPES + SIMT_DTYPES

_ELEM_TAG = {"float16": "cupyflash::Half", "bfloat16": "cupyflash::BFloat16"}
_C_TYPE = {"float32": "float", "float64": "double"}
_SHORT = {"float16": "fp16", "bfloat16": "bf16", "float32": "fp32", "float64": "fp64"}
ITEMSIZE = {"float16": 2, "bfloat16": 2, "float32": 4, "float64": 8}


def _smallest_width(widths: tuple[int, ...], head_dim: int, head_dim_v: int) -> int:
    need = max(head_dim, head_dim_v)
    for width in widths:
        if width >= need:
            return width
    raise ValueError(f"head dim {need} exceeds the maximum {MAX_HEAD_DIM}")


def head_dim_bucket(head_dim: int, head_dim_v: int) -> int:
    """The kernel width that serves (head_dim, head_dim_v)."""
    return _smallest_width(HEAD_DIM_BUCKETS, head_dim, head_dim_v)


def mma_width(head_dim: int, head_dim_v: int) -> int:
    """The mma.sync kernel width that serves (head_dim, head_dim_v)."""
    return _smallest_width(MMA_WIDTHS, head_dim, head_dim_v)


def wgmma_width(head_dim: int, head_dim_v: int) -> int:
    """The wgmma kernel width that serves (head_dim, head_dim_v): a multiple of 64."""
    return _smallest_width(WGMMA_WIDTHS, head_dim, head_dim_v)


@dataclass(frozen=True)
class KernelSpec:
    """One compiled kernel instantiation."""

    family: str  # "wgmma" (sm_90a), "mma" (tensor cores, sm_80+), "dmma" (fp64 tensor cores, sm_80+),
    #              "simt" (CUDA cores, fp32/fp64)
    dtype: str
    head_dim: int  # template width (a bucket, or one of MMA_WIDTHS / WGMMA_WIDTHS), not the problem's head_dim
    block_m: int
    block_n: int
    warps: int
    rows_per_warp: int
    stages: int = 0  # K/V shared-memory stages (wgmma only)
    pingpong: bool = False  # consumer warpgroups take turns issuing wgmma (wgmma only)
    persistent: bool = False  # one CTA per SM walking the work items (wgmma only)
    # float32 on wgmma: 3 = fp16 hi + lo, three products (fp32 accuracy); 1 = one
    # rescaled fp16 copy (the older precision="fast"); 0 = 16-bit input, or tf32
    fp32_terms: int = 0
    # float32 on wgmma read as tf32 (precision="tf32"): Q and K as they are, V^T
    # from the cupyflash._vt pre-pass; fp32_terms is 0
    tf32: bool = False
    # float32 on wgmma with fp32_terms > 0, converted to fp16 inside the kernel
    # (cuda_src/wgmma_convert.h) instead of by the pre-pass: the slots of its fp32
    # staging ring; 0 = the pre-pass
    convert_stages: int = 0
    # float32 (fp32_terms 3 or 1) with Q converted by the consumer warpgroups
    # themselves (cuda_src/q_convert.h): the pre-pass converts k and v only, the
    # kernel reads the caller's fp32 q (bench/notes/fp32_in_kernel.md, "Q converted
    # by the consumers"). Dispatched for both at widths 64 and 128.
    q_in_kernel: bool = False
    # ... and k and v too, each key tile once per call by the first CTA that claims it
    # (cuda_src/kv_once.h): no pre-pass. Head dims equal to the width (_dispatch.kv_once_fits)
    kv_once: bool = False
    # mma: the K/V copy order (kVSpread in cuda_src/flash_fwd_mma.cuh). 0 = the shipped
    # one; n >= 1 = the copies' row test against immediates (fewer registers live across
    # the key loop) and V's copies spread over the first n k16 steps of Q.K^T
    v_spread: int = 0
    # wgmma, persistent 16-bit tiles: compiled with the split tail (cuda_src/block_order.h)
    split_tail: bool = False
    # wgmma, persistent: the walk read from a table the host lays out (cupyflash/_walk.py,
    # FlashParams.walk_table; kTableWalk in cuda_src/block_order.h): the twin of a variant
    # that causal calls run (_dispatch.plan_for_spec), see ``takes_walk_table``
    walk_table: bool = False

    @property
    def consumer_warpgroups(self) -> int:
        """wgmma: warpgroups that own query rows (the CTA adds one producer)."""
        return self.block_m // WGMMA_ROWS_PER_WARPGROUP

    @property
    def takes_walk_table(self) -> bool:
        """A causal call of this variant runs its walk-table twin (``walk_table``): persistent
        wgmma without a split tail or conversion stages (cuda_src/block_order.h)."""
        return self.family == "wgmma" and self.persistent and not self.split_tail and not self.convert_stages

    @property
    def rotates_chunks(self) -> bool:
        """The kernel's consumer warpgroups rotate the block's 64-row chunks from item to item
        and pass the key tiles past their own chunk's diagonal (flash_fwd_wgmma.cuh's kRotate):
        the walk-table twins of the 192-row tiles without turns, 16-bit or fp32 fast with q
        converted by the consumers (bench/notes/wgmma_tiles_cont.md, "Rotated chunks")."""
        fp32_ok = self.dtype in MMA_DTYPES or (self.q_in_kernel and self.fp32_terms == 1 and not self.kv_once)
        return self.walk_table and self.consumer_warpgroups == 3 and not self.pingpong and fp32_ok

    @property
    def exps_after_pv_wait(self) -> bool:
        """The steady loop waits for the previous tile's P.V between the row max and the
        exponentials instead of after the whole softmax (flash_fwd_wgmma.cuh's kExpsAfterWait):
        the 16-bit rotated-chunk twins, where that measured +2-4 % at d64 causal s1024-2048
        (bench/notes/wgmma_softmax.md, "The P.V wait between the row max and the exponentials")."""
        return self.rotates_chunks and self.dtype in MMA_DTYPES

    @property
    def crosses_items(self) -> bool:
        """The kernel carries each item's last P.V into the next item (flash_fwd_wgmma.cuh's
        kCrossItem): persistent 128-row wgmma tiles of widths and key tiles up to 128, not split.
        At the item boundary that P.V goes out ahead of the next item's first Q.K^T, and the
        finished item's epilogue runs while the Q.K^T computes (bench/notes/wgmma_tiles_cont.md,
        "The epilogue under the first Q.K^T")."""
        return (self.family == "wgmma" and self.persistent and self.consumer_warpgroups == 2 and self.head_dim <= 128
                and self.block_n <= 128 and not self.split)

    @property
    def walks_split_tail(self) -> bool:
        """The kernel holds the split tail's code (its kSplitTail): persistent 16-bit wgmma
        built for it (``split_tail``)."""
        return self.family == "wgmma" and self.persistent and self.dtype in MMA_DTYPES and self.split_tail

    @property
    def split(self) -> bool:
        """Operands arrive as hi and lo fp16 copies (fp32_terms == 3)."""
        return self.fp32_terms == 3

    @property
    def operand_bytes(self) -> int:
        """wgmma: bytes per operand element in shared memory (tf32: 4; fp16 copies: 2)."""
        return 4 if self.tf32 else 2

    @property
    def threads(self) -> int:
        return self.warps * WARP_SIZE

    @property
    def entry_file(self) -> str:
        """The cuda_src translation unit that holds this family."""
        return "flash_fwd_sm90.cu" if self.family == "wgmma" else "flash_fwd.cu"

    @property
    def archs(self) -> tuple[str, ...]:
        """The targets this variant is built for (sm_90a code runs on nothing else)."""
        return ("sm_90a",) if self.family == "wgmma" else ("sm_80", "sm_90a")

    @property
    def arch_options(self) -> tuple[str, ...]:
        """Extra NVRTC options at run time: wgmma and setmaxnreg need the sm_90a target."""
        return ("-arch=sm_90a",) if self.family == "wgmma" else ()

    @property
    def name_expression(self) -> str:
        """The C++ template instantiation handed to NVRTC."""
        if self.family == "wgmma":
            elem = "cupyflash::Tf32" if self.tf32 else _ELEM_TAG["float16" if self.fp32_terms else self.dtype]
            return (f"cupyflash::flash_fwd_wgmma<{elem}, {self.head_dim}, "
                    f"{self.block_n}, {self.stages}, {str(self.pingpong).lower()}, "
                    f"{str(self.persistent).lower()}, {self.fp32_terms}, {self.consumer_warpgroups}"
                    f"{''.join(self._wgmma_tail_args())}>")
        if self.family == "mma":
            return (f"cupyflash::flash_fwd_mma<{_ELEM_TAG[self.dtype]}, {self.head_dim}, "
                    f"{self.block_m}, {self.block_n}, {self.warps}, {self.rows_per_warp // MMA_ROWS_PER_WARP}"
                    f"{f', {self.v_spread}' if self.v_spread else ''}>")
        if self.family == "dmma":
            return (f"cupyflash::flash_fwd_dmma<{self.head_dim}, {self.block_m}, {self.block_n}, {self.warps}, "
                    f"{self.rows_per_warp // DMMA_ROWS_PER_M_TILE}>")
        return (f"cupyflash::flash_fwd_simt<{_C_TYPE[self.dtype]}, {self.head_dim}, "
                f"{self.warps}, {self.rows_per_warp}>")

    def _wgmma_tail_args(self) -> list[str]:
        """The trailing template arguments (convert stages, q in kernel, kv once, split
        tail, walk table) up to the last one that differs from its default."""
        args = [str(self.convert_stages), str(self.q_in_kernel).lower(), str(self.kv_once).lower(),
                str(self.split_tail).lower(), str(self.walk_table).lower()]
        used = max((i + 1 for i, on in enumerate((self.convert_stages, self.q_in_kernel, self.kv_once,
                                                   self.split_tail, self.walk_table)) if on), default=0)
        return [f", {a}" for a in args[:used]]

    @property
    def variant_name(self) -> str:
        """A readable name for logs, explain() and compile reports."""
        if self.family == "wgmma":
            terms = "tf32" if self.tf32 else f"x{self.fp32_terms}" if self.fp32_terms else ""
            return (f"flash_fwd_wgmma_{_SHORT[self.dtype]}{terms}"
                    f"_hdim{self.head_dim}"
                    f"_bm{self.block_m}_bn{self.block_n}_st{self.stages}{'_pp' if self.pingpong else ''}"
                    f"{'_persist' if self.persistent else ''}"
                    f"{f'_cvt{self.convert_stages}' if self.convert_stages else ''}"
                    f"{'_qk' if self.q_in_kernel else ''}{'_kv1' if self.kv_once else ''}{'_sk' if self.split_tail else ''}"
                    f"{'_wt' if self.walk_table else ''}")
        return (f"flash_fwd_{self.family}_{_SHORT[self.dtype]}_hdim{self.head_dim}"
                f"_bm{self.block_m}_bn{self.block_n}_w{self.warps}r{self.rows_per_warp}"
                f"{f'_vs{self.v_spread}' if self.v_spread else ''}")

    @functools.cached_property  # read on every launch; the spec is frozen
    def smem_bytes(self) -> int:
        """Dynamic shared memory; mirrors kSmemBytes in the kernel traits."""
        if self.family == "wgmma":
            fixed, q_bytes = self._wgmma_smem_parts()
            return fixed + self.q_buffers * q_bytes
        if self.family == "mma":
            pitch = self.head_dim + SMEM_PAD_ELEMS
            return (self.block_m + 2 * self.block_n) * pitch * ITEMSIZE[self.dtype]
        d = self.head_dim
        if self.family == "dmma":
            return ((self.block_m + self.block_n) * (d + DMMA_PAD_QK) + self.block_n * (d + DMMA_PAD_V)) * 8
        return (self.block_m * d + self.block_n * (d + 1) + self.block_n * d) * ITEMSIZE[self.dtype]

    @property
    def q_buffers(self) -> int:
        """wgmma: Q buffers (kQStages): two where they fit, so that a persistent CTA
        loads the next item's Q while the current one still runs."""
        if self.family != "wgmma" or self.q_in_kernel:  # its consumers fill Q when they start an item
            return 1
        fixed, q_bytes = self._wgmma_smem_parts()
        return 2 if fixed + 2 * q_bytes <= WGMMA_MAX_SMEM_BYTES else 1

    def _wgmma_smem_parts(self) -> tuple[int, int]:
        """(bytes other than Q, bytes of one Q buffer); mirrors the kernel traits."""
        fixed, q_bytes, q_stage = self._wgmma_smem_layout()
        return fixed + q_stage, q_bytes

    @property
    def q_staged(self) -> bool:
        """q_in_kernel: TMA stages each item's fp32 q rows in shared memory for the consumers
        (kQStaged) where they fit; otherwise the consumers read q from global memory."""
        return self.family == "wgmma" and self._wgmma_smem_layout()[2] > 0

    def _wgmma_smem_layout(self) -> tuple[int, int, int]:
        """(bytes other than Q and its staging, bytes of one Q buffer, bytes of Q's fp32 staging)."""
        # one row of a tile: 128-byte boxes (64 16-bit or 32 tf32 columns; the head-dim
        # width is a multiple of 64), stored twice (hi, lo) when split
        row_bytes = (2 if self.split else 1) * self.head_dim * self.operand_bytes
        barriers = 256  # Q full/empty per Q buffer + K/V full/empty per stage, 8 bytes each (kBarrierBytes)
        scratch = 4 * self.consumer_warpgroups * 128  # 4 bytes per consumer thread (kScratchBytes)
        align = 1024  # slack to align the base to 1024 bytes
        convert = 0
        if self.convert_stages:  # fp32 staging slots (a Q unit of 64 rows or a key tile) + the shift words
            unit_rows = max(WGMMA_ROWS_PER_WARPGROUP, self.block_n)
            convert = self.convert_stages * unit_rows * self.head_dim * 4 + WGMMA_CONVERT_AREA_BYTES
        if self.kv_once:  # one fp32 key tile staged (kKVOnceStageBytes) + the converters' words
            convert = self.block_n * self.head_dim * 4 + WGMMA_CONVERT_AREA_BYTES
        fixed = row_bytes * 2 * self.stages * self.block_n + convert + barriers + scratch + align
        q_bytes = row_bytes * self.block_m
        q_stage = self.block_m * self.head_dim * 4  # the item's fp32 q rows (kQStageBytes), where they fit
        staged = self.q_in_kernel and not self.kv_once and fixed + q_bytes + q_stage <= WGMMA_MAX_SMEM_BYTES
        return fixed, q_bytes, q_stage if staged else 0

def mma_spec(dtype: str, width: int, tiles: MmaTiles | None = None) -> KernelSpec:
    """The mma.sync variant for ``width``: from the tile table, or ``tiles`` (for tuning):
    (block_m, block_n, warps, m_tiles[, v_spread])."""
    block_m, block_n, warps, m_tiles, *rest = tiles or MMA_TILES[width]
    if block_m != MMA_ROWS_PER_WARP * m_tiles * warps:
        raise ValueError(f"block_m {block_m} != 16 * m_tiles {m_tiles} * warps {warps}")
    if len(rest) > 1:
        raise ValueError(f"mma tiles take 4 or 5 entries, got {tiles}")
    return KernelSpec("mma", dtype, width, block_m, block_n, warps, MMA_ROWS_PER_WARP * m_tiles,
                      v_spread=rest[0] if rest else 0)


def _wgmma(dtype: str, width: int, tiles: WgmmaTiles, fp32_terms: int = 0) -> KernelSpec:
    block_m, block_n, stages, pingpong, persistent = tiles
    warps = 4 * (block_m // WGMMA_ROWS_PER_WARPGROUP + 1)  # consumers + the producer warpgroup
    return KernelSpec("wgmma", dtype, width, block_m, block_n, warps, 16, stages, pingpong, persistent, fp32_terms)


def wgmma_spec(dtype: str, width: int, tiles: WgmmaTiles | None = None) -> KernelSpec:
    """The wgmma variant for ``width`` (a multiple of 64): from the table, or
    ``tiles`` = (block_m, block_n, stages, pingpong, persistent) (for tuning)."""
    return _wgmma(dtype, width, tiles or WGMMA_TILES[width])


def wgmma_fp32_spec(width: int, terms: int, tiles: WgmmaTiles | None = None) -> KernelSpec:
    """The float32 wgmma variant for ``width``: ``terms`` 3 (hi + lo, widths 64 and
    128) or 1 (one rescaled fp16 copy, every width, the fp16 kernel's tiles)."""
    return _wgmma("float32", width, tiles or (WGMMA_SPLIT_TILES if terms == 3 else WGMMA_TILES)[width], terms)


def wgmma_q_in_kernel_spec(width: int, tiles: WgmmaTiles | None = None, terms: int = 3) -> KernelSpec:
    """The float32 variant of ``terms`` (3: split, 1: precision="fast") whose consumers
    convert Q themselves (KernelSpec.q_in_kernel), for ``width`` 64 or 128."""
    return dataclasses.replace(wgmma_fp32_spec(width, terms, tiles), q_in_kernel=True)


def wgmma_kv_once_spec(width: int, tiles: WgmmaTiles | None = None, terms: int = 1) -> KernelSpec:
    """The float32 variant of ``terms`` that converts q in its consumers and k, v once
    per call in its producer warpgroup (KernelSpec.kv_once; no pre-pass), for ``width``
    64 or 128 (shipped: precision="fast" at WGMMA_KV_ONCE_FAST's widths and tiles)."""
    if tiles is None and terms == 1:
        tiles = WGMMA_KV_ONCE_FAST.get(width)
    return dataclasses.replace(wgmma_q_in_kernel_spec(width, tiles, terms), kv_once=True)


def wgmma_convert_spec(width: int, tiles: WgmmaTiles | None = None, stages: int | None = None) -> KernelSpec:
    """The one-term float32 wgmma variant (precision="fast") that converts q, k, v
    inside the kernel (no pre-pass), for ``width`` 64 or 128."""
    t, s = WGMMA_CONVERT_TILES[width]
    return dataclasses.replace(_wgmma("float32", width, tiles or t, 1), convert_stages=stages or s)


def wgmma_tf32_spec(width: int, tiles: WgmmaTiles | None = None) -> KernelSpec:
    """The tf32 wgmma variant (float32, precision="fast") for ``width`` (64 or 128)."""
    block_m, block_n, stages, pingpong, persistent = tiles or WGMMA_TF32_TILES[width]
    warps = 4 * (block_m // WGMMA_ROWS_PER_WARPGROUP + 1)
    return KernelSpec("wgmma", "float32", width, block_m, block_n, warps, 16, stages, pingpong, persistent, 0, True)


def candidate_specs() -> list[KernelSpec]:
    """Every variant a tuning sweep may time (a superset of the shipped ones)."""
    specs = shipped_specs()
    specs += [wgmma_spec(dt, w, t) for dt in MMA_DTYPES for w, ts in WGMMA_CANDIDATES.items() for t in ts
              if wgmma_spec(dt, w, t) not in specs]
    specs += [wgmma_fp32_spec(w, 3, t) for w, ts in WGMMA_SPLIT_CANDIDATES.items() for t in ts
              if wgmma_fp32_spec(w, 3, t) not in specs]
    specs += [wgmma_tf32_spec(w, t) for w, ts in WGMMA_TF32_CANDIDATES.items() for t in ts
              if wgmma_tf32_spec(w, t) not in specs]
    specs += [wgmma_convert_spec(w) for w in WGMMA_CONVERT_TILES]
    specs += [wgmma_q_in_kernel_spec(w, t) for w, ts in WGMMA_SPLIT_CANDIDATES.items() for t in ts]
    specs += [wgmma_q_in_kernel_spec(w, t, 1) for w, ts in WGMMA_FAST_Q_CANDIDATES.items() for t in ts
              if wgmma_q_in_kernel_spec(w, t, 1) not in specs]
    specs += [wgmma_kv_once_spec(w, t) for w, ts in WGMMA_KV_ONCE_CANDIDATES.items() for t in ts
              if wgmma_kv_once_spec(w, t) not in specs]
    specs += [wgmma_fp32_spec(w, 1) for w in WGMMA_FAST_Q_WIDTHS]  # q from the pre-pass, the A/B's baseline
    specs += [mma_spec(dt, w, t) for dt in MMA_DTYPES for w, ts in MMA_CANDIDATES.items() for t in ts
              if mma_spec(dt, w, t) not in specs]
    specs += [dmma_spec(w, t) for w, ts in DMMA_CANDIDATES.items() for t in ts if dmma_spec(w, t) not in specs]
    return specs


def dmma_spec(width: int, tiles: tuple[int, int, int, int] | None = None) -> KernelSpec:
    """The fp64 DMMA variant for ``width``: from the tile table, or ``tiles`` (for tuning)."""
    block_m, block_n, warps, m_tiles = tiles or DMMA_TILES[width]
    if block_m != DMMA_ROWS_PER_M_TILE * m_tiles * warps:
        raise ValueError(f"block_m {block_m} != 8 * m_tiles {m_tiles} * warps {warps}")
    return KernelSpec("dmma", "float64", width, block_m, block_n, warps, DMMA_ROWS_PER_M_TILE * m_tiles)


def simt_spec(dtype: str, width: int) -> KernelSpec:
    warps, rows = SIMT_TILES[dtype]
    return KernelSpec("simt", dtype, width, warps * rows, SIMT_BLOCK_N, warps, rows)


def shipped_specs() -> list[KernelSpec]:
    """Every variant dispatch can choose: CI compiles each one offline."""
    specs = [wgmma_spec(dt, w) for dt in MMA_DTYPES for w in WGMMA_WIDTHS]
    for dt in MMA_DTYPES:
        for (w, _), t in [*WGMMA_SHORT_TILES.items(),
                          *(((w, True), t) for w, t in WGMMA_CAUSAL_TILES.items()),
                          *((k, t) for k, (_, t) in WGMMA_LONG_TILES.items())]:
            if wgmma_spec(dt, w, t) not in specs:
                specs.append(wgmma_spec(dt, w, t))
    specs += [dataclasses.replace(wgmma_spec(dt, w), split_tail=True) for dt in MMA_DTYPES for w in WGMMA_SPLIT_TAIL_WIDTHS]
    specs += [wgmma_q_in_kernel_spec(w) for w in WGMMA_SPLIT_TILES]
    specs += [wgmma_q_in_kernel_spec(w, None, 1) for w in WGMMA_FAST_Q_WIDTHS]
    specs += [wgmma_q_in_kernel_spec(w, t, 1) for w, t in WGMMA_FAST_CAUSAL_TILES.items()]
    specs += [wgmma_kv_once_spec(w) for w in WGMMA_KV_ONCE_FAST]
    specs += [wgmma_fp32_spec(w, 1) for w in WGMMA_WIDTHS if w not in WGMMA_FAST_Q_WIDTHS]
    specs += [wgmma_tf32_spec(w) for w in WGMMA_TF32_TILES]
    specs += [dataclasses.replace(s, walk_table=True) for s in specs if s.takes_walk_table]  # their causal twins
    specs += [mma_spec(dt, w) for dt in MMA_DTYPES for w in MMA_WIDTHS]
    specs += [dmma_spec(w) for w in HEAD_DIM_BUCKETS]
    specs += [dmma_spec(w, t) for w, t in [*DMMA_CAUSAL_TILES.items(), *DMMA_SHORT_TILES.items()]
              if dmma_spec(w, t) not in specs]
    specs += [simt_spec(dt, w) for dt in SIMT_DTYPES for w in HEAD_DIM_BUCKETS]
    return specs
