// K and V converted once per call by the float32 wgmma kernel itself
// (Tr::kKVOnce; KernelSpec.kv_once), with no pre-pass: Q by the consumers
// (q_convert.h), each key tile of K and V by whichever CTA claims it first.
//
// Why: with the pre-pass, k and v cross HBM three times (fp32 read, fp16 copy
// written, copy read by TMA): a third of a fast call's 804 MB at b16 h16 s1024
// d128, too many bytes for 6 x torch's efficient backend at any bandwidth
// (bench/notes/fp32_in_kernel.md, "fp32 and fp64 bench sets with q converted in
// the kernel"). Here a tile's copy is written just before the CTAs of its head
// read it, so it is read from L2.
//
// Protocol, one flag per (batch, kv head, key tile) in p.kv_flags, zeroed by
// the host before every call:
//   - The producer warpgroup's warps 1-3 (the converters) walk this CTA's items
//     in the TMA thread's order, ahead of it. For each key tile they try to
//     claim the flag (0 -> kTileClaimed). The winner converts K's tile and V's
//     (fp32 from the caller's k, v -> fp16 hi, and lo for 3 terms, into the
//     copies p.kv_k, p.kv_v (p.kv_k_lo, p.kv_v_lo), each with its own shift, split_shift's rule: the
//     pre-pass's values, bit for bit), writes {e_k, e_v} into p.tile_shifts and
//     publishes kTileReady with a release store. A lost claim is skipped.
//   - The TMA thread, before loading a key tile, polls its flag until ready
//     (acquire), then loads the copies by TMA. The consumers read the tile's
//     shifts after its full_k barrier (ld.relaxed.gpu: from L2).
// No deadlock: a converter never waits for another CTA, so a claimed tile is
// always finished; an unclaimed tile that a TMA thread waits for is claimed by
// its own converters at the latest, which walk the same tiles and never block.
// Hazards: (1) the copies are written by ordinary stores and read by TMA (the
// async proxy) on other SMs: each converter fences the proxies after its
// stores, and the reader fences again after its acquire. (2) A shift pair is
// read after the release that covers it, but a plain load could hit an L1
// line cached before the write (pairs of neighbouring tiles share a line).
#pragma once
#include "convert_tile.h"
#include "kv_flags.h"
#include "params.h"
#include "ptx_sm90.h"
#include "split_shift.h"
#include "tile_shifts.h"
#include "block_order.h"
#include "work_item_sm90.h"
#include "wgmma_traits.h"

namespace cupyflash {

constexpr int kF32Chunk = 4;  // floats per 16-byte chunk

// Key tile n0 of (batch, kv_head) of K (kIsV false) or V into its fp16 copy
// (hi, and lo for 3 terms); returns its shift. stage: the tile's fp32 staging
// area, words: the converter warps' abs-max words, ct: the thread's index among
// the converters. A row is kD / 4 chunks of 16 bytes and the 96 converters
// cover kRowStep whole rows at a time, so each thread keeps one column chunk
// and steps its row pointers. Addresses come from the parameters (constant
// bank) rather than from the caller: the producer warpgroup runs at
// kKVOnceProducerRegs, where every value live across the item walk counts.
// Each thread copies its chunks into shared memory with cp.async (the whole
// tile in flight, no register per element) and reads back only its own, so
// the copy needs no barrier.
template <int kD, int kBlockN, bool kLo, bool kIsV>
__device__ __forceinline__ int convert_kv_tile(const FlashParams& p, int batch, int kv_head, int n0, u32 stage,
                                               u32 words, int ct) {
  constexpr int kChunksPerRow = kD / kF32Chunk;
  static_assert(kConverterThreads % kChunksPerRow == 0, "the converters cover whole rows");
  constexpr int kRowStep = kConverterThreads / kChunksPerRow;
  constexpr u32 kStageStep = kConverterThreads * kCvtChunkBytes;
  const int rows = min(kBlockN, p.seqlen_k - n0);
  const int r0 = ct / kChunksPerRow, col = kF32Chunk * (ct % kChunksPerRow);
  const u32 mine = stage + kCvtChunkBytes * ct;  // chunk ct; then every kStageStep bytes
  {
    const i64 row_stride = kIsV ? p.v_row_stride : p.k_row_stride;
    const float* x = static_cast<const float*>(kIsV ? p.v : p.k) + batch * (kIsV ? p.v_batch_stride : p.k_batch_stride) +
                     (n0 + r0) * row_stride + kv_head * (kIsV ? p.v_head_stride : p.k_head_stride) + col;
    u32 dst = mine;
    for (int r = r0; r < rows; r += kRowStep, x += kRowStep * row_stride, dst += kStageStep) cp_async_16(dst, x, true);
  }
  cp_async_commit();
  cp_async_wait<0>();
  u32 m = 0;  // finite max |x| as float bits (NaN and inf stay out, as in the pre-pass)
  u32 at = mine;
  for (int r = r0; r < rows; r += kRowStep, at += kStageStep) {
    const float4 x = lds128_f32(at);
    m = max(max(m, max(finite_abs_bits(x.x), finite_abs_bits(x.y))), max(finite_abs_bits(x.z), finite_abs_bits(x.w)));
  }
  m = converters_abs_max(m, words, ct);
  const int e = split_shift(m, kSplitTargetExp, kIsV ? kMaxShiftV : kMaxShiftK);
  const float s = pow2_f32(e);
  // The copies: (batch, seqlen_k, heads_kv, kD) contiguous.
  const int out_stride = p.heads_kv * kD;
  i64 off = ((static_cast<i64>(batch) * p.seqlen_k + n0 + r0) * p.heads_kv + kv_head) * kD + col;
  at = mine;
  for (int r = r0; r < rows; r += kRowStep, at += kStageStep, off += kRowStep * out_stride) {
    const float4 x = lds128_f32(at);
    uint2 h, l;
    split_pair(x.x, x.y, s, h.x, l.x);
    split_pair(x.z, x.w, s, h.y, l.y);
    *reinterpret_cast<uint2*>((kIsV ? p.kv_v : p.kv_k) + off) = h;
    if constexpr (kLo) *reinterpret_cast<uint2*>((kIsV ? p.kv_v_lo : p.kv_k_lo) + off) = l;
  }
  fence_proxy_async_global();  // hazard (1) above
  // Every converter is done with the stage and the abs-max words before the next tile reuses them.
  named_barrier_sync<kConvertBarrier, kConverterThreads>();
  return e;
}

// The converter warps (producer warps 1-3; ct = their thread index 0..95). They
// walk this CTA's items in the TMA thread's order (walk_loads: items in turn,
// each one's key tiles from the last), without its one-item look-ahead, which
// held registers the converters need.
template <class Tr, bool kPersistent>
__device__ __forceinline__ void kv_once_converters(const FlashParams& p, const WgmmaSmem<Tr>& sm, int m_blocks,
                                                   int ct) {
  constexpr int kD = Tr::kWidth, kBlockN = Tr::kTileN;
  int visit = 0;
  ItemWalk<kPersistent> walk(p, m_blocks);
  BlockCoord bc;
  while (walk.next(p, bc)) {
    const WorkItem w = work_item<Tr::kBlockM, kBlockN>(p, bc);
    for (int t = w.n_tiles - 1; t >= 0; --t) {
      const i64 tile = kv_shift_index(w.batch, w.kv_head, p.heads_kv, ceil_div(p.seqlen_k, kBlockN)) + t;
      // One thread claims; all learn the outcome through a word (two, by visit
      // parity: a slow thread may still read the last visit's when the next is written).
      const u32 claim = sm.kv_once_claim(visit++ & 1);
      if (ct == 0) sts32(claim, atomicCAS(p.kv_flags + tile, 0u, kTileClaimed) == 0u);
      named_barrier_sync<kConvertBarrier, kConverterThreads>();
      if (lds32(claim) == 0) continue;  // another CTA converts it (or has)
      const int e_k = convert_kv_tile<kD, kBlockN, Tr::kSplit, false>(p, w.batch, w.kv_head, t * kBlockN,
                                                                       sm.kv_once_stage(), sm.kv_once_words(), ct);
      const int e_v = convert_kv_tile<kD, kBlockN, Tr::kSplit, true>(p, w.batch, w.kv_head, t * kBlockN,
                                                                      sm.kv_once_stage(), sm.kv_once_words(), ct);
      if (ct == 0) {
        *reinterpret_cast<int2*>(p.tile_shifts + 2 * tile) = make_int2(e_k, e_v);
        st_release_gpu(p.kv_flags + tile, kTileReady);  // after the barrier: covers every converter's stores
      }
    }
  }
}

}  // namespace cupyflash
