// The split tail's hand-over (block_order.h has the walk): an item cut between two
// CTAs of the persistent Hopper kernel. The CTA with its later key tiles computes
// them first and writes, per consumer thread, its O fragments and row state (max
// and this thread's partial sums) to its slot of p.sk_partials, then raises its
// warpgroup's flag. The CTA with the earlier tiles computes them last, waits for
// that flag, and merges the slot into its own registers before the epilogue. The
// two warpgroups hold the same rows and columns thread for thread, so the slot
// needs no layout of its own: float4 chunk q of consumer thread t is at
// ((slot * warpgroups + warpgroup) * chunks + q) * 128 + t, a warp's 32 chunks
// contiguous. Mirrored in cupyflash/_params.py (split_tail_floats).
#pragma once
#include "common.h"
#include "params.h"
#include "ptx_sm90.h"
#include "softmax.h"
#include "work_item_sm90.h"

namespace cupyflash {

constexpr u32 kSkSlotWritten = 1;  // a warpgroup's flag: 0 (zeroed by the host), then written
constexpr int kSkPollNs = 64;      // back-off between polls of a flag that is not raised yet

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

// The writer: this thread's part of the item's unnormalised O and row state into
// slot `slot`; the warpgroup's flag goes up once all 128 threads have written
// (barrier `bar`, free at this point of the item: the epilogue's).
template <int kOTiles, int kConsumerWGs>
__device__ __forceinline__ void sk_write(const FlashParams& p, int slot, int cwg, u32 bar,
                                         const float (&acc_o)[kOTiles][4], const RowState& rs) {
  const int ctid = threadIdx.x % kWarpgroupThreads;  // the thread within its consumer warpgroup
  float4* dst = sk_slot<kOTiles, kConsumerWGs>(p, slot, cwg, ctid);
#pragma unroll
  for (int j = 0; j < kOTiles; ++j)
    dst[j * kWarpgroupThreads] = make_float4(acc_o[j][0], acc_o[j][1], acc_o[j][2], acc_o[j][3]);
  dst[kOTiles * kWarpgroupThreads] = make_float4(rs.max[0], rs.max[1], rs.sum[0], rs.sum[1]);
  // Hazard: every thread's chunks must be visible at gpu scope before the flag. The
  // barrier orders them before thread 0's release, which is cumulative over them (no
  // fence per thread: its wait for the stores cost the whole warpgroup ~1 us per hand-over).
  named_barrier_sync<kWarpgroupThreads>(bar);
  if (ctid == 0) st_release_gpu(p.sk_flags + slot * kConsumerWGs + cwg, kSkSlotWritten);
}

// exp2((from - to) * scale_log2), 0 for a row with no key yet (from = -inf).
__device__ __forceinline__ float sk_factor(float from, float to, float scale_log2) {
  return from == neg_inf_f32() ? 0.f : exp2_ftz((from - to) * scale_log2);
}

// The finisher: waits for slot `slot` and merges it into acc_o and rs (both then
// hold the whole item, in the units of the larger of the two maxima).
template <int kOTiles, int kConsumerWGs>
__device__ __forceinline__ void sk_merge(const FlashParams& p, int slot, int cwg, u32 bar,
                                         float (&acc_o)[kOTiles][4], RowState& rs, float scale_log2) {
  const int ctid = threadIdx.x % kWarpgroupThreads;
  if (ctid == 0) {
    const u32* flag = p.sk_flags + slot * kConsumerWGs + cwg;
    while (ld_acquire_gpu(flag) != kSkSlotWritten) __nanosleep(kSkPollNs);
  }
  named_barrier_sync<kWarpgroupThreads>(bar);  // orders every thread's reads after the acquire
  // .cg: from L2, where the writer's release put them (this SM's L1 holds no older copy, but need not be asked).
  const float4* src = sk_slot<kOTiles, kConsumerWGs>(p, slot, cwg, ctid);
  const float4 row = __ldcg(src + kOTiles * kWarpgroupThreads);  // {max, max, sum, sum} of rows g, g + 8
  // Named scalars rather than small arrays indexed by row: nothing here may land in local memory.
  const float m0 = fmaxf(rs.max[0], row.x), m1 = fmaxf(rs.max[1], row.y);
  const float mine0 = sk_factor(rs.max[0], m0, scale_log2), other0 = sk_factor(row.x, m0, scale_log2);
  const float mine1 = sk_factor(rs.max[1], m1, scale_log2), other1 = sk_factor(row.y, m1, scale_log2);
  rs.sum[0] = rs.sum[0] * mine0 + row.z * other0;
  rs.sum[1] = rs.sum[1] * mine1 + row.w * other1;
  rs.max[0] = m0;
  rs.max[1] = m1;
#pragma unroll
  for (int j = 0; j < kOTiles; ++j) {
    const float4 o = __ldcg(src + j * kWarpgroupThreads);
    acc_o[j][0] = acc_o[j][0] * mine0 + o.x * other0;
    acc_o[j][1] = acc_o[j][1] * mine0 + o.y * other0;
    acc_o[j][2] = acc_o[j][2] * mine1 + o.z * other1;
    acc_o[j][3] = acc_o[j][3] * mine1 + o.w * other1;
  }
}

}  // namespace cupyflash
