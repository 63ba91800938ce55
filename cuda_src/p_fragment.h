// P, the softmax's output, as the A operand of the Hopper kernel's P.V wgmma
// (flash_fwd_wgmma.cuh): packed from the score accumulators in registers.
#pragma once
#include "ptx.h"
#include "ptx_sm90.h"

namespace cupyflash {

// P as the A operand: two adjacent n8 accumulator tiles are one k16 A fragment.
// Split: the lo part is what the hi rounding lost, itself rounded to fp16.
// tf32: one n8 tile is one k8 fragment, with no data movement between threads.
// A thread holds S columns (2t, 2t+1) of rows g and g+8 (c0, c1 | c2, c3) and
// the fragment wants k = t and t+4 (a0 = (g, t), a1 = (g+8, t), a2 = (g, t+4),
// a3 = (g+8, t+4)): {c0, c2, c1, c3} puts key 2t at k = t and key 2t+1 at
// k = t+4, so k step position j holds key pi(j) = 2j (j < 4), 2(j-4)+1 (j >= 4)
// of its group of 8. The V^T pre-pass stores keys in that order (_vt.py), so
// P.V pairs every P value with its own key (tests/test_vt.py simulates it).
// P is rounded to nearest (tf32_round_bias), not truncated by the tensor cores.
template <class Tr, class Elem>
__device__ __forceinline__ void pack_p_fragments(u32 (&pf)[Tr::kCopies][Tr::kPSteps][4],
                                                 const float (&sc)[Tr::kNTiles][4]) {
  if constexpr (Tr::kTf32) {
#pragma unroll
    for (int kk = 0; kk < Tr::kPSteps; ++kk) {
      pf[0][kk][0] = tf32_round_bias(sc[kk][0]);
      pf[0][kk][1] = tf32_round_bias(sc[kk][2]);
      pf[0][kk][2] = tf32_round_bias(sc[kk][1]);
      pf[0][kk][3] = tf32_round_bias(sc[kk][3]);
    }
    return;
  }
#pragma unroll
  for (int kk = 0; kk < Tr::kPSteps; ++kk) {
#pragma unroll
    for (int r = 0; r < 4; ++r) {
      const float* pair = &sc[2 * kk + r / 2][2 * (r % 2)];  // (j, e) pairs in A-fragment order
      pf[0][kk][r] = pack2<Elem>(pair[0], pair[1]);
      if constexpr (Tr::kSplit) {
        const float2 hi = unpack_half2(pf[0][kk][r]);
        pf[1][kk][r] = pack2<Elem>(pair[0] - hi.x, pair[1] - hi.y);
      }
    }
  }
}

}  // namespace cupyflash
