// The split tail's hand-over (block_order.h has the walk): an item cut between two
// CTAs of the persistent Hopper kernel, each computing some of its key tiles. Each
// consumer warpgroup of either CTA arrives at the cut's counter when its part is done;
// the first to arrive writes its O fragments and row state (max and this thread's
// partial sums) to the cut's slot of p.sk_partials, raises its flag and leaves the item;
// the second waits for that flag and merges the slot into its registers before the
// epilogue. Usually the later CTA, which computes its part first thing in its tail,
// arrives first; but the roles are taken on arrival, never by position.
// Hazard (forward progress): a warpgroup waits only on one that has already arrived, and
// so is running and needs nothing more to write. Fixed roles (the earlier CTA always
// merging) would wait on a CTA that may not be resident yet (a concurrent kernel holding
// SMs, a smaller MPS or green-context share of the GPU) and then never be.
// Hazard (one role per warpgroup): the epilogue is the warpgroup's (a named barrier of
// its 128 threads, then one TMA store of its 64 rows). Roles taken per warp deadlocked
// where the two parts finished close together (d64 s512: parts of 1-3 key tiles) and
// a warpgroup's warps split between handing over and storing.
// The two warpgroups hold the same rows and columns thread for thread, so the slot needs
// no layout of its own: float4 chunk q of consumer thread t is at
// ((slot * warpgroups + warpgroup) * chunks + q) * 128 + t, a warp's 32 chunks contiguous.
// Mirrored in cupyflash/_params.py (split_tail_floats, split_tail_flag_words).
#pragma once
#include "common.h"
#include "params.h"
#include "ptx_sm90.h"
#include "softmax.h"
#include "work_item_sm90.h"

namespace cupyflash {

// Each consumer warpgroup of a slot has two words in p.sk_flags (zeroed by the host): its
// arrivals, and its flag (kSkSlotWritten once the first arrival's part is in the slot).
constexpr int kSkWordsPerWarpgroup = 2;
constexpr u32 kSkSlotWritten = 1;
constexpr int kSkPollNs = 64;  // back-off between polls of a flag that is not raised yet

// The float4 chunks one consumer thread hands over: its O fragments, then {max, sum} of its two rows.
template <int kOTiles>
__host__ __device__ constexpr int sk_chunks() {
  return kOTiles + 1;
}

template <int kOTiles, int kConsumerWGs>
__device__ __forceinline__ float4* sk_slot(const FlashParams& p, int slot, int cwg, int ctid) {
  return reinterpret_cast<float4*>(p.sk_partials) +
         (static_cast<i64>(slot * kConsumerWGs + cwg) * sk_chunks<kOTiles>()) * kWarpgroupThreads + ctid;
}

// The cut of item part w, or -1 where w is a whole item: the slot of the cut after this
// CTA (c + 1) where its part holds the item's first walk positions, else the one before
// (c). Derived from the part's tiles, not stored with the item (a register less across
// the item in the 192-row kernels, which have none to spare). Without a mask every item
// has p.sk_tiles key tiles (0 where nothing is split).
template <int kBlockN>
__device__ __forceinline__ int sk_cut(const FlashParams& p, const WorkItem& w) {
  if (w.n_tiles >= p.sk_tiles) return -1;
  return blockIdx.x + (w.n_top == (p.sk_tiles - 1) * kBlockN);
}

template <int kConsumerWGs>
__device__ __forceinline__ u32* sk_words(const FlashParams& p, int slot, int cwg) {
  return p.sk_flags + (slot * kConsumerWGs + cwg) * kSkWordsPerWarpgroup;
}

// exp2((from - to) * scale_log2), 0 for a row with no key yet (from = -inf).
__device__ __forceinline__ float sk_factor(float from, float to, float scale_log2) {
  return from == neg_inf_f32() ? 0.f : exp2_ftz((from - to) * scale_log2);
}

// a * fa + b * fb, the same bits whichever part is a: two rounded products and a rounded
// sum (no fused multiply-add, which would round one product and not the other), so the
// output does not depend on which CTA happened to arrive first.
__device__ __forceinline__ float sk_sum(float a, float fa, float b, float fb) {
  return __fadd_rn(__fmul_rn(a, fa), __fmul_rn(b, fb));
}

// This warpgroup's part of a cut item, finished, at cut `slot`: true if it arrived first
// and handed its part over (the item is the other CTA's to finish); false if it merged
// the other part into acc_o and rs (both then hold the whole item, in the units of the
// larger of the two maxima) and the epilogue is this warpgroup's. The warpgroup's named
// barrier is the epilogue's (kBarrier0 + warpgroup), free at this point of the item.
template <int kOTiles, int kConsumerWGs, int kBarrier0>
__device__ __forceinline__ bool sk_hand_over(const FlashParams& p, int slot, float (&acc_o)[kOTiles][4], RowState& rs,
                                             float scale_log2) {
  // The thread's place read afresh (fresh_tid_x): the 192-row kernels spilled the barrier id
  // that the compiler otherwise keeps from the kernel's start.
  const u32 tid = static_cast<u32>(fresh_tid_x());
  const int ctid = tid % kWarpgroupThreads;  // the thread within its consumer warpgroup
  const int cwg = tid / kWarpgroupThreads - 1;  // warpgroup 0 is the producer
  const u32 bar = kBarrier0 + cwg;
  // Relaxed: the flag below carries the data. The barrier's OR tells every thread.
  const bool second = warp_uniform(named_barrier_or<kWarpgroupThreads>(
      bar, ctid == 0 && atomicAdd(sk_words<kConsumerWGs>(p, slot, cwg), 1u) != 0));
  if (!second) {
    float4* chunk = sk_slot<kOTiles, kConsumerWGs>(p, slot, cwg, ctid);
#pragma unroll
    for (int j = 0; j < kOTiles; ++j)
      chunk[j * kWarpgroupThreads] = make_float4(acc_o[j][0], acc_o[j][1], acc_o[j][2], acc_o[j][3]);
    chunk[kOTiles * kWarpgroupThreads] = make_float4(rs.max[0], rs.max[1], rs.sum[0], rs.sum[1]);
    // Hazard: every thread's chunks must be visible at gpu scope before the flag. The
    // barrier orders them before thread 0's release, which is cumulative over them (no
    // fence per thread: its wait for the stores cost the whole warpgroup ~1 us per hand-over).
    named_barrier_sync<kWarpgroupThreads>(bar);
    if (ctid == 0) st_release_gpu(sk_words<kConsumerWGs>(p, slot, cwg) + 1, kSkSlotWritten);
    return true;
  }
  if (ctid == 0) {
    while (ld_acquire_gpu(sk_words<kConsumerWGs>(p, slot, cwg) + 1) != kSkSlotWritten) __nanosleep(kSkPollNs);
  }
  named_barrier_sync<kWarpgroupThreads>(bar);  // orders every thread's reads after the acquire
  const float4* chunk = sk_slot<kOTiles, kConsumerWGs>(p, slot, cwg, ctid);
  // .cg: from L2, where the writer's release put them (this SM's L1 holds no older copy, but need not be asked).
  const float4 row = __ldcg(chunk + kOTiles * kWarpgroupThreads);  // {max, max, sum, sum} of rows g, g + 8
  // Named scalars rather than small arrays indexed by row: nothing here may land in local memory.
  const float m0 = fmaxf(rs.max[0], row.x), m1 = fmaxf(rs.max[1], row.y);
  const float mine0 = sk_factor(rs.max[0], m0, scale_log2), other0 = sk_factor(row.x, m0, scale_log2);
  const float mine1 = sk_factor(rs.max[1], m1, scale_log2), other1 = sk_factor(row.y, m1, scale_log2);
  rs.sum[0] = sk_sum(rs.sum[0], mine0, row.z, other0);
  rs.sum[1] = sk_sum(rs.sum[1], mine1, row.w, other1);
  rs.max[0] = m0;
  rs.max[1] = m1;
#pragma unroll
  for (int j = 0; j < kOTiles; ++j) {
    const float4 o = __ldcg(chunk + j * kWarpgroupThreads);
    acc_o[j][0] = sk_sum(acc_o[j][0], mine0, o.x, other0);
    acc_o[j][1] = sk_sum(acc_o[j][1], mine0, o.y, other0);
    acc_o[j][2] = sk_sum(acc_o[j][2], mine1, o.z, other1);
    acc_o[j][3] = sk_sum(acc_o[j][3], mine1, o.w, other1);
  }
  return false;
}

}  // namespace cupyflash
