"""Tile tables of the float32 and float64 variants: split-precision and fast fp32 on
wgmma (sm_90a), fp64 on the DMMA tensor cores, and the exact SIMT kernels. Data only;
cupyflash._spec builds the KernelSpecs from them and re-exports every name. Why each
entry is what it is sits beside it; the measured numbers are in bench/notes/
(fp32_fp64.md, fp32_in_kernel.md), indexed by bench/NOTES.md.

DMMA path (fp64 on the fp64 tensor cores, mma.sync m8n8k4, sm_80+): each warp
owns 8 * m_tiles query rows. Registers hold the O accumulator (m_tiles *
head_dim / 4 doubles per thread) and one score tile (m_tiles * block_n / 4);
shared memory holds Q and one K and one V tile at 8 bytes per element. Swept on
an H100 against torch's math backend in fp64 (bench/notes/fp32_fp64.md,
"fp64 on DMMA"):
  head dim <= 64:  64 x 64, 4 warps of 16 rows (m_tiles = 2): each K/V fragment
                   feeds two DMMA (the fp64 tensor cores take a 256-byte operand
                   every 2 clocks per SM, the banks give 128 bytes a clock).
                   1.8-5.1 x math, the best or within 5 % of it.
  head dim 96-128: 128 x 32, 8 warps of 16 rows: the most fragment reuse and two
                   warps per scheduler; 1.2-2.3 x math (best on full rows, within
                   20 % of 32 x 32 on causal ones).
  head dim > 128:  64 x 16, 8 warps of 8 rows: O alone is 64 doubles at 256, so
                   one m8 tile per warp; 8 warps hide the DMMA latency that 4 do
                   not. 0.89-0.94 x math on full rows at 256 (cuBLAS's DGEMM at
                   k = 256 is at its best), 1.4-2.0 x causal.

SIMT path (fp32/fp64 exact): 8 warps, each owning rows_per_warp query rows;
keys stream 32 at a time (one per lane).
"""

from __future__ import annotations

# A wgmma variant's tiles: (block_m, block_n, stages, pingpong, persistent); the
# fp16/bf16 tables in cupyflash._spec use it too.
WgmmaTiles = tuple[int, int, int, bool, bool]

# Split-precision fp32 (Q, K, V as fp16 hi + lo; bench/notes/fp32_fp64.md, "fp32 on
# tensor cores"): every operand tile is stored twice, so the tiles shrink to fit
# 227 KB: width 128 takes 64-key tiles (64 KB Q + 2 stages x 64 KB K/V). Widths
# above 128 would not fit two stages and are served by the exact SIMT kernel.
WGMMA_SPLIT_TILES: dict[int, WgmmaTiles] = {
    64: (128, 64, 2, False, False),  # 128-key tiles spill: S, P hi+lo, O and the per-tile P.V
    128: (128, 64, 2, False, False),
}
# What bench/tune_split.py times per width (the table's entry first); the offline
# test compiles every one. Persistent at 128 spills 16 bytes (NVRTC 13.0).
WGMMA_SPLIT_CANDIDATES: dict[int, tuple[WgmmaTiles, ...]] = {
    64: ((128, 64, 2, False, False), (128, 64, 2, False, True), (128, 64, 2, True, False),
         (128, 64, 3, False, True)),
    128: ((128, 64, 2, False, False), (128, 64, 2, True, False)),
}
# precision="fast" with Q converted by the consumer warpgroups (q_in_kernel, one
# term): the pre-pass then reads and writes k and v only, two thirds of its bytes;
# the consumers hold their 64 query rows in registers while converting (32 per
# thread at width 64, 64 at 128). Dispatched at these widths on WGMMA_TILES: +4-11 %
# on whole calls over q from the pre-pass, and no candidate beat the table's tiles by
# more than 1.5 % (bench/tune_split.py --fast, H100; bench/notes/fp32_in_kernel.md,
# "Q converted by the consumers, one term"). Wider heads keep q in the pre-pass.
WGMMA_FAST_Q_WIDTHS: tuple[int, ...] = (64, 128)
# precision="fast" under a causal mask at width 64: three K/V stages, as the 16-bit causal
# table has them (the padding rows of 192-row blocks move before row 0 either way:
# cupyflash._params.q_row_shift). bench/tune_split.py --fast, H100: +2.3 % at causal
# s1024, +1.3 % at s2048 over two stages (bench/notes/fp32_kv_once.md, "The fast d64
# causal rows: row shift and three stages").
WGMMA_FAST_CAUSAL_TILES: dict[int, WgmmaTiles] = {64: (192, 128, 3, False, True)}
# What bench/tune_split.py --fast times per width (the table's entry first): the
# ones that came within 1.5 % of it somewhere in the first sweep (device run 1 of the
# eleventh session; the four others trailed by 3-10 % and were dropped, each
# candidate costs CI two offline compiles).
WGMMA_FAST_Q_CANDIDATES: dict[int, tuple[WgmmaTiles, ...]] = {
    64: ((192, 128, 2, False, True), (128, 128, 3, True, True), (128, 128, 2, False, True),
         (192, 128, 3, False, True)),
    128: ((128, 128, 2, False, True), (128, 128, 2, True, True), (128, 128, 2, False, False)),
}
# K and V converted once per call inside the kernel (KernelSpec.kv_once; cuda_src/kv_once.h),
# precision="fast", width 128, head dims of exactly 128, the q-in-kernel tiles: +8-12 %
# over the pre-pass for k and v from seqlen 1024 (bench/notes/fp32_kv_once.md, "K and V
# converted once per call"), +2.4-3.0 % under a causal mask at 1024 (two sessions; "kv-once
# at causal seqlen 1024"). The split lost and spilled: not kept. Width 64 (128-row tiles, spill-free
# since) wins only rows that meet their target either way ("The fast d64 causal rows: row
# shift and three stages"): not dispatched. Below 1024 not measured.
WGMMA_KV_ONCE_FAST: dict[int, WgmmaTiles] = {128: (128, 128, 2, False, True)}
KV_ONCE_MIN_SEQLEN_K = 1024
# What bench/tune_split.py --kv-once --fast times per width (besides the q-in-kernel tiles);
# the offline test compiles every one. Width 64's 192-row tiles spill with kv-once (the
# converters' walk state at the producer's registers), its 128-row ones do not.
WGMMA_KV_ONCE_CANDIDATES: dict[int, tuple[WgmmaTiles, ...]] = {
    64: ((128, 128, 2, False, True), (128, 128, 2, True, True)),
    128: ((128, 128, 2, False, True),),
}
# tf32 (precision="fast" for float32: Q and K read in place (TMA rounds them to tf32), V^T from a small
# pre-pass, tf32 products; cuda_src/wgmma_traits.h). Operand tiles take twice the
# bytes of fp16 ones: width 128 with 128-row query blocks holds 64 KB of Q, so
# 64-key tiles (2 stages x (32 KB K + 32 KB V^T)) = 192 KB; width 64 fits 128-key
# tiles and two Q buffers (2 x 32 KB Q + 2 x 64 KB K/V^T). Wider heads do not fit
# two stages and keep the fp16 pre-pass (precision="fast" on WGMMA_TILES, fp32_terms 1).
# Tiles: the best of the candidates in bench/ab_tf32.py (H100, s1024 and s2048, full
# and causal, bench/notes/fp32_fp64.md, "tf32 fast mode, measured"): both widths
# with pingpong; persistent at width 64 only. Every candidate is spill-free under
# NVRTC 13.0 and 13.5.
WGMMA_TF32_TILES: dict[int, WgmmaTiles] = {
    64: (128, 128, 2, True, True),
    128: (128, 64, 2, True, False),
}
# What a tf32 tile sweep may time (the table's entry first); the offline test compiles every one.
WGMMA_TF32_CANDIDATES: dict[int, tuple[WgmmaTiles, ...]] = {
    64: ((128, 128, 2, True, True), (128, 128, 2, False, True), (128, 128, 2, False, False),
         (128, 64, 3, False, True), (192, 64, 2, False, True)),
    128: ((128, 64, 2, True, False), (128, 64, 2, False, False), (128, 64, 2, False, True),
          (128, 64, 2, True, True)),
}
# fp32 converted inside the kernel, one term (precision="fast"; cuda_src/wgmma_convert.h;
# bench/notes/fp32_in_kernel.md, "In-kernel conversion, measured"): (tiles, staging slots).
# 64-key tiles: the fp32 staging ring takes the shared memory that 128-key tiles
# would need at width 128 (64 KB fp16 Q in two buffers + 2 x 32 KB K/V + 2 x 32 KB
# staging), and each converter thread holds its share of a unit in registers (96 at
# width 128; a 128-key unit at width 64 spilled at the producer's 128).
WGMMA_CONVERT_TILES: dict[int, tuple[WgmmaTiles, int]] = {
    64: ((128, 64, 2, False, True), 2),
    128: ((128, 64, 2, False, True), 2),
}
WGMMA_CONVERT_AREA_BYTES = 512  # unit headers, shift and abs-max words (kConvertAreaBytes)
# head-dim width -> (block_m, block_n, warps, m_tiles) for the fp64 DMMA kernel;
# each warp owns 8 * m_tiles query rows, so block_m = 8 * m_tiles * warps.
DMMA_ROWS_PER_M_TILE = 8
DMMA_TILES: dict[int, tuple[int, int, int, int]] = {
    32: (64, 64, 4, 2),
    64: (64, 64, 4, 2),
    96: (128, 32, 8, 2),
    128: (128, 32, 8, 2),
    160: (64, 16, 8, 1),
    192: (64, 16, 8, 1),
    224: (64, 16, 8, 1),
    256: (64, 16, 8, 1),
}
# Where they beat DMMA_TILES at width 128 (bench/results/device_20261123c/tune_dmma.txt,
# batch 2 x 8 heads, interleaved rounds; bench/notes/fp32_fp64.md, "fp64 tiles by
# length and mask"): under a causal mask 32-row blocks of 4 warps, +9-23 % from
# seqlen 1024 (the diagonal wastes less of a small block, and there are 4x the
# CTAs to balance it); at short lengths without a mask 64-row blocks of 8 warps,
# +39 % at 512, where the 128-row blocks leave half the SMs of an H100 idle
# (64 CTAs) and 1024 is already 6 % behind the table.
DMMA_CAUSAL_TILES: dict[int, tuple[int, int, int, int]] = {
    128: (32, 32, 4, 1),
}
DMMA_SHORT_SEQLEN = 512
DMMA_SHORT_TILES: dict[int, tuple[int, int, int, int]] = {
    128: (64, 32, 8, 1),
}
# What a DMMA tuning sweep times per width (the table's entry among them); the
# offline test compiles every one.
DMMA_CANDIDATES: dict[int, tuple[tuple[int, int, int, int], ...]] = {
    64: ((64, 64, 4, 2), (64, 32, 4, 2), (64, 32, 8, 1), (128, 32, 8, 2)),
    128: ((64, 32, 4, 2), (64, 32, 8, 1), (32, 32, 4, 1), (128, 32, 8, 2)),
    256: ((32, 32, 4, 1), (32, 16, 4, 1), (64, 16, 8, 1)),
}
# Shared-memory row padding of the DMMA kernel, in doubles (kDmmaPadQK, kDmmaPadV
# in cuda_src/flash_fwd_dmma.cuh: conflict-free fragment reads).
DMMA_PAD_QK = 4
DMMA_PAD_V = 2

# dtype -> (warps, rows_per_warp) for the SIMT kernel
SIMT_TILES: dict[str, tuple[int, int]] = {
    "float32": (8, 4),
    "float64": (8, 2),
}
