// Masking for one score tile: keys past seqlen_k, and the causal triangle.
// Query row i may attend key j iff j < seqlen_k and (not causal or j <= i + causal_offset).
#pragma once
#include "params.h"

namespace cupyflash {

// Whether any element of the (kBlockM x kBlockN) tile at (m0, n0) can be masked.
// Tiles strictly below the diagonal and inside seqlen_k skip masking entirely.
template <int kBlockM, int kBlockN>
__device__ __forceinline__ bool tile_needs_mask(const FlashParams& p, int m0, int n0) {
  if (n0 + kBlockN > p.seqlen_k) return true;
  return p.causal && (n0 + kBlockN - 1 > m0 + p.causal_offset);
}

// Apply the mask to a warp's slice of a score tile in C-fragment layout: rows
// g (and g + 8 when kRowHalves = 2: the m16 fragments of mma.sync; the m8
// fragments of the fp64 DMMA kernel have one), columns 2t and 2t + 1 of each n8
// tile. row0: the absolute query row of fragment row 0; n0: the absolute key of column 0.
template <int kRowHalves, class T, int kNTiles>
__device__ __forceinline__ void apply_mask_rows(T (&s)[kNTiles][2 * kRowHalves], const FlashParams& p, int row0,
                                                int n0, int lane) {
  const int g = lane / 4, t = lane % 4;
#pragma unroll
  for (int half = 0; half < kRowHalves; ++half) {
    const int row = row0 + g + 8 * half;
    // Last key this row may see (exclusive bound).
    int limit = p.seqlen_k;
    if (p.causal) limit = min(limit, row + p.causal_offset + 1);
#pragma unroll
    for (int j = 0; j < kNTiles; ++j) {
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        const int col = n0 + j * 8 + 2 * t + e;
        if (col >= limit) s[j][2 * half + e] = neg_inf_of(T());
      }
    }
  }
}

// The 16-row (m16 fragment) case used by the fp16/bf16 kernels.
template <int kNTiles>
__device__ __forceinline__ void apply_mask(float (&s)[kNTiles][4], const FlashParams& p, int row0, int n0,
                                           int lane) {
  apply_mask_rows<2>(s, p, row0, n0, lane);
}

}  // namespace cupyflash
