// The producer warpgroup of the Hopper kernel (flash_fwd_wgmma.cuh): the order
// in which it loads each work item's operands, and its TMA thread for operands
// that arrive ready for wgmma (16-bit inputs, or the fp32 pre-pass's fp16
// copies). wgmma_convert.h walks the same order to convert fp32 operands in
// the kernel.
#pragma once
#include "block_order.h"
#include "convert_tile.h"
#include "kv_flags.h"
#include "params.h"
#include "ptx_sm90.h"
#include "tma_params.h"
#include "wgmma_traits.h"
#include "work_item_sm90.h"

namespace cupyflash {

// The load order over this CTA's work items: on_q(w) for item w's Q, on_kv(w, i,
// n0) for its key tile i (walked from the last, first key n0). Items without key
// tiles load nothing: the consumers write their zeros alone.
template <bool kPersistent, int kBlockM, int kBlockN, int kQStages, bool kSplitTail, bool kTableWalk, class OnQ,
          class OnKV>
__device__ __forceinline__ void walk_loads(const FlashParams& p, int m_blocks, OnQ&& on_q, OnKV&& on_kv) {
  typename WalkOf<kTableWalk, kPersistent, kSplitTail, kBlockM>::type walk(p, m_blocks);
  auto next_loaded = [&](WorkItem& w) {
    BlockCoord bc;
    while (walk.next(p, bc)) {
      w = work_item<kBlockM, kBlockN>(p, bc);
      if (w.n_tiles > 0) return true;
    }
    return false;
  };
  WorkItem w, next;
  bool has = next_loaded(w);
  if (has) on_q(w);
  while (has) {
    bool has_next = false;
    // The next item's Q goes out with this item's tile q_at. With two buffers
    // that is tile kQPrefetchTile: the buffer it reuses (the item before this
    // one) comes back when the consumers drain that item's epilogue store, in
    // this item's tile 1 (or after its only tile). Loading it only after this
    // item's last K/V (as with one buffer, where nothing earlier is free) left
    // the consumers waiting for Q at every item start: 5 % of the stall
    // samples at seqlen 1024 (bench/notes/wgmma.md, "Where the consumers wait").
    const int q_at = kQStages == 2 ? min(kQPrefetchTile, w.n_tiles - 1) : w.n_tiles - 1;
    for (int i = 0; i < w.n_tiles; ++i) {
      on_kv(w, i, w.n_top - i * kBlockN);
      // The walk's integer maths for the next item (several dependent divisions)
      // runs once this item's first K and V are out, while the producer would
      // wait for the next slot anyway, not between a freed slot and its load.
      if (i == 0) has_next = next_loaded(next);
      if (has_next && i == q_at) on_q(next);
    }
    w = next;
    has = has_next;
  }
}

// The TMA thread for operands already in wgmma's format: Q once per item into the
// next Q buffer, K and V tiles into the ring, each once its buffer is empty.
template <class Tr, class Elem, bool kPersistent, bool kSplitTail, bool kTableWalk>
__device__ __forceinline__ void tma_producer(const FlashParams& p, const TmaParams& tma, const WgmmaSmem<Tr>& sm,
                                             int m_blocks) {
  using Sm = WgmmaSmem<Tr>;
  if constexpr (Tr::kQByTma) tma_prefetch_desc(&tma.q);  // no Q load otherwise
  tma_prefetch_desc(&tma.k);
  tma_prefetch_desc(&tma.v);
  // Operand copy c (0 = hi, 1 = lo) comes from its own tensor map.
  const TmaDesc* q_map[2] = {&tma.q, &tma.q_lo};
  const TmaDesc* k_map[2] = {&tma.k, &tma.k_lo};
  const TmaDesc* v_map[2] = {&tma.v, &tma.v_lo};
  int use = 0;    // K/V ring uses so far
  int q_use = 0;  // Q buffer uses so far (items with at least one key tile)
  // One K or V tile (all its copies and boxes) into a ring slot, once the slot is empty.
  // V^T (tf32): boxes of kBoxCols keys x kD rows of the (keys, d, kv head, batch) map.
  auto load_kv = [&](u32 dst, u32 empty, u32 full, const TmaDesc* const (&maps)[2], int n0, const WorkItem& w,
                     bool is_v) {
    mbar_wait(empty, Sm::phase(use) ^ 1);
    mbar_arrive_expect_tx(full, Tr::kKVBytes);
    if (Tr::kVTransposed && is_v) {
#pragma unroll
      for (int b = 0; b < Tr::kVtBoxes; ++b)
        tma_load_4d(dst + b * Tr::kVtBoxBytes, maps[0], full, n0 + b * Elem::kBoxCols, 0, w.kv_head, w.batch);
      return;
    }
#pragma unroll
    for (int c = 0; c < Tr::kCopies; ++c)
#pragma unroll
      for (int b = 0; b < Tr::kBoxes; ++b)
        tma_load_4d(dst + c * Tr::kKVCopyBytes + b * Tr::kKVBoxBytes, maps[c], full, b * Elem::kBoxCols, n0,
                    w.kv_head, w.batch);
  };
  // One item's Q (all its copies and boxes) into the next Q buffer, once that buffer is empty.
  // Q converted by the consumers (q_convert.h): nothing, or with kQStaged the item's fp32 rows into
  // the staging buffer, guarded by the same barriers (the consumers release it once they hold the
  // rows in registers). tma.q is then the caller's fp32 q, boxes of 32 columns x 64 rows.
  auto load_q = [&](const WorkItem& w) {
    if constexpr (!Tr::kQByTma) return;
    const int qs = Sm::q_slot(q_use);
    mbar_wait(sm.empty_q(qs), Sm::q_phase(q_use) ^ 1);
    if constexpr (Tr::kQStaged) {
      mbar_arrive_expect_tx(sm.full_q(qs), Tr::kQStageBytes);
#pragma unroll
      for (int g = 0; g < Tr::kConsumerWarpgroups; ++g)
#pragma unroll
        for (int b = 0; b < Tr::kWidth / kF32BoxCols; ++b)
          tma_load_4d(sm.q_stage(g) + b * Tr::kQUnitRows * kSwizzleRowBytes, &tma.q, sm.full_q(qs),
                      b * kF32BoxCols, w.m0 + Tr::kQUnitRows * g, w.head, w.batch);
    } else {
      mbar_arrive_expect_tx(sm.full_q(qs), Tr::kQBytes);
#pragma unroll
      for (int c = 0; c < Tr::kCopies; ++c)
#pragma unroll
        for (int b = 0; b < Tr::kBoxes; ++b)
          tma_load_4d(sm.q(qs) + c * Tr::kQCopyBytes + b * Tr::kQBoxBytes, q_map[c], sm.full_q(qs),
                      b * Elem::kBoxCols, w.m0, w.head, w.batch);
    }
    ++q_use;
  };
  walk_loads<kPersistent, Tr::kBlockM, Tr::kTileN, Tr::kQStages, kSplitTail, kTableWalk>(
      p, m_blocks, load_q, [&](const WorkItem& w, int, int n0) {
        if constexpr (Tr::kKVOnce) wait_tile_ready<Tr::kTileN>(p, w, n0);  // converted by some CTA (kv_once.h)
        const int s = Sm::slot(use);
        load_kv(sm.k(s), sm.empty_k(s), sm.full_k(s), k_map, n0, w, false);  // K first: Q.K^T needs it first
        load_kv(sm.v(s), sm.empty_v(s), sm.full_v(s), v_map, n0, w, true);
        ++use;
      });
}

}  // namespace cupyflash
