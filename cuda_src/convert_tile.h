// In-kernel fp32 -> fp16 conversion of one staged tile, used by the converter
// warps of wgmma_convert.h. The plan: bench/notes/fp32_in_kernel.md, "In-kernel
// conversion, offline work". TMA puts a tile of the caller's float32 q, k or v
// into shared memory as fp32 boxes (rows x 32 columns, 128-byte swizzled); the
// producer warpgroup's three idle warps (the converters) take the tile's finite
// abs-max, its shift (split_shift.h, as the pre-pass), and write the tile x 2^e
// as fp16 boxes (rows x 64 columns, 128-byte swizzled), the layout wgmma reads.
//
// Both layouts are TMA's 128-byte swizzle: the 16-byte chunk c of row r of a box
// sits at chunk position c ^ (r % 8); a box is rows x 128 bytes, a tile's boxes
// are consecutive. (Host-callable so that tests/test_convert_tile.py checks
// them against a Python model with static_asserts.)
#pragma once
#include "common.h"
#include "ptx.h"
#include "split_shift.h"
#include "tile_shifts.h"

namespace cupyflash {

constexpr int kConverterWarps = 3;  // warps 1-3 of the producer warpgroup; warp 0 issues TMA
constexpr int kConverterThreads = kConverterWarps * kWarpSize;
// Named barrier of the converters' abs-max (0 is __syncthreads, 1-2 and 10 the pingpong
// turns, 3-5 the epilogues of up to three consumer warpgroups).
constexpr int kConvertBarrier = 6;
constexpr int kCvtRowBytes = 128;  // one swizzled box row (= kSwizzleRowBytes)
constexpr int kCvtChunkBytes = 16;
constexpr int kCvtSwizzleRows = 8;  // the swizzle's period in rows
constexpr int kF32BoxCols = kCvtRowBytes / 4;   // 32
constexpr int kF16BoxCols = kCvtRowBytes / 2;   // 64
constexpr int kF32ChunkElems = kCvtChunkBytes / 4;  // 4
constexpr int kF16ChunkElems = kCvtChunkBytes / 2;  // 8
// An fp32 chunk (4 values) becomes half an fp16 chunk: 8 bytes.
constexpr int kF16HalfChunkBytes = kCvtChunkBytes / 2;
// Lanes per row in one warp instruction: the 8 chunks of an fp32 box row.
constexpr int kLanesPerRow = kCvtRowBytes / kCvtChunkBytes;
// Rows per warp instruction, and instructions per 8-row swizzle atom.
constexpr int kRowsPerWarpStep = kWarpSize / kLanesPerRow;                // 4
constexpr int kStepsPerAtom = kCvtSwizzleRows / kRowsPerWarpStep;         // 2

// Byte offset of chunk `chunk` of row `row` of box `box`, in a tile of `rows` rows.
__host__ __device__ constexpr u32 swizzled_chunk_offset(int rows, int box, int row, int chunk) {
  return static_cast<u32>((box * rows + row) * kCvtRowBytes + kCvtChunkBytes * (chunk ^ (row % kCvtSwizzleRows)));
}
// Byte offset of fp32 element (row, col) of a staged tile of `rows` rows.
__host__ __device__ constexpr u32 f32_elem_offset(int rows, int row, int col) {
  return swizzled_chunk_offset(rows, col / kF32BoxCols, row, (col % kF32BoxCols) / kF32ChunkElems) +
         4 * (col % kF32ChunkElems);
}
// Byte offset of fp16 element (row, col) of a converted tile of `rows` rows.
__host__ __device__ constexpr u32 f16_elem_offset(int rows, int row, int col) {
  return swizzled_chunk_offset(rows, col / kF16BoxCols, row, (col % kF16BoxCols) / kF16ChunkElems) +
         2 * (col % kF16ChunkElems);
}
// Where fp32 chunk (box b, row r, chunk c) lands, as 8 bytes: fp16 box b / 2,
// chunk 4 (b % 2) + c / 2, its low or high 8 bytes by c % 2. (= f16_elem_offset
// of the chunk's first element, (r, 32 b + 4 c).)
__host__ __device__ constexpr u32 f16_dst_of_f32_chunk(int rows, int b, int r, int c) {
  return swizzled_chunk_offset(rows, b / 2, r, (kF32BoxCols / kF16ChunkElems) * (b % 2) + c / 2) +
         kF16HalfChunkBytes * (c % 2);
}
// The row (within an 8-row swizzle atom) of lane `lane` in warp step k (0 or 1)
// of the atom: lanes 8q..8q+7 take row 4 (q % 2) + q / 2 + 2 k, lane % 8 its chunk.
// Hazard: a half-warp (the unit of an STS.64) must pair rows r and r + 4: the 64
// bytes one row's fp32 box writes fill the half (r % 8) >> 2 of the fp16 row (the
// swizzle's bit 2), so rows r and r + 4 fill complementary halves, all 32 banks
// once. Rows r and r + 1 (lane / 8 order) would share a half: 2-way conflicts.
__host__ __device__ constexpr int converter_row_in_atom(int lane, int k) {
  return kRowsPerWarpStep * ((lane / kLanesPerRow) % 2) + (lane / kLanesPerRow) / 2 + 2 * k;
}

__device__ __forceinline__ float4 lds128_f32(u32 addr) {
  float4 v;
  asm volatile("ld.shared.v4.f32 {%0, %1, %2, %3}, [%4];\n"
               : "=f"(v.x), "=f"(v.y), "=f"(v.z), "=f"(v.w) : "r"(addr) : "memory");
  return v;
}
__device__ __forceinline__ void sts64(u32 addr, u32 a, u32 b) {
  asm volatile("st.shared.v2.b32 [%0], {%1, %2};\n" ::"r"(addr), "r"(a), "r"(b) : "memory");
}
__device__ __forceinline__ void sts32(u32 addr, u32 a) {
  asm volatile("st.shared.b32 [%0], %1;\n" ::"r"(addr), "r"(a) : "memory");
}
__device__ __forceinline__ u32 lds32(u32 addr) {
  u32 v;
  asm volatile("ld.shared.b32 %0, [%1];\n" : "=r"(v) : "r"(addr) : "memory");
  return v;
}

// An odd fp32 box fills the other half of its fp16 box's row: chunk position
// (4 + c / 2) ^ r instead of (c / 2) ^ r, i.e. the offset with bit 6 flipped.
constexpr u32 kOddBoxDstFlip = 4 * kCvtChunkBytes;

// This lane's byte offsets within an 8-row swizzle atom, for its two rows
// (warp step k = 0, 1; converter_row_in_atom) and its chunk (lane % 8): where
// it reads in a staged fp32 box, and where that chunk lands in an fp16 box for
// an even fp32 box (fp32 box b fills half b % 2 of fp16 box b / 2; an odd one:
// ^ kOddBoxDstFlip). An atom starts at a multiple of 8 rows, so these hold in
// every atom and box.
struct ConverterLane {
  u32 src[kStepsPerAtom];
  u32 dst[kStepsPerAtom];
};
__device__ __forceinline__ ConverterLane converter_lane(int lane) {
  ConverterLane l;
  const int chunk = lane % kLanesPerRow;
#pragma unroll
  for (int k = 0; k < kStepsPerAtom; ++k) {
    const int r = converter_row_in_atom(lane, k);
    l.src[k] = swizzled_chunk_offset(kCvtSwizzleRows, 0, r, chunk);
    l.dst[k] = f16_dst_of_f32_chunk(kCvtSwizzleRows, 0, r, chunk);
  }
  return l;
}

// One unit's chunks of this converter thread, held in registers from one read of
// the staged unit (rows x kCols, rows a multiple of 8 and at most kMaxRows,
// known only at run time: a Q unit and a key tile may differ) until they are
// converted: the abs-max and the conversion read shared memory once, not twice.
// Converter warp w takes the 8-row atoms w, w + kWarps, ..., each whole (2 x kCols /
// 32 warp steps). All loads are issued before any value is used. Hazard: the
// shared-memory accesses are volatile asm, kept in program order, so a loop that
// loaded and used chunk by chunk would wait out each load's latency (one warp
// per scheduler, nothing else to issue).
// kWarps: the warps that share the unit (the producer's three converters, or the
// four of a consumer warpgroup converting its Q rows: q_convert.h); kWhole: the
// unit always has kMaxRows rows (rows past the tensor are loaded as zeros), so
// every warp holds all kAtoms atoms and no test is compiled.
template <int kCols, int kMaxRows, int kWarps = kConverterWarps, bool kWhole = false>
struct HeldUnit {
  static_assert(kCols % kF16BoxCols == 0, "tile columns: whole fp16 boxes (the head-dim width is a multiple of 64)");
  static_assert(kMaxRows % kCvtSwizzleRows == 0, "unit rows: whole 8-row atoms");
  static constexpr int kBoxes = kCols / kF32BoxCols;
  static constexpr int kAtoms = (kMaxRows / kCvtSwizzleRows + kWarps - 1) / kWarps;
  static_assert(!kWhole || kAtoms * kWarps * kCvtSwizzleRows == kMaxRows, "a whole unit: every warp, every atom");
  static constexpr u32 kAtomBytes = kCvtSwizzleRows * kCvtRowBytes;
  float4 x[kAtoms][kStepsPerAtom][kBoxes];
  int warp, atoms;  // this thread's warp among the converters; the unit's atoms

  __device__ __forceinline__ bool held(int j) const { return kWhole || warp + kWarps * j < atoms; }
  __device__ __forceinline__ u32 atom_offset(int j) const {
    return static_cast<u32>(warp + kWarps * j) * kAtomBytes;
  }

  // f(j, k, b) for every chunk this thread holds: atom j, warp step k, fp32 box b.
  template <class F>
  __device__ __forceinline__ void for_each_held(F&& f) const {
#pragma unroll
    for (int j = 0; j < kAtoms; ++j)
      if (held(j))
#pragma unroll
        for (int k = 0; k < kStepsPerAtom; ++k)
#pragma unroll
          for (int b = 0; b < kBoxes; ++b) f(j, k, b);
  }

  __device__ __forceinline__ void load(u32 stage, int rows, int ct, const ConverterLane& l) {
    warp = ct / kWarpSize;
    atoms = rows / kCvtSwizzleRows;
    const u32 box_bytes = static_cast<u32>(rows) * kCvtRowBytes;
    for_each_held([&](int j, int k, int b) {
      x[j][k][b] = lds128_f32(stage + atom_offset(j) + l.src[k] + b * box_bytes);
    });
  }

  // A whole unit straight from global memory (kWhole): row r, columns c..c+3 of
  // the unit at rows[r * row_stride + c], zeros for rows >= valid_rows and columns
  // >= valid_cols. Each thread takes the chunks that load() would take from a
  // staged copy (converter_row_in_atom: a warp instruction reads 4 whole 128-byte
  // row segments), so store() writes the same layout. The host guarantees 16-byte
  // aligned float4s: base and row stride multiples of 4 floats, valid_cols too.
  __device__ __forceinline__ void load_global(const float* rows, i64 row_stride, int valid_rows, int valid_cols,
                                              int warp_id, int lane) {
    static_assert(kWhole, "a global unit is loaded whole");
    warp = warp_id;
    atoms = kMaxRows / kCvtSwizzleRows;
    const int col = kF32ChunkElems * (lane % kLanesPerRow);
    for_each_held([&](int j, int k, int b) {
      const int r = static_cast<int>(atom_offset(j) / kCvtRowBytes) + converter_row_in_atom(lane, k);
      const int c = b * kF32BoxCols + col;
      x[j][k][b] = r < valid_rows && c < valid_cols
                       ? __ldg(reinterpret_cast<const float4*>(rows + r * row_stride + c))
                       : make_float4(0.f, 0.f, 0.f, 0.f);
    });
  }

  // This thread's part of the abs-max, as float bits (non-negative floats order
  // like their bits). fmaxf ignores NaN (IEEE maxNum) and keeps subnormals (no
  // flush-to-zero in this build), so for finite values and NaNs this is the
  // pre-pass's rule in one FMNMX per value; an infinity makes it inf, and the
  // caller then takes finite_abs_max.
  __device__ __forceinline__ u32 abs_max() const {
    float m = 0.f;
    for_each_held([&](int j, int k, int b) {
      const float4& v = x[j][k][b];
      m = fmaxf(fmaxf(m, fabsf(v.x)), fmaxf(fmaxf(fabsf(v.y), fabsf(v.z)), fabsf(v.w)));
    });
    return __float_as_uint(m);
  }
  // The pre-pass's exact rule (finite_abs_bits: inf and NaN count as 0): the same
  // value as abs_max wherever that is finite.
  __device__ __forceinline__ u32 finite_abs_max() const {
    u32 m = 0;
    for_each_held([&](int j, int k, int b) {
      const float4& v = x[j][k][b];
      m = max(max(m, finite_abs_bits(v.x)), max(finite_abs_bits(v.y), max(finite_abs_bits(v.z), finite_abs_bits(v.w))));
    });
    return m;
  }

  // Writes the unit x 2^e (scale = 2^e, exact) as fp16 into dst, rounded to
  // nearest even as the pre-pass does (split_pair: __fmul_rn, never contracted).
  // kLo: also the remainder x 2^e - hi, as the pre-pass's lo copy, lo_offset
  // bytes after dst. dst's boxes are dst_rows rows apart: a key tile's own rows,
  // or, for the 64 rows of one consumer warpgroup, the whole Q buffer's (the unit
  // lands at its rows of each box; its first row is a multiple of 8, so the
  // swizzle is the same). The caller then runs fence.proxy.async (wgmma reads
  // dst through the async proxy; these are generic-proxy stores) before
  // arriving on dst's barrier.
  template <bool kLo>
  __device__ __forceinline__ void store(u32 dst, int dst_rows, u32 lo_offset, float scale,
                                        const ConverterLane& l) const {
    const u32 dst_box_bytes = static_cast<u32>(dst_rows) * kCvtRowBytes;
    for_each_held([&](int j, int k, int b) {
      const float4& v = x[j][k][b];
      const u32 to = dst + atom_offset(j) + (l.dst[k] ^ (b % 2 ? kOddBoxDstFlip : 0u)) + (b / 2) * dst_box_bytes;
      u32 hi0, hi1, lo0, lo1;
      split_pair(v.x, v.y, scale, hi0, lo0);
      split_pair(v.z, v.w, scale, hi1, lo1);
      sts64(to, hi0, hi1);
      if constexpr (kLo) sts64(to + lo_offset, lo0, lo1);
    });
  }
};

// The tile's abs-max across the three converter warps. words: 3 u32 of shared
// memory. Hazard: the caller alternates two such arrays by tile parity; a warp
// writes tile t + 2's words only after the barrier of tile t + 1, which every
// warp reaches after reading tile t's, so two arrays suffice and one does not.
__device__ __forceinline__ u32 converters_abs_max(u32 m, u32 words, int ct) {
  m = __reduce_max_sync(0xffffffffu, m);
  if (ct % kWarpSize == 0) sts32(words + 4 * (ct / kWarpSize), m);
  asm volatile("bar.sync %0, %1;\n" ::"n"(kConvertBarrier), "n"(kConverterThreads) : "memory");
  return max(lds32(words), max(lds32(words + 4), lds32(words + 8)));
}

}  // namespace cupyflash
