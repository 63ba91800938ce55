// Online softmax for the tensor-core kernel, in the log2 domain.
// Each thread holds two query rows of a warp's 16-row slice (rows g and g+8 of
// the mma C fragment); the four threads of a quad (same g) share a row, so row
// reductions are two xor-shuffles.
#pragma once
#include "ptx.h"

namespace cupyflash {

__device__ __forceinline__ float quad_max(float x) {
  x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, 1));
  return fmaxf(x, __shfl_xor_sync(0xffffffffu, x, 2));
}
__device__ __forceinline__ float quad_sum(float x) {
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

// How O must be rescaled after one softmax step: per row half, the factor
// exp2((old max - new max) * scale), and whether any row of the warp moved.
struct RowCorrection {
  float factor[2];
  bool any_moved[2];
};

// Fold one tile of raw scores s (kNTiles n8 tiles, C-fragment layout) into the
// running state: s becomes p = exp2(s * scale_log2 - m). O is left alone; the
// returned correction says how to rescale it (rescale_o), so a caller may run
// this while the previous tile's P.V is still in flight on the tensor cores.
// Requires scale_log2 > 0 (checked on the host), so max(s) * scale = max(s * scale).
template <int kNTiles>
__device__ __forceinline__ RowCorrection softmax_update(float (&s)[kNTiles][4], RowState& st, float scale_log2) {
  RowCorrection corr;
#pragma unroll
  for (int half = 0; half < 2; ++half) {
    float tile_max = neg_inf_f32();
#pragma unroll
    for (int j = 0; j < kNTiles; ++j) tile_max = fmaxf(tile_max, fmaxf(s[j][2 * half], s[j][2 * half + 1]));
    tile_max = quad_max(tile_max);
    const float new_max = fmaxf(st.max[half], tile_max);
    // A row with no unmasked key so far has max = -inf: use 0 as the offset so
    // that exp2(-inf - offset) = 0 instead of exp2(-inf - -inf) = NaN.
    const float offset = new_max == neg_inf_f32() ? 0.f : new_max * scale_log2;
    // Compare the raw maxima: recomputing exp2(max * scale - offset) for an
    // unchanged max need not give exactly 1 once the compiler fuses it into an FFMA.
    const bool moved = new_max != st.max[half];
    corr.factor[half] = moved ? exp2_ftz(st.max[half] * scale_log2 - offset) : 1.f;
    // After the first few key tiles the row maxima rarely move: O is rescaled
    // only if some row of the warp moved (a warp-uniform branch).
    corr.any_moved[half] = __any_sync(0xffffffffu, moved);
    st.max[half] = new_max;
    float tile_sum = 0.f;
#pragma unroll
    for (int j = 0; j < kNTiles; ++j) {
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        // One FFMA + EX2 per score: the scale is folded into the exponent.
        const float p = exp2_ftz(fmaf(s[j][2 * half + e], scale_log2, -offset));
        s[j][2 * half + e] = p;
        tile_sum += p;
      }
    }
    st.sum[half] = st.sum[half] * corr.factor[half] + tile_sum;
  }
  return corr;
}

template <int kOTiles>
__device__ __forceinline__ void rescale_o(float (&acc_o)[kOTiles][4], const RowCorrection& corr) {
#pragma unroll
  for (int half = 0; half < 2; ++half) {
    if (corr.any_moved[half]) {
#pragma unroll
      for (int j = 0; j < kOTiles; ++j) {
        acc_o[j][2 * half] *= corr.factor[half];
        acc_o[j][2 * half + 1] *= corr.factor[half];
      }
    }
  }
}

// Both at once, for kernels whose P.V for this tile comes right after.
template <int kNTiles, int kOTiles>
__device__ __forceinline__ void online_softmax_step(float (&s)[kNTiles][4], float (&acc_o)[kOTiles][4],
                                                    RowState& st, float scale_log2) {
  rescale_o(acc_o, softmax_update(s, st, scale_log2));
}

}  // namespace cupyflash
