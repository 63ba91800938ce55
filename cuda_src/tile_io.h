// Moving tiles between global and shared memory for the tensor-core kernel.
//
// Shared layout: a tile of R rows x kD 16-bit columns, each row padded by 8
// elements (16 bytes). The row pitch is then an odd multiple of 16 bytes, so the
// eight row addresses of one ldmatrix phase land in eight different 16-byte bank
// groups: no bank conflicts, for every kD that is a multiple of 16.
#pragma once
#include "ptx.h"

namespace cupyflash {

constexpr int kElemsPerChunk = 8;  // one 16-byte chunk of 16-bit elements
constexpr int kSmemPad = 8;        // elements of padding per shared row

template <int kD>
struct SmemTile {
  static constexpr int kPitch = kD + kSmemPad;  // elements per shared row
  static constexpr int kChunksPerRow = kD / kElemsPerChunk;
};

// Copy rows [0, kRows) of a global tile into shared memory with cp.async.
// Rows >= valid_rows and chunks >= valid_chunks (past head_dim) are zero-filled,
// so padded rows and columns contribute nothing to either GEMM.
// Preconditions (checked on the host): 16-byte aligned base, row stride a
// multiple of 8 elements, head_dim a multiple of 8.
//
// Every thread keeps one chunk column and steps down the rows: one pointer bump
// per copy, instead of a 64-bit multiply and a div/mod (this freed the registers
// that let the 128 x 64 tile at head dim 128 run without spilling). Rows of 10,
// 12, 20, 24 or 28 chunks (widths 80, 96, 160, 192, 224) do not divide 128
// threads: then only the first kActive = kRowStep * chunks-per-row threads copy
// (120 of 128 at width 96, stepping 10 rows), and when kRowStep does not divide
// kRows, the first kTailRows rows of the tile's last pass take one more copy.
// Against the even split these widths used before (a div/mod and a 64-bit
// multiply per copy), 128 x 64 at width 96 went from 255 registers and 4-16 B
// of spills to 246-249 and none, and widths 160-224 from 205-251 registers to
// 166-172 (NVRTC 13.0 and 13.5, sm_80 and sm_90a).
template <int kRows, int kD, int kThreads>
__device__ __forceinline__ void load_tile_async(u16* smem, const u16* gmem, i64 row_stride, int valid_rows,
                                                int valid_chunks, int tid) {
  using L = SmemTile<kD>;
  static_assert(kThreads >= L::kChunksPerRow, "every chunk column needs a thread");
  constexpr int kRowStep = kThreads / L::kChunksPerRow;  // rows one pass of the active threads covers
  constexpr int kActive = kRowStep * L::kChunksPerRow;   // threads that copy
  constexpr int kFullSteps = kRows / kRowStep;           // copies every active thread makes
  constexpr int kTailRows = kRows % kRowStep;            // rows left for one more, partial pass
  if (kActive < kThreads && tid >= kActive) return;
  const int chunk = tid % L::kChunksPerRow;
  const int row0 = tid / L::kChunksPerRow;
  const bool chunk_valid = chunk < valid_chunks;
  const u16* src = gmem + row0 * row_stride + chunk * kElemsPerChunk;
  const i64 src_step = kRowStep * row_stride;
  const u32 dst = smem_addr(smem + row0 * L::kPitch + chunk * kElemsPerChunk);
#pragma unroll
  for (int i = 0; i < kFullSteps; ++i) {
    const bool valid = chunk_valid && row0 + i * kRowStep < valid_rows;
    cp_async_16(dst + i * kRowStep * L::kPitch * 2, valid ? src : gmem, valid);
    src += src_step;
  }
  if constexpr (kTailRows > 0) {
    if (row0 < kTailRows) {
      const bool valid = chunk_valid && row0 + kFullSteps * kRowStep < valid_rows;
      cp_async_16(dst + kFullSteps * kRowStep * L::kPitch * 2, valid ? src : gmem, valid);
    }
  }
}

}  // namespace cupyflash
