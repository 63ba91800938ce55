// One work item of the Hopper kernel (a query block of one (batch, head)) and
// its epilogue: normalise O, write LSE, and store O, straight from registers
// (fp32 outputs) or staged in shared memory for TMA stores (16-bit outputs).
// Included by flash_fwd_wgmma.cuh, which issues the stores and owns the buffers.
#pragma once
#include "block_order.h"
#include "params.h"
#include "ptx_sm90.h"
#include "softmax.h"
#include "tma_params.h"

namespace cupyflash {

constexpr int kWarpgroupThreads = 128;
constexpr int kSwizzleRowBytes = 128;           // one row of a 128-byte swizzled box

// One query block of one (batch, head), and the key tiles it attends.
struct WorkItem {
  int m0;       // first query row
  int head;
  int batch;
  int kv_head;
  int n_tiles;  // key tiles, walked from the last to the first; 0: every row is masked
  int n_top;    // the first key of the walk's first tile: tile i of the walk starts at n_top - i * kBlockN
};

// One past the last key that query rows before row_end attend. The last row that
// exists (rows past seqlen_q are never stored) bounds a causal block's keys: the last
// block of a length that its height does not divide skips the key tiles only its
// missing rows would see.
__device__ __forceinline__ int key_end(const FlashParams& p, int row_end) {
  return p.causal ? min(p.seqlen_k, min(row_end, p.seqlen_q) + p.causal_offset) : p.seqlen_k;
}

template <int kBlockM, int kBlockN>
__device__ __forceinline__ WorkItem work_item(const FlashParams& p, const BlockCoord& bc) {
  WorkItem w;
  w.m0 = bc.m_block * kBlockM - p.q_row_shift;  // negative rows: TMA loads zeros, stores skip them
  w.head = bc.head;
  w.batch = bc.batch;
  w.kv_head = bc.head / p.group;
  const int n_end = key_end(p, w.m0 + kBlockM);
  w.n_tiles = n_end > 0 ? ceil_div(n_end, kBlockN) : 0;
  w.n_top = (w.n_tiles - 1) * kBlockN;
  if (bc.t_end > 0) {  // the split tail: walk positions [t_begin, t_end) only
    w.n_top -= bc.t_begin * kBlockN;
    w.n_tiles = bc.t_end - bc.t_begin;
  }
  return w;
}

// The key tiles of item w that rows [w.m0 + row0, w.m0 + row0 + 64) (one consumer
// warpgroup's) attend: under a causal mask the block's last tiles (walked first) can
// lie wholly past the diagonal for its upper rows. At least one, so that a
// warpgroup whose rows all attend nothing still writes zeros through the usual path.
template <int kBlockN>
__device__ __forceinline__ int warpgroup_tiles(const FlashParams& p, const WorkItem& w, int row0) {
  if (!p.causal) return w.n_tiles;
  const int n_end = key_end(p, w.m0 + row0 + 64);
  return n_end > kBlockN ? min(w.n_tiles, ceil_div(n_end, kBlockN)) : 1;
}

// The end of one work item's softmax for this thread's rows (g, g + 8) of its
// warp (row_off: the warp's first row in the query block): writes LSE and
// returns each row's output multiplier, out_scale / sum. sum == 0 only for a row
// that attends no key: multiplier 0 (output 0) and LSE -inf, never NaN.
__device__ __forceinline__ float2 finish_rows(const FlashParams& p, const WorkItem& w, const RowState& rs, int row_off,
                                              int lane, float scale_log2, float out_scale) {
  const int g = lane / 4, t = lane % 4;
  float inv[2];
#pragma unroll
  for (int half = 0; half < 2; ++half) {
    const float sum = quad_sum(rs.sum[half]);
    inv[half] = sum > 0.f ? out_scale / sum : 0.f;
    const int row = w.m0 + row_off + g + 8 * half;
    if (p.lse != nullptr && t == 0 && row >= 0 && row < p.seqlen_q) {
      const float lse = sum > 0.f ? (rs.max[half] * scale_log2 + __log2f(sum)) * kLn2 : neg_inf_f32();
      p.lse[(static_cast<i64>(w.batch) * p.heads_q + w.head) * p.seqlen_q + row] = lse;
    }
  }
  return make_float2(inv[0], inv[1]);
}

// Epilogue of one work item, whose P.V have all landed in o_acc and whose softmax
// state is rs: normalise, write O straight from registers, write LSE. row_off is
// the first row of this thread's warp within the query block. kZeros: an item
// whose every row is masked (zeros, LSE -inf), without reading o_acc. The fp32
// outputs take this path; 16-bit ones go through shared memory (stage_o).
template <class Elem, bool kFp32, int kOTiles, bool kZeros = false>
__device__ __forceinline__ void store_o(const FlashParams& p, const WorkItem& w, const RowState& rs,
                                        const float (&o_acc)[kOTiles][4], int row_off, int lane, float scale_log2,
                                        float out_scale) {
  using OutT = typename Conditional<kFp32, float, u16>::type;  // fp32 input: fp32 output
  const int g = lane / 4, t = lane % 4;  // this thread's rows (g, g + 8) and column pair in a fragment
  OutT* o = static_cast<OutT*>(p.o) + w.batch * p.o_batch_stride + w.head * p.o_head_stride;
  const float2 inv = finish_rows(p, w, rs, row_off, lane, scale_log2, out_scale);
#pragma unroll
  for (int half = 0; half < 2; ++half) {
    const float inv_sum = half == 0 ? inv.x : inv.y;
    const int row = w.m0 + row_off + g + 8 * half;
    if (row < 0 || row >= p.seqlen_q) continue;  // rows before 0: FlashParams.q_row_shift
    OutT* o_row = o + row * p.o_row_stride;
#pragma unroll
    for (int j = 0; j < kOTiles; ++j) {
      const int col = 8 * j + 2 * t;  // head_dim_v is a multiple of 8 here (padded on the host)
      if (col >= p.head_dim_v) continue;
      const float x = kZeros ? 0.f : o_acc[j][2 * half] * inv_sum;
      const float y = kZeros ? 0.f : o_acc[j][2 * half + 1] * inv_sum;
      if constexpr (kFp32) *reinterpret_cast<float2*>(o_row + col) = make_float2(x, y);
      else *reinterpret_cast<u32*>(o_row + col) = pack2<Elem>(x, y);
    }
  }
}

// Epilogue of one work item for 16-bit outputs, first half: this warp's 16 rows
// of O, normalised and rounded, go into its rows of q_buf (a Q buffer that the
// item no longer reads) in the TMA box layout: kD/64
// boxes, 128-byte rows, 16-byte chunk c of row r at position c ^ (r % 8). One
// stmatrix writes four 8 x 8 matrices: n8 tiles 2jp and 2jp + 1, rows g and g + 8.
// A warp store straight to global memory touches 8 rows per instruction (2 * kD/8
// such stores per thread); this is kD/16 conflict-free shared stores, and one
// TMA store per box writes whole rows (stage_o's caller issues it).
// The consumer's thread index is read afresh (volatile): ptxas otherwise hoists
// this lane's row address out of the item loop and, in the 3-warpgroup variant
// (128 registers), spills it. row_shift: rows past the warpgroup's own 64 (a rotated
// chunk, flash_fwd_wgmma.cuh's kRotate; 0 otherwise).
template <class Elem, int kOTiles, int kBoxBytes>
__device__ __forceinline__ void stage_o(u32 q_buf, float2 inv, const float (&o_acc)[kOTiles][4], int row_shift) {
  constexpr int kTilesPerBox = kTmaBoxCols / 8;
  const int tid = fresh_tid_x() - kWarpgroupThreads;  // consumer threads follow the producer warpgroup
  const int lane = tid % kWarpSize;
  const int r = lane % 8, matrix = lane / 8;  // the row this lane addresses, of matrix 0..3
  const int half = matrix % 2, tile_hi = matrix / 2;
  const int row = 16 * (tid / kWarpSize) + 8 * half + r + row_shift;  // a warp owns 16 rows of the block
  const u32 row_addr = q_buf + row * kSwizzleRowBytes;
  const u32 lane_swizzle = static_cast<u32>(tile_hi ^ r);  // (2jp + tile_hi) ^ r == (2jp % 8) ^ lane_swizzle in a box
#pragma unroll
  for (int jp = 0; jp < kOTiles / 2; ++jp) {
    const int j = 2 * jp;
    const u32 chunk = static_cast<u32>(j % kTilesPerBox) ^ lane_swizzle;
    const u32 addr = row_addr + (j / kTilesPerBox) * kBoxBytes + chunk * 16;
    stmatrix_x4(addr, pack2<Elem>(o_acc[j][0] * inv.x, o_acc[j][1] * inv.x),
                pack2<Elem>(o_acc[j][2] * inv.y, o_acc[j][3] * inv.y),
                pack2<Elem>(o_acc[j + 1][0] * inv.x, o_acc[j + 1][1] * inv.x),
                pack2<Elem>(o_acc[j + 1][2] * inv.y, o_acc[j + 1][3] * inv.y));
  }
}

}  // namespace cupyflash
