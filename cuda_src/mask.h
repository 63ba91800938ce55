// Masking for one score tile: keys past seqlen_k, and the causal triangle.
// Query row i may attend key j iff j < seqlen_k and (not causal or j <= i + causal_offset).
#pragma once
#include "params.h"

namespace cupyflash {

// Whether any element of the tile at (m0, n0) can be masked, for rows m0 onwards
// (a block's, or one warp's: its first row decides). Tiles strictly below the
// diagonal and inside seqlen_k skip masking entirely.
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

// The mask of a warp's 16 rows (row0 .. row0 + 15) by chunks of kBlockN / kChunks
// keys, for a tile that needs one: a chunk that every row of the warp sees whole
// is left alone, a chunk that no row sees at all is left alone too and reported
// dead (its scores are not -inf: the softmax must skip it, softmax.h LiveChunks),
// and only the chunks the row bounds cut are masked per score. Returns bit c set
// for every chunk c that some row sees (warp-uniform). On a causal diagonal tile
// most chunks are whole or dead, which saves the two instructions per score of
// the per-score mask as well as the dead chunks' exponentials.
template <int kChunks, int kNTiles>
__device__ __forceinline__ unsigned apply_mask_chunked(float (&s)[kNTiles][4], const FlashParams& p, int row0,
                                                       int n0, int lane) {
  static_assert(kNTiles % kChunks == 0, "chunks of whole n8 tiles");
  constexpr int kPerChunk = kNTiles / kChunks, kChunkKeys = 8 * kPerChunk, kWarpRows = 16;
  // Key bounds (exclusive) of the warp's first and last row: limits grow with the row.
  auto limit_of = [&](int row) { return p.causal ? min(p.seqlen_k, row + p.causal_offset + 1) : p.seqlen_k; };
  const int lo_limit = limit_of(row0), hi_limit = limit_of(row0 + kWarpRows - 1);
  unsigned live = 0;
#pragma unroll
  for (int c = 0; c < kChunks; ++c) {
    const int k0 = n0 + c * kChunkKeys;
    if (k0 < hi_limit) live |= 1u << c;
    if (k0 < hi_limit && k0 + kChunkKeys > lo_limit) {  // cut by some row's bound
      float(&part)[kPerChunk][4] = *reinterpret_cast<float(*)[kPerChunk][4]>(&s[c * kPerChunk]);
      apply_mask_rows<2>(part, p, row0, k0, lane);
    }
  }
  return live;
}

// The 16-row (m16 fragment) case used by the fp16/bf16 kernels.
template <int kNTiles>
__device__ __forceinline__ void apply_mask(float (&s)[kNTiles][4], const FlashParams& p, int row0, int n0,
                                           int lane) {
  apply_mask_rows<2>(s, p, row0, n0, lane);
}

}  // namespace cupyflash
