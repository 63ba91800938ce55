// Online softmax for the tensor-core kernel, in the log2 domain.
// Each thread holds two query rows of a warp's 16-row slice (rows g and g+8 of
// the mma C fragment); the four threads of a quad (same g) share a row, so row
// reductions are two xor-shuffles.
#pragma once
#include "ptx.h"

namespace cupyflash {

__device__ __forceinline__ float max_of(float a, float b) { return fmaxf(a, b); }
__device__ __forceinline__ double max_of(double a, double b) { return fmax(a, b); }

// Row reductions over the four threads of a quad, for float (fp16/bf16 kernels)
// and double (the fp64 DMMA kernel) scores.
template <class T>
__device__ __forceinline__ T quad_max(T x) {
  x = max_of(x, __shfl_xor_sync(0xffffffffu, x, 1));
  return max_of(x, __shfl_xor_sync(0xffffffffu, x, 2));
}
template <class T>
__device__ __forceinline__ T quad_sum(T x) {
  x += __shfl_xor_sync(0xffffffffu, x, 1);
  return x + __shfl_xor_sync(0xffffffffu, x, 2);
}

// Running state for the two rows a thread owns. max is in raw score units
// (before scaling), sum is this thread's partial sum: it is reduced across the
// quad only once, at the end (sums commute; maxima must agree every step).
struct RowState {
  float max[2];
  float sum[2];
  __device__ __forceinline__ void init() {
    max[0] = max[1] = neg_inf_f32();
    sum[0] = sum[1] = 0.f;
  }
};

constexpr int kMaxChains = 4;  // independent partial maxima per row half (see softmax_half)
// With kLazyMax (row_max_step) the running max moves only when a tile's max exceeds
// it by more than this many doublings of exp2. Until then P is exp2 of up to +8 instead of at
// most 1: 256 at most, far inside fp16's range (65504), and every rounding of P is
// relative, so the result is the same to the last bits' noise. What it saves is
// O's rescale, one multiply per O element on every tile where some row of a warp
// raised its max: at seqlen 1024 that was 74 % of the tiles (bench/notes/wgmma.md,
// "Where the consumers wait") (bench/notes/wgmma_softmax.md, "A lazy running max").
constexpr float kLazyMaxLog2 = 8.f;

// Which keys of a score tile a warp's rows can see at all. AllLive: every key
// (the unmasked tiles: compile-time, so their code is unchanged). LiveChunks: the
// tile is cut into kMaxChains chunks of consecutive keys and bit c says whether any
// row of this warp sees any key of chunk c (mask.h, apply_mask_chunked; warp-uniform).
// A dead chunk takes no exponential: on a causal diagonal tile about a third of a
// warp's chunks are dead (bench/notes/wgmma_softmax.md, "Dead chunks of the diagonal tile").
struct AllLive {
  static constexpr bool kChunked = false;
  __device__ __forceinline__ bool chunk(int) const { return true; }
};
struct LiveChunks {
  static constexpr bool kChunked = true;
  unsigned bits;
  __device__ __forceinline__ bool chunk(int c) const { return (bits >> c) & 1u; }
};

// How one key tile's raw scores relate to true ones. The 16-bit, tf32 and fp64
// kernels score true units: UnitTile, whose factors are compile-time ones, so
// their code is what it was without tiles. The float32 wgmma kernels with fp16
// operands (flash_fwd_wgmma.cuh, kFp32Terms > 0) score tiles that the pre-pass
// rescaled by powers of two, each tile by its own (tile_shifts.h).
struct UnitTile {
  static constexpr bool kScaled = false, kShiftsP = false;
};
struct ScaledTile {
  static constexpr bool kScaled = true, kShiftsP = false;
  float score_mult;  // raw score * score_mult = true score: 2^-(e_q + e_k), exact
};
// ... and P leaves as p * 2^-p_shift (the one-term kernel, whose O may be in the
// units of a larger V tile than this one: OUnits in tile_shifts.h).
struct ScaledShiftedTile {
  static constexpr bool kScaled = true, kShiftsP = true;
  float score_mult;
  float p_shift;   // an integer in [0, kMaxPShift]
  float sum_mult;  // 2^p_shift: the row sum gets p back exactly
};

// The first half of an online-softmax step for one row half (rows g or g+8 of
// the fragment): the tile's row max joins the running max. Returns the factor
// exp2((old max - new max) * scale) by which O's rows and the running sum must be
// rescaled, and in offset the exponent's shift (new max * scale); moved says
// whether this thread's row max moved.
// Requires scale_log2 > 0 (checked on the host), so max(s) * scale = max(s * scale).
// A scaled tile (Tile::kScaled) keeps the running max in true units: the tile's
// raw max times score_mult, exact (a power of two), so maxima of tiles with
// different shifts compare correctly; LSE and the epilogue read true units as before.
template <int kNTiles, class Tile = UnitTile, class Live = AllLive, bool kLazyMax = false>
__device__ __forceinline__ float row_max_step(const float (&s)[kNTiles][4], RowState& st, int half, float scale_log2,
                                              float& offset, bool& moved, const Tile& tile = Tile{},
                                              const Live& live = Live{}) {
  // The row max runs as kMaxChains interleaved chains joined by a tree, not as
  // one chain: it stands between the scores and the first exponential, and the
  // compiler keeps fmaxf's order as written (one chain was kNTiles dependent
  // FMNMX, ~4 cycles each). Not a full tree: its kNTiles partial maxima held at
  // once pushed the 255-register mma variants into spills under NVRTC 13.0.
  // LiveChunks: chain c is chunk c (consecutive n8 tiles), so that a dead chunk's
  // scores, which the mask left as they were, drop out with one select.
  constexpr int kChains = kNTiles < kMaxChains ? kNTiles : kMaxChains;
  constexpr int kPerChunk = kNTiles / kChains;
  static_assert(!Live::kChunked || kNTiles % kMaxChains == 0, "LiveChunks cuts a tile into kMaxChains chunks");
  float part[kChains];
#pragma unroll
  for (int j = 0; j < kNTiles; ++j) {
    const float m = fmaxf(s[j][2 * half], s[j][2 * half + 1]);
    const int c = Live::kChunked ? j / kPerChunk : j % kChains;
    const bool first = Live::kChunked ? j % kPerChunk == 0 : j < kChains;
    part[c] = first ? m : fmaxf(part[c], m);
  }
  if constexpr (Live::kChunked) {
#pragma unroll
    for (int c = 0; c < kChains; ++c) part[c] = live.chunk(c) ? part[c] : neg_inf_f32();
  }
#pragma unroll
  for (int w = 1; w < kChains; w *= 2)
#pragma unroll
    for (int j = 0; j + w < kChains; j += 2 * w) part[j] = fmaxf(part[j], part[j + w]);
  float tile_max = quad_max(part[0]);
  if constexpr (Tile::kScaled) tile_max *= tile.score_mult;
  // kLazyMax: raise the running max only past kLazyMaxLog2. A first finite max
  // always raises it ((x - -inf) * scale is +inf); a tile with no unmasked key
  // never does (-inf, or NaN when the running max is -inf too: both compare false).
  const float new_max = !kLazyMax ? fmaxf(st.max[half], tile_max)
                        : (tile_max - st.max[half]) * scale_log2 > kLazyMaxLog2 ? tile_max : st.max[half];
  // A row with no unmasked key so far has max = -inf: use 0 as the offset so
  // that exp2(-inf - offset) = 0 instead of exp2(-inf - -inf) = NaN.
  offset = new_max == neg_inf_f32() ? 0.f : new_max * scale_log2;
  // Compare the raw maxima: recomputing exp2(max * scale - offset) for an
  // unchanged max need not give exactly 1 once the compiler fuses it into an FFMA.
  moved = new_max != st.max[half];
  const float correction = moved ? exp2_ftz(st.max[half] * scale_log2 - offset) : 1.f;
  st.max[half] = new_max;
  return correction;
}

// The second half: s becomes p = exp2(s * scale_log2 - offset) for that row half,
// and the running sum moves on (rescaled by correction first). A scaled tile's raw
// scores take the tile's factor in the exponent's multiplier (exact: a power of
// two); a shifted P subtracts its shift from the exponent.
template <int kNTiles, class Tile = UnitTile, class Live = AllLive>
__device__ __forceinline__ void exp_step(float (&s)[kNTiles][4], RowState& st, int half, float scale_log2,
                                         float offset, float correction, const Tile& tile = Tile{},
                                         const Live& live = Live{}) {
  float score_log2 = scale_log2, p_offset = offset;
  if constexpr (Tile::kScaled) score_log2 *= tile.score_mult;
  if constexpr (Tile::kShiftsP) p_offset += tile.p_shift;
  constexpr int kChunks = Live::kChunked ? kMaxChains : 1;
  constexpr int kPerChunk = kNTiles / kChunks;
  float tile_sum = 0.f;
#pragma unroll
  for (int c = 0; c < kChunks; ++c) {
    if (live.chunk(c)) {  // warp-uniform; always true (no branch) for AllLive
#pragma unroll
      for (int j = c * kPerChunk; j < (c + 1) * kPerChunk; ++j) {
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          // One FFMA + EX2 per score: the scale is folded into the exponent.
          const float p = exp2_ftz(fmaf(s[j][2 * half + e], score_log2, -p_offset));
          s[j][2 * half + e] = p;
          tile_sum += p;
        }
      }
    } else {
#pragma unroll
      for (int j = c * kPerChunk; j < (c + 1) * kPerChunk; ++j) s[j][2 * half] = s[j][2 * half + 1] = 0.f;
    }
  }
  if constexpr (Tile::kShiftsP) tile_sum *= tile.sum_mult;
  st.sum[half] = st.sum[half] * correction + tile_sum;
}

// Both halves of the step for one row half: s becomes P, and the factor by which
// O's rows must be rescaled is returned; any_moved says whether any row of the
// warp moved (after the first few key tiles the maxima rarely do, and O is left alone).
template <int kNTiles, class Tile = UnitTile, class Live = AllLive, bool kLazyMax = false>
__device__ __forceinline__ float softmax_half(float (&s)[kNTiles][4], RowState& st, int half, float scale_log2,
                                              bool& any_moved, const Tile& tile = Tile{}, const Live& live = Live{}) {
  float offset;
  bool moved;
  const float correction =
      row_max_step<kNTiles, Tile, Live, kLazyMax>(s, st, half, scale_log2, offset, moved, tile, live);
  exp_step(s, st, half, scale_log2, offset, correction, tile, live);
  any_moved = __any_sync(0xffffffffu, moved);  // warp-uniform
  return correction;
}

template <int kOTiles>
__device__ __forceinline__ void rescale_o_half(float (&acc_o)[kOTiles][4], int half, float factor) {
#pragma unroll
  for (int j = 0; j < kOTiles; ++j) {
    acc_o[j][2 * half] *= factor;
    acc_o[j][2 * half + 1] *= factor;
  }
}

// Fold one tile of raw scores s (kNTiles n8 tiles, C-fragment layout) into the
// running state and rescale O at once: for kernels whose P.V comes right after.
// Maxima first, then O's (conditional) rescale, then the exponentials: with no
// branch between the exponentials and the P.V that follows, the compiler can
// interleave the MUFU.EX2 of later score columns with the HMMAs of earlier ones
// (FlashAttention-2's SASS does; with the rescale's branch after the
// exponentials ours ran them as one block: bench/notes/mma.md, "Exponentials
// beside the P.V").
// kExpAfterRescale = false keeps the older order (per row half: maxima,
// exponentials, then the rescale), which needs fewer registers live at once.
// kLazyMax: the lazy running max (kLazyMaxLog2), where it fits the registers.
template <bool kExpAfterRescale, bool kLazyMax = false, int kNTiles, int kOTiles>
__device__ __forceinline__ void online_softmax_step(float (&s)[kNTiles][4], float (&acc_o)[kOTiles][4],
                                                    RowState& st, float scale_log2) {
  if constexpr (!kExpAfterRescale) {
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      bool any_moved;
      const float factor = softmax_half<kNTiles, UnitTile, AllLive, kLazyMax>(s, st, half, scale_log2, any_moved);
      if (any_moved) rescale_o_half(acc_o, half, factor);
    }
    return;
  }
  float offset[2], correction[2];
#pragma unroll
  for (int half = 0; half < 2; ++half) {
    bool moved;
    correction[half] =
        row_max_step<kNTiles, UnitTile, AllLive, kLazyMax>(s, st, half, scale_log2, offset[half], moved);
    if (__any_sync(0xffffffffu, moved)) rescale_o_half(acc_o, half, correction[half]);
  }
#pragma unroll
  for (int half = 0; half < 2; ++half) exp_step(s, st, half, scale_log2, offset[half], correction[half]);
}

// How O must be rescaled after a softmax step, kept for later.
struct RowCorrection {
  float factor[2];
  bool any_moved[2];
};

// The same step leaving O alone, so that the previous tile's P.V can still be
// in flight on the tensor cores; apply the result with rescale_o once it lands.
// With a lazy running max by default (kLazyMaxLog2; the Hopper kernel's: the
// mma.sync kernel's 255-register variants spilled 4-12 bytes with it).
template <bool kLazyMax = true, int kNTiles, class Tile = UnitTile, class Live = AllLive>
__device__ __forceinline__ RowCorrection softmax_update(float (&s)[kNTiles][4], RowState& st, float scale_log2,
                                                        const Tile& tile = Tile{}, const Live& live = Live{}) {
  RowCorrection corr;
#pragma unroll
  for (int half = 0; half < 2; ++half)
    corr.factor[half] =
        softmax_half<kNTiles, Tile, Live, kLazyMax>(s, st, half, scale_log2, corr.any_moved[half], tile, live);
  return corr;
}

// O's units move by `unit` (a power of two, the same for every row: the one-term
// kernel's OUnits): fold it into a pending correction, which must then be applied.
__device__ __forceinline__ void fold_unit_change(RowCorrection& corr, float unit) {
#pragma unroll
  for (int half = 0; half < 2; ++half) {
    corr.factor[half] *= unit;
    corr.any_moved[half] = true;
  }
}


template <int kOTiles>
__device__ __forceinline__ void rescale_o(float (&acc_o)[kOTiles][4], const RowCorrection& corr) {
#pragma unroll
  for (int half = 0; half < 2; ++half)
    if (corr.any_moved[half]) rescale_o_half(acc_o, half, corr.factor[half]);
}

}  // namespace cupyflash
