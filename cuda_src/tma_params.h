// TMA tensor maps for the Hopper kernel, built on the host by the driver
// (cuTensorMapEncodeTiled, see cupyflash/_tma.py) and passed by value as a
// second __grid_constant__ kernel parameter: TMA reads them from parameter space.
//
// Each map views a tensor as 4-D (head_dim, seqlen, heads, batch), innermost
// first, with the caller's strides, a box of (64 columns, block rows, 1, 1) and
// the 128-byte swizzle that wgmma's descriptors expect. Out-of-range elements
// (rows past seqlen, columns past head_dim) arrive as zeros, and a store skips them.
#pragma once
#include "common.h"

namespace cupyflash {

constexpr int kTmaDescBytes = 128;  // sizeof(CUtensorMap)
constexpr int kTmaBoxCols = 64;     // 64 16-bit columns = one 128-byte swizzle row

struct alignas(64) TmaDesc {
  u64 opaque[kTmaDescBytes / 8];
};

struct TmaParams {
  TmaDesc q;  // box (64, kBlockM, 1, 1)
  TmaDesc k;  // box (64, kBlockN, 1, 1)
  TmaDesc v;  // box (64, kBlockN, 1, 1)
  // The split fp32 kernel's lo parts (same boxes); unused, zero, otherwise.
  TmaDesc q_lo;
  TmaDesc k_lo;
  TmaDesc v_lo;
  // The output, box (64, 64, 1, 1): one consumer warpgroup's rows (16-bit
  // outputs, stored through shared memory); unused, zero, for fp32 output.
  TmaDesc o;
};

}  // namespace cupyflash
