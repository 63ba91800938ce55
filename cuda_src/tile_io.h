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
template <int kRows, int kD, int kThreads>
__device__ __forceinline__ void load_tile_async(u16* smem, const u16* gmem, i64 row_stride, int valid_rows,
                                                int valid_chunks, int tid) {
  using L = SmemTile<kD>;
  constexpr int kChunks = kRows * L::kChunksPerRow;
  static_assert(kChunks % kThreads == 0, "tile chunks must divide evenly among the threads");
  if constexpr (kThreads % L::kChunksPerRow == 0) {
    // Every thread keeps one chunk column and steps down the rows: one pointer
    // bump per copy, instead of a 64-bit multiply (this freed the registers
    // that let the 128 x 64 tile at head dim 128 run without spilling).
    constexpr int kRowStep = kThreads / L::kChunksPerRow;
    const int chunk = tid % L::kChunksPerRow;
    const int row0 = tid / L::kChunksPerRow;
    const bool chunk_valid = chunk < valid_chunks;
    const u16* src = gmem + row0 * row_stride + chunk * kElemsPerChunk;
    const i64 src_step = kRowStep * row_stride;
    const u32 dst = smem_addr(smem + row0 * L::kPitch + chunk * kElemsPerChunk);
#pragma unroll
    for (int i = 0; i < kChunks / kThreads; ++i) {
      const bool valid = chunk_valid && row0 + i * kRowStep < valid_rows;
      cp_async_16(dst + i * kRowStep * L::kPitch * 2, valid ? src : gmem, valid);
      src += src_step;
    }
  } else {  // widths whose chunks per row do not divide the thread count (96, 160, 224)
#pragma unroll
    for (int i = 0; i < kChunks / kThreads; ++i) {
      const int idx = tid + i * kThreads;
      const int row = idx / L::kChunksPerRow;
      const int chunk = idx % L::kChunksPerRow;
      const bool valid = row < valid_rows && chunk < valid_chunks;
      const u16* src = valid ? gmem + row * row_stride + chunk * kElemsPerChunk : gmem;
      cp_async_16(smem_addr(smem + row * L::kPitch + chunk * kElemsPerChunk), src, valid);
    }
  }
}

}  // namespace cupyflash
