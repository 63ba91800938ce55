// The one parameter struct every kernel receives, by value (__grid_constant__).
// Mirrored field by field in cupyflash/_params.py; tests/test_params.py checks
// that the Python layout (sizes and offsets) matches this one.
//
// Strides are in elements, not bytes. Layout of q is (batch, seqlen_q, heads_q,
// head_dim) addressed through strides, so "bhsd" inputs and arbitrary batch/head
// strides need no copy; the last (head_dim) axis is always contiguous.
#pragma once
#include "common.h"

namespace cupyflash {

struct FlashParams {
  const void* q;        // query   (batch, seqlen_q, heads_q,  head_dim)
  const void* k;        // key     (batch, seqlen_k, heads_kv, head_dim)
  const void* v;        // value   (batch, seqlen_k, heads_kv, head_dim_v)
  void* o;              // output  (batch, seqlen_q, heads_q,  head_dim_v)
  float* lse;           // natural-log log-sum-exp, (batch, heads_q, seqlen_q) contiguous; null = not wanted
  // float32 wgmma kernels with fp16 operands only (null otherwise): the power-of-two
  // shift of every Q, K and V tile, chosen on the device by the pre-pass (so no
  // host synchronisation is needed); tile_shifts.h has the layout. Written by the
  // kernel itself where it converts K and V (kv_once.h).
  int* tile_shifts;
  // float32 wgmma kernels converting K and V once per call (kv_once.h) only, null
  // otherwise: the fp16 copies they write for TMA to read, each (batch, seqlen_k,
  // heads_kv, kernel width) contiguous (lo: 3 terms only), and one flag per
  // (batch, kv head, key tile), zeroed by the host before the call. q, k, v
  // above are then the caller's float32 tensors.
  u16* kv_k;
  u16* kv_v;
  u16* kv_k_lo;
  u16* kv_v_lo;
  u32* kv_flags;
  // Hopper kernel, split tail (split_tail.h) only, null otherwise: the partial O and
  // row state of an item cut between two CTAs (one slot per CTA), and two words per
  // (slot, consumer warpgroup), its arrivals and its flag, zeroed by the host before the call.
  float* sk_partials;
  u32* sk_flags;

  i64 q_batch_stride, q_row_stride, q_head_stride;
  i64 k_batch_stride, k_row_stride, k_head_stride;
  i64 v_batch_stride, v_row_stride, v_head_stride;
  i64 o_batch_stride, o_row_stride, o_head_stride;

  double softmax_scale;  // multiplies q.k; used as is by the fp64 kernel
  float scale_log2;      // softmax_scale * log2(e): scores go straight into exp2

  int batch;
  int seqlen_q;
  int seqlen_k;
  int heads_q;
  int heads_kv;
  int group;             // heads_q / heads_kv: query head h reads KV head h / group
  int head_dim;          // true head_dim (the kernel's template width may be padded)
  int head_dim_v;
  int causal;            // 0 or 1
  // Causal mask: query row i may attend key j iff j <= i + causal_offset.
  // bottom-right alignment: seqlen_k - seqlen_q; top-left: 0.
  int causal_offset;
  // Hopper kernel's walk order (block_order.h): how many (batch, head) pairs it
  // groups so that their K and V stay in L2. Computed once on the host
  // (cupyflash._params.walk_group_pairs): per item on the device it took a
  // 64-bit division, and hoisted out of the item loop a register.
  int walk_group_pairs;
  // Hopper kernel: query block b covers rows b * block_m - q_row_shift onwards
  // (a multiple of 64, below block_m; cupyflash._params.q_row_shift). Under a causal
  // mask the rows a block_m that does not divide seqlen_q leaves over then fall in
  // the first block, which attends the fewest key tiles, and not in the last, which
  // attends the most: the warpgroups whose rows all lie outside [0, seqlen_q) skip
  // the item. 0 for every other kernel and layout.
  int q_row_shift;
  // Hopper kernel, persistent and unmasked: the last sk_items work items are split
  // evenly over the grid by key tiles, sk_tiles per item (split_tail.h); 0 otherwise.
  int sk_items;
  int sk_tiles;
  // Hopper kernel, the walk-table variants (kTableWalk) under a causal mask (never null
  // there), null otherwise: the walk laid out on the host (cupyflash/_walk.py,
  // block_order.h): gridDim.x + 1 offsets, then each CTA's walk positions in order. Last,
  // so that the other fields keep their offsets (the other variants' code is unchanged).
  const int* walk_table;
};

}  // namespace cupyflash
