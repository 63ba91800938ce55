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
#pragma once
#include "convert_tile.h"
#include "params.h"
#include "ptx_sm90.h"
#include "wgmma_traits.h"

namespace cupyflash {

// Named barriers, one per consumer warpgroup (0 is __syncthreads, 1-2 the
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

// Converts this warpgroup's 64 rows of Q (rows row0.. of (batch, head)) into dst
// (its first row in the Q buffer: hi, then lo at lo_offset; boxes dst_rows rows
// apart) and returns their shift e_q. wg_tid: the thread's index in its
// warpgroup. On return the rows are visible to wgmma (async proxy) for every
// thread of the warpgroup.
template <int kD, bool kLo>
__device__ __forceinline__ int convert_q_rows(const FlashParams& p, int batch, int head, int row0, u32 dst,
                                              int dst_rows, u32 lo_offset, u32 words, int cwg, int wg_tid) {
  const int warp = wg_tid / kWarpSize, lane = wg_tid % kWarpSize;
  const u32 barrier = kQConvertBarrier0 + cwg;
  const float* rows = static_cast<const float*>(p.q) + batch * p.q_batch_stride + head * p.q_head_stride +
                      row0 * p.q_row_stride;
  HeldUnit<kD, kQConvertRows, kQConvertWarps, true> unit;
  unit.load_global(rows, p.q_row_stride, p.seqlen_q - row0, p.head_dim, warp, lane);
  // fmaxf ignores NaN; an infinity makes the maximum inf, and then the exact rule
  // (infinities count as 0) takes a second round: uniform, every thread read the same words.
  u32 m = warpgroup_abs_max(unit.abs_max(), words, 0, warp, lane, barrier);
  if (m == kF32InfBits) m = warpgroup_abs_max(unit.finite_abs_max(), words, kQMaxRounds - 1, warp, lane, barrier);
  const int e = split_shift(m, kSplitTargetExp, kMaxShiftQ);
  unit.template store<kLo>(dst, dst_rows, lo_offset, pow2_f32(e), converter_lane(lane));
  // Hazard: wgmma reads the Q buffer through the async proxy and these were
  // generic-proxy stores: without the fence its first wgmma may read stale bytes.
  fence_proxy_async_smem();
  named_barrier_sync<kWarpgroupThreads>(barrier);  // every warp's rows are in, before the first wgmma
  return e;
}

}  // namespace cupyflash
