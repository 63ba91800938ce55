// Which (query block, head, batch) a CTA computes: the order in which the grid
// walks the work. A one-item-per-CTA grid is (m_blocks, heads_q, batch) and the
// hardware hands out CTAs roughly in linear-index order; a persistent grid walks
// the same sequence with a stride of its CTA count. Either way the position in
// the sequence decides the order.
//
// Two goals pull apart. Longest first: under a causal mask the last query
// blocks attend the most keys, and starting them first keeps the tail short.
// L2 reuse: every query block of a head reads all of that head's K and V, so
// the CTAs in flight should share few heads. The walk takes (batch, head) pairs
// in groups whose K and V fit in L2 (cupyflash._params.walk_group_pairs) and,
// inside a group, runs the query blocks longest first, heads fastest
// (consecutive query heads share a KV head under GQA).
#pragma once
#include "params.h"
#include "ptx.h"

namespace cupyflash {

struct BlockCoord {
  int m_block;
  int head;
  int batch;
  // Split tail only: this CTA's walk positions [t_begin, t_end) of the item's key
  // tiles (t_end 0: all of them).
  int t_begin;
  int t_end;
};

// The work item at position `linear` of the walk (0 .. m_blocks * heads_q * batch - 1).
// p.walk_group_pairs (batch, head) pairs form a group (host-computed: their K
// and V fit in L2 together).
__device__ __forceinline__ BlockCoord block_coord(const FlashParams& p, int linear, int m_blocks) {
  const int pairs = p.heads_q * p.batch;
  const int group_pairs = p.walk_group_pairs;
  const int group = linear / (group_pairs * m_blocks);
  const int first_pair = group * group_pairs;
  const int pairs_here = min(group_pairs, pairs - first_pair);  // the last group may be short
  const int r = linear - first_pair * m_blocks;
  const int pair = first_pair + r % pairs_here;
  return {m_blocks - 1 - r / pairs_here, pair % p.heads_q, pair / p.heads_q};
}

// The split tail (FlashParams.sk_items > 0: persistent, unmasked, 16-bit; kSplitTail). With N
// items of equal cost on G CTAs, a stride walk leaves the last wave N % G items for
// G CTAs: the rest idle for up to an item's time, 3 % of a 16-wave call. So the last
// sk_items (G + N % G; the first N - sk_items still go by stride) are laid out as one
// sequence of key tiles, sk_tiles per item, and CTA c takes the c-th G-th of it. A
// range holds at least one item's tiles, so an item is cut between at most two CTAs,
// c and c + 1, and the cut's slot is c + 1. Which of the two finishes the item is
// decided when they arrive there (split_tail.h); the later CTA computes its part first
// thing in its tail, the earlier one last.
struct SkRange {
  int begin, end;    // this CTA's tiles of the tail sequence
  int first, count;  // the items they touch (tail-relative)
};
__device__ __forceinline__ SkRange sk_range(const FlashParams& p, int c, int G) {
  const i64 tiles = static_cast<i64>(p.sk_items) * p.sk_tiles;
  SkRange r;
  r.begin = static_cast<int>(tiles * c / G);
  r.end = static_cast<int>(tiles * (c + 1) / G);
  r.first = r.begin / p.sk_tiles;
  r.count = (r.end - 1) / p.sk_tiles - r.first + 1;
  return r;
}

// A persistent grid of G CTAs: how many work items CTA c has, and its k-th one
// (an m_block of -1 is a slot to skip: see the fold below).
// Without a causal mask every query block costs the same, and the walk is position
// c + k*G of the sequence above. Under a causal mask block m costs about m + 1 key
// tiles, and a stride walk over a longest-first sequence hands some CTAs only long
// blocks (measured: 0.6x at head dim 256, seqlen 4096). So the walk folds: unit u
// is the block pair (m_blocks-1-j, j) of one (batch, head), about m_blocks + 1
// tiles whatever j is, and CTA c runs both halves of units c, c+G, c+2G, ...
// back to back. With an odd m_blocks the middle block is its own partner: its
// second half is the skipped slot.
// kSplitTail: the variant may walk a split tail (16-bit only: the float32 ones have no
// registers to spare for it, and the host never asks them to).
template <bool kSplitTail>
__device__ __forceinline__ int persistent_items(const FlashParams& p, int m_blocks, int c, int G) {
  const int units = (p.causal ? (m_blocks + 1) / 2 : m_blocks) * p.heads_q * p.batch;
  if (kSplitTail && p.sk_items > 0) return (units - p.sk_items) / G + sk_range(p, c, G).count;
  const int mine = c < units ? (units - 1 - c) / G + 1 : 0;
  return p.causal ? 2 * mine : mine;
}
template <bool kSplitTail>
__device__ __forceinline__ BlockCoord persistent_coord(const FlashParams& p, int m_blocks, int c, int G, int k) {
  if (kSplitTail && p.sk_items > 0) {
    const int head_items = m_blocks * p.heads_q * p.batch - p.sk_items;  // walked by stride
    if (k < head_items / G) return block_coord(p, c + k * G, m_blocks);
    const SkRange r = sk_range(p, c, G);
    const int j = r.first + k - head_items / G;
    BlockCoord bc = block_coord(p, head_items + j, m_blocks);
    bc.t_begin = max(r.begin - j * p.sk_tiles, 0);
    bc.t_end = min(r.end - j * p.sk_tiles, p.sk_tiles);
    return bc;
  }
  if (!p.causal) return block_coord(p, c + k * G, m_blocks);
  const int folded = (m_blocks + 1) / 2;
  BlockCoord bc = block_coord(p, c + (k / 2) * G, folded);
  const int j = folded - 1 - bc.m_block;  // 0 for a group's first unit
  const int long_block = m_blocks - 1 - j;
  bc.m_block = (k % 2 == 0) ? long_block : (j < long_block ? j : -1);
  return bc;
}

// The linear index of this CTA in a grid of (m_blocks, heads_q, batch).
__device__ __forceinline__ int grid_linear_index() {
  return blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z);
}

// This CTA's work items, one at a time, in order: exactly one in a grid of
// (m_blocks, heads_q, batch), or a persistent CTA's walk (skipped slots left out).
// A step-by-step walk, so that the Hopper producer can look one item ahead.
template <bool kPersistent, bool kSplitTail = false>
struct ItemWalk {
  int k = 0;  // items taken so far
  int items, m_blocks;
  __device__ __forceinline__ ItemWalk(const FlashParams& p, int m_blocks_)
      : items(kPersistent ? persistent_items<kSplitTail>(p, m_blocks_, blockIdx.x, gridDim.x) : 1),
        m_blocks(m_blocks_) {}
  // The next item into bc; false once the walk is over.
  __device__ __forceinline__ bool next(const FlashParams& p, BlockCoord& bc) {
    while (k < items) {
      bc = kPersistent ? persistent_coord<kSplitTail>(p, m_blocks, blockIdx.x, gridDim.x, k)
                       : block_coord(p, grid_linear_index(), m_blocks);
      ++k;
      if (bc.m_block >= 0) return true;
    }
    return false;
  }
};

// ---- The walk laid out on the host (kTableWalk variants) ----
// Under a causal mask the fold above is unbalanced wherever G does not divide the
// block pairs: at d64 s1024 b16 h32, 1536 pairs leave 84 CTAs a twelfth pair while
// 48 idle, and the kernel's rate followed that balance head count by head count
// (bench/notes/wgmma_tiles.md, "The causal walk's last wave"). The variants compiled
// for causal calls (KernelSpec.walk_table: persistent, no split tail, no in-kernel
// conversion stages) read the walk from p.walk_table instead, which the host lays out
// (cupyflash/_walk.py): G + 1 offsets, then each CTA's walk positions in order, CTA c's
// being entries [c] .. [c + 1]. Without a mask they walk by stride, as above. The
// other variants keep the code above unchanged: with both walks in one kernel the
// unmasked rows, which never take the table, lost 1-2 % (d64) and 5 % (fp32 fast d128).
__device__ __forceinline__ int table_entry(const FlashParams& p, int i) { return ldg_fresh(p.walk_table + i); }
__device__ __forceinline__ int table_walk_items(const FlashParams& p, int m_blocks, int c, int G) {
  if (p.causal) return table_entry(p, c + 1) - table_entry(p, c);
  const int items = m_blocks * p.heads_q * p.batch;
  return c < items ? (items - 1 - c) / G + 1 : 0;
}
__device__ __forceinline__ BlockCoord table_walk_coord(const FlashParams& p, int m_blocks, int c, int G, int k) {
  if (p.causal) return block_coord(p, table_entry(p, G + 1 + table_entry(p, c) + k), m_blocks);
  return block_coord(p, c + k * G, m_blocks);
}
template <class Body>
__device__ __forceinline__ void for_each_table_item(const FlashParams& p, int m_blocks, Body&& body) {
  const int c = blockIdx.x, G = gridDim.x;
  const int items = table_walk_items(p, m_blocks, c, G);
  for (int k = 0; k < items; ++k) body(table_walk_coord(p, m_blocks, c, G, k));
}
// ItemWalk's counterpart (same interface). Two counters, k and items (under a causal
// mask they run over the CTA's table entries), and m_blocks recomputed (a division by
// a constant), not kept: a third value live across the walk spilled the kv-once
// converters (40 registers) under NVRTC 13.5. kWarps: whole warps walk (the
// converters), and the table's words go through lane 0 so that ptxas knows them
// warp-uniform; the TMA thread walks alone.
template <int kBlockM, bool kWarps>
struct TableWalk {
  int k, items;  // the next item and one past the last: walk indices, or table entries
  __device__ __forceinline__ static int m_blocks(const FlashParams& p) { return ceil_div(p.seqlen_q, kBlockM); }
  __device__ __forceinline__ static int entry(const FlashParams& p, int i) {
    return kWarps ? warp_uniform(table_entry(p, i)) : table_entry(p, i);
  }
  __device__ __forceinline__ TableWalk(const FlashParams& p, int) {
    if (p.causal) {
      k = entry(p, blockIdx.x);
      items = entry(p, blockIdx.x + 1);
    } else {
      k = 0;
      items = table_walk_items(p, m_blocks(p), blockIdx.x, gridDim.x);
    }
  }
  __device__ __forceinline__ bool next(const FlashParams& p, BlockCoord& bc) {
    if (k >= items) return false;
    bc = p.causal ? block_coord(p, entry(p, gridDim.x + 1 + k), m_blocks(p))
                  : block_coord(p, blockIdx.x + k * gridDim.x, m_blocks(p));
    ++k;
    return true;
  }
};
template <bool kTableWalk, bool kPersistent, bool kSplitTail, int kBlockM, bool kWarps = false>
struct WalkOf {
  using type = ItemWalk<kPersistent, kSplitTail>;
};
template <bool kPersistent, bool kSplitTail, int kBlockM, bool kWarps>
struct WalkOf<true, kPersistent, kSplitTail, kBlockM, kWarps> {
  using type = TableWalk<kBlockM, kWarps>;
};

// Calls body(coord) for each of this CTA's work items, in order. A template
// function, not a generic lambda: NVRTC 13.0 takes a generic lambda for host code.
// Without kPersistent the body is called once, outside any loop: a loop's
// counters would hold registers the split fp32 variant needs. The persistent
// loop is written out rather than driven by ItemWalk: the walk's struct members
// stayed live across the consumers' item loop and spilled the 3-warpgroup
// variant (48 bytes); ItemWalk serves the producer, which looks one item ahead.
template <bool kPersistent, bool kSplitTail, bool kTableWalk = false, class Body>
__device__ __forceinline__ void for_each_item(const FlashParams& p, int m_blocks, Body&& body) {
  if constexpr (kTableWalk) {
    for_each_table_item(p, m_blocks, body);
  } else if constexpr (kPersistent) {
    if constexpr (kSplitTail) {
      // The item count recomputed after each item from fresh reads, not kept: in the
      // 192-row kernels it was the one value left spilled (8 bytes, read once an item).
      // The broadcast tells ptxas the count is warp-uniform (it cannot see through the
      // volatile reads); a loop bound it thinks divergent put a WARPSYNC and BRA.DIV at
      // every warp-wide instruction of the loop and cost 8-10 % at width 64.
      for (int k = 0; k < warp_uniform(persistent_items<true>(p, m_blocks, fresh_ctaid_x(), fresh_nctaid_x())); ++k) {
        const BlockCoord bc = persistent_coord<true>(p, m_blocks, fresh_ctaid_x(), fresh_nctaid_x(), k);
        if (bc.m_block >= 0) body(bc);
      }
    } else {
      const int c = blockIdx.x, G = gridDim.x;
      const int items = persistent_items<false>(p, m_blocks, c, G);
      for (int k = 0; k < items; ++k) {
        const BlockCoord bc = persistent_coord<false>(p, m_blocks, c, G, k);
        if (bc.m_block >= 0) body(bc);
      }
    }
  } else {
    body(block_coord(p, grid_linear_index(), m_blocks));
  }
}

}  // namespace cupyflash
