// The dynamic causal walk of the Hopper kernel's walk-table variants (kTableWalk without
// kv-once): the producer's TMA thread takes the CTA's work items one at a time from a
// per-call counter and hands each to the consumers through a small shared-memory ring.
//
// Why: a table fixed on the host (block_order.h, "The walk laid out on the host") balances
// the CTAs only as well as its cost model predicts each item. On some H100s the d64 causal
// s512-2048 rows ran 5-6 % slower than on others, with every other kernel unchanged
// (bench/notes/full_bench_cont.md, "The d64 causal reading is the machine's"): a static walk
// waits for its slowest CTA, a dynamic one gives that CTA fewer items.
//
// Order: the host's table (cupyflash/_walk.py, FlashParams.walk_table) lists every walk
// position in the order a list scheduler would hand them out (L2 groups, longest first, the
// tail re-sorted), then G entries of -1. CTA c's first item is entry c; every later one is
// entry G + atomicAdd(counter, 1), so the items go out in that order to whichever CTA asks
// first, and each CTA's last ticket reads a -1. Any order that lists each position once is
// correct. The counter (FlashParams.sk_flags: the walk-table variants have no split tail) is
// zeroed by the host before each call, in stream order.
//
// The ring: kItemSlots slots, each a position word and two mbarriers. A scheduler thread (lane
// 0 of the producer's warp 1, idle otherwise) takes the tickets and publishes item k in slot
// k % kItemSlots once the TMA thread and every consumer warp have read the slot's previous
// item; -1 ends the walk. Not the TMA thread itself: at its 24 registers the walk's extra
// state spilled 68-80 bytes, and the atomic's round trip would sit between two of its loads.
// Two slots: the scheduler claims an item about two items before the consumers start it (the
// TMA thread reads item k + 1 at item k's first tile, for the Q prefetch); more slots would
// only commit more items to this CTA ahead of time, which is what the walk is dynamic to avoid.
#pragma once
#include "block_order.h"
#include "convert_tile.h"
#include "ptx_sm90.h"

namespace cupyflash {

constexpr int kItemSlots = 2;
constexpr int kItemRingBarriers = 3 * kItemSlots;  // full, empty and a position word (8 bytes each) per slot
constexpr int kSchedulerWarp = 1;                   // of the producer warpgroup

// The ring's shared-memory words, carved from the kernel's barrier area after its own barriers.
struct ItemRing {
  u32 base;  // first of the ring's 8-byte words
  __device__ __forceinline__ u32 full(int s) const { return base + 8 * s; }
  __device__ __forceinline__ u32 empty(int s) const { return base + 8 * (kItemSlots + s); }
  __device__ __forceinline__ u32 word(int s) const { return base + 8 * (2 * kItemSlots + s); }
  __device__ __forceinline__ static int slot(int k) { return k % kItemSlots; }
  __device__ __forceinline__ static u32 phase(int k) { return static_cast<u32>((k / kItemSlots) & 1); }
  // One thread, before the CTA's __syncthreads: a slot is full after the scheduler's one
  // arrival, empty after the TMA thread's and one per consumer warp.
  __device__ __forceinline__ void init(u32 consumer_warps) const {
#pragma unroll
    for (int s = 0; s < kItemSlots; ++s) {
      mbar_init(full(s), 1);
      mbar_init(empty(s), consumer_warps + 1);
    }
  }
  // A reader's item k (one thread per warp): waits for it, takes its position, frees the slot.
  __device__ __forceinline__ int read(int k) const {
    const int s = slot(k);
    mbar_wait(full(s), phase(k));
    const int pos = static_cast<int>(lds32(word(s)));
    mbar_arrive(empty(s));
    return pos;
  }
};

// The scheduler thread: every item of this CTA's walk into the ring, then -1. Without a causal
// mask (the twins are built for causal calls, but take any) the positions go by stride, as
// TableWalk's do.
template <int kBlockM>
__device__ __forceinline__ void schedule_items(const FlashParams& p, ItemRing ring) {
  const int G = gridDim.x;
  for (int k = 0;; ++k) {
    int pos;
    if (p.causal) {
      // Relaxed: the counter only deals out tickets; nothing else is published through it.
      pos = table_entry(p, k == 0 ? blockIdx.x : G + static_cast<int>(atomicAdd(p.sk_flags, 1u)));
    } else {
      const int t = blockIdx.x + k * G;
      pos = t < ceil_div(p.seqlen_q, kBlockM) * p.heads_q * p.batch ? t : -1;
    }
    const int s = ItemRing::slot(k);
    mbar_wait(ring.empty(s), ItemRing::phase(k) ^ 1);  // every reader has the slot's last item
    sts32(ring.word(s), static_cast<u32>(pos));
    mbar_arrive(ring.full(s));  // release: the word is visible to whoever waits for this phase
    if (pos < 0) return;
  }
}

// The TMA thread's walk (ItemWalk's interface, for walk_loads).
template <int kBlockM>
struct RingWalk {
  ItemRing ring;
  int k = 0;  // items read so far
  __device__ __forceinline__ RingWalk(ItemRing r) : ring(r) {}
  __device__ __forceinline__ bool next(const FlashParams& p, BlockCoord& bc) {
    const int pos = ring.read(k++);
    if (pos < 0) return false;
    bc = block_coord(p, pos, ceil_div(p.seqlen_q, kBlockM));
    return true;
  }
};

// The consumers' side: body(coord) for each item, in the ring's order. The position goes
// through warp_uniform: a loop that ptxas thinks divergent puts a WARPSYNC and BRA.DIV at
// every warp-wide instruction (block_order.h, for_each_item).
template <class Body>
__device__ __forceinline__ void for_each_ring_item(const FlashParams& p, int m_blocks, ItemRing ring, int lane,
                                                   Body&& body) {
  for (int k = 0;; ++k) {
    const int s = ItemRing::slot(k);
    mbar_wait(ring.full(s), ItemRing::phase(k));
    const int pos = __reduce_max_sync(0xffffffffu, static_cast<int>(lds32(ring.word(s))));
    __syncwarp();
    if (lane == 0) mbar_arrive(ring.empty(s));
    if (pos < 0) return;
    body(block_coord(p, pos, m_blocks));
  }
}

}  // namespace cupyflash
