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

// load_tile_async's copies one at a time, so that a kernel can spread them over
// other work (flash_fwd_mma.cuh, kVSpread): the same layout, pointer bump and
// zero-fill, but the row test of copy i compares the immediate i * kRowStep with
// the rows left from the thread's first row. load_tile_async's test
// (row0 + i * kRowStep < valid_rows) made ptxas keep the 16 sums row0 + i * kRowStep
// live across the mma kernel's key loop at width 256 (one register each); these
// free them. load_tile_async stays as it is, so the shipped variants' SASS does not
// move (through TileCopy, ptxas also reordered the prologue of widths 80-192).
template <int kRows, int kD, int kThreads>
struct TileCopy {
  using L = SmemTile<kD>;
  static_assert(kThreads >= L::kChunksPerRow, "every chunk column needs a thread");
  static constexpr int kRowStep = kThreads / L::kChunksPerRow;  // rows one pass of the active threads covers
  static constexpr int kActive = kRowStep * L::kChunksPerRow;   // threads that copy
  static constexpr int kFullSteps = kRows / kRowStep;           // copies every active thread makes
  static constexpr int kTailRows = kRows % kRowStep;            // rows left for one more, partial pass

  const u16* gmem;
  const u16* src;  // this thread's next source chunk: one bump per copy
  i64 src_step;
  u32 dst;
  int row0;
  int rows_left;  // valid rows from this thread's first row (row0) on
  bool chunk_valid;

  __device__ __forceinline__ TileCopy(u16* smem, const u16* gmem_, i64 row_stride, int valid_rows_,
                                      int valid_chunks, int tid)
      : gmem(gmem_) {
    const int chunk = tid % L::kChunksPerRow;
    row0 = tid / L::kChunksPerRow;
    rows_left = valid_rows_ - row0;
    chunk_valid = chunk < valid_chunks;
    src = gmem + row0 * row_stride + chunk * kElemsPerChunk;
    src_step = kRowStep * row_stride;
    dst = smem_addr(smem + row0 * L::kPitch + chunk * kElemsPerChunk);
  }
  // This thread's copy of pass i (0 .. kFullSteps - 1, in order: the source pointer
  // steps once per call). Threads >= kActive must not call it.
  __device__ __forceinline__ void full_step(int i) {
    const bool valid = chunk_valid && i * kRowStep < rows_left;
    cp_async_16(dst + i * kRowStep * L::kPitch * 2, valid ? src : gmem, valid);
    src += src_step;
  }
  // The partial last pass, after every full_step.
  __device__ __forceinline__ void tail() {
    if constexpr (kTailRows > 0) {
      if (row0 < kTailRows) {
        const bool valid = chunk_valid && kFullSteps * kRowStep < rows_left;
        cp_async_16(dst + kFullSteps * kRowStep * L::kPitch * 2, valid ? src : gmem, valid);
      }
    }
  }
};

// load_tile_async through TileCopy: one block of copies, row tests against immediates.
template <int kRows, int kD, int kThreads>
__device__ __forceinline__ void load_tile_by_copies(u16* smem, const u16* gmem, i64 row_stride, int valid_rows,
                                                    int valid_chunks, int tid) {
  using Copy = TileCopy<kRows, kD, kThreads>;
  if (Copy::kActive < kThreads && tid >= Copy::kActive) return;
  Copy copy(smem, gmem, row_stride, valid_rows, valid_chunks, tid);
#pragma unroll
  for (int i = 0; i < Copy::kFullSteps; ++i) copy.full_step(i);
  copy.tail();
}

}  // namespace cupyflash
