// Q converted by the consumer warpgroups of the split fp32 kernel
// (flash_fwd_wgmma.cuh with Tr::kQInKernel; KernelSpec.q_in_kernel): the
// pre-pass (split_fp32.cu) converts only K and V, and each consumer warpgroup,
// when it starts an item, reads its own 64 query rows of the caller's fp32 q
// straight from global memory (FlashParams q and its strides), takes their
// finite abs-max, the shift e_q (split_shift.h, exactly as the pre-pass takes it
// for a tile: the same target and MAX_SHIFT['q']), and writes hi and lo
// (split_pair, the pre-pass's rounding) into its rows of the Q buffer in the
// layout TMA would have left there (128-byte swizzle, 64-column boxes:
// convert_tile.h's HeldUnit, shared with the producer's converters). Rows past
// seqlen_q and columns past head_dim are zeros, as TMA's fill was.
// Why: q is read once per item by the kernel anyway, while the pre-pass spent a
// third of its bytes on it (bench/notes/fp32_in_kernel.md, "Q converted by the
// consumers (tenth session, helper branch q-in-kernel, offline only: nothing here
// has run on a GPU)").
// e_q is per warpgroup (64 rows), not per kBlockM block: the softmax needs only
// its own rows' factor (tests/split_reference.py models it: q_rows).
// Staged (WgmmaKernelTraits::kQStaged, where shared memory has room): the producer's TMA
// thread loads the item's fp32 rows into a staging buffer a few key tiles ahead (Q's
// full/empty barriers guard it), and the warpgroup reads them from there: the dependent
// global read at each item start cost 5 % at d64 causal s1024 (reading L2-resident rows
// instead was 5.3 % faster; bench/notes/fp32_in_kernel.md, "Q rows staged by TMA").
#pragma once
#include "convert_tile.h"
#include "params.h"
#include "ptx_sm90.h"
#include "wgmma_traits.h"

namespace cupyflash {

// Named barriers, one per consumer warpgroup (0 is __syncthreads, 1-2 and 10 the
// pingpong turns, 3-5 the epilogues, 6 the producer's converters). Only the
// warpgroup's own 128 threads meet there: the producer and the other consumer
// warpgroup run on (no __syncthreads).
constexpr int kQConvertBarrier0 = 7;
constexpr int kQConvertRows = 64;  // one consumer warpgroup's rows (wgmma M)
constexpr int kQConvertWarps = kWarpgroupThreads / kWarpSize;
// The abs-max exchange between the warpgroup's 4 warps uses the order_before_wait
// scratch words (4 bytes per consumer thread, written and never read by the key
// loop): warp w's word of round r is the slot of its lane r. Round 1 (an infinity
// in the rows) gets its own words: a warp that writes them may still race a slower
// warp reading round 0's. The key loop's own stores land after the closing barrier.
constexpr int kQMaxRounds = 2;

// The maximum of m (float bits) over the warpgroup. words: this warpgroup's
// scratch slots. The barrier is also what keeps the Q buffer safe: every warp
// reaches it only after its previous item's last wgmma_wait, so no wgmma still
// reads the rows that the stores after it overwrite.
__device__ __forceinline__ u32 warpgroup_abs_max(u32 m, u32 words, int round, int warp, int lane, u32 barrier) {
  m = __reduce_max_sync(0xffffffffu, m);
  if (lane == 0) sts32(words + kScratchBytesPerThread * (warp * kWarpSize + round), m);
  named_barrier_sync<kWarpgroupThreads>(barrier);
#pragma unroll
  for (int w = 0; w < kQConvertWarps; ++w) m = max(m, lds32(words + kScratchBytesPerThread * (w * kWarpSize + round)));
  return m;
}

// The second half of a conversion: the warpgroup's abs-max of the held rows (local: this
// thread's), their shift e_q, and hi (and lo) written into dst (its first row in the Q buffer:
// hi, then lo at lo_offset; boxes dst_rows rows apart). Returns e_q. On return the rows are
// visible to wgmma (async proxy) for every thread of the warpgroup.
template <int kD, bool kLo>
__device__ __forceinline__ int store_q_rows(const HeldUnit<kD, kQConvertRows, kQConvertWarps, true>& unit, u32 local,
                                            u32 dst, int dst_rows, u32 lo_offset, u32 words, int cwg, int lane) {
  const int warp = unit.warp;
  const u32 barrier = kQConvertBarrier0 + cwg;
  // fmaxf ignores NaN; an infinity makes the maximum inf, and then the exact rule
  // (infinities count as 0) takes a second round: uniform, every thread read the same words.
  u32 m = warpgroup_abs_max(local, words, 0, warp, lane, barrier);
  if (m == kF32InfBits) m = warpgroup_abs_max(unit.finite_abs_max(), words, kQMaxRounds - 1, warp, lane, barrier);
  const int e = split_shift(m, kSplitTargetExp, kMaxShiftQ);
  unit.template store<kLo>(dst, dst_rows, lo_offset, pow2_f32(e), converter_lane(lane));
  // Hazard: wgmma reads the Q buffer through the async proxy and these were
  // generic-proxy stores: without the fence its first wgmma may read stale bytes.
  fence_proxy_async_smem();
  named_barrier_sync<kWarpgroupThreads>(barrier);  // every warp's rows are in, before the first wgmma
  return e;
}

// Converts this warpgroup's 64 rows of Q (rows row0.. of (batch, head)), read from global
// memory, into dst (see store_q_rows) and returns their shift e_q. wg_tid: the thread's index
// in its warpgroup.
template <int kD, bool kLo>
__device__ __forceinline__ int convert_q_rows(const FlashParams& p, int batch, int head, int row0, u32 dst,
                                              int dst_rows, u32 lo_offset, u32 words, int cwg, int wg_tid) {
  const int warp = wg_tid / kWarpSize, lane = wg_tid % kWarpSize;
  const float* rows = static_cast<const float*>(p.q) + batch * p.q_batch_stride + head * p.q_head_stride +
                      row0 * p.q_row_stride;
  HeldUnit<kD, kQConvertRows, kQConvertWarps, true> unit;
  unit.load_global(rows, p.q_row_stride, p.seqlen_q - row0, p.head_dim, warp, lane);
  return store_q_rows<kD, kLo>(unit, unit.abs_max(), dst, dst_rows, lo_offset, words, cwg, lane);
}

// The same from the staging buffer (kQStaged): stage holds the warpgroup's 64 rows as TMA left
// them (rows past seqlen_q, columns past head_dim and rows before 0 are its zero fill, as above),
// full/empty its barriers (parity: the Q buffer's use). The buffer goes back as soon as every
// warp holds its rows, so the producer loads the next item's while this one converts and runs.
template <int kD, bool kLo>
__device__ __forceinline__ int convert_staged_q_rows(u32 stage, u32 full, u32 empty, u32 parity, u32 dst,
                                                     int dst_rows, u32 lo_offset, u32 words, int cwg, int wg_tid) {
  const int lane = wg_tid % kWarpSize;
  mbar_wait(full, parity);
  HeldUnit<kD, kQConvertRows, kQConvertWarps, true> unit;
  unit.load(stage, kQConvertRows, wg_tid, converter_lane(lane));
  // Hazard: an issued load may not have returned yet, and TMA's next writes do not wait for
  // it: the arrival waits for the thread's abs-max, which needs every value it loaded, and
  // __syncwarp for the other lanes' (wgmma_convert.h measured 1-7 % errors without).
  const u32 local = unit.abs_max();
  __syncwarp();
  if (lane == 0) mbar_arrive_after(empty, local);
  return store_q_rows<kD, kLo>(unit, local, dst, dst_rows, lo_offset, words, cwg, lane);
}

// This consumer warpgroup's rows of item w's Q (the block's 64-row chunk `chunk`: its own, cwg,
// unless the chunks rotate), converted into its own rows of Q buffer qs (the q_use-th use),
// staged or from global memory (see the top). Returns e_q.
template <class Tr>
__device__ __forceinline__ int convert_q(const FlashParams& p, const WgmmaSmem<Tr>& sm, const WorkItem& w, int qs,
                                         int q_use, int cwg, int chunk, int wg_tid) {
  const u32 words = sm.scratch() + kScratchBytesPerThread * kWarpgroupThreads * cwg;  // its scratch slots
  const u32 dst = sm.q(qs) + kQConvertRows * cwg * kSwizzleRowBytes;                  // its rows of the buffer
  if constexpr (Tr::kQStaged)
    return convert_staged_q_rows<Tr::kWidth, Tr::kSplit>(sm.q_stage(chunk), sm.full_q(qs), sm.empty_q(qs),
                                                          WgmmaSmem<Tr>::q_phase(q_use), dst, Tr::kBlockM,
                                                          Tr::kQCopyBytes, words, cwg, wg_tid);
  else
    return convert_q_rows<Tr::kWidth, Tr::kSplit>(p, w.batch, w.head, w.m0 + kQConvertRows * chunk, dst, Tr::kBlockM,
                                                   Tr::kQCopyBytes, words, cwg, wg_tid);
}

}  // namespace cupyflash
