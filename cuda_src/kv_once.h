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
// Protocol, one flag per (batch, kv head, key tile) and one counter per (batch,
// kv head) in p.kv_flags (kv_flags.h), all zeroed by the host before every call:
//   - The producer warpgroup's warps 1-3 (the converters) walk this CTA's items
//     in the TMA thread's order, ahead of it. At each item one thread takes the
//     next key tile of the item's head from the head's counter (atomicAdd: the
//     tiles go out from the head's last down, the order in which every item
//     walks them), and the converters convert it, then take the next, until
//     the counter passes the head's tiles. Converting a tile: K's tile and V's
//     (fp32 from the caller's k, v -> fp16 hi, and lo for 3 terms, into the
//     copies p.kv_k, p.kv_v (p.kv_k_lo, p.kv_v_lo), each with its own shift, split_shift's rule: the
//     pre-pass's values, bit for bit), then {e_k, e_v} into p.tile_shifts and
//     kTileReady into the tile's flag with a release store.
//     Why a counter, not a claim per tile: a claim that another CTA had won
//     still cost an L2 round trip, about nine per item pair at causal s1024,
//     where the converters barely kept ahead of the consumers
//     (bench/notes/fp32_kv_once.md, "Key tiles handed out by a counter per head").
//   - The TMA thread, before loading a key tile, polls its flag until ready
//     (acquire), then loads the copies by TMA. The consumers read the tile's
//     shifts after its full_k barrier (ld.relaxed.gpu: from L2).
// No deadlock: a converter never waits for another CTA, so a tile handed out is
// always finished; the tiles of a head that a TMA thread waits for are handed out
// by its own converters at the latest, which take tiles until none is left.
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

// One operand's key tile (rows rows of kD floats from src, row_stride apart)
// into hi (and lo) fp16 rows out_stride apart; returns its shift. stage: the
// tile's fp32 staging area, words: the converter warps' abs-max words. ct: the
// thread's index among the converters. A row is kD / 4 chunks of 16 bytes and
// the 96 converters cover kRowStep whole rows at a time, so each thread keeps
// one column chunk and steps its row pointers (few registers: the producer
// warpgroup runs at kKVOnceProducerRegs). Each thread copies its chunks into
// shared memory with cp.async (the whole tile in flight, no register per
// element) and reads back only its own, so the copy needs no barrier.
template <int kD, bool kLo>
__device__ __forceinline__ int convert_kv_tile(const float* src, i64 row_stride, int rows, u16* hi, u16* lo,
                                               int out_stride, u32 stage, u32 words, int max_shift, int ct) {
  constexpr int kChunksPerRow = kD / kF32ChunkElems;
  static_assert(kConverterThreads % kChunksPerRow == 0, "the converters cover whole rows");
  constexpr int kRowStep = kConverterThreads / kChunksPerRow;
  constexpr u32 kStageStep = kConverterThreads * kCvtChunkBytes;
  const int r0 = ct / kChunksPerRow, col = kF32ChunkElems * (ct % kChunksPerRow);
  const u32 mine = stage + kCvtChunkBytes * ct;  // chunk ct; then every kStageStep bytes
  {
    const float* x = src + r0 * row_stride + col;
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
  const int e = split_shift(m, kSplitTargetExp, max_shift);
  const float s = pow2_f32(e);
  const i64 out_step = static_cast<i64>(kRowStep) * out_stride;
  uint2* h_out = reinterpret_cast<uint2*>(hi + static_cast<i64>(r0) * out_stride + col);
  uint2* l_out = reinterpret_cast<uint2*>(lo + static_cast<i64>(r0) * out_stride + col);
  at = mine;
  for (int r = r0; r < rows; r += kRowStep, at += kStageStep) {
    const float4 x = lds128_f32(at);
    uint2 h, l;
    split_pair(x.x, x.y, s, h.x, l.x);
    split_pair(x.z, x.w, s, h.y, l.y);
    *h_out = h;
    h_out = reinterpret_cast<uint2*>(reinterpret_cast<u16*>(h_out) + out_step);
    if constexpr (kLo) {
      *l_out = l;
      l_out = reinterpret_cast<uint2*>(reinterpret_cast<u16*>(l_out) + out_step);
    }
  }
  fence_proxy_async_global();  // hazard (1) above
  // Every converter is done with the stage and the abs-max words before the next tile reuses them.
  named_barrier_sync<kConvertBarrier, kConverterThreads>();
  return e;
}

// The converter warps (producer warps 1-3; ct = their thread index 0..95). They
// walk this CTA's items in the TMA thread's order (walk_loads: items in turn),
// without its one-item look-ahead, which held registers the converters need.
template <class Tr, bool kPersistent, bool kTableWalk>
__device__ __forceinline__ void kv_once_converters(const FlashParams& p, const WgmmaSmem<Tr>& sm, int m_blocks,
                                                   int ct) {
  constexpr int kD = Tr::kWidth, kBlockN = Tr::kTileN;
  typename WalkOf<kTableWalk, kPersistent, false, Tr::kBlockM, true>::type walk(p, m_blocks);
  BlockCoord bc;
  while (walk.next(p, bc)) {
    const WorkItem w = work_item<Tr::kBlockM, kBlockN>(p, bc);
    if (w.n_tiles <= 0) continue;  // the TMA thread loads nothing for it
    for (;;) {
      // One thread takes the head's next tile and tells the others through a shared word,
      // rewritten only after a barrier that follows every thread's read of it. The counter's
      // address and the head's tile count are recomputed from p per claim: kept across the
      // conversions they spilled 4-20 bytes at the producer's 40 registers.
      const u32 word = sm.kv_once_words() + kClaimWordsOff;
      if (ct == 0) {
        u32* const counters = p.kv_flags + kv_counter_offset(p.batch, p.heads_kv, ceil_div(p.seqlen_k, kBlockN));
        sts32(word, atomicAdd(counters + w.batch * p.heads_kv + w.kv_head, 1u));
      }
      named_barrier_sync<kConvertBarrier, kConverterThreads>();
      const int handed = static_cast<int>(lds32(word));
      // The tiles a head hands out: those that some query row attends (all but a causal
      // call's keys past its last row's diagonal).
      const int head_tiles = ceil_div(max(key_end(p, p.seqlen_q), 0), kBlockN);
      if (handed >= head_tiles) {  // every tile of the head is out: the next item
        named_barrier_sync<kConvertBarrier, kConverterThreads>();  // (a conversion's barriers do this otherwise)
        break;
      }
      const int t = head_tiles - 1 - handed;
      const int n0 = t * kBlockN, rows = min(kBlockN, p.seqlen_k - n0);
      const i64 first = ((static_cast<i64>(w.batch) * p.seqlen_k + n0) * p.heads_kv + w.kv_head) * kD;  // copy row
      const float* k = static_cast<const float*>(p.k) + w.batch * p.k_batch_stride + n0 * p.k_row_stride +
                       w.kv_head * p.k_head_stride;
      const int e_k = convert_kv_tile<kD, Tr::kSplit>(k, p.k_row_stride, rows, p.kv_k + first, p.kv_k_lo + first,
                                                      p.heads_kv * kD, sm.kv_once_stage(), sm.kv_once_words(), kMaxShiftK, ct);
      const float* v = static_cast<const float*>(p.v) + w.batch * p.v_batch_stride + n0 * p.v_row_stride +
                       w.kv_head * p.v_head_stride;
      const int e_v = convert_kv_tile<kD, Tr::kSplit>(v, p.v_row_stride, rows, p.kv_v + first, p.kv_v_lo + first,
                                                      p.heads_kv * kD, sm.kv_once_stage(), sm.kv_once_words(), kMaxShiftV, ct);
      if (ct == 0) {
        const i64 tile = kv_tile_index<kBlockN>(p, w, n0);
        *reinterpret_cast<int2*>(p.tile_shifts + 2 * tile) = make_int2(e_k, e_v);
        st_release_gpu(p.kv_flags + tile, kTileReady);  // after the barrier: covers every converter's stores
      }
    }
  }
}

}  // namespace cupyflash
