// The producer warpgroup when the Hopper kernel converts float32 operands itself
// (Tr::kConvert), in place of the host's pre-pass (cupyflash/_split.py): the
// caller's q, k, v are read from global memory by TMA, and no fp16 copy ever
// goes to global memory.
//   warp 0, lane 0 (the TMA thread): walks the producer's load order
//     (walk_loads) and stages every unit of it, fp32 as the caller has it, in
//     a ring of Tr::kStagesCvt slots (stage_full: TMA bytes landed; stage_empty:
//     the converters are done with it). A unit is one consumer warpgroup's 64
//     rows of Q, or one K or V tile. Before the bytes it writes the slot's unit
//     header: where the unit goes and which barriers guard it, so that the
//     converters need not replay the walk (one copy of their loop, not one per
//     call site of the walk: the code of every copy shares the instruction
//     cache with the consumers). After the walk, an empty unit ends the loop.
//   warps 1-3 (the converters): per unit, the finite abs-max and the power-of-two
//     shift exactly as the pre-pass takes them (split_shift.h), then, once the
//     unit's fp16 buffer is empty (the consumers' empty_q / empty_k / empty_v,
//     which the TMA thread waits for in the plain producer), the unit x 2^e as
//     fp16 (and its lo part with 3 terms) in wgmma's layout (convert_tile.h),
//     and the shift in the buffer's shift word. Each converter warp then arrives
//     on the buffer's full barrier (which the consumers wait on as before) and
//     on the staging slot's empty barrier.
// The consumers read the shifts from the shift words instead of p.tile_shifts.
// A Q unit is 64 rows, not the pre-pass's kBlockM: each consumer warpgroup has
// its own e_q, which is all the softmax needs (its rows' scores).
#pragma once
#include "convert_tile.h"
#include "wgmma_producer.h"

namespace cupyflash {

// Arrivals per full barrier of a converted buffer: one per converter warp and unit.
template <class Tr>
__host__ __device__ constexpr int converted_full_count(bool is_q) {
  return kConverterWarps * (is_q ? Tr::kConsumerWarpgroups : 1);
}

// Where a staged unit goes, written by the TMA thread into the unit's header
// slot (a ring of twice the staging slots: see the converters' loop).
struct UnitHeader {
  u32 dst;          // fp16 destination (hi); lo follows lo_offset bytes on (3 terms)
  u32 lo_offset;
  u32 empty;        // dst's empty barrier, and the phase the converters wait for
  u32 empty_phase;
  u32 full;         // dst's full barrier
  u32 shift_word;   // where the unit's shift goes
  u32 max_shift;    // |e| bound of the operand (split_shift.h)
  u32 rows;         // staged rows (0: no more units); dst_rows: dst's rows per box
  u32 dst_rows;
};
static_assert(sizeof(UnitHeader) <= kUnitHeaderSlotBytes, "unit header slot (wgmma_traits.h)");
// A header field (its word, in UnitHeader's order, as write_header stores them),
// read where it is used rather than held in a register across the conversion:
// the converter threads hold a unit's data in nearly all of theirs.
enum HeaderWord : u32 { kHdrDst, kHdrLoOffset, kHdrEmpty, kHdrEmptyPhase, kHdrFull, kHdrShiftWord, kHdrMaxShift,
                        kHdrRows, kHdrDstRows };
__device__ __forceinline__ u32 header_word(u32 at, HeaderWord w) { return lds32(at + 4 * w); }

__device__ __forceinline__ void write_header(u32 at, const UnitHeader& h) {
  asm volatile("st.shared.v4.b32 [%0], {%1, %2, %3, %4};\n" ::"r"(at), "r"(h.dst), "r"(h.lo_offset), "r"(h.empty),
               "r"(h.empty_phase) : "memory");
  asm volatile("st.shared.v4.b32 [%0], {%1, %2, %3, %4};\n" ::"r"(at + 16), "r"(h.full), "r"(h.shift_word),
               "r"(h.max_shift), "r"(h.rows) : "memory");
  sts32(at + 32, h.dst_rows);
}

template <class Tr, bool kPersistent>
__device__ __forceinline__ void convert_producer(const FlashParams& p, const TmaParams& tma, const WgmmaSmem<Tr>& sm,
                                                 int m_blocks, int tid) {
  using Sm = WgmmaSmem<Tr>;
  constexpr int kD = Tr::kWidth, kBlockN = Tr::kTileN, kQRows = Tr::kQUnitRows;
  constexpr int kF32Boxes = kD / kF32BoxCols;
  if (tid < kWarpSize) {
    if (tid != 0) return;
    // ------------------------------------------------ the TMA thread
    tma_prefetch_desc(&tma.q);
    tma_prefetch_desc(&tma.k);
    tma_prefetch_desc(&tma.v);
    int su = 0, use = 0, q_use = 0;  // staging, K/V ring and Q buffer uses so far
    // One unit (h.rows rows from row0 of the map) into the next staging slot, once it is empty.
    auto stage_unit = [&](const UnitHeader& h, const TmaDesc* map, int row0, int head, int batch) {
      const int ss = Sm::stage_slot(su++);
      mbar_wait(sm.stage_empty(ss), Sm::stage_phase(su - 1) ^ 1);
      write_header(sm.unit_header(Sm::header_slot(su - 1)), h);  // ordered before the converters' reads by stage_full
      if (h.rows == 0) {
        mbar_arrive(sm.stage_full(ss));
        return;
      }
      mbar_arrive_expect_tx(sm.stage_full(ss), h.rows * kD * kF32OperandBytes);
#pragma unroll
      for (int b = 0; b < kF32Boxes; ++b)
        tma_load_4d(sm.stage(ss) + b * h.rows * kSwizzleRowBytes, map, sm.stage_full(ss), b * kF32BoxCols, row0,
                    head, batch);
    };
    walk_loads<kPersistent, Tr::kBlockM, kBlockN, Tr::kQStages, false, false>(
        p, m_blocks,
        [&](const WorkItem& w) {
          const int qs = Sm::q_slot(q_use);
          for (int h = 0; h < Tr::kConsumerWarpgroups; ++h)
            stage_unit({sm.q(qs) + kQRows * h * kSwizzleRowBytes, Tr::kQCopyBytes, sm.empty_q(qs),
                        Sm::q_phase(q_use) ^ 1, sm.full_q(qs), sm.shift_q(qs, h), kMaxShiftQ, kQRows, Tr::kBlockM},
                       &tma.q, w.m0 + kQRows * h, w.head, w.batch);
          ++q_use;
        },
        [&](const WorkItem& w, int, int n0) {
          const int s = Sm::slot(use);
          const u32 ph = Sm::phase(use) ^ 1;
          // K first: Q.K^T needs it first
          stage_unit({sm.k(s), Tr::kKVCopyBytes, sm.empty_k(s), ph, sm.full_k(s), sm.shift_k(s), kMaxShiftK, kBlockN,
                      kBlockN}, &tma.k, n0, w.kv_head, w.batch);
          stage_unit({sm.v(s), Tr::kKVCopyBytes, sm.empty_v(s), ph, sm.full_v(s), sm.shift_v(s), kMaxShiftV, kBlockN,
                      kBlockN}, &tma.v, n0, w.kv_head, w.batch);
          ++use;
        });
    stage_unit(UnitHeader{}, nullptr, 0, 0, 0);  // the end
    return;
  }
  // -------------------------------------------------- the converters
  const int ct = tid - kWarpSize;
  const ConverterLane lane = converter_lane(ct % kWarpSize);
  for (int su = 0;; ++su) {
    const int ss = Sm::stage_slot(su);
    mbar_wait(sm.stage_full(ss), Sm::stage_phase(su));
    // Hazard: the header slot, not the staging slot, keeps the header through the
    // conversion: the staging slot goes back right after the load below, and the
    // TMA thread's next header for it is unit su + kStagesCvt's, in the other
    // half of the header ring. That half is free: the TMA thread writes it only
    // after every converter warp loaded unit su (stage_empty), so after they all
    // finished unit su - 1, which is in order before.
    const u32 hdr = sm.unit_header(Sm::header_slot(su));
    const int rows = static_cast<int>(header_word(hdr, kHdrRows));
    if (rows == 0) return;
    HeldUnit<kD, Tr::kUnitMaxRows> unit;
    unit.load(sm.stage(ss), rows, ct, lane);
    // Staging is read: the TMA thread may refill the slot while this unit
    // converts. Hazard: an issued load may not have returned yet, and TMA's
    // writes do not wait for it (measured: 1-7 % errors at width 128 when the
    // warp arrived right after issuing the loads). The arrival takes the
    // thread's abs-max, which needs every loaded value.
    const u32 local_max = unit.abs_max();
    __syncwarp();
    if (ct % kWarpSize == 0) mbar_arrive_after(sm.stage_empty(ss), local_max);
    u32 m = converters_abs_max(local_max, sm.max_words(su & 1), ct);
    // An infinity in the unit: the exact rule leaves it out (uniform across the
    // converters: every thread read the same words). Its words are a third set:
    // the first round's may still be read by a slower warp.
    if (m == kF32InfBits) m = converters_abs_max(unit.finite_abs_max(), sm.max_words(2), ct);
    const int e = split_shift(m, kSplitTargetExp, static_cast<int>(header_word(hdr, kHdrMaxShift)));
    // The abs-max read only staging: it overlapped the consumers' last use of dst.
    mbar_wait(header_word(hdr, kHdrEmpty), header_word(hdr, kHdrEmptyPhase));
    unit.template store<Tr::kSplit>(header_word(hdr, kHdrDst), static_cast<int>(header_word(hdr, kHdrDstRows)),
                                    header_word(hdr, kHdrLoOffset), pow2_f32(e), lane);
    if (ct == 0) sts32(header_word(hdr, kHdrShiftWord), static_cast<u32>(e));
    // Hazard: wgmma reads dst through the async proxy and these were generic-proxy
    // stores: without the fence the consumers' wgmma may read stale bytes.
    fence_proxy_async_smem();
    __syncwarp();
    if (ct % kWarpSize == 0) mbar_arrive(header_word(hdr, kHdrFull));
  }
}

}  // namespace cupyflash
