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
// in groups whose K and V fit in kL2WorkingSetBytes and, inside a group, runs
// the query blocks longest first, heads fastest (consecutive query heads share
// a KV head under GQA).
#pragma once
#include "params.h"

namespace cupyflash {

// About a third of an H100/H200's L2 (50-60 MB, split in two partitions).
constexpr i64 kL2WorkingSetBytes = 16ll << 20;

struct BlockCoord {
  int m_block;
  int head;
  int batch;
};

// The work item at position `linear` of the walk (0 .. m_blocks * heads_q * batch - 1).
__device__ __forceinline__ BlockCoord block_coord(const FlashParams& p, int elem_bytes, int linear, int m_blocks) {
  const int pairs = p.heads_q * p.batch;
  // K+V bytes one query head needs; a KV head is shared by `group` query heads.
  const i64 kv_bytes = max(static_cast<i64>(p.seqlen_k) * (p.head_dim + p.head_dim_v) * elem_bytes / p.group, 1ll);
  const int group_pairs = static_cast<int>(min(max(kL2WorkingSetBytes / kv_bytes, 1ll), static_cast<i64>(pairs)));
  const int group = linear / (group_pairs * m_blocks);
  const int first_pair = group * group_pairs;
  const int pairs_here = min(group_pairs, pairs - first_pair);  // the last group may be short
  const int r = linear - first_pair * m_blocks;
  const int pair = first_pair + r % pairs_here;
  return {m_blocks - 1 - r / pairs_here, pair % p.heads_q, pair / p.heads_q};
}

// The linear index of this CTA in a grid of (m_blocks, heads_q, batch).
__device__ __forceinline__ int grid_linear_index() {
  return blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z);
}

}  // namespace cupyflash
